//! `CheckHealth`: judges the current step from CloudWatch and decides what comes next.
use canary_aws::{CloudWatchMetrics, ConfigOptions, load_config};
use canary_functions::state_from;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let metrics = CloudWatchMetrics::from_config(&load_config(&ConfigOptions::default()).await);
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async {
        canary_functions::check(state_from(event.payload)?, &metrics, chrono::Utc::now()).await
    }))
    .await
}
