//! `local-aws-router`: the one endpoint of the local AWS stack.
//!
//! - `POST /2015-03-31/functions/{function}/invocations` plays Lambda's data plane: an alias picks a
//!   version by its weights, the version's code runs under `cargo lambda watch` with the version's own
//!   environment, `AWS/Lambda` metrics are published to the emulator's CloudWatch as Lambda would, and
//!   function errors come back as HTTP 200 with `X-Amz-Function-Error: Unhandled`.
//! - `POST /_local/faults` makes the next invocations of a function fail, be throttled, time out after
//!   running (its writes take effect, the caller sees `Sandbox.Timedout`), or start late;
//!   `GET /_local/faults` lists the faults still armed; `DELETE /_local/faults` clears them.
//! - `POST /_local/version-state` `{"function", "version", "state"}` marks a published version `Pending`,
//!   `Inactive` or `Failed` (or `Active` again), which moto never does: `GetFunctionConfiguration` of it then
//!   reports that `State`, and invoking it fails as Lambda's does (HTTP 409 `ResourceConflictException`).
//!   `DELETE /_local/version-state` makes every version Active again.
//! - Everything else goes to moto unchanged, counted by operation: `GET /_local/calls` lists the counts
//!   (a Lambda operation with the function it names), `DELETE /_local/calls` resets them.
//! - With `--safety-net FUNCTION`, it plays the template's EventBridge rule: every execution of a state
//!   machine that ends ABORTED, TIMED_OUT or FAILED is delivered to FUNCTION, asynchronously, as the
//!   "Step Functions Execution Status Change" event EventBridge sends. moto's EventBridge does not emit
//!   Step Functions' status changes, so without this the console's Stop would go unhandled locally. With
//!   `--sweep-every SECONDS` it also plays the sweep's schedule. A `drop_delivery` fault loses deliveries,
//!   as EventBridge may, and a `skip_sweep` fault skips that many sweeps; a `conflict_on_write` fault answers
//!   a function's alias writes with HTTP 409.
//!
//! It binds 127.0.0.1 only. The runners it starts share its process group, so stopping the group stops all.

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Request, Response, StatusCode, Uri};
use axum::routing::post;
use canary_core::asl::ErrorName;
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use local_aws::control::CallCount;
use local_aws::{environment_key, function_ref, invoke_error, is_version, pick_version};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

#[derive(Debug, Parser)]
struct Args {
    /// Port to listen on, on 127.0.0.1.
    #[arg(long)]
    port: u16,
    /// moto's server, e.g. http://127.0.0.1:5000
    #[arg(long)]
    moto: String,
    /// Where runner logs and environment files go.
    #[arg(long)]
    state_dir: PathBuf,
    #[arg(long, default_value = "us-east-1")]
    region: String,
    /// The function EventBridge's rule invokes when an execution ends ABORTED, TIMED_OUT or FAILED.
    #[arg(long)]
    safety_net: Option<String>,
    /// The account in the events' ARNs.
    #[arg(long, default_value = "123456789012")]
    account: String,
    /// Plays the template's schedule of the safety net's sweep: every this many seconds, the safety net is
    /// invoked with `{"sweep": STATE_MACHINE_ARN}` for each state machine.
    #[arg(long, value_name = "SECONDS", requires = "safety_net")]
    sweep_every: Option<u64>,
}

type HttpClient = Client<HttpConnector, Full<Bytes>>;

struct AppState {
    moto: String,
    http: HttpClient,
    lambda: aws_sdk_lambda::Client,
    cloudwatch: aws_sdk_cloudwatch::Client,
    /// One `cargo lambda watch` per distinct version environment: environment key -> base URL.
    runners: Mutex<HashMap<String, String>>,
    faults: Mutex<HashMap<String, Fault>>,
    /// AWS calls passed to moto since the last reset: (operation, function or "") -> count.
    calls: Mutex<BTreeMap<(String, String), u64>>,
    /// Every call as IAM would authorise it, since the router started (never cleared): the suite checks
    /// each against its signer's policy.
    iam_calls: Mutex<BTreeMap<local_aws::iam::Call, u64>>,
    /// Versions marked not Active: (function name, version) -> Lambda's state name.
    version_states: Mutex<BTreeMap<(String, String), String>>,
    account: String,
    state_dir: PathBuf,
    router_url: String,
    region: String,
}

#[derive(Debug, Clone, Deserialize)]
struct Fault {
    function: String,
    kind: FaultKind,
    count: u32,
    #[serde(default)]
    seconds: u64,
}

