//! When to try a failed call again, and how long to wait first.

use std::time::{Duration, SystemTime};

use k8s_openapi::jiff::Timestamp;

use super::error::{Error, ErrorKind};

/// Whether an operation may be repeated blindly. Rotation mints a credential, so repeating it
/// after an ambiguous failure could leave a credential nobody knows about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Idempotency {
    Idempotent,
    NotIdempotent,
}

/// Whether `err` is worth another attempt.
///
/// A non-idempotent call is retried only when the server cannot have acted on it: a 429 (the
/// request was refused before processing) or a connection that was never established.
pub(crate) fn is_retryable(err: &Error, idempotency: Idempotency) -> bool {
    match err.kind() {
        ErrorKind::RateLimited => true,
        ErrorKind::Timeout | ErrorKind::Transport if err.not_sent() => true,
        ErrorKind::Server | ErrorKind::Timeout | ErrorKind::Transport => {
            idempotency == Idempotency::Idempotent
        }
        _ => false,
    }
}

/// Exponential backoff with "equal jitter": half the step is fixed, half random, so retries
/// from many callers spread out yet never come back sooner than half the nominal delay.
pub(crate) fn backoff(attempt: u32, base: Duration, max: Duration) -> Duration {
    let step = base.saturating_mul(2u32.saturating_pow(attempt.min(16))).min(max);
    let half = step / 2;
    half + half.mul_f64(rand::random::<f64>())
}

/// Parses `Retry-After`: delta-seconds or an HTTP-date (IMF-fixdate, an RFC 2822 subset).
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = k8s_openapi::jiff::fmt::rfc2822::parse(value).ok()?.timestamp();
    let now = Timestamp::try_from(now).ok()?;
    let delta = at.duration_since(now);
    Some(Duration::try_from(delta).unwrap_or(Duration::ZERO))
}

/// What to do after a retryable failure: the wait before the next attempt, or `None` when the
/// server asked for a pause longer than `max_retry_after` (the caller should give up and let
/// its own requeue honour [`Error::retry_after`]).
pub(crate) fn next_delay(
    err: &Error,
    attempt: u32,
    base: Duration,
    max_backoff: Duration,
    max_retry_after: Duration,
) -> Option<Duration> {
    let backoff = backoff(attempt, base, max_backoff);
    match err.retry_after() {
        Some(wanted) if wanted > max_retry_after => None,
        Some(wanted) => Some(wanted.max(backoff)),
        None => Some(backoff),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(kind: ErrorKind) -> Error {
        Error::new(kind, "test", "")
    }

    #[test]
    fn backoff_grows_is_jittered_and_capped() {
        let base = Duration::from_millis(100);
        let max = Duration::from_secs(2);
        for attempt in 0..10 {
            let nominal = (base * 2u32.pow(attempt)).min(max);
            for _ in 0..20 {
                let d = backoff(attempt, base, max);
                assert!(d >= nominal / 2 && d <= nominal, "attempt {attempt}: {d:?}");
            }
        }
        let samples: std::collections::HashSet<Duration> = (0..20).map(|_| backoff(3, base, max)).collect();
        assert!(samples.len() > 1, "jitter must vary the delay");
        assert!(backoff(u32::MAX, base, max) <= max);
    }

    #[test]
    fn retry_after_seconds_and_http_date() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
        assert_eq!(parse_retry_after("3", now), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:49:47 GMT", now), Some(Duration::from_secs(10)));
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:49:00 GMT", now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-1", now), None);
    }

    #[test]
    fn server_pause_is_honoured_unless_too_long() {
        let base = Duration::from_millis(10);
        let limited = err(ErrorKind::RateLimited).with_retry_after(Some(Duration::from_secs(2)));
        let d = next_delay(&limited, 0, base, base, Duration::from_secs(5)).unwrap();
        assert_eq!(d, Duration::from_secs(2));
        assert_eq!(next_delay(&limited, 0, base, base, Duration::from_secs(1)), None);
        let plain = err(ErrorKind::Server);
        assert!(next_delay(&plain, 0, base, base, Duration::ZERO).unwrap() <= base);
    }

    #[test]
    fn only_safe_failures_are_retried() {
        use Idempotency::*;
        for kind in [ErrorKind::Server, ErrorKind::Timeout, ErrorKind::Transport] {
            assert!(is_retryable(&err(kind), Idempotent), "{kind:?}");
            assert!(!is_retryable(&err(kind), NotIdempotent), "{kind:?}");
        }
        assert!(is_retryable(&err(ErrorKind::RateLimited), NotIdempotent));
        for kind in [
            ErrorKind::Unauthorized,
            ErrorKind::Forbidden,
            ErrorKind::NotFound,
            ErrorKind::InvalidRequest,
            ErrorKind::Decode,
            ErrorKind::InvalidCredentials,
        ] {
            assert!(!is_retryable(&err(kind), Idempotent), "{kind:?}");
        }
    }
}
