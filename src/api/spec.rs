//! The `BatonConnector` spec: what a person writes.
//!
//! Every field carries a doc comment because the comments become the CRD's descriptions, which is
//! what `kubectl explain batonconnector.spec` prints.

use std::collections::BTreeMap;

use k8s_openapi::{
    api::core::v1::{Affinity, LocalObjectReference, ResourceRequirements, Toleration},
    apimachinery::pkg::api::resource::Quantity,
};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{
    config::Config,
    oneshot_spec::{OutputSpec, RunsSpec},
    refs::{EnvEntry, SecretRef, TenantRef},
    status::BatonConnectorStatus,
};

/// A Baton connector run by baton-operator: one application (Okta, Segment, GitHub, ...) synced into
/// ConductorOne. The operator turns it into a Deployment (and the Secret it needs), keeps it rolled
/// out, and reports its health in `status`.
///
/// A Deployment (or CronJob) of the resource's name that the operator did not create is never taken
/// over, unless the resource carries the annotation `baton.conductorone.com/adopt-existing: "true"`:
/// then a hand-written Deployment that no controller owns is replaced with no gap (its pods keep
/// running until the operator's own pod is available; `status.adoption` meanwhile), and a CronJob is
/// taken over in place. The Secrets it names are only read, never changed.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "baton.conductorone.com",
    version = "v1alpha1",
    kind = "BatonConnector",
    plural = "batonconnectors",
    singular = "batonconnector",
    shortname = "bc",
    category = "baton",
    namespaced,
    cel,
    status = "BatonConnectorStatus",
    derive = "PartialEq",
    doc = "A ConductorOne Baton connector run by baton-operator.",
    printcolumn(name = "Connector", type_ = "string", json_path = ".spec.connector", description = "The Baton app"),
    printcolumn(name = "Mode", type_ = "string", json_path = ".spec.mode", description = "How the connector runs"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status",
        description = "Whether the connector is running and healthy"
    ),
    printcolumn(
        name = "Status",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].reason",
        description = "Why it is (not) ready"
    ),
    printcolumn(
        name = "Pod",
        type_ = "string",
        json_path = ".status.workload.pod",
        description = "What the connector pod says is wrong, while the workload is not available"
    ),
    printcolumn(
        name = "Last Sync",
        type_ = "date",
        json_path = ".status.sync.lastCompletedAt",
        description = "When ConductorOne last completed a sync"
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    printcolumn(
        name = "Next Rotation",
        type_ = "date",
        json_path = ".status.credentials.nextRotationAt",
        priority = 1,
        description = "When managed credentials rotate next"
    ),
    printcolumn(
        name = "Message",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].message",
        priority = 1
    ),
    validation = Rule::new("!has(self.spec.credentials) || !has(self.spec.credentials.managed) || has(self.spec.conductorOne)")
        .message("credentials.managed needs spec.conductorOne: the operator mints credentials through the ConductorOne API"),
    validation = Rule::new("self.spec.mode == 'OneShot' || (has(self.spec.credentials) && has(self.spec.credentials.secretRef) != has(self.spec.credentials.managed))")
        .message("set exactly one of credentials.secretRef or credentials.managed"),
    validation = Rule::new("self.spec.mode != 'OneShot' || !has(self.spec.credentials) || !has(self.spec.credentials.managed)")
        .message("credentials.managed is refused in OneShot mode: a one-shot run syncs to a file and needs no ConductorOne client credential"),
    validation = Rule::new("self.spec.mode != 'OneShot' || !has(self.spec.credentials) || !has(self.spec.credentials.secretRef)")
        .message("credentials.secretRef is refused in OneShot mode: with BATON_CLIENT_ID a connector runs as a service and never exits"),
    validation = Rule::new("self.spec.mode != 'OneShot' || !has(self.spec.healthCheck)")
        .message("healthCheck is refused in OneShot mode: a run that exits has no health server to probe"),
    validation = Rule::new("self.spec.mode != 'OneShot' || has(self.spec.schedule)")
        .message("mode OneShot needs spec.schedule, a cron expression such as \"0 */6 * * *\""),
    validation = Rule::new("self.spec.mode == 'OneShot' || !has(self.spec.schedule)")
        .message("spec.schedule is only for mode OneShot; a Service connector runs all the time"),
    validation = Rule::new("self.spec.mode != 'OneShot' || has(self.spec.output)")
        .message("mode OneShot needs spec.output: where the sync file goes (s3 or persistentVolumeClaim)"),
    validation = Rule::new("self.spec.mode == 'OneShot' || !has(self.spec.output)")
        .message("spec.output is only for mode OneShot; a Service connector uploads to ConductorOne itself")
)]
#[serde(rename_all = "camelCase")]
pub struct BatonConnectorSpec {
    /// The Baton app this connector syncs, as in the image name `baton-<connector>`: for example
    /// `okta`, `segment`, `sentinel-one`, `privx`, `github`. Immutable: a different app is a different
    /// connector in ConductorOne, so create a new BatonConnector instead.
    #[schemars(length(min = 1, max = 50), regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("connector is immutable; create a new BatonConnector for another app"))]
    pub connector: String,