/// What an armed fault does to an invocation (`"kind"` in `POST /_local/faults`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum FaultKind {
    /// The function fails without running.
    Error,
    /// Invoke answers 429, as Lambda's throttling does.
    Throttle,
    /// The function runs, then the caller sees `Sandbox.Timedout`, as for a function that ran out of time
    /// after its writes.
    TimeoutAfter,
    /// The function runs, then Invoke fails with Lambda's HTTP 500 `ServiceException`: its answer is lost.
    LostAfter,
    /// The function runs `seconds` late: a task in flight for that long.
    Delay,
    /// The function's next `UpdateAlias` calls answer HTTP 409 `ResourceConflictException`, as Lambda does
    /// while an update of the function is in progress.
    ConflictOnWrite,
    /// The next deliveries of an ended execution to the safety net (the function named) are lost, as an
    /// EventBridge event may be: only the sweep can then restore its alias.
    DropDelivery,
    /// The next scheduled sweeps do not run (armed for the function name `sweep`), as when the schedule's
    /// invocations fail: with a lost delivery, an ended execution's lock then stays on its alias (a stale
    /// lock).
    SkipSweep,
}

impl FaultKind {
    /// The faults an invocation of the function meets.
    const ON_INVOKE: [FaultKind; 5] =
        [FaultKind::Error, FaultKind::Throttle, FaultKind::TimeoutAfter, FaultKind::LostAfter, FaultKind::Delay];
}

#[derive(Debug, Deserialize)]
struct InvokeQuery {
    #[serde(rename = "Qualifier")]
    qualifier: Option<String>,
}

fn response(status: u16, headers: &[(&str, &str)], body: impl Into<Body>) -> Response<Body> {
    // AWS sends a request ID with every answer, and moto's Step Functions interpreter reads it from errors.
    let request_id = format!(
        "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
        fastrand::u32(..),
        fastrand::u16(..),
        fastrand::u16(..0x1000),
        fastrand::u16(..0x1000),
        fastrand::u64(..1 << 48)
    );
    let mut builder = Response::builder().status(status).header("x-amzn-RequestId", request_id);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(body.into()).expect("valid response")
}

fn lambda_error(status: u16, error_type: &str, message: &str) -> Response<Body> {
    let (status, kind, body) = invoke_error(status, error_type, message);
    response(status, &[("x-amzn-ErrorType", &kind), ("content-type", "application/json")], body)
}

async fn send(http: &HttpClient, request: Request<Full<Bytes>>) -> Result<(u16, HeaderMap, Bytes), String> {
    let response = http.request(request).await.map_err(|e| e.to_string())?;
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
    Ok((parts.status.as_u16(), parts.headers, bytes))
}

