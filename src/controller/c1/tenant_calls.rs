//! What one tenant's ConductorOne calls did: counts for its metrics, and the last error and recent
//! 429s for its status. Fed by the tenant client's metrics hook, one record per HTTP attempt.

use std::{
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use crate::conductorone::CallOutcome;

/// A tenant counts as rate limited while ConductorOne answered it 429 this recently.
pub const RATE_LIMITED_WINDOW: Duration = Duration::from_secs(60);

#[derive(Default)]
pub struct TenantCalls {
    calls: AtomicU64,
    errors: AtomicU64,
    throttled: AtomicU64,
    last: Mutex<Last>,
}

#[derive(Default)]
struct Last {
    /// Operation, reason and HTTP status: fixed words, never a server's text or a credential.
    error: Option<String>,
    throttled_at: Option<Instant>,
}

/// The counts and the state the status shows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CallsSnapshot {
    pub calls: u64,
    pub errors: u64,
    pub throttled: u64,
    pub last_error: Option<String>,
    /// A 429 within [`RATE_LIMITED_WINDOW`].
    pub rate_limited: bool,
}

impl TenantCalls {
    pub fn record(&self, call: &CallOutcome) {
        self.record_at(call, Instant::now());
    }

    fn record_at(&self, call: &CallOutcome, at: Instant) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let failed = call.result != "Ok";
        if !failed && !call.rate_limited {
            return;
        }
        let mut last = self.last.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if call.rate_limited {
            self.throttled.fetch_add(1, Ordering::Relaxed);
            last.throttled_at = Some(at);
        }
        if failed {
            self.errors.fetch_add(1, Ordering::Relaxed);
            let status = call.status.map(|s| format!(" (HTTP {s})")).unwrap_or_default();
            last.error = Some(format!("{}: {}{status}", call.operation, call.result));
        }
    }

    pub fn snapshot(&self) -> CallsSnapshot {
        self.snapshot_at(Instant::now())
    }

    fn snapshot_at(&self, now: Instant) -> CallsSnapshot {
        let last = self.last.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        CallsSnapshot {
            calls: self.calls.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            throttled: self.throttled.load(Ordering::Relaxed),
            last_error: last.error.clone(),
            rate_limited: last
                .throttled_at
                .is_some_and(|t| now.saturating_duration_since(t) < RATE_LIMITED_WINDOW),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(result: &'static str, status: Option<u16>) -> CallOutcome {
        CallOutcome {
            operation: "rotate_credential",
            result,
            status,
            latency: Duration::from_millis(5),
            attempt: 0,
            rate_limited: status == Some(429),
        }
    }

    #[test]
    fn counts_calls_errors_and_429s_and_keeps_the_last_error_in_fixed_words() {
        let calls = TenantCalls::default();
        let t0 = Instant::now();
        calls.record_at(&call("Ok", Some(200)), t0);
        assert_eq!(calls.snapshot_at(t0), CallsSnapshot { calls: 1, ..Default::default() });

        // Each attempt counts: a 429 and then a refusal.
        calls.record_at(&call("RateLimited", Some(429)), t0);
        calls.record_at(&call("Unauthorized", Some(401)), t0);
        let s = calls.snapshot_at(t0 + Duration::from_secs(1));
        assert_eq!((s.calls, s.errors, s.throttled), (3, 2, 1));
        assert_eq!(s.last_error.as_deref(), Some("rotate_credential: Unauthorized (HTTP 401)"));
        assert!(s.rate_limited);

        calls.record_at(&call("TransportError", None), t0);
        let later = calls.snapshot_at(t0 + RATE_LIMITED_WINDOW);
        assert!(!later.rate_limited, "a minute without a 429 is no longer rate limited");
        assert_eq!(later.last_error.as_deref(), Some("rotate_credential: TransportError"));
    }
}
