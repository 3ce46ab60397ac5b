//! The `BatonConnector` API: spec, status, condition helpers and the generated CRD.

pub mod conditions;
mod config;
mod oneshot_spec;
pub mod reason;
mod refs;
mod schema;
mod spec;
mod status;
mod tenant;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

pub use config::*;
pub use oneshot_spec::*;
pub use reason::Reason;
pub use refs::*;
pub use spec::*;
pub use status::*;
pub use tenant::*;

/// API group of every resource this operator serves.
pub const GROUP: &str = "baton.conductorone.com";

/// Trigger annotations. The operator never removes them; it echoes the handled value in status.
pub const ROTATE_REQUESTED_AT: &str = "baton.conductorone.com/rotate-requested-at";
pub const RESTART_REQUESTED_AT: &str = "baton.conductorone.com/restart-requested-at";
pub const RECONCILE_REQUESTED_AT: &str = "baton.conductorone.com/reconcile-requested-at";
/// Opt-in, per resource: take over the unowned Deployment (or CronJob) of the resource's own name, as
/// left by a hand-written install, instead of stalling with `OwnershipConflict`.
pub const ADOPT_EXISTING: &str = "baton.conductorone.com/adopt-existing";
/// OneShot mode: one run now. (Service mode: ConductorOne's ForceSync, with zero-click onboarding.)
pub const SYNC_REQUESTED_AT: &str = "baton.conductorone.com/sync-requested-at";

/// The CRDs this operator serves, as they are installed (`crds/`, the `crd` subcommand).
pub fn crds() -> Vec<CustomResourceDefinition> {
    vec![
        batonconnector_crd(),
        unobserved_by_default(tidied(ConductorOneTenant::crd())),
        unobserved_by_default(tidied(ClusterConductorOneTenant::crd())),
    ]
}

/// The file of a CRD under `crds/` (and the chart's `files/`): `<group>_<plural>.yaml`.
pub fn crd_file_name(crd: &CustomResourceDefinition) -> String {
    format!("{}_{}.yaml", crd.spec.group, crd.spec.names.plural)
}

/// One CRD as it is committed.
pub fn crd_yaml(crd: &CustomResourceDefinition) -> String {
    serde_yaml::to_string(crd).expect("a CRD always serializes")
}

fn tidied(mut crd: CustomResourceDefinition) -> CustomResourceDefinition {
    for version in &mut crd.spec.versions {
        if let Some(root) = version.schema.as_mut().and_then(|s| s.open_api_v3_schema.as_mut()) {
            schema::tidy(root);
        }
    }
    crd
}

/// The `BatonConnector` CRD with what the derive cannot express: a status default, so that a new
/// object reads `observedGeneration: -1` (kstatus and Flux then treat it as in progress until the
/// operator has seen it), no `null` in an `enum`, and descriptions whose paragraphs are single lines.
pub fn batonconnector_crd() -> CustomResourceDefinition {
    unobserved_by_default(tidied(BatonConnector::crd()))
}

/// A status default, so that a new object reads `observedGeneration: -1`: kstatus and Flux treat
/// it as in progress until the operator has seen it (without a status they would call it Current).
fn unobserved_by_default(mut crd: CustomResourceDefinition) -> CustomResourceDefinition {
    for version in &mut crd.spec.versions {
        let Some(status) = version
            .schema
            .as_mut()
            .and_then(|s| s.open_api_v3_schema.as_mut())
            .and_then(|s| s.properties.as_mut())
            .and_then(|p| p.get_mut("status"))
        else {
            continue;
        };
        status.default = Some(k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSON(
            serde_json::json!({ "observedGeneration": -1 }),
        ));
    }
    crd
}

/// The CRDs as one multi-document YAML stream: the files under `crds/`, joined.
pub fn crds_yaml() -> String {
    crds().iter().map(crd_yaml).collect::<Vec<_>>().join("---\n")
}
