//! Per-object exponential backoff. kube-runtime's error policy is not told about successes, so the
//! failure count lives here and a successful reconcile resets it.

use std::{collections::HashMap, sync::Mutex, time::Duration};

use kube::runtime::reflector::ObjectRef;
use rand::Rng;

use crate::api::BatonConnector;

pub struct Backoff {
    base: Duration,
    max: Duration,
    failures: Mutex<HashMap<ObjectRef<BatonConnector>, u32>>,
}

impl Backoff {
    pub fn new(base: Duration, max: Duration) -> Self {
        Self { base, max, failures: Mutex::default() }
    }

    /// Records a failure and returns how long to wait before retrying: base·2ⁿ capped at max, with up
    /// to 20% jitter off the top so objects that failed together do not retry together.
    pub fn failed(&self, obj: &ObjectRef<BatonConnector>) -> Duration {
        let n = {
            let mut failures = self.failures.lock().expect("backoff lock poisoned");
            let n = failures.entry(obj.clone()).or_insert(0);
            *n = n.saturating_add(1);
            *n
        };
        let delay = delay_for(self.base, self.max, n);
        delay.mul_f64(1.0 - rand::rng().random_range(0.0..0.2))
    }

    /// Forgets an object's failures after it reconciled successfully.
    pub fn succeeded(&self, obj: &ObjectRef<BatonConnector>) {
        self.failures.lock().expect("backoff lock poisoned").remove(obj);
    }

    /// Forgets the failures of every object `keep` says no to.
    pub fn retain(&self, keep: impl Fn(&ObjectRef<BatonConnector>) -> bool) {
        self.failures.lock().expect("backoff lock poisoned").retain(|o, _| keep(o));
    }

    /// Forgets every object's failures (the API server is back after an outage).
    pub fn clear(&self) {
        self.failures.lock().expect("backoff lock poisoned").clear();
    }

    /// Consecutive failures of one object so far.
    pub fn failures(&self, obj: &ObjectRef<BatonConnector>) -> u32 {
        self.failures.lock().expect("backoff lock poisoned").get(obj).copied().unwrap_or(0)
    }

    /// How many objects are waiting to retry.
    pub fn len(&self) -> usize {
        self.failures.lock().expect("backoff lock poisoned").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The un-jittered delay after `failures` consecutive failures.
pub fn delay_for(base: Duration, max: Duration, failures: u32) -> Duration {
    let exp = failures.saturating_sub(1).min(30);
    base.saturating_mul(1u32 << exp).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap() {
        let (b, m) = (Duration::from_secs(5), Duration::from_secs(300));
        assert_eq!(delay_for(b, m, 1), Duration::from_secs(5));
        assert_eq!(delay_for(b, m, 2), Duration::from_secs(10));
        assert_eq!(delay_for(b, m, 4), Duration::from_secs(40));
        assert_eq!(delay_for(b, m, 10), m);
        assert_eq!(delay_for(b, m, u32::MAX), m);
    }

    #[test]
    fn per_object_and_reset_on_success() {
        let backoff = Backoff::new(Duration::from_secs(5), Duration::from_secs(300));
        let a = ObjectRef::<BatonConnector>::new("a").within("ns");
        let b = ObjectRef::<BatonConnector>::new("b").within("ns");
        backoff.failed(&a);
        backoff.failed(&a);
        let third = backoff.failed(&a);
        assert!(third > Duration::from_secs(15) && third <= Duration::from_secs(20), "{third:?}");
        assert!(backoff.failed(&b) <= Duration::from_secs(5), "other objects are unaffected");
        assert_eq!(backoff.len(), 2);
        backoff.succeeded(&a);
        assert!(backoff.failed(&a) <= Duration::from_secs(5));
    }
}
