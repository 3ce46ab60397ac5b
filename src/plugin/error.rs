//! The failures a script needs to tell apart, each with its own exit code.

use std::time::Duration;

/// Exit codes of `kubectl baton` (also in `docs/kubectl-plugin.md`). 2 is clap's, for bad usage.
pub mod exit {
    pub const OTHER: u8 = 1;
    pub const CRD_MISSING: u8 = 3;
    pub const FORBIDDEN: u8 = 4;
    pub const NOT_FOUND: u8 = 5;
    pub const TIMEOUT: u8 = 6;
    pub const SETTINGS_INVALID: u8 = 7;
}

#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error(
        "the BatonConnector CRD is not installed in this cluster (no API baton.conductorone.com/v1alpha1); install it with `kubectl apply -f crds/` or the operator's chart"
    )]
    CrdMissing,
    #[error("permission denied: {0}")]
    Forbidden(String),
    #[error("{kind} {name:?} not found in namespace {namespace:?}")]
    NotFound { kind: &'static str, namespace: String, name: String },
    #[error("timed out after {}: {what}", humantime::format_duration(*.after))]
    Timeout { what: String, after: Duration },
    /// `import`: the manifest is printed, but the operator would refuse its settings.
    #[error("the operator would refuse these settings (ConfigInvalid); fix them before applying:\n  {0}")]
    Invalid(String),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl PluginError {
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::CrdMissing => exit::CRD_MISSING,
            Self::Forbidden(_) => exit::FORBIDDEN,
            Self::NotFound { .. } => exit::NOT_FOUND,
            Self::Timeout { .. } => exit::TIMEOUT,
            Self::Invalid(_) => exit::SETTINGS_INVALID,
            Self::Other(_) => exit::OTHER,
        }
    }
}

impl From<kube::Error> for PluginError {
    /// A 404 here is never "no such object" (callers that fetch by name map that themselves) but a
    /// missing resource type, which is what an absent CRD looks like to a list.
    fn from(e: kube::Error) -> Self {
        match &e {
            kube::Error::Api(s) if s.code == 403 => Self::Forbidden(s.message.clone()),
            kube::Error::Api(s) if s.code == 404 => Self::CrdMissing,
            _ => Self::Other(anyhow::Error::new(e).context("Kubernetes API request failed")),
        }
    }
}

/// Maps the error of a request for one named object of `kind`: a 404 is an unknown name unless the
/// API itself is missing, which `ensure_crd` checks first (Deployments' API is always served).
pub fn named(e: kube::Error, kind: &'static str, namespace: &str, name: &str) -> PluginError {
    match &e {
        kube::Error::Api(s) if s.code == 404 => {
            PluginError::NotFound { kind, namespace: namespace.into(), name: name.into() }
        }
        _ => e.into(),
    }
}

pub type Result<T, E = PluginError> = std::result::Result<T, E>;
