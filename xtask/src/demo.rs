//! `cargo xtask demo`: on the local stack, a healthy version rolled out to 100%, then a faulty one that the
//! controller rolls back on its own, then a release of the API and its worker in which a bad worker rolls
//! the API back too, with the timeline `canaryctl` prints.

use crate::local::{self, Stack, fake_credentials};
use crate::tools::root;
use local_aws::fixtures::{Traffic, TrafficCounts, deploy_versions};
use std::process::Command;
use std::time::Duration;

const FUNCTION: &str = "sample-service-staging-demo";
const WORKER: &str = "sample-service-staging-demo-worker";
const ALIAS: &str = "live";

pub async fn run(keep: bool) -> Result<(), String> {
    let stack = local::up().await?;
    let result = demo(&stack).await;
    if keep {
        println!("\n{}", stack.describe());
    } else {
        local::down()?;
    }
    result
}

/// `canaryctl start` of `functions` (each `--function` value: a name, or NAME:VERSION in a release) with
/// the demo's policy, followed to its end; its exit code.
fn canaryctl(stack: &Stack, functions: &[&str], version: Option<&str>) -> Result<i32, String> {
    let named: Vec<String> = functions.iter().map(|f| format!("--function {f}")).collect();
    let version_flag = version.map(|v| format!(" --version {v}")).unwrap_or_default();
    println!(
        "\n$ canaryctl start {} --alias {ALIAS}{version_flag} --linear 25 --interval 5 --wait ...",
        named.join(" ")
    );
    let mut canaryctl = Command::new(root().join("target/debug/canaryctl"));
    let command = fake_credentials(&mut canaryctl);
    command.arg("start");
    for function in functions {
        command.args(["--function", function]);
    }
    command.args(["--alias", ALIAS]);
    if let Some(version) = version {
        command.args(["--version", version]);
    }
    let status = command
        .args(["--linear", "25", "--interval", "5", "--max-error-rate", "0.02", "--min-invocations", "10"])
        // Locally, metrics arrive at once; in AWS keep the default of 120 s.
        .args(["--metrics-delay", "1", "--wait", "--poll-seconds", "1"])
        // Each run deploys the service afresh, so an earlier run's verdict on "version 3" of the same name
        // on a kept stack is about another function: not a reason to refuse.
        .arg("--retry-rejected")
        .args(["--state-machine-arn", &stack.state_machine_arn, "--endpoint-url", &stack.endpoint_url])
        .status()
        .map_err(|e| format!("cannot run canaryctl: {e}"))?;
    Ok(status.code().unwrap_or(-1))
}

/// The version an alias routes all of its traffic to, and how many extra versions it weights.
async fn routes(lambda: &aws_sdk_lambda::Client, function: &str) -> Result<(String, usize), String> {
    let alias = lambda.get_alias().function_name(function).name(ALIAS).send().await.map_err(|e| e.to_string())?;
    let weights = alias.routing_config().and_then(|r| r.additional_version_weights()).map_or(0, |w| w.len());
    Ok((alias.function_version().unwrap_or("?").to_string(), weights))
}

fn show(counts: &TrafficCounts) {
    for (version, (invocations, errors)) in counts {
        println!("  version {version}: {invocations} invocations, {errors} errors");
    }
}

async fn demo(stack: &Stack) -> Result<(), String> {
    let lambda = aws_sdk_lambda::Client::new(&stack.sdk_config().await);
    // A fresh service every run, so the demo always starts from version 1.
    let _ = lambda.delete_function().function_name(FUNCTION).send().await;
    let _ = lambda.delete_function().function_name(WORKER).send().await;
    let bad = [("FAULT_ERROR_RATE", "0.3")];
    let versions = deploy_versions(&lambda, FUNCTION, "sample-service", ALIAS, &[&[], &[], &bad, &[]]).await?;
    let workers = deploy_versions(&lambda, WORKER, "sample-worker", ALIAS, &[&[], &bad]).await?;
    println!(
        "\nDeployed {FUNCTION} versions {versions:?}; version 3 fails 30% of its invocations. Alias {ALIAS} -> 1."
    );
    println!("Deployed its order worker {WORKER} versions {workers:?}; version 2 fails 30%. Alias {ALIAS} -> 1.");
    let traffic =
        Traffic::start(lambda.clone(), FUNCTION, ALIAS, Duration::from_millis(40), 20_000, Duration::from_secs(600));
    let order = serde_json::json!({"order_id": "ord-0000abcd", "quantity": 2});
    let orders = Traffic::start_with(
        lambda.clone(),
        WORKER,
        ALIAS,
        order,
        Duration::from_millis(40),
        20_000,
        Duration::from_secs(600),
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    println!("Traffic is flowing at {FUNCTION}:{ALIAS} and {WORKER}:{ALIAS} (about 20 requests a second each).");

    println!("\n== Rollout 1: version 1 -> 2, healthy: expect promotion");
    let promoted = canaryctl(stack, &[FUNCTION], Some("2"))?;
    println!("\n== Rollout 2: version 2 -> 3, faulty: expect the controller to roll back on its own");
    let rolled_back = canaryctl(stack, &[FUNCTION], Some("3"))?;
    println!(
        "\n== Rollout 3: a release of the API (2 -> 4, healthy) and its worker (1 -> 2, faulty), moved together: \
         expect the worker's failure to roll the API back too"
    );
    let (api_v4, worker_v2) = (format!("{FUNCTION}:4"), format!("{WORKER}:2"));
    let release = canaryctl(stack, &[&api_v4, &worker_v2], None)?;
    let counts = traffic.stop().await;
    let order_counts = orders.stop().await;
    println!("\nTraffic seen by the callers, by the version that served it:");
    println!("  {FUNCTION}:");
    show(&counts);
    println!("  {WORKER}:");
    show(&order_counts);

    println!("\n$ canaryctl history {FUNCTION} {ALIAS} --max 2");
    fake_credentials(&mut Command::new(root().join("target/debug/canaryctl")))
        .args(["history", FUNCTION, ALIAS, "--max", "2"])
        .args(["--state-machine-arn", &stack.state_machine_arn, "--endpoint-url", &stack.endpoint_url])
        .status()
        .map_err(|e| format!("cannot run canaryctl: {e}"))?;
    let (api, worker) = (routes(&lambda, FUNCTION).await?, routes(&lambda, WORKER).await?);
    println!("\nAlias {ALIAS} of {FUNCTION} now routes 100% to version {} ({} extra versions).", api.0, api.1);
    println!("Alias {ALIAS} of {WORKER} now routes 100% to version {} ({} extra versions).", worker.0, worker.1);
    let api = (api.0.as_str(), api.1);
    let worker = (worker.0.as_str(), worker.1);
    match (promoted, rolled_back, release, api, worker) {
        (0, 1, 1, ("2", 0), ("1", 0)) => {
            println!(
                "Demo passed: version 2 promoted, version 3 rolled back, and the release rolled back together: \
                 both aliases restored exactly."
            );
            Ok(())
        }
        other => Err(format!(
            "demo did not go as expected: (exits of rollouts 1, 2 and 3, the API's alias, the worker's alias) = \
             {other:?}"
        )),
    }
}
