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
use axum::http::{HeaderMap, Request, Response};
use axum::routing::post;
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use local_aws::invoke_error;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;

mod router;
use router::*;

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
