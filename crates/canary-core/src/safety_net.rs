//! The safety net: what to do for an execution that ended without the controller finishing its job,
//! because it was stopped from the console, timed out, or failed outside the state machine's Catch paths.

use crate::asl::ErrorName;
use crate::execution::ExecutionStatus;
use crate::rollout::{Outcome, Rollout, Routing, TaskError};
use serde::{Deserialize, Serialize};

/// The safety net's decision for one ended execution.
#[derive(Debug, Clone, PartialEq)]
pub enum SafetyNet {
    /// Nothing to restore, and why.
    Nothing(String),
    /// Restore this rollout's original routing (with the usual conditional rollback). Its `error` says why,
    /// as the rollback's report will.
    Restore(Box<Rollout>),
}

/// Decides from the execution's final status and the last rollout state its history holds.
///
/// ```
/// use canary_core::safety_net::{SafetyNet, decide};
/// use canary_core::execution::ExecutionStatus;
/// assert!(matches!(decide(ExecutionStatus::Succeeded, None), SafetyNet::Nothing(_)));
/// // Stopped before Prepare finished:
/// assert!(matches!(decide(ExecutionStatus::Aborted, None), SafetyNet::Nothing(_)));
/// ```
pub fn decide(status: ExecutionStatus, last_state: Option<Rollout>) -> SafetyNet {
    if matches!(status, ExecutionStatus::Succeeded | ExecutionStatus::Running) {
        return SafetyNet::Nothing(format!("the execution is {status}"));
    }
    let Some(state) = last_state else {
        return SafetyNet::Nothing("the execution ended before its rollout was prepared: nothing moved".into());
    };
    match state.report.as_ref().map(|r| r.outcome) {
        Some(Outcome::RolledBack) => SafetyNet::Nothing("the controller already rolled back".into()),
        Some(Outcome::Promoted) => SafetyNet::Nothing("the controller already promoted".into()),
        _ => SafetyNet::Restore(Box::new(Rollout {
            error: Some(TaskError {
                error: ErrorName::ExecutionEnded.as_str().into(),
                cause: Some(format!(
                    "the execution ended {status} before the rollout finished; the safety net restored the alias"
                )),
            }),
            ..state
        })),
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
}