/// Passes any request to moto unchanged, and counts it.
async fn to_moto(State(app): State<Arc<AppState>>, request: Request<Body>) -> Response<Body> {
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

#[derive(Debug, Deserialize)]
struct VersionMark {
    function: String,
    version: String,
    state: String,
}

/// Marks a version `Pending`, `Inactive` or `Failed` (or `Active` again, which forgets the mark).
async fn set_version_state(State(app): State<Arc<AppState>>, axum::Json(mark): axum::Json<VersionMark>) -> StatusCode {
    if !["Active", "Pending", "Inactive", "Failed"].contains(&mark.state.as_str()) || !is_version(&mark.version) {
        return StatusCode::BAD_REQUEST;
    }
    eprintln!("version state: {}:{} is {}", mark.function, mark.version, mark.state);
    let key = (function_ref(&mark.function, None).0, mark.version);
    let mut states = app.version_states.lock().await;
    if mark.state == "Active" {
        states.remove(&key);
    } else {
        states.insert(key, mark.state);
    }
    StatusCode::NO_CONTENT
}

async fn clear_version_states(State(app): State<Arc<AppState>>) -> StatusCode {
    app.version_states.lock().await.clear();
    StatusCode::NO_CONTENT
}

/// The state a version read with `query` (`Qualifier=N`) was marked with, if any.
async fn marked_state(app: &AppState, function: &str, query: Option<&str>) -> Option<String> {
    let qualifier = query?.split('&').find_map(|pair| pair.strip_prefix("Qualifier="))?;
    let key = (function_ref(function, None).0, qualifier.to_string());
    app.version_states.lock().await.get(&key).cloned()
}

/// A configuration as moto answered it, with Lambda's `State` of a marked version.
fn with_state(body: &Bytes, state: &str) -> Bytes {
    let Ok(mut configuration) = serde_json::from_slice::<serde_json::Value>(body) else { return body.clone() };
    configuration["State"] = serde_json::json!(state);
    configuration["StateReason"] = serde_json::json!(format!("marked {state} by the local stack"));
    Bytes::from(configuration.to_string())
}

/// Lambda's rules for a weighted alias, which moto does not enforce: every version it routes to is
/// published (not `$LATEST`), and all share one execution role and one dead-letter configuration. An
/// `UpdateAlias` that breaks them is refused as Lambda refuses it.
async fn weighting_refused(app: &AppState, function: &str, uri: &Uri, body: &[u8]) -> Option<Response<Body>> {
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
async fn record_iam(app: &AppState, parts: &axum::http::request::Parts, target: Option<&str>, body: &[u8]) {
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

async fn list_iam_calls(State(app): State<Arc<AppState>>) -> axum::Json<Vec<(local_aws::iam::Call, u64)>> {
    axum::Json(app.iam_calls.lock().await.iter().map(|(c, n)| (c.clone(), *n)).collect())
}

async fn list_calls(State(app): State<Arc<AppState>>) -> axum::Json<Vec<CallCount>> {
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

async fn clear_calls(State(app): State<Arc<AppState>>) -> StatusCode {
    app.calls.lock().await.clear();
    StatusCode::NO_CONTENT
}

async fn set_fault(State(app): State<Arc<AppState>>, axum::Json(fault): axum::Json<Fault>) -> StatusCode {
    if fault.count == 0 {
        return StatusCode::BAD_REQUEST;
    }
    eprintln!("fault armed: {fault:?}");
    app.faults.lock().await.insert(fault.function.clone(), fault);
    StatusCode::NO_CONTENT
}

/// The faults still armed, by function: how many invocations each will still fail.
async fn list_faults(State(app): State<Arc<AppState>>) -> axum::Json<serde_json::Value> {
    let faults = app.faults.lock().await;
    axum::Json(faults.iter().map(|(function, fault)| (function.clone(), serde_json::json!(fault.count))).collect())
}

async fn clear_faults(State(app): State<Arc<AppState>>) -> StatusCode {
    app.faults.lock().await.clear();
    StatusCode::NO_CONTENT
}

/// Takes one use of the fault armed for `function`, when it is one of `kinds`.
async fn take_fault(app: &AppState, function: &str, kinds: &[FaultKind]) -> Option<Fault> {
    let mut faults = app.faults.lock().await;
    let fault = faults.get_mut(function).filter(|f| kinds.contains(&f.kind))?;
    fault.count -= 1;
    let taken = fault.clone();
    if fault.count == 0 {
        faults.remove(function);
    }
    Some(taken)
}

/// The base URL of the runner for one version environment, started on first use.
async fn runner(app: &AppState, environment: &BTreeMap<String, String>) -> Result<String, String> {
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

async fn invoke(
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
async fn run_invocation(app: &Arc<AppState>, function: &str, qualifier: Option<String>, body: Bytes) -> Response<Body> {
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
async fn pick(
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
async fn version_environment(
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
async fn run_code(
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
async fn publish(app: &AppState, function: &str, alias: &str, version: &str, failed: bool, duration_ms: f64) {
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

/// How often the EventBridge stand-in looks for executions that ended.
const WATCH_INTERVAL: Duration = Duration::from_millis(500);

/// Plays the template's EventBridge rule: each execution of any state machine that ends ABORTED, TIMED_OUT
/// or FAILED is delivered once to `function`, as an asynchronous invocation with the event EventBridge
/// sends ("Step Functions Execution Status Change"). Runs until the router stops.
async fn watch_executions(app: Arc<AppState>, sfn: aws_sdk_sfn::Client, function: String, account: String) {
    let mut delivered = std::collections::HashSet::new();
    loop {
        tokio::time::sleep(WATCH_INTERVAL).await;
        let Ok(machines) = sfn.list_state_machines().send().await else { continue };
        for machine in machines.state_machines() {
            let mut pages =
                sfn.list_executions().state_machine_arn(machine.state_machine_arn()).into_paginator().send();
            while let Some(Ok(page)) = pages.next().await {
                for execution in page.executions() {
                    let status = execution.status().as_str();
                    let arn = execution.execution_arn();
                    if !["ABORTED", "TIMED_OUT", "FAILED"].contains(&status) || !delivered.insert(arn.to_string()) {
                        continue;
                    }
                    let Ok(described) = sfn.describe_execution().execution_arn(arn).send().await else {
                        delivered.remove(arn);
                        continue;
                    };
                    let millis = |t: Option<&aws_sdk_sfn::primitives::DateTime>| t.and_then(|t| t.to_millis().ok());
                    let event = serde_json::json!({
                        "version": "0",
                        "id": format!("local-{}", fastrand::u64(..)),
                        "detail-type": "Step Functions Execution Status Change",
                        "source": "aws.states",
                        "account": account,
                        "time": chrono_free_now(),
                        "region": app.region,
                        "resources": [arn],
                        "detail": {
                            "executionArn": arn,
                            "stateMachineArn": machine.state_machine_arn(),
                            "name": execution.name(),
                            "status": status,
                            "startDate": millis(Some(described.start_date())),
                            "stopDate": millis(described.stop_date()),
                            "input": described.input(),
                            "output": described.output(),
                            "error": described.error(),
                            "cause": described.cause(),
                        }
                    });
                    if take_fault(&app, &function, &[FaultKind::DropDelivery]).await.is_some() {
                        eprintln!("execution {arn} ended {status}: its delivery to {function} is lost (injected)");
                        continue;
                    }
                    eprintln!("execution {arn} ended {status}: delivering it to {function}");
                    let (app, function) = (app.clone(), function.clone());
                    tokio::spawn(async move {
                        let answer = run_invocation(&app, &function, None, Bytes::from(event.to_string())).await;
                        let failed = answer.headers().contains_key("X-Amz-Function-Error");
                        let body = answer.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                        eprintln!("{function} answered (failed: {failed}): {}", String::from_utf8_lossy(&body));
                    });
                }
            }
        }
    }
}

/// Plays the template's scheduled rule of the safety net's sweep: every `every`, the safety net is invoked
/// asynchronously with `{"sweep": STATE_MACHINE_ARN}` for each state machine. Runs until the router stops.
async fn sweep_on_schedule(app: Arc<AppState>, sfn: aws_sdk_sfn::Client, function: String, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        let Ok(machines) = sfn.list_state_machines().send().await else { continue };
        // Armed under the name `sweep` (one fault per name: the safety net's own may be a lost delivery).
        if take_fault(&app, "sweep", &[FaultKind::SkipSweep]).await.is_some() {
            continue;
        }
        for machine in machines.state_machines() {
            let event = serde_json::json!({"sweep": machine.state_machine_arn()});
            let answer = run_invocation(&app, &function, None, Bytes::from(event.to_string())).await;
            let failed = answer.headers().contains_key("X-Amz-Function-Error");
            let body = answer.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
            let body = String::from_utf8_lossy(&body);
            // Quiet when there is nothing to report: it runs every few seconds.
            if failed || body.contains("\"action\"") {
                eprintln!("sweep of {}: (failed: {failed}) {body}", machine.state_machine_arn());
            }
        }
    }
}

/// Now, as EventBridge writes an event's time (`2026-11-29T10:00:00Z`).
fn chrono_free_now() -> String {
    aws_sdk_sfn::primitives::DateTime::from(std::time::SystemTime::now())
        .fmt(aws_sdk_sfn::primitives::DateTimeFormat::DateTime)
        .unwrap_or_default()
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    std::fs::create_dir_all(&args.state_dir)?;
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(&args.moto)
        .region(aws_config::Region::new(args.region.clone()))
        .load()
        .await;
    let lambda = aws_sdk_lambda::Client::new(&config);
    let app = Arc::new(AppState {
        moto: args.moto.trim_end_matches('/').to_string(),
        http: Client::builder(TokioExecutor::new()).build_http(),
        lambda,
        cloudwatch: aws_sdk_cloudwatch::Client::new(&config),
        runners: Mutex::new(HashMap::new()),
        faults: Mutex::new(HashMap::new()),
        calls: Mutex::new(BTreeMap::new()),
        iam_calls: Mutex::new(BTreeMap::new()),
        version_states: Mutex::new(BTreeMap::new()),
        account: args.account.clone(),
        state_dir: args.state_dir,
        router_url: format!("http://127.0.0.1:{}", args.port),
        region: args.region,
    });
    if let Some(function) = args.safety_net {
        let sfn = aws_sdk_sfn::Client::new(&config);
        if let Some(seconds) = args.sweep_every {
            tokio::spawn(sweep_on_schedule(app.clone(), sfn.clone(), function.clone(), Duration::from_secs(seconds)));
        }
        tokio::spawn(watch_executions(app.clone(), sfn, function, args.account));
    }
    let routes = Router::new()
        .route("/2015-03-31/functions/{function}/invocations", post(invoke))
        .route("/_local/faults", post(set_fault).get(list_faults).delete(clear_faults))
        .route("/_local/calls", axum::routing::get(list_calls).delete(clear_calls))
        .route("/_local/iam-calls", axum::routing::get(list_iam_calls))
        .route("/_local/version-state", post(set_version_state).delete(clear_version_states))
        .fallback(to_moto)
        .with_state(app);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port)).await?;
    eprintln!("router listening on 127.0.0.1:{}", args.port);
    axum::serve(listener, routes).await?;
    Ok(())
}
