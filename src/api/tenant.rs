//! ConductorOne tenants as resources: `ConductorOneTenant` (namespaced) and
//! `ClusterConductorOneTenant` (cluster-scoped). A tenant holds the reference to the service
//! principal of one ConductorOne tenant, its share of the operator's ConductorOne requests and the
//! defaults of the connectors that use it, so that the principal stays with the platform team and
//! teams name the tenant instead of holding a copy of the key.
//!
//! Every field carries a doc comment: the comments become the CRDs' descriptions (`kubectl explain`).

use k8s_openapi::{
    api::core::v1::ResourceRequirements,
    apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector},
};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{refs::SecretRef, spec::RotationSpec};

/// Annotation on a `ClusterConductorOneTenant`: with the value `"true"` it serves the connectors
/// that name no tenant and no `apiCredentialsSecretRef`, as a default StorageClass serves claims
/// that name no class.
pub const DEFAULT_TENANT_ANNOTATION: &str = "baton.conductorone.com/is-default-tenant";

/// What a namespaced and a cluster tenant have in common.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TenantSettings {
    /// A Secret with the client ID and secret of a ConductorOne service principal, under the keys
    /// `clientId` and `clientSecret`. The API host is taken from the client ID. For a
    /// `ConductorOneTenant` the Secret is in the tenant's namespace; for a `ClusterConductorOneTenant`
    /// it is in the operator's own namespace, so that teams never need to read it.
    pub api_credentials_secret_ref: SecretRef,

    /// This tenant's share of the operator's ConductorOne requests. Each tenant has its own budget:
    /// one tenant's calls never spend another's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimit>,

    /// Defaults for the connectors that use this tenant. A connector's own fields win.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connector_defaults: Option<ConnectorDefaults>,

    /// PEM certificates the operator trusts, besides the public roots and its own `SSL_CERT_FILE`,
    /// when it calls this tenant's ConductorOne: the CA of a TLS-inspecting proxy in between.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 262144))]
    #[x_kube(validation = Rule::new("self.contains('-----BEGIN CERTIFICATE-----')").message("caBundle must hold PEM certificates (-----BEGIN CERTIFICATE-----)"))]
    pub ca_bundle: Option<String>,
}

/// A request budget: a token bucket refilled at `requestsPerSecond`, holding at most `burst`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("self.burst >= self.requestsPerSecond")
        .message("rateLimit.burst must be at least rateLimit.requestsPerSecond: a bucket smaller than one second's refill never fills")
)]
pub struct RateLimit {
    /// Requests per second this tenant may send to ConductorOne, on average.
    #[schemars(range(min = 1, max = 1000))]
    pub requests_per_second: u32,
    /// Requests this tenant may send at once after a quiet spell.
    #[schemars(range(min = 1, max = 10000))]
    pub burst: u32,
}

/// Settings a fleet sets once, for every connector that uses the tenant.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ConnectorDefaults {
    /// A registry mirror for clusters that cannot reach `public.ecr.aws`: the default image
    /// `public.ecr.aws/conductorone/baton-<connector>` becomes `<imageRegistry>/baton-<connector>`.
    /// A connector's own `image.repository` is kept as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 255),
        regex(pattern = r"^[a-zA-Z0-9]([-a-zA-Z0-9.:]*[a-zA-Z0-9])?(/[a-z0-9]([-._a-z0-9]*[a-z0-9])?)*$")
    )]
    pub image_registry: Option<String>,

    /// Compute resources of the connector container, for connectors that set no `resources`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,

    /// An OpenTelemetry collector the connectors send to, passed as
    /// `BATON_OTEL_COLLECTOR_ENDPOINT` unless the connector sets that variable itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1024))]
    pub otel_collector_endpoint: Option<String>,

    /// The rotation of managed credentials, for connectors whose `credentials.managed.rotation`
    /// leaves a field out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation: Option<RotationSpec>,

    /// How recent the last completed sync must be (`conductorOne.syncFreshness`), for connectors
    /// that leave it out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]+(ns|us|ms|s|m|h))+$"))]
    pub sync_freshness: Option<String>,
}

