//! `CheckHealth`: judges the current step from CloudWatch and decides what comes next; a passed bake at
//! 100% ends the rollout and releases the alias.
use canary_aws::{CloudWatchMetrics, ConfigOptions, EventBridgeNotifier, LambdaAliases, load_config};
use canary_core::notice::Task;
use canary_functions::state_from;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = load_config(&ConfigOptions::default()).await;
    let (metrics, notifier) = (CloudWatchMetrics::from_config(&config), EventBridgeNotifier::from_config(&config));
    let aliases = LambdaAliases::from_config(&config);
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async {
        let state = canary_functions::check(state_from(event.payload)?, &metrics, &aliases, chrono::Utc::now()).await?;
        canary_functions::announce(&notifier, Task::Check, &state).await;
        Ok::<_, canary_functions::ControllerError>(state)
    }))
    .await
}
