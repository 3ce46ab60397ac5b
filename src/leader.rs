//! Leader election through a Lease, for running more than one replica. Only the holder reconciles;
//! a replica that loses the lease stops at once (fail-stop) rather than risk two writers.
//!
//! Every write is conditional on the resourceVersion read just before, so two replicas never both
//! believe they took the lease. A holder that shuts down clears the holder, and standbys read the
//! Lease every `retry_period`, so a handover takes about that long rather than the lease duration.
//! A standby judges expiry by its own clock (how long the record has not changed), as client-go
//! does, so clock skew between nodes does not matter.
//!
//! The decisions and their timings are in [`decision`], free of I/O and of clock reads so that they are
//! tested at exact instants; this module only reads and writes the Lease and sleeps. It is written
//! here rather than taken from a crate: `kube-lease-manager`, the maintained one, is on kube 4 and
//! k8s-openapi 0.28 in its newest release (0.12, June 2026), so it would bring a second kube client
//! into this kube 5 build; and it judges expiry by the holder's `renewTime` plus the duration against
//! this node's wall clock, where this module, as client-go, counts on its own monotonic clock from
//! when it saw the record change, so that clock skew between nodes cannot hand the lease over early.

mod decision;

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
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
// tokio's clock: the same monotonic clock, and one tests can pause.
use tokio::{sync::watch, task::JoinHandle, time::Instant};
use tracing::{debug, info, warn};

pub use self::decision::LeaderConfig;
use self::decision::{Acquire, Next, Outcome, Renewer, Standby, holder};

const FIELD_MANAGER: &str = "baton-operator/leader";

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
    let mut standby = Standby::default();
    let acquired_at = loop {
        // The lease counts from before the request that took it: the write may have been applied
        // long before its answer arrived, and a standby's clock starts when it sees that write.
        let attempt = Instant::now();
        // An API server that hangs must not hold the standby in one attempt.
        match tokio::time::timeout(config.duration, try_acquire(&api, config, &mut standby)).await {
            Ok(Ok(true)) => break attempt,
            Ok(Ok(false)) => {}
            Ok(Err(e)) => {
                warn!(error = %format!("{e:#}"), "could not read or take the leader-election lease")
            }
            Err(_) => warn!("reading or taking the leader-election lease timed out"),
        }
        tokio::time::sleep(config.retry_period).await;
    };
    ready.store(false, Ordering::Relaxed);
    info!(identity = %config.identity, "leading");
    let (lost_tx, lost) = watch::channel(false);
    let (stop, stop_rx) = watch::channel(false);
    let renewal = tokio::spawn(renew(api.clone(), config.clone(), lost_tx, stop_rx, acquired_at));
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

/// The wall-clock stamp written into `acquireTime`/`renewTime`. Only people and tools read it: no
/// decision here depends on it.
fn now() -> Value {
    serde_json::to_value(MicroTime(Timestamp::now())).unwrap_or(Value::Null)
}

/// One read of the Lease and the write the standby's decision calls for. `Ok(false)`: another replica
/// holds it, or won a race for it.
async fn try_acquire(api: &Api<Lease>, config: &LeaderConfig, standby: &mut Standby) -> anyhow::Result<bool> {
    let lease = api.get_opt(&config.lease_name).await?;
    match standby.observe(lease.as_ref(), Instant::now(), config) {
        Acquire::Wait => Ok(false),
        Acquire::Create => {
            let lease: Lease = serde_json::from_value(json!({
                "metadata": {"name": config.lease_name},
                "spec": decision::create_spec(config, &now()),
            }))?;
            let params = PostParams { field_manager: Some(FIELD_MANAGER.into()), ..Default::default() };
            match api.create(&params, &lease).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
                Err(e) => Err(e.into()),
            }
        }
        Acquire::Take { version, transitions, expired } => {
            if let Some(previous) = expired {
                info!(%previous, "the leader-election lease expired; taking it");
            }
            conditional_patch(api, config, version, decision::take_spec(config, transitions, &now())).await
        }
    }
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

/// Renews the lease on the [`Renewer`]'s schedule until told to stop; reports a loss (another
/// holder, or no renewal within the deadline) on `lost` and returns. Each attempt is cut off at the
/// time the schedule leaves it, so a hanging API server cannot keep this replica leading.
async fn renew(
    api: Api<Lease>,
    config: LeaderConfig,
    lost: watch::Sender<bool>,
    mut stop: watch::Receiver<bool>,
    acquired_at: Instant,
) {
    let mut renewer = Renewer::new(acquired_at, &config);
    let mut wait = renewer.first_wait();
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            () = tokio::time::sleep(wait) => {}
        }
        let attempt = Instant::now();
        let answer =
            tokio::time::timeout(renewer.budget(attempt), renew_once(&api, &config)).await.unwrap_or_else(
                |_| Err(anyhow::anyhow!("no answer from the API server before the renewal deadline")),
            );
        let outcome = answer.unwrap_or_else(|e| {
            warn!(error = %format!("{e:#}"), "could not renew the leader-election lease");
            Outcome::Failed
        });
        let renewed = matches!(outcome, Outcome::Renewed);
        match renewer.record(attempt, outcome, Instant::now()) {
            Next::Wait(next) => {
                if renewed {
                    debug!("lease renewed");
                }
                wait = next;
            }
            Next::TakenBy(holder) => {
                warn!(%holder, "another replica holds the leader-election lease");
                let _ = lost.send(true);
                return;
            }
            Next::Deadline => {
                warn!(
                    deadline = ?config.renew_deadline(),
                    "no renewal of the leader-election lease within the deadline; stopping before a standby may take over"
                );
                let _ = lost.send(true);
                return;
            }
        }
    }
}