/// Which namespaces may use a cluster tenant. Both lists narrow: a namespace must be named (when
/// `names` is set) and match the selector (when `selector` is set).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("has(self.names) || has(self.selector)")
        .message("allowedNamespaces needs names or a selector; leave allowedNamespaces out to allow every namespace")
)]
pub struct AllowedNamespaces {
    /// Names of the namespaces that may use the tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1024))]
    pub names: Option<Vec<String>>,

    /// A label selector the namespaces must match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
}

/// A ConductorOne tenant that the BatonConnectors of its namespace use through
/// `spec.conductorOne.tenantRef`: the service principal the operator calls ConductorOne with, the
/// tenant's request budget and the connectors' defaults.
// Each `printcolumn` repeats the keys `name` and `type_`, which the lint takes for duplicates.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "baton.conductorone.com",
    version = "v1alpha1",
    kind = "ConductorOneTenant",
    plural = "conductoronetenants",
    singular = "conductoronetenant",
    shortname = "c1t",
    category = "baton",
    namespaced,
    cel,
    status = "TenantStatus",
    derive = "PartialEq",
    doc = "A ConductorOne tenant for the BatonConnectors of one namespace.",
    printcolumn(
        name = "Host",
        type_ = "string",
        json_path = ".status.host",
        description = "The tenant's ConductorOne host"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status",
        description = "Whether the operator minted a token with the tenant's credentials"
    ),
    printcolumn(
        name = "Connectors",
        type_ = "integer",
        json_path = ".status.connectors",
        description = "BatonConnectors using the tenant"
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    printcolumn(
        name = "Message",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].message",
        priority = 1
    )
)]
#[serde(rename_all = "camelCase")]
pub struct ConductorOneTenantSpec {
    #[serde(flatten)]
    pub settings: TenantSettings,
}

/// A ConductorOne tenant that BatonConnectors of any allowed namespace use through
/// `spec.conductorOne.tenantRef` (kind `ClusterConductorOneTenant`). Its Secret is in the
/// operator's namespace: teams use the tenant without being able to read its service principal.
// Each `printcolumn` repeats the keys `name` and `type_`, which the lint takes for duplicates.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "baton.conductorone.com",
    version = "v1alpha1",
    kind = "ClusterConductorOneTenant",
    plural = "clusterconductoronetenants",
    singular = "clusterconductoronetenant",
    shortname = "cc1t",
    category = "baton",
    cel,
    status = "TenantStatus",
    derive = "PartialEq",
    doc = "A ConductorOne tenant for the BatonConnectors of the allowed namespaces.",
    printcolumn(
        name = "Host",
        type_ = "string",
        json_path = ".status.host",
        description = "The tenant's ConductorOne host"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status",
        description = "Whether the operator minted a token with the tenant's credentials"
    ),
    printcolumn(
        name = "Connectors",
        type_ = "integer",
        json_path = ".status.connectors",
        description = "BatonConnectors using the tenant"
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    printcolumn(
        name = "Message",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].message",
        priority = 1
    )
)]
#[serde(rename_all = "camelCase")]
pub struct ClusterConductorOneTenantSpec {
    #[serde(flatten)]
    pub settings: TenantSettings,

    /// Which namespaces may use this tenant. Left out, every namespace may.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_namespaces: Option<AllowedNamespaces>,
}

/// What the operator last found of a tenant.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TenantStatus {
    /// The `metadata.generation` the operator last acted on; `-1` (the CRD's default) until the
    /// operator first checked the tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// `Ready`: the operator minted a token with the tenant's credentials (reasons when it could not:
    /// `SecretNotFound`, `CredentialsRejected`, `Unreachable`, ...); `Stalled` as well when only a
    /// person can fix it; `InUse` while a deletion waits for the connectors that use the tenant.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,

    /// The ConductorOne host, from the client ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,

    /// How many BatonConnectors use the tenant.
    #[serde(default)]
    pub connectors: u32,

    /// The last error of a ConductorOne call made with this tenant's principal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,

    /// Whether ConductorOne is answering this tenant with 429 (Too Many Requests) now.
    #[serde(default)]
    pub rate_limited: bool,
}
