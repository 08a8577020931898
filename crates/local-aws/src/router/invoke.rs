//! Lambda's data plane: an alias's weights pick a version, its code runs under `cargo lambda watch` with
//! its own environment, and `AWS/Lambda` metrics are published as Lambda would.

use crate::*;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{Request, Response, Uri};
use canary_core::asl::ErrorName;
use http_body_util::{BodyExt, Full};
use local_aws::{environment_key, function_ref, is_version, pick_version};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Deserialize)]
pub(crate) struct InvokeQuery {
    #[serde(rename = "Qualifier")]
    pub(crate) qualifier: Option<String>,
}

/// The base URL of the runner for one version environment, started on first use.
pub(crate) async fn runner(app: &AppState, environment: &BTreeMap<String, String>) -> Result<String, String> {
    let key = environment_key(environment);
    let mut runners = app.runners.lock().await;
    if let Some(url) = runners.get(&key) {
        return Ok(url.clone());
    }
    let port =
        std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map_err(|e| e.to_string())?.port();
    let index = runners.len();
    let env_file = app.state_dir.join(format!("runner-{index}.env"));
    let mut all: BTreeMap<String, String> = [
        ("AWS_ENDPOINT_URL", app.router_url.as_str()),
        ("AWS_REGION", app.region.as_str()),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH", "true"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    all.extend(environment.iter().map(|(k, v)| (k.clone(), v.clone())));
    let lines: Vec<String> = all.iter().map(|(k, v)| format!("{k}={v}")).collect();
    tokio::fs::write(&env_file, lines.join("\n") + "\n").await.map_err(|e| e.to_string())?;
    let log = std::fs::File::create(app.state_dir.join(format!("runner-{index}.log"))).map_err(|e| e.to_string())?;
    tokio::process::Command::new("cargo")
        .args(["lambda", "watch", "-A", "127.0.0.1", "-P", &port.to_string(), "--ignore-changes", "--env-file"])
        .arg(&env_file)
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log)
        .spawn()
        .map_err(|e| format!("cannot start cargo lambda watch: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        if Instant::now() > deadline {
            return Err(format!("cargo lambda watch did not listen on {port} within 60 s"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let url = format!("http://127.0.0.1:{port}");
    eprintln!("runner started at {url} for environment {key:?}");
    runners.insert(key, url.clone());
    Ok(url)
}

pub(crate) async fn invoke(
    State(app): State<Arc<AppState>>,
    Path(segment): Path<String>,
    Query(query): Query<InvokeQuery>,
    request: Request<Body>,
) -> Response<Body> {
    let (parts, body) = request.into_parts();
    let Ok(body) = body.collect().await.map(|b| b.to_bytes()) else {
        return response(400, &[], "unreadable request body");
    };
    record_iam(&app, &parts, None, &body).await;
    let (function, qualifier) = function_ref(&segment, query.qualifier.as_deref());
    let fault = take_fault(&app, &function, &FaultKind::ON_INVOKE).await;
    let function_error = |error_type: &str, message: String| {
        let body = serde_json::json!({"errorType": error_type, "errorMessage": message});
        response(200, &[("X-Amz-Function-Error", "Unhandled"), ("X-Amz-Executed-Version", "$LATEST")], body.to_string())
    };
    match fault.as_ref().map(|f| f.kind) {
        Some(FaultKind::Throttle) => {
            return lambda_error(429, "TooManyRequestsException", "Rate Exceeded. (injected)");
        }
        Some(FaultKind::Error) => return function_error("InjectedFault", format!("fault injected into {function}")),
        Some(FaultKind::Delay) => {
            tokio::time::sleep(Duration::from_secs(fault.as_ref().map_or(0, |f| f.seconds))).await;
        }
        _ => {}
    }
    let answer = run_invocation(&app, &function, qualifier, body).await;
    // Whatever the function wrote stays written; only its answer is lost.
    match fault.as_ref().map(|f| f.kind) {
        // What Lambda answers for a function that ran out of time.
        Some(FaultKind::TimeoutAfter) => function_error(
            ErrorName::SandboxTimedout.as_str(),
            "Task timed out after 30.00 seconds (injected after it ran)".into(),
        ),
        Some(FaultKind::LostAfter) => lambda_error(500, "ServiceException", "injected after the function ran"),
        _ => answer,
    }
}

/// Runs one invocation as Lambda would: the version the qualifier picks, with that version's environment,
/// its metrics published when it ran through an alias.
pub(crate) async fn run_invocation(
    app: &Arc<AppState>,
    function: &str,
    qualifier: Option<String>,
    body: Bytes,
) -> Response<Body> {
    let (version, alias) = match pick(app, function, qualifier).await {
        Ok(picked) => picked,
        Err(refused) => return refused,
    };
    let key = (function_ref(function, None).0, version.clone());
    if let Some(state) = app.version_states.lock().await.get(&key) {
        // As Lambda answers an invocation of a function that is not Active (an alias's traffic included).
        let message = format!(
            "The operation cannot be performed at this time. The function is currently in the following state: {state}"
        );
        return lambda_error(409, "ResourceConflictException", &message);
    }
    let mut environment = match version_environment(app, function, &version).await {
        Ok(environment) => environment,
        Err(refused) => return refused,
    };
    // The binary that is this function's code: LOCAL_BINARY names it, else the function's own name.
    let binary = environment.remove("LOCAL_BINARY").unwrap_or_else(|| function.to_string());
    let started = Instant::now();
    let (failed, payload) = match run_code(app, &environment, &binary, body).await {
        Ok(Some(ran)) => ran,
        Ok(None) => {
            let message = format!(
                "no local code for {function}: name a workspace binary in its LOCAL_BINARY environment variable"
            );
            return lambda_error(404, "ResourceNotFoundException", &message);
        }
        Err(e) => return lambda_error(500, "ServiceException", &e),
    };
    let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
    if let Some(alias) = alias {
        let app = app.clone();
        let (function, version) = (function.to_string(), version.clone());
        tokio::spawn(async move { publish(&app, &function, &alias, &version, failed, duration_ms).await });
    }
    let mut headers = vec![("X-Amz-Executed-Version", version.as_str()), ("content-type", "application/json")];
    if failed {
        headers.push(("X-Amz-Function-Error", "Unhandled"));
    }
    response(200, &headers, payload)
}

/// The version one invocation runs, and the alias it came through: an alias picks a version by its weights;
/// a version or no qualifier runs as named. The alias is read with the plain SDK, not the controller's
/// adapter, so the local stack is an oracle independent of the code under test: a bug in how the controller
/// reads or writes weights shows as traffic going where the controller did not mean it to.
pub(crate) async fn pick(
    app: &AppState,
    function: &str,
    qualifier: Option<String>,
) -> Result<(String, Option<String>), Response<Body>> {
    match qualifier {
        Some(q) if !is_version(&q) => {
            let read = app.lambda.get_alias().function_name(function).name(&q).send().await;
            match read {
                Ok(alias) => {
                    let weights = alias.routing_config().and_then(|r| r.additional_version_weights());
                    let weights: BTreeMap<String, f64> = weights.cloned().unwrap_or_default().into_iter().collect();
                    let version = pick_version(alias.function_version().unwrap_or_default(), &weights, fastrand::f64());
                    Ok((version, Some(q)))
                }
                Err(e) if e.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()) => {
                    Err(lambda_error(404, "ResourceNotFoundException", &format!("Function not found: {function}:{q}")))
                }
                Err(e) => {
                    let e = aws_sdk_lambda::error::DisplayErrorContext(&e);
                    Err(lambda_error(500, "ServiceException", &format!("cannot read {function}:{q}: {e}")))
                }
            }
        }
        other => Ok((other.unwrap_or_else(|| "$LATEST".into()), None)),
    }
}

/// The environment variables of one version of a function.
pub(crate) async fn version_environment(
    app: &AppState,
    function: &str,
    version: &str,
) -> Result<BTreeMap<String, String>, Response<Body>> {
    let config = app.lambda.get_function_configuration().function_name(function).qualifier(version).send().await;
    let config = config.map_err(|_| {
        lambda_error(404, "ResourceNotFoundException", &format!("Function not found: {function}:{version}"))
    })?;
    let mut environment: BTreeMap<String, String> = config
        .environment()
        .and_then(|e| e.variables())
        .map(|v| v.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    // Lambda runs a function with its execution role's credentials: here the role's name is the access key
    // ID, so that every call the function makes is checked against that role's policy (see `iam`).
    if let Some(role) = config.role().and_then(|arn| arn.rsplit('/').next()) {
        environment.insert("AWS_ACCESS_KEY_ID".into(), role.to_string());
    }
    Ok(environment)
}

/// Runs `binary` under the runner of this environment: whether it failed and its answer, or None when the
/// runner has no such binary.
pub(crate) async fn run_code(
    app: &AppState,
    environment: &BTreeMap<String, String>,
    binary: &str,
    body: Bytes,
) -> Result<Option<(bool, Bytes)>, String> {
    let base = runner(app, environment).await?;
    let uri: Uri = format!("{base}/2015-03-31/functions/{binary}/invocations").parse().expect("valid URI");
    let request = Request::post(uri).header("content-type", "application/json").body(Full::new(body)).expect("valid");
    let (status, _, payload) = send(&app.http, request).await.map_err(|e| format!("runner did not answer: {e}"))?;
    Ok(match status {
        200 => Some((false, payload)),
        500 => Some((true, payload)),
        _ => None,
    })
}

/// Publishes one invocation's metrics as Lambda does for invocations through an alias.
pub(crate) async fn publish(
    app: &AppState,
    function: &str,
    alias: &str,
    version: &str,
    failed: bool,
    duration_ms: f64,
) {
    use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};
    let dimensions = [
        ("FunctionName", function.to_string()),
        ("Resource", format!("{function}:{alias}")),
        ("ExecutedVersion", version.into()),
    ]
    .map(|(name, value)| Dimension::builder().name(name).value(value).build());
    let now = aws_sdk_cloudwatch::primitives::DateTime::from(std::time::SystemTime::now());
    let datum = |name: &str, value: f64, unit: StandardUnit| {
        MetricDatum::builder()
            .metric_name(name)
            .set_dimensions(Some(dimensions.to_vec()))
            .timestamp(now)
            .value(value)
            .unit(unit)
            .build()
    };
    let result = app
        .cloudwatch
        .put_metric_data()
        .namespace("AWS/Lambda")
        .metric_data(datum("Invocations", 1.0, StandardUnit::Count))
        .metric_data(datum("Errors", if failed { 1.0 } else { 0.0 }, StandardUnit::Count))
        .metric_data(datum("Duration", duration_ms, StandardUnit::Milliseconds))
        .send()
        .await;
    if let Err(e) = result {
        eprintln!("metrics not published: {}", aws_sdk_cloudwatch::error::DisplayErrorContext(&e));
    }
}
