//! Managed credentials: performs the steps `rotation::decide` names, journaling the state that lets
//! a step resume before its side effect. The client secret goes from ConductorOne's reply straight
//! into the Secret revision and nowhere else.

use std::time::Duration;

use k8s_openapi::api::{apps::v1::Deployment, core::v1::Secret};
use kube::{
    Api,
    api::{DeleteParams, PostParams},
};
use tracing::{info, warn};

use crate::controller::reconcile::pass::Pass;
use crate::decide::{
    credentials::{self, c1_problem, credential_secret, expiry_horizon, jitter_seed, reads_credentials_from},
    events::Note,
    outcome::Stage,
    status::{self, Problem},
};
use crate::{
    Result,
    api::{ConnectorRef, ROTATE_REQUESTED_AT, RotationPhase},
    conductorone::{ApiCredentials, ErrorKind},
    decide::onboarding::Ids,
    decide::rotation::{self, Step, StoredCredential},
};

/// A bound on steps per pass, so that a bug can never turn into a hot loop against ConductorOne.
const MAX_STEPS: usize = 12;

/// What the rotation of managed credentials needs.
pub struct Rotation {
    pub ids: Ids,
    pub api: ApiCredentials,
    pub interval: Duration,
    pub grace: Duration,
}

/// What the rotation needs, or why it cannot run; `Ok(None)` without managed credentials or before
/// onboarding has the connector (onboarding reports why).
pub fn settings(pass: &Pass<'_>, ids: Option<&Ids>) -> std::result::Result<Option<Rotation>, Problem> {
    let bc = &pass.bc;
    let Some(m) = &bc.spec.credentials.managed else { return Ok(None) };
    let Some(ids) = ids else { return Ok(None) };
    if bc.spec.conductor_one.is_none() {
        return Err(Problem::Rejected { message: "credentials.managed needs spec.conductorOne".into() });
    }
    let in_force = crate::decide::tenant::rotation(m, pass.seen.defaults.as_ref());
    let (interval, grace) = credentials::rotation_settings(&in_force)?;
    let api = pass.seen.api_credentials().map_err(Problem::Input)?;
    Ok(Some(Rotation { ids: ids.clone(), api, interval, grace }))
}

/// The input of `rotation::decide`, from the pass alone: the record as this pass left it, the
/// revision Secrets as observed or created by this pass, the workload as observed.
fn decide(pass: &Pass<'_>, r: &Rotation) -> Step {
    let bc = &pass.bc;
    let state = pass.credentials();
    let base = pass.name();
    let connector = connector_of(&r.ids);
    // Only issuing (adopt after a crash) and rolling (promote) look at the new revision.
    let stored = state
        .rotation
        .as_ref()
        .filter(|r| matches!(r.phase, RotationPhase::Issuing | RotationPhase::Rolling))
        .and_then(|r| pass.seen.secrets.stored_credential(&rotation::secret_name(&base, r.revision)))
        .cloned();
    let expected = rotation::workload_secret(&state, &base);
    let rolled_out = rolled_out(pass.seen.deployment.as_ref(), expected.as_deref());
    let handled = bc.status.as_ref().and_then(|s| s.handled_requests.rotate.clone());
    let request = kube::ResourceExt::annotations(bc).get(ROTATE_REQUESTED_AT).cloned();
    let seed = jitter_seed(bc);
    rotation::decide(&rotation::Input {
        state: &state,
        interval: r.interval,
        grace: r.grace,
        rotate_request: request.as_deref(),
        handled_rotate: handled.as_deref(),
        now: pass.now(),
        stored,
        rolled_out,
        jitter_seed: &seed,
        connector: &connector,
    })
}

fn rolled_out(live: Option<&Deployment>, expected: Option<&str>) -> bool {
    live.is_some_and(|d| {
        status::workload_state(Some(d)) == status::WorkloadState::Available
            && expected.is_some_and(|e| reads_credentials_from(d, e))
    })
}

