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

/// Every `detail-type` the controller publishes (the template's notification rule selects among them), and
/// the JSON Schema of their details in docs/rollout-events.schema.json ([`events_schema`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema, strum::IntoStaticStr, strum::EnumIter)]
pub enum DetailType {
    #[serde(rename = "Rollout Started")]
    #[strum(serialize = "Rollout Started")]
    Started,
    #[serde(rename = "Rollout Step Passed")]
    #[strum(serialize = "Rollout Step Passed")]
    StepPassed,
    #[serde(rename = "Rollout Paused For Approval")]
    #[strum(serialize = "Rollout Paused For Approval")]
    PausedForApproval,
    #[serde(rename = "Rollout Promoted")]
    #[strum(serialize = "Rollout Promoted")]
    Promoted,
    #[serde(rename = "Rollout Rolled Back")]
    #[strum(serialize = "Rollout Rolled Back")]
    RolledBack,
    #[serde(rename = "Rollout Aborted")]
    #[strum(serialize = "Rollout Aborted")]
    Aborted,
    #[serde(rename = "Rollout Taken Over")]
    #[strum(serialize = "Rollout Taken Over")]
    TakenOver,
}

impl DetailType {
    /// The `detail-type` as EventBridge carries it.
    ///
    /// ```
    /// use canary_core::notice::DetailType;
    /// assert_eq!(DetailType::PausedForApproval.as_str(), "Rollout Paused For Approval");
    /// ```
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// Every detail type, in the order a rollout may publish them.
    pub fn all() -> impl Iterator<Item = DetailType> {
        <DetailType as strum::IntoEnumIterator>::iter()
    }
}

impl PartialEq<&str> for DetailType {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// One event to publish: its `detail-type` and `detail` (a [`Detail`], as JSON).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Notice {
    pub detail_type: DetailType,
    pub detail: Value,
}

/// The `detail` of every rollout event: which rollout, then what happened.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Detail {
    pub function: String,
    pub alias: String,
    pub old_version: String,
    pub new_version: String,
    pub started_at: chrono::DateTime<chrono::Utc>,
    /// A release's functions, the first included; absent for a rollout of one function.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub functions: Vec<Named>,
    /// The execution that holds the alias, for `canaryctl status`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub execution: Option<String>,
    #[serde(flatten)]
    pub what: What,
}

/// One function of a release, as an event names it.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Named {
    pub function: String,
    pub alias: String,
    pub old_version: String,
    pub new_version: String,
}

/// What happened, by detail type.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum What {
    /// `Rollout Started`: the schedule and the strategy it came from.
    Started { steps: Vec<crate::schedule::Step>, strategy: crate::request::Strategy },
    /// `Rollout Step Passed`: the step's record, with its figures and checks.
    StepPassed { step: crate::rollout::StepRecord, step_count: usize },
    /// `Rollout Paused For Approval`: the percentage the gate holds the rollout before.
    Paused { before_percent: f64 },
    /// `Rollout Promoted`, `Rollout Rolled Back`, `Rollout Aborted`: the execution's report.
    Ended { report: crate::rollout::Report },
    /// `Rollout Taken Over`: what the alias routes now (and as text), and why the rollout stopped.
    TakenOver { routing: crate::Routing, routes: String, message: String },
}

/// The JSON Schema of a rollout event's `detail`, as docs/rollout-events.schema.json holds it, with the
/// detail types it comes with.
pub fn events_schema() -> Value {
    let mut schema = serde_json::to_value(schemars::schema_for!(Detail)).expect("schemas serialise");
    schema["title"] = "lambda-canary rollout event detail (EventBridge, source lambda-canary)".into();
    schema["x-detail-types"] = DetailType::all().map(DetailType::as_str).collect();
    schema
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

fn notice(detail_type: DetailType, state: &Rollout, what: What) -> Notice {
    let detail = Detail {
        function: state.request.function.clone(),
        alias: state.request.alias.clone(),
        old_version: state.old_version.clone(),
        new_version: state.request.version.clone(),
        started_at: state.started_at,
        functions: state.functions_named(),
        // The execution, for `canaryctl status` (the lock names it).
        execution: crate::lock::holder(&state.lock).map(|(execution, _)| execution.to_string()),
        what,
    };
    Notice { detail_type, detail: serde_json::to_value(detail).expect("details serialise") }
}

/// What a task's resulting state announces: started, a step passed, paused for approval, and the outcome
/// (promoted, rolled back, aborted) once there is one.
pub fn notices(task: Task, state: &Rollout) -> Vec<Notice> {
    let mut out = Vec::new();
    match task {
        Task::Prepare => out.push(notice(
            DetailType::Started,
            state,
            What::Started { steps: state.schedule().steps, strategy: state.request.strategy.clone() },
        )),
        Task::Check => {
            // A release's step passed when the release moves on, not when its first function alone passed.
            let moves_on = !matches!(state.next, crate::rollout::Next::Hold | crate::rollout::Next::Rollback);
            if let Some(record) = state.history.last().filter(|r| r.verdict == Some(Verdict::Pass) && moves_on) {
                let what = What::StepPassed { step: record.clone(), step_count: state.step_count };
                out.push(notice(DetailType::StepPassed, state, what));
            }
        }
        Task::Paused => out.push(notice(
            DetailType::PausedForApproval,
            state,
            What::Paused { before_percent: state.schedule().step(state.next_index()).percent },
        )),
        Task::Move | Task::Hook | Task::Rollback => {}
    }
    if let Some(report) = &state.report {
        let detail_type = match report.outcome {
            Outcome::Promoted => DetailType::Promoted,
            Outcome::Aborted => DetailType::Aborted,
            Outcome::RolledBack | Outcome::Refused => DetailType::RolledBack,
        };
        out.push(notice(detail_type, state, What::Ended { report: report.clone() }));
    }
    out
}

/// Someone else set the alias's routing during the rollout (a hand promotion, a hotfix, a revert): the
/// controller kept their change and stopped. The event says what the alias routes now, and why.
pub fn taken_over(state: &Rollout, routing: &crate::Routing, message: &str) -> Notice {
    let what = What::TakenOver { routing: routing.clone(), routes: routing.to_string(), message: message.to_string() };
    notice(DetailType::TakenOver, state, what)
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
            .function_views()
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
