//! The controller: watches, triggers, the shared context and the error policy. The decisions live in
//! `reconcile` (I/O) and `status`/`events` (pure).

pub mod backoff;
mod credentials;
pub mod events;
mod finalizer;
mod invalid;
mod polling;
mod reconcile;
pub mod status;
#[cfg(test)]
mod status_tests;

use std::{sync::Arc, time::Duration};

use futures::{StreamExt, future::join_all};
use k8s_openapi::api::{apps::v1::Deployment, core::v1::Secret};
use kube::{
    Api, Client, ResourceExt,
    core::{DeserializeGuard, PartialObjectMeta},
    runtime::{
        Controller,
        controller::{Action, Config as ControllerConfig},
        events::{Recorder, Reporter},
        reflector::{ObjectRef, Store},
        watcher,
    },
};
use rand::Rng;
use tracing::{info, warn};

pub use reconcile::{FIELD_MANAGER, reconcile};

use crate::{Error, api::BatonConnector, metrics::Metrics, resources::inputs, resources::labels};

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
        }
    }
}

impl Config {
    /// The resync interval plus up to 10%, so resources created together do not stay in lockstep.
    pub fn resync_interval_jittered(&self) -> Duration {
        self.resync_interval.mul_f64(1.0 + rand::rng().random_range(0.0..0.1))
    }
}

/// What every reconcile shares.
pub struct Context {
    pub client: Client,
    /// One ConductorOne client for the whole operator: it holds the global rate limiter and the
    /// token cache.
    pub conductorone: crate::conductorone::ConductorOneClient,
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
    pub backoff: backoff::Backoff,
    pub config: Config,
    /// The last sync-status poll of each resource, so polls follow their own cadence however often
    /// a resource reconciles.
    pub sync_polls: std::sync::Mutex<std::collections::HashMap<ObjectRef<BatonConnector>, SyncPoll>>,
    /// The controllers' caches, read by the per-resource metrics at scrape time.
    pub fleet: crate::metrics::Fleet,
}

/// One poll of ConductorOne's sync status.
#[derive(Clone, Debug)]
pub struct SyncPoll {
    pub at: std::time::Instant,
    /// The observation, or the failure's reason, message and whether it needs a person.
    pub result: Result<crate::sync::Observed, (&'static str, String, bool)>,
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
            recorder: Recorder::new(client.clone(), reporter),
            backoff: backoff::Backoff::new(config.backoff_base, config.backoff_max),
            client,
            conductorone,
            metrics,
            config,
            sync_polls: Default::default(),
            fleet: Default::default(),
        }
    }
}

/// Runs the controller until a shutdown signal. With a namespace list, one controller per namespace
/// shares the context (and so the backoff state and metrics).
pub async fn run(ctx: Arc<Context>, ready: Arc<std::sync::atomic::AtomicBool>) {
    let apis: Vec<Api<Guarded>> = if ctx.config.namespaces.is_empty() {
        vec![Api::all(ctx.client.clone())]
    } else {
        ctx.config.namespaces.iter().map(|ns| Api::namespaced(ctx.client.clone(), ns)).collect()
    };
    let runs = apis.into_iter().map(|api| {
        let ctx = ctx.clone();
        let ready = ready.clone();
        async move {
            let client = ctx.client.clone();
            let namespace = api.namespace().map(str::to_string);
            let scoped = |c: &Client| -> (Api<Deployment>, Api<PartialObjectMeta<Secret>>) {
                match &namespace {
                    Some(ns) => (Api::namespaced(c.clone(), ns), Api::namespaced(c.clone(), ns)),
                    None => (Api::all(c.clone()), Api::all(c.clone())),
                }
            };
            let (deployments, secrets) = scoped(&client);
            let controller = Controller::new(api, watcher::Config::default().any_semantic())
                .with_config(ControllerConfig::default().concurrency(ctx.config.concurrency));
            let store = controller.store();
            ctx.fleet.add(store.clone());
            let ready_store = store.clone();
            tokio::spawn(async move {
                // The store's readiness future wakes only its latest poller, and the controller polls
                // it too; asking again every second avoids waiting forever on a lost wake-up.
                loop {
                    match tokio::time::timeout(Duration::from_secs(1), ready_store.wait_until_ready()).await {
                        Ok(Ok(())) => {
                            info!(resources = ready_store.len(), "BatonConnector cache synced");
                            ready.store(true, std::sync::atomic::Ordering::Relaxed);
                            return;
                        }
                        Ok(Err(e)) => return warn!(error = %e, "BatonConnector cache never synced"),
                        Err(_) => continue,
                    }
                }
            });
            controller
                .owns(
                    deployments,
                    watcher::Config::default().labels(&labels::managed_selector()).any_semantic(),
                )
                // Metadata only: the operator must not hold every Secret of the cluster in memory. A
                // data change bumps the resourceVersion, which is all the trigger needs.
                .watches(secrets, watcher::Config::default().any_semantic(), move |s| referencing(&store, &s))
                .shutdown_on_signal()
                .run(reconcile_measured, error_policy, ctx.clone())
                .for_each(|res| async move {
                    match res {
                        Ok((obj, _)) => tracing::trace!(object = %obj, "reconciled"),
                        Err(kube::runtime::controller::Error::ReconcilerFailed(e, obj)) => {
                            tracing::debug!(object = %obj, error = %e, "reconcile failed")
                        }
                        Err(e) => warn!(error = %e, "controller stream error"),
                    }
                })
                .await;
        }
    });
    join_all(runs).await;
    info!("controller stopped");
}

