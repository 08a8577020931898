//! The safety net: what to do for an execution that ended without the controller finishing its job,
//! because it was stopped (from the console, or by `canaryctl abort`), timed out, or failed outside the
//! state machine's Catch paths. It runs on the "Step Functions Execution Status Change" event, and on a
//! schedule (the sweep) for every alias an ended execution still holds, in case that event was lost.

use crate::asl::ErrorName;
use crate::execution::ExecutionStatus;
use crate::lock;
use crate::rollout::{AliasState, MovePlan, Outcome, Rollout, Routing, TaskError};
use serde::{Deserialize, Serialize};

/// The safety net's decision for one ended execution.
#[derive(Debug, Clone, PartialEq)]
pub enum SafetyNet {
    /// Nothing to restore, and why.
    Nothing(String),
    /// Restore this rollout's original routing (with the usual conditional rollback). Its `error` says why,
    /// as the rollback's report will: `Aborted` for a stopped execution, `ExecutionEnded` otherwise.
    Restore(Box<Rollout>),
    /// The execution ended before its rollout was prepared (nothing moved), but `Prepare` may have written
    /// its lock before failing: give the alias its description back if it still carries this execution's.
    Release,
}

/// How an execution ended, as `DescribeExecution` says.
#[derive(Debug, Clone, PartialEq)]
pub struct Ended<'a> {
    pub status: ExecutionStatus,
    /// The execution's error: a `Fail` state's, for one the controller ended.
    pub error: Option<&'a str>,
    pub cause: Option<&'a str>,
}

/// Decides from how the execution ended and the last rollout state its history holds.
///
/// ```
/// use canary_core::safety_net::{Ended, SafetyNet, decide};
/// use canary_core::execution::ExecutionStatus;
/// let ended = |status| Ended { status, error: None, cause: None };
/// assert!(matches!(decide(&ended(ExecutionStatus::Succeeded), None), SafetyNet::Nothing(_)));
/// // Stopped before Prepare finished: nothing moved, but its lock may be on the alias.
/// assert_eq!(decide(&ended(ExecutionStatus::Aborted), None), SafetyNet::Release);
/// ```
pub fn decide(ended: &Ended, last_state: Option<Rollout>) -> SafetyNet {
    let status = ended.status;
    if matches!(status, ExecutionStatus::Succeeded | ExecutionStatus::Running) {
        return SafetyNet::Nothing(format!("the execution is {status}"));
    }
    if ended.error == Some(ErrorName::RollbackFailed.as_str()) && taken_over(ended.cause) {
        return SafetyNet::Nothing(
            "someone else set the alias's routing: the controller kept their change and announced it".into(),
        );
    }
    let Some(state) = last_state else { return SafetyNet::Release };
    match state.report.as_ref().map(|r| r.outcome) {
        Some(Outcome::RolledBack | Outcome::Aborted) => SafetyNet::Nothing("the controller already rolled back".into()),
        Some(Outcome::Promoted) => SafetyNet::Nothing("the controller already promoted".into()),
        _ => {
            // A stopped execution was stopped by someone: an abort, reported as one.
            let (error, how) = match status {
                ExecutionStatus::Aborted => (ErrorName::Aborted, "was stopped"),
                _ => (ErrorName::ExecutionEnded, "ended"),
            };
            SafetyNet::Restore(Box::new(Rollout {
                error: Some(TaskError {
                    error: error.as_str().into(),
                    cause: Some(format!(
                        "the execution {how} ({status}) before the rollout finished; the safety net restored the alias"
                    )),
                }),
                ..state
            }))
        }
    }
}

/// Whether a `RollbackFailed` cause (the rollback task's Lambda error) says the alias was taken over by hand
/// rather than that AWS kept failing (which the safety net retries).
fn taken_over(cause: Option<&str>) -> bool {
    let error_type = cause
        .and_then(|c| serde_json::from_str::<serde_json::Value>(c).ok())
        .and_then(|c| c.get("errorType").and_then(|t| t.as_str()).map(str::to_string));
    error_type.as_deref() == Some(ErrorName::AliasChangedConcurrently.as_str())
}

/// What releasing the lock of an execution that ended before its rollout was prepared writes: the
/// description its marker kept, the routing as it is (nothing moved). Nothing when the alias does not carry
/// `execution`'s marker.
pub fn plan_release_unprepared(execution: &str, live: &AliasState) -> MovePlan {
    match lock::holder(&live.description) {
        Some((holder, original)) if holder == execution => MovePlan::Write {
            routing: live.routing.clone(),
            description: original.to_string(),
            revision_id: live.revision_id.clone(),
        },
        _ => MovePlan::AlreadyDone,
    }
}

/// What the safety net did for one ended execution: its function's answer, which `canaryctl abort` reads too.
/// Serialised flat: `{"execution": ..., "status": "ABORTED", "action": "restored", "routing": {...}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Handled {
    pub execution: String,
    pub status: ExecutionStatus,
    #[serde(flatten)]
    pub action: Action,
}

/// What the safety net did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Nothing to restore, and why.
    None { reason: String },
    /// The alias was restored; what it routes now.
    Restored { routing: Option<Routing> },
    /// Nothing had moved, and the lock its `Prepare` left on the alias was released.
    Released,
    /// Someone else had set an alias's routing (by hand, or a later rollout or promotion): theirs was kept,
    /// written nowhere, and every other alias restored. Why, naming each alias handed over.
    HandedOver { reason: String },
}

impl Action {
    /// Whether the safety net wrote an alias back (restored it, or released the lock left on it).
    pub fn put_back(&self) -> bool {
        matches!(self, Action::Restored { .. } | Action::Released)
    }
}

/// What a sweep found: the ended executions it looked at, and what it did for each that still held its
/// alias.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Swept {
    pub looked_at: usize,
    pub handled: Vec<Handled>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_lock_of_the_execution_that_ended_is_released() {
        let arn = "arn:aws:states:eu-west-1:123456789012:execution:canary-rollout:x";
        let held = AliasState {
            routing: Routing::to_version("1"),
            revision_id: "r1".into(),
            description: lock::marker(arn, "orders"),
        };
        let MovePlan::Write { description, routing, .. } = plan_release_unprepared(arn, &held) else { panic!() };
        assert_eq!((description.as_str(), routing), ("orders", Routing::to_version("1")));
        let other = lock::marker("arn:aws:states:eu-west-1:123456789012:execution:canary-rollout:y", "orders");
        let theirs = AliasState { description: other, ..held.clone() };
        assert_eq!(plan_release_unprepared(arn, &theirs), MovePlan::AlreadyDone, "another execution's lock stays");
        let free = AliasState { description: "orders".into(), ..held };
        assert_eq!(plan_release_unprepared(arn, &free), MovePlan::AlreadyDone);
    }
}
