//! `PreTraffic` and `PostTraffic`: runs the rollout's traffic hook that is due.
use canary_aws::{ConfigOptions, LambdaHooks, load_config};
use canary_functions::state_from;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let hooks = LambdaHooks::from_config(&load_config(&ConfigOptions::default()).await);
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async {
        canary_functions::hook(state_from(event.payload)?, &hooks, chrono::Utc::now()).await
    }))
    .await
}
