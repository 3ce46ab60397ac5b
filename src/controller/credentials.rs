//! Managed credentials outside the rotation's steps (those are in `rotation_steps`): the service
//! principal a resource uses, the rotation settings, the Secret revision of an issued credential (the
//! client secret goes from ConductorOne's reply straight into it and nowhere else), and revocation
//! of leftovers and on deletion.

use std::{collections::BTreeMap, time::Duration};

use k8s_openapi::{
    ByteString,
    api::{apps::v1::Deployment, core::v1::Secret},
    jiff::Timestamp,
};
use kube::{
    Api, ResourceExt,
    api::{DeleteParams, ObjectMeta},
};
use tracing::info;

use super::{
    Context,
    events::Note,
    reconcile::{Pass, Stage},
    status::Problem,
};
use crate::{
    Result,
    api::{BatonConnector, ConductorOneSpec, CredentialsStatus, ManagedCredentials},
    conductorone::{ApiCredentials, ErrorKind, ExposeSecret, IssuedCredential},
    resources::{InputProblem, SecretData, inputs, labels},
    rotation,
};

// The identity of a revision is shared with `render`, which shows the Secret this module creates.
use crate::resources::credentials::{
    CREDENTIAL_ID_ANNOTATION, EXPIRES_AT_ANNOTATION, ISSUED_AT_ANNOTATION, REVISION_LABEL, secret_metadata,
};

/// The ConductorOne service principal the operator uses for this resource, from its Secret.
pub fn api_credentials(
    bc: &BatonConnector,
    c1: &ConductorOneSpec,
    secrets: &SecretData,
) -> std::result::Result<ApiCredentials, InputProblem> {
    api_credentials_in(&bc.namespace().unwrap_or_default(), &c1.api_credentials_secret_ref.name, secrets)
}

/// The service principal in the named Secret of a namespace.
pub fn api_credentials_in(
    namespace: &str,
    name: &str,
    secrets: &SecretData,
) -> std::result::Result<ApiCredentials, InputProblem> {
    let data = secrets.get(name).ok_or_else(|| InputProblem::SecretNotFound {
        namespace: namespace.to_string(),
        name: name.to_string(),
    })?;
    let value = |key: &'static str| -> std::result::Result<String, InputProblem> {
        let raw = data.get(key).ok_or_else(|| InputProblem::KeyMissing { name: name.to_string(), key })?;
        let text = String::from_utf8_lossy(&raw.0).trim().to_string();
        if text.is_empty() {
            return Err(InputProblem::KeyEmpty { name: name.to_string(), key });
        }
        Ok(text)
    };
    Ok(ApiCredentials::new(value("clientId")?, value("clientSecret")?))
}

/// Seeds the rotation jitter: stable for one resource, different across a fleet. Status shows the
/// next rotation from the same seed the driver decides with.
pub fn jitter_seed(bc: &BatonConnector) -> String {
    format!("{}/{}/{}", bc.namespace().unwrap_or_default(), bc.name_any(), bc.uid().unwrap_or_default())
}

/// Parsed rotation settings. The CRD's pattern only admits Go-style durations.
pub fn rotation_settings(managed: &ManagedCredentials) -> std::result::Result<(Duration, Duration), Problem> {
    let parse = |field: &str, v: &str| {
        humantime::parse_duration(v).map_err(|e| Problem::Rejected { message: format!("{field} {v:?}: {e}") })
    };
    let interval = parse("credentials.managed.rotation.interval", &managed.rotation.interval)?;
    let grace = parse("credentials.managed.rotation.gracePeriod", &managed.rotation.grace_period)?;
    if interval < Duration::from_secs(60) {
        return Err(Problem::Rejected {
            message: "credentials.managed.rotation.interval must be at least 1m".into(),
        });
    }
    Ok((interval, grace))
}

/// How long a credential nobody knows of may stay valid, from what the operator knows of this
/// connector's credential lifetime.
pub(super) fn expiry_horizon(state: &CredentialsStatus, since: Timestamp) -> String {
    match (&state.issued_at, &state.expires_at) {
        (Some(issued), Some(expires)) => {
            let lifetime = expires.0.duration_since(issued.0);
            match since.checked_add(lifetime) {
                Ok(at) => format!("it expires by {at} at the latest, unless revoked in ConductorOne"),
                Err(_) => "its expiry is unknown; revoke unused credentials in ConductorOne".into(),
            }
        }
        _ => "ConductorOne did not report an expiry for this connector's credentials; revoke unused ones in ConductorOne".into(),
    }
}

