//! The controller: watches, triggers, the shared context and the error policy. The decisions live in
//! `reconcile` (I/O) and `status`/`events` (pure).

mod actions;
pub mod backoff;
pub mod cache;
mod credentials;
pub mod events;
mod finalizer;
pub mod index;
mod invalid;
mod onboarding;
mod oneshot;
mod packed;
mod polling;
mod reconcile;
pub mod recorder;
mod rotation_steps;
pub mod runs;
pub mod status;
#[cfg(test)]
mod status_tests;
mod stored;
pub mod sync_poller;
pub mod watch_health;
mod watches;

use std::{sync::Arc, time::Duration};

use futures::future::join_all;
use kube::{
    Client,
    core::DeserializeGuard,
    runtime::{controller::Action, events::Reporter, reflector::ObjectRef},
};
use rand::Rng;
use tracing::{info, warn};

pub use reconcile::{FIELD_MANAGER, reconcile};
pub use stored::Stored;

use crate::{Error, api::BatonConnector, metrics::Metrics};

/// Operator settings that shape reconciliation.
#[derive(Clone, Debug)]
pub struct Config {
    /// Namespaces to watch; empty means all.
    pub namespaces: Vec<String>,
    /// How often a converged resource is looked at again (reads only), before jitter.
    pub resync_interval: Duration,
    /// First retry delay after an error; doubles per consecutive failure.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// How many resources reconcile at once.
    pub concurrency: u16,
    /// How often each connector's sync status is read from ConductorOne, before per-resource jitter.
    pub sync_poll_interval: Duration,
    /// ConductorOne requests per second the sync-status poller may spend; the rest of the client's
    /// rate is left to rotations.
    pub sync_poll_budget: f64,
    /// Label selector of the BatonConnectors this process reconciles (a shard); all when unset.
    pub selector: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            namespaces: Vec::new(),
            resync_interval: Duration::from_secs(600),
            backoff_base: Duration::from_secs(5),
            backoff_max: Duration::from_secs(300),
            concurrency: 8,
            sync_poll_interval: Duration::from_secs(300),
            sync_poll_budget: 2.5,
            selector: None,
        }
    }
}

impl Config {
    /// The resync interval plus up to 10%, so resources created together do not stay in lockstep.
    pub fn resync_interval_jittered(&self) -> Duration {
        self.resync_interval.mul_f64(1.0 + rand::rng().random_range(0.0..0.1))
    }
}

/// How soon a reconcile that found every ConductorOne slot taken comes back.
pub const C1_BUSY_RETRY: Duration = Duration::from_secs(2);

/// What every reconcile shares.
pub struct Context {
    pub client: Client,
    /// One ConductorOne client for the whole operator: it holds the global rate limiter and the
    /// token cache.
    pub conductorone: crate::conductorone::ConductorOneClient,
    pub recorder: recorder::Recorder,
    pub metrics: Arc<Metrics>,
    pub backoff: backoff::Backoff,
    pub config: Config,
    /// The last sync-status poll of each resource, so polls follow their own cadence however often
    /// a resource reconciles.
    pub sync_polls: std::sync::Mutex<std::collections::HashMap<ObjectRef<BatonConnector>, SyncPoll>>,
    /// The controllers' caches, read by the per-resource metrics at scrape time.
    pub fleet: crate::metrics::Fleet,
    /// Deployments and Secrets as the watches deliver them.
    pub caches: cache::Caches,
    pub sync_poller: Arc<sync_poller::SyncPoller>,
    /// Reconciles that may wait on ConductorOne at once (rotation steps, revocations), so that a slow
    /// ConductorOne can never take every worker: the rest stay free for Kubernetes work.
    pub c1_slots: tokio::sync::Semaphore,
    /// How each watch is doing: `/readyz`, its metrics and the log of outages.
    pub watch_health: Arc<watch_health::WatchHealth>,
}

/// What one poll found, or why it found nothing.
pub type PollResult = Result<crate::sync::Observed, PollFailure>;

/// A poll that could not read the sync status.
#[derive(Clone, Debug, PartialEq)]
pub struct PollFailure {
    pub reason: crate::api::Reason,
    pub message: String,
    /// Only a person can fix it (ConductorOne refused the API credentials, the connector is gone).
    pub permanent: bool,
}

/// One poll of ConductorOne's sync status.
#[derive(Clone, Debug)]
pub struct SyncPoll {
    pub at: std::time::Instant,
    /// The observation, or the failure's reason, message and whether it needs a person.
    pub result: PollResult,
}

impl Context {
    pub fn new(
        client: Client,
        conductorone: crate::conductorone::ConductorOneClient,
        metrics: Arc<Metrics>,
        config: Config,
    ) -> Self {
        let reporter =
            Reporter { controller: "baton-operator".into(), instance: std::env::var("POD_NAME").ok() };
        Self {
            recorder: recorder::Recorder::new(client.clone(), reporter),
            backoff: backoff::Backoff::new(config.backoff_base, config.backoff_max),
            caches: Default::default(),
            sync_poller: Arc::new(sync_poller::SyncPoller::new(
                config.sync_poll_interval,
                config.sync_poll_budget,
            )),
            c1_slots: tokio::sync::Semaphore::new(usize::from(config.concurrency / 2).max(1)),
            client,
            conductorone,
            metrics,
            config,
            sync_polls: Default::default(),
            fleet: Default::default(),
            watch_health: Default::default(),
        }
    }
}

/// Runs the controller until a shutdown signal. With a namespace list, one controller per namespace
/// shares the context (and so the caches, the poller, the backoff state and metrics).
pub async fn run(ctx: Arc<Context>, ready: Arc<std::sync::atomic::AtomicBool>) {
    let scopes: Vec<Option<String>> = if ctx.config.namespaces.is_empty() {
        vec![None]
    } else {
        ctx.config.namespaces.iter().cloned().map(Some).collect()
    };
    // Each scope feeds the caches from Deployment, CronJob, Job and Secret watches.
    ctx.caches.expect_watches(scopes.len() * 4);
    let poller = tokio::spawn(ctx.sync_poller.clone().run(ctx.clone()));
    let recovery = tokio::spawn(retry_after_recovery(ctx.clone()));
    join_all(scopes.into_iter().map(|scope| watches::run_scope(ctx.clone(), scope, ready.clone()))).await;
    poller.abort();
    recovery.abort();
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

/// A BatonConnector, or the metadata of one that does not deserialize: one unreadable object must
/// not stop the watch of all the others.
pub type Guarded = DeserializeGuard<BatonConnector>;

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

async fn reconcile_measured(stored: Arc<Stored>, ctx: Arc<Context>) -> Result<Action, Error> {
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

fn error_policy(stored: Arc<Stored>, error: &Error, ctx: Arc<Context>) -> Action {
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
