//! The sample service: an orders API with a router in the handler, as the seed project describes (one
//! function for the whole app, API Gateway `{proxy+}` in front).
//!
//! Faults can be switched on per published version, for rollout demos and tests, with environment
//! variables: `FAULT_ERROR_RATE` (0 to 1, the share of invocations that fail as function errors, which
//! is what Lambda's `Errors` metric counts) and `FAULT_LATENCY_MS` (added to every invocation).

use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use lambda_http::aws_lambda_events::apigw::{ApiGatewayProxyRequest, ApiGatewayProxyRequestContext};
pub use lambda_http::http::Method;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::HashMap;

/// The routes. Pure: no AWS, no state, so tests drive it with plain HTTP requests.
pub fn app() -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/orders", axum::routing::post(create_order))
        .route("/orders/{id}", get(get_order))
        .route("/quote", get(quote))
        .fallback(not_found)
}

/// An API Gateway REST API proxy event (`{proxy+}` resource) for `method path` on `stage`: what API Gateway
/// sends the service. The smoke hook and the local stack's traffic call the service through Lambda with it.
pub fn api_gateway_event(method: Method, path: &str, stage: &str, account: &str) -> ApiGatewayProxyRequest {
    let mut context = ApiGatewayProxyRequestContext::default();
    context.account_id = Some(account.into());
    context.resource_id = Some("proxy".into());
    context.stage = Some(stage.into());
    context.request_id = Some(format!("{stage}-{}", fastrand::u64(..)));
    context.identity.source_ip = Some("127.0.0.1".into());
    context.resource_path = Some("/{proxy+}".into());
    context.http_method = method.clone();
    context.apiid = Some(stage.into());
    context.path = Some(format!("/{stage}{path}"));
    context.protocol = Some("HTTP/1.1".into());
    let mut event = ApiGatewayProxyRequest::default();
    event.resource = Some("/{proxy+}".into());
    event.path = Some(path.into());
    event.http_method = method;
    event.path_parameters = HashMap::from([("proxy".into(), path.trim_start_matches('/').into())]);
    event.request_context = context;
    event
}

/// A JSON error, the one shape every failure of this API has.
pub fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({"error": message.into(), "status": status.as_u16()}))).into_response()
}

async fn health() -> Json<serde_json::Value> {
    Json(
        json!({"status": "ok", "version": std::env::var("AWS_LAMBDA_FUNCTION_VERSION").unwrap_or_else(|_| "local".into())}),
    )
}

async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "no such route")
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewOrder {
    pub item: String,
    pub quantity: u32,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct Order {
    pub id: String,
    pub item: String,
    pub quantity: u32,
    pub status: &'static str,
}

async fn create_order(body: Result<Json<NewOrder>, axum::extract::rejection::JsonRejection>) -> Response {
    let Json(order) = match body {
        Ok(body) => body,
        Err(rejection) => return error(StatusCode::BAD_REQUEST, rejection.body_text()),
    };
    if order.item.trim().is_empty() || order.item.len() > 100 {
        return error(StatusCode::UNPROCESSABLE_ENTITY, "item: give 1 to 100 characters");
    }
    if !(1..=1000).contains(&order.quantity) {
        return error(StatusCode::UNPROCESSABLE_ENTITY, "quantity: give 1 to 1000");
    }
    let id = format!("ord-{:08x}", fastrand::u32(..));
    tracing::info!(order = id, item = order.item, quantity = order.quantity, "order accepted");
    (StatusCode::CREATED, Json(Order { id, item: order.item, quantity: order.quantity, status: "accepted" }))
        .into_response()
}

async fn get_order(Path(id): Path<String>) -> Response {
    match id.strip_prefix("ord-").filter(|hex| hex.len() == 8 && hex.chars().all(|c| c.is_ascii_hexdigit())) {
        Some(_) => Json(Order { id, item: "sample".into(), quantity: 1, status: "accepted" }).into_response(),
        None => error(StatusCode::BAD_REQUEST, "id: expected ord- followed by 8 hex digits"),
    }
}

async fn quote(Query(params): Query<HashMap<String, String>>) -> Response {
    match params.get("quantity").map(|q| q.parse::<u32>()) {
        Some(Ok(quantity)) if (1..=1000).contains(&quantity) => {
            Json(json!({"quantity": quantity, "total_cents": quantity * 1299})).into_response()
        }
        _ => error(StatusCode::BAD_REQUEST, "quantity: give a whole number from 1 to 1000"),
    }
}

/// Faults switched on for this version.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Faults {
    pub error_rate: f64,
    pub latency_ms: u64,
}

impl Faults {
    /// Reads `FAULT_ERROR_RATE` and `FAULT_LATENCY_MS` from a variable lookup; bad values mean no fault.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Faults {
        Faults {
            error_rate: lookup("FAULT_ERROR_RATE")
                .and_then(|v| v.parse().ok())
                .filter(|r: &f64| (0.0..=1.0).contains(r))
                .unwrap_or(0.0),
            latency_ms: lookup("FAULT_LATENCY_MS").and_then(|v| v.parse().ok()).unwrap_or(0),
        }
    }

    /// Whether this invocation fails, given a uniform draw from 0 to 1.
    pub fn fails(&self, draw: f64) -> bool {
        draw < self.error_rate
    }
}
