//! What the sync status adds to one reconcile. The reconcile never calls ConductorOne for it: it
//! reads the last answer of the [poller](super::sync_poller), or, before this process has one (just
//! after a restart), what status already says.

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use kube::runtime::reflector::ObjectRef;

use super::principal::Principal;
use crate::controller::context::Context;
use crate::{
    api::{BatonConnector, SyncStatus, conditions::Desired},
    decide::sync_status::{self as sync, Observed},
};

/// What the sync status adds to one reconcile.
pub struct SyncView {
    pub status: Option<SyncStatus>,
    pub condition: Desired,
    /// The failure needs a person (ConductorOne refused the API credentials).
    pub permanent: bool,
    /// When the condition changes with time alone (a sync going stale).
    pub recheck: Option<Duration>,
}

pub fn observe(
    ctx: &Context,
    bc: &BatonConnector,
    principal: Option<&Principal>,
    defaults: Option<&crate::api::ConnectorDefaults>,
    now: Timestamp,
) -> Option<SyncView> {
    let c1 = bc.spec.conductor_one.as_ref()?;
    let previous = bc.status.as_ref().and_then(|s| s.sync.clone());
    if let Some(Err(p)) = principal {
        let permanent = !p.may_resolve_itself();
        let condition = sync::failed_condition(p.reason(), &p.to_string());
        return Some(SyncView { status: previous, condition, permanent, recheck: None });
    }
    let poll = ctx.sync_poller.last(&ObjectRef::from(bc));
    let in_force = crate::decide::tenant::sync_freshness(c1, defaults);
    let freshness = humantime::parse_duration(in_force).unwrap_or(Duration::from_secs(86400));
    let created = bc.metadata.creation_timestamp.as_ref().map(|t| t.0);
    let fresh = |status: SyncStatus, observed: &Observed| {
        let condition = sync::condition(&status, observed, freshness, created, now);
        let recheck = sync::stale_in(&status, freshness, now);
        SyncView { status: Some(status), condition, permanent: false, recheck }
    };
    Some(match poll.map(|p| p.result) {
        Some(Ok(observed)) => fresh(sync::status(previous.as_ref(), &observed, now), &observed),
        Some(Err(failure)) => SyncView {
            status: previous,
            condition: sync::failed_condition(failure.reason, &failure.message),
            permanent: failure.permanent,
            recheck: None,
        },
        None => match (previous, sync::previous_condition(bc)) {
            // What the last process saw: shown as it was until the poller reads anew.
            (_, Some((condition, permanent))) if !condition.reason.is_sync_reading() => SyncView {
                status: bc.status.as_ref().and_then(|s| s.sync.clone()),
                condition,
                permanent,
                recheck: None,
            },
            (Some(status), _) => {
                let observed = Observed::from_status(&status);
                fresh(status, &observed)
            }
            (None, _) => SyncView {
                status: None,
                condition: sync::awaiting_condition(),
                permanent: false,
                recheck: None,
            },
        },
    })
}

/// Forgets a deleted resource.
pub fn forget(ctx: &Context, bc: &BatonConnector) {
    if let (Some(ns), Some(name)) = (&bc.metadata.namespace, &bc.metadata.name) {
        ctx.sync_poller.forget_resource(&(ns.clone(), name.clone()));
    }
}
