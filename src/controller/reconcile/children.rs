//! Writes of the operator's children (the Deployment, the CronJob): one labelled apply when the
//! desired object differs from what was last applied or was edited by hand, never a takeover of an
//! object the resource does not own, and deletion of the other mode's workload.

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
    /// An object of that name exists and is not the resource's.
    Conflict,
    /// The API server refused the object; the message says why.
    Rejected(String),
}

/// Applies a child when [`compare::verdict`] says so.
pub async fn apply_child<K>(
    ctx: &Context,
    bc: &BatonConnector,
    live: Option<&K>,
    mut desired: K,
    kind: &'static str,
) -> Result<Applied<K>>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + std::fmt::Debug
        + serde::Serialize
        + serde::de::DeserializeOwned,
{
    let hash = compare::stamp(&mut desired);
    let cause = match compare::verdict(live, &desired, &hash, live.is_some_and(|l| owned_by(l, bc))) {
        Verdict::NotOurs => return Ok(Applied::Conflict),
        Verdict::Unchanged => return Ok(Applied::Unchanged),
        Verdict::Apply(cause) => cause,
    };
    let name = desired.name_any();
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &bc.namespace().unwrap_or_default());
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
pub fn record_apply<K>(pass: &mut Pass<'_>, applied: Applied<K>, kind: &'static str) -> Option<K> {
    let name = pass.name();
    match applied {
        Applied::Conflict => pass.outcome.block(Stage::Apply, Problem::OwnershipConflict { kind, name }),
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
