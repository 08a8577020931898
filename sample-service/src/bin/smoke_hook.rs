//! `sample-smoke-hook`: a pre-traffic hook for the sample service. Before any traffic moves, it calls each
//! new version through Lambda: the API's `/health` as API Gateway would (passing only on a 200), and the
//! order worker with a sample order (passing only without a function error).
//!
//! The controller invokes it with `{"hook", "function", "alias", "old_version", "new_version"}`, and for a
//! release also `functions` (each with the same fields), every one of which is tested; it answers
//! `{"passed": bool, "reason": "..."}`. Its own faults come from its environment, like the service's.

use aws_sdk_lambda::primitives::Blob;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use sample_service::{Faults, Method, api_gateway_event};
use serde_json::{Value, json};

/// Whether `function` is the sample service's order worker (`sample-service-STAGE-worker`), which takes
/// orders rather than HTTP requests.
fn is_worker(function: &str) -> bool {
    function.ends_with("-worker")
}

/// Calls one new version as its callers would: (passed, why).
async fn try_version(lambda: &aws_sdk_lambda::Client, function: &str, version: &str) -> Result<(bool, String), Error> {
    let (what, payload) = if is_worker(function) {
        ("a sample order", json!({"order_id": "ord-00000000", "quantity": 1}))
    } else {
        ("GET /health", serde_json::to_value(api_gateway_event(Method::GET, "/health", "smoke", "smoke"))?)
    };
    let out = lambda
        .invoke()
        .function_name(function)
        .qualifier(version)
        .payload(Blob::new(serde_json::to_vec(&payload)?))
        .send()
        .await?;
    let answer: Value = serde_json::from_slice(out.payload().map_or(&[][..], |p| p.as_ref())).unwrap_or(Value::Null);
    let passed = out.function_error().is_none() && (is_worker(function) || answer["statusCode"] == 200);
    let reason = match out.function_error() {
        Some(error) => format!("{what} on {function}:{version} failed ({error}): {}", answer["errorMessage"]),
        None if is_worker(function) => format!("{what} on {function}:{version} was taken"),
        None => format!("{what} on {function}:{version} answered {}", answer["statusCode"]),
    };
    tracing::info!(function, version, passed, reason, "smoke test");
    Ok((passed, reason))
}

async fn smoke(event: Value, lambda: &aws_sdk_lambda::Client, faults: Faults) -> Result<Value, Error> {
    if faults.fails(fastrand::f64()) {
        return Err(Error::from("injected fault: FAULT_ERROR_RATE is set for this hook"));
    }
    // A release's every function, or the one rolled out.
    let targets: Vec<Value> = match event["functions"].as_array() {
        Some(functions) => functions.clone(),
        None => vec![event.clone()],
    };
    let mut reasons = Vec::new();
    for target in &targets {
        let (Some(function), Some(version)) = (target["function"].as_str(), target["new_version"].as_str()) else {
            return Err(Error::from("expected the controller's hook payload with function and new_version"));
        };
        let (passed, reason) = try_version(lambda, function, version).await?;
        if !passed {
            return Ok(json!({"passed": false, "reason": reason}));
        }
        reasons.push(reason);
    }
    Ok(json!({"passed": true, "reason": reasons.join("; ")}))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let lambda = aws_sdk_lambda::Client::new(&aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await);
    let faults = Faults::from_lookup(|name| std::env::var(name).ok());
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| smoke(event.payload, &lambda, faults))).await
}
