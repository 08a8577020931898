//! What a finished (or running) execution means for the rollout, from what Step Functions reports.

use crate::asl::ErrorName;
use crate::rollout::{Report, TaskError};
use serde::{Deserialize, Serialize};
use strum::{EnumString, IntoStaticStr, VariantArray};

/// A Step Functions execution's status, as `DescribeExecution` and `ListExecutions` name it.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    IntoStaticStr,
    EnumString,
    VariantArray,
    strum::Display,
    schemars::JsonSchema,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum ExecutionStatus {
    Running,
    Succeeded,
    Failed,
    TimedOut,
    Aborted,
    PendingRedrive,
}

impl ExecutionStatus {
    /// Its name in the Step Functions API.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// The status the API names `name`. A status this code does not know yet (the API may add one) is an
    /// execution that ended without promoting: `Failed`, never `Running` or `Succeeded`.
    ///
    /// ```
    /// use canary_core::execution::ExecutionStatus;
    /// assert_eq!(ExecutionStatus::parse("TIMED_OUT"), ExecutionStatus::TimedOut);
    /// assert_eq!(ExecutionStatus::parse("SOMETHING_NEW"), ExecutionStatus::Failed);
    /// ```
    pub fn parse(name: &str) -> ExecutionStatus {
        name.parse().unwrap_or(ExecutionStatus::Failed)
    }
}

/// What an execution means for the rollout.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    IntoStaticStr,
    VariantArray,
    strum::Display,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum ExecutionOutcome {
    /// Still running.
    Running,
    /// The new version carries all the alias's traffic.
    Promoted,
    /// A check or a task failed and the alias was restored.
    RolledBack,
    /// The request was refused before any traffic moved.
    Refused,
    /// Stopped (`canaryctl abort`, the console's Stop); the safety net restores the alias.
    Aborted,
    /// The execution ran past its time-out; the safety net restores the alias.
    TimedOut,
    /// The rollback itself failed: the alias needs a person (the cause says why).
    RollbackFailed,
    /// Failed outside the rollout's own paths; the safety net restores the alias.
    Failed,
}

impl ExecutionOutcome {
    /// Its name in canaryctl's JSON and text.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// A rollout's result as `canaryctl` reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutionResult {
    pub outcome: ExecutionOutcome,
    /// The execution's report, when it produced one (promoted or rolled back).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<Report>,
    /// Why it did not promote, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl ExecutionResult {
    /// True only when the new version was promoted.
    pub fn promoted(&self) -> bool {
        self.outcome == ExecutionOutcome::Promoted
    }
}

/// Reads a Step Functions execution's status, output, error and cause.
///
/// ```
/// use canary_core::execution::{ExecutionOutcome, ExecutionStatus::*, interpret};
/// assert_eq!(interpret(Running, None, None, None).outcome, ExecutionOutcome::Running);
/// let refused = interpret(Failed, None, Some("RequestRefused"), Some(r#"{"errorMessage":"version: ..."}"#));
/// assert_eq!((refused.outcome, refused.message.as_deref()), (ExecutionOutcome::Refused, Some("version: ...")));
/// ```
pub fn interpret(
    status: ExecutionStatus,
    output: Option<&str>,
    error: Option<&str>,
    cause: Option<&str>,
) -> ExecutionResult {
    use ExecutionOutcome as O;
    use ExecutionStatus as S;
    let report = |text: Option<&str>| text.and_then(|t| serde_json::from_str::<Report>(t).ok());
    let task_message = || {
        let error = TaskError { error: error.unwrap_or_default().to_string(), cause: cause.map(str::to_string) };
        Some(error.message()).filter(|m| !m.is_empty())
    };
    let result = |outcome: ExecutionOutcome, report: Option<Report>, message: Option<String>| ExecutionResult {
        outcome,
        message: message.or_else(|| report.as_ref().and_then(|r| r.reason.as_ref()).map(|r| r.message.clone())),
        report,
    };
    // The execution's error: one of the definition's `Fail` states' (`ErrorName`), or any other text.
    let named = error.and_then(|e| e.parse::<ErrorName>().ok());
    match (status, named) {
        (S::Running, _) => result(O::Running, None, None),
        (S::Succeeded, _) => result(O::Promoted, report(output), None),
        // An abort at an approval gate rolls back too; the report says which it was.
        (S::Failed, Some(ErrorName::RolledBack)) => {
            let report = report(cause);
            let aborted = report.as_ref().is_some_and(|r| r.outcome == crate::rollout::Outcome::Aborted);
            result(if aborted { O::Aborted } else { O::RolledBack }, report, None)
        }
        (S::Failed, Some(ErrorName::RequestRefused)) => result(O::Refused, None, task_message()),
        (S::Failed, Some(ErrorName::RollbackFailed)) => result(O::RollbackFailed, None, task_message()),
        // The state machine's NotStarted state puts the original error ahead of its cause: "ERROR: CAUSE".
        (S::Failed, Some(ErrorName::NotStarted)) => {
            let cause = cause.unwrap_or_default();
            let why = match cause.split_once(": ") {
                Some((original, detail)) => {
                    let detail = TaskError { error: original.to_string(), cause: Some(detail.to_string()) };
                    format!("{original}: {}", detail.message())
                }
                None => cause.to_string(),
            };
            result(O::Failed, None, Some(format!("preparing failed, nothing moved: {why}")))
        }
        (S::Aborted, _) => result(O::Aborted, None, Some("the execution was stopped".into())),
        (S::TimedOut, _) => result(O::TimedOut, None, Some("the execution timed out".into())),
        _ => {
            let message = task_message().map(|m| format!("{}: {m}", error.unwrap_or(status.as_str())));
            result(O::Failed, None, message.or_else(|| Some(format!("the execution ended {status}"))))
        }
    }
}
