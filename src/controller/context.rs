//! What every reconcile shares (the [`Context`]), the operator's settings, and the one field manager
//! of everything the controller writes.

use std::{sync::Arc, time::Duration};

use kube::{Client, runtime::events::Reporter};
use rand::Rng;

use super::c1::{
    pools::Pools,
    sync_poller::{PollerIo, SyncPoller},
};
use super::runtime::{backoff::Backoff, recorder::Recorder, watch_health::WatchHealth};
use super::store::cache::Caches;
use crate::metrics::Metrics;

/// The one field manager of the operator's writes: children, status (the journals included) and
/// the finalizer.
pub const FIELD_MANAGER: &str = "baton-operator";

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
    /// The operator's own namespace (`POD_NAMESPACE`): where cluster tenants' Secrets are.
    pub operator_namespace: String,
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
            operator_namespace: "baton-system".into(),
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
    /// The ConductorOne clients and call slots: one shared by the connectors of the older form
    /// (`apiCredentialsSecretRef`), and one per tenant (`c1/pools.rs`).
    pub pools: Arc<Pools>,
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
    pub backoff: Backoff,
    pub config: Config,
    /// The controllers' caches, read by the per-resource metrics at scrape time.
    pub fleet: crate::metrics::Fleet,
    /// Deployments and Secrets as the watches deliver them.
    pub caches: Arc<Caches>,
    pub sync_poller: Arc<SyncPoller>,
    /// How each watch is doing: `/readyz`, its metrics and the log of outages.
    pub watch_health: Arc<WatchHealth>,
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
            backoff: Backoff::new(config.backoff_base, config.backoff_max),
            caches: Default::default(),
            sync_poller: Arc::new(SyncPoller::new(config.sync_poll_interval, config.sync_poll_budget)),
            // Reconciles that may wait on one ConductorOne at once (rotation steps, revocations), so
            // that a slow ConductorOne never takes every worker: the rest stay free for Kubernetes
            // work, and for the other tenants.
            pools: Arc::new(Pools::new(conductorone, usize::from(config.concurrency / 2).max(1))),
            client,
            metrics,
            config,
            fleet: Default::default(),
            watch_health: Default::default(),
        }
    }
}

impl Context {
    /// What the sync-status poller reads and calls with.
    pub fn poller_io(&self) -> PollerIo {
        PollerIo {
            client: self.client.clone(),
            pools: self.pools.clone(),
            metrics: self.metrics.clone(),
            caches: self.caches.clone(),
        }
    }
}
