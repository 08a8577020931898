//! End-to-end: the real state machine on moto's ASL interpreter, the real controller binaries under
//! `cargo lambda watch`, real traffic through the router. `cargo xtask test` brings the stack up and runs
//! these with `--run-ignored only`; they are ignored by plain `cargo test`, which has no stack.
//!
//! The tests are grouped by what they prove: [`rollouts`] (the loop, its faults and endings), [`health`]
//! (each health rule on real traffic and metrics), [`operators`] (canaryctl, the safety net, hooks, gates,
//! events), [`endings`] (never stranded: lost events, description edits, conflicts, races), [`stages`] (what
//! a stage may touch, versions that cannot serve). The stack's
//! helpers are here, shared by all.

mod endings;
mod health;
mod operators;
mod releases;
mod rollouts;
mod stages;

use aws_sdk_cloudwatch::types::{Dimension, MetricDatum};
use aws_sdk_lambda::Client as Lambda;
use aws_sdk_sfn::Client as Sfn;
use local_aws::fixtures::{Traffic, deploy_versions, sdk_config};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, Instant};

const NEEDS_STACK: &str = "needs the local AWS stack: run through cargo xtask test";

struct Stack {
    endpoint_url: String,
    state_machine_arn: String,
    config: aws_config::SdkConfig,
}

impl Stack {
    async fn get() -> Stack {
        let var = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: {NEEDS_STACK}"));
        let endpoint_url = var("CANARY_E2E_ENDPOINT_URL");
        // Faults a failed test armed and never triggered must not leak into the next test.
        assert_eq!(http(&endpoint_url, "DELETE", "/_local/faults", "").await.0, 204, "clearing faults");
        Stack {
            config: sdk_config(&endpoint_url).await,
            endpoint_url,
            state_machine_arn: var("CANARY_E2E_STATE_MACHINE_ARN"),
        }
    }
    fn lambda(&self) -> Lambda {
        Lambda::new(&self.config)
    }
    fn sfn(&self) -> Sfn {
        Sfn::new(&self.config)
    }

    /// Starts a rollout (named `name`, or a unique name) and returns its execution ARN.
    async fn start(&self, input: &Value, name: Option<&str>) -> String {
        let name = name.map_or_else(|| format!("e2e-{}", unique()), str::to_string);
        let sfn = self.sfn();
        let started =
            sfn.start_execution().state_machine_arn(&self.state_machine_arn).name(name).input(input.to_string());
        started.send().await.expect("start").execution_arn().to_string()
    }

    /// Starts a rollout and waits for its end: (status, error, output or cause as JSON).
    async fn rollout(&self, input: Value) -> (String, Option<String>, Value) {
        let arn = self.start(&input, None).await;
        self.wait(&arn).await
    }

