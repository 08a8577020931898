//! `canary-safety-net`: restores the alias of a rollout whose execution was stopped, timed out, or failed
//! outside the state machine's own rollback. Invoked by an EventBridge rule on execution status changes.
use canary_aws::{ConfigOptions, EventBridgeNotifier, LambdaAliases, StepFunctionsExecutions, load_config};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = load_config(&ConfigOptions::default()).await;
    let (executions, aliases) = (StepFunctionsExecutions::from_config(&config), LambdaAliases::from_config(&config));
    let notifier = EventBridgeNotifier::from_config(&config);
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        canary_functions::safety_net(event.payload, &executions, &aliases, &notifier, chrono::Utc::now())
    }))
    .await
}
