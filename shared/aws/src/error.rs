//! SDK errors → [`PortError`], and the retry policy every adapter uses.
//!
//! One classification for all services: the SDK crates share `SdkError` and the error-metadata
//! trait, so a throttled DynamoDB write and a throttled SQS receive are treated alike.

use std::future::Future;
use std::time::Duration;

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use backon::{ExponentialBuilder, Retryable};
use cuepoint_runtime::ports::{PortError, PortResult};

/// Error codes that mean "slow down / try again", whatever the HTTP status.
const TRANSIENT_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "TooManyRequestsException",
    "RequestThrottled",
    "RequestThrottledException",
    "RequestLimitExceeded",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "SlowDown",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "InternalError",
    "InternalFailure",
    "InternalServerError",
    "InternalServerErrorException",
    "InternalServiceError",
    "InternalServiceErrorException",
    "KMSThrottlingException",
    "RequestTimeout",
    "RequestTimeoutException",
    "PriorRequestNotComplete",
    // Rekognition: too many concurrent jobs for the account; the queue will hold the work.
    "LimitExceededException",
];

/// Error codes that mean the named resource does not exist.
const NOT_FOUND_CODES: &[&str] = &[
    "AWS.SimpleQueueService.NonExistentQueue",
    "QueueDoesNotExist",
    "ResourceNotFoundException",
    "ResourceNotFound",
    "NoSuchBucket",
    "NoSuchKey",
    "NotFound",
    "NotFoundException",
];

/// Classify a failed SDK call. `what` names the call and its target, e.g. `sqs receive ingest`.
pub fn port_error<E>(what: &str, err: SdkError<E, HttpResponse>) -> PortError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let message = format!("{what}: {}", DisplayErrorContext(&err));
    match &err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            PortError::Transient(message)
        }
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            classify(service.err().code(), status, message)
        }
        SdkError::ConstructionFailure(_) => PortError::Permanent(message),
        // `SdkError` is non-exhaustive: an unknown kind is not worth a retry storm.
        _ => PortError::Permanent(message),
    }
}

/// The kind of a service error from its code and HTTP status.
pub fn classify(code: Option<&str>, status: u16, message: String) -> PortError {
    if let Some(code) = code {
        if TRANSIENT_CODES.contains(&code) {
            return PortError::Transient(message);
        }
        if NOT_FOUND_CODES.contains(&code) {
            return PortError::NotFound(message);
        }
    }
    if status == 429 || status >= 500 {
        PortError::Transient(message)
    } else {
        PortError::Permanent(message)
    }
}

/// The error code of a service error, if the call reached the service.
pub fn error_code<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> Option<&str> {
    match err {
        SdkError::ServiceError(service) => service.err().code(),
        _ => None,
    }
}

/// Exponential backoff with jitter: 100 ms doubling to 5 s, 4 retries. Short on purpose: the
/// consumer loop retries a failed message with its own, much longer, backoff.
pub fn backoff() -> ExponentialBuilder {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(100))
        .with_max_delay(Duration::from_secs(5))
        .with_max_times(4)
        .with_jitter()
}

/// Run `call` again on transient errors only. Use where a repeat is safe (idempotent calls, or
/// calls carrying an idempotency token).
pub async fn retry_transient<T, F, Fut>(what: &str, call: F) -> PortResult<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = PortResult<T>>,
{
    call.retry(backoff())
        .when(PortError::is_transient)
        .notify(|err: &PortError, after: Duration| {
            tracing::debug!(call = what, error = %err, retry_in_ms = after.as_millis() as u64, "transient AWS error, retrying");
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_and_5xx_are_transient_others_permanent() {
        let m = || "x".to_string();
        assert!(classify(Some("ThrottlingException"), 400, m()).is_transient());
        assert!(classify(Some("ProvisionedThroughputExceededException"), 400, m()).is_transient());
        assert!(classify(Some("Whatever"), 503, m()).is_transient());
        assert!(classify(None, 429, m()).is_transient());
        assert_eq!(
            classify(Some("ValidationException"), 400, m()),
            PortError::Permanent("x".into())
        );
        assert_eq!(
            classify(Some("AccessDeniedException"), 403, m()),
            PortError::Permanent("x".into())
        );
        assert_eq!(
            classify(Some("NoSuchKey"), 404, m()),
            PortError::NotFound("x".into())
        );
        assert_eq!(
            classify(Some("AWS.SimpleQueueService.NonExistentQueue"), 400, m()),
            PortError::NotFound("x".into())
        );
    }

    #[tokio::test]
    async fn retries_transient_then_gives_up_on_permanent() {
        let mut calls = 0;
        let out: PortResult<u32> = retry_transient("test", || {
            calls += 1;
            let n = calls;
            async move {
                if n < 3 {
                    Err(PortError::Transient("busy".into()))
                } else {
                    Ok(n)
                }
            }
        })
        .await;
        assert_eq!(out, Ok(3));

        let mut calls = 0;
        let out: PortResult<u32> = retry_transient("test", || {
            calls += 1;
            async { Err(PortError::Permanent("bad".into())) }
        })
        .await;
        assert_eq!(out, Err(PortError::Permanent("bad".into())));
        assert_eq!(calls, 1, "permanent errors are not retried");
    }
}
