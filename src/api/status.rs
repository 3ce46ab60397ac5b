//! The `BatonConnector` status: the operator's report to people and GitOps tools.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What the operator last saw and did. Written only when something in it changed.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BatonConnectorStatus {
    /// The `metadata.generation` the operator last acted on; -1 until it has seen the resource.
    #[serde(default = "unobserved")]
    pub observed_generation: i64,

    /// `Ready` sums up health; `Reconciling` and `Stalled` follow kstatus; `WorkloadAvailable`,
    /// `CredentialsReady`, `Suspended` (and `Synced` with API access) give the detail.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,

    /// The image reference the workload runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,

    /// The Deployment that runs the connector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload: Option<WorkloadStatus>,

    /// Which trigger annotations (`baton.conductorone.com/*-requested-at`) have been handled.
    #[serde(default, skip_serializing_if = "HandledRequests::is_empty")]
    pub handled_requests: HandledRequests,

    /// The connector's ConductorOne client credentials (never the secret itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<CredentialsStatus>,

    /// ConductorOne's view of the connector's syncs (needs `spec.conductorOne`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync: Option<SyncStatus>,

    /// OneShot mode: the runs of the CronJob.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<ScheduleStatus>,

    /// What the operator did to the connector in ConductorOne.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conductor_one: Option<ConductorOneStatus>,
    /// An adoption of a hand-written Deployment under way (the `adopt-existing` annotation): the
    /// old pods keep running until the operator's own are available, then they are removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adoption: Option<AdoptionStatus>,
}

/// The journal of one adoption: what the old Deployment selected, so that its ReplicaSets (left
/// running, without an owner, when it was released) can be found and removed once the operator's
/// own pods are available.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdoptionStatus {
    /// The adopted Deployment's `spec.selector.matchLabels`.
    #[serde(default)]
    pub selector: std::collections::BTreeMap<String, String>,
    /// When the old Deployment was released.
    pub released_at: Time,
}

/// The operator's own actions on the connector in ConductorOne.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct ConductorOneStatus {
    /// The app the operator created (zero-click onboarding); `spec.conductorOne.appId` wins over it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
    /// The connector the operator created (zero-click onboarding); `spec.conductorOne.connectorId`
    /// wins over it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connector_id: Option<String>,
    /// `appId` is the operator's: it deletes the app with the resource (`deletionPolicy: Revoke`) if
    /// no other connector uses it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub created_app: bool,
    /// `connectorId` is the operator's: it deletes the connector with the resource
    /// (`deletionPolicy: Revoke`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub created_connector: bool,
    /// Set just before asking ConductorOne to create the app and cleared once its id is recorded: if
    /// the operator finds it set, it looks for the app by the marker in its description before it
    /// creates one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creating_app_since: Option<Time>,
    /// The same for the connector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creating_connector_since: Option<Time>,
    /// When the operator paused the connector's syncs because the resource is suspended; it resumes
    /// them, and only them, when the resource is resumed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused_at: Option<Time>,
}

fn unobserved() -> i64 {
    -1
}

impl Default for BatonConnectorStatus {
    fn default() -> Self {
        Self {
            observed_generation: unobserved(),
            conditions: Vec::new(),
            image: None,
            workload: None,
            handled_requests: HandledRequests::default(),
            credentials: None,
            sync: None,
            schedule: None,
            conductor_one: None,
            adoption: None,
        }
    }
}

/// The connector's workload (a Deployment, or a CronJob in OneShot mode) as last observed.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadStatus {
    /// Name of the Deployment or CronJob.
    pub name: String,
    /// Pods that run the current template and are available.
    #[serde(default)]
    pub available_replicas: i32,
    /// Hash of everything the pod reads (spec-derived settings and referenced Secret data); a change
    /// rolls the pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_hash: Option<String>,
    /// What the connector pod says is wrong, on one line (`CrashLoopBackOff: exit 1, 5 restarts: …`),
    /// while the workload is not available; the `Ready` condition's message has the detail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
}

/// The values of the trigger annotations the operator has acted on.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct HandledRequests {
    /// Last handled `baton.conductorone.com/restart-requested-at`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart: Option<String>,
    /// Last handled `baton.conductorone.com/reconcile-requested-at`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reconcile: Option<String>,
    /// Last handled `baton.conductorone.com/rotate-requested-at`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotate: Option<String>,
    /// Last handled `baton.conductorone.com/sync-requested-at`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync: Option<String>,
}

impl HandledRequests {
    pub fn is_empty(&self) -> bool {
        self.restart.is_none() && self.reconcile.is_none() && self.rotate.is_none() && self.sync.is_none()
    }
}

