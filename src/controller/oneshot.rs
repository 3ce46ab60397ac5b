//! OneShot mode: the CronJob, a run on request, and the switch from and to Service mode. A switch
//! removes the other mode's workload only once the new one exists, so a connector is never left
//! with neither.

use k8s_openapi::api::{
    apps::v1::Deployment,
    batch::v1::{CronJob, Job},
};
use kube::{
    Api, ResourceExt,
    api::{ObjectMeta, PostParams},
};
use tracing::info;

use super::{
    Context,
    events::Note,
    reconcile::{Applied, Converged, apply_child, delete_child, owned_by, revoke_unused_credentials},
    status::Problem,
};
use crate::{
    Result,
    api::{BatonConnector, SYNC_REQUESTED_AT},
    resources::{self, SecretData, cronjob},
};

pub(super) async fn converge(
    ctx: &Context,
    bc: &BatonConnector,
    secrets: &SecretData,
    deployment: &mut Option<Deployment>,
    live: &mut Option<CronJob>,
    notes: &mut Vec<Note>,
) -> Result<Converged> {
    let ns = bc.namespace().unwrap_or_default();
    let name = bc.name_any();
    let mut out = Converged::default();
    let api: Api<CronJob> = Api::namespaced(ctx.client.clone(), &ns);
    match resources::plan_cronjob(bc, secrets) {
        Err(p) => out.problem = Some(Problem::Input(p)),
        Ok((desired, hash)) => {
            out.config_hash = Some(hash);
            match apply_child(ctx, bc, &api, live.as_ref(), desired, "CronJob").await? {
                Applied::Conflict => {
                    out.problem = Some(Problem::OwnershipConflict { kind: "CronJob", name: name.clone() })
                }
                Applied::Rejected(message) => out.problem = Some(Problem::Rejected { message }),
                Applied::Unchanged => out.applied_current = true,
                Applied::Written(cause, c) => {
                    ctx.caches.wrote_cronjob(&c);
                    out.applied_current = true;
                    notes.push(super::events::applied("CronJob", cause, &name));
                    *live = Some(*c);
                }
            }
        }
    }
    // Suspended: the CronJob takes `suspend` and nothing else happens.
    if !out.applied_current || bc.spec.suspend {
        return Ok(out);
    }
    if let Some(d) = deployment.as_ref().filter(|d| owned_by(*d, bc)) {
        delete_child(&Api::<Deployment>::namespaced(ctx.client.clone(), &ns), &d.name_any()).await?;
        info!(namespace = %ns, name = %name, "deleted the Deployment of Service mode");
        notes.push(replaced("Deployment", "CronJob", &name));
        *deployment = None;
    }
    revoke_unused_credentials(ctx, bc, secrets, deployment.as_ref(), notes, &mut out).await?;
    if let Some(request) = bc.annotations().get(SYNC_REQUESTED_AT)
        && bc.status.as_ref().and_then(|s| s.handled_requests.sync.as_ref()) != Some(request)
        && let Some(job) = live.as_ref().and_then(|c| cronjob::manual_job(c, request))
    {
        run_now(ctx, &ns, job).await?;
        out.handled_sync = Some(request.clone());
    }
    Ok(out)
}

/// Creates the Job of a requested run. Its name comes from the request, so a retry after a lost reply
/// finds the Job it made instead of starting a second run.
async fn run_now(ctx: &Context, ns: &str, job: Job) -> Result<()> {
    let api: Api<Job> = Api::namespaced(ctx.client.clone(), ns);
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
pub(super) async fn remove_cronjob(
    ctx: &Context,
    bc: &BatonConnector,
    live: &mut Option<CronJob>,
    notes: &mut Vec<Note>,
) -> Result<()> {
    let Some(c) = live.as_ref().filter(|c| owned_by(*c, bc)) else { return Ok(()) };
    let ns = bc.namespace().unwrap_or_default();
    delete_child(&Api::<CronJob>::namespaced(ctx.client.clone(), &ns), &c.name_any()).await?;
    info!(namespace = %ns, name = %bc.name_any(), "deleted the CronJob of OneShot mode");
    notes.push(replaced("CronJob", "Deployment", &bc.name_any()));
    *live = None;
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