    /// Which container image to run. Defaults to `public.ecr.aws/conductorone/baton-<connector>:latest`;
    /// pin a tag, or better a digest, in production.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageSpec>,

    /// How the connector runs. `Service` (the default) is a long-running Deployment that takes its work
    /// from ConductorOne. `OneShot` is a CronJob on `schedule`: each run syncs to a file and uploads it
    /// to `output`, where ConductorOne (or a person) picks it up.
    #[serde(default)]
    pub mode: Mode,

    /// OneShot mode: when to run, as a cron expression with five fields (`0 */6 * * *`) or a macro
    /// such as `@daily`, in `timeZone`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 100),
        regex(
            pattern = r"^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|([0-9A-Za-z*?/,-]+\s+){4}[0-9A-Za-z*?/,-]+)$"
        )
    )]
    pub schedule: Option<String>,

    /// OneShot mode: the time zone of `schedule`, as an IANA name such as `Europe/Berlin`. Defaults to
    /// the kube-controller-manager's time zone (usually UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64), regex(pattern = r"^[A-Za-z][A-Za-z0-9_+/-]*$"))]
    pub time_zone: Option<String>,

    /// OneShot mode: limits of each run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runs: Option<RunsSpec>,

    /// OneShot mode: where each run's sync file (c1z) goes. Set exactly one destination.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<OutputSpec>,

    /// Plain, non-secret configuration passed to the connector as environment variables, for example
    /// `BATON_DOMAIN`. Secrets belong in `secretRefs`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 128))]
    #[x_kube(validation = Rule::new(
        "self.all(e, !(e.name in ['BATON_CLIENT_ID', 'BATON_CLIENT_SECRET', 'BATON_HOST_ID', 'BATON_PROVISIONING', 'BATON_TICKETING', 'BATON_HEALTH_CHECK', 'BATON_HEALTH_CHECK_PORT', 'BATON_HEALTH_CHECK_BIND_ADDRESS']))"
    ).message("env may not set BATON_CLIENT_ID, BATON_CLIENT_SECRET, BATON_HOST_ID, BATON_PROVISIONING, BATON_TICKETING or BATON_HEALTH_CHECK*: use credentials, provisioning, ticketing and healthCheck instead"))]
    #[x_kube(validation = Rule::new("self.all(e, self.exists_one(f, f.name == e.name))").message("env has the same name twice"))]
    pub env: Vec<EnvEntry>,

    /// Secrets in this namespace holding the app's own credentials (API tokens, private keys). Every
    /// key becomes an environment variable of the connector (`envFrom`); the data is never copied.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub secret_refs: Vec<SecretRef>,

    /// The connector's own settings by their schema names (`kubectl baton fields <connector>` lists
    /// them), for example `domain: {value: acme.okta.com}` and
    /// `api-token: {secretKeyRef: {name: okta, key: api-token}}`. Each becomes the environment
    /// variable the Baton SDK reads (`BATON_DOMAIN`, `BATON_API_TOKEN`). For connectors in the
    /// operator's catalog, names, types and required fields are checked against the connector's
    /// schema. `env` and `secretRefs` still work, for anything else.
    #[serde(default, skip_serializing_if = "Config::is_empty")]
    #[schemars(schema_with = "super::config::config_schema")]
    pub config: Config,

    /// Lets ConductorOne provision access through this connector (`BATON_PROVISIONING`).
    #[serde(default)]
    pub provisioning: bool,

    /// Lets ConductorOne create tickets through this connector (`BATON_TICKETING`).
    #[serde(default)]
    pub ticketing: bool,

    /// Where the connector's ConductorOne client ID and secret come from. Required in Service mode;
    /// refused in OneShot mode, whose runs must not get them.
    #[serde(default)]
    pub credentials: CredentialsSpec,

    /// ConductorOne API access for the operator itself: needed for managed credentials and used to
    /// report sync status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conductor_one: Option<ConductorOneSpec>,

    /// Compute resources of the connector container. Defaults to requests of 100m CPU and 128Mi memory
    /// and limits of 1 CPU and 1Gi memory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,

    /// The connector's writable working directory, `/work`: an `emptyDir` volume that also holds
    /// `/tmp` (`TMPDIR`), so that everything the Baton SDK writes (`sync.c1z`, `debug.log`, its
    /// temporary sync databases) lands there while the root filesystem stays read-only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub work_dir: Option<WorkDirSpec>,

    /// Node labels the connector pod must run on.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,

    /// Tolerations of the connector pod.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,

    /// Scheduling affinity of the connector pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,

    /// Extra labels on the connector pod. The operator's own labels win on a clash.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pod_labels: BTreeMap<String, String>,

    /// Extra annotations on the connector pod.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pod_annotations: BTreeMap<String, String>,

    /// ServiceAccount the connector pod runs as. When unset the pod gets no Kubernetes API token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub service_account_name: Option<String>,

    /// Secrets used to pull the image from a private registry or mirror.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub image_pull_secrets: Vec<LocalObjectReference>,

    /// PriorityClass of the connector pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority_class_name: Option<String>,

    /// The connector's own health endpoint (Baton SDK v0.7.6 or newer), used for Kubernetes probes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheckSpec>,

    /// Stops the operator from changing anything for this connector. The running workload is left as
    /// it is; status says it is suspended.
    #[serde(default)]
    pub suspend: bool,

    /// What happens to operator-minted ConductorOne credentials when this resource is deleted:
    /// `Revoke` (the default) revokes them, `Orphan` leaves them valid in ConductorOne.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
}

