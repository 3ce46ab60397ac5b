//! baton-operator: runs ConductorOne Baton connectors on Kubernetes from `BatonConnector` resources.
//!
//! Data flows one way: a watch event triggers [`controller::reconcile`], which reads the current
//! state, lets the pure functions in [`decide`] and the builders in [`resources`] decide, and writes
//! only what changed. `docs/architecture.md` is the map.

pub mod api;
pub mod catalog;
pub mod conductorone;
pub mod controller;
pub mod decide;
pub mod leader;
pub mod metrics;
pub mod plugin;
pub mod render;
pub mod resources;
pub mod server;
pub mod telemetry;

/// Errors of a reconcile. Messages name objects, never secret values.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API error: {0}")]
    Kube(#[from] kube::Error),
    #[error("BatonConnector has no namespace")]
    NotNamespaced,
    /// The resource cannot converge for a reason already reported in its status; retried with backoff.
    #[error("not converged: {0}")]
    Blocked(api::Reason),
    /// Cleaning up in ConductorOne on deletion failed; retried with backoff, a few times.
    #[error("not converged: RevokeFailed")]
    CleanupFailed,
}

impl Error {
    /// A bounded label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::Kube(kube::Error::Api(_)) => "api_error",
            Self::Kube(_) => "kube_client",
            Self::NotNamespaced => "not_namespaced",
            Self::Blocked(reason) => reason.as_str(),
            Self::CleanupFailed => "RevokeFailed",
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
