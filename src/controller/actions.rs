//! What a person asks ConductorOne for through Kubernetes: a sync now (the `sync-requested-at`
//! annotation, in service mode; OneShot mode starts a run instead), and no syncs while the resource is
//! suspended. Each call is made once per request and recorded in status, so a reconcile repeats none.

use k8s_openapi::{apimachinery::pkg::apis::meta::v1::Time, jiff::Timestamp};
use kube::ResourceExt;
use tracing::{info, warn};

use super::{Context, credentials, events::Note, status::Problem};
use crate::{
    api::{BatonConnector, ConductorOneStatus, Mode, SYNC_REQUESTED_AT},
    resources::SecretData,
};

/// What acting came to.
#[derive(Default)]
pub(super) struct Acted {
    /// A `sync-requested-at` value ConductorOne accepted.
    pub handled_sync: Option<String>,
    /// The new `status.conductorOne`, when it changed.
    pub status: Option<ConductorOneStatus>,
    pub problem: Option<Problem>,
    /// Come back soon: every ConductorOne slot was taken.
    pub busy: bool,
}

pub(super) async fn act(
    ctx: &Context,
    bc: &BatonConnector,
    secrets: &SecretData,
    notes: &mut Vec<Note>,
) -> Acted {
    let mut out = Acted::default();
    let Some(c1) = bc.spec.conductor_one.as_ref() else { return out };
    // Missing API credentials are reported by the sync status already.
    let Ok(api) = credentials::api_credentials(bc, c1, secrets) else { return out };
    let previous = bc.status.as_ref().and_then(|s| s.conductor_one.clone()).unwrap_or_default();
    let want_paused = bc.spec.suspend && c1.pause_when_suspended;
    let request = bc.annotations().get(SYNC_REQUESTED_AT).cloned();
    let handled = bc.status.as_ref().and_then(|s| s.handled_requests.sync.clone());
    let sync_now =
        bc.spec.mode == Mode::Service && !bc.spec.suspend && request.is_some() && request != handled;
    let pause_change = want_paused != previous.paused_at.is_some();
    if !pause_change && !sync_now {
        return out;
    }
    let Ok(_slot) = ctx.c1_slots.try_acquire() else {
        out.busy = true;
        return out;
    };
    // Until onboarding has the connector, there is nothing to act on; the request stays pending.
    let Some(ids) = crate::onboarding::ids(bc) else { return out };
    let (app, connector) = (ids.app.as_str(), ids.connector.as_str());
    let (ns, name) = (bc.namespace().unwrap_or_default(), bc.name_any());
    let mut failed = |action: &'static str, e: crate::conductorone::Error, notes: &mut Vec<Note>| {
        warn!(namespace = %ns, name = %name, action, error = %e, "ConductorOne action failed");
        notes.push(Note {
            warning: true,
            reason: "ConductorOneActionFailed",
            action,
            message: format!("{action}: {e}"),
        });
        out.problem = Some(Problem::ConductorOne {
            reason: e.reason(),
            message: e.to_string(),
            permanent: e.is_permanent(),
        });
    };
    if pause_change && want_paused {
        match ctx.conductorone.pause_sync(&api, app, connector).await {
            Ok(()) => {
                let now =
                    Time(Timestamp::from_second(Timestamp::now().as_second()).unwrap_or(Timestamp::now()));
                out.status = Some(ConductorOneStatus { paused_at: Some(now), ..previous.clone() });
                notes.push(note(
                    "SyncsPaused",
                    "Suspend",
                    "paused the connector's syncs in ConductorOne while suspended",
                ));
            }
            Err(e) => failed("Suspend", e, notes),
        }
    } else if pause_change {
        match ctx.conductorone.resume_sync(&api, app, connector).await {
            Ok(()) => {
                out.status = Some(ConductorOneStatus { paused_at: None, ..previous.clone() });
                notes.push(note("SyncsResumed", "Resume", "resumed the connector's syncs in ConductorOne"));
            }
            Err(e) => failed("Resume", e, notes),
        }
    }
    if sync_now && let Some(request) = request {
        match ctx.conductorone.force_sync(&api, app, connector).await {
            Ok(()) => {
                info!(namespace = %ns, name = %name, "ConductorOne queued a sync");
                notes.push(note(
                    "SyncRequested",
                    "Sync",
                    &format!("ConductorOne queued a sync, as requested at {request}"),
                ));
                out.handled_sync = Some(request);
            }
            Err(e) => failed("Sync", e, notes),
        }
    }
    // What changed is worth a look soon: a queued sync starts running, a pause shows as disabled.
    ctx.sync_poller.poll_soon(&(bc.namespace().unwrap_or_default(), bc.name_any()));
    out
}

fn note(reason: &'static str, action: &'static str, message: &str) -> Note {
    Note { warning: false, reason, action, message: message.to_string() }
}
