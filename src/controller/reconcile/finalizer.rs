//! The finalizer that revokes operator-minted credentials, and deletes the ConductorOne app and
//! connector the operator created, when a resource is deleted (`deletionPolicy: Revoke`). Resources that do not need it never get it, so deleting them is not
//! held up by the operator.

use kube::{
    Api, Resource, ResourceExt,
    api::{Patch, PatchParams},
    runtime::{controller::Action, reflector::ObjectRef},
};
use serde_json::json;
use tracing::{info, warn};

use super::publish::publish;
use crate::controller::{
    c1::{credential_calls, onboarding_steps},
    context::{Context, FIELD_MANAGER},
};
use crate::decide::{events::Note, outcome::CleanupError};
use crate::{
    Error, Result,
    api::{BatonConnector, DeletionPolicy},
};

pub const FINALIZER: &str = "baton.conductorone.com/revoke-credentials";
/// Failed revocations on deletion are retried this many times (with backoff) before the operator
/// lets the deletion finish and says which credentials stay valid.
const MAX_ATTEMPTS: u32 = 5;

/// Managed credentials, credentials left from when the resource was managed, or an app and connector
/// the operator creates (or created) in ConductorOne are to be cleaned up on deletion.
fn wanted(bc: &BatonConnector) -> bool {
    let creates = bc.spec.conductor_one.as_ref().is_some_and(crate::decide::onboarding::creates);
    (bc.spec.credentials.managed.is_some() || creates || has_work(bc))
        && bc.spec.deletion_policy == DeletionPolicy::Revoke
}

/// Something exists in ConductorOne that deletion has to remove.
fn has_work(bc: &BatonConnector) -> bool {
    let minted = bc
        .status
        .as_ref()
        .and_then(|s| s.credentials.as_ref())
        .is_some_and(|c| !crate::decide::rotation::minted(c).is_empty());
    minted || crate::decide::onboarding::owns_anything(bc)
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
    if wanted(bc) && has_work(bc) {
        let attempt = ctx.backoff.failures(&ObjectRef::from(bc)) + 1;
        let note = match clean_up(ctx, bc).await {
            // Every call slot of its tenant is taken (by a slow or refusing ConductorOne, say).
            Ok(None) => return Ok(Action::requeue(crate::decide::outcome::C1_BUSY_RETRY)),
            Ok(Some(deleted)) => Note {
                warning: false,
                reason: "CredentialRevoked",
                action: "Delete",
                message: match deleted.is_empty() {
                    true => "revoked the ConductorOne credentials the operator minted".into(),
                    false => format!(
                        "revoked the ConductorOne credentials the operator minted and deleted the {} it created",
                        deleted.join(" and ")
                    ),
                },
            },
            Err(reason) if attempt < MAX_ATTEMPTS && !reason.permanent => {
                warn!(namespace = ?bc.namespace(), name = %bc.name_any(), attempt, %reason, "cleaning up ConductorOne on deletion failed; retrying");
                return Err(Error::CleanupFailed);
            }
            Err(reason) => Note {
                warning: true,
                reason: "RevokeFailed",
                action: "Delete",
                message: format!(
                    "gave up cleaning up in ConductorOne after {attempt} attempt(s): {reason}; revoke the credentials and delete what the operator created there by hand"
                ),
            },
        };
        publish(ctx, bc, vec![note]).await;
    }
    patch(ctx, bc, remove_ops(index)).await?;
    info!(namespace = ?bc.namespace(), name = %bc.name_any(), "finalizer removed");
    Ok(Action::await_change())
}

/// Revokes every minted credential, then deletes what onboarding created; returns what it deleted,
/// `None` when its tenant has no call slot free, or says what it could not do and why (no secrets
/// in it).
async fn clean_up(
    ctx: &Context,
    bc: &BatonConnector,
) -> std::result::Result<Option<Vec<String>>, CleanupError> {
    let ns = bc.namespace().unwrap_or_default();
    let c1 = bc
        .spec
        .conductor_one
        .as_ref()
        .ok_or_else(|| CleanupError::permanent("no conductorOne access configured".into()))?;
    // The older form's Secret, if any; a tenant's is read where the tenant says.
    let own: Vec<String> = c1.api_credentials_secret_ref.iter().map(|r| r.name.clone()).collect();
    let secrets = ctx
        .caches
        .secrets(&ctx.client, &ns, &own)
        .await
        .map_err(|e| CleanupError::retryable(format!("reading Secret {own:?}: {e}")))?;
    let principal = super::principal::observe(ctx, &ns, c1, &secrets)
        .await
        .map_err(|e| CleanupError::retryable(format!("reading the ConductorOne principal: {e}")))?;
    // A tenant applied again, or its Secret restored, lets the revocation go on.
    let (source, creds) = principal.map_err(|p| match p.may_resolve_itself() {
        true => CleanupError::retryable(p.to_string()),
        false => CleanupError::permanent(p.to_string()),
    })?;
    // The tenant's own client (its rate limiter and token cache) and slots, so that deletions of a
    // tenant whose ConductorOne is slow or refuses everything hold up no other tenant's calls.
    let pool = ctx.pools.for_source(&source);
    let Ok(_slot) = pool.slots.try_acquire() else { return Ok(None) };
    let conductorone = &pool.client;
    let failed = credential_calls::revoke_all(conductorone, bc, &creds).await;
    if let Some((_, e)) = failed.first() {
        let ids: Vec<&str> = failed.iter().map(|(id, _)| id.as_str()).collect();
        return Err(CleanupError::from_conductorone(format!("credentials {ids:?}: {e}"), e));
    }
    // The connector goes only once no credential of it is left valid.
    onboarding_steps::delete_created(conductorone, bc, &creds).await.map(Some)
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
    let params = PatchParams { field_manager: Some(FIELD_MANAGER.into()), ..Default::default() };
    Ok(api.patch(&bc.name_any(), &params, &Patch::Json::<()>(patch)).await?)
}
