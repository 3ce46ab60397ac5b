//! OneShot mode: the CronJob, a run on request, and the switch from and to Service mode. A switch
//! removes the other mode's workload only once the new one exists, so a connector is never left
//! with neither.

use k8s_openapi::api::{
    apps::v1::Deployment,
    batch::v1::{CronJob, Job},
};
use kube::{
    Api,
    api::{ObjectMeta, PostParams},
};
use tracing::info;

use super::{
    children::{Applied, apply_child, delete_child, owned_by, record_apply},
    pass::Pass,
};
use crate::controller::c1::credential_calls;
use crate::decide::{adoption::Takeover, events::Note, outcome::Stage, status::Problem};
use crate::{
    Result,
    api::SYNC_REQUESTED_AT,
    resources::{self, cronjob},
};

pub(crate) async fn converge(pass: &mut Pass<'_>) -> Result<()> {
    let name = pass.name();
    // Settings the SDK would refuse are not applied: the CronJob keeps the last good ones.
    if pass.outcome.blocked(Stage::Config) {
        return Ok(());
    }
    match resources::plan_cronjob(&pass.workload_spec(), &pass.seen.secrets) {
        Err(p) => pass.outcome.block(Stage::Inputs, Problem::Input(p)),
        Ok((desired, hash)) => {
            pass.outcome.config_hash = Some(hash);
            let live = pass.seen.cronjob.as_ref();
            let applied =
                match apply_child(pass.ctx, &pass.bc, live, desired.clone(), "CronJob", false).await? {
                    // Someone else's CronJob (in the cache or found by the API server): adopted in place
                    // when the resource asks for it and no controller owns it.
                    Applied::Conflict(found)
                        if crate::decide::adoption::cronjob(&pass.bc, &*found) == Takeover::InPlace =>
                    {
                        apply_child(pass.ctx, &pass.bc, Some(&*found), desired, "CronJob", true).await?
                    }
                    applied => applied,
                };
            if let Some(c) = record_apply(pass, applied, "CronJob") {
                pass.ctx.caches.wrote_cronjob(&c);
                pass.seen.cronjob = Some(c);
            }
        }
    }
    // Suspended: the CronJob takes `suspend` and nothing else happens.
    if !pass.outcome.applied_current || pass.bc.spec.suspend {
        return Ok(());
    }
    if let Some(d) = pass.seen.deployment.as_ref().filter(|d| owned_by(*d, &pass.bc)) {
        let deployment = kube::ResourceExt::name_any(d);
        delete_child::<Deployment>(pass.ctx, &pass.bc, &deployment).await?;
        info!(namespace = %pass.namespace(), name = %name, "deleted the Deployment of Service mode");
        pass.note(replaced("Deployment", "CronJob", &name));
        pass.seen.deployment = None;
    }
    credential_calls::revoke_leftovers(pass).await?;
    let request = kube::ResourceExt::annotations(&pass.bc).get(SYNC_REQUESTED_AT).cloned();
    if let Some(request) = request
        && pass.bc.status.as_ref().and_then(|s| s.handled_requests.sync.as_ref()) != Some(&request)
        && let Some(job) = pass.seen.cronjob.as_ref().and_then(|c| cronjob::manual_job(c, &request))
    {
        run_now(pass, job).await?;
        pass.outcome.handled_sync = Some(request);
    }
    Ok(())
}

/// Creates the Job of a requested run. Its name comes from the request, so a retry after a lost reply
/// finds the Job it made instead of starting a second run.
async fn run_now(pass: &Pass<'_>, job: Job) -> Result<()> {
    let ns = pass.namespace();
    let api: Api<Job> = Api::namespaced(pass.ctx.client.clone(), &ns);
    match api.create(&PostParams::default(), &job).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(e) => return Err(e.into()),
    }
    let ObjectMeta { name, .. } = job.metadata;
    info!(namespace = %ns, job = ?name, "started a requested run");
    Ok(())
}

/// Service mode: the CronJob of OneShot mode goes once the Deployment is on the current template.
pub(crate) async fn remove_cronjob(pass: &mut Pass<'_>) -> Result<()> {
    let Some(c) = pass.seen.cronjob.as_ref().filter(|c| owned_by(*c, &pass.bc)) else { return Ok(()) };
    let cronjob = kube::ResourceExt::name_any(c);
    delete_child::<CronJob>(pass.ctx, &pass.bc, &cronjob).await?;
    info!(namespace = %pass.namespace(), name = %pass.name(), "deleted the CronJob of OneShot mode");
    let name = pass.name();
    pass.note(replaced("CronJob", "Deployment", &name));
    pass.seen.cronjob = None;
    Ok(())
}

fn replaced(old: &str, new: &str, name: &str) -> Note {
    Note {
        warning: false,
        reason: "WorkloadReplaced",
        action: "Apply",
        message: format!("deleted {old} {name}: the connector now runs as {new} {name}"),
    }
}