fn connector_of(ids: &Ids) -> ConnectorRef {
    ConnectorRef { app_id: ids.app.clone(), connector_id: ids.connector.clone() }
}

/// Performs steps until one has to wait; what it waits for goes into the pass's outcome.
pub async fn drive(pass: &mut Pass<'_>, r: &Rotation) -> Result<()> {
    // The tenant's slots: a tenant whose ConductorOne is slow takes only its own.
    let pool = pass.seen.pool(pass.ctx);
    for _ in 0..MAX_STEPS {
        let step = decide(pass, r);
        let now = pass.now();
        match &step {
            Step::AwaitRollout => return Ok(()),
            Step::AwaitGrace(until) => {
                pass.outcome.recheck_in(until_from(now, *until));
                return Ok(());
            }
            Step::Idle(next) => {
                if let Some(next) = next {
                    pass.outcome.recheck_in(until_from(now, *next));
                }
                return Ok(());
            }
            _ => {}
        }
        // A step that calls ConductorOne needs one of the few slots for that; without one it comes
        // back shortly rather than hold a worker the rest of the fleet needs.
        let _slot = match calls_conductorone(&step) {
            true => match pool.slots.try_acquire() {
                Ok(permit) => Some(permit),
                Err(_) => {
                    pass.outcome.busy();
                    return Ok(());
                }
            },
            false => None,
        };
        match perform(pass, r, step).await? {
            Done::Next => {}
            Done::Stop => return Ok(()),
            Done::Blocked(problem) => {
                pass.outcome.block(Stage::Rotation, problem);
                return Ok(());
            }
        }
    }
    warn!(namespace = %pass.namespace(), name = %pass.name(), "rotation did not settle within one reconcile");
    pass.outcome.recheck_in(Duration::from_secs(5));
    Ok(())
}

fn calls_conductorone(step: &Step) -> bool {
    matches!(step, Step::Issue | Step::RevokePrevious(_) | Step::RevokePending(_) | Step::RevokeSuperseded(_))
}

/// What a step came to.
enum Done {
    /// Recorded and performed: decide the next one.
    Next,
    /// Nothing more to do in this pass.
    Stop,
    /// ConductorOne refused or failed; the problem goes into the conditions.
    Blocked(Problem),
}

