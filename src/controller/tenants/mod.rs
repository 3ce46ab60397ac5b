//! The tenants' own reconcile: each `ConductorOneTenant` and `ClusterConductorOneTenant` gets a
//! status (whether ConductorOne gives its principal a token, how many connectors use it, its last
//! error, whether it is rate limited now), events on its transitions, and a finalizer that holds a
//! deletion until no connector needs the principal to revoke its credentials.
//!
//! Tenants are few, so one task takes them one at a time from a queue that the tenant store feeds
//! (a tenant changed, its Secret changed, a connector joined or left it) and checks each again on a
//! timer: the token check costs nothing while the cached token is fresh.

pub mod reconcile;

use std::{collections::HashMap, sync::Arc, time::Duration};

use tokio::time::{Instant, sleep_until};
use tracing::{info, warn};

use crate::{
    api::TenantKind,
    controller::{context::Context, store::tenants::TenantId},
};

/// Events arriving together (a tenant applied with its Secret) make one check.
const DEBOUNCE: Duration = Duration::from_millis(200);

/// When to look at a tenant again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Ready: again after [`READY_RECHECK`], or sooner while rate limited (the flag clears itself).
    Ready { rate_limited: bool },
    /// Not ready: with backoff, since ConductorOne may come back.
    NotReady,
    /// Gone (or let go after its deletion): nothing more.
    Gone,
}

pub const READY_RECHECK: Duration = Duration::from_secs(300);
const RATE_LIMITED_RECHECK: Duration = Duration::from_secs(30);
const BACKOFF_BASE: Duration = Duration::from_secs(5);
const BACKOFF_MAX: Duration = Duration::from_secs(120);

/// Runs until the store's queue closes (the operator stops).
pub async fn run(ctx: Arc<Context>) {
    let mut queue = ctx.caches.tenants.subscribe();
    ctx.caches.tenants.listed().await;
    let mut due: HashMap<TenantId, Instant> = HashMap::new();
    let mut failures: HashMap<TenantId, u32> = HashMap::new();
    let start = Instant::now();
    for id in ctx.caches.tenants.ids() {
        due.insert(id, start);
    }
    loop {
        let next = due.values().min().copied().unwrap_or_else(|| Instant::now() + READY_RECHECK);
        tokio::select! {
            id = queue.recv() => {
                let Some(id) = id else { return };
                let at = Instant::now() + DEBOUNCE;
                due.entry(id).and_modify(|d| *d = (*d).min(at)).or_insert(at);
            }
            () = sleep_until(next) => {
                let now = Instant::now();
                let ready: Vec<TenantId> = due.iter().filter(|(_, d)| **d <= now).map(|(id, _)| id.clone()).collect();
                for id in ready {
                    due.remove(&id);
                    let after = match reconcile::tenant(&ctx, &id).await {
                        Ok(outcome) => after(outcome, failures.entry(id.clone()).or_default()),
                        Err(e) => {
                            warn!(kind = id.0.as_str(), namespace = %id.1.0, name = %id.1.1, error = %e, "tenant reconcile failed; retrying");
                            Some(backoff(failures.entry(id.clone()).or_default()))
                        }
                    };
                    match after {
                        Some(delay) => { due.insert(id, Instant::now() + delay); }
                        None => {
                            failures.remove(&id);
                            ctx.pools.forget(&pool_of(&ctx, &id));
                            info!(kind = id.0.as_str(), namespace = %id.1.0, name = %id.1.1, "tenant gone");
                        }
                    }
                }
            }
        }
    }
}

/// The key of a tenant's pool: a cluster tenant's Secret is in the operator's namespace.
fn pool_of(ctx: &Context, id: &TenantId) -> crate::controller::c1::pools::TenantKey {
    let secret_ns = match id.0 {
        TenantKind::ConductorOneTenant => id.1.0.as_str(),
        TenantKind::ClusterConductorOneTenant => ctx.config.operator_namespace.as_str(),
    };
    crate::controller::c1::pools::tenant_key(id.0, secret_ns, &id.1.1)
}

/// The delay before the next check, counting a not-ready tenant's failures.
fn after(outcome: Next, failures: &mut u32) -> Option<Duration> {
    match outcome {
        Next::Ready { rate_limited } => {
            *failures = 0;
            Some(if rate_limited { RATE_LIMITED_RECHECK } else { READY_RECHECK })
        }
        Next::NotReady => Some(backoff(failures)),
        Next::Gone => None,
    }
}

fn backoff(failures: &mut u32) -> Duration {
    let delay = BACKOFF_BASE.saturating_mul(1 << (*failures).min(10)).min(BACKOFF_MAX);
    *failures = failures.saturating_add(1);
    delay
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ready_tenant_is_checked_every_few_minutes_and_a_broken_one_backs_off_to_two_minutes() {
        let mut failures = 0;
        assert_eq!(after(Next::Ready { rate_limited: false }, &mut failures), Some(READY_RECHECK));
        assert_eq!(after(Next::Ready { rate_limited: true }, &mut failures), Some(RATE_LIMITED_RECHECK));
        let delays: Vec<_> =
            (0..7).map(|_| after(Next::NotReady, &mut failures).unwrap().as_secs()).collect();
        assert_eq!(delays, [5, 10, 20, 40, 80, 120, 120]);
        assert_eq!(after(Next::Ready { rate_limited: false }, &mut failures), Some(READY_RECHECK));
        assert_eq!(failures, 0, "ready again resets the backoff");
        assert_eq!(after(Next::Gone, &mut failures), None);
    }
}
