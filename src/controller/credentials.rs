//! Managed credentials: performs the steps `rotation::decide` names, recording the state that lets
//! a step resume before its side effect. The client secret goes from ConductorOne's reply straight
//! into the Secret revision and nowhere else.

use std::{collections::BTreeMap, time::Duration};

use k8s_openapi::{
    ByteString,
    api::{apps::v1::Deployment, core::v1::Secret},
    jiff::Timestamp,
};
use kube::{
    Api, ResourceExt,
    api::{DeleteParams, ObjectMeta, Patch, PatchParams, PostParams},
};
use serde_json::json;
use tracing::{info, warn};

use super::{Context, events::Note, status::Problem};
use crate::{
    Error, Result,
    api::{BatonConnector, ConductorOneSpec, CredentialsStatus, ManagedCredentials},
    conductorone::{ApiCredentials, ErrorKind, ExposeSecret, IssuedCredential},
    onboarding::Ids,
    resources::{InputProblem, SecretData, inputs, labels},
    rotation::{self, Step, StoredCredential},
};

// The identity of a revision is shared with `render`, which shows the Secret this module creates.
use crate::resources::credentials::{
    CREDENTIAL_ID_ANNOTATION, ISSUED_AT_ANNOTATION, REVISION_LABEL, secret_metadata,
};
pub const EXPIRES_AT_ANNOTATION: &str = "baton.conductorone.com/expires-at";
/// Writes of the credential state use their own field manager; they patch `status.credentials` only.
const STATE_MANAGER: &str = "baton-operator/credentials";
/// A bound on steps per reconcile, so that a bug can never turn into a hot loop against ConductorOne.
const MAX_STEPS: usize = 12;

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

/// What driving the rotation came to.
pub enum Outcome {
    /// Nothing more to do now; look again after the given delay (or on the next event).
    Wait(Option<Duration>),
    /// Blocked; the problem goes into the conditions.
    Blocked(Problem),
}

pub struct Driver<'a> {
    pub ctx: &'a Context,
    /// The connector whose credentials these are.
    pub ids: &'a Ids,
    pub api: &'a ApiCredentials,
    pub interval: Duration,
    pub grace: Duration,
    pub notes: &'a mut Vec<Note>,
}

