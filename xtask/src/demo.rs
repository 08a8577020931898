//! `cargo xtask demo`: on the local stack, a healthy version rolled out to 100%, then a faulty one that the
//! controller rolls back on its own, with the timeline `canaryctl` prints.

use crate::local::{self, Stack, fake_credentials};
use crate::tools::root;
use local_aws::fixtures::{Traffic, TrafficCounts, deploy_versions};
use std::process::Command;
use std::time::Duration;

const FUNCTION: &str = "sample-service-local";
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

fn canaryctl(stack: &Stack, version: &str) -> Result<i32, String> {
    println!(
        "\n$ canaryctl start --function {FUNCTION} --alias {ALIAS} --version {version} --linear 25 --interval 5 --wait ..."
    );
    let status = fake_credentials(&mut Command::new(root().join("target/debug/canaryctl")))
        .args(["start", "--function", FUNCTION, "--alias", ALIAS, "--version", version])
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

fn show(counts: &TrafficCounts) {
    for (version, (invocations, errors)) in counts {
        println!("  version {version}: {invocations} invocations, {errors} errors");
    }
}

async fn demo(stack: &Stack) -> Result<(), String> {
    let lambda = aws_sdk_lambda::Client::new(&stack.sdk_config().await);
    // A fresh service every run, so the demo always starts from version 1.
    let _ = lambda.delete_function().function_name(FUNCTION).send().await;
    let versions =
        deploy_versions(&lambda, FUNCTION, "sample-service", ALIAS, &[&[], &[], &[("FAULT_ERROR_RATE", "0.3")]])
            .await?;
    println!(
        "\nDeployed {FUNCTION} versions {versions:?}; version 3 fails 30% of its invocations. Alias {ALIAS} -> 1."
    );
    let traffic =
        Traffic::start(lambda.clone(), FUNCTION, ALIAS, Duration::from_millis(40), 20_000, Duration::from_secs(600));
    tokio::time::sleep(Duration::from_secs(3)).await;
    println!("Traffic is flowing at {FUNCTION}:{ALIAS} (about 20 requests a second).");

    println!("\n== Rollout 1: version 1 -> 2, healthy: expect promotion");
    let promoted = canaryctl(stack, "2")?;
    println!("\n== Rollout 2: version 2 -> 3, faulty: expect the controller to roll back on its own");
    let rolled_back = canaryctl(stack, "3")?;
    let counts = traffic.stop().await;
    println!("\nTraffic seen by the callers, by the version that served it:");
    show(&counts);

    println!("\n$ canaryctl history {FUNCTION} {ALIAS} --max 2");
    fake_credentials(&mut Command::new(root().join("target/debug/canaryctl")))
        .args(["history", FUNCTION, ALIAS, "--max", "2"])
        .args(["--state-machine-arn", &stack.state_machine_arn, "--endpoint-url", &stack.endpoint_url])
        .status()
        .map_err(|e| format!("cannot run canaryctl: {e}"))?;
    let alias = lambda.get_alias().function_name(FUNCTION).name(ALIAS).send().await.map_err(|e| e.to_string())?;
    let weights = alias.routing_config().and_then(|r| r.additional_version_weights()).map_or(0, |w| w.len());
    println!(
        "\nAlias {ALIAS} now routes 100% to version {} ({weights} extra versions).",
        alias.function_version().unwrap_or("?")
    );
    match (promoted, rolled_back, alias.function_version(), weights) {
        (0, 1, Some("2"), 0) => {
            println!("Demo passed: version 2 promoted, version 3 rolled back, alias restored exactly.");
            Ok(())
        }
        other => Err(format!(
            "demo did not go as expected: (exit of rollout 1, exit of rollout 2, alias version, extra weights) = {other:?}"
        )),
    }
}
