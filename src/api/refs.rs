//! Small parts of the spec that others share: a reference to a Secret or a tenant, and a plain
//! environment variable.

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One plain environment variable.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct EnvEntry {
    /// Variable name, for example `BATON_DOMAIN`.
    #[schemars(length(min = 1, max = 128), regex(pattern = r"^[A-Za-z_][A-Za-z0-9_]*$"))]
    pub name: String,
    /// Variable value.
    #[serde(default)]
    #[schemars(length(max = 4096))]
    pub value: String,
}

/// A reference to a Secret in the resource's namespace.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct SecretRef {
    /// Name of the Secret.
    #[schemars(length(min = 1, max = 253), regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"))]
    pub name: String,
}

/// The kinds a `tenantRef` may name.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum TenantKind {
    /// A `ConductorOneTenant` in the connector's namespace.
    #[default]
    ConductorOneTenant,
    /// A `ClusterConductorOneTenant`.
    ClusterConductorOneTenant,
}

impl TenantKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ConductorOneTenant => "ConductorOneTenant",
            Self::ClusterConductorOneTenant => "ClusterConductorOneTenant",
        }
    }
}

/// A connector's tenant.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "camelCase")]
pub struct TenantRef {
    /// `ConductorOneTenant` (in the connector's namespace; the default) or `ClusterConductorOneTenant`.
    #[serde(default)]
    pub kind: TenantKind,
    /// Name of the tenant.
    #[schemars(length(min = 1, max = 253), regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"))]
    pub name: String,
}