    /// Waits until a rollout of `function` has made its first shift (the alias shares traffic).
    async fn first_shift(&self, function: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.alias(function).await.1.is_empty() {
            assert!(Instant::now() < deadline, "the first shift never happened");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn wait(&self, arn: &str) -> (String, Option<String>, Value) {
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            let out = self.sfn().describe_execution().execution_arn(arn).send().await.expect("describe");
            let status = out.status().as_str().to_string();
            if status != "RUNNING" {
                let text = out.output().or(out.cause()).unwrap_or("null");
                let body = serde_json::from_str(text).unwrap_or_else(|_| json!(text));
                return (status, out.error().map(str::to_string), body);
            }
            assert!(Instant::now() < deadline, "{arn} still running after 180 s");
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// The alias's routing: (version, extra weights).
    async fn alias(&self, function: &str) -> (String, HashMap<String, f64>) {
        let out = self.lambda().get_alias().function_name(function).name("live").send().await.expect("alias");
        let weights = out.routing_config().and_then(|r| r.additional_version_weights()).cloned().unwrap_or_default();
        (out.function_version().unwrap_or_default().to_string(), weights)
    }

    /// The alias's description: a rollout's lock while it runs, the alias's own before and after.
    /// What a person does in the console mid-rollout: point `live` at `version` alone, whatever the rollout
    /// wrote last (no revision given).
    async fn point_by_hand(&self, function: &str, version: &str) {
        let routing = aws_sdk_lambda::types::AliasRoutingConfiguration::builder()
            .set_additional_version_weights(Some(HashMap::new()))
            .build();
        let change = self.lambda().update_alias().function_name(function).name("live").function_version(version);
        change.routing_config(routing).send().await.expect("the person's change is written");
    }

    async fn description(&self, function: &str) -> String {
        let out = self.lambda().get_alias().function_name(function).name("live").send().await.expect("alias");
        out.description().unwrap_or_default().to_string()
    }

    /// Asserts the alias routes exactly as before the rollout (all to version 1) and is no longer held,
    /// waiting up to `seconds` for whoever restores it (the safety net runs asynchronously).
    async fn assert_restored(&self, function: &str, seconds: u64) {
        let deadline = Instant::now() + Duration::from_secs(seconds);
        loop {
            let (routing, description) = (self.alias(function).await, self.description(function).await);
            let restored = routing == ("1".into(), HashMap::new());
            let released = !description.starts_with(canary_core::lock::PREFIX);
            if restored && released {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{function}:live is not restored after {seconds} s: {routing:?}, description {description:?}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    async fn fault(&self, function: &str, kind: &str, count: u32) {
        self.fault_for(function, kind, count, 0).await;
    }

    async fn fault_for(&self, function: &str, kind: &str, count: u32, seconds: u64) {
        let body = json!({"function": function, "kind": kind, "count": count, "seconds": seconds}).to_string();
        let (status, _) = http(&self.endpoint_url, "POST", "/_local/faults", &body).await;
        assert_eq!(status, 204, "arming a fault");
    }

    /// Stops an execution as the console's Stop button does.
    async fn stop(&self, arn: &str) {
        self.sfn().stop_execution().execution_arn(arn).cause("stopped from the console").send().await.unwrap();
    }
}

/// A request to the router's own API (`/_local/...`): its status and body.
async fn http(base: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    local_aws::control::request(base, method, path, body).await.expect("the router answers")
}

fn unique() -> String {
    format!("{}-{}", chrono::Utc::now().format("%H%M%S%3f"), fastrand::u32(..))
}

/// A sample service with `versions` published and alias `live` at version 1; returns its name.
async fn service(stack: &Stack, versions: &[&[(&str, &str)]]) -> String {
    let name = format!("sample-service-staging-e2e-{}", unique());
    deploy_versions(&stack.lambda(), &name, "sample-service", "live", versions).await.expect("deploy");
    name
}

fn request(function: &str, version: &str, health: Value) -> Value {
    json!({"function": function, "alias": "live", "version": version,
           "strategy": {"linear": {"percent": 50, "interval_seconds": 2}}, "health": health})
}

fn quick_health() -> Value {
    // A 5% limit needs 153 invocations of the new version before the promotion: the last step waits for them.
    json!({"metrics_delay_seconds": 1, "min_invocations": 5, "max_error_rate": 0.05, "no_data_max_wait_seconds": 30})
}

fn traffic(stack: &Stack, function: &str) -> Traffic {
    Traffic::start(stack.lambda(), function, "live", Duration::from_millis(30), 5_000, Duration::from_secs(120))
}

/// Publishes the new version's invocations and errors straight to CloudWatch, as Lambda would.
async fn publish_errors(stack: &Stack, function: &str, version: &str, invocations: f64, errors: f64) {
    let dimensions = [
        ("FunctionName", function.to_string()),
        ("Resource", format!("{function}:live")),
        ("ExecutedVersion", version.into()),
    ]
    .map(|(n, v)| Dimension::builder().name(n).value(v).build());
    let datum = |name: &str, value: f64| {
        MetricDatum::builder()
            .metric_name(name)
            .set_dimensions(Some(dimensions.to_vec()))
            .timestamp(aws_sdk_cloudwatch::primitives::DateTime::from(std::time::SystemTime::now()))
            .value(value)
            .build()
    };
    aws_sdk_cloudwatch::Client::new(&stack.config)
        .put_metric_data()
        .namespace("AWS/Lambda")
        .metric_data(datum("Invocations", invocations))
        .metric_data(datum("Errors", errors))
        .send()
        .await
        .expect("put metrics");
}

fn canaryctl(stack: &Stack, function: &str, version: &str, extra: &[&str]) -> (i32, Value) {
    let binary = concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/debug/canaryctl");
    let output = Command::new(binary)
        .args([
            "start",
            "--function",
            function,
            "--alias",
            "live",
            "--version",
            version,
            "--linear",
            "50",
            "--interval",
            "2",
        ])
        .args(["--wait", "--poll-seconds", "1", "--output", "json"])
        // Health flags contradict --no-health-check, which canaryctl refuses.
        .args(if extra.contains(&"--no-health-check") {
            &[][..]
        } else {
            &["--min-invocations", "10", "--metrics-delay", "1"][..]
        })
        .args(["--endpoint-url", &stack.endpoint_url, "--state-machine-arn", &stack.state_machine_arn])
        .args(extra)
        // The principal whose calls the suite checks against deploy/canaryctl-policy.json.
        .env("AWS_ACCESS_KEY_ID", "canaryctl")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .output()
        .expect("canaryctl (built by cargo xtask local up)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    holds_to_the_output_schema(&["start", "--wait", "--output", "json"], &stdout);
    // A refusal prints no JSON result, only its reasons on stderr.
    let value = serde_json::from_str(&stdout).unwrap_or_else(|_| json!({"stdout": stdout, "stderr": stderr}));
    (output.status.code().unwrap_or(-1), value)
}

fn clone_stack(stack: &Stack) -> Stack {
    Stack {
        endpoint_url: stack.endpoint_url.clone(),
        state_machine_arn: stack.state_machine_arn.clone(),
        config: stack.config.clone(),
    }
}

fn linear(function: &str, version: &str, health: Value) -> Value {
    json!({"function": function, "alias": "live", "version": version,
           "strategy": {"linear": {"percent": 50, "interval_seconds": 3}}, "health": health})
}

/// The AWS calls the router passed to moto since the last reset, by operation, for `function` (Lambda's
/// alias calls name it) or for no function (the other services).
async fn calls(stack: &Stack, function: &str) -> HashMap<String, u64> {
    let rows = local_aws::control::calls(&stack.endpoint_url).await.expect("the router's call counts");
    rows.into_iter()
        .filter(|r| r.function == function || r.function.is_empty())
        .map(|r| (r.operation, r.count))
        .collect()
}

/// canaryctl with any arguments against the stack: (exit code, stdout, stderr).
fn canaryctl_raw(stack: &Stack, args: &[&str]) -> (i32, String, String) {
    let binary = concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/debug/canaryctl");
    let output = Command::new(binary)
        .args(args)
        .args(["--endpoint-url", &stack.endpoint_url])
        .env("CANARY_STATE_MACHINE_ARN", &stack.state_machine_arn)
        // The principal whose calls the suite checks against deploy/canaryctl-policy.json.
        .env("AWS_ACCESS_KEY_ID", "canaryctl")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .output()
        .expect("canaryctl (built by cargo xtask local up)");
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    holds_to_the_output_schema(args, &text(&output.stdout));
    (output.status.code().unwrap_or(-1), text(&output.stdout), text(&output.stderr))
}

/// Fails unless what canaryctl printed with `--output json` is valid under its command's definition in the
/// published docs/canaryctl-output.schema.json (`x-commands` names it; `watch` prints one a line).
fn holds_to_the_output_schema(args: &[&str], stdout: &str) {
    let json = args.windows(2).any(|w| matches!(w[0], "--output" | "-o") && w[1] == "json");
    if !json || stdout.trim().is_empty() {
        return;
    }
    let waits = args.contains(&"--wait");
    let command = match args[0] {
        verb @ ("start" | "undo" | "retry") if waits => format!("{verb} --wait"),
        verb => verb.to_string(),
    };
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/canaryctl-output.schema.json");
    let mut schema: Value = serde_json::from_str(&std::fs::read_to_string(path).expect("the output schema")).unwrap();
    let definition = schema["x-commands"][&command].clone();
    assert!(definition.is_string(), "docs/canaryctl-output.schema.json names no output of `{command}`");
    let root = schema.as_object_mut().unwrap();
    root.remove("anyOf");
    root.insert("$ref".into(), definition);
    let validator = jsonschema::validator_for(&schema).expect("the output schema compiles");
    let documents: Vec<&str> = if command == "watch" { stdout.lines().collect() } else { vec![stdout.trim()] };
    for document in documents {
        let value: Value = serde_json::from_str(document)
            .unwrap_or_else(|e| panic!("`canaryctl {command} --output json` printed no JSON ({e}): {document}"));
        let errors: Vec<String> =
            validator.iter_errors(&value).map(|e| format!("{} at {}", e, e.instance_path())).collect();
        assert!(errors.is_empty(), "`canaryctl {command} --output json` breaks its schema: {errors:?}\n{document}");
    }
}
