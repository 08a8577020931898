//! `AwaitApproval` and `ApplyApproval`: announces a pause at an approval gate, and applies the answer.
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        canary_functions::gate(event.payload, chrono::Utc::now())
    }))
    .await
}