pub(super) fn c1_problem(e: &crate::conductorone::Error) -> Problem {
    Problem::conductorone(e.to_string(), e)
}

/// The Secret revision holding one issued credential: the two keys the connector reads, and the
/// credential's id in an annotation so a crash right after this write loses nothing.
pub(super) fn credential_secret(
    bc: &BatonConnector,
    revision: i64,
    issued: &IssuedCredential,
    issued_at: Option<Timestamp>,
) -> Secret {
    let mut annotations = BTreeMap::from([(CREDENTIAL_ID_ANNOTATION.to_string(), issued.id.clone())]);
    if let Some(at) = issued_at {
        annotations.insert(ISSUED_AT_ANNOTATION.into(), at.to_string());
    }
    if let Some(at) = issued.expires_at {
        annotations.insert(EXPIRES_AT_ANNOTATION.into(), at.to_string());
    }
    Secret {
        metadata: ObjectMeta { annotations: Some(annotations), ..secret_metadata(bc, revision) },
        type_: Some("Opaque".into()),
        data: Some(BTreeMap::from([
            (inputs::CLIENT_ID_KEY.to_string(), ByteString(issued.client_id.clone().into_bytes())),
            (
                inputs::CLIENT_SECRET_KEY.to_string(),
                ByteString(issued.client_secret.expose_secret().as_bytes().to_vec()),
            ),
        ])),
        ..Default::default()
    }
}

/// Whether a Deployment's connector reads its ConductorOne credentials from the named Secret.
pub fn reads_credentials_from(d: &Deployment, secret: &str) -> bool {
    d.spec.template.spec.as_ref().is_some_and(|p| {
        p.containers.iter().flat_map(|c| c.env.iter().flatten()).any(|e| {
            e.name == inputs::CLIENT_SECRET_KEY
                && e.value_from
                    .as_ref()
                    .and_then(|v| v.secret_key_ref.as_ref())
                    .is_some_and(|r| r.name == secret)
        })
    })
}

/// Deletion with `deletionPolicy: Revoke`: revoke every credential the operator minted. Returns the
/// ids it could not revoke.
pub async fn revoke_all(
    ctx: &Context,
    bc: &BatonConnector,
    api: &ApiCredentials,
) -> Vec<(String, crate::conductorone::Error)> {
    let Some(ids) = crate::onboarding::ids(bc) else { return Vec::new() };
    let state = bc.status.as_ref().and_then(|s| s.credentials.clone()).unwrap_or_default();
    let current = crate::api::ConnectorRef { app_id: ids.app, connector_id: ids.connector };
    let mut failed = Vec::new();
    for (connector, id) in rotation::minted_by_connector(&state, &current) {
        match ctx.conductorone.revoke_credential(api, &connector.app_id, &connector.connector_id, &id).await {
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
pub(super) async fn revoke_leftovers(pass: &mut Pass<'_>) -> Result<()> {
    let bc = &pass.bc;
    let state = pass.credentials();
    let leftovers = rotation::minted(&state);
    if bc.spec.credentials.managed.is_some() || pass.outcome.workload_blocked() || leftovers.is_empty() {
        return Ok(());
    }
    let Ok(_slot) = pass.ctx.c1_slots.try_acquire() else {
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
        (crate::api::Mode::Service, Some(user_secret)) => live.is_some_and(|d| {
            super::status::workload_state(Some(d)) == super::status::WorkloadState::Available
                && reads_credentials_from(d, &user_secret.name)
        }),
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

/// Revokes every credential in the record, or says why it could not.
async fn revoke_minted(
    pass: &Pass<'_>,
    state: &CredentialsStatus,
    leftovers: &[String],
) -> std::result::Result<Vec<String>, Problem> {
    let bc = &pass.bc;
    let Some(c1) = bc.spec.conductor_one.as_ref() else {
        let message = format!(
            "credentials {leftovers:?} minted while this resource was managed stay valid: without conductorOne the operator cannot revoke them"
        );
        return Err(Problem::Rejected { message });
    };
    let Some(ids) = crate::onboarding::ids(bc) else {
        let message = format!(
            "credentials {leftovers:?} minted while this resource was managed stay valid until the connector's ConductorOne ids are known again"
        );
        return Err(Problem::Rejected { message });
    };
    let api = api_credentials(bc, c1, &pass.seen.secrets).map_err(Problem::Input)?;
    let mut revoked = Vec::new();
    let current = crate::api::ConnectorRef { app_id: ids.app, connector_id: ids.connector };
    for (connector, id) in rotation::minted_by_connector(state, &current) {
        let conductorone = &pass.ctx.conductorone;
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
