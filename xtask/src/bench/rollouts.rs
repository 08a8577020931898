//! `cargo xtask bench rollouts`: what a rollout costs on the local stack, and how many the emulator carries.
//!
//! Three tables, each from real executions of the state machine on moto with the real controller binaries:
//! 1. the AWS calls (counted by the router), transitions and history events of a rollout with one judged
//!    step and of one with four, their difference per judged step, and wall time against the planned holds;
//! 2. the calls one rollout's `Prepare` makes while 0, 10 and 50 other rollouts hold their traffic;
//! 3. N rollouts started together, for growing N, until one does not end promoted or a round runs out of
//!    time: how many the emulator carries on this machine.
//!
//! It reports and never fails on a figure; it fails only when the stack cannot run at all.

use crate::local::{self, Stack};
use crate::tools::step;
use aws_sdk_sfn::types::HistoryEventType;
use local_aws::control;
use local_aws::fixtures::deploy_versions;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Rounds of the concurrency table; it stops at the first round that is not all promoted in time.
const CONCURRENT: [usize; 4] = [10, 50, 100, 200];
/// With `CANARY_BENCH_QUICK` set (the suite runs it so, to prove the command works): the smallest round of
/// each table only.
fn quick() -> bool {
    std::env::var_os("CANARY_BENCH_QUICK").is_some()
}
/// How long one round of the concurrency table may take, from the first start to the last end.
const ROUND_DEADLINE: Duration = Duration::from_secs(240);
/// The other rollouts running while `Prepare` is counted.
const RUNNING: [usize; 3] = [0, 10, 50];

pub async fn rollouts() -> Result<(), String> {
    let stack = local::up().await?;
    let result = bench(&stack).await;
    local::down()?;
    result
}

async fn bench(stack: &Stack) -> Result<(), String> {
    let config = stack.sdk_config().await;
    let (lambda, sfn) = (aws_sdk_lambda::Client::new(&config), aws_sdk_sfn::Client::new(&config));
    let uncounted = aws_sdk_sfn::Client::new(&local_aws::fixtures::sdk_config(&stack.moto_url).await);
    let bench = Bench { stack, lambda, sfn, uncounted };
    bench.cost_per_step().await?;
    bench.prepare_against_running().await?;
    bench.concurrent().await
}

struct Bench<'a> {
    stack: &'a Stack,
    lambda: aws_sdk_lambda::Client,
    /// Step Functions through the router (counted) and straight to moto (the bench's polling, uncounted).
    sfn: aws_sdk_sfn::Client,
    uncounted: aws_sdk_sfn::Client,
}

/// One rollout's figures.
struct Cost {
    calls: BTreeMap<String, u64>,
    events: usize,
    transitions: usize,
    wall: Duration,
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}-{}", chrono::Utc::now().format("%H%M%S%3f"), fastrand::u32(..))
}

/// A linear rollout of version 2 in steps of `percent`, each held `interval` seconds.
fn linear(function: &str, percent: u32, interval: u32, health: Value) -> Value {
    json!({"function": function, "alias": "live", "version": "2",
           "strategy": {"linear": {"percent": percent, "interval_seconds": interval}}, "health": health})
}