impl Driver<'_> {
    /// Performs steps until one has to wait. `bc` is kept equal to what the API server holds.
    pub async fn drive(&mut self, bc: &mut BatonConnector, live: Option<&Deployment>) -> Result<Outcome> {
        let ns = bc.namespace().ok_or(Error::NotNamespaced)?;
        let base = bc.name_any();
        let ids = self.ids.clone();
        let connector =
            crate::api::ConnectorRef { app_id: ids.app.clone(), connector_id: ids.connector.clone() };
        let secrets: Api<Secret> = Api::namespaced(self.ctx.client.clone(), &ns);
        for _ in 0..MAX_STEPS {
            let state = bc.status.as_ref().and_then(|s| s.credentials.clone()).unwrap_or_default();
            // Only issuing (adopt after a crash) and rolling (promote) look at the new revision.
            let stored = match &state.rotation {
                Some(r)
                    if matches!(
                        r.phase,
                        crate::api::RotationPhase::Issuing | crate::api::RotationPhase::Rolling
                    ) =>
                {
                    read_stored(&secrets, &rotation::secret_name(&base, r.revision)).await?
                }
                _ => None,
            };
            let expected = rotation::workload_secret(&state, &base);
            let rolled_out = live.is_some_and(|d| {
                super::status::workload_state(Some(d)) == super::status::WorkloadState::Available
                    && expected.as_deref().is_some_and(|e| reads_credentials_from(d, e))
            });
            let handled = bc.status.as_ref().and_then(|s| s.handled_requests.rotate.clone());
            let request = bc.annotations().get(crate::api::ROTATE_REQUESTED_AT).cloned();
            let now = Timestamp::now();
            let seed = jitter_seed(bc);
            let step = rotation::decide(&rotation::Input {
                state: &state,
                interval: self.interval,
                grace: self.grace,
                rotate_request: request.as_deref(),
                handled_rotate: handled.as_deref(),
                now,
                stored: stored.clone(),
                rolled_out,
                jitter_seed: &seed,
                connector: &connector,
            });
            // A step that calls ConductorOne needs one of the few slots for that; without one it
            // comes back shortly rather than hold a worker the rest of the fleet needs.
            let _slot = match step {
                Step::Issue
                | Step::RevokePrevious(_)
                | Step::RevokePending(_)
                | Step::RevokeSuperseded(_) => match self.ctx.c1_slots.try_acquire() {
                    Ok(permit) => Some(permit),
                    Err(_) => return Ok(Outcome::Wait(Some(super::C1_BUSY_RETRY))),
                },
                _ => None,
            };
            match step {
                Step::Start(trigger) => {
                    let next = rotation::start(&state, trigger, &connector, now);
                    let handled = request.clone().or(handled);
                    self.persist(bc, &next, handled.as_deref()).await?;
                    info!(namespace = %ns, name = %base, trigger = trigger.as_str(), "credential rotation started");
                    if trigger != rotation::Trigger::Initial {
                        self.note(
                            false,
                            "RotationStarted",
                            format!("rotating ConductorOne credentials ({})", trigger.as_str()),
                        );
                    }
                }
                Step::Issue => {
                    self.persist(bc, &rotation::mark_in_flight(&state, now), None).await?;
                    let revision = state.rotation.as_ref().map(|r| r.revision).unwrap_or(1);
                    let issued = match self
                        .ctx
                        .conductorone
                        .rotate_credential(self.api, &ids.app, &ids.connector)
                        .await
                    {
                        Ok(issued) => issued,
                        Err(e) => {
                            // Only a failure that proves nothing was minted clears the mark; otherwise
                            // the next attempt reports the possible stray credential first.
                            if matches!(
                                e.kind(),
                                ErrorKind::RateLimited
                                    | ErrorKind::Unauthorized
                                    | ErrorKind::Forbidden
                                    | ErrorKind::InvalidCredentials
                                    | ErrorKind::InvalidRequest
                                    | ErrorKind::NotFound
                                    | ErrorKind::Config
                            ) {
                                self.persist(bc, &rotation::clear_in_flight(&state), None).await?;
                            }
                            return Ok(Outcome::Blocked(c1_problem(&e)));
                        }
                    };
                    let stored = StoredCredential {
                        credential_id: issued.id.clone(),
                        client_id: issued.client_id.clone(),
                        issued_at: issued.created_at.or(Some(now)),
                        expires_at: issued.expires_at,
                    };
                    // The one write that persists the whole reply, id included.
                    let secret = credential_secret(bc, revision, &issued, stored.issued_at);
                    if let Err(e) = secrets.create(&PostParams::default(), &secret).await {
                        warn!(namespace = %ns, name = %base, credential_id = %issued.id, error = %e, "could not store a new credential; revoking it");
                        self.revoke_unusable(bc, &issued.id).await?;
                        return Err(e.into());
                    }
                    self.persist(bc, &rotation::record_stored(&state, &stored), None).await?;
                    self.note(
                        false,
                        "CredentialIssued",
                        format!("ConductorOne issued credential {} ({})", issued.id, issued.client_id),
                    );
                }
                Step::Adopt(stored) => {
                    self.persist(bc, &rotation::record_stored(&state, &stored), None).await?;
                    self.note(
                        false,
                        "CredentialRecovered",
                        format!("resumed the rotation with stored credential {}", stored.credential_id),
                    );
                }
                Step::ReportUnrecorded { since } => {
                    let horizon = expiry_horizon(&state, since);
                    self.persist(bc, &rotation::record_unrecorded(&state), None).await?;
                    self.note(
                        true,
                        "CredentialPossiblyOrphaned",
                        format!(
                            "an issue request sent at {since} got no stored reply (the operator stopped or the call failed); \
                             ConductorOne may hold an unused credential for connector {} that the operator cannot revoke: {horizon}",
                            ids.connector
                        ),
                    );
                }
                Step::Promote => {
                    let Some(stored) = stored else { return Ok(Outcome::Wait(None)) };
                    let had_previous = state.rotation.as_ref().is_some_and(|r| r.previous.is_some());
                    self.persist(bc, &rotation::promote(&state, &stored, &base, self.grace, now), None)
                        .await?;
                    if had_previous {
                        self.note(
                            false,
                            "RotatedOut",
                            format!(
                                "the connector runs on credential {}; the previous one stays valid for {:?}",
                                stored.credential_id, self.grace
                            ),
                        );
                    }
                }
                Step::RevokePrevious(previous) => {
                    if state.rotation.as_ref().is_some_and(|r| r.phase != crate::api::RotationPhase::Revoking)
                    {
                        self.persist(bc, &rotation::mark_revoking(&state), None).await?;
                    }
                    if let Err(e) = self.revoke(&ids.app, &ids.connector, &previous.credential_id).await {
                        self.note(
                            true,
                            "RevokeFailed",
                            format!("could not revoke credential {}: {e}", previous.credential_id),
                        );
                        return Ok(Outcome::Blocked(c1_problem(&e)));
                    }
                    match secrets.delete(&previous.secret_name, &DeleteParams::default()).await {
                        Ok(_) => {}
                        Err(kube::Error::Api(s)) if s.code == 404 => {}
                        Err(e) => return Err(e.into()),
                    }
                    let current = bc.status.as_ref().and_then(|s| s.credentials.clone()).unwrap_or_default();
                    self.persist(bc, &rotation::finish(&current), None).await?;
                    self.note(
                        false,
                        "CredentialRevoked",
                        format!("revoked the previous credential {}", previous.credential_id),
                    );
                }
                Step::RevokePending(id) => {
                    if let Err(e) = self.revoke(&ids.app, &ids.connector, &id).await {
                        return Ok(Outcome::Blocked(c1_problem(&e)));
                    }
                    self.persist(bc, &rotation::remove_pending_revocation(&state, &id), None).await?;
                    self.note(false, "CredentialRevoked", format!("revoked unused credential {id}"));
                }
                Step::Supersede => {
                    let old = state.minted_for.clone().unwrap_or_default();
                    self.persist(bc, &rotation::supersede(&state, &base, &connector), None).await?;
                    info!(namespace = %ns, name = %base, old_connector = %old.connector_id, connector = %ids.connector, "the connector changed; issuing a credential for the new one");
                    self.note(
                        false,
                        "ConnectorChanged",
                        format!(
                            "the resource now uses connector {} of app {} (was {} of app {}): issuing a credential for it; the old connector's credentials are revoked once the pod runs on the new one",
                            ids.connector, ids.app, old.connector_id, old.app_id
                        ),
                    );
                }
                Step::RevokeSuperseded(old) => {
                    let (app, id) = (&old.connector.app_id, &old.connector.connector_id);
                    if let Err(e) = self.revoke(app, id, &old.credential_id).await {
                        self.note(
                            true,
                            "RevokeFailed",
                            format!("could not revoke credential {}: {e}", old.credential_id),
                        );
                        return Ok(Outcome::Blocked(c1_problem(&e)));
                    }
                    let in_use = rotation::workload_secret(&state, &base);
                    if let Some(secret) = old.secret_name.as_ref().filter(|s| Some(*s) != in_use.as_ref()) {
                        match secrets.delete(secret, &DeleteParams::default()).await {
                            Ok(_) => {}
                            Err(kube::Error::Api(s)) if s.code == 404 => {}
                            Err(e) => return Err(e.into()),
                        }
                    }
                    self.persist(bc, &rotation::remove_superseded(&state, &old.credential_id), None).await?;
                    self.note(
                        false,
                        "CredentialRevoked",
                        format!(
                            "revoked credential {} of connector {}, which the resource no longer uses",
                            old.credential_id, id
                        ),
                    );
                }
                Step::AwaitRollout => return Ok(Outcome::Wait(None)),
                Step::AwaitGrace(until) => return Ok(Outcome::Wait(Some(until_from(now, until)))),
                Step::Idle(next) => return Ok(Outcome::Wait(next.map(|n| until_from(now, n)))),
            }
        }
        warn!(namespace = %ns, name = %base, "rotation did not settle within one reconcile");
        Ok(Outcome::Wait(Some(Duration::from_secs(5))))
    }

    async fn revoke(
        &self,
        app: &str,
        connector: &str,
        id: &str,
    ) -> std::result::Result<(), crate::conductorone::Error> {
        match self.ctx.conductorone.revoke_credential(self.api, app, connector, id).await {
            Err(e) if e.kind() != ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// A credential that was minted but cannot be used is revoked at once, or remembered for later.
    async fn revoke_unusable(&mut self, bc: &mut BatonConnector, id: &str) -> Result<()> {
        let ids = self.ids.clone();
        let state = bc.status.as_ref().and_then(|s| s.credentials.clone()).unwrap_or_default();
        let state = rotation::clear_in_flight(&state);
        if self.revoke(&ids.app, &ids.connector, id).await.is_ok() {
            self.persist(bc, &state, None).await
        } else {
            self.persist(bc, &rotation::add_pending_revocation(&state, id), None).await
        }
    }

    fn note(&mut self, warning: bool, reason: &'static str, message: String) {
        self.notes.push(Note { warning, reason, action: "RotateCredentials", message });
    }

    /// Records the credential state (and the handled rotate request) before the next side effect.
    async fn persist(
        &self,
        bc: &mut BatonConnector,
        state: &CredentialsStatus,
        handled_rotate: Option<&str>,
    ) -> Result<()> {
        let mut ops = Vec::new();
        if bc.status.is_none() {
            ops.push(json!({"op": "add", "path": "/status", "value": {}}));
        }
        ops.push(json!({"op": "add", "path": "/status/credentials", "value": state}));
        if let Some(r) = handled_rotate {
            if bc.status.as_ref().is_none_or(|s| s.handled_requests.is_empty()) {
                ops.push(json!({"op": "add", "path": "/status/handledRequests", "value": {}}));
            }
            ops.push(json!({"op": "add", "path": "/status/handledRequests/rotate", "value": r}));
        }
        let patch: json_patch::Patch =
            serde_json::from_value(serde_json::Value::Array(ops)).expect("valid JSON patch");
        let api: Api<BatonConnector> =
            Api::namespaced(self.ctx.client.clone(), &bc.namespace().unwrap_or_default());
        let params = PatchParams { field_manager: Some(STATE_MANAGER.into()), ..Default::default() };
        *bc = api.patch_status(&bc.name_any(), &params, &Patch::Json::<()>(patch)).await?;
        self.ctx.metrics.status_writes.inc();
        Ok(())
    }
}

fn until_from(now: Timestamp, at: Timestamp) -> Duration {
    Duration::from_secs(u64::try_from(at.as_second() - now.as_second()).unwrap_or(0).max(1))
}

/// How long a credential nobody knows of may stay valid, from what the operator knows of this
/// connector's credential lifetime.
fn expiry_horizon(state: &CredentialsStatus, since: Timestamp) -> String {
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

fn c1_problem(e: &crate::conductorone::Error) -> Problem {
    Problem::ConductorOne { reason: e.reason(), message: e.to_string(), permanent: e.is_permanent() }
}

/// The Secret revision holding one issued credential: the two keys the connector reads, and the
/// credential's id in an annotation so a crash right after this write loses nothing.
fn credential_secret(
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

/// Reads what a stored revision says about its credential (never its secret).
async fn read_stored(api: &Api<Secret>, name: &str) -> Result<Option<StoredCredential>> {
    let Some(secret) = api.get_opt(name).await? else { return Ok(None) };
    let annotations = secret.annotations();
    let Some(id) = annotations.get(CREDENTIAL_ID_ANNOTATION) else { return Ok(None) };
    let client_id = secret
        .data
        .as_ref()
        .and_then(|d| d.get(inputs::CLIENT_ID_KEY))
        .map(|v| String::from_utf8_lossy(&v.0).to_string())
        .unwrap_or_default();
    let time = |key: &str| annotations.get(key).and_then(|v| v.parse::<Timestamp>().ok());
    Ok(Some(StoredCredential {
        credential_id: id.clone(),
        client_id,
        issued_at: time(ISSUED_AT_ANNOTATION),
        expires_at: time(EXPIRES_AT_ANNOTATION),
    }))
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
/// operator minted are unused: once the workload runs on the user's Secret, revoke them and delete
/// their Secret revisions. Returns the revoked ids, or why it could not.
pub async fn revoke_leftovers(
    ctx: &Context,
    bc: &BatonConnector,
    secrets: &SecretData,
    live: Option<&Deployment>,
    notes: &mut Vec<Note>,
) -> Result<std::result::Result<Vec<String>, Problem>> {
    let state = bc.status.as_ref().and_then(|s| s.credentials.clone()).unwrap_or_default();
    let leftovers = rotation::minted(&state);
    if leftovers.is_empty() || bc.spec.deletion_policy != crate::api::DeletionPolicy::Revoke {
        return Ok(Ok(Vec::new()));
    }
    // The running pod may still use a minted credential until the new one is up: on the user's
    // Secret (Service mode), or gone (OneShot mode, whose runs use none).
    let unused = match (bc.spec.mode, bc.spec.credentials.secret_ref.as_ref()) {
        (crate::api::Mode::OneShot, _) => live.is_none(),
        (crate::api::Mode::Service, Some(user_secret)) => live.is_some_and(|d| {
            super::status::workload_state(Some(d)) == super::status::WorkloadState::Available
                && reads_credentials_from(d, &user_secret.name)
        }),
        (crate::api::Mode::Service, None) => false,
    };
    if !unused {
        return Ok(Ok(Vec::new()));
    }
    let Some(c1) = bc.spec.conductor_one.as_ref() else {
        let message = format!(
            "credentials {leftovers:?} minted while this resource was managed stay valid: without conductorOne the operator cannot revoke them"
        );
        return Ok(Err(Problem::Rejected { message }));
    };
    let Some(ids) = crate::onboarding::ids(bc) else {
        let message = format!(
            "credentials {leftovers:?} minted while this resource was managed stay valid until the connector's ConductorOne ids are known again"
        );
        return Ok(Err(Problem::Rejected { message }));
    };
    let api = match api_credentials(bc, c1, secrets) {
        Ok(api) => api,
        Err(p) => return Ok(Err(Problem::Input(p))),
    };
    let mut revoked = Vec::new();
    let current = crate::api::ConnectorRef { app_id: ids.app, connector_id: ids.connector };
    for (connector, id) in rotation::minted_by_connector(&state, &current) {
        match ctx.conductorone.revoke_credential(&api, &connector.app_id, &connector.connector_id, &id).await
        {
            Ok(()) => revoked.push(id),
            Err(e) if e.kind() == ErrorKind::NotFound => revoked.push(id),
            Err(e) => return Ok(Err(c1_problem(&e))),
        }
    }
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), &bc.namespace().unwrap_or_default());
    let selector = format!(
        "{},{}={},{REVISION_LABEL}",
        labels::managed_selector(),
        labels::INSTANCE_LABEL,
        bc.name_any()
    );
    for secret in api.list_metadata(&kube::api::ListParams::default().labels(&selector)).await?.items {
        match api.delete(&secret.name_any(), &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
    }
    forget_minted(ctx, bc).await?;
    notes.push(Note {
        warning: false,
        reason: "CredentialRevoked",
        action: "RotateCredentials",
        message: format!(
            "revoked credentials {revoked:?}, minted while this resource used managed credentials"
        ),
    });
    Ok(Ok(revoked))
}

/// Drops the managed-credential record from status once everything in it is revoked. The record was
/// written by its own field manager, so the status apply, which owns other fields, cannot remove it.
async fn forget_minted(ctx: &Context, bc: &BatonConnector) -> Result<()> {
    let remaining = CredentialsStatus {
        secret_name: bc.spec.credentials.secret_ref.as_ref().map(|r| r.name.clone()),
        ..Default::default()
    };
    let patch: json_patch::Patch =
        serde_json::from_value(json!([{"op": "replace", "path": "/status/credentials", "value": remaining}]))
            .expect("valid JSON patch");
    let api: Api<BatonConnector> = Api::namespaced(ctx.client.clone(), &bc.namespace().unwrap_or_default());
    let params = PatchParams { field_manager: Some(STATE_MANAGER.into()), ..Default::default() };
    api.patch_status(&bc.name_any(), &params, &Patch::Json::<()>(patch)).await?;
    ctx.metrics.status_writes.inc();
    Ok(())
}
