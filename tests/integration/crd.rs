//! The committed CRDs match the code, and the schema's CEL rules refuse what they should, with
//! messages a person understands (checked client-side here; the e2e suite checks the API server).

use baton_operator::api::{self, BatonConnector};
use serde_json::json;

const COMMITTED: &str = include_str!("../../crds/baton.conductorone.com_batonconnectors.yaml");

/// Every CRD the operator serves, as committed under `crds/` and copied into the chart.
const COMMITTED_ALL: [(&str, &str, &str); 3] = [
    (
        "baton.conductorone.com_batonconnectors.yaml",
        COMMITTED,
        include_str!("../../charts/baton-operator/files/baton.conductorone.com_batonconnectors.yaml"),
    ),
    (
        "baton.conductorone.com_conductoronetenants.yaml",
        include_str!("../../crds/baton.conductorone.com_conductoronetenants.yaml"),
        include_str!("../../charts/baton-operator/files/baton.conductorone.com_conductoronetenants.yaml"),
    ),
    (
        "baton.conductorone.com_clusterconductoronetenants.yaml",
        include_str!("../../crds/baton.conductorone.com_clusterconductoronetenants.yaml"),
        include_str!(
            "../../charts/baton-operator/files/baton.conductorone.com_clusterconductoronetenants.yaml"
        ),
    ),
];

#[test]
fn committed_crds_match_the_code() {
    let generated = api::crds();
    assert_eq!(generated.len(), COMMITTED_ALL.len(), "a CRD is served but not committed, or the reverse");
    for (crd, (file, committed, _)) in generated.iter().zip(COMMITTED_ALL) {
        assert_eq!(api::crd_file_name(crd), file);
        assert!(api::crd_yaml(crd) == committed, "crds/{file} is stale: run `cargo run -- crd --dir crds`");
    }
    let joined: Vec<&str> = COMMITTED_ALL.iter().map(|(_, c, _)| *c).collect();
    assert_eq!(api::crds_yaml(), joined.join("---\n"), "`crd` prints the committed files, joined");
}

#[test]
fn helm_chart_carries_the_same_crds() {
    for (file, committed, chart) in COMMITTED_ALL {
        assert!(chart == committed, "charts/baton-operator/files/{file} is stale: copy crds/{file} there");
    }
}

#[test]
fn status_defaults_to_unobserved_generation() {
    let crd = serde_json::to_value(api::batonconnector_crd()).unwrap();
    let status = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"];
    assert_eq!(status["default"], json!({"observedGeneration": -1}));
}

/// Every field, nested ones included, has a description for `kubectl explain`.
#[test]
fn every_field_is_described() {
    let crd = serde_json::to_value(api::batonconnector_crd()).unwrap();
    let missing = undescribed(&crd);
    assert!(missing.is_empty(), "fields without a description: {missing:?}");
}

/// The paths of the spec and status fields of a CRD that have no description.
pub(crate) fn undescribed(crd: &serde_json::Value) -> Vec<String> {
    fn walk(path: &str, schema: &serde_json::Value, missing: &mut Vec<String>) {
        let Some(props) = schema["properties"].as_object() else { return };
        for (field, sub) in props {
            let here = format!("{path}.{field}");
            if sub["description"].as_str().is_none_or(|d| d.is_empty()) {
                missing.push(here.clone());
            }
            walk(&here, sub, missing);
            walk(&format!("{here}[]"), &sub["items"], missing);
        }
    }
    let root = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
    let mut missing = Vec::new();
    walk("spec", &root["properties"]["spec"], &mut missing);
    walk("status", &root["properties"]["status"], &mut missing);
    missing
}

/// Every schema node of the CRD, nested ones included, with its path.
fn schema_nodes<'a>(
    path: String,
    node: &'a serde_json::Value,
    out: &mut Vec<(String, &'a serde_json::Value)>,
) {
    let Some(object) = node.as_object() else { return };
    out.push((path.clone(), node));
    for key in ["properties", "patternProperties", "definitions", "dependencies"] {
        for (name, sub) in object.get(key).and_then(|m| m.as_object()).into_iter().flatten() {
            schema_nodes(format!("{path}.{name}"), sub, out);
        }
    }
    for key in ["allOf", "anyOf", "oneOf"] {
        for (i, sub) in object.get(key).and_then(|l| l.as_array()).into_iter().flatten().enumerate() {
            schema_nodes(format!("{path}.{key}[{i}]"), sub, out);
        }
    }
    for key in ["items", "additionalProperties", "additionalItems", "not"] {
        match object.get(key) {
            Some(serde_json::Value::Array(list)) => {
                for (i, sub) in list.iter().enumerate() {
                    schema_nodes(format!("{path}.{key}[{i}]"), sub, out);
                }
            }
            Some(sub) => schema_nodes(format!("{path}.{key}"), sub, out),
            None => {}
        }
    }
}

