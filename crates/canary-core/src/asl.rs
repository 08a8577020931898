//! The state machine's vocabulary: the names `statemachine/canary.asl.json` gives its states, and the error
//! names that its `Retry` and `Catch` match, its `Fail` states raise, and the controller's functions and
//! operators send. Every other crate spells them through these types; one test holds the definition to them
//! (`crates/canary-functions/tests/functions/statemachine.rs`), so a renamed state or error fails there, not in an
//! account.

use strum::{EnumString, IntoStaticStr, VariantArray};

/// A state of the definition.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, EnumString, IntoStaticStr, VariantArray, strum::Display,
)]
pub enum State {
    /// Checks the request and takes the alias's lock.
    Prepare,
    /// The Choice that dispatches on the rollout's `next`.
    Route,
    /// Runs `hooks.pre_traffic`.
    PreTraffic,
    /// Moves the alias to the next intermediate weight.
    Shift,
    /// Moves all traffic to the new version.
    Promote,
    /// Waits for an operator at an approval gate (a task token).
    AwaitApproval,
    /// Applies the operator's answer.
    ApplyApproval,
    /// Waits `wait_seconds`.
    Hold,
    /// Judges the step.
    CheckHealth,
    /// Runs `hooks.post_traffic`.
    PostTraffic,
    /// Restores the original routing.
    Rollback,
    /// Succeed: the new version carries all traffic.
    Promoted,
    /// Fail: rolled back (or aborted at a gate), the report in the cause.
    RolledBack,
    /// Fail: the request was refused, nothing moved.
    Refused,
    /// Fail: preparing failed for another reason, nothing moved.
    NotStarted,
    /// Fail: the rollback could not restore the alias.
    RollbackFailed,
}

impl State {
    /// Its name in the definition.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// An error name: what a task fails with, what a `Fail` state raises, what `Retry` and `Catch` match.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, EnumString, IntoStaticStr, VariantArray, strum::Display,
)]
pub enum ErrorName {
    // Raised by the controller's functions (their `Diagnostic` error type).
    /// The request is wrong; nothing changed. Never retried.
    RequestRefused,
    /// Throttling, a 5xx, a timeout, an alias revision that moved between read and write. Retried.
    TransientAwsError,
    /// Someone else changed the alias. Never retried, never overwritten.
    AliasChangedConcurrently,
    /// Any other AWS failure (permissions, validation). Not retried.
    AwsError,
    /// The state handed in is not what the function serves.
    InvalidState,
    // Sent by an operator.
    /// An operator's abort at an approval gate (`canaryctl abort`, or `SendTaskFailure --error Aborted`).
    Aborted,
    // Recorded by the safety net as the reason it restored an alias.
    /// The execution ended (stopped, timed out, failed) before the rollout finished.
    ExecutionEnded,
    // Raised by the `Fail` states: the execution's error.
    /// `RolledBack`: the alias is back where it was; the cause is the report.
    RolledBack,
    /// `NotStarted`: preparing failed for a reason other than the request; nothing moved.
    NotStarted,
    /// `RollbackFailed`: the alias could not be restored; the cause says why.
    RollbackFailed,
    // Raised by Lambda's Invoke integration (`arn:aws:states:::lambda:invoke`) when the service failed.
    #[strum(serialize = "Lambda.ServiceException")]
    LambdaServiceException,
    #[strum(serialize = "Lambda.AWSLambdaException")]
    LambdaAwsLambdaException,
    #[strum(serialize = "Lambda.SdkClientException")]
    LambdaSdkClientException,
    #[strum(serialize = "Lambda.TooManyRequestsException")]
    LambdaTooManyRequestsException,
    #[strum(serialize = "Lambda.ClientExecutionTimeoutException")]
    LambdaClientExecutionTimeoutException,
    /// The function ran out of time or memory on AWS; its write may have taken effect.
    #[strum(serialize = "Lambda.Unknown")]
    LambdaUnknown,
    /// The runtime's own name for a function that ran out of time.
    #[strum(serialize = "Sandbox.Timedout")]
    SandboxTimedout,
    // Step Functions' own.
    /// A task ran past its `TimeoutSeconds`.
    #[strum(serialize = "States.Timeout")]
    StatesTimeout,
    /// Matches every error (a `Catch`'s last resort).
    #[strum(serialize = "States.ALL")]
    StatesAll,
}

impl ErrorName {
    /// Its name as Step Functions spells it.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// Whether the definition names it (in a `Retry`, a `Catch` or a `Fail` state); the others reach it only
    /// through `States.ALL`, or are recorded in the rollout's state.
    pub fn in_definition(self) -> bool {
        !matches!(
            self,
            ErrorName::AliasChangedConcurrently
                | ErrorName::AwsError
                | ErrorName::InvalidState
                | ErrorName::Aborted
                | ErrorName::ExecutionEnded
        )
    }
}

/// What every task retries: Lambda's own service failures and the controller's transient AWS errors.
pub const SERVICE_FAILURES: [ErrorName; 6] = [
    ErrorName::TransientAwsError,
    ErrorName::LambdaServiceException,
    ErrorName::LambdaAwsLambdaException,
    ErrorName::LambdaSdkClientException,
    ErrorName::LambdaTooManyRequestsException,
    ErrorName::LambdaClientExecutionTimeoutException,
];

/// A function that died or ran out of time, maybe after its write: retried only by the tasks whose work is
/// idempotent (the controller's own moves and checks), never by a user's hook or an approval gate.
pub const FUNCTION_DIED: [ErrorName; 3] =
    [ErrorName::LambdaUnknown, ErrorName::SandboxTimedout, ErrorName::StatesTimeout];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_read_back_as_themselves() {
        for state in State::VARIANTS {
            assert_eq!(state.as_str().parse::<State>(), Ok(*state));
            assert_eq!(state.to_string(), state.as_str());
        }
        for error in ErrorName::VARIANTS {
            assert_eq!(error.as_str().parse::<ErrorName>(), Ok(*error));
            assert_eq!(error.to_string(), error.as_str());
        }
        assert_eq!(ErrorName::StatesAll.as_str(), "States.ALL");
        assert_eq!(ErrorName::LambdaAwsLambdaException.as_str(), "Lambda.AWSLambdaException");
        assert!(ErrorName::StatesAll.in_definition() && !ErrorName::Aborted.in_definition());
    }
}
