//! Health of the tenant kinds (issue 17) as Argo CD and kstatus (Flux, `kubectl wait`) read it.
//! The statuses are the ones `decide::tenant_status::compute` writes, so a change there that breaks
//! either reading fails here. The Argo CD script runs in the same sandboxed Lua as
//! `argocd_lua.rs`'s.

use baton_operator::{
    api::TenantStatus,
    conductorone::ErrorKind,
    decide::tenant_status::{Auth, Seen, compute},
    resources::InputProblem,
};
use baton_test_support::kstatus::{self, KStatus};
use k8s_openapi::{apimachinery::pkg::apis::meta::v1::Time, jiff::Timestamp};
use mlua::Value as LuaValue;
use serde_json::{Value, json};

use super::argocd_lua::{CM_PATCH, argo_lua, read, to_json, to_lua};

const KINDS: [&str; 2] = ["ConductorOneTenant", "ClusterConductorOneTenant"];
const DIR: &str = "deploy/argocd/resource_customizations/baton.conductorone.com";

fn script(kind: &str) -> String {
    read(&format!("{DIR}/{kind}/health.lua"))
}

/// Argo CD's health of `obj` by the script of `kind`: (status, message).
fn health(kind: &str, obj: &Value) -> (String, String) {
    let lua = argo_lua();
    lua.globals().set("obj", to_lua(&lua, obj)).expect("set obj");
    let out: LuaValue = lua
        .load(script(kind))
        .set_name("health.lua")
        .eval()
        .unwrap_or_else(|e| panic!("{kind} health.lua failed (Argo CD would show Unknown): {e}"));
    let out = to_json(&out, Some(obj));
    let status = out["status"].as_str().expect("status").to_string();
    (status, out["message"].as_str().unwrap_or_default().to_string())
}

fn at() -> Time {
    Time(Timestamp::from_second(1_800_000_000).unwrap())
}

/// The status the operator writes for generation 2 of a tenant.
fn written(principal: Result<&str, InputProblem>, auth: Option<Auth>, deleting: bool) -> TenantStatus {
    let users = ["team-a/okta".to_string()];
    let (previous, now) = (TenantStatus::default(), at());
    compute(&Seen {
        generation: Some(2),
        principal: principal.map(String::from),
        auth,
        users: &users,
        last_error: None,
        rate_limited: false,
        deleting,
        previous: &previous,
        now: &now,
    })
}

fn tenant(kind: &str, generation: i64, status: Option<&TenantStatus>) -> Value {
    let mut obj = json!({
        "apiVersion": "baton.conductorone.com/v1alpha1",
        "kind": kind,
        "metadata": {"name": "prod", "generation": generation, "finalizers": ["baton.conductorone.com/tenant-in-use"]},
        "spec": {"apiCredentialsSecretRef": {"name": "conductorone-prod"}},
    });
    if kind == "ConductorOneTenant" {
        obj["metadata"]["namespace"] = json!("team-a");
    }
    if let Some(s) = status {
        obj["status"] = serde_json::to_value(s).unwrap();
    }
    obj
}

fn failed(kind: ErrorKind) -> Option<Auth> {
    Some(Auth::Failed { kind, message: "x".into() })
}

/// Each state of a tenant: what the operator writes, and what Argo CD and kstatus make of it.
fn cases() -> Vec<(&'static str, Value, &'static str, KStatus)> {
    let host = || Ok("acme.conductor.one");
    let missing = || InputProblem::SecretNotFound { namespace: "baton-system".into(), name: "c1".into() };
    let key = || InputProblem::KeyMissing { name: "c1".into(), key: "clientSecret" };
    let ready = written(host(), Some(Auth::Token), false);
    let mut deleting =
        tenant("ClusterConductorOneTenant", 2, Some(&written(host(), Some(Auth::Token), true)));
    deleting["metadata"]["deletionTimestamp"] = json!("2026-12-01T00:00:00Z");
    let k = "ClusterConductorOneTenant";
    // A new tenant, as the API server returns it: the CRD defaults its status (checked below).
    let mut new = tenant(k, 1, None);
    new["status"] = json!({"observedGeneration": -1});
    vec![
        ("no status yet", new, "Progressing", KStatus::InProgress),
        ("ready", tenant(k, 2, Some(&ready)), "Healthy", KStatus::Current),
        ("ready for an older generation", tenant(k, 3, Some(&ready)), "Progressing", KStatus::InProgress),
        (
            "credentials rejected",
            tenant(k, 2, Some(&written(host(), failed(ErrorKind::Unauthorized), false))),
            "Degraded",
            KStatus::Failed,
        ),
        (
            "Secret not found",
            tenant(k, 2, Some(&written(Err(missing()), None, false))),
            "Degraded",
            KStatus::InProgress,
        ),
        (
            "Secret key missing",
            tenant(k, 2, Some(&written(Err(key()), None, false))),
            "Degraded",
            KStatus::Failed,
        ),
        (
            "unreachable, retried",
            tenant(k, 2, Some(&written(host(), failed(ErrorKind::Transport), false))),
            "Progressing",
            KStatus::InProgress,
        ),
        (
            "rate limited, retried",
            tenant(k, 2, Some(&written(host(), failed(ErrorKind::RateLimited), false))),
            "Progressing",
            KStatus::InProgress,
        ),
        ("deleted while in use", deleting, "Progressing", KStatus::Terminating),
    ]
}