async fn perform(pass: &mut Pass<'_>, r: &Rotation, step: Step) -> Result<Done> {
    let state = pass.credentials();
    match step {
        Step::Start(trigger) => {
            let request = kube::ResourceExt::annotations(&pass.bc).get(ROTATE_REQUESTED_AT).cloned();
            let handled = pass.bc.status.as_ref().and_then(|s| s.handled_requests.rotate.clone());
            let next = rotation::start(&state, trigger, &connector_of(&r.ids), pass.now());
            pass.record_credentials(&next, request.or(handled).as_deref()).await?;
            info!(namespace = %pass.namespace(), name = %pass.name(), trigger = trigger.as_str(), "credential rotation started");
            if trigger != rotation::Trigger::Initial {
                note(
                    pass,
                    false,
                    "RotationStarted",
                    format!("rotating ConductorOne credentials ({})", trigger.as_str()),
                );
            }
        }
        Step::Issue => return issue(pass, r).await,
        Step::Adopt(stored) => {
            pass.record_credentials(&rotation::record_stored(&state, &stored), None).await?;
            let message = format!("resumed the rotation with stored credential {}", stored.credential_id);
            note(pass, false, "CredentialRecovered", message);
        }
        Step::ReportUnrecorded { since } => {
            let horizon = expiry_horizon(&state, since);
            pass.record_credentials(&rotation::record_unrecorded(&state), None).await?;
            let message = format!(
                "an issue request sent at {since} got no stored reply (the operator stopped or the call failed); \
                 ConductorOne may hold an unused credential for connector {} that the operator cannot revoke: {horizon}",
                r.ids.connector
            );
            note(pass, true, "CredentialPossiblyOrphaned", message);
        }
        Step::Promote => return promote(pass, r).await,
        Step::RevokePrevious(previous) => {
            if state.rotation.as_ref().is_some_and(|r| r.phase != RotationPhase::Revoking) {
                pass.record_credentials(&rotation::mark_revoking(&state), None).await?;
            }
            if let Err(e) = revoke(pass, &r.api, &r.ids.app, &r.ids.connector, &previous.credential_id).await
            {
                let message = format!("could not revoke credential {}: {e}", previous.credential_id);
                note(pass, true, "RevokeFailed", message);
                return Ok(Done::Blocked(c1_problem(&e)));
            }
            delete_secret(pass, &previous.secret_name).await?;
            pass.record_credentials(&rotation::finish(&pass.credentials()), None).await?;
            let message = format!("revoked the previous credential {}", previous.credential_id);
            note(pass, false, "CredentialRevoked", message);
        }
        Step::RevokePending(id) => {
            if let Err(e) = revoke(pass, &r.api, &r.ids.app, &r.ids.connector, &id).await {
                return Ok(Done::Blocked(c1_problem(&e)));
            }
            pass.record_credentials(&rotation::remove_pending_revocation(&state, &id), None).await?;
            note(pass, false, "CredentialRevoked", format!("revoked unused credential {id}"));
        }
        Step::Supersede => supersede(pass, r).await?,
        Step::RevokeSuperseded(old) => {
            let (app, id) = (&old.connector.app_id, &old.connector.connector_id);
            if let Err(e) = revoke(pass, &r.api, app, id, &old.credential_id).await {
                note(
                    pass,
                    true,
                    "RevokeFailed",
                    format!("could not revoke credential {}: {e}", old.credential_id),
                );
                return Ok(Done::Blocked(c1_problem(&e)));
            }
            let in_use = rotation::workload_secret(&state, &pass.name());
            if let Some(secret) = old.secret_name.as_ref().filter(|s| Some(*s) != in_use.as_ref()) {
                delete_secret(pass, secret).await?;
            }
            pass.record_credentials(&rotation::remove_superseded(&state, &old.credential_id), None).await?;
            let message = format!(
                "revoked credential {} of connector {}, which the resource no longer uses",
                old.credential_id, id
            );
            note(pass, false, "CredentialRevoked", message);
        }
        Step::AwaitRollout | Step::AwaitGrace(_) | Step::Idle(_) => return Ok(Done::Stop),
    }
    Ok(Done::Next)
}

/// Marks the issue in flight, asks ConductorOne for a credential and stores the whole reply in a new
/// Secret revision, then records it.
async fn issue(pass: &mut Pass<'_>, r: &Rotation) -> Result<Done> {
    let state = pass.credentials();
    let now = pass.now();
    pass.record_credentials(&rotation::mark_in_flight(&state, now), None).await?;
    let revision = state.rotation.as_ref().map(|r| r.revision).unwrap_or(1);
    let issued =
        match pass.seen.pool(pass.ctx).client.rotate_credential(&r.api, &r.ids.app, &r.ids.connector).await {
            Ok(issued) => issued,
            Err(e) => {
                // Only a failure that proves nothing was minted clears the mark; otherwise the next
                // attempt reports the possible stray credential first.
                if matches!(
                    e.kind(),
                    ErrorKind::RateLimited
                        | ErrorKind::Unauthorized
                        | ErrorKind::Forbidden
                        | ErrorKind::InvalidCredentials
                        | ErrorKind::InvalidRequest
                        | ErrorKind::NotFound
                        | ErrorKind::Config
                ) {
                    pass.record_credentials(&rotation::clear_in_flight(&state), None).await?;
                }
                return Ok(Done::Blocked(c1_problem(&e)));
            }
        };
    let stored = StoredCredential {
        credential_id: issued.id.clone(),
        client_id: issued.client_id.clone(),
        issued_at: issued.created_at.or(Some(now)),
        expires_at: issued.expires_at,
    };
    // The one write that persists the whole reply, id included.
    let secret = credential_secret(&pass.bc, revision, &issued, stored.issued_at);
    let api: Api<Secret> = Api::namespaced(pass.ctx.client.clone(), &pass.namespace());
    match api.create(&PostParams::default(), &secret).await {
        Ok(created) => pass.stored_secret(&created),
        Err(e) => {
            warn!(namespace = %pass.namespace(), name = %pass.name(), credential_id = %issued.id, error = %e, "could not store a new credential; revoking it");
            revoke_unusable(pass, r, &issued.id).await?;
            return Err(e.into());
        }
    }
    pass.record_credentials(&rotation::record_stored(&state, &stored), None).await?;
    let message = format!("ConductorOne issued credential {} ({})", issued.id, issued.client_id);
    note(pass, false, "CredentialIssued", message);
    Ok(Done::Next)
}