fn committed_schema_nodes(crd: &serde_json::Value) -> Vec<(String, &serde_json::Value)> {
    let mut nodes = Vec::new();
    for version in crd["spec"]["versions"].as_array().unwrap() {
        let name = version["name"].as_str().unwrap();
        schema_nodes(name.to_owned(), &version["schema"]["openAPIV3Schema"], &mut nodes);
    }
    assert!(nodes.len() > 50, "the walk found only {} schema nodes", nodes.len());
    nodes
}

/// Helm (`unknown object type "nil"`) and kubeconform reject `null` among an enum's values; an
/// optional field says so with `nullable`.
#[test]
fn no_enum_lists_null() {
    let crd: serde_json::Value = serde_yaml::from_str(COMMITTED).unwrap();
    let nodes = committed_schema_nodes(&crd);
    let offenders: Vec<_> = nodes
        .iter()
        .filter(|(_, n)| n["enum"].as_array().is_some_and(|values| values.iter().any(|v| v.is_null())))
        .map(|(path, _)| path)
        .collect();
    assert!(offenders.is_empty(), "enums with null: {offenders:?}");
    let pull_policy =
        nodes.iter().find(|(p, _)| p == "v1alpha1.spec.image.pullPolicy").expect("pullPolicy in schema");
    assert_eq!(pull_policy.1["nullable"], json!(true));
    assert_eq!(pull_policy.1["enum"], json!(["Always", "IfNotPresent", "Never"]));
}

/// `kubectl explain` wraps descriptions itself; a line break inside a paragraph ends a line in the
/// middle of a sentence. Paragraph breaks (blank lines) stay.
#[test]
fn descriptions_have_one_line_per_paragraph() {
    let crd: serde_json::Value = serde_yaml::from_str(COMMITTED).unwrap();
    let nodes = committed_schema_nodes(&crd);
    let broken: Vec<_> = nodes
        .iter()
        .filter(|(_, n)| n["description"].as_str().is_some_and(|d| d.split("\n\n").any(|p| p.contains('\n'))))
        .map(|(path, _)| path)
        .collect();
    assert!(broken.is_empty(), "descriptions with a line break inside a paragraph: {broken:?}");
    let spec = nodes.iter().find(|(p, _)| p == "v1alpha1.spec").unwrap().1;
    assert!(spec["description"].as_str().unwrap().contains("synced into ConductorOne. The operator"));
}

fn connector(spec: serde_json::Value) -> BatonConnector {
    serde_json::from_value(json!({
        "apiVersion": "baton.conductorone.com/v1alpha1",
        "kind": "BatonConnector",
        "metadata": {"name": "x", "namespace": "ns"},
        "spec": spec,
    }))
    .unwrap()
}

fn cel_error(spec: serde_json::Value) -> Option<String> {
    BatonConnector::validate_cel(&connector(spec)).err().map(|e| e.to_string())
}

#[test]
fn valid_resources_pass_cel() {
    assert_eq!(cel_error(json!({"connector": "okta", "credentials": {"secretRef": {"name": "c1"}}})), None);
    assert_eq!(
        cel_error(json!({
            "connector": "okta",
            "credentials": {"managed": {}},
            "conductorOne": {"apiCredentialsSecretRef": {"name": "api"}, "appId": "a", "connectorId": "c"},
            "env": [{"name": "BATON_DOMAIN", "value": "acme.okta.com"}],
        })),
        None
    );
    assert_eq!(cel_error(oneshot(json!({}))), None);
    assert_eq!(
        cel_error(oneshot(
            json!({"output": {"persistentVolumeClaim": {"claimName": "uploads"}}, "timeZone": "Europe/Berlin",
            "conductorOne": {"apiCredentialsSecretRef": {"name": "api"}, "appId": "a", "connectorId": "c"}})
        )),
        None
    );
}

