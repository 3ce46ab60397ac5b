//! The finalizer that revokes operator-minted credentials when a resource is deleted
//! (`deletionPolicy: Revoke`). Resources that do not need it never get it, so deleting them is not
//! held up by the operator.

use kube::{
    Api, Resource, ResourceExt,
    api::{Patch, PatchParams},
    runtime::{controller::Action, reflector::ObjectRef},
};
use serde_json::json;
use tracing::{info, warn};

use super::{Context, credentials, events::Note, reconcile::publish};
use crate::{
    Error, Result,
    api::{BatonConnector, DeletionPolicy},
};

pub const FINALIZER: &str = "baton.conductorone.com/revoke-credentials";
/// Failed revocations on deletion are retried this many times (with backoff) before the operator
/// lets the deletion finish and says which credentials stay valid.
const MAX_ATTEMPTS: u32 = 5;

/// Managed credentials, or credentials left from when the resource was managed, are to be revoked.
fn wanted(bc: &BatonConnector) -> bool {
    let leftovers = bc
        .status
        .as_ref()
        .and_then(|s| s.credentials.as_ref())
        .is_some_and(|c| !crate::rotation::minted(c).is_empty());
    (bc.spec.credentials.managed.is_some() || leftovers) && bc.spec.deletion_policy == DeletionPolicy::Revoke
}

fn present(bc: &BatonConnector) -> Option<usize> {
    bc.finalizers().iter().position(|f| f == FINALIZER)
}

/// Adds the finalizer when the resource needs it and removes it when it no longer does.
pub async fn ensure(ctx: &Context, bc: &mut BatonConnector) -> Result<()> {
    let ops = match (wanted(bc), present(bc)) {
        (true, None) if bc.meta().finalizers.is_none() => {
            json!([{"op": "add", "path": "/metadata/finalizers", "value": [FINALIZER]}])
        }
        (true, None) => json!([
            {"op": "test", "path": "/metadata/resourceVersion", "value": bc.resource_version()},
            {"op": "add", "path": "/metadata/finalizers/-", "value": FINALIZER},
        ]),
        (false, Some(i)) => remove_ops(i),
        _ => return Ok(()),
    };
    *bc = patch(ctx, bc, ops).await?;
    Ok(())
}

/// Runs on a resource being deleted: revokes what the operator minted, then lets it go.
pub async fn cleanup(ctx: &Context, bc: &BatonConnector) -> Result<Action> {
    let Some(index) = present(bc) else { return Ok(Action::await_change()) };
    if wanted(bc) {
        let Ok(_slot) = ctx.c1_slots.try_acquire() else {
            return Ok(Action::requeue(super::C1_BUSY_RETRY));
        };
        let attempt = ctx.backoff.failures(&ObjectRef::from(bc)) + 1;
        let note = match revoke(ctx, bc).await {
            Ok(()) => Note {
                warning: false,
                reason: "CredentialRevoked",
                action: "Delete",
                message: "revoked the ConductorOne credentials the operator minted".into(),
            },
            Err(reason) if attempt < MAX_ATTEMPTS && !reason.contains("(permanent)") => {
                warn!(namespace = ?bc.namespace(), name = %bc.name_any(), attempt, %reason, "revoking credentials on deletion failed; retrying");
                return Err(Error::Blocked("RevokeFailed"));
            }
            Err(reason) => Note {
                warning: true,
                reason: "RevokeFailed",
                action: "Delete",
                message: format!(
                    "gave up revoking ConductorOne credentials after {attempt} attempt(s): {reason}; revoke them in ConductorOne"
                ),
            },
        };
        publish(ctx, bc, vec![note]).await;
    }
    patch(ctx, bc, remove_ops(index)).await?;
    info!(namespace = ?bc.namespace(), name = %bc.name_any(), "finalizer removed");
    Ok(Action::await_change())
}

/// Revokes every minted credential; on failure says which ones and why (no secrets in it).
async fn revoke(ctx: &Context, bc: &BatonConnector) -> std::result::Result<(), String> {
    let ns = bc.namespace().unwrap_or_default();
    let c1 = bc.spec.conductor_one.as_ref().ok_or("no conductorOne access configured (permanent)")?;
    let name = &c1.api_credentials_secret_ref.name;
    let secrets = ctx
        .caches
        .secrets(&ctx.client, &ns, std::slice::from_ref(name))
        .await
        .map_err(|e| format!("reading Secret {name:?}: {e}"))?;
    let creds = credentials::api_credentials(bc, c1, &secrets).map_err(|p| format!("{p} (permanent)"))?;
    let failed = credentials::revoke_all(ctx, bc, &creds).await;
    match failed.first() {
        None => Ok(()),
        Some((_, e)) => {
            let ids: Vec<&str> = failed.iter().map(|(id, _)| id.as_str()).collect();
            let permanent = if e.is_permanent() { " (permanent)" } else { "" };
            Err(format!("credentials {ids:?}: {e}{permanent}"))
        }
    }
}

fn remove_ops(index: usize) -> serde_json::Value {
    json!([
        {"op": "test", "path": format!("/metadata/finalizers/{index}"), "value": FINALIZER},
        {"op": "remove", "path": format!("/metadata/finalizers/{index}")},
    ])
}

async fn patch(ctx: &Context, bc: &BatonConnector, ops: serde_json::Value) -> Result<BatonConnector> {
    let patch: json_patch::Patch = serde_json::from_value(ops).expect("valid JSON patch");
    let api: Api<BatonConnector> = Api::namespaced(ctx.client.clone(), &bc.namespace().unwrap_or_default());
    Ok(api.patch(&bc.name_any(), &PatchParams::default(), &Patch::Json::<()>(patch)).await?)
}
