//! One attempt's refusal, as the retry loop of traced's own requests reads
//! it, over HTTP and gRPC alike.

use std::time::Duration;

use crate::export::failure::FailureCause;

/// Why an attempt failed, and whether and when to try again.
pub(crate) struct Refused {
    pub(crate) cause: FailureCause,
    pub(crate) retry_after: Option<Duration>,
    pub(crate) retryable: bool,
}
