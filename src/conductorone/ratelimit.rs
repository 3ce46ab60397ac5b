//! One process-wide limit on ConductorOne calls, shared by every clone of the client, so that
//! many reconcilers and retries together never exceed the configured rate.

use std::num::NonZeroU32;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter as Gcra};

use super::error::{Error, ErrorKind};

pub(crate) struct RateLimiter {
    inner: DefaultDirectRateLimiter,
}

impl RateLimiter {
    /// `burst` of 0 is treated as 1 (no bursting); a rate of 0 is a configuration error.
    pub(crate) fn new(requests_per_second: u32, burst: u32) -> Result<Self, Error> {
        let rate = NonZeroU32::new(requests_per_second).ok_or_else(|| {
            Error::new(ErrorKind::Config, "configure", "requests_per_second must be at least 1")
        })?;
        let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
        Ok(RateLimiter { inner: Gcra::direct(Quota::per_second(rate).allow_burst(burst)) })
    }

    /// Waits for a permit. Cancellation-safe: dropping the future takes no permit.
    pub(crate) async fn acquire(&self) {
        self.inner.until_ready().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn zero_rate_is_rejected() {
        let err = RateLimiter::new(0, 5).err().unwrap();
        assert_eq!(err.kind(), ErrorKind::Config);
    }

    #[tokio::test]
    async fn burst_is_immediate_then_paced() {
        let limiter = RateLimiter::new(20, 3).unwrap();
        let start = Instant::now();
        for _ in 0..3 {
            limiter.acquire().await;
        }
        assert!(start.elapsed() < Duration::from_millis(40));
        for _ in 0..4 {
            limiter.acquire().await;
        }
        // Four more permits at 20/s need at least ~200 ms.
        assert!(start.elapsed() >= Duration::from_millis(180), "{:?}", start.elapsed());
    }
}
