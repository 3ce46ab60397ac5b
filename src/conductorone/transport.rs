//! Sends one logical call: rate limit, timeout, classification of the answer, retries with
//! backoff, metrics. Knows nothing about individual operations.

use std::time::{Duration, SystemTime};

use reqwest::{RequestBuilder, Response, StatusCode};
use serde::Deserialize;
use tokio::time::Instant;

use super::config::ClientConfig;
use super::error::{Error, ErrorKind};
use super::metrics::{CallOutcome, MetricsHook};
use super::proto::{int64, null_default};
use super::ratelimit::RateLimiter;
use super::retry::{self, Idempotency};

/// Responses here are small JSON documents; anything bigger is not the API talking.
const MAX_BODY_BYTES: usize = 1 << 20;

/// Which endpoint answered: errors from the token endpoint never map to `NotFound`, so that a
/// wrong host can never look like "credential already revoked".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Endpoint {
    Token,
    Api,
}

pub(crate) struct Transport {
    http: reqwest::Client,
    cfg: ClientConfig,
    limiter: RateLimiter,
    metrics: Option<MetricsHook>,
}

impl Transport {
    pub(crate) fn new(http: reqwest::Client, cfg: ClientConfig) -> Result<Self, Error> {
        let limiter = RateLimiter::new(cfg.requests_per_second, cfg.burst)?;
        Ok(Transport { http, cfg, limiter, metrics: None })
    }

    pub(crate) fn set_metrics(&mut self, hook: MetricsHook) {
        self.metrics = Some(hook);
    }

    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    pub(crate) fn config(&self) -> &ClientConfig {
        &self.cfg
    }

    pub(crate) fn metrics_hook(&self) -> Option<MetricsHook> {
        self.metrics.clone()
    }