/// A BatonConnector, or the metadata of one that does not deserialize: one unreadable object must
/// not stop the watch of all the others.
pub type Guarded = DeserializeGuard<BatonConnector>;

/// The BatonConnectors that read a Secret, found in the controller's own cache.
fn referencing(store: &Store<Guarded>, secret: &PartialObjectMeta<Secret>) -> Vec<ObjectRef<Guarded>> {
    let (Some(ns), name) = (secret.namespace(), secret.name_any()) else {
        return Vec::new();
    };
    store
        .state()
        .iter()
        .filter_map(|g| g.0.as_ref().ok())
        .filter(|bc| bc.namespace().as_deref() == Some(ns.as_str()))
        .filter(|bc| inputs::referenced_secrets(bc).contains(&name))
        .map(|bc| ObjectRef::new(&bc.name_any()).within(&ns))
        .collect()
}

/// The backoff key of a resource, readable or not.
fn key(guard: &Guarded) -> ObjectRef<BatonConnector> {
    let meta = kube::Resource::meta(guard);
    ObjectRef::new(meta.name.as_deref().unwrap_or_default())
        .within(meta.namespace.as_deref().unwrap_or_default())
}

/// Reconciles a readable resource; reports an unreadable one on itself and leaves it alone.
pub async fn reconcile_guarded(guard: Arc<Guarded>, ctx: Arc<Context>) -> Result<Action, Error> {
    match &guard.0 {
        Ok(bc) => reconcile(Arc::new(bc.clone()), ctx).await,
        Err(invalid) => invalid::report(&ctx, invalid).await,
    }
}

async fn reconcile_measured(guard: Arc<Guarded>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = std::time::Instant::now();
    let result = reconcile_guarded(guard.clone(), ctx.clone()).await;
    ctx.metrics.reconcile_duration.observe(started.elapsed().as_secs_f64());
    let outcome =
        if result.is_ok() { crate::metrics::Outcome::success } else { crate::metrics::Outcome::error };
    ctx.metrics.reconciliations.get_or_create(&crate::metrics::OutcomeLabels { outcome }).inc();
    if result.is_ok() {
        ctx.backoff.succeeded(&key(&guard));
        ctx.metrics.objects_in_backoff.set(ctx.backoff.len() as i64);
    }
    result
}

fn error_policy(guard: Arc<Guarded>, error: &Error, ctx: Arc<Context>) -> Action {
    let bc = kube::Resource::meta(guard.as_ref());
    let delay = ctx.backoff.failed(&key(&guard));
    ctx.metrics.objects_in_backoff.set(ctx.backoff.len() as i64);
    ctx.metrics
        .reconcile_errors
        .get_or_create(&crate::metrics::ReasonLabels { reason: error.metric_label() })
        .inc();
    match error {
        Error::Blocked(_) => {
            info!(namespace = ?bc.namespace, name = ?bc.name, %error, retry_in = ?delay, "not converged")
        }
        _ => {
            warn!(namespace = ?bc.namespace, name = ?bc.name, %error, retry_in = ?delay, "reconcile failed")
        }
    }
    Action::requeue(delay)
}
