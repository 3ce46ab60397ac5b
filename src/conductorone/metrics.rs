//! A hook through which the operator records one observation per HTTP attempt. Every field is
//! bounded so it can become a metric label directly.

use std::sync::Arc;
use std::time::Duration;

/// Called after every HTTP attempt (token requests included), retries counted separately.
pub type MetricsHook = Arc<dyn Fn(&CallOutcome) + Send + Sync>;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallOutcome {
    /// `token`, `rotate_credential`, `get_credential`, `revoke_credential` or `get_connector`.
    pub operation: &'static str,
    /// `"Ok"` or the [`ErrorKind::reason`](super::ErrorKind::reason) of the failure.
    pub result: &'static str,
    /// HTTP status, if the server answered.
    pub status: Option<u16>,
    /// Time spent on the attempt itself (rate-limiter waits and backoff excluded).
    pub latency: Duration,
    /// 0 for the first attempt of a call.
    pub attempt: u32,
    /// The server answered 429.
    pub rate_limited: bool,
}

impl CallOutcome {
    /// `2xx`, `3xx`, `4xx`, `5xx`, or `none` when no response arrived.
    pub fn status_class(&self) -> &'static str {
        match self.status {
            Some(200..=299) => "2xx",
            Some(300..=399) => "3xx",
            Some(400..=499) => "4xx",
            Some(500..=599) => "5xx",
            Some(_) => "other",
            None => "none",
        }
    }
}
