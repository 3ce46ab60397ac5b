//! How the ConductorOne client behaves: timeouts, retries, its rate, TLS. Its own module because the
//! client, the transport and the token cache all read it.

use std::{path::PathBuf, time::Duration};

#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Limit for one HTTP attempt, from connecting until the body is read.
    pub timeout: Duration,
    /// Further attempts after the first for retryable failures (0 disables retries).
    pub max_retries: u32,
    /// Sustained rate of HTTP requests for the whole process, retries and token requests
    /// included. Must be at least 1.
    pub requests_per_second: u32,
    /// Requests allowed at once above the sustained rate.
    pub burst: u32,
    /// Use plain `http://` for loopback hosts (`localhost`, 127.0.0.0/8, `::1`) and ignore
    /// proxy settings. For tests against a local fake only; other hosts always get `https://`.
    pub allow_insecure_http: bool,
    /// First retry delay; doubles per attempt, with jitter.
    pub backoff_base: Duration,
    /// Ceiling for the exponential backoff.
    pub backoff_max: Duration,
    /// Longest `Retry-After` waited out inside a call. A longer request ends the call with
    /// [`ErrorKind::RateLimited`](super::ErrorKind::RateLimited) and [`Error::retry_after`](super::Error::retry_after) set, so the caller requeues
    /// instead of holding a worker.
    pub max_retry_after: Duration,
    /// Extra CA certificates (PEM). When `None`, `SSL_CERT_FILE` is used if set.
    pub ca_bundle: Option<PathBuf>,
    /// More CA certificates, as PEM text: a tenant's `caBundle`, trusted besides the above.
    pub extra_ca_pem: Option<String>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            timeout: Duration::from_secs(15),
            max_retries: 3,
            requests_per_second: 5,
            burst: 10,
            allow_insecure_http: false,
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(10),
            max_retry_after: Duration::from_secs(60),
            ca_bundle: None,
            extra_ca_pem: None,
        }
    }
}