impl Bench<'_> {
    async fn service(&self) -> Result<String, String> {
        Ok(self.services(1).await?.remove(0))
    }

    /// `count` services, deployed ten at a time.
    async fn services(&self, count: usize) -> Result<Vec<String>, String> {
        let mut names = Vec::new();
        while names.len() < count {
            let mut batch = tokio::task::JoinSet::new();
            for _ in 0..(count - names.len()).min(10) {
                let (lambda, name) = (self.lambda.clone(), unique("sample-service-staging-bench"));
                batch.spawn(async move {
                    deploy_versions(&lambda, &name, "sample-service", "live", &[&[], &[]]).await.map(|_| name)
                });
            }
            while let Some(done) = batch.join_next().await {
                names.push(done.map_err(|e| e.to_string())??);
            }
        }
        Ok(names)
    }

    async fn start(&self, input: &Value) -> Result<String, String> {
        let out = self
            .sfn
            .start_execution()
            .state_machine_arn(&self.stack.state_machine_arn)
            .name(unique("sample-service-staging-bench"))
            .input(input.to_string())
            .send()
            .await
            .map_err(|e| format!("starting a rollout: {}", aws_sdk_sfn::error::DisplayErrorContext(e)))?;
        Ok(out.execution_arn().to_string())
    }

    /// Waits for the execution's end, up to `deadline`; its status then, or "RUNNING".
    async fn end(&self, arn: &str, deadline: Instant) -> Result<String, String> {
        loop {
            let out = self.uncounted.describe_execution().execution_arn(arn).send().await;
            let status = out.map_err(|e| format!("describing {arn}: {e}"))?.status().as_str().to_string();
            if status != "RUNNING" || Instant::now() > deadline {
                return Ok(status);
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Runs one rollout to its end, counting its calls, events and transitions.
    async fn cost(&self, input: Value) -> Result<Cost, String> {
        let function = input["function"].as_str().unwrap_or_default().to_string();
        control::clear_calls(&self.stack.endpoint_url).await?;
        let started = Instant::now();
        let arn = self.start(&input).await?;
        let status = self.end(&arn, Instant::now() + Duration::from_secs(120)).await?;
        let wall = started.elapsed();
        if status != "SUCCEEDED" {
            return Err(format!("the measured rollout {arn} ended {status}"));
        }
        let calls = control::calls(&self.stack.endpoint_url)
            .await?
            .into_iter()
            .filter(|c| c.function == function || c.function.is_empty())
            .map(|c| (c.operation, c.count))
            .collect();
        let events = self
            .uncounted
            .get_execution_history()
            .execution_arn(&arn)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| format!("reading {arn}'s history: {e}"))?;
        let entered = |t: &HistoryEventType| t.as_str().ends_with("StateEntered");
        let transitions = events.iter().filter(|e| entered(e.r#type())).count();
        Ok(Cost { calls, events: events.len(), transitions, wall })
    }

    async fn cost_per_step(&self) -> Result<(), String> {
        step("1. one rollout with 1 judged step, one with 4 (no traffic; health judged with no_data: pass)");
        let health = json!({"metrics_delay_seconds": 0, "no_data": "pass"});
        let interval = 2;
        // The first invocations of each controller function start its runner: not a rollout's cost.
        self.cost(linear(&self.service().await?, 50, 1, health.clone())).await?;
        let one = self.cost(linear(&self.service().await?, 50, interval, health.clone())).await?;
        let four = self.cost(linear(&self.service().await?, 20, interval, health)).await?;
        let operations: Vec<&String> =
            one.calls.keys().chain(four.calls.keys()).collect::<std::collections::BTreeSet<_>>().into_iter().collect();
        println!("\n| figure | 1 judged step (50%) | 4 judged steps (20%) | per judged step |");
        println!("|---|---:|---:|---:|");
        let row = |name: &str, a: f64, b: f64| println!("| {name} | {a} | {b} | {} |", (b - a) / 3.0);
        for operation in operations {
            let count = |cost: &Cost| cost.calls.get(operation).copied().unwrap_or(0) as f64;
            row(&format!("`{operation}`"), count(&one), count(&four));
        }
        row("state transitions", one.transitions as f64, four.transitions as f64);
        row("history events", one.events as f64, four.events as f64);
        for (name, cost, judged) in [("1 judged step", &one, 1), ("4 judged steps", &four, 4)] {
            let planned = f64::from(interval) * f64::from(judged);
            let wall = cost.wall.as_secs_f64();
            println!(
                "\n{name}: {wall:.1} s from start to end against {planned:.0} s of planned holds ({:.1} s of overhead)",
                wall - planned
            );
        }
        println!("(`StartExecution` is the caller's; the bench polls moto directly, uncounted.)");
        Ok(())
    }

    async fn prepare_against_running(&self) -> Result<(), String> {
        step("2. Prepare's calls while other rollouts hold their traffic");
        println!(
            "\n| other rollouts running | calls until the measured rollout ended | of which DescribeExecution | ListExecutions |"
        );
        println!("|---:|---:|---:|---:|");
        let mut held = 0;
        for &running in if quick() { &RUNNING[..2] } else { &RUNNING[..] } {
            let functions = self.services(running - held).await?;
            for function in &functions {
                // Held ten minutes: still running (and idle in their Wait) while the measured rollout runs.
                self.start(&linear(function, 50, 600, json!({"enabled": false}))).await?;
            }
            held = running;
            tokio::time::sleep(Duration::from_secs(3)).await;
            let function = self.service().await?;
            let cost = self
                .cost(json!({"function": function, "alias": "live", "version": "2",
                "strategy": {"all_at_once": {}}, "health": {"enabled": false}}))
                .await?;
            let count = |operation: &str| cost.calls.get(operation).copied().unwrap_or(0);
            println!(
                "| {running} | {} | {} | {} |",
                cost.calls.values().sum::<u64>(),
                count("DescribeExecution"),
                count("ListExecutions")
            );
        }
        println!("(An all-at-once rollout, health off: Prepare, one move, the lock released.)");
        Ok(())
    }

    async fn concurrent(&self) -> Result<(), String> {
        step(
            "3. N rollouts started together (50% then 100%, 1 s hold, health off), until a round is not all promoted in time",
        );
        println!("\n| N | promoted | not promoted in time | deploy s | start to last end s |");
        println!("|---:|---:|---:|---:|---:|");
        let mut carried = 0;
        for &n in if quick() { &CONCURRENT[..1] } else { &CONCURRENT[..] } {
            let deployed = Instant::now();
            let functions = self.services(n).await?;
            let deploy = deployed.elapsed().as_secs_f64();
            let started = Instant::now();
            let mut arns = Vec::new();
            for function in &functions {
                arns.push(self.start(&linear(function, 50, 1, json!({"enabled": false}))).await?);
            }
            let deadline = started + ROUND_DEADLINE;
            let mut promoted = 0;
            for arn in &arns {
                if self.end(arn, deadline).await? == "SUCCEEDED" {
                    promoted += 1;
                }
            }
            let wall = started.elapsed().as_secs_f64();
            println!("| {n} | {promoted} | {} | {deploy:.0} | {wall:.0} |", n - promoted);
            if promoted < n {
                break;
            }
            carried = n;
        }
        println!(
            "\nThe emulator carried {carried} rollouts at once on this machine (a round may take {} s).",
            ROUND_DEADLINE.as_secs()
        );
        Ok(())
    }
}