/// A valid OneShot spec, with `extra` merged over it.
fn oneshot(extra: serde_json::Value) -> serde_json::Value {
    let mut spec = json!({"connector": "okta", "mode": "OneShot", "schedule": "0 */6 * * *",
        "output": {"s3": {"bucket": "c1-uploads"}}});
    spec.as_object_mut().unwrap().extend(extra.as_object().cloned().unwrap_or_default());
    spec
}

#[test]
fn oneshot_rules_say_what_is_wrong() {
    let without = |field: &str| {
        let mut spec = oneshot(json!({}));
        spec.as_object_mut().unwrap().remove(field);
        spec
    };
    let cases = [
        (without("schedule"), "mode OneShot needs spec.schedule"),
        (without("output"), "mode OneShot needs spec.output"),
        (
            oneshot(json!({"credentials": {"managed": {}},
                "conductorOne": {"apiCredentialsSecretRef": {"name": "api"}, "appId": "a", "connectorId": "c"}})),
            "credentials.managed is refused in OneShot mode",
        ),
        (
            oneshot(json!({"credentials": {"secretRef": {"name": "c1"}}})),
            "credentials.secretRef is refused in OneShot mode",
        ),
        (oneshot(json!({"healthCheck": {"enabled": true}})), "healthCheck is refused in OneShot mode"),
        (
            oneshot(json!({"output": {"s3": {"bucket": "b"}, "persistentVolumeClaim": {"claimName": "c"}}})),
            "set exactly one of output.s3 or output.persistentVolumeClaim",
        ),
        (
            json!({"connector": "okta", "credentials": {"secretRef": {"name": "a"}}, "schedule": "@daily"}),
            "spec.schedule is only for mode OneShot",
        ),
        (
            json!({"connector": "okta", "credentials": {"secretRef": {"name": "a"}}, "output": {"s3": {"bucket": "b"}}}),
            "spec.output is only for mode OneShot",
        ),
    ];
    for (spec, expected) in cases {
        let err = cel_error(spec.clone()).unwrap_or_else(|| panic!("accepted {spec}"));
        assert!(err.contains(expected), "{spec}: got {err:?}, expected it to mention {expected:?}");
    }
}

#[test]
fn cel_refuses_bad_resources_with_readable_messages() {
    let cases = [
        (
            json!({"connector": "okta", "credentials": {}}),
            "exactly one of credentials.secretRef or credentials.managed",
        ),
        (
            json!({"connector": "okta", "credentials": {"secretRef": {"name": "a"}, "managed": {}}}),
            "exactly one of credentials.secretRef or credentials.managed",
        ),
        (
            json!({"connector": "okta", "credentials": {"managed": {}}}),
            "credentials.managed needs spec.conductorOne",
        ),
        (
            json!({"connector": "okta", "credentials": {"secretRef": {"name": "a"}}, "env": [{"name": "BATON_CLIENT_SECRET", "value": "x"}]}),
            "env may not set BATON_CLIENT_ID",
        ),
        (
            json!({"connector": "okta", "credentials": {"secretRef": {"name": "a"}}, "env": [{"name": "A", "value": "1"}, {"name": "A", "value": "2"}]}),
            "env has the same name twice",
        ),
    ];
    for (spec, expected) in cases {
        let err = cel_error(spec.clone()).unwrap_or_else(|| panic!("accepted {spec}"));
        assert!(err.contains(expected), "{spec}: got {err:?}, expected it to mention {expected:?}");
    }
}

#[test]
fn onboarding_one_ofs_say_what_is_wrong() {
    let with_c1 = |c1: serde_json::Value| {
        let mut c1 = c1;
        c1.as_object_mut().unwrap().insert("apiCredentialsSecretRef".into(), json!({"name": "api"}));
        json!({"connector": "okta", "credentials": {"managed": {}}, "conductorOne": c1})
    };
    for ok in [
        json!({"app": {"displayName": "Okta"}}),
        json!({"app": {"displayName": "Okta", "description": "HR"}, "connector": {"ownerUserIds": ["u1"]}}),
        json!({"appId": "a"}),
        json!({"appId": "a", "connector": {"displayName": "Okta prod", "catalogId": "cat"}}),
        json!({"appId": "a", "connectorId": "c"}),
    ] {
        assert_eq!(cel_error(with_c1(ok.clone())), None, "{ok}");
    }
    let cases = [
        (json!({}), "set exactly one of conductorOne.appId"),
        (json!({"appId": "a", "app": {"displayName": "Okta"}}), "set exactly one of conductorOne.appId"),
        (json!({"appId": "a", "connectorId": "c", "connector": {}}), "drop it when conductorOne.connectorId"),
        (
            json!({"app": {"displayName": "Okta"}, "connectorId": "c"}),
            "conductorOne.connectorId needs conductorOne.appId",
        ),
    ];
    for (c1, expected) in cases {
        let err = cel_error(with_c1(c1.clone())).unwrap_or_else(|| panic!("accepted {c1}"));
        assert!(err.contains(expected), "{c1}: got {err:?}, expected it to mention {expected:?}");
    }
}

