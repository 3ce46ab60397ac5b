//! One reconcile: read what exists, let the pure builders decide, write only what changed.

use std::sync::Arc;

use k8s_openapi::{
    api::{apps::v1::Deployment, core::v1::Secret},
    apimachinery::pkg::apis::meta::v1::Time,
    jiff::Timestamp,
};
use kube::{
    Api, Resource, ResourceExt,
    api::{Patch, PatchParams},
    runtime::{controller::Action, events::EventType},
};
use serde_json::json;
use tracing::{debug, info, warn};

use super::{
    Context, actions, credentials,
    events::{self, Note},
    finalizer, onboarding, oneshot, polling, runs,
    status::{self, Observation, Problem},
};
use crate::{
    Error, Result,
    api::{BatonConnector, CredentialsStatus},
    metrics::ApplyLabels,
    resources::{
        self, SecretData,
        compare::{self, APPLIED_HASH_ANNOTATION},
        inputs,
    },
    rotation,
};

/// The field manager of every write; forced, because the operator is the authority on what it owns.
pub const FIELD_MANAGER: &str = "baton-operator";

pub async fn reconcile(bc: Arc<BatonConnector>, ctx: Arc<Context>) -> Result<Action> {
    let ns = bc.namespace().ok_or(Error::NotNamespaced)?;
    let name = bc.name_any();
    let mut bc = (*bc).clone();
    if bc.meta().deletion_timestamp.is_some() {
        polling::forget(&ctx, &bc);
        return finalizer::cleanup(&ctx, &bc).await;
    }
    finalizer::ensure(&ctx, &mut bc).await?;
    let now = Time(Timestamp::from_second(Timestamp::now().as_second()).expect("now is a valid timestamp"));
    let mut secrets = ctx.caches.secrets(&ctx.client, &ns, &inputs::referenced_secrets(&bc)).await?;
    let deployments: Api<Deployment> = Api::namespaced(ctx.client.clone(), &ns);
    let mut live = ctx.caches.deployment(&ctx.client, &ns, &name).await?;
    let mut cronjob = ctx.caches.cronjob(&ctx.client, &ns, &name).await?;
    let oneshot = bc.spec.mode == crate::api::Mode::OneShot;

    let mut notes = Vec::new();
    let mut outcome = Converged::default();
    // Suspended: nothing is created in ConductorOne either.
    let onboarded = match bc.spec.suspend {
        true => onboarding::Onboarded::default(),
        false => onboarding::converge(&ctx, &mut bc, &secrets, &mut notes).await?,
    };
    if oneshot {
        // Suspended too: the CronJob is what takes `suspend`.
        outcome = oneshot::converge(&ctx, &bc, &secrets, &mut live, &mut cronjob, &mut notes).await?;
    } else if !bc.spec.suspend {
        let ids = onboarded.ids.as_ref();
        outcome = converge(&ctx, &mut bc, ids, &mut secrets, &deployments, &mut live, &mut notes).await?;
        if outcome.applied_current {
            oneshot::remove_cronjob(&ctx, &bc, &mut cronjob, &mut notes).await?;
        }
    }
    let runs = match oneshot {
        true => {
            let jobs = ctx.caches.jobs(&ctx.client, &ns, &name).await?;
            let previous = bc.status.as_ref().and_then(|s| s.schedule.as_ref());
            Some(runs::observe(cronjob.as_ref(), &jobs, previous, Timestamp::now()))
        }
        false => None,
    };
    let acted = actions::act(&ctx, &bc, &secrets, &mut notes).await;
    let Converged { mut problem, config_hash, applied_current, mut wait, revoked, handled_sync } = outcome;
    // What keeps onboarding from finishing explains the rest.
    problem = onboarded.problem.or(problem).or(acted.problem);
    if acted.busy || onboarded.busy {
        wait = Some(wait.map_or(super::C1_BUSY_RETRY, |w| w.min(super::C1_BUSY_RETRY)));
    }
    let handled_sync = handled_sync.or(acted.handled_sync);
    let (credentials, issuing) = reported_credentials(&bc, &secrets, &revoked);
    let sync = polling::observe(&ctx, &bc, &secrets);
    if let Some(recheck) = sync.as_ref().and_then(|v| v.recheck) {
        wait = Some(wait.map_or(recheck, |w: std::time::Duration| w.min(recheck)));
    }
    let observation = Observation {
        problem,
        deployment: live.as_ref(),
        config_hash,
        applied_current,
        credentials,
        issuing,
        sync: sync.as_ref().map(|v| (v.status.clone(), v.condition.clone(), v.permanent)),
        runs,
        handled_sync,
        conductor_one: acted.status,
    };
    let new_status = status::compute(&bc, &observation, &now);
    notes.extend(events::transitions(bc.status.as_ref(), &new_status));
    if bc.status.as_ref() != Some(&new_status) {
        let api: Api<BatonConnector> = Api::namespaced(ctx.client.clone(), &ns);
        let patch = json!({
            "apiVersion": "baton.conductorone.com/v1alpha1",
            "kind": "BatonConnector",
            "status": new_status,
        });
        api.patch_status(&name, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&patch)).await?;
        ctx.metrics.status_writes.inc();
        debug!(namespace = %ns, name = %name, "status updated");
    }
    publish(&ctx, &bc, notes).await;

    if let Some(p) = &observation.problem {
        // The condition and event already tell the user; the error makes the controller back off.
        return Err(Error::Blocked(p.reason()));
    }
    let resync = ctx.config.resync_interval_jittered();
    Ok(Action::requeue(wait.map_or(resync, |w| w.min(resync))))
}