async fn promote(pass: &mut Pass<'_>, r: &Rotation) -> Result<Done> {
    let state = pass.credentials();
    let base = pass.name();
    let revision = state.rotation.as_ref().map(|r| r.revision).unwrap_or_default();
    // `decide` promotes only what it saw stored.
    let Some(stored) = pass.seen.secrets.stored_credential(&rotation::secret_name(&base, revision)).cloned()
    else {
        return Ok(Done::Stop);
    };
    let had_previous = state.rotation.as_ref().is_some_and(|r| r.previous.is_some());
    pass.record_credentials(&rotation::promote(&state, &stored, &base, r.grace, pass.now()), None).await?;
    if had_previous {
        let message = format!(
            "the connector runs on credential {}; the previous one stays valid for {:?}",
            stored.credential_id, r.grace
        );
        note(pass, false, "RotatedOut", message);
    }
    Ok(Done::Next)
}

async fn supersede(pass: &mut Pass<'_>, r: &Rotation) -> Result<()> {
    let state = pass.credentials();
    let old = state.minted_for.clone().unwrap_or_default();
    pass.record_credentials(&rotation::supersede(&state, &pass.name(), &connector_of(&r.ids)), None).await?;
    info!(namespace = %pass.namespace(), name = %pass.name(), old_connector = %old.connector_id, connector = %r.ids.connector, "the connector changed; issuing a credential for the new one");
    let message = format!(
        "the resource now uses connector {} of app {} (was {} of app {}): issuing a credential for it; the old connector's credentials are revoked once the pod runs on the new one",
        r.ids.connector, r.ids.app, old.connector_id, old.app_id
    );
    note(pass, false, "ConnectorChanged", message);
    Ok(())
}

async fn revoke(
    pass: &Pass<'_>,
    api: &ApiCredentials,
    app: &str,
    connector: &str,
    id: &str,
) -> std::result::Result<(), crate::conductorone::Error> {
    match pass.seen.pool(pass.ctx).client.revoke_credential(api, app, connector, id).await {
        Err(e) if e.kind() != ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// A credential that was minted but cannot be used is revoked at once, or remembered for later.
async fn revoke_unusable(pass: &mut Pass<'_>, r: &Rotation, id: &str) -> Result<()> {
    let state = rotation::clear_in_flight(&pass.credentials());
    match revoke(pass, &r.api, &r.ids.app, &r.ids.connector, id).await {
        Ok(()) => pass.record_credentials(&state, None).await,
        Err(_) => pass.record_credentials(&rotation::add_pending_revocation(&state, id), None).await,
    }
}

async fn delete_secret(pass: &Pass<'_>, name: &str) -> Result<()> {
    let api: Api<Secret> = Api::namespaced(pass.ctx.client.clone(), &pass.namespace());
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

fn note(pass: &mut Pass<'_>, warning: bool, reason: &'static str, message: String) {
    pass.note(Note { warning, reason, action: "RotateCredentials", message });
}

fn until_from(now: k8s_openapi::jiff::Timestamp, at: k8s_openapi::jiff::Timestamp) -> Duration {
    Duration::from_secs(u64::try_from(at.as_second() - now.as_second()).unwrap_or(0).max(1))
}
