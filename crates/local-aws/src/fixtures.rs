//! Fixtures on the local stack, shared by `cargo xtask demo` and the end-to-end tests: functions with
//! published versions, and traffic at an alias.

use aws_sdk_lambda::Client;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{Environment, FunctionCode, Runtime};
use sample_service::Method;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

pub const REGION: &str = "us-east-1";
pub const ACCOUNT: &str = "123456789012";
/// The role `cargo xtask local up` creates for the services the demo and the tests deploy (the
/// controller's functions have the template's own roles).
pub const ROLE_NAME: &str = "local-services";
/// A second role, for a version Lambda may not weight together with one running as [`ROLE_NAME`].
pub const OTHER_ROLE_NAME: &str = "local-services-other";
/// An empty zip: moto stores code without running it; the router runs the workspace's binaries instead.
pub const EMPTY_ZIP: &[u8] = b"PK\x05\x06\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0";

pub fn role_arn() -> String {
    format!("arn:aws:iam::{ACCOUNT}:role/{ROLE_NAME}")
}

/// An SDK configuration for the local stack, with fake credentials.
pub async fn sdk_config(endpoint_url: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint_url)
        .region(aws_config::Region::new(REGION))
        .credentials_provider(aws_sdk_lambda::config::Credentials::new("testing", "testing", None, None, "local"))
        .load()
        .await
}

fn environment(binary: &str, variables: &[(&str, &str)]) -> Environment {
    let mut all: std::collections::HashMap<String, String> =
        variables.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    all.insert("LOCAL_BINARY".into(), binary.into());
    Environment::builder().set_variables(Some(all)).build()
}

/// Creates `name` running the workspace binary `binary` with `variables` in its environment (no versions).
pub async fn deploy_function(
    lambda: &Client,
    name: &str,
    binary: &str,
    variables: &[(&str, &str)],
) -> Result<(), String> {
    lambda
        .create_function()
        .function_name(name)
        .runtime(Runtime::Providedal2023)
        .handler("bootstrap")
        .role(role_arn())
        .timeout(30)
        .environment(environment(binary, variables))
        .code(FunctionCode::builder().zip_file(Blob::new(EMPTY_ZIP)).build())
        .send()
        .await
        .map_err(|e| format!("creating {name}: {}", aws_sdk_lambda::error::DisplayErrorContext(e)))?;
    Ok(())
}

/// Creates `name` running the workspace binary `binary`, publishes one version per environment given
/// (in order, so the first is version 1), and points `alias` at the first. Returns the version numbers.
pub async fn deploy_versions(
    lambda: &Client,
    name: &str,
    binary: &str,
    alias: &str,
    versions: &[&[(&str, &str)]],
) -> Result<Vec<String>, String> {
    let error = |what: &str, e: &dyn std::fmt::Display| format!("{what} {name}: {e}");
    deploy_function(lambda, name, binary, &[]).await?;
    let mut published = Vec::new();
    for (i, variables) in versions.iter().enumerate() {
        // Each version gets a distinct environment (RELEASE at least), which also makes PublishVersion
        // create a new version rather than return the last one.
        let mut variables = variables.to_vec();
        let release = (i + 1).to_string();
        variables.push(("RELEASE", &release));
        lambda
            .update_function_configuration()
            .function_name(name)
            .environment(environment(binary, &variables))
            .send()
            .await
            .map_err(|e| error("configuring", &aws_sdk_lambda::error::DisplayErrorContext(e)))?;
        let out = lambda
            .publish_version()
            .function_name(name)
            .send()
            .await
            .map_err(|e| error("publishing", &aws_sdk_lambda::error::DisplayErrorContext(e)))?;
        published.push(out.version().unwrap_or_default().to_string());
    }
    lambda
        .create_alias()
        .function_name(name)
        .name(alias)
        .function_version(&published[0])
        .send()
        .await
        .map_err(|e| error("creating the alias of", &aws_sdk_lambda::error::DisplayErrorContext(e)))?;
    Ok(published)
}

/// What the traffic saw, per executed version: (invocations, function errors).
pub type TrafficCounts = BTreeMap<String, (u64, u64)>;

/// Steady traffic at `function:alias` through Lambda's Invoke API, until stopped or bounded out.
pub struct Traffic {
    stop: Arc<AtomicBool>,
    counts: Arc<Mutex<TrafficCounts>>,
    task: tokio::task::JoinHandle<()>,
}

impl Traffic {
    /// Starts invoking every `pause`, at most `max_requests` times and for at most `max_duration`, with the
    /// API's request for an order.
    pub fn start(
        lambda: Client,
        function: &str,
        alias: &str,
        pause: Duration,
        max_requests: u64,
        max_duration: Duration,
    ) -> Traffic {
        let event = sample_service::api_gateway_event(Method::GET, "/orders/ord-0000abcd", "prod", ACCOUNT);
        let event = serde_json::to_value(&event).expect("an event serializes");
        Traffic::start_with(lambda, function, alias, event, pause, max_requests, max_duration)
    }

    /// As [`Traffic::start`], invoking with `event` (an order for the worker, say).
    pub fn start_with(
        lambda: Client,
        function: &str,
        alias: &str,
        event: serde_json::Value,
        pause: Duration,
        max_requests: u64,
        max_duration: Duration,
    ) -> Traffic {
        let stop = Arc::new(AtomicBool::new(false));
        let counts = Arc::new(Mutex::new(TrafficCounts::new()));
        let (function, alias) = (function.to_string(), alias.to_string());
        let payload = Blob::new(serde_json::to_vec(&event).expect("an event serializes"));
        let task = tokio::spawn({
            let (stop, counts) = (stop.clone(), counts.clone());
            async move {
                let deadline = Instant::now() + max_duration;
                for _ in 0..max_requests {
                    if stop.load(Ordering::Relaxed) || Instant::now() > deadline {
                        break;
                    }
                    let out = lambda
                        .invoke()
                        .function_name(&function)
                        .qualifier(&alias)
                        .payload(payload.clone())
                        .send()
                        .await;
                    if let Ok(out) = out {
                        let version = out.executed_version().unwrap_or("?").to_string();
                        let failed = out.function_error().is_some() as u64;
                        let mut counts = counts.lock().await;
                        let entry = counts.entry(version).or_default();
                        entry.0 += 1;
                        entry.1 += failed;
                    }
                    tokio::time::sleep(pause).await;
                }
            }
        });
        Traffic { stop, counts, task }
    }

    pub async fn counts(&self) -> TrafficCounts {
        self.counts.lock().await.clone()
    }

    /// Stops the traffic and returns what it saw.
    pub async fn stop(self) -> TrafficCounts {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.task.await;
        self.counts.lock().await.clone()
    }
}
