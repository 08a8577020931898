//! The sample service's Lambda entry point. An order it accepts is handed to its worker
//! (`sample-worker`, named by `ORDER_WORKER`: the worker's `live` alias) with an asynchronous invoke, as
//! a queue would: the API answers at once, and the worker's own version does the fulfilment.

use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use lambda_http::{Body, Error, Request, Response, service_fn};
use sample_service::{Faults, app};
use tower::ServiceExt;

/// Hands an accepted order (the API's 201 answer) to the worker; a failure to hand it over is logged (the
/// order was accepted; a real service would put it on a queue with retries).
async fn hand_over(lambda: &aws_sdk_lambda::Client, worker: &str, accepted: &[u8]) {
    let Ok(order) = serde_json::from_slice::<serde_json::Value>(accepted) else { return };
    let payload = serde_json::json!({"order_id": order["id"], "quantity": order["quantity"]});
    let invoke = lambda
        .invoke()
        .function_name(worker)
        .invocation_type(InvocationType::Event)
        .payload(Blob::new(payload.to_string()));
    match invoke.send().await {
        Ok(_) => tracing::info!(order = %order["id"], worker, "order handed to the worker"),
        Err(error) => {
            tracing::error!(order = %order["id"], worker, error = %aws_sdk_lambda::error::DisplayErrorContext(error), "order not handed to the worker")
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    // Read once: a version's environment is fixed for its lifetime. The local emulator runs each
    // distinct version environment in its own runner, so this is per version there too.
    let faults = Faults::from_lookup(|name| std::env::var(name).ok());
    let worker = std::env::var("ORDER_WORKER").ok().filter(|w| !w.is_empty());
    let lambda = match &worker {
        Some(_) => {
            Some(aws_sdk_lambda::Client::new(&aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await))
        }
        None => None,
    };
    let (worker, lambda) = (&worker, &lambda);
    lambda_http::run(service_fn(move |request: Request| async move {
        if faults.latency_ms > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(faults.latency_ms)).await;
        }
        if faults.fails(fastrand::f64()) {
            return Err(Error::from("injected fault: FAULT_ERROR_RATE is set for this version"));
        }
        let response = app().oneshot(request).await?;
        let (parts, body) = response.into_parts();
        let bytes = axum::body::to_bytes(body, 1024 * 1024).await?;
        if let (Some(worker), Some(lambda)) = (worker, lambda)
            && parts.status == axum::http::StatusCode::CREATED
        {
            hand_over(lambda, worker, &bytes).await;
        }
        Ok::<Response<Body>, Error>(Response::from_parts(parts, Body::from(bytes.to_vec())))
    }))
    .await
}
