use aws_sdk_lambda::error::{DisplayErrorContext, SdkError};
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// An AWS call that failed, sorted by what the caller can do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AwsError {
    /// Throttling, a 5xx, a timeout or a dropped connection: the same call may succeed later.
    #[error("AWS is throttling or temporarily unavailable: {0}")]
    Transient(String),
    #[error("not found: {0}")]
    NotFound(String),
    /// A conditional write found the resource changed since it was read.
    #[error("changed since it was read: {0}")]
    RevisionChanged(String),
    #[error("{0}")]
    Other(String),
}

impl AwsError {
    pub fn is_transient(&self) -> bool {
        matches!(self, AwsError::Transient(_) | AwsError::RevisionChanged(_))
    }
}

const TRANSIENT_CODES: &[&str] = &[
    "TooManyRequestsException",
    "ThrottlingException",
    "Throttling",
    "ThrottledException",
    "RequestLimitExceeded",
    "ServiceException",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "InternalFailure",
    "InternalServiceError",
    "EC2ThrottledException",
];

/// Sorts any SDK error (every AWS SDK crate shares the type) into an [`AwsError`].
pub(crate) fn classify<E>(error: SdkError<E>) -> AwsError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let text = DisplayErrorContext(&error).to_string();
    match &error {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            AwsError::Transient(text)
        }
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            match error.code() {
                Some("ResourceNotFoundException") => AwsError::NotFound(text),
                Some("PreconditionFailedException") => AwsError::RevisionChanged(text),
                Some(code) if TRANSIENT_CODES.contains(&code) => AwsError::Transient(text),
                _ if status == 429 || status >= 500 => AwsError::Transient(text),
                _ => AwsError::Other(text),
            }
        }
        _ => AwsError::Other(text),
    }
}
