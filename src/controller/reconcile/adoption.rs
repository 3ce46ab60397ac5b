//! The I/O of an adoption (the `adopt-existing` annotation, decided in `decide::adoption`): the old
//! Deployment released with its pods left running, and what it left behind removed once the
//! operator's own pod is available. Each step is journaled in `status.adoption` before it is taken.

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use kube::{
    Api, ResourceExt,
    api::{DeleteParams, ListParams, PropagationPolicy},
};
use tracing::info;

use super::{children::Applied, pass::Pass};
use crate::{
    Result,
    decide::{
        adoption::{self, Takeover},
        events::Note,
        outcome::Stage,
        status::{self, Problem, WorkloadState},
    },
};

/// How soon a pass comes back while the released Deployment is being deleted or the new pod starts.
const STEP: std::time::Duration = std::time::Duration::from_secs(2);

/// A Deployment of the resource's name that it does not control: released for adoption when the
/// resource asks for it and nobody controls it; otherwise the conflict is reported as before.
pub async fn on_conflict(pass: &mut Pass<'_>, live: Deployment) -> Result<Applied<Deployment>> {
    match adoption::deployment(&pass.bc, &live, &pass.seen.now) {
        Takeover::NotRequested | Takeover::InPlace => return Ok(Applied::Conflict(Box::new(live))),
        Takeover::Refused { owner } => {
            let problem =
                Problem::OwnershipConflict { kind: "Deployment", name: pass.name(), owner: Some(owner) };
            pass.outcome.block(Stage::Apply, problem);
        }
        Takeover::WaitForRelease => pass.outcome.recheck_in(STEP),
        Takeover::Release(record) => {
            let mut status = pass.status();
            status.adoption = Some(record);
            pass.write_status(status).await?;
            let api: Api<Deployment> = Api::namespaced(pass.ctx.client.clone(), &pass.namespace());
            let orphan =
                DeleteParams { propagation_policy: Some(PropagationPolicy::Orphan), ..Default::default() };
            match api.delete(&live.name_any(), &orphan).await {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => return Err(e.into()),
            }
            info!(namespace = %pass.namespace(), name = %pass.name(), "released the hand-written Deployment for adoption; its pods keep running");
            pass.note(Note {
                warning: false,
                reason: "Adopting",
                action: "Adopt",
                message: format!(
                    "adopting Deployment {}: its pods keep running until this connector's pod is available",
                    live.name_any()
                ),
            });
            pass.outcome.recheck_in(STEP);
        }
    }
    // Someone else's object says nothing about this connector's workload.
    pass.seen.deployment = None;
    Ok(Applied::Adopting)
}

/// Once the operator's own pod is available, deletes the ReplicaSets the released Deployment left
/// running (their pods go with them) and closes the journal.
pub async fn finish(pass: &mut Pass<'_>) -> Result<()> {
    let Some(record) = pass.status().adoption else { return Ok(()) };
    if status::workload_state(pass.seen.deployment.as_ref()) != WorkloadState::Available {
        pass.outcome.recheck_in(STEP);
        return Ok(());
    }
    let api: Api<ReplicaSet> = Api::namespaced(pass.ctx.client.clone(), &pass.namespace());
    let selector: Vec<String> = record.selector.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let mut removed = Vec::new();
    if !selector.is_empty() {
        // Once per adoption: the ReplicaSets are not watched (nothing else needs them).
        let listed = api.list(&ListParams::default().labels(&selector.join(","))).await?;
        for rs in listed.items.iter().filter(|rs| adoption::left_behind(*rs, &record)) {
            match api.delete(&rs.name_any(), &DeleteParams::background()).await {
                Ok(_) => removed.push(rs.name_any()),
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    let mut status = pass.status();
    status.adoption = None;
    pass.write_status(status).await?;
    info!(namespace = %pass.namespace(), name = %pass.name(), replica_sets = ?removed, "adoption finished");
    pass.note(Note {
        warning: false,
        reason: "Adopted",
        action: "Adopt",
        message: match removed.is_empty() {
            true => "adopted the hand-written Deployment; nothing of it was left running".into(),
            false => format!(
                "adopted the hand-written Deployment; removed its ReplicaSet(s) {}",
                removed.join(", ")
            ),
        },
    });
    Ok(())
}
