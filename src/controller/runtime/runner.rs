//! The controller's main loop: the watches of each scope, the sync-status poller, and the reset of
//! backoffs after an outage of the API server.

use std::sync::Arc;

use futures::future::join_all;
use tracing::info;

use super::watches::run_scope;
use crate::controller::context::Context;

/// Runs the controller until a shutdown signal. With a namespace list, one controller per namespace
/// shares the context (and so the caches, the poller, the backoff state and metrics).
pub async fn run(ctx: Arc<Context>, ready: Arc<std::sync::atomic::AtomicBool>) {
    let scopes: Vec<Option<String>> = if ctx.config.namespaces.is_empty() {
        vec![None]
    } else {
        ctx.config.namespaces.iter().cloned().map(Some).collect()
    };
    // Each scope feeds the caches from Deployment, CronJob, Job, Secret and Pod watches.
    ctx.caches.expect_watches(scopes.len() * 5);
    // And the tenant store from a ConductorOneTenant watch per scope, plus, watching the whole
    // cluster, the ClusterConductorOneTenant watch (namespaced installs use namespaced tenants).
    ctx.caches.tenants.expect_watches(scopes.len() + usize::from(ctx.config.namespaces.is_empty()));
    let poller = tokio::spawn(ctx.sync_poller.clone().run(Arc::new(ctx.poller_io())));
    let recovery = tokio::spawn(retry_after_recovery(ctx.clone()));
    let tenants = tokio::spawn(crate::controller::tenants::run(ctx.clone()));
    join_all(scopes.into_iter().map(|scope| run_scope(ctx.clone(), scope, ready.clone()))).await;
    poller.abort();
    recovery.abort();
    tenants.abort();
    info!("controller stopped");
}

/// After an outage of the API server the reconciles that failed during it have backed off, some for
/// minutes. The relists trigger every resource again; forgetting their failures makes one that fails
/// once more (the API server still catching up) retry at the base delay, not at the long one.
async fn retry_after_recovery(ctx: Arc<Context>) {
    loop {
        ctx.watch_health.recovered().await;
        let waiting = ctx.backoff.len();
        ctx.backoff.clear();
        ctx.metrics.objects_in_backoff.set(0);
        info!(waiting, "every watch works again; failed reconciles retry at the base delay");
    }
}
