//! The tenant CRDs and `conductorOne.tenantRef`: described for `kubectl explain`, printed with the
//! columns the issue names, and held by CEL rules with messages a person understands (checked
//! client-side here, as `crd.rs` does for the BatonConnector).

use baton_operator::api::{self, BatonConnector, ClusterConductorOneTenant, ConductorOneTenant};
use serde_json::json;

fn cel_error(spec: serde_json::Value) -> Option<String> {
    let bc: BatonConnector = serde_json::from_value(json!({
        "apiVersion": "baton.conductorone.com/v1alpha1", "kind": "BatonConnector",
        "metadata": {"name": "x", "namespace": "team-a"}, "spec": spec,
    }))
    .unwrap();
    BatonConnector::validate_cel(&bc).err().map(|e| e.to_string())
}

fn managed(c1: serde_json::Value) -> serde_json::Value {
    json!({"connector": "okta", "credentials": {"managed": {}}, "conductorOne": c1})
}

#[test]
fn a_connector_names_a_tenant_or_the_older_secret_or_neither_but_not_both() {
    for ok in [
        json!({"tenantRef": {"kind": "ClusterConductorOneTenant", "name": "prod"}, "appId": "a"}),
        json!({"tenantRef": {"name": "sandbox"}, "appId": "a"}),
        json!({"apiCredentialsSecretRef": {"name": "api"}, "appId": "a"}),
        // Neither: the default cluster tenant.
        json!({"appId": "a"}),
    ] {
        assert_eq!(cel_error(managed(ok.clone())), None, "{ok}");
    }
    let both =
        json!({"tenantRef": {"name": "prod"}, "apiCredentialsSecretRef": {"name": "api"}, "appId": "a"});
    let err = cel_error(managed(both)).expect("both refused");
    assert!(err.contains("set one of conductorOne.tenantRef"), "{err}");
    assert!(err.contains("not both"), "{err}");
}

#[test]
fn tenant_ref_kind_defaults_to_the_namespaced_tenant() {
    let bc: BatonConnector = serde_json::from_value(json!({
        "apiVersion": "baton.conductorone.com/v1alpha1", "kind": "BatonConnector",
        "metadata": {"name": "x", "namespace": "team-a"},
        "spec": managed(json!({"tenantRef": {"name": "sandbox"}, "appId": "a"})),
    }))
    .unwrap();
    let r = bc.spec.conductor_one.unwrap().tenant_ref.unwrap();
    assert_eq!(r.kind, api::TenantKind::ConductorOneTenant);
}

fn cluster_tenant(spec: serde_json::Value) -> ClusterConductorOneTenant {
    serde_json::from_value(json!({
        "apiVersion": "baton.conductorone.com/v1alpha1", "kind": "ClusterConductorOneTenant",
        "metadata": {"name": "prod"}, "spec": spec,
    }))
    .unwrap()
}

#[test]
fn tenant_rules_say_what_is_wrong() {
    let ok = cluster_tenant(json!({
        "apiCredentialsSecretRef": {"name": "c1-prod"},
        "rateLimit": {"requestsPerSecond": 5, "burst": 10},
        "connectorDefaults": {"imageRegistry": "mirror.example.com/conductorone",
            "otelCollectorEndpoint": "http://otel.observability:4317"},
        "allowedNamespaces": {"names": ["team-a", "team-b"]},
    }));
    assert!(ClusterConductorOneTenant::validate_cel(&ok).is_ok());

    let small_bucket = cluster_tenant(json!({"apiCredentialsSecretRef": {"name": "s"},
        "rateLimit": {"requestsPerSecond": 10, "burst": 2}}));
    let err = ClusterConductorOneTenant::validate_cel(&small_bucket).unwrap_err().to_string();
    assert!(err.contains("rateLimit.burst must be at least rateLimit.requestsPerSecond"), "{err}");

    let empty_allow =
        cluster_tenant(json!({"apiCredentialsSecretRef": {"name": "s"}, "allowedNamespaces": {}}));
    let err = ClusterConductorOneTenant::validate_cel(&empty_allow).unwrap_err().to_string();
    assert!(err.contains("allowedNamespaces needs names or a selector"), "{err}");

    let namespaced: ConductorOneTenant = serde_json::from_value(json!({
        "apiVersion": "baton.conductorone.com/v1alpha1", "kind": "ConductorOneTenant",
        "metadata": {"name": "sandbox", "namespace": "team-a"},
        "spec": {"apiCredentialsSecretRef": {"name": "s"}, "rateLimit": {"requestsPerSecond": 3, "burst": 1}},
    }))
    .unwrap();
    assert!(ConductorOneTenant::validate_cel(&namespaced).is_err(), "the namespaced kind has the same rule");
}

fn crd(plural: &str) -> serde_json::Value {
    let crd = api::crds().into_iter().find(|c| c.spec.names.plural == plural).expect("served");
    serde_json::to_value(crd).unwrap()
}

#[test]
fn tenant_crds_have_short_names_categories_columns_and_scope() {
    for (plural, scope, short) in
        [("conductoronetenants", "Namespaced", "c1t"), ("clusterconductoronetenants", "Cluster", "cc1t")]
    {
        let crd = crd(plural);
        assert_eq!(crd["spec"]["scope"], scope, "{plural}");
        assert_eq!(crd["spec"]["names"]["shortNames"], json!([short]), "{plural}");
        assert_eq!(crd["spec"]["names"]["categories"], json!(["baton"]), "{plural}");
        let columns: Vec<&str> = crd["spec"]["versions"][0]["additionalPrinterColumns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(columns, ["Host", "Ready", "Connectors", "Age", "Message"], "{plural}");
    }
}

/// Every field of every CRD, nested ones included, has a description for `kubectl explain`.
#[test]
fn every_tenant_field_is_described() {
    for plural in ["conductoronetenants", "clusterconductoronetenants"] {
        let mut missing = super::crd::undescribed(&crd(plural));
        // The label selector's own fields are Kubernetes' (described upstream).
        missing.retain(|p| !p.contains("selector."));
        assert!(missing.is_empty(), "{plural}: fields without a description: {missing:?}");
    }
}
