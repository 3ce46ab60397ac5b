//! One reconcile, in the order of its design:
//!
//! 1. **observe**: everything the pass reads, from the watches' caches, with one clock reading
//!    ([`pass::Observed`]);
//! 2. **decide and act**, per concern: onboarding, then the workload (the rotation's next steps,
//!    the desired children and their apply), then the actions a person asked for. Each decision is a
//!    pure function (`onboarding::plan`, `rotation::decide`, `resources::plan`, `compare::verdict`);
//!    each ConductorOne call is journaled in status before it is made, and what a pass writes is
//!    known to it without reading it back;
//! 3. **write status** once, computed by the pure [`status::compute`] from what the pass came to,
//!    and publish the events of its transitions.

pub mod adoption;
pub mod children;
pub mod finalizer;
pub mod invalid;
pub mod oneshot;
pub mod pass;
pub mod principal;
pub mod publish;
pub mod service;
pub mod sync_view;

use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{Resource, ResourceExt, runtime::controller::Action};
use tracing::debug;

use pass::{Observed, Pass};
use publish::publish;

use crate::controller::{
    c1::{actions, onboarding_steps},
    context::Context,
};
use crate::{
    Error, Result,
    api::{BatonConnector, CredentialsStatus, Mode},
    decide::{
        config,
        events::{self},
        outcome::Stage,
        pods, rotation, runs,
        status::{self, Observation},
    },
    resources::{SecretData, inputs},
};

/// The field manager of every write: status (all of it), the finalizer, the children.
pub const FIELD_MANAGER: &str = "baton-operator";

pub async fn reconcile(bc: Arc<BatonConnector>, ctx: Arc<Context>) -> Result<Action> {
    bc.namespace().ok_or(Error::NotNamespaced)?;
    let mut bc = (*bc).clone();
    if bc.meta().deletion_timestamp.is_some() {
        sync_view::forget(&ctx, &bc);
        return finalizer::cleanup(&ctx, &bc).await;
    }
    finalizer::ensure(&ctx, &mut bc).await?;
    let seen = Observed::read(&ctx, &bc).await?;
    let mut pass = Pass::new(&ctx, bc, seen);
    check_settings(&mut pass);
    // Suspended: nothing is created in ConductorOne either.
    let ids = match pass.bc.spec.suspend {
        true => None,
        false => onboarding_steps::converge(&mut pass).await?,
    };
    match pass.bc.spec.mode {
        // Suspended too: the CronJob is what takes `suspend`.
        Mode::OneShot => oneshot::converge(&mut pass).await?,
        Mode::Service if !pass.bc.spec.suspend => service::converge(&mut pass, ids.as_ref()).await?,
        Mode::Service => {}
    }
    actions::act(&mut pass).await;
    finish(pass).await
}

/// Checks the connector's settings against the catalog. Definite errors hold back the workload's
/// apply (the running connector keeps its last good settings), except while suspended: then nothing
/// rolls out anyway, and a OneShot CronJob must still take `suspend`.
fn check_settings(pass: &mut Pass<'_>) {
    let settings = config::check(&pass.bc, &pass.seen.secrets, crate::catalog::Catalog::embedded());
    if let Some(p) = config::problem(&settings).filter(|_| !pass.bc.spec.suspend) {
        pass.outcome.block(Stage::Config, p);
    }
    pass.outcome.settings = Some(settings);
}

