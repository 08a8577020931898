//! `Shift`: moves the alias to the next intermediate weight.
use canary_aws::{ConfigOptions, LambdaAliases, load_config};
use canary_core::Next;
use canary_functions::state_from;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let aliases = LambdaAliases::from_config(&load_config(&ConfigOptions::default()).await);
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async {
        canary_functions::advance(state_from(event.payload)?, Next::Shift, &aliases, chrono::Utc::now()).await
    }))
    .await
}
