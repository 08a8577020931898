//! The router's own API (`/_local/...`), as the tests, the demo and the benches call it: one async HTTP
//! client on loopback instead of hand-written requests.

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::{Deserialize, Serialize};

/// AWS calls the router passed to moto for one operation: a Lambda operation with the function it
/// names, the others with `function` empty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallCount {
    pub operation: String,
    pub function: String,
    pub count: u64,
}

/// One request to `base` (`http://127.0.0.1:PORT`): its status and body.
pub async fn request(base: &str, method: &str, path: &str, body: &str) -> Result<(u16, String), String> {
    let client: Client<HttpConnector, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let request = hyper::Request::builder()
        .method(method)
        .uri(format!("{}{path}", base.trim_end_matches('/')))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .map_err(|e| e.to_string())?;
    let response = client.request(request).await.map_err(|e| format!("{method} {path}: {e}"))?;
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.map_err(|e| format!("{method} {path}: {e}"))?.to_bytes();
    Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
}

/// The calls counted since the last [`clear_calls`].
pub async fn calls(base: &str) -> Result<Vec<CallCount>, String> {
    let (status, body) = request(base, "GET", "/_local/calls", "").await?;
    if status != 200 {
        return Err(format!("GET /_local/calls: {status} {body}"));
    }
    serde_json::from_str(&body).map_err(|e| format!("GET /_local/calls: {e}: {body}"))
}

/// Resets the call counts.
pub async fn clear_calls(base: &str) -> Result<(), String> {
    match request(base, "DELETE", "/_local/calls", "").await? {
        (204, _) => Ok(()),
        (status, body) => Err(format!("DELETE /_local/calls: {status} {body}")),
    }
}