/// The connector's working directory.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct WorkDirSpec {
    /// The most the connector may keep in its working directory and `/tmp` together, as a quantity
    /// such as `2Gi` (at least `64Mi`). Defaults to `2Gi`. It is a cap on node disk, not a
    /// reservation: the kubelet evicts a pod that writes more (a Service connector then gets a new
    /// pod; a OneShot run fails). A sync needs about two to three times its largest c1z file; raise
    /// it for very large tenants. Changing it restarts a Service connector once; OneShot mode uses
    /// it from the next run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "quantity_string")]
    #[x_kube(validation = Rule::new("isQuantity(self) && quantity(self).compareTo(quantity('64Mi')) >= 0")
        .message("workDir.sizeLimit must be a quantity of at least 64Mi, such as 2Gi"))]
    pub size_limit: Option<Quantity>,
}

/// A quantity written as a string, as `kubectl` and Helm write them. The upstream schema says
/// int-or-string; a string with a length bound keeps the CEL rule above within the API server's
/// cost budget (an unbounded string would make it too expensive to install).
fn quantity_string(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({ "type": "string", "maxLength": 32 })
}

/// Container image override.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ImageSpec {
    /// Image repository without tag or digest. Defaults to `public.ecr.aws/conductorone/baton-<connector>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 255), regex(pattern = r"^[a-z0-9]+([._/:-][a-z0-9]+)*$"))]
    pub repository: Option<String>,

    /// Image tag. Defaults to `latest` when no digest is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128), regex(pattern = r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$"))]
    pub tag: Option<String>,

    /// Image digest (`sha256:` and 64 hex digits). Pins the image; takes precedence over the tag for
    /// what actually runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^sha256:[a-f0-9]{64}$"))]
    pub digest: Option<String>,

    /// When the kubelet pulls the image. Kubernetes' default applies when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_policy: Option<PullPolicy>,
}

/// Kubernetes image pull policy.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum PullPolicy {
    Always,
    IfNotPresent,
    Never,
}

impl PullPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Always => "Always",
            Self::IfNotPresent => "IfNotPresent",
            Self::Never => "Never",
        }
    }
}

