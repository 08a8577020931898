//! `AwaitApproval` and `ApplyApproval`: announces a pause at an approval gate, and applies the answer.
use canary_aws::{ConfigOptions, EventBridgeNotifier, load_config};
use canary_core::notice::Task;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let notifier = EventBridgeNotifier::from_config(&load_config(&ConfigOptions::default()).await);
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async {
        // Invoked with a task token, the rollout has just paused at its gate.
        let paused = event.payload.get("token").and(event.payload.get("state")).cloned();
        let result = canary_functions::gate(event.payload, chrono::Utc::now()).await?;
        if let Some(state) = paused.and_then(|s| canary_functions::state_from(s).ok()) {
            canary_functions::announce(&notifier, Task::Paused, &state).await;
        }
        Ok::<_, canary_functions::ControllerError>(result)
    }))
    .await
}
