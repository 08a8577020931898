//! What a finished (or running) execution means for the rollout, from what Step Functions reports.

use crate::rollout::{Report, TaskError};
use serde::{Deserialize, Serialize};

/// A rollout's result as `canaryctl` reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutionResult {
    /// `running`, `promoted`, `rolled_back`, `refused`, `aborted`, `timed_out`, `rollback_failed` or `failed`.
    pub outcome: String,
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
        self.outcome == "promoted"
    }
}

/// Reads a Step Functions execution's status, output, error and cause.
///
/// ```
/// use canary_core::execution::interpret;
/// assert_eq!(interpret("RUNNING", None, None, None).outcome, "running");
/// let refused = interpret("FAILED", None, Some("RequestRefused"), Some(r#"{"errorMessage":"version: ..."}"#));
/// assert_eq!((refused.outcome.as_str(), refused.message.as_deref()), ("refused", Some("version: ...")));
/// ```
pub fn interpret(status: &str, output: Option<&str>, error: Option<&str>, cause: Option<&str>) -> ExecutionResult {
    let report = |text: Option<&str>| text.and_then(|t| serde_json::from_str::<Report>(t).ok());
    let task_message = || {
        let error = TaskError { error: error.unwrap_or_default().to_string(), cause: cause.map(str::to_string) };
        Some(error.message()).filter(|m| !m.is_empty())
    };
    let result = |outcome: &str, report: Option<Report>, message: Option<String>| ExecutionResult {
        outcome: outcome.to_string(),
        message: message.or_else(|| report.as_ref().and_then(|r| r.reason.as_ref()).map(|r| r.message.clone())),
        report,
    };
    match (status, error) {
        ("RUNNING", _) => result("running", None, None),
        ("SUCCEEDED", _) => result("promoted", report(output), None),
        // An abort at an approval gate rolls back too; the report says which it was.
        ("FAILED", Some("RolledBack")) => {
            let report = report(cause);
            let aborted = report.as_ref().is_some_and(|r| r.outcome == crate::rollout::Outcome::Aborted);
            result(if aborted { "aborted" } else { "rolled_back" }, report, None)
        }
        ("FAILED", Some("RequestRefused")) => result("refused", None, task_message()),
        ("FAILED", Some("RollbackFailed")) => result("rollback_failed", None, task_message()),
        ("ABORTED", _) => result("aborted", None, Some("the execution was stopped".into())),
        ("TIMED_OUT", _) => result("timed_out", None, Some("the execution timed out".into())),
        (_, error) => {
            let message = task_message().map(|m| format!("{}: {m}", error.unwrap_or(status)));
            result("failed", None, message.or_else(|| Some(format!("the execution ended {status}"))))
        }
    }
}