/// How the connector runs.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Mode {
    /// A long-running Deployment that polls ConductorOne for work.
    #[default]
    Service,
    /// A CronJob: each run syncs to a file and uploads it.
    OneShot,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Service => "Service",
            Self::OneShot => "OneShot",
        }
    }
}

/// Where the ConductorOne client credentials come from. Set exactly one field (Service mode).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct CredentialsSpec {
    /// A Secret you manage, in this namespace, with the keys `BATON_CLIENT_ID` and
    /// `BATON_CLIENT_SECRET`, as made by "Rotate" in the ConductorOne UI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretRef>,

    /// The operator mints the credentials through the ConductorOne API (see `conductorOne`), keeps
    /// them in a Secret it owns, and rotates them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managed: Option<ManagedCredentials>,
}

/// Operator-managed ConductorOne credentials.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ManagedCredentials {
    /// When and how credentials rotate.
    #[serde(default)]
    pub rotation: RotationSpec,
    /// ConductorOne ids of credentials of this connector made by hand ("Rotate" in the UI), such as
    /// the one a hand-written Deployment used before the resource adopted it. Each is revoked once,
    /// after the connector runs on a credential the operator minted and no pod of an adopted
    /// Deployment is left. A credential the operator minted is never revoked this way.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub revoke_hand_made: Vec<String>,
}

/// Rotation of managed credentials. A field left out takes the tenant's default
/// (`connectorDefaults.rotation`), else the operator's (`720h`, `10m`).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct RotationSpec {
    /// How often to rotate, as a duration such as `720h` (the default). The operator adds up to 10%
    /// jitter so a fleet does not rotate at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]+(ns|us|ms|s|m|h))+$"))]
    pub interval: Option<String>,

    /// How long the previous credential stays valid after the new one is in use, as a duration such
    /// as `10m` (the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]+(ns|us|ms|s|m|h))+$"))]
    pub grace_period: Option<String>,
}

/// The operator's rotation interval when neither the connector nor its tenant sets one.
pub const DEFAULT_ROTATION_INTERVAL: &str = "720h";
/// The operator's grace period when neither the connector nor its tenant sets one.
pub const DEFAULT_GRACE_PERIOD: &str = "10m";
/// The operator's sync freshness when neither the connector nor its tenant sets one.
pub const DEFAULT_SYNC_FRESHNESS: &str = "24h";

impl RotationSpec {
    /// The interval in force (the connector's, or the operator's default).
    pub fn interval(&self) -> &str {
        self.interval.as_deref().unwrap_or(DEFAULT_ROTATION_INTERVAL)
    }

    /// The grace period in force.
    pub fn grace_period(&self) -> &str {
        self.grace_period.as_deref().unwrap_or(DEFAULT_GRACE_PERIOD)
    }

    /// Fills what this leaves out from `defaults` (a tenant's).
    pub fn or(&self, defaults: &RotationSpec) -> RotationSpec {
        RotationSpec {
            interval: self.interval.clone().or_else(|| defaults.interval.clone()),
            grace_period: self.grace_period.clone().or_else(|| defaults.grace_period.clone()),
        }
    }
}

/// ConductorOne API access for the operator.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("has(self.appId) != has(self.app)")
        .message("set exactly one of conductorOne.appId (an existing app) or conductorOne.app (the operator creates one)"),
    validation = Rule::new("!has(self.connectorId) || !has(self.connector)")
        .message("conductorOne.connector describes a connector the operator creates; drop it when conductorOne.connectorId names an existing one"),
    validation = Rule::new("!has(self.connectorId) || has(self.appId)")
        .message("conductorOne.connectorId needs conductorOne.appId: an existing connector belongs to an existing app"),
    validation = Rule::new("!(has(self.tenantRef) && has(self.apiCredentialsSecretRef))")
        .message("set one of conductorOne.tenantRef (a ConductorOneTenant or ClusterConductorOneTenant) or conductorOne.apiCredentialsSecretRef (the older form), not both; with neither, the default ClusterConductorOneTenant is used")
)]
pub struct ConductorOneSpec {
    /// The tenant whose service principal the operator uses for this connector: a
    /// `ConductorOneTenant` in this namespace (the default kind) or a `ClusterConductorOneTenant`.
    /// With neither this nor `apiCredentialsSecretRef`, the cluster tenant annotated
    /// `baton.conductorone.com/is-default-tenant: "true"` is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_ref: Option<TenantRef>,

