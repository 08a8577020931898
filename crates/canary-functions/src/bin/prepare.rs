//! `Prepare`: validates the rollout request (alias, versions, alarms), records the alias's original routing,
//! and takes the alias's lock.
use canary_aws::{
    CloudWatchMetrics, ConfigOptions, EventBridgeNotifier, LambdaAliases, StepFunctionsExecutions, load_config,
};
use canary_core::notice::Task;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = load_config(&ConfigOptions::default()).await;
    let (aliases, metrics) = (LambdaAliases::from_config(&config), CloudWatchMetrics::from_config(&config));
    let (executions, notifier) =
        (StepFunctionsExecutions::from_config(&config), EventBridgeNotifier::from_config(&config));
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async {
        let state =
            canary_functions::prepare(event.payload, &aliases, &metrics, &executions, chrono::Utc::now()).await?;
        canary_functions::announce(&notifier, Task::Prepare, &state).await;
        Ok::<_, canary_functions::ControllerError>(state)
    }))
    .await
}
