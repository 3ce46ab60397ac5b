//! What a person asks ConductorOne for through Kubernetes: a sync now (the `sync-requested-at`
//! annotation, in service mode; OneShot mode starts a run instead), and no syncs while the resource is
//! suspended. Each call is made once per request and recorded in status, so a reconcile repeats none.

use kube::ResourceExt;
use tracing::{info, warn};

use crate::api::{ConductorOneStatus, Mode, SYNC_REQUESTED_AT};
use crate::controller::reconcile::pass::Pass;
use crate::decide::{events::Note, outcome::Stage, status::Problem};

/// Makes the calls a person asked for; what they came to goes into the pass's outcome (a queued
/// sync's request, a new pause record, a failure).
pub(crate) async fn act(pass: &mut Pass<'_>) {
    let (ctx, bc) = (pass.ctx, &pass.bc);
    let Some(c1) = bc.spec.conductor_one.as_ref() else { return };
    // Missing API credentials are reported by the sync status already.
    let Ok(api) = pass.seen.api_credentials() else { return };
    let previous = bc.status.as_ref().and_then(|s| s.conductor_one.clone()).unwrap_or_default();
    let want_paused = bc.spec.suspend && c1.pause_when_suspended;
    let request = bc.annotations().get(SYNC_REQUESTED_AT).cloned();
    let handled = bc.status.as_ref().and_then(|s| s.handled_requests.sync.clone());
    let sync_now =
        bc.spec.mode == Mode::Service && !bc.spec.suspend && request.is_some() && request != handled;
    let pause_change = want_paused != previous.paused_at.is_some();
    if !pause_change && !sync_now {
        return;
    }
    let pool = pass.seen.pool(ctx);
    let Ok(_slot) = pool.slots.try_acquire() else {
        pass.outcome.busy();
        return;
    };
    // Until onboarding has the connector, there is nothing to act on; the request stays pending.
    let Some(ids) = crate::decide::onboarding::ids(bc) else { return };
    let now = pass.seen.now.clone();
    let mut notes = Vec::new();
    let (mut problem, mut conductor_one, mut handled_sync) = (None, None, None);
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
        // The last failure is the one reported.
        problem = Some(Problem::conductorone(e.to_string(), &e));
    };
    if pause_change && want_paused {
        match pool.client.pause_sync(&api, app, connector).await {
            Ok(()) => {
                conductor_one = Some(ConductorOneStatus { paused_at: Some(now), ..previous.clone() });
                notes.push(note(
                    "SyncsPaused",
                    "Suspend",
                    "paused the connector's syncs in ConductorOne while suspended",
                ));
            }
            Err(e) => failed("Suspend", e, &mut notes),
        }
    } else if pause_change {
        match pool.client.resume_sync(&api, app, connector).await {
            Ok(()) => {
                conductor_one = Some(ConductorOneStatus { paused_at: None, ..previous.clone() });
                notes.push(note("SyncsResumed", "Resume", "resumed the connector's syncs in ConductorOne"));
            }
            Err(e) => failed("Resume", e, &mut notes),
        }
    }
    if sync_now && let Some(request) = request {
        match pool.client.force_sync(&api, app, connector).await {
            Ok(()) => {
                info!(namespace = %ns, name = %name, "ConductorOne queued a sync");
                notes.push(note(
                    "SyncRequested",
                    "Sync",
                    &format!("ConductorOne queued a sync, as requested at {request}"),
                ));
                handled_sync = Some(request);
            }
            Err(e) => failed("Sync", e, &mut notes),
        }
    }
    // What changed is worth a look soon: a queued sync starts running, a pause shows as disabled.
    ctx.sync_poller.poll_soon(&(bc.namespace().unwrap_or_default(), bc.name_any()));
    if let Some(p) = problem {
        pass.outcome.block(Stage::Actions, p);
    }
    pass.outcome.handled_sync = pass.outcome.handled_sync.take().or(handled_sync);
    pass.outcome.conductor_one = conductor_one;
    pass.notes.extend(notes);
}

fn note(reason: &'static str, action: &'static str, message: &str) -> Note {
    Note { warning: false, reason, action, message: message.to_string() }
}
