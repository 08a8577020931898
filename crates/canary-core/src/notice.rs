//! Notifications: what a rollout announces after each task, as EventBridge events (source `lambda-canary`).
//!
//! Every event's detail names the rollout (`function`, `alias`, `old_version`, `new_version`,
//! `started_at`, a release's `functions` each with the same four fields, and the `execution` that holds the
//! alias) and adds what happened: the step and its
//! figures, the gate's percentage, or the report.

use crate::health::Verdict;
use crate::rollout::{Outcome, Rollout};
use serde::Serialize;
use serde_json::{Value, json};

/// The events' `source`.
pub const SOURCE: &str = "lambda-canary";

/// Every `detail-type` the controller publishes (the template's notification rule selects among them).
pub const DETAIL_TYPES: [&str; 7] = [
    "Rollout Started",
    "Rollout Step Passed",
    "Rollout Paused For Approval",
    "Rollout Promoted",
    "Rollout Rolled Back",
    "Rollout Aborted",
    "Rollout Taken Over",
];

/// One event to publish: its `detail-type` and `detail`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Notice {
    pub detail_type: &'static str,
    pub detail: Value,
}

/// The controller task that just ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Task {
    Prepare,
    Move,
    Check,
    Hook,
    /// An approval gate was reached and now waits.
    Paused,
    Rollback,
}

fn detail(state: &Rollout, extra: Value) -> Value {
    let mut detail = json!({
        "function": state.request.function,
        "alias": state.request.alias,
        "old_version": state.old_version,
        "new_version": state.request.version,
        "started_at": state.started_at,
    });
    if !state.members.is_empty() {
        detail["functions"] = state.functions_named();
    }
    // The execution, for `canaryctl status` (the lock names it).
    if let Some((execution, _)) = crate::lock::holder(&state.lock) {
        detail["execution"] = json!(execution);
    }
    if let (Some(detail), Value::Object(extra)) = (detail.as_object_mut(), extra) {
        detail.extend(extra);
    }
    detail
}

/// What a task's resulting state announces: started, a step passed, paused for approval, and the outcome
/// (promoted, rolled back, aborted) once there is one.
pub fn notices(task: Task, state: &Rollout) -> Vec<Notice> {
    let mut out = Vec::new();
    match task {
        Task::Prepare => out.push(Notice {
            detail_type: "Rollout Started",
            detail: detail(state, json!({"steps": state.schedule().steps, "strategy": state.request.strategy})),
        }),
        Task::Check => {
            // A release's step passed when the release moves on, not when its first function alone passed.
            let moves_on = !matches!(state.next, crate::rollout::Next::Hold | crate::rollout::Next::Rollback);
            if let Some(record) = state.history.last().filter(|r| r.verdict == Some(Verdict::Pass) && moves_on) {
                out.push(Notice {
                    detail_type: "Rollout Step Passed",
                    detail: detail(state, json!({"step": record, "step_count": state.step_count})),
                });
            }
        }
        Task::Paused => out.push(Notice {
            detail_type: "Rollout Paused For Approval",
            detail: detail(state, json!({"before_percent": state.schedule().step(state.next_index()).percent})),
        }),
        Task::Move | Task::Hook | Task::Rollback => {}
    }
    if let Some(report) = &state.report {
        let detail_type = match report.outcome {
            Outcome::Promoted => "Rollout Promoted",
            Outcome::Aborted => "Rollout Aborted",
            Outcome::RolledBack | Outcome::Refused => "Rollout Rolled Back",
        };
        out.push(Notice { detail_type, detail: detail(state, json!({"report": report})) });
    }
    out
}

/// Someone else set the alias's routing during the rollout (a hand promotion, a hotfix, a revert): the
/// controller kept their change and stopped. The event says what the alias routes now, and why.
pub fn taken_over(state: &Rollout, routing: &crate::Routing, message: &str) -> Notice {
    Notice {
        detail_type: "Rollout Taken Over",
        detail: detail(state, json!({"routing": routing, "routes": routing.to_string(), "message": message})),
    }
}

/// The metric the sweep publishes each time it runs: how many aliases held by ended executions it put back
/// (`LambdaCanary/SweepRestored`, dimension `StateMachine`), as an Embedded Metric Format line. Anything
/// but 0 means an ending's event was lost or its handling failed: the template alarms on it.
pub fn sweep_metric(state_machine: &str, restored: usize, now: chrono::DateTime<chrono::Utc>) -> Value {
    json!({
        "_aws": {
            "Timestamp": now.timestamp_millis(),
            "CloudWatchMetrics": [{
                "Namespace": TRAFFIC_NAMESPACE,
                "Dimensions": [["StateMachine"]],
                "Metrics": [{"Name": SWEEP_METRIC, "Unit": "Count"}],
            }],
        },
        "StateMachine": state_machine.rsplit(':').next().unwrap_or(state_machine),
        SWEEP_METRIC: restored,
    })
}

/// The sweep's metric: aliases put back that an ended execution still held.
pub const SWEEP_METRIC: &str = "SweepRestored";

/// The namespace and name of the metric the controller publishes whenever it moves an alias: the share of
/// the alias's traffic the new version gets, so a dashboard can draw a rollout over time.
pub const TRAFFIC_NAMESPACE: &str = "LambdaCanary";
pub const TRAFFIC_METRIC: &str = "NewVersionTrafficPercent";

/// After a task that wrote the aliases (a move, or the rollback), each new version's share of its alias's
/// traffic (a release's every function) as CloudWatch Embedded Metric Format documents: each printed as one
/// log line, CloudWatch Logs turns it into the metric [`TRAFFIC_METRIC`] (dimensions `FunctionName`,
/// `Alias`) with no API call. None for other tasks.
pub fn traffic_metrics(task: Task, state: &Rollout, now: chrono::DateTime<chrono::Utc>) -> Vec<Value> {
    let name = |function: &str| crate::request::function_name_of(function).to_string();
    let shares: Vec<(String, String, String, f64)> = match (task, &state.report) {
        (Task::Move, _) if state.step.is_some() => state
            .members_views()
            .iter()
            .map(|v| {
                let version = v.request.version.clone();
                let percent = v.expected_routing().percent_of(&version);
                (name(&v.request.function), v.request.alias.clone(), version, percent)
            })
            .collect(),
        (Task::Rollback, Some(r)) if r.functions.is_empty() => {
            vec![(name(&r.function), r.alias.clone(), r.new_version.clone(), r.routing.percent_of(&r.new_version))]
        }
        (Task::Rollback, Some(r)) => r
            .functions
            .iter()
            .map(|f| (name(&f.function), f.alias.clone(), f.new_version.clone(), f.routing.percent_of(&f.new_version)))
            .collect(),
        _ => Vec::new(),
    };
    shares
        .into_iter()
        .map(|(function, alias, version, percent)| {
            json!({
                "_aws": {
                    "Timestamp": now.timestamp_millis(),
                    "CloudWatchMetrics": [{
                        "Namespace": TRAFFIC_NAMESPACE,
                        "Dimensions": [["FunctionName", "Alias"]],
                        "Metrics": [{"Name": TRAFFIC_METRIC, "Unit": "Percent"}],
                    }],
                },
                "FunctionName": function,
                "Alias": alias,
                "NewVersion": version,
                TRAFFIC_METRIC: percent,
            })
        })
        .collect()
}
