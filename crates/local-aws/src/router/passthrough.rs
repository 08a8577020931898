//! Everything else goes to moto: counted by operation, attributed to its IAM signer, and held to Lambda's
//! alias rules moto does not enforce.

use crate::*;
use axum::body::Body;
use axum::extract::State;
use axum::http::{Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use local_aws::control::CallCount;
use std::sync::Arc;

/// Passes any request to moto unchanged, and counts it.
pub(crate) async fn to_moto(State(app): State<Arc<AppState>>, request: Request<Body>) -> Response<Body> {
    let (parts, body) = request.into_parts();
    let Ok(bytes) = body.collect().await.map(|b| b.to_bytes()) else {
        return response(400, &[], "unreadable request body");
    };
    let target = parts.headers.get("x-amz-target").and_then(|v| v.to_str().ok());
    let call = local_aws::operation_of(parts.method.as_str(), parts.uri.path(), target, &bytes);
    *app.calls.lock().await.entry(call.clone()).or_insert(0) += 1;
    record_iam(&app, &parts, target, &bytes).await;
    if call.0 == "UpdateAlias"
        && let Some(refused) = weighting_refused(&app, &call.1, &parts.uri, &bytes).await
    {
        return refused;
    }
    if call.0 == "UpdateAlias" && take_fault(&app, &call.1, &[FaultKind::ConflictOnWrite]).await.is_some() {
        let message =
            "The operation cannot be performed at this time. An update is in progress for resource (injected)";
        return lambda_error(409, "ResourceConflictException", message);
    }
    let marked = match call.0.as_str() {
        "GetFunctionConfiguration" => marked_state(&app, &call.1, parts.uri.query()).await,
        _ => None,
    };
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let uri: Uri = format!("{}{path}", app.moto).parse().expect("valid moto URI");
    let mut forward = Request::builder().method(parts.method).uri(uri);
    for (name, value) in &parts.headers {
        if name != "host" {
            forward = forward.header(name, value);
        }
    }
    match send(&app.http, forward.body(Full::new(bytes)).expect("valid request")).await {
        Ok((status, mut headers, body)) => {
            let body = match (marked, status) {
                (Some(state), 200) => {
                    headers.remove("content-length");
                    with_state(&body, &state)
                }
                _ => body,
            };
            let mut out = response(status, &[], body);
            *out.headers_mut() = headers;
            out
        }
        Err(e) => response(502, &[], format!("moto did not answer: {e}")),
    }
}

/// Lambda's rules for a weighted alias, which moto does not enforce: every version it routes to is
/// published (not `$LATEST`), and all share one execution role and one dead-letter configuration. An
/// `UpdateAlias` that breaks them is refused as Lambda refuses it.
pub(crate) async fn weighting_refused(
    app: &AppState,
    function: &str,
    uri: &Uri,
    body: &[u8],
) -> Option<Response<Body>> {
    let update: serde_json::Value = serde_json::from_slice(body).ok()?;
    let weights = update["RoutingConfig"]["AdditionalVersionWeights"].as_object().filter(|w| !w.is_empty())?;
    let alias = uri.path().rsplit('/').next().unwrap_or_default().to_string();
    let primary = match update["FunctionVersion"].as_str() {
        Some(version) => version.to_string(),
        None => app
            .lambda
            .get_alias()
            .function_name(function)
            .name(&alias)
            .send()
            .await
            .ok()?
            .function_version()?
            .to_string(),
    };
    let mut seen: Vec<(String, String, Option<String>)> = Vec::new();
    for version in std::iter::once(primary).chain(weights.keys().cloned()) {
        if version == "$LATEST" {
            let message = "$LATEST is not supported for an alias pointing to more than 1 version";
            return Some(lambda_error(400, "InvalidParameterValueException", message));
        }
        let config =
            app.lambda.get_function_configuration().function_name(function).qualifier(&version).send().await.ok()?;
        let dead_letter = config.dead_letter_config().and_then(|d| d.target_arn()).map(str::to_string);
        seen.push((version, config.role().unwrap_or_default().to_string(), dead_letter));
    }
    let (first, rest) = seen.split_first()?;
    for other in rest {
        let what = if other.1 != first.1 {
            "execution role"
        } else if other.2 != first.2 {
            "dead-letter queue configuration"
        } else {
            continue;
        };
        let message = format!(
            "versions {} and {} of {function} have a different {what}: an alias cannot route to both (as Lambda)",
            first.0, other.0
        );
        return Some(lambda_error(400, "InvalidParameterValueException", &message));
    }
    None
}

/// Records a request as IAM would authorise it, for its signer; one the model does not know is recorded as
/// an action no policy grants, so that it is reported rather than passed.
pub(crate) async fn record_iam(app: &AppState, parts: &axum::http::request::Parts, target: Option<&str>, body: &[u8]) {
    let authorization = parts.headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
    let Some((principal, service)) = local_aws::iam::signer(authorization) else { return };
    let place = local_aws::iam::Place { region: &app.region, account: &app.account };
    let (method, path, query) = (parts.method.as_str(), parts.uri.path(), parts.uri.query().unwrap_or(""));
    let requests = local_aws::iam::request_of(place, &service, method, path, query, target, body)
        .unwrap_or_else(|| vec![(format!("{service}:unmodelled {method} {path}"), "?".into())]);
    let mut calls = app.iam_calls.lock().await;
    for (action, resource) in requests {
        let call = local_aws::iam::Call { principal: principal.clone(), action, resource };
        *calls.entry(call).or_insert(0) += 1;
    }
}

pub(crate) async fn list_iam_calls(State(app): State<Arc<AppState>>) -> axum::Json<Vec<(local_aws::iam::Call, u64)>> {
    axum::Json(app.iam_calls.lock().await.iter().map(|(c, n)| (c.clone(), *n)).collect())
}

pub(crate) async fn list_calls(State(app): State<Arc<AppState>>) -> axum::Json<Vec<CallCount>> {
    let calls = app.calls.lock().await;
    let rows = calls
        .iter()
        .map(|((operation, function), count)| CallCount {
            operation: operation.clone(),
            function: function.clone(),
            count: *count,
        })
        .collect();
    axum::Json(rows)
}

pub(crate) async fn clear_calls(State(app): State<Arc<AppState>>) -> StatusCode {
    app.calls.lock().await.clear();
    StatusCode::NO_CONTENT
}
