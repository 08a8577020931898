//! Every SDK failure sorted into an [`AwsError`] kind that says whether a retry can help and what to do.

use aws_sdk_lambda::error::{DisplayErrorContext, SdkError};
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// An AWS call that failed, sorted by what the caller can do about it. Each says so in one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AwsError {
    /// Throttling, a 5xx, a timeout or a dropped connection: the same call may succeed later.
    #[error("AWS is throttling or temporarily unavailable ({0}); try again in a moment")]
    Transient(String),
    /// No connection could be made: a wrong endpoint, region or network.
    #[error("could not reach AWS ({0}): check --endpoint-url, the region and the network")]
    Unreachable(String),
    #[error("no AWS region is set: pass --region, or set AWS_REGION or a profile's region")]
    NoRegion,
    #[error(
        "no AWS credentials were found ({0}): set AWS_PROFILE (after aws sso login if it uses SSO), or \
         AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
    )]
    NoCredentials(String),
    /// The credentials were refused, or lack a permission.
    #[error("AWS refused the call ({0}): the credentials have expired or lack a permission")]
    AccessDenied(String),
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
        matches!(self, AwsError::Transient(_) | AwsError::Unreachable(_) | AwsError::RevisionChanged(_))
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
    // Lambda: an update of the function is in progress (HTTP 409); the same write succeeds once it is done.
    "ResourceConflictException",
];

const NOT_FOUND_CODES: &[&str] = &["ResourceNotFoundException", "ExecutionDoesNotExist", "StateMachineDoesNotExist"];

const ACCESS_DENIED_CODES: &[&str] = &[
    "AccessDeniedException",
    "AccessDenied",
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "ExpiredTokenException",
    "ExpiredToken",
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
];

/// The innermost cause of an error, which says what went wrong without the layers around it.
fn root_cause(error: &dyn std::error::Error) -> String {
    let mut cause = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}

/// Sorts any SDK error (every AWS SDK crate shares the type) into an [`AwsError`].
pub(crate) fn classify<E>(error: SdkError<E>) -> AwsError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let text = DisplayErrorContext(&error).to_string();
    match &error {
        SdkError::DispatchFailure(failure) => {
            let connector = failure.as_connector_error();
            let cause = connector.map_or_else(|| text.clone(), |c| root_cause(c));
            if text.contains("Missing Region") || text.contains("missing signing region") {
                AwsError::NoRegion
            } else if text.contains("loading credentials") || text.contains("no credentials") {
                // The chain lists every provider it tried, a line each: the first line says it.
                let first = cause.lines().next().unwrap_or_default();
                AwsError::NoCredentials(first.trim_end_matches(" Attempted:").trim_end_matches('.').to_string())
            } else if connector.is_some_and(|c| c.is_io()) {
                AwsError::Unreachable(cause)
            } else {
                AwsError::Transient(cause)
            }
        }
        SdkError::TimeoutError(_) | SdkError::ResponseError(_) => AwsError::Transient(root_cause(&error)),
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            let said = match (error.code(), error.message()) {
                (Some(code), Some(message)) => format!("{code}: {message}"),
                _ => service.err().to_string(),
            };
            match error.code() {
                Some(code) if NOT_FOUND_CODES.contains(&code) => AwsError::NotFound(said),
                Some("PreconditionFailedException") => AwsError::RevisionChanged(said),
                Some(code) if ACCESS_DENIED_CODES.contains(&code) => AwsError::AccessDenied(said),
                Some(code) if TRANSIENT_CODES.contains(&code) => AwsError::Transient(said),
                _ if status == 429 || status >= 500 => AwsError::Transient(said),
                _ if status == 403 => AwsError::AccessDenied(said),
                _ => AwsError::Other(said),
            }
        }
        _ => AwsError::Other(text),
    }
}
