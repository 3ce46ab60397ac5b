//! Managed credentials outside the rotation's steps (those are in `rotation_steps`): the service
//! principal a resource uses, the rotation settings, the Secret revision of an issued credential (the
//! client secret goes from ConductorOne's reply straight into it and nowhere else), and revocation
//! of leftovers and on deletion.

use k8s_openapi::api::core::v1::Secret;
use kube::{Api, ResourceExt, api::DeleteParams};
use tracing::info;

use crate::controller::reconcile::pass::Pass;
use crate::{
    Result,
    api::{BatonConnector, CredentialsStatus},
    conductorone::{ApiCredentials, ConductorOneClient, ErrorKind},
    decide::{
        credentials::{c1_problem, reads_credentials_from},
        events::Note,
        outcome::Stage,
        rotation,
        status::Problem,
    },
    resources::labels,
};

// The identity of a revision is shared with `render`, which shows the Secret this module creates.
use crate::resources::credentials::REVISION_LABEL;

/// Deletion with `deletionPolicy: Revoke`: revoke every credential the operator minted. Returns the
/// ids it could not revoke.
pub async fn revoke_all(
    conductorone: &ConductorOneClient,
    bc: &BatonConnector,
    api: &ApiCredentials,
) -> Vec<(String, crate::conductorone::Error)> {
    let Some(ids) = crate::decide::onboarding::ids(bc) else { return Vec::new() };
    let state = bc.status.as_ref().and_then(|s| s.credentials.clone()).unwrap_or_default();
    let current = crate::api::ConnectorRef { app_id: ids.app, connector_id: ids.connector };
    let mut failed = Vec::new();
    for (connector, id) in rotation::minted_by_connector(&state, &current) {
        match conductorone.revoke_credential(api, &connector.app_id, &connector.connector_id, &id).await {
            Ok(()) => info!(credential_id = %id, "revoked credential on deletion"),
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => failed.push((id, e)),
        }
    }
    failed
}

/// After a resource moves from managed credentials to a Secret of the user's, the credentials the
/// operator minted are unused: once the workload runs on the user's Secret, revoke them, delete their
/// Secret revisions and drop them from the record. Skipped while the workload is blocked, and tried
/// again shortly when every ConductorOne slot is taken.
pub(crate) async fn revoke_leftovers(pass: &mut Pass<'_>) -> Result<()> {
    let bc = &pass.bc;
    let state = pass.credentials();
    let leftovers = rotation::minted(&state);
    if bc.spec.credentials.managed.is_some() || pass.outcome.workload_blocked() || leftovers.is_empty() {
        return Ok(());
    }
    let pool = pass.seen.pool(pass.ctx);
    let Ok(_slot) = pool.slots.try_acquire() else {
        pass.outcome.busy();
        return Ok(());
    };
    if bc.spec.deletion_policy != crate::api::DeletionPolicy::Revoke {
        return Ok(());
    }
    // The running pod may still use a minted credential until the new one is up: on the user's
    // Secret (Service mode), or gone (OneShot mode, whose runs use none).
    let live = pass.seen.deployment.as_ref();
    let unused = match (bc.spec.mode, bc.spec.credentials.secret_ref.as_ref()) {
        (crate::api::Mode::OneShot, _) => live.is_none(),
        (crate::api::Mode::Service, Some(user_secret)) => runs_available_on(live, &user_secret.name),
        (crate::api::Mode::Service, None) => false,
    };
    if !unused {
        return Ok(());
    }
    match revoke_minted(pass, &state, &leftovers).await {
        Ok(revoked) => {
            delete_revisions(pass).await?;
            // Everything in the record is revoked: what remains is the user's Secret.
            let remaining = CredentialsStatus {
                secret_name: pass.bc.spec.credentials.secret_ref.as_ref().map(|r| r.name.clone()),
                ..Default::default()
            };
            pass.record_credentials(&remaining, None).await?;
            pass.note(Note {
                warning: false,
                reason: "CredentialRevoked",
                action: "RotateCredentials",
                message: format!(
                    "revoked credentials {revoked:?}, minted while this resource used managed credentials"
                ),
            });
            pass.outcome.revoked = revoked;
        }
        Err(problem) => pass.outcome.block(Stage::Leftovers, problem),
    }
    Ok(())
}

/// Whether the Deployment is available on its current template and its pods read their client
/// credential from `secret`: then no pod uses any other credential.
fn runs_available_on(live: Option<&k8s_openapi::api::apps::v1::Deployment>, secret: &str) -> bool {
    live.is_some_and(|d| {
        crate::decide::status::workload_state(Some(d)) == crate::decide::status::WorkloadState::Available
            && reads_credentials_from(d, secret)
    })
}