    /// Runs `build()` until it succeeds or a failure is final, returning the 2xx body.
    /// `build` is called once per attempt because a request cannot be replayed.
    pub(crate) async fn send(
        &self,
        operation: &'static str,
        endpoint: Endpoint,
        idempotency: Idempotency,
        build: impl Fn() -> RequestBuilder,
    ) -> Result<Vec<u8>, Error> {
        let mut attempt = 0;
        loop {
            self.limiter.acquire().await;
            let started = Instant::now();
            let result = self.attempt(operation, endpoint, build()).await;
            self.record(operation, attempt, started.elapsed(), &result);
            let err = match result {
                Ok((_, body)) => return Ok(body),
                Err(err) => err,
            };
            if attempt >= self.cfg.max_retries || !retry::is_retryable(&err, idempotency) {
                return Err(err);
            }
            let Some(delay) = retry::next_delay(
                &err,
                attempt,
                self.cfg.backoff_base,
                self.cfg.backoff_max,
                self.cfg.max_retry_after,
            ) else {
                return Err(err);
            };
            tracing::debug!(
                operation,
                attempt,
                reason = err.reason(),
                status = err.status(),
                delay_ms = delay.as_millis() as u64,
                "retrying ConductorOne call"
            );
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    async fn attempt(
        &self,
        operation: &'static str,
        endpoint: Endpoint,
        request: RequestBuilder,
    ) -> Result<(u16, Vec<u8>), Error> {
        let transport_error = |e: reqwest::Error| {
            let kind = if e.is_timeout() { ErrorKind::Timeout } else { ErrorKind::Transport };
            Error::new(kind, operation, "").with_source(e)
        };
        let response = request.timeout(self.cfg.timeout).send().await.map_err(transport_error)?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| retry::parse_retry_after(v, SystemTime::now()));
        let body =
            read_body(response).await.map_err(|e| e.map_or_else(|| too_big(operation), transport_error))?;
        if status.is_success() {
            return Ok((status.as_u16(), body));
        }
        Err(classify(status, &body, endpoint, operation).with_retry_after(retry_after))
    }

    fn record(
        &self,
        operation: &'static str,
        attempt: u32,
        latency: Duration,
        result: &Result<(u16, Vec<u8>), Error>,
    ) {
        let (outcome, status) = match result {
            Ok((status, _)) => ("Ok", Some(*status)),
            Err(e) => (e.reason(), e.status()),
        };
        tracing::debug!(
            operation,
            attempt,
            outcome,
            status,
            latency_ms = latency.as_millis() as u64,
            "ConductorOne call"
        );
        if let Some(hook) = &self.metrics {
            hook(&CallOutcome {
                operation,
                result: outcome,
                status,
                latency,
                attempt,
                rate_limited: status == Some(429),
            });
        }
    }
}

fn too_big(operation: &'static str) -> Error {
    Error::new(ErrorKind::Decode, operation, "response body too large")
}

/// `Err(None)` means the body exceeded [`MAX_BODY_BYTES`].
async fn read_body(mut response: Response) -> Result<Vec<u8>, Option<reqwest::Error>> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(Some)? {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The union of the API's gRPC-status body and the token endpoint's OAuth error body.
#[derive(Deserialize, Default)]
#[serde(default)]
struct ErrorBody {
    #[serde(deserialize_with = "int64")]
    code: i64,
    #[serde(deserialize_with = "null_default")]
    message: String,
    #[serde(deserialize_with = "null_default")]
    error: String,
    #[serde(deserialize_with = "null_default")]
    error_description: String,
}

/// gRPC `NOT_FOUND`.
const GRPC_NOT_FOUND: i64 = 5;

fn classify(status: StatusCode, body: &[u8], endpoint: Endpoint, operation: &'static str) -> Error {
    let parsed: Option<ErrorBody> = serde_json::from_slice(body).ok();
    let code = parsed.as_ref().map(|b| b.code).filter(|c| *c != 0);
    let message = match &parsed {
        Some(b) if !b.message.is_empty() => b.message.clone(),
        Some(b) if !b.error.is_empty() && !b.error_description.is_empty() => {
            format!("{}: {}", b.error, b.error_description)
        }
        Some(b) if !b.error.is_empty() => b.error.clone(),
        _ => String::new(),
    };
    let kind = match (status.as_u16(), endpoint) {
        (401, _) => ErrorKind::Unauthorized,
        (403, _) => ErrorKind::Forbidden,
        (408, _) => ErrorKind::Timeout,
        (429, _) => ErrorKind::RateLimited,
        (500..=599, _) => ErrorKind::Server,
        // OAuth reports bad client assertions as 400 (invalid_client / invalid_grant), and any
        // other refusal by the token endpoint equally means "cannot authenticate".
        (_, Endpoint::Token) => ErrorKind::Unauthorized,
        // Only a genuine ConductorOne answer means "no such object"; a bare 404 from a proxy
        // or a wrong host must not let a caller conclude that a credential is gone.
        (404, Endpoint::Api) if code == Some(GRPC_NOT_FOUND) => ErrorKind::NotFound,
        (_, Endpoint::Api) => ErrorKind::InvalidRequest,
    };
    let message = if status == StatusCode::NOT_FOUND && kind != ErrorKind::NotFound {
        format!("404 without a ConductorOne error body (wrong host or proxy?) {message}")
    } else {
        message
    };
    Error::new(kind, operation, message.trim().to_owned()).with_status(status.as_u16(), code)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(status: u16, body: &str, endpoint: Endpoint) -> ErrorKind {
        classify(StatusCode::from_u16(status).unwrap(), body.as_bytes(), endpoint, "t").kind()
    }

    #[test]
    fn statuses_map_to_kinds() {
        use Endpoint::*;
        let not_found = r#"{"code":5,"message":"not found (request-id: x)"}"#;
        assert_eq!(kind(404, not_found, Api), ErrorKind::NotFound);
        assert_eq!(kind(404, "<html>nginx</html>", Api), ErrorKind::InvalidRequest);
        assert_eq!(kind(404, not_found, Token), ErrorKind::Unauthorized);
        assert_eq!(kind(401, "", Api), ErrorKind::Unauthorized);
        assert_eq!(kind(403, r#"{"code":7}"#, Api), ErrorKind::Forbidden);
        assert_eq!(kind(400, r#"{"error":"invalid_client"}"#, Token), ErrorKind::Unauthorized);
        assert_eq!(kind(400, r#"{"code":3}"#, Api), ErrorKind::InvalidRequest);
        assert_eq!(kind(409, "", Api), ErrorKind::InvalidRequest);
        assert_eq!(kind(408, "", Api), ErrorKind::Timeout);
        assert_eq!(kind(429, "", Token), ErrorKind::RateLimited);
        assert_eq!(kind(503, "", Api), ErrorKind::Server);
        assert_eq!(kind(302, "", Api), ErrorKind::InvalidRequest);
    }

    #[test]
    fn error_bodies_supply_code_and_message() {
        let err = classify(
            StatusCode::NOT_FOUND,
            br#"{"code":"5","message":"not found","details":[]}"#,
            Endpoint::Api,
            "get_credential",
        );
        assert_eq!((err.status(), err.grpc_code()), (Some(404), Some(5)));
        assert_eq!(err.message(), "not found");
        let err = classify(
            StatusCode::BAD_REQUEST,
            br#"{"error":"invalid_client","error_description":"bad assertion"}"#,
            Endpoint::Token,
            "token",
        );
        assert_eq!(err.message(), "invalid_client: bad assertion");
    }
}
