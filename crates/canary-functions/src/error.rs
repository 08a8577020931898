//! Why a handler failed, by the error names the state machine's `Retry` and `Catch` match on.

use canary_aws::AwsError;
use canary_core::Refusal;
use canary_core::asl::ErrorName;
use lambda_runtime::Diagnostic;

/// Why a handler failed, by what the state machine should do about it.
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    /// The request is wrong; nothing was changed. Not retried: the execution fails as refused.
    #[error("{0}")]
    Refused(Refusal),
    /// Throttling, a 5xx, a timeout, or an alias revision that moved between read and write. Retried.
    #[error("{0}")]
    Transient(AwsError),
    /// Someone else changed the alias during the rollout. Not retried, and never overwritten.
    #[error("{0}")]
    AliasChangedConcurrently(String),
    /// Any other AWS failure (permissions, validation). Not retried.
    #[error("{0}")]
    Aws(AwsError),
    /// The state handed in is not what this handler serves: a bug or a hand-edited execution.
    #[error("{0}")]
    InvalidState(String),
}

impl ControllerError {
    /// The error type the state machine sees (`Diagnostic.error_type`).
    pub fn error_type(&self) -> ErrorName {
        match self {
            ControllerError::Refused(_) => ErrorName::RequestRefused,
            ControllerError::Transient(_) => ErrorName::TransientAwsError,
            ControllerError::AliasChangedConcurrently(_) => ErrorName::AliasChangedConcurrently,
            ControllerError::Aws(_) => ErrorName::AwsError,
            ControllerError::InvalidState(_) => ErrorName::InvalidState,
        }
    }
}

impl From<AwsError> for ControllerError {
    fn from(error: AwsError) -> Self {
        if error.is_transient() { ControllerError::Transient(error) } else { ControllerError::Aws(error) }
    }
}

impl From<ControllerError> for Diagnostic {
    fn from(error: ControllerError) -> Diagnostic {
        Diagnostic { error_type: error.error_type().as_str().to_string(), error_message: error.to_string() }
    }
}