#[test]
fn argo_cd_health_of_each_tenant_state() {
    for kind in KINDS {
        for (case, mut obj, want, _) in cases() {
            obj["kind"] = json!(kind);
            let (status, message) = health(kind, &obj);
            assert_eq!(status, want, "{kind}, {case}: {message}");
            assert!(!message.is_empty(), "{kind}, {case}: no message");
        }
    }
}

#[test]
fn argo_cd_messages_say_why() {
    let k = "ClusterConductorOneTenant";
    let cases = cases();
    let message = |case: &str| health(k, &cases.iter().find(|c| c.0 == case).unwrap().1).1;
    assert_eq!(message("no status yet"), "Waiting for the operator to check generation 1");
    assert!(message("ready").contains("issued a token"), "{}", message("ready"));
    assert!(message("credentials rejected").contains("refused the principal"));
    let deleting = message("deleted while in use");
    assert!(deleting.starts_with("Pending deletion: deletion waits until no BatonConnector"), "{deleting}");
    assert!(deleting.ends_with("team-a/okta"), "{deleting}");
}

#[test]
fn malformed_tenants_do_not_break_the_script() {
    for obj in [
        json!({}),
        json!({"metadata": "x", "status": 3}),
        json!({"metadata": {"generation": "2"}, "status": {"observedGeneration": "2", "conditions": [3, {"type": "Ready"}]}}),
        json!({"metadata": {"deletionTimestamp": "2026-01-01T00:00:00Z"}, "status": {"conditions": "x"}}),
    ] {
        let (status, _) = health("ConductorOneTenant", &obj);
        assert_eq!(status, "Progressing", "{obj}");
    }
}

/// kstatus reads a tenant as it reads a BatonConnector: `observedGeneration` current and `Ready`
/// True is Current; what only a person can fix (a rejected principal, a broken Secret) is also
/// `Stalled`, so Failed; anything else InProgress (a missing Secret may yet be created); a deletion
/// Terminating.
#[test]
fn kstatus_reads_tenant_status_by_its_conventions() {
    for (case, obj, _, want) in cases() {
        assert_eq!(kstatus::compute(&obj), want, "{case}: {obj:#}");
    }
    // The conventions themselves: observedGeneration, and a Ready condition carrying the generation
    // it was computed for, reason and message, as metav1.Condition.
    let status = serde_json::to_value(written(Ok("acme.conductor.one"), Some(Auth::Token), false)).unwrap();
    assert_eq!(status["observedGeneration"], 2);
    let ready = status["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "Ready").unwrap();
    for field in ["status", "reason", "message", "lastTransitionTime"] {
        assert!(ready[field].is_string(), "Ready.{field}: {ready}");
    }
    assert_eq!(ready["observedGeneration"], 2);
}

/// Without the default, a tenant the operator has not checked yet would read Current to kstatus.
#[test]
fn a_new_tenant_reads_in_progress_until_the_operator_checks_it() {
    for crd in baton_operator::api::crds() {
        let crd = serde_json::to_value(&crd).unwrap();
        let schema = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
        assert_eq!(
            schema["properties"]["status"]["default"],
            json!({"observedGeneration": -1}),
            "{}",
            crd["spec"]["names"]["kind"]
        );
    }
    let mut obj = tenant("ConductorOneTenant", 1, None);
    assert_eq!(kstatus::compute(&obj), KStatus::Current, "what the default prevents");
    assert_eq!(health("ConductorOneTenant", &obj).0, "Progressing");
    obj["status"] = json!({"observedGeneration": -1});
    assert_eq!(kstatus::compute(&obj), KStatus::InProgress);
}

#[test]
fn argocd_cm_patch_carries_the_tenant_scripts() {
    let cm: serde_yaml::Value = serde_yaml::from_str(&read(CM_PATCH)).expect("YAML");
    let data = cm["data"].as_mapping().expect("data");
    let keys: Vec<&str> = data.keys().filter_map(serde_yaml::Value::as_str).collect();
    let tenant_keys: Vec<String> =
        KINDS.iter().map(|k| format!("resource.customizations.health.baton.conductorone.com_{k}")).collect();
    assert_eq!(keys[2..], tenant_keys.iter().map(String::as_str).collect::<Vec<_>>()[..]);
    for (kind, key) in KINDS.iter().zip(&tenant_keys) {
        let in_yaml = data[key.as_str()].as_str().unwrap_or_else(|| panic!("{CM_PATCH}: no {key}"));
        assert!(
            in_yaml == script(kind),
            "{CM_PATCH}: {key} differs from {DIR}/{kind}/health.lua; copy the file"
        );
    }
    assert_eq!(script(KINDS[0]), script(KINDS[1]), "the two kinds share one script");
}