#[test]
fn work_dir_size_limit_is_a_quantity_of_at_least_64mi() {
    let with = |limit: serde_json::Value| json!({"connector": "okta", "credentials": {"secretRef": {"name": "c1"}}, "workDir": {"sizeLimit": limit}});
    for ok in ["2Gi", "64Mi", "500M", "1.5Gi", "10Gi"] {
        assert_eq!(cel_error(with(json!(ok))), None, "{ok}");
    }
    assert_eq!(
        cel_error(json!({"connector": "okta", "credentials": {"secretRef": {"name": "c1"}}, "workDir": {}})),
        None
    );
    for bad in ["lots", "2 Gi", "1Mi", "2", "-5Gi"] {
        let err = cel_error(with(json!(bad))).unwrap_or_else(|| panic!("accepted sizeLimit {bad:?}"));
        assert!(err.contains("workDir.sizeLimit must be a quantity of at least 64Mi"), "{bad}: {err}");
    }
}

/// A string with a length bound: the API server estimates a CEL rule's cost from the longest value
/// the schema allows, and refuses to install a CRD whose rule could cost too much.
#[test]
fn work_dir_size_limit_schema_is_a_bounded_string_described_with_its_default() {
    let crd: serde_json::Value = serde_yaml::from_str(COMMITTED).unwrap();
    let nodes = committed_schema_nodes(&crd);
    let limit =
        nodes.iter().find(|(p, _)| p == "v1alpha1.spec.workDir.sizeLimit").expect("sizeLimit in schema").1;
    assert_eq!(limit["type"], "string");
    assert!(limit["maxLength"].as_u64().is_some_and(|n| n <= 64), "{limit}");
    let default = baton_operator::resources::deployment::DEFAULT_WORK_DIR_SIZE_LIMIT;
    let description = limit["description"].as_str().unwrap();
    assert!(description.contains(&format!("Defaults to `{default}`")), "{description}");
}

#[test]
fn config_names_are_checked_and_reserved_ones_refused() {
    let with = |config: serde_json::Value| {
        cel_error(
            json!({"connector": "okta", "credentials": {"secretRef": {"name": "c1"}}, "config": config}),
        )
    };
    assert_eq!(
        with(
            json!({"domain": {"value": "acme.okta.com"}, "api-token": {"secretKeyRef": {"name": "okta", "key": "t"}},
            "on_behalf_of_email": {"value": "a@b.c"}, "cache": {"value": true}, "orgs": {"value": ["a"]}})
        ),
        None
    );
    let err = with(json!({"client-secret": {"value": "x"}})).expect("refused");
    assert!(err.contains("spec.config may not set client-id, client-secret"), "{err}");
    let err = with(json!({"BATON_DOMAIN ": {"value": "x"}})).expect("refused");
    assert!(err.contains("spec.config names are the connector's field names"), "{err}");
}

/// `value` and `secretKeyRef` are exclusive by property count (CEL cannot see the untyped `value`).
#[test]
fn a_config_entry_holds_exactly_one_of_value_or_secret_key_ref() {
    let crd = serde_json::to_value(api::batonconnector_crd()).unwrap();
    let entry = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
        ["config"]["additionalProperties"];
    assert_eq!((entry["minProperties"].clone(), entry["maxProperties"].clone()), (json!(1), json!(1)));
    assert_eq!(entry["properties"]["value"]["x-kubernetes-preserve-unknown-fields"], json!(true));
    assert_eq!(entry["properties"]["secretKeyRef"]["required"], json!(["key", "name"]));
}
