//! `PreTraffic` and `PostTraffic`: runs the rollout's traffic hook that is due.
use canary_aws::{ConfigOptions, EventBridgeNotifier, LambdaAliases, LambdaHooks, load_config};
use canary_core::notice::Task;
use canary_functions::state_from;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = load_config(&ConfigOptions::default()).await;
    let (hooks, notifier) = (LambdaHooks::from_config(&config), EventBridgeNotifier::from_config(&config));
    let aliases = LambdaAliases::from_config(&config);
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async {
        let state = canary_functions::hook(state_from(event.payload)?, &hooks, &aliases, chrono::Utc::now()).await?;
        canary_functions::announce(&notifier, Task::Hook, &state).await;
        Ok::<_, canary_functions::ControllerError>(state)
    }))
    .await
}