/// What bringing the children in line with the spec came to.
#[derive(Default)]
pub(super) struct Converged {
    pub problem: Option<Problem>,
    pub config_hash: Option<String>,
    pub applied_current: bool,
    pub wait: Option<std::time::Duration>,
    /// Operator-minted credentials revoked because the resource no longer uses managed credentials.
    pub revoked: Vec<String>,
    /// OneShot mode: a `sync-requested-at` value this reconcile started a run for.
    pub handled_sync: Option<String>,
}

/// Managed credentials (before and after the rollout they need) and the Deployment.
async fn converge(
    ctx: &Context,
    bc: &mut BatonConnector,
    ids: Option<&crate::onboarding::Ids>,
    secrets: &mut SecretData,
    deployments: &Api<Deployment>,
    live: &mut Option<Deployment>,
    notes: &mut Vec<Note>,
) -> Result<Converged> {
    let name = bc.name_any();
    let mut out = Converged::default();
    let rotation = match managed_rotation(bc, secrets, ids) {
        Ok(r) => r,
        Err(p) => {
            out.problem = Some(p);
            None
        }
    };
    // Issue, store or adopt a credential before the workload needs it.
    if let Some(r) = &rotation {
        r.drive(ctx, bc, live.as_ref(), notes, &mut out).await?;
    }
    let credentials_secret = match &bc.spec.credentials.managed {
        None => bc.spec.credentials.secret_ref.as_ref().map(|r| r.name.clone()),
        Some(_) => rotation::workload_secret(&credentials_state(bc), &name),
    };
    // A revision stored during this reconcile was not there when the referenced Secrets were read.
    if let (Some(_), Some(secret)) = (&bc.spec.credentials.managed, &credentials_secret)
        && secrets.get(secret).is_none()
    {
        read_secret_into(&ctx.client, &bc.namespace().unwrap_or_default(), secret, secrets).await?;
    }
    // A ConductorOne failure mid-rotation must not stop the workload that runs on the current
    // credential from being kept in shape.
    if let Some(credentials_secret) = credentials_secret {
        match resources::plan(bc, secrets, &credentials_secret) {
            Err(p) => out.problem = out.problem.take().or(Some(Problem::Input(p))),
            Ok(plan) => {
                out.config_hash = Some(plan.config_hash.clone());
                match apply_child(ctx, bc, deployments, live.as_ref(), plan.deployment, "Deployment").await? {
                    Applied::Conflict => {
                        out.problem =
                            Some(Problem::OwnershipConflict { kind: "Deployment", name: name.clone() })
                    }
                    Applied::Rejected(message) => out.problem = Some(Problem::Rejected { message }),
                    Applied::Unchanged => out.applied_current = true,
                    Applied::Written(cause, d) => {
                        ctx.caches.wrote_deployment(&d);
                        out.applied_current = true;
                        notes.push(events::applied("Deployment", cause, &name));
                        *live = Some(*d);
                    }
                }
            }
        }
    }
    // Promote, wait out the grace period, revoke: the steps that follow the rollout.
    if let (Some(r), None) = (&rotation, &out.problem) {
        r.drive(ctx, bc, live.as_ref(), notes, &mut out).await?;
    }
    revoke_unused_credentials(ctx, bc, secrets, live.as_ref(), notes, &mut out).await?;
    Ok(out)
}

