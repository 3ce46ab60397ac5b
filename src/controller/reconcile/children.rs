//! Writes of the operator's children (the Deployment, the CronJob): one labelled apply when the
//! desired object differs from what was last applied or was edited by hand, never a takeover of an
//! object the resource does not own (unless the resource asks to adopt it), and deletion of the other
//! mode's workload.

use kube::{
    Api, Resource, ResourceExt,
    api::{Patch, PatchParams},
};
use tracing::{info, warn};

use super::pass::Pass;
use crate::{
    Result,
    api::BatonConnector,
    controller::context::{Context, FIELD_MANAGER},
    decide::{events, outcome::Stage, status::Problem},
    metrics::ApplyLabels,
    resources::compare::{self, ApplyCause, Verdict},
};

pub enum Applied<K> {
    Unchanged,
    Written(ApplyCause, Box<K>),
    /// An object of that name exists and is not the resource's: here it is.
    Conflict(Box<K>),
    /// A hand-written Deployment is being released for adoption: nothing applied in this pass.
    Adopting,
    /// The API server refused the object; the message says why.
    Rejected(String),
}

/// Applies a child when [`compare::verdict`] says so. `take_over`: the resource adopts the live
/// object it does not control (a CronJob, in place).
pub async fn apply_child<K>(
    ctx: &Context,
    bc: &BatonConnector,
    live: Option<&K>,
    mut desired: K,
    kind: &'static str,
    take_over: bool,
) -> Result<Applied<K>>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + std::fmt::Debug
        + serde::Serialize
        + serde::de::DeserializeOwned,
{
    let hash = compare::stamp(&mut desired);
    let ours = live.is_some_and(|l| owned_by(l, bc));
    let cause = match compare::verdict(live, &desired, &hash, ours || take_over) {
        Verdict::NotOurs => {
            return Ok(Applied::Conflict(Box::new(live.cloned().expect("NotOurs has a live object"))));
        }
        Verdict::Unchanged => return Ok(Applied::Unchanged),
        Verdict::Apply(_) if take_over && !ours => ApplyCause::Adopt,
        Verdict::Apply(cause) => cause,
    };
    let name = desired.name_any();
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &bc.namespace().unwrap_or_default());
    // The watches see only objects with the operator's labels: an object of this name without them
    // (a hand-written install) is not in the cache. A forced apply would silently merge into it, so
    // before a create the API server is asked; this GET is made once per new child.
    if cause == ApplyCause::Create
        && let Some(existing) = api.get_opt(&name).await?
        && !owned_by(&existing, bc)
        && !take_over
    {
        return Ok(Applied::Conflict(Box::new(existing)));
    }
    match api.patch(&name, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&desired)).await {
        Ok(d) => {
            ctx.metrics.applies.get_or_create(&ApplyLabels { kind, cause: cause.as_str() }).inc();
            info!(namespace = ?desired.meta().namespace, name = %name, kind, cause = cause.as_str(), "applied");
            Ok(Applied::Written(cause, Box::new(d)))
        }
        Err(kube::Error::Api(s)) if s.code == 422 => {
            warn!(name = %name, kind, reason = %s.reason, "rejected by the API server");
            Ok(Applied::Rejected(s.message))
        }
        Err(e) => Err(e.into()),
    }
}

/// Records what an apply came to in the pass: a problem of the apply stage, or the workload on the
/// current template (with the event of a write). Returns the object the API server holds after a write.
pub fn record_apply<K: Resource>(pass: &mut Pass<'_>, applied: Applied<K>, kind: &'static str) -> Option<K> {
    let name = pass.name();
    match applied {
        Applied::Conflict(live) => {
            let owner = crate::decide::adoption::controller_of(&*live);
            pass.outcome.block(Stage::Apply, Problem::OwnershipConflict { kind, name, owner })
        }
        Applied::Adopting => {}
        Applied::Rejected(message) => pass.outcome.block(Stage::Apply, Problem::Rejected { message }),
        Applied::Unchanged => pass.outcome.applied_current = true,
        Applied::Written(cause, written) => {
            pass.outcome.applied_current = true;
            pass.note(events::applied(kind, cause, &name));
            return Some(*written);
        }
    }
    None
}

pub fn owned_by<K: Resource>(child: &K, bc: &BatonConnector) -> bool {
    let uid = bc.uid();
    child.owner_references().iter().any(|o| o.controller == Some(true) && Some(&o.uid) == uid.as_ref())
}

/// Deletes a child of the other mode once the new workload exists. Gone already is fine.
pub async fn delete_child<K>(ctx: &Context, bc: &BatonConnector, name: &str) -> Result<()>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned,
{
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &bc.namespace().unwrap_or_default());
    let background = kube::api::DeleteParams::background();
    match api.delete(name, &background).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}
