//! The sample service's routes, through the router, as API Gateway's requests reach them.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use sample_service::{Faults, app};
use serde_json::{Value, json};
use tower::ServiceExt;

async fn call(method: &str, uri: &str, body: Option<Value>) -> (StatusCode, Value) {
    let mut request = Request::builder().method(method).uri(uri);
    if body.is_some() {
        request = request.header("content-type", "application/json");
    }
    let body = body.map_or(Body::empty(), |b| Body::from(b.to_string()));
    let response = app().oneshot(request.body(body).unwrap()).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

#[tokio::test]
async fn routes_answer_json() {
    let cases: Vec<(&str, &str, Option<Value>, StatusCode)> = vec![
        ("GET", "/health", None, StatusCode::OK),
        ("GET", "/quote?quantity=3", None, StatusCode::OK),
        ("GET", "/quote?quantity=0", None, StatusCode::BAD_REQUEST),
        ("GET", "/quote?quantity=lots", None, StatusCode::BAD_REQUEST),
        ("GET", "/quote", None, StatusCode::BAD_REQUEST),
        ("POST", "/orders", Some(json!({"item": "widget", "quantity": 2})), StatusCode::CREATED),
        ("POST", "/orders", Some(json!({"item": " ", "quantity": 2})), StatusCode::UNPROCESSABLE_ENTITY),
        ("POST", "/orders", Some(json!({"item": "widget", "quantity": 1001})), StatusCode::UNPROCESSABLE_ENTITY),
        ("POST", "/orders", Some(json!({"item": "widget"})), StatusCode::BAD_REQUEST),
        ("POST", "/orders", Some(json!({"item": "widget", "quantity": 1, "colour": "red"})), StatusCode::BAD_REQUEST),
        ("GET", "/orders/ord-0000abcd", None, StatusCode::OK),
        ("GET", "/orders/12", None, StatusCode::BAD_REQUEST),
        ("GET", "/nowhere", None, StatusCode::NOT_FOUND),
    ];
    for (method, uri, body, expected) in cases {
        let (status, json) = call(method, uri, body.clone()).await;
        assert_eq!(status, expected, "{method} {uri} {body:?}: {json}");
        if !status.is_success() {
            assert_eq!(json["status"], status.as_u16(), "errors are JSON: {json}");
            assert!(json["error"].as_str().is_some_and(|e| !e.is_empty()), "{json}");
        }
    }
}

#[tokio::test]
async fn orders_and_quotes_carry_their_data() {
    let (_, order) = call("POST", "/orders", Some(json!({"item": "widget", "quantity": 2}))).await;
    assert_eq!(
        (order["item"].as_str(), order["quantity"].as_u64(), order["status"].as_str()),
        (Some("widget"), Some(2), Some("accepted"))
    );
    let id = order["id"].as_str().unwrap();
    let (status, fetched) = call("GET", &format!("/orders/{id}"), None).await;
    assert_eq!((status, fetched["id"].as_str()), (StatusCode::OK, Some(id)));
    let (_, quote) = call("GET", "/quote?quantity=3", None).await;
    assert_eq!(quote, json!({"quantity": 3, "total_cents": 3897}));
}

#[test]
fn faults_come_from_the_versions_environment() {
    let env = |pairs: &'static [(&'static str, &'static str)]| {
        move |name: &str| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
    };
    assert_eq!(Faults::from_lookup(env(&[])), Faults::default());
    let faults = Faults::from_lookup(env(&[("FAULT_ERROR_RATE", "0.25"), ("FAULT_LATENCY_MS", "40")]));
    assert_eq!(faults, Faults { error_rate: 0.25, latency_ms: 40 });
    assert!(faults.fails(0.1) && !faults.fails(0.25) && !faults.fails(0.9));
    // Nonsense is no fault rather than a crash of every invocation.
    assert_eq!(Faults::from_lookup(env(&[("FAULT_ERROR_RATE", "2"), ("FAULT_LATENCY_MS", "x")])), Faults::default());
}

#[test]
fn the_api_gateway_event_is_one_lambda_http_reads_as_a_rest_api_request() {
    use lambda_http::RequestExt;
    let event = sample_service::api_gateway_event(sample_service::Method::GET, "/orders/ord-1", "prod", "123456789012");
    let json = serde_json::to_value(&event).unwrap();
    assert_eq!(json["httpMethod"], "GET");
    assert_eq!(json["resource"], "/{proxy+}");
    assert_eq!(json["pathParameters"]["proxy"], "orders/ord-1");
    assert_eq!(json["requestContext"]["stage"], "prod");
    assert_eq!(json["requestContext"]["path"], "/prod/orders/ord-1");
    let request = lambda_http::request::from_str(&json.to_string()).expect("lambda_http reads the event");
    assert_eq!(request.method(), "GET");
    assert!(request.uri().path().ends_with("/orders/ord-1"), "{}", request.uri());
    assert!(matches!(request.request_context(), lambda_http::request::RequestContext::ApiGatewayV1(_)));
}
