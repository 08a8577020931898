//! The sample service's Lambda entry point.

use lambda_http::{Body, Error, Request, Response, service_fn};
use sample_service::{Faults, app};
use tower::ServiceExt;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    // Read once: a version's environment is fixed for its lifetime. The local emulator runs each
    // distinct version environment in its own runner, so this is per version there too.
    let faults = Faults::from_lookup(|name| std::env::var(name).ok());
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
        Ok::<Response<Body>, Error>(Response::from_parts(parts, Body::from(bytes.to_vec())))
    }))
    .await
}
