//! `sample-smoke-hook`: a pre-traffic hook for the sample service. Before any traffic moves, it calls
//! the new version's `/health` through Lambda, as API Gateway would, and passes only on a 200.
//!
//! The controller invokes it with `{"hook", "function", "alias", "old_version", "new_version"}`; it answers
//! `{"passed": bool, "reason": "..."}`. Its own faults come from its environment, like the service's.

use aws_sdk_lambda::primitives::Blob;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use sample_service::{Faults, Method, api_gateway_event};
use serde_json::{Value, json};

async fn smoke(event: Value, lambda: &aws_sdk_lambda::Client, faults: Faults) -> Result<Value, Error> {
    if faults.fails(fastrand::f64()) {
        return Err(Error::from("injected fault: FAULT_ERROR_RATE is set for this hook"));
    }
    let (Some(function), Some(version)) = (event["function"].as_str(), event["new_version"].as_str()) else {
        return Err(Error::from("expected the controller's hook payload with function and new_version"));
    };
    let out = lambda
        .invoke()
        .function_name(function)
        .qualifier(version)
        .payload(Blob::new(serde_json::to_vec(&api_gateway_event(Method::GET, "/health", "smoke", "smoke"))?))
        .send()
        .await?;
    let answer: Value = serde_json::from_slice(out.payload().map_or(&[][..], |p| p.as_ref())).unwrap_or(Value::Null);
    let passed = out.function_error().is_none() && answer["statusCode"] == 200;
    let reason = match out.function_error() {
        Some(error) => format!("GET /health on {function}:{version} failed ({error}): {}", answer["errorMessage"]),
        None => format!("GET /health on {function}:{version} answered {}", answer["statusCode"]),
    };
    tracing::info!(function, version, passed, reason, "smoke test");
    Ok(json!({"passed": passed, "reason": reason}))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let lambda = aws_sdk_lambda::Client::new(&aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await);
    let faults = Faults::from_lookup(|name| std::env::var(name).ok());
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| smoke(event.payload, &lambda, faults))).await
}