/// OneShot mode: the CronJob's runs.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleStatus {
    /// When a run was last scheduled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_schedule_time: Option<Time>,
    /// When a run last succeeded (synced and uploaded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_successful_time: Option<Time>,
    /// The last failed run, while no run has succeeded since.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failure: Option<RunFailure>,
    /// When the next run is due, from `schedule` and `timeZone`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_run_time: Option<Time>,
    /// Runs in progress.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub active: Vec<String>,
}

/// A failed run.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct RunFailure {
    /// The Job of the run.
    pub job: String,
    /// When it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<Time>,
    /// The Job's reason, such as `BackoffLimitExceeded` or `DeadlineExceeded`.
    pub reason: String,
    /// The Job's message.
    #[serde(default)]
    pub message: String,
}

/// The ConductorOne client credentials the connector uses. Secrets never appear here.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct CredentialsStatus {
    /// The Secret the connector reads its client ID and secret from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_name: Option<String>,
    /// The ConductorOne client ID in use (not secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// ConductorOne's id of the credential in use (managed credentials only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_id: Option<String>,
    /// Revision of the operator-managed Secret in use; each rotation writes a new one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<i64>,
    /// When the credential in use was issued (managed credentials only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_at: Option<Time>,
    /// When ConductorOne will stop accepting the credential in use, if it said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Time>,
    /// When the next rotation is due (managed credentials only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_rotation_at: Option<Time>,
    /// The rotation under way, recorded before each step so that it resumes after a restart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation: Option<RotationStatus>,
    /// Ids of credentials the operator minted but could not use; it revokes them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending_revocations: Vec<String>,
    /// The ConductorOne connector the credentials above were minted for. When the resource's
    /// connector changes, they are superseded: the operator issues a credential for the new one,
    /// rolls the pod onto it, then revokes the old ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minted_for: Option<ConnectorRef>,
    /// Credentials of a connector the resource no longer uses, revoked once the pod runs on a
    /// credential of the new one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub superseded: Vec<SupersededCredential>,
    /// Ids of `credentials.managed.revokeHandMade` already revoked.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub revoked_hand_made: Vec<String>,
}

/// A connector in ConductorOne.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct ConnectorRef {
    /// The app's id.
    pub app_id: String,
    /// The connector's id.
    pub connector_id: String,
}

/// A credential of a connector the resource no longer uses.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SupersededCredential {
    /// ConductorOne's id of the credential.
    pub credential_id: String,
    /// The connector it was minted for.
    pub connector: ConnectorRef,
    /// The Secret revision that holds it, deleted with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_name: Option<String>,
}

/// Where a rotation stands.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum RotationPhase {
    /// Asking ConductorOne for a new credential and storing it in a new Secret revision.
    Issuing,
    /// The workload rolls to the new Secret; the old credential stays valid.
    Rolling,
    /// The new pod is available; the old credential stays valid until `graceUntil`.
    GracePeriod,
    /// Revoking the old credential and deleting its Secret.
    Revoking,
}

/// A rotation in progress.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RotationStatus {
    /// The step the rotation is at.
    pub phase: RotationPhase,
    /// Why it started: `Initial`, `Interval` or `Requested`.
    pub trigger: String,
    /// The Secret revision this rotation writes.
    pub revision: i64,
    /// When the rotation started.
    pub started_at: Time,
    /// Set just before asking ConductorOne for a credential and cleared once the reply is stored: if
    /// the operator finds it set with no stored reply, a credential may exist that nobody knows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issue_in_flight_since: Option<Time>,
    /// How many issue attempts ended without a stored reply (each may have left a credential behind).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub unrecorded_attempts: i32,
    /// The new credential, once stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_credential_id: Option<String>,
    /// The credential being replaced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<PreviousCredential>,
    /// Until when the previous credential stays valid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace_until: Option<Time>,
}

fn is_zero(n: &i32) -> bool {
    *n == 0
}

/// The credential a rotation replaces.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PreviousCredential {
    /// ConductorOne's id of the credential being replaced.
    pub credential_id: String,
    /// The Secret revision that holds it.
    pub secret_name: String,
}

/// ConductorOne's view of the connector's syncs.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct SyncStatus {
    /// The last sync's state as ConductorOne reports it (`SYNC_STATUS_*` without the prefix, or
    /// `Unknown`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// When the last sync started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_started_at: Option<Time>,
    /// When the last sync completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_completed_at: Option<Time>,
    /// The last sync error ConductorOne reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// When ConductorOne disabled (or someone paused) the connector's syncs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled_at: Option<Time>,
    /// Why ConductorOne says syncs are disabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled_reason: Option<String>,
    /// When the operator last found something new in ConductorOne's report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checked_at: Option<Time>,
}
