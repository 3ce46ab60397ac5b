//! Reads a connector's sync status from ConductorOne on its own cadence, whatever the reconcile
//! cadence: a reconcile between two polls reuses the last answer, and a failed poll waits a full
//! interval too, so errors never make the operator call faster.

use std::time::{Duration, Instant};

use k8s_openapi::jiff::Timestamp;
use kube::runtime::reflector::ObjectRef;

use super::{Context, SyncPoll, credentials};
use crate::{
    api::{BatonConnector, SyncStatus, conditions::Desired},
    resources::SecretData,
    sync::{self, Observed},
};

/// What the sync status adds to one reconcile.
pub struct SyncView {
    pub status: Option<SyncStatus>,
    pub condition: Desired,
    /// The failure needs a person (ConductorOne refused the API credentials).
    pub permanent: bool,
    /// When to look again.
    pub next_poll: Duration,
}

pub async fn observe(ctx: &Context, bc: &BatonConnector, secrets: &SecretData) -> Option<SyncView> {
    let c1 = bc.spec.conductor_one.as_ref()?;
    let key = ObjectRef::from(bc);
    let interval = sync::poll_interval(ctx.config.sync_poll_interval, &format!("{key}"));
    let previous = bc.status.as_ref().and_then(|s| s.sync.clone());
    let api = match credentials::api_credentials(bc, c1, secrets) {
        Ok(api) => api,
        Err(p) => {
            let permanent = !p.may_resolve_itself();
            let condition = sync::failed_condition(p.reason(), &p.to_string());
            return Some(SyncView { status: previous, condition, permanent, next_poll: interval });
        }
    };
    let last = ctx.sync_polls.lock().expect("sync poll lock poisoned").get(&key).cloned();
    let poll = match last.filter(|p| p.at.elapsed() < interval) {
        Some(p) => p,
        None => {
            let result = ctx
                .conductorone
                .get_connector(&api, &c1.app_id, &c1.connector_id)
                .await
                .map(|info| Observed::from_connector(&info))
                .map_err(|e| (e.reason(), e.to_string(), e.is_permanent()));
            let poll = SyncPoll { at: Instant::now(), result };
            ctx.sync_polls.lock().expect("sync poll lock poisoned").insert(key, poll.clone());
            poll
        }
    };
    let next_poll = interval.saturating_sub(poll.at.elapsed()).max(Duration::from_secs(1));
    let now = Timestamp::now();
    Some(match &poll.result {
        Ok(observed) => {
            let status = sync::status(previous.as_ref(), observed, now);
            let freshness =
                humantime::parse_duration(&c1.sync_freshness).unwrap_or(Duration::from_secs(86400));
            let created = bc.metadata.creation_timestamp.as_ref().map(|t| t.0);
            let condition = sync::condition(&status, observed, freshness, created, now);
            SyncView { status: Some(status), condition, permanent: false, next_poll }
        }
        Err((reason, message, permanent)) => SyncView {
            status: previous,
            condition: sync::failed_condition(reason, message),
            permanent: *permanent,
            next_poll,
        },
    })
}

/// Forgets a deleted resource.
pub fn forget(ctx: &Context, bc: &BatonConnector) {
    ctx.sync_polls.lock().expect("sync poll lock poisoned").remove(&ObjectRef::from(bc));
}
