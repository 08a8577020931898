//! How a rollout ends: its outcome, the report the execution returns, and the reason for a rollback.

use super::Next;
use super::Rollout;
use super::hook::HookRecord;
use super::routing::Routing;
use super::step::StepRecord;
use crate::asl::ErrorName;
use crate::health::{Failure, Signal};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// How the rollout ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Promoted,
    RolledBack,
    Refused,
    Aborted,
}

/// What an execution returns: the outcome, every step with the figures that decided it, and the reason
/// for a rollback.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Report {
    pub outcome: Outcome,
    pub function: String,
    pub alias: String,
    pub old_version: String,
    pub new_version: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    /// The routing the alias was left with.
    pub routing: Routing,
    pub steps: Vec<StepRecord>,
    #[serde(default)]
    pub steps_omitted: usize,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hooks: Vec<HookRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Failure>,
    /// A release's functions, the first included, each with the routing its alias was left with; empty for a
    /// rollout of one function (whose are the fields above).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub functions: Vec<FunctionReport>,
    /// What the operator should know of the routing left: a rollback to a version that cannot serve now
    /// (Lambda's state not `Active`), said rather than left to be found in failed invocations.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// One function of a release's report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FunctionReport {
    pub function: String,
    pub alias: String,
    pub old_version: String,
    pub new_version: String,
    /// The routing its alias was left with.
    pub routing: Routing,
}

/// A failed task as Step Functions' `Catch` records it (`ResultPath: $.error`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskError {
    #[serde(rename = "Error")]
    pub error: String,
    #[serde(rename = "Cause", default)]
    pub cause: Option<String>,
}

impl TaskError {
    /// The human part of the cause: a Lambda error's `errorMessage` when the cause is one, else the cause.
    pub fn message(&self) -> String {
        let cause = self.cause.clone().unwrap_or_default();
        serde_json::from_str::<serde_json::Value>(&cause)
            .ok()
            .and_then(|v| v.get("errorMessage").and_then(|m| m.as_str()).map(str::to_string))
            .unwrap_or(cause)
    }
}

/// How many of the latest step records the report carries. The report is also the `RolledBack` state's
/// cause, which Step Functions caps at 32,768 characters.
pub const REPORT_STEPS: usize = 5;

/// The longest text (a hook's answer, a task's error) the state keeps from outside the controller.
pub const MAX_MESSAGE_CHARS: usize = 1_000;

impl Rollout {
    pub(super) fn fail(mut self, failure: Failure) -> Rollout {
        self.failure = Some(failure);
        self.next = Next::Rollback;
        self
    }

    /// Records a rollback that left the alias routing `routing`: the report, aborted when an operator's abort
    /// at an approval gate brought it here (a task failure named [`ErrorName::Aborted`]), rolled back otherwise.
    pub fn after_rollback(mut self, routing: Routing, now: DateTime<Utc>) -> Rollout {
        let aborted = self.error.as_ref().is_some_and(|e| e.error == ErrorName::Aborted.as_str());
        self.report = Some(self.report(if aborted { Outcome::Aborted } else { Outcome::RolledBack }, routing, now));
        self.next = Next::Rollback;
        self
    }

    /// Why the rollout is rolled back: the failed health signal, or the task error that got it here.
    pub fn rollback_reason(&self) -> Failure {
        if let Some(failure) = &self.failure {
            return failure.clone();
        }
        let (error, message) = match &self.error {
            Some(e) => (e.error.clone(), e.message()),
            None => ("Unknown".to_string(), "rolled back without a recorded reason".to_string()),
        };
        Failure {
            signal: Signal::Error,
            value: 0.0,
            threshold: 0.0,
            p_value: None,
            message: bounded(&format!("{error}: {message}"), MAX_MESSAGE_CHARS),
        }
    }

    /// The execution's result.
    pub fn report(&self, outcome: Outcome, routing: Routing, now: DateTime<Utc>) -> Report {
        Report {
            outcome,
            function: self.request.function.clone(),
            alias: self.request.alias.clone(),
            old_version: self.old_version.clone(),
            new_version: self.request.version.clone(),
            started_at: self.started_at,
            finished_at: now,
            steps: self.history[self.history.len().saturating_sub(REPORT_STEPS)..].to_vec(),
            steps_omitted: self.history_omitted + self.history.len().saturating_sub(REPORT_STEPS),
            hooks: self.hooks_run.clone(),
            reason: matches!(outcome, Outcome::RolledBack | Outcome::Aborted).then(|| self.rollback_reason()),
            functions: self.function_reports(outcome, &routing),
            warnings: Vec::new(),
            routing,
        }
    }
}

/// `text`, cut to `max` characters with a note that it was.
pub(super) fn bounded(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(max).collect();
    cut.push_str(" [cut]");
    cut
}
