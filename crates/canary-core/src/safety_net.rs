//! The safety net: what to do for an execution that ended without the controller finishing its job,
//! because it was stopped from the console, timed out, or failed outside the state machine's Catch paths.

use crate::rollout::{Outcome, Rollout, TaskError};

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
/// assert!(matches!(decide("SUCCEEDED", None), SafetyNet::Nothing(_)));
/// assert!(matches!(decide("ABORTED", None), SafetyNet::Nothing(_))); // stopped before Prepare finished
/// ```
pub fn decide(status: &str, last_state: Option<Rollout>) -> SafetyNet {
    if status == "SUCCEEDED" || status == "RUNNING" {
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
                error: "ExecutionEnded".into(),
                cause: Some(format!(
                    "the execution ended {status} before the rollout finished; the safety net restored the alias"
                )),
            }),
            ..state
        })),
    }
}