/// Computes the status from what the pass came to, writes it when it changed, publishes the events.
async fn finish(mut pass: Pass<'_>) -> Result<Action> {
    let (bc, seen, outcome) = (&pass.bc, &pass.seen, &pass.outcome);
    let runs = (bc.spec.mode == Mode::OneShot).then(|| {
        let previous = bc.status.as_ref().and_then(|s| s.schedule.as_ref());
        runs::observe(seen.cronjob.as_ref(), &seen.jobs, previous, seen.now.0)
    });
    let (credentials, issuing) =
        reported_credentials(bc, &seen.secrets, &outcome.revoked, seen.defaults.as_ref());
    let pod = pod_reading(bc, seen, runs.as_ref());
    let observation = Observation {
        problem: outcome.problem().cloned(),
        deployment: seen.deployment.as_ref(),
        config_hash: outcome.config_hash.clone(),
        applied_current: outcome.applied_current,
        credentials,
        issuing,
        sync: seen.sync.as_ref().map(|v| (v.status.clone(), v.condition.clone(), v.permanent)),
        runs,
        pod: pod.problem,
        handled_sync: outcome.handled_sync.clone(),
        conductor_one: outcome.conductor_one.clone(),
        config: outcome.settings.as_ref().map(config::condition),
    };
    let new_status = status::compute(bc, &observation, &seen.now);
    let transitions = events::transitions(bc.status.as_ref(), &new_status);
    pass.notes.extend(transitions);
    if let Some(recheck) = pass.seen.sync.as_ref().and_then(|v| v.recheck) {
        pass.outcome.recheck_in(recheck);
    }
    // A container within its probes' grace: look again when it ends, as no pod event may come.
    if let Some(recheck) = pod.recheck {
        pass.outcome.recheck_in(recheck);
    }
    if pass.bc.status.as_ref() != Some(&new_status) {
        pass.write_status(new_status).await?;
        debug!(namespace = %pass.namespace(), name = %pass.name(), "status updated");
    }
    let Pass { ctx, bc, notes, outcome, .. } = pass;
    publish(ctx, &bc, notes).await;

    let wait = outcome.wait();
    if let Some(p) = outcome.into_problem() {
        // The condition and event already tell the user; the error makes the controller back off.
        return Err(Error::Blocked(p.reason()));
    }
    let resync = ctx.config.resync_interval_jittered();
    Ok(Action::requeue(wait.map_or(resync, |w| w.min(resync))))
}

/// What the pods say: in Service mode those of the live Deployment's template, in OneShot mode the
/// pod of the failed run.
fn pod_reading(bc: &BatonConnector, seen: &Observed, runs: Option<&runs::Runs>) -> pods::PodReading {
    let status = bc.status.as_ref();
    let ready =
        status.and_then(|s| crate::api::conditions::find(&s.conditions, crate::api::conditions::READY));
    let short = status.and_then(|s| s.workload.as_ref()).and_then(|w| w.pod.as_deref());
    let reported = ready.and_then(|c| pods::PodProblem::reported(&c.reason, &c.message, short));
    match runs {
        Some(r) => pods::PodReading {
            problem: r.failure().and_then(|f| pods::failed_run(&seen.pods, &f.job)),
            recheck: None,
        },
        None => match &seen.deployment {
            Some(d) => {
                let t = &d.spec.template;
                let template = pods::template_of(t.metadata.as_ref().and_then(|m| m.annotations.as_ref()));
                pods::service(&seen.pods, template, seen.now.0.as_second(), reported.as_ref())
            }
            None => pods::PodReading::default(),
        },
    }
}

/// The credentials to report in status, and, for managed ones not issued yet, what is awaited.
fn reported_credentials(
    bc: &BatonConnector,
    secrets: &SecretData,
    revoked: &[String],
    defaults: Option<&crate::api::ConnectorDefaults>,
) -> (Option<CredentialsStatus>, Option<String>) {
    let state = bc.status.as_ref().and_then(|s| s.credentials.clone()).unwrap_or_default();
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
    let in_force = crate::decide::tenant::rotation(m, defaults);
    let interval = crate::decide::credentials::rotation_settings(&in_force).map(|(i, _)| i).ok();
    let seed = crate::decide::credentials::jitter_seed(bc);
    let next = interval.and_then(|i| rotation::next_rotation(&state, i, &seed)).map(Time);
    let issuing = state.credential_id.is_none().then(|| {
        format!(
            "waiting for ConductorOne to issue the connector's first credential{}",
            status::unrecorded_note(&state)
        )
    });
    (Some(CredentialsStatus { next_rotation_at: next, ..state }), issuing)
}
