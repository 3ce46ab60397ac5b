//! Leader election through a Lease, for running more than one replica. Only the holder reconciles;
//! a replica that loses the lease stops at once (fail-stop) rather than risk two writers.
//!
//! Every write is conditional on the resourceVersion read just before, so two replicas never both
//! believe they took the lease. A holder that shuts down clears the holder, and standbys read the
//! Lease every `retry_period`, so a handover takes about that long rather than the lease duration.
//! A standby judges expiry by its own clock (how long the record has not changed), as client-go
//! does, so clock skew between nodes does not matter.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::Context as _;
use k8s_openapi::{
    api::coordination::v1::Lease, apimachinery::pkg::apis::meta::v1::MicroTime, jiff::Timestamp,
};
use kube::{
    Api, Client,
    api::{Patch, PatchParams, PostParams},
};
use serde_json::{Value, json};
use tokio::{sync::watch, task::JoinHandle};
use tracing::{debug, info, warn};

const FIELD_MANAGER: &str = "baton-operator/leader";

/// Where the lease lives and who this replica is.
#[derive(Clone, Debug)]
pub struct LeaderConfig {
    pub namespace: String,
    pub lease_name: String,
    pub identity: String,
    /// How long a lease stays valid without renewal.
    pub duration: Duration,
    /// How often a standby reads the Lease, and how often a failed renewal is retried.
    pub retry_period: Duration,
}

impl LeaderConfig {
    /// The holder renews three times per lease duration.
    fn renew_every(&self) -> Duration {
        self.duration / 3
    }

    /// A holder that could not renew for this long stops, leaving a third of the duration as margin
    /// before a standby may take over.
    fn renew_deadline(&self) -> Duration {
        self.duration * 2 / 3
    }
}

/// A held lease, renewed in the background until released or lost.
pub struct Leadership {
    lost: watch::Receiver<bool>,
    stop: watch::Sender<bool>,
    renewal: JoinHandle<()>,
    api: Api<Lease>,
    config: LeaderConfig,
}

/// Waits until this replica holds the lease. Meanwhile the replica counts as ready (a standby is
/// healthy), and stops counting as ready once it leads, until its caches are filled.
pub async fn acquire(
    client: Client,
    config: &LeaderConfig,
    ready: &Arc<AtomicBool>,
) -> anyhow::Result<Leadership> {
    let api: Api<Lease> = Api::namespaced(client, &config.namespace);
    ready.store(true, Ordering::Relaxed);
    info!(identity = %config.identity, lease = %config.lease_name, "waiting to lead");
    let mut seen = Observed::default();
    loop {
        match try_acquire(&api, config, &mut seen).await {
            Ok(true) => break,
            Ok(false) => {}
            Err(e) => warn!(error = %format!("{e:#}"), "could not read or take the leader-election lease"),
        }
        tokio::time::sleep(config.retry_period).await;
    }
    ready.store(false, Ordering::Relaxed);
    info!(identity = %config.identity, "leading");
    let (lost_tx, lost) = watch::channel(false);
    let (stop, stop_rx) = watch::channel(false);
    let renewal = tokio::spawn(renew(api.clone(), config.clone(), lost_tx, stop_rx));
    Ok(Leadership { lost, stop, renewal, api, config: config.clone() })
}

impl Leadership {
    /// Resolves when the lease is lost.
    pub async fn lost(&mut self) {
        let _ = self.lost.wait_for(|lost| *lost).await;
    }

    /// Gives the lease up, so a standby takes over without waiting for it to expire. Call it only
    /// once this replica has stopped writing.
    pub async fn release(self) {
        let _ = self.stop.send(true);
        let _ = self.renewal.await;
        match clear_holder(&self.api, &self.config).await {
            Ok(true) => info!("lease released"),
            Ok(false) => info!("lease already held by another replica; nothing to release"),
            Err(e) => {
                warn!(error = %format!("{e:#}"), "could not release the lease; a standby takes over when it expires")
            }
        }
    }
}

/// The last version of the Lease a standby saw, and when it first saw it.
#[derive(Default)]
struct Observed {
    version: Option<String>,
    since: Option<Instant>,
}

fn now() -> Value {
    serde_json::to_value(MicroTime(Timestamp::now())).unwrap_or(Value::Null)
}

fn holder(lease: &Lease) -> Option<&str> {
    lease.spec.as_ref()?.holder_identity.as_deref().filter(|h| !h.is_empty())
}

fn duration_secs(config: &LeaderConfig) -> i32 {
    i32::try_from(config.duration.as_secs().max(1)).unwrap_or(i32::MAX)
}

