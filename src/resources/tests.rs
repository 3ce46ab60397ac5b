//! Tests of the Deployment builder and the plan as a whole.

use k8s_openapi::api::core::v1::PodSpec;

use super::deployment::*;
use super::inputs::{CLIENT_ID_KEY, CLIENT_SECRET_KEY};
use super::testing::{connector, secret_data};
use super::*;
use crate::api::{EnvEntry, HealthCheckSpec, RESTART_REQUESTED_AT, SecretRef, WorkDirSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

fn secrets() -> SecretData {
    let mut s = SecretData::default();
    s.insert(
        "c1",
        secret_data(&[(CLIENT_ID_KEY, "id@acme.conductor.one/ccc"), (CLIENT_SECRET_KEY, "s3cr3t")]),
    );
    s.insert("app", secret_data(&[("BATON_API_TOKEN", "tok")]));
    s
}

fn pod(bc: &BatonConnector) -> PodSpec {
    plan(bc, &secrets(), "c1").unwrap().deployment.spec.template.spec.unwrap()
}

fn env_value(spec: &PodSpec, name: &str) -> Option<String> {
    spec.containers[0].env.as_ref()?.iter().find(|e| e.name == name)?.value.clone()
}

#[test]
fn pod_meets_restricted_pod_security() {
    let spec = pod(&connector("okta", "okta"));
    let psc = spec.security_context.as_ref().unwrap();
    assert_eq!(psc.run_as_non_root, Some(true));
    assert_eq!(psc.run_as_user, Some(65532));
    assert_eq!(psc.seccomp_profile.as_ref().unwrap().type_, "RuntimeDefault");
    let c = &spec.containers[0];
    let sc = c.security_context.as_ref().unwrap();
    assert_eq!(sc.allow_privilege_escalation, Some(false));
    assert_eq!(sc.read_only_root_filesystem, Some(true));
    assert_eq!(sc.capabilities.as_ref().unwrap().drop.as_deref(), Some(&["ALL".to_string()][..]));
    let res = c.resources.as_ref().unwrap();
    assert!(res.requests.as_ref().unwrap().contains_key("memory"));
    assert!(res.limits.as_ref().unwrap().contains_key("memory"));
    assert_eq!(spec.automount_service_account_token, Some(false));
}

#[test]
fn env_carries_host_id_flags_and_credentials_by_reference() {
    let mut bc = connector("okta-prod", "okta");
    bc.spec.provisioning = true;
    bc.spec.env = vec![EnvEntry { name: "BATON_DOMAIN".into(), value: "acme.okta.com".into() }];
    let spec = pod(&bc);
    assert_eq!(env_value(&spec, "BATON_HOST_ID").as_deref(), Some("okta-prod"));
    assert_eq!(env_value(&spec, "BATON_PROVISIONING").as_deref(), Some("true"));
    assert_eq!(env_value(&spec, "BATON_TICKETING").as_deref(), Some("false"));
    assert_eq!(env_value(&spec, "BATON_DOMAIN").as_deref(), Some("acme.okta.com"));
    let env = spec.containers[0].env.clone().unwrap();
    let id = env.iter().find(|e| e.name == CLIENT_ID_KEY).unwrap();
    assert!(id.value.is_none(), "credentials are referenced, never inlined");
    let key_ref = id.value_from.as_ref().unwrap().secret_key_ref.as_ref().unwrap();
    assert_eq!((key_ref.name.as_str(), key_ref.key.as_str()), ("c1", CLIENT_ID_KEY));
}

#[test]
fn secret_refs_become_env_from() {
    let mut bc = connector("okta", "okta");
    bc.spec.secret_refs = vec![SecretRef { name: "app".into() }];
    let spec = pod(&bc);
    let from = spec.containers[0].env_from.as_ref().unwrap();
    assert_eq!(from[0].secret_ref.as_ref().unwrap().name, "app");
}

#[test]
fn health_check_adds_probes_and_binds_all_interfaces() {
    let mut bc = connector("okta", "okta");
    assert!(pod(&bc).containers[0].readiness_probe.is_none());
    bc.spec.health_check = Some(HealthCheckSpec { enabled: true, port: None });
    let spec = pod(&bc);
    let c = &spec.containers[0];
    assert_eq!(
        c.readiness_probe.as_ref().unwrap().http_get.as_ref().unwrap().path.as_deref(),
        Some("/ready")
    );
    assert_eq!(c.liveness_probe.as_ref().unwrap().http_get.as_ref().unwrap().path.as_deref(), Some("/live"));
    assert!(c.startup_probe.is_some());
    assert_eq!(env_value(&spec, "BATON_HEALTH_CHECK_BIND_ADDRESS").as_deref(), Some("0.0.0.0"));
    assert_eq!(env_value(&spec, "BATON_HEALTH_CHECK_PORT").as_deref(), Some("8081"));
}

#[test]
fn deployment_is_owned_labelled_and_selects_its_instance_only() {
    let bc = connector("okta-a", "okta");
    let d = plan(&bc, &secrets(), "c1").unwrap().deployment;
    let owner = &d.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(owner.controller, Some(true));
    assert_eq!(owner.kind, "BatonConnector");
    assert_eq!(d.metadata.name.as_deref(), Some("okta-a"));
    assert_eq!(d.metadata.labels.as_ref().unwrap()["app"], "baton-okta");
    let spec = d.spec;
    assert_eq!(spec.replicas, Some(1));
    assert_eq!(spec.selector.match_labels.unwrap()[labels::INSTANCE_LABEL], "okta-a");
}

#[test]
fn same_inputs_give_identical_deployments() {
    let bc = connector("okta", "okta");
    let a = plan(&bc, &secrets(), "c1").unwrap().deployment;
    let b = plan(&bc, &secrets(), "c1").unwrap().deployment;
    assert_eq!(compare::desired_hash(&a), compare::desired_hash(&b));
}

#[test]
fn secret_change_changes_only_the_config_hash() {
    let mut bc = connector("okta", "okta");
    bc.spec.secret_refs = vec![SecretRef { name: "app".into() }];
    let before = plan(&bc, &secrets(), "c1").unwrap();
    let mut changed = secrets();
    changed.insert("app", secret_data(&[("BATON_API_TOKEN", "rotated")]));
    let after = plan(&bc, &changed, "c1").unwrap();
    assert_ne!(before.config_hash, after.config_hash);
    let annotations = |p: &Plan| p.deployment.spec.template.clone().metadata.unwrap().annotations.unwrap();
    assert_eq!(annotations(&after)[CONFIG_HASH_ANNOTATION], after.config_hash);
    let mut a = serde_json::to_value(&before.deployment).unwrap();
    let mut b = serde_json::to_value(&after.deployment).unwrap();
    // The template's name follows: the new pods are the new template's.
    let name = |v: &serde_json::Value| {
        v["spec"]["template"]["metadata"]["annotations"][TEMPLATE_HASH_ANNOTATION].clone()
    };
    assert_ne!(name(&a), name(&b));
    for v in [&mut a, &mut b] {
        v["spec"]["template"]["metadata"]["annotations"][CONFIG_HASH_ANNOTATION] = "x".into();
        v["spec"]["template"]["metadata"]["annotations"][TEMPLATE_HASH_ANNOTATION] = "x".into();
    }
    assert_eq!(a, b);
}

#[test]
fn restart_request_lands_in_the_pod_template() {
    let mut bc = connector("okta", "okta");
    bc.metadata.annotations =
        Some([(RESTART_REQUESTED_AT.to_string(), "2026-11-22T10:00:00Z".to_string())].into());
    let d = plan(&bc, &secrets(), "c1").unwrap().deployment;
    let ann = d.spec.template.metadata.unwrap().annotations.unwrap();
    assert_eq!(ann[RESTARTED_AT_ANNOTATION], "2026-11-22T10:00:00Z");
}

#[test]
fn pod_knobs_pass_through() {
    let mut bc = connector("okta", "okta");
    bc.spec.node_selector.insert("pool".into(), "infra".into());
    bc.spec.service_account_name = Some("baton-kubernetes".into());
    bc.spec.priority_class_name = Some("high".into());
    bc.spec.pod_annotations.insert("team".into(), "iam".into());
    let d = plan(&bc, &secrets(), "c1").unwrap().deployment;
    let t = d.spec.template;
    let spec = t.spec.unwrap();
    assert_eq!(spec.node_selector.unwrap()["pool"], "infra");
    assert_eq!(spec.service_account_name.as_deref(), Some("baton-kubernetes"));
    assert_eq!(spec.automount_service_account_token, Some(true));
    assert_eq!(spec.priority_class_name.as_deref(), Some("high"));
    assert_eq!(t.metadata.unwrap().annotations.unwrap()["team"], "iam");
}

#[test]
fn secret_values_never_reach_the_deployment() {
    let mut bc = connector("okta", "okta");
    bc.spec.secret_refs = vec![SecretRef { name: "app".into() }];
    let json = serde_json::to_string(&plan(&bc, &secrets(), "c1").unwrap().deployment).unwrap();
    assert!(!json.contains("s3cr3t"));
    assert!(!json.contains("\"tok\""));
}

/// Where each mount of the first container points: (path, volume, subPath), and the volume's
/// `emptyDir` size limit.
fn mounts(spec: &PodSpec) -> Vec<(String, String, Option<String>, Option<String>)> {
    let volumes = spec.volumes.clone().unwrap_or_default();
    spec.containers[0]
        .volume_mounts
        .iter()
        .flatten()
        .map(|m| {
            let volume =
                volumes.iter().find(|v| v.name == m.name).unwrap_or_else(|| panic!("no volume {}", m.name));
            let limit = volume.empty_dir.as_ref().and_then(|e| e.size_limit.clone()).map(|q| q.0);
            (m.mount_path.clone(), m.name.clone(), m.sub_path.clone(), limit)
        })
        .collect()
}

fn with_size_limit(limit: Option<&str>) -> BatonConnector {
    let mut bc = connector("okta", "okta");
    bc.spec.work_dir = Some(WorkDirSpec { size_limit: limit.map(|l| Quantity(l.into())) });
    bc
}

#[test]
fn working_dir_and_tmp_are_one_capped_volume_under_a_read_only_root() {
    let spec = pod(&connector("okta", "okta"));
    let c = &spec.containers[0];
    assert_eq!(c.working_dir.as_deref(), Some("/work"));
    assert_eq!(c.security_context.as_ref().unwrap().read_only_root_filesystem, Some(true));
    let work = |path: &str, sub: Option<&str>| {
        (path.to_string(), "work".to_string(), sub.map(str::to_string), Some("2Gi".to_string()))
    };
    assert_eq!(mounts(&spec), [work("/work", None), work("/tmp", Some("tmp"))]);
    assert_eq!(spec.volumes.as_ref().unwrap().len(), 1, "no volume without a cap");
    let empty_dir = spec.volumes.as_ref().unwrap()[0].empty_dir.clone().unwrap();
    assert_eq!(empty_dir.medium, None, "on disk: a memory medium would count against the memory limit");
    assert_eq!(env_value(&spec, "TMPDIR").as_deref(), Some("/tmp"));
}

#[test]
fn the_size_limit_comes_from_the_spec() {
    let spec = pod(&with_size_limit(Some("10Gi")));
    assert!(mounts(&spec).iter().all(|m| m.3.as_deref() == Some("10Gi")), "{:?}", mounts(&spec));
}

/// What decides a rollout is the desired Deployment's hash: a spec that says what the default says
/// must give the same object, and only a real change may roll the pod.
#[test]
fn spelling_out_the_default_size_rolls_nothing_and_a_new_size_rolls() {
    let hash = |bc: &BatonConnector| compare::desired_hash(&plan(bc, &secrets(), "c1").unwrap().deployment);
    let default = hash(&connector("okta", "okta"));
    assert_eq!(hash(&with_size_limit(None)), default, "workDir: {{}}");
    assert_eq!(hash(&with_size_limit(Some(DEFAULT_WORK_DIR_SIZE_LIMIT))), default);
    assert_ne!(hash(&with_size_limit(Some("4Gi"))), default);
}

/// The API server stores quantities in canonical form; the drift check must not see a hand edit in
/// that, or every reconcile would apply again.
#[test]
fn a_canonicalised_size_limit_is_not_drift() {
    let d = plan(&with_size_limit(Some("2048Mi")), &secrets(), "c1").unwrap().deployment;
    let desired = serde_json::to_value(&d).unwrap();
    let mut live = desired.clone();
    live["spec"]["template"]["spec"]["volumes"][0]["emptyDir"]["sizeLimit"] = "2Gi".into();
    assert!(compare::contains(&live, &desired));
    live["spec"]["template"]["spec"]["volumes"][0]["emptyDir"]["sizeLimit"] = "1Gi".into();
    assert!(!compare::contains(&live, &desired), "a hand edit of the cap is drift");
}

#[test]
fn tmpdir_set_in_env_wins_without_a_second_entry() {
    let mut bc = connector("okta", "okta");
    bc.spec.env = vec![EnvEntry { name: "TMPDIR".into(), value: "/work/scratch".into() }];
    let spec = pod(&bc);
    let tmpdirs: Vec<_> = spec.containers[0]
        .env
        .iter()
        .flatten()
        .filter(|e| e.name == "TMPDIR")
        .map(|e| e.value.clone())
        .collect();
    assert_eq!(tmpdirs, [Some("/work/scratch".to_string())]);
}

#[test]
fn config_becomes_baton_variables_before_env_and_secret_keys_stay_references() {
    use crate::api::ConfigValue;
    let mut bc = connector("okta", "okta");
    bc.spec.config.insert("domain".into(), ConfigValue::plain("acme.okta.com"));
    bc.spec.config.insert("sync-inactive-apps".into(), ConfigValue::plain(false));
    bc.spec.config.insert("filter-email-domains".into(), ConfigValue::plain(vec!["a.com", "b.com"]));
    bc.spec.config.insert("api-token".into(), ConfigValue::secret("app", "BATON_API_TOKEN"));
    bc.spec.env = vec![EnvEntry { name: "BATON_LOG_LEVEL".into(), value: "debug".into() }];
    let spec = pod(&bc);
    assert_eq!(env_value(&spec, "BATON_DOMAIN").as_deref(), Some("acme.okta.com"));
    assert_eq!(env_value(&spec, "BATON_SYNC_INACTIVE_APPS").as_deref(), Some("false"));
    assert_eq!(env_value(&spec, "BATON_FILTER_EMAIL_DOMAINS").as_deref(), Some("a.com,b.com"));
    let env = spec.containers[0].env.clone().unwrap();
    let token = env.iter().find(|e| e.name == "BATON_API_TOKEN").unwrap();
    assert!(token.value.is_none());
    assert_eq!(token.value_from.as_ref().unwrap().secret_key_ref.as_ref().unwrap().name, "app");
    let names: Vec<&str> = env.iter().map(|e| e.name.as_str()).collect();
    assert!(
        names.iter().position(|n| *n == "BATON_DOMAIN") < names.iter().position(|n| *n == "BATON_LOG_LEVEL")
    );
    let before = plan(&bc, &secrets(), "c1").unwrap().config_hash;
    let mut changed = secrets();
    changed.insert("app", secret_data(&[("BATON_API_TOKEN", "tok2")]));
    assert_ne!(
        before,
        plan(&bc, &changed, "c1").unwrap().config_hash,
        "a referenced key's change rolls the pod"
    );
}