/// Credentials minted while the resource used managed credentials are revoked once no pod uses them.
pub(super) async fn revoke_unused_credentials(
    ctx: &Context,
    bc: &BatonConnector,
    secrets: &SecretData,
    live: Option<&Deployment>,
    notes: &mut Vec<Note>,
    out: &mut Converged,
) -> Result<()> {
    let leftovers = !rotation::minted(&credentials_state(bc)).is_empty();
    if bc.spec.credentials.managed.is_some() || out.problem.is_some() || !leftovers {
        return Ok(());
    }
    let Ok(_slot) = ctx.c1_slots.try_acquire() else {
        out.wait = Some(super::C1_BUSY_RETRY);
        return Ok(());
    };
    match credentials::revoke_leftovers(ctx, bc, secrets, live, notes).await? {
        Ok(revoked) => out.revoked = revoked,
        Err(p) => out.problem = Some(p),
    }
    Ok(())
}

/// What the rotation of managed credentials needs, or why it cannot run.
struct ManagedRotation {
    ids: crate::onboarding::Ids,
    api: crate::conductorone::ApiCredentials,
    interval: std::time::Duration,
    grace: std::time::Duration,
}

impl ManagedRotation {
    async fn drive(
        &self,
        ctx: &Context,
        bc: &mut BatonConnector,
        live: Option<&Deployment>,
        notes: &mut Vec<Note>,
        out: &mut Converged,
    ) -> Result<()> {
        let mut driver = credentials::Driver {
            ctx,
            ids: &self.ids,
            api: &self.api,
            interval: self.interval,
            grace: self.grace,
            notes,
        };
        match driver.drive(bc, live).await? {
            credentials::Outcome::Blocked(p) => out.problem = Some(p),
            credentials::Outcome::Wait(w) => out.wait = w,
        }
        Ok(())
    }
}

fn managed_rotation(
    bc: &BatonConnector,
    secrets: &SecretData,
    ids: Option<&crate::onboarding::Ids>,
) -> Result<Option<ManagedRotation>, Problem> {
    let Some(m) = &bc.spec.credentials.managed else { return Ok(None) };
    // Onboarding reports why the connector is not there yet.
    let Some(ids) = ids else { return Ok(None) };
    let Some(c1) = &bc.spec.conductor_one else {
        return Err(Problem::Rejected { message: "credentials.managed needs spec.conductorOne".into() });
    };
    let (interval, grace) = credentials::rotation_settings(m)?;
    let api = credentials::api_credentials(bc, c1, secrets).map_err(Problem::Input)?;
    Ok(Some(ManagedRotation { ids: ids.clone(), api, interval, grace }))
}

/// The credentials to report in status, and, for managed ones not issued yet, what is awaited.
fn reported_credentials(
    bc: &BatonConnector,
    secrets: &SecretData,
    revoked: &[String],
) -> (Option<CredentialsStatus>, Option<String>) {
    let state = credentials_state(bc);
    let Some(m) = &bc.spec.credentials.managed else {
        // Credentials minted while the resource was managed stay on record until they are revoked,
        // unless the policy is to leave them valid.
        let leftovers = match bc.spec.deletion_policy {
            crate::api::DeletionPolicy::Revoke => {
                rotation::minted(&state).into_iter().filter(|id| !revoked.contains(id)).collect()
            }
            crate::api::DeletionPolicy::Orphan => Vec::new(),
        };
        let reported = CredentialsStatus {
            secret_name: bc.spec.credentials.secret_ref.as_ref().map(|r| r.name.clone()),
            client_id: inputs::client_id(bc, secrets),
            pending_revocations: leftovers,
            ..Default::default()
        };
        return (Some(reported), None);
    };
    let interval = credentials::rotation_settings(m).map(|(i, _)| i).ok();
    let seed = credentials::jitter_seed(bc);
    let next = interval.and_then(|i| rotation::next_rotation(&state, i, &seed)).map(Time);
    let issuing = state.credential_id.is_none().then(|| {
        format!(
            "waiting for ConductorOne to issue the connector's first credential{}",
            status::unrecorded_note(&state)
        )
    });
    (Some(CredentialsStatus { next_rotation_at: next, ..state }), issuing)
}