/// Takes the lease when it is free, expired or already ours. `Ok(false)`: another replica holds it,
/// or won a race for it.
async fn try_acquire(api: &Api<Lease>, config: &LeaderConfig, seen: &mut Observed) -> anyhow::Result<bool> {
    let Some(lease) = api.get_opt(&config.lease_name).await? else {
        let lease: Lease = serde_json::from_value(json!({
            "metadata": {"name": config.lease_name},
            "spec": {"holderIdentity": config.identity, "leaseDurationSeconds": duration_secs(config),
                     "acquireTime": now(), "renewTime": now(), "leaseTransitions": 0},
        }))?;
        let params = PostParams { field_manager: Some(FIELD_MANAGER.into()), ..Default::default() };
        return match api.create(&params, &lease).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
            Err(e) => Err(e.into()),
        };
    };
    let version = lease.metadata.resource_version.clone();
    let current = holder(&lease).map(str::to_string);
    if current.as_deref().is_some_and(|h| h != config.identity) {
        if seen.version != version {
            *seen = Observed { version, since: Some(Instant::now()) };
            return Ok(false);
        }
        let valid_for = lease
            .spec
            .as_ref()
            .and_then(|s| s.lease_duration_seconds)
            .map_or(config.duration, |s| Duration::from_secs(u64::try_from(s).unwrap_or(0)));
        if seen.since.is_some_and(|t| t.elapsed() <= valid_for) {
            return Ok(false);
        }
        info!(
            previous = current.as_deref().unwrap_or_default(),
            "the leader-election lease expired; taking it"
        );
    }
    let transitions = lease.spec.as_ref().and_then(|s| s.lease_transitions).unwrap_or(0);
    let mut spec = json!({"holderIdentity": config.identity, "leaseDurationSeconds": duration_secs(config),
                          "renewTime": now()});
    if current.as_deref() != Some(config.identity.as_str()) {
        spec["acquireTime"] = now();
        spec["leaseTransitions"] = json!(transitions + 1);
    }
    conditional_patch(api, config, version, spec).await
}

/// A merge patch that applies only to the version read: the API server answers 409 when the Lease
/// changed in between, which here means another replica wrote it first.
async fn conditional_patch(
    api: &Api<Lease>,
    config: &LeaderConfig,
    version: Option<String>,
    spec: Value,
) -> anyhow::Result<bool> {
    let version = version.context("Lease without resourceVersion")?;
    let patch = json!({"metadata": {"resourceVersion": version}, "spec": spec});
    let params = PatchParams { field_manager: Some(FIELD_MANAGER.into()), ..Default::default() };
    match api.patch(&config.lease_name, &params, &Patch::Merge(&patch)).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Renews the lease until told to stop; reports a loss (another holder, or no renewal within the
/// deadline) on `lost` and returns.
async fn renew(
    api: Api<Lease>,
    config: LeaderConfig,
    lost: watch::Sender<bool>,
    mut stop: watch::Receiver<bool>,
) {
    let mut renewed = Instant::now();
    let mut wait = config.renew_every();
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            () = tokio::time::sleep(wait) => {}
        }
        let outcome = match api.get(&config.lease_name).await {
            Ok(lease) if holder(&lease) != Some(config.identity.as_str()) => {
                warn!(
                    holder = holder(&lease).unwrap_or_default(),
                    "another replica holds the leader-election lease"
                );
                let _ = lost.send(true);
                return;
            }
            Ok(lease) => {
                let spec = json!({"renewTime": now(), "leaseDurationSeconds": duration_secs(&config)});
                conditional_patch(&api, &config, lease.metadata.resource_version, spec).await
            }
            Err(e) => Err(e.into()),
        };
        match outcome {
            Ok(true) => {
                debug!("lease renewed");
                renewed = Instant::now();
                wait = config.renew_every();
            }
            Ok(false) => wait = Duration::ZERO,
            Err(e) => {
                warn!(error = %format!("{e:#}"), "could not renew the leader-election lease");
                wait = config.retry_period;
            }
        }
        if renewed.elapsed() > config.renew_deadline() {
            warn!("no renewal of the leader-election lease within the deadline");
            let _ = lost.send(true);
            return;
        }
    }
}

/// Empties the holder when it is still this replica. `Ok(false)`: someone else holds it.
async fn clear_holder(api: &Api<Lease>, config: &LeaderConfig) -> anyhow::Result<bool> {
    for _ in 0..3 {
        let Some(lease) = api.get_opt(&config.lease_name).await? else { return Ok(false) };
        if holder(&lease) != Some(config.identity.as_str()) {
            return Ok(false);
        }
        let spec = json!({"holderIdentity": null, "acquireTime": null, "renewTime": null});
        if conditional_patch(api, config, lease.metadata.resource_version, spec).await? {
            return Ok(true);
        }
    }
    anyhow::bail!("the Lease kept changing")
}