/// One renewal: a read, then a write conditional on it while the Lease still names this replica.
async fn renew_once(api: &Api<Lease>, config: &LeaderConfig) -> anyhow::Result<Outcome> {
    let lease = api.get(&config.lease_name).await?;
    if holder(&lease) != Some(config.identity.as_str()) {
        return Ok(Outcome::TakenBy(holder(&lease).unwrap_or_default().to_string()));
    }
    let spec = decision::renew_spec(config, &now());
    Ok(if conditional_patch(api, config, lease.metadata.resource_version, spec).await? {
        Outcome::Renewed
    } else {
        Outcome::Conflict
    })
}

/// Empties the holder when it is still this replica. `Ok(false)`: someone else holds it.
async fn clear_holder(api: &Api<Lease>, config: &LeaderConfig) -> anyhow::Result<bool> {
    for _ in 0..3 {
        let lease = api.get_opt(&config.lease_name).await?;
        if !decision::should_release(lease.as_ref(), config) {
            return Ok(false);
        }
        let version = lease.and_then(|l| l.metadata.resource_version);
        if conditional_patch(api, config, version, decision::release_spec()).await? {
            return Ok(true);
        }
    }
    anyhow::bail!("the Lease kept changing")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{decision::tests::config, *};

    /// Runs the renewal loop of a lease just acquired against `api` until it reports the lease lost;
    /// how long after the acquisition that was.
    async fn renew_until_lost(api: Api<Lease>, config: &LeaderConfig) -> Duration {
        let (lost_tx, mut lost) = watch::channel(false);
        let (_stop, stop_rx) = watch::channel(false);
        let acquired = Instant::now();
        tokio::spawn(renew(api, config.clone(), lost_tx, stop_rx, acquired));
        lost.wait_for(|l| *l).await.unwrap();
        acquired.elapsed()
    }

    /// An API server that accepts every request and never answers.
    fn hanging() -> (
        Api<Lease>,
        tower_test::mock::Handle<http::Request<kube::client::Body>, http::Response<kube::client::Body>>,
    ) {
        let (service, handle) =
            tower_test::mock::pair::<http::Request<kube::client::Body>, http::Response<kube::client::Body>>();
        (Api::namespaced(Client::new(service, "default"), "baton-system"), handle)
    }

    #[tokio::test(start_paused = true)]
    async fn a_leader_whose_renewals_hang_stops_at_its_deadline_not_when_they_answer() {
        let (api, mut handle) = hanging();
        // Requests are taken and never answered.
        let sink = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Some(request) = handle.next_request().await {
                held.push(request);
            }
        });
        let config = config();
        let stopped_after = renew_until_lost(api, &config).await;
        assert!(stopped_after <= config.renew_deadline(), "stopped after {stopped_after:?}");
        assert!(stopped_after >= config.renew_deadline() - Duration::from_millis(10), "{stopped_after:?}");
        // A standby takes over no earlier than a whole lease duration after it saw the last renewal.
        assert!(config.duration - stopped_after >= config.duration / 3 - Duration::from_millis(10));
        sink.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn a_refused_renewal_is_retried_until_the_deadline() {
        let (service, mut handle) =
            tower_test::mock::pair::<http::Request<kube::client::Body>, http::Response<kube::client::Body>>();
        let api: Api<Lease> = Api::namespaced(Client::new(service, "default"), "baton-system");
        let attempts = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = attempts.clone();
        let server = tokio::spawn(async move {
            while let Some((_, send)) = handle.next_request().await {
                counted.fetch_add(1, Ordering::SeqCst);
                let body =
                    serde_json::to_vec(&json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                    "message": "unavailable", "reason": "ServiceUnavailable", "code": 503}))
                    .unwrap();
                send.send_response(
                    http::Response::builder().status(503).body(kube::client::Body::from(body)).unwrap(),
                );
            }
        });
        let config = config();
        assert!(renew_until_lost(api, &config).await <= config.renew_deadline());
        // First try after renew_every (5 s), then every retry_period (1 s) until 10 s.
        let n = attempts.load(Ordering::SeqCst);
        assert!((4..=7).contains(&n), "{n} attempts");
        server.abort();
    }
}