    /// The older form, kept for existing manifests: a Secret in this namespace with the client ID and
    /// secret of a ConductorOne service principal, under the keys `clientId` and `clientSecret`. The
    /// API host is taken from the client ID. Prefer `tenantRef`, which keeps the principal out of the
    /// connector's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_credentials_secret_ref: Option<SecretRef>,

    /// The ConductorOne app the connector belongs to. Set this or `app`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128), regex(pattern = r"^[A-Za-z0-9_-]+$"))]
    pub app_id: Option<String>,

    /// Zero-click onboarding: the operator creates this app in ConductorOne, records its id in
    /// `status.conductorOne.appId`, and deletes it with the resource (`deletionPolicy: Revoke`) when
    /// no other connector uses it. Set this or `appId`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<AppTemplate>,

    /// The connector's id in ConductorOne. Without it the operator creates a connector in the app
    /// (see `connector`) and records its id in `status.conductorOne.connectorId`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128), regex(pattern = r"^[A-Za-z0-9_-]+$"))]
    pub connector_id: Option<String>,

    /// The connector the operator creates when `connectorId` is not set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connector: Option<ConnectorTemplate>,

    /// How recent the last completed sync must be for the connector to count as `Synced` (and
    /// `Ready`), as a duration such as `24h`. Left out, the tenant's default
    /// (`connectorDefaults.syncFreshness`), else `24h`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]+(ns|us|ms|s|m|h))+$"))]
    pub sync_freshness: Option<String>,

    /// While `spec.suspend` is true, also pause the connector's syncs in ConductorOne, and resume them
    /// when it is false again. Only a pause the operator made is resumed.
    #[serde(default = "default_true")]
    pub pause_when_suspended: bool,
}

impl ConductorOneSpec {
    /// The sync freshness in force (the connector's, or the operator's default).
    pub fn sync_freshness(&self) -> &str {
        self.sync_freshness.as_deref().unwrap_or(DEFAULT_SYNC_FRESHNESS)
    }
}

/// An app the operator creates in ConductorOne. Read only when it creates the app: later edits do
/// not change the app in ConductorOne.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct AppTemplate {
    /// The app's name in ConductorOne.
    #[schemars(length(min = 1, max = 256))]
    pub display_name: String,

    /// The app's description. The operator appends a line naming this resource, by which it finds
    /// the app again if a reply is lost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub description: Option<String>,
}

/// A connector the operator creates in ConductorOne. Read only when it creates the connector: later
/// edits do not change the connector in ConductorOne.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ConnectorTemplate {
    /// The connector's name in ConductorOne. Defaults to `<namespace>/<name>` of this resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256))]
    pub display_name: Option<String>,

    /// The catalog entry the connector is an instance of. Defaults to ConductorOne's generic Baton
    /// (self-hosted) connector, `2HErg7BRmNdHgX8sTCWVq4E1fyh`, the id ConductorOne's own Terraform
    /// provider creates Baton integrations with (`conductorone_integration_baton`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128), regex(pattern = r"^[A-Za-z0-9_-]+$"))]
    pub catalog_id: Option<String>,

    /// ConductorOne user ids of the connector's integration owners.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub owner_user_ids: Vec<String>,
}

/// The catalog id of ConductorOne's generic Baton (self-hosted) connector.
pub const BATON_CATALOG_ID: &str = "2HErg7BRmNdHgX8sTCWVq4E1fyh";

fn default_true() -> bool {
    true
}

/// Probes on the connector's health endpoint.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheckSpec {
    /// Turns on the connector's health server (`BATON_HEALTH_CHECK`) and adds startup, liveness and
    /// readiness probes. Needs an image built with Baton SDK v0.7.6 or newer.
    #[serde(default)]
    pub enabled: bool,

    /// Port of the health server. Defaults to 8081.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: Option<i32>,
}

/// What deletion does to operator-minted credentials.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum DeletionPolicy {
    /// Revoke the credentials the operator minted.
    #[default]
    Revoke,
    /// Leave them valid in ConductorOne.
    Orphan,
}