/// Revokes every credential in the record, or says why it could not.
async fn revoke_minted(
    pass: &Pass<'_>,
    state: &CredentialsStatus,
    leftovers: &[String],
) -> std::result::Result<Vec<String>, Problem> {
    let bc = &pass.bc;
    if bc.spec.conductor_one.is_none() {
        let message = format!(
            "credentials {leftovers:?} minted while this resource was managed stay valid: without conductorOne the operator cannot revoke them"
        );
        return Err(Problem::Rejected { message });
    }
    let Some(ids) = crate::decide::onboarding::ids(bc) else {
        let message = format!(
            "credentials {leftovers:?} minted while this resource was managed stay valid until the connector's ConductorOne ids are known again"
        );
        return Err(Problem::Rejected { message });
    };
    let api = pass.seen.api_credentials().map_err(Problem::Input)?;
    let mut revoked = Vec::new();
    let current = crate::api::ConnectorRef { app_id: ids.app, connector_id: ids.connector };
    for (connector, id) in rotation::minted_by_connector(state, &current) {
        let conductorone = &pass.seen.pool(pass.ctx).client;
        match conductorone.revoke_credential(&api, &connector.app_id, &connector.connector_id, &id).await {
            Ok(()) => revoked.push(id),
            Err(e) if e.kind() == ErrorKind::NotFound => revoked.push(id),
            Err(e) => return Err(c1_problem(&e)),
        }
    }
    Ok(revoked)
}

/// Deletes every credential revision of the resource.
async fn delete_revisions(pass: &Pass<'_>) -> Result<()> {
    let api: Api<Secret> = Api::namespaced(pass.ctx.client.clone(), &pass.namespace());
    let selector =
        format!("{},{}={},{REVISION_LABEL}", labels::managed_selector(), labels::INSTANCE_LABEL, pass.name());
    for secret in api.list_metadata(&kube::api::ListParams::default().labels(&selector)).await?.items {
        match api.delete(&secret.name_any(), &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// `credentials.managed.revokeHandMade`: once the connector runs on a credential the operator
/// minted and no pod of an adopted Deployment is left (so nothing uses the hand-made ones any more),
/// revoke each named credential once, and journal it. Never one the operator minted.
pub(crate) async fn revoke_hand_made(pass: &mut Pass<'_>) -> Result<()> {
    let Some(managed) = pass.bc.spec.credentials.managed.as_ref() else { return Ok(()) };
    let state = pass.credentials();
    let minted = rotation::minted(&state);
    let todo: Vec<String> = managed
        .revoke_hand_made
        .iter()
        .filter(|id| !state.revoked_hand_made.contains(id) && !minted.contains(id))
        .cloned()
        .collect();
    if todo.is_empty() || pass.outcome.workload_blocked() || pass.status().adoption.is_some() {
        return Ok(());
    }
    let Some(secret) = rotation::workload_secret(&state, &pass.name()) else { return Ok(()) };
    if state.credential_id.is_none() || !runs_available_on(pass.seen.deployment.as_ref(), &secret) {
        return Ok(());
    }
    let (Some(_), Some(ids)) =
        (pass.bc.spec.conductor_one.as_ref(), crate::decide::onboarding::ids(&pass.bc))
    else {
        return Ok(());
    };
    let pool = pass.seen.pool(pass.ctx);
    let Ok(_slot) = pool.slots.try_acquire() else {
        pass.outcome.busy();
        return Ok(());
    };
    let api = match pass.seen.api_credentials() {
        Ok(api) => api,
        Err(p) => {
            pass.outcome.block(Stage::Leftovers, Problem::Input(p));
            return Ok(());
        }
    };
    let mut revoked = Vec::new();
    let mut failure = None;
    for id in &todo {
        match pool.client.revoke_credential(&api, &ids.app, &ids.connector, id).await {
            Ok(()) => revoked.push(id.clone()),
            // Revoked or deleted already: nothing uses it.
            Err(e) if e.kind() == ErrorKind::NotFound => revoked.push(id.clone()),
            Err(e) => {
                failure = Some(c1_problem(&e));
                break;
            }
        }
    }
    if !revoked.is_empty() {
        let mut next = state.clone();
        next.revoked_hand_made.extend(revoked.iter().cloned());
        pass.record_credentials(&next, None).await?;
        info!(credentials = ?revoked, "revoked hand-made credentials");
        pass.note(Note {
            warning: false,
            reason: "CredentialRevoked",
            action: "RotateCredentials",
            message: format!(
                "revoked hand-made credentials {revoked:?}: the connector runs on one the operator minted"
            ),
        });
    }
    if let Some(problem) = failure {
        pass.outcome.block(Stage::Leftovers, problem);
    }
    Ok(())
}