fn credentials_state(bc: &BatonConnector) -> CredentialsStatus {
    bc.status.as_ref().and_then(|s| s.credentials.clone()).unwrap_or_default()
}

async fn read_secret_into(client: &kube::Client, ns: &str, name: &str, out: &mut SecretData) -> Result<()> {
    if let Some(secret) = Api::<Secret>::namespaced(client.clone(), ns).get_opt(name).await? {
        out.insert_secret(&secret);
    }
    Ok(())
}

pub(super) enum Applied<K> {
    Unchanged,
    Written(&'static str, Box<K>),
    Conflict,
    Rejected(String),
}

/// Applies a child (the Deployment or the CronJob) when it differs from what was last applied or was
/// edited by hand; never takes over an object the resource does not own.
pub(super) async fn apply_child<K>(
    ctx: &Context,
    bc: &BatonConnector,
    api: &Api<K>,
    live: Option<&K>,
    mut desired: K,
    kind: &'static str,
) -> Result<Applied<K>>
where
    K: Resource<DynamicType = ()> + Clone + std::fmt::Debug + serde::Serialize + serde::de::DeserializeOwned,
{
    let hash = compare::stamp(&mut desired);
    let cause = match live {
        None => "create",
        Some(l) if !owned_by(l, bc) => return Ok(Applied::Conflict),
        Some(l) if l.annotations().get(APPLIED_HASH_ANNOTATION) != Some(&hash) => "update",
        Some(l) if !same_owned_fields(l, &desired) => "drift",
        Some(_) => return Ok(Applied::Unchanged),
    };
    let name = desired.name_any();
    match api.patch(&name, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&desired)).await {
        Ok(d) => {
            ctx.metrics.applies.get_or_create(&ApplyLabels { kind, cause }).inc();
            info!(namespace = ?desired.meta().namespace, name = %name, kind, cause, "applied");
            Ok(Applied::Written(cause, Box::new(d)))
        }
        Err(kube::Error::Api(s)) if s.code == 422 => {
            warn!(name = %name, kind, reason = %s.reason, "rejected by the API server");
            Ok(Applied::Rejected(s.message))
        }
        Err(e) => Err(e.into()),
    }
}

pub(super) fn owned_by<K: Resource>(child: &K, bc: &BatonConnector) -> bool {
    let uid = bc.uid();
    child.owner_references().iter().any(|o| o.controller == Some(true) && Some(&o.uid) == uid.as_ref())
}

/// Whether the live object still has every value the operator set (labels, annotations, spec).
fn same_owned_fields<K: serde::Serialize>(live: &K, desired: &K) -> bool {
    let l = serde_json::to_value(live).unwrap_or_default();
    let d = serde_json::to_value(desired).unwrap_or_default();
    ["labels", "annotations"].iter().all(|k| compare::contains(&l["metadata"][k], &d["metadata"][k]))
        && compare::contains(&l["spec"], &d["spec"])
}

/// Deletes a child of the other mode once the new workload exists. Gone already is fine.
pub(super) async fn delete_child<K>(api: &Api<K>, name: &str) -> Result<()>
where
    K: Resource<DynamicType = ()> + Clone + std::fmt::Debug + serde::de::DeserializeOwned,
{
    let background = kube::api::DeleteParams::background();
    match api.delete(name, &background).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

pub(super) async fn publish(ctx: &Context, bc: &BatonConnector, notes: Vec<Note>) {
    let reference = bc.object_ref(&());
    for note in notes {
        let level = if note.warning { EventType::Warning } else { EventType::Normal };
        let event = kube::runtime::events::Event {
            type_: level,
            reason: note.reason.into(),
            note: Some(note.message),
            action: note.action.into(),
            secondary: None,
        };
        // An event that cannot be written must not fail the reconcile that already did the work.
        if let Err(e) = ctx.recorder.publish(&event, &reference).await {
            warn!(error = %e, reason = note.reason, "could not publish event");
        }
    }
}
