use std::fmt;
use std::time::Duration;

/// Longest server-supplied message kept in an [`Error`]: errors end up in status conditions,
/// events and logs, so an unexpectedly chatty server must not bloat them.
const MAX_MESSAGE_CHARS: usize = 300;

/// What went wrong, coarse enough to drive controller decisions and to serve as a bounded
/// metric label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The API credentials could not be parsed (malformed client ID or client secret), or the
    /// token endpoint handed out a token type this client cannot use. Detected locally.
    InvalidCredentials,
    /// HTTP 401, or the token endpoint rejected the client assertion.
    Unauthorized,
    /// HTTP 403: authenticated, but the principal lacks permission.
    Forbidden,
    /// HTTP 404 carrying a ConductorOne (gRPC status) body. Never produced by the token endpoint,
    /// so callers can safely treat it as "the object is gone" (e.g. an already revoked credential).
    NotFound,
    /// Any other 4xx (and unexpected statuses): the server refused the request as sent.
    InvalidRequest,
    /// HTTP 429 after retries were exhausted or the server asked for a longer pause than allowed.
    RateLimited,
    /// HTTP 5xx.
    Server,
    /// The call did not complete within the configured timeout (or the server answered 408).
    Timeout,
    /// Connection-level failure: refused, reset, dropped mid-response, TLS failure.
    Transport,
    /// A 2xx response that does not match the contract.
    Decode,
    /// The client configuration is unusable (rate limits, CA bundle, ids in a request).
    Config,
}

impl ErrorKind {
    /// Stable CamelCase reason: valid as a Kubernetes condition reason and as a metric label.
    pub fn reason(self) -> &'static str {
        match self {
            ErrorKind::InvalidCredentials => "InvalidCredentials",
            ErrorKind::Unauthorized => "Unauthorized",
            ErrorKind::Forbidden => "Forbidden",
            ErrorKind::NotFound => "NotFound",
            ErrorKind::InvalidRequest => "InvalidRequest",
            ErrorKind::RateLimited => "RateLimited",
            ErrorKind::Server => "ServerError",
            ErrorKind::Timeout => "Timeout",
            ErrorKind::Transport => "TransportError",
            ErrorKind::Decode => "DecodeError",
            ErrorKind::Config => "ConfigError",
        }
    }

    /// True when repeating the same call cannot succeed until something outside the client
    /// changes (credentials, permissions, configuration, the object itself). A controller should
    /// surface these as `Stalled` instead of retrying quickly.
    pub fn is_permanent(self) -> bool {
        matches!(
            self,
            ErrorKind::InvalidCredentials
                | ErrorKind::Unauthorized
                | ErrorKind::Forbidden
                | ErrorKind::NotFound
                | ErrorKind::InvalidRequest
                | ErrorKind::Config
        )
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

/// An error from the ConductorOne client.
///
/// It never holds secrets: messages are built from fixed text, ids, and the `message` field of
/// a server error body. Raw response bodies and JSON decoder messages (which can quote input)
/// are deliberately not kept.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    operation: &'static str,
    status: Option<u16>,
    code: Option<i64>,
    message: String,
    retry_after: Option<Duration>,
    // Whether the request certainly never reached the server; only then may a
    // non-idempotent call be repeated after a transport failure.
    not_sent: bool,
    source: Option<reqwest::Error>,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, operation: &'static str, message: impl Into<String>) -> Self {
        let mut message: String = message.into();
        if message.chars().count() > MAX_MESSAGE_CHARS {
            message = message.chars().take(MAX_MESSAGE_CHARS).collect::<String>() + "…";
        }
        Error {
            kind,
            operation,
            status: None,
            code: None,
            message,
            retry_after: None,
            not_sent: false,
            source: None,
        }
    }

    pub(crate) fn with_status(mut self, status: u16, code: Option<i64>) -> Self {
        self.status = Some(status);
        self.code = code;
        self
    }

    pub(crate) fn with_retry_after(mut self, retry_after: Option<Duration>) -> Self {
        self.retry_after = retry_after;
        self
    }

    pub(crate) fn with_source(mut self, source: reqwest::Error) -> Self {
        self.not_sent = source.is_connect();
        // The URL holds only the tenant host and object ids, but dropping it keeps this error
        // free of anything request-specific beyond what `operation` already says.
        self.source = Some(source.without_url());
        self
    }

    pub(crate) fn not_sent(&self) -> bool {
        self.not_sent
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// Short stable reason for conditions and metrics; see [`ErrorKind::reason`].
    pub fn reason(&self) -> &'static str {
        self.kind.reason()
    }

    /// See [`ErrorKind::is_permanent`].
    pub fn is_permanent(&self) -> bool {
        self.kind.is_permanent()
    }

    /// The client operation that failed, e.g. `"rotate_credential"` or `"token"`.
    pub fn operation(&self) -> &'static str {
        self.operation
    }

    /// The HTTP status, when the server answered.
    pub fn status(&self) -> Option<u16> {
        self.status
    }

    /// The numeric gRPC status code from a `{code, message}` body, when there was one.
    pub fn grpc_code(&self) -> Option<i64> {
        self.code
    }

    /// The server's requested pause (from `Retry-After`), so a controller can requeue no sooner.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// Human-readable detail (no secrets).
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ConductorOne {} failed: {}", self.operation, self.kind)?;
        match (self.status, self.code) {
            (Some(status), Some(code)) => write!(f, " (HTTP {status}, code {code})")?,
            (Some(status), None) => write!(f, " (HTTP {status})")?,
            _ => {}
        }
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        if let Some(source) = &self.source {
            write!(f, ": {source}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_ref().map(|e| e as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_condition_safe_and_distinct() {
        let kinds = [
            ErrorKind::InvalidCredentials,
            ErrorKind::Unauthorized,
            ErrorKind::Forbidden,
            ErrorKind::NotFound,
            ErrorKind::InvalidRequest,
            ErrorKind::RateLimited,
            ErrorKind::Server,
            ErrorKind::Timeout,
            ErrorKind::Transport,
            ErrorKind::Decode,
            ErrorKind::Config,
        ];
        let mut seen = std::collections::HashSet::new();
        for kind in kinds {
            let reason = kind.reason();
            assert!(seen.insert(reason), "duplicate reason {reason}");
            assert!(reason.chars().all(|c| c.is_ascii_alphanumeric()));
            assert!(reason.starts_with(|c: char| c.is_ascii_uppercase()));
        }
    }

    #[test]
    fn auth_failures_are_permanent_and_transient_failures_are_not() {
        assert!(ErrorKind::Unauthorized.is_permanent());
        assert!(ErrorKind::Forbidden.is_permanent());
        assert!(ErrorKind::InvalidCredentials.is_permanent());
        for kind in [ErrorKind::RateLimited, ErrorKind::Server, ErrorKind::Timeout, ErrorKind::Transport] {
            assert!(!kind.is_permanent(), "{kind:?}");
        }
    }

    #[test]
    fn display_includes_status_code_and_truncated_message() {
        let long = "x".repeat(1000);
        let err = Error::new(ErrorKind::NotFound, "get_credential", long).with_status(404, Some(5));
        let text = err.to_string();
        assert!(text.starts_with("ConductorOne get_credential failed: NotFound (HTTP 404, code 5): x"));
        assert!(text.len() < 400, "{}", text.len());
    }
}
