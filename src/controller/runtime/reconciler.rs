//! What kube's `Controller` calls for each resource: the reconcile, measured, and the error policy
//! with its per-resource backoff.

use std::sync::Arc;

use kube::runtime::{controller::Action, reflector::ObjectRef};
use tracing::{info, warn};

use crate::{
    Error,
    api::BatonConnector,
    controller::{
        context::Context,
        reconcile::{invalid, reconcile},
        store::stored::Stored,
    },
};

/// The backoff key of a resource, readable or not.
fn key(stored: &Stored) -> ObjectRef<BatonConnector> {
    let meta = kube::Resource::meta(stored);
    ObjectRef::new(meta.name.as_deref().unwrap_or_default())
        .within(meta.namespace.as_deref().unwrap_or_default())
}

/// Reconciles a readable resource; reports an unreadable one on itself and leaves it alone.
pub async fn reconcile_stored(stored: Arc<Stored>, ctx: Arc<Context>) -> Result<Action, Error> {
    match stored.decode() {
        Ok(bc) => reconcile(Arc::new(bc), ctx).await,
        Err(invalid) => invalid::report(&ctx, &invalid).await,
    }
}

pub async fn reconcile_measured(stored: Arc<Stored>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = std::time::Instant::now();
    let result = reconcile_stored(stored.clone(), ctx.clone()).await;
    ctx.metrics.reconcile_duration.observe(started.elapsed().as_secs_f64());
    let outcome =
        if result.is_ok() { crate::metrics::Outcome::success } else { crate::metrics::Outcome::error };
    ctx.metrics.reconciliations.get_or_create(&crate::metrics::OutcomeLabels { outcome }).inc();
    if result.is_ok() {
        ctx.backoff.succeeded(&key(&stored));
        ctx.metrics.objects_in_backoff.set(ctx.backoff.len() as i64);
    }
    result
}

pub fn error_policy(stored: Arc<Stored>, error: &Error, ctx: Arc<Context>) -> Action {
    let bc = kube::Resource::meta(stored.as_ref());
    let delay = ctx.backoff.failed(&key(&stored));
    ctx.metrics.objects_in_backoff.set(ctx.backoff.len() as i64);
    ctx.metrics
        .reconcile_errors
        .get_or_create(&crate::metrics::ReasonLabels { reason: error.metric_label() })
        .inc();
    match error {
        Error::Blocked(_) | Error::CleanupFailed => {
            info!(namespace = ?bc.namespace, name = ?bc.name, %error, retry_in = ?delay, "not converged")
        }
        _ => {
            warn!(namespace = ?bc.namespace, name = ?bc.name, %error, retry_in = ?delay, "reconcile failed")
        }
    }
    Action::requeue(delay)
}
