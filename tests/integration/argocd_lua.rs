//! The Argo CD health check and actions shipped in `deploy/argocd/`, run in a real Lua 5.1 set up
//! the way Argo CD sets up its own interpreter, against sample `BatonConnector`s.

use std::{
    collections::BTreeMap,
    path::PathBuf,
    time::{SystemTime, UNIX_EPOCH},
};

use mlua::{Lua, LuaOptions, StdLib, Table, Value as LuaValue};
use serde_json::{Value, json};

const CUSTOMIZATION: &str = "deploy/argocd/resource_customizations/baton.conductorone.com/BatonConnector";
pub(crate) const CM_PATCH: &str = "deploy/argocd/argocd-cm-patch.yaml";
const HEALTH_KEY: &str = "resource.customizations.health.baton.conductorone.com_BatonConnector";
const ACTIONS_KEY: &str = "resource.customizations.actions.baton.conductorone.com_BatonConnector";
const ACTIONS: [&str; 5] = ["rotate", "restart", "suspend", "resume", "sync"];
const ROTATE_ANNOTATION: &str = "baton.conductorone.com/rotate-requested-at";
const RESTART_ANNOTATION: &str = "baton.conductorone.com/restart-requested-at";
const SYNC_ANNOTATION: &str = "baton.conductorone.com/sync-requested-at";
const HARD_REASONS: [&str; 14] = [
    "SecretKeyMissing",
    "SecretKeyEmpty",
    "OwnershipConflict",
    "InvalidSpec",
    "ProgressDeadlineExceeded",
    "Unauthorized",
    "Forbidden",
    "InvalidCredentials",
    "SyncFailed",
    "SyncStale",
    "ImagePullBackOff",
    "CreateContainerConfigError",
    "CrashLoopBackOff",
    "OOMKilled",
];

pub(crate) fn read(relative: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn script(name: &str) -> String {
    read(&format!("{CUSTOMIZATION}/{name}"))
}

/// Argo CD runs argocd-cm scripts with only the base, package and table libraries, plus an `os`
/// holding just `date` and `time` that is reachable through `require("os")` alone (argo-cd
/// `util/lua/lua.go` and `oslib_safe.go`). Matching that here makes a script that leans on
/// `string`, `math` or a global `os` fail in this test rather than in a cluster.
pub(crate) fn argo_lua() -> Lua {
    let lua = Lua::new_with(StdLib::TABLE | StdLib::PACKAGE | StdLib::OS, LuaOptions::default())
        .expect("Lua state");
    lua.load(
        r#"
        local safe = { date = os.date, time = os.time }
        os = nil
        package.loaded.os = nil
        package.preload.os = function() return safe end
        "#,
    )
    .exec()
    .expect("sandbox setup");
    lua
}

pub(crate) fn to_lua(lua: &Lua, value: &Value) -> LuaValue {
    match value {
        Value::Null => LuaValue::Nil,
        Value::Bool(b) => LuaValue::Boolean(*b),
        // gopher-lua has float64 numbers only; Argo CD hands integers over as such.
        Value::Number(n) => LuaValue::Number(n.as_f64().expect("finite number")),
        Value::String(s) => LuaValue::String(lua.create_string(s).expect("Lua string")),
        Value::Array(items) => {
            let table = lua.create_table().expect("Lua table");
            for (i, item) in items.iter().enumerate() {
                table.raw_set(i + 1, to_lua(lua, item)).expect("set item");
            }
            LuaValue::Table(table)
        }
        Value::Object(map) => {
            let table = lua.create_table().expect("Lua table");
            for (key, item) in map {
                table.raw_set(key.as_str(), to_lua(lua, item)).expect("set field");
            }
            LuaValue::Table(table)
        }
    }
}

/// `before` is the same place in the object the script was given: Lua cannot tell an empty list from
/// an empty map, and Argo CD keeps whichever the input had (`cleanReturnedObj`).
pub(crate) fn to_json(value: &LuaValue, before: Option<&Value>) -> Value {
    match value {
        LuaValue::Nil => Value::Null,
        LuaValue::Boolean(b) => Value::Bool(*b),
        LuaValue::Integer(i) => json!(i),
        LuaValue::Number(n) if n.fract() == 0.0 && n.abs() < 9e15 => json!(*n as i64),
        LuaValue::Number(n) => json!(n),
        LuaValue::String(s) => Value::String(s.to_str().expect("UTF-8").to_string()),
        LuaValue::Table(table) => table_to_json(table, before),
        other => panic!("the script returned a {} inside its result", other.type_name()),
    }
}

fn table_to_json(table: &Table, before: Option<&Value>) -> Value {
    let pairs: Vec<(LuaValue, LuaValue)> =
        table.pairs::<LuaValue, LuaValue>().collect::<mlua::Result<_>>().expect("table pairs");
    if pairs.is_empty() {
        return match before {
            Some(Value::Object(_)) => json!({}),
            _ => json!([]),
        };
    }
    if table.raw_len() == pairs.len() {
        let before = before.and_then(Value::as_array);
        let items = (1..=pairs.len())
            .map(|i| {
                let item: LuaValue = table.raw_get(i).expect("list item");
                to_json(&item, before.and_then(|b| b.get(i - 1)))
            })
            .collect();
        return Value::Array(items);
    }
    let before = before.and_then(Value::as_object);
    let map = pairs
        .iter()
        .map(|(key, item)| {
            let LuaValue::String(key) = key else {
                panic!("a table mixes list items and {} keys", key.type_name());
            };
            let key = key.to_str().expect("UTF-8 key").to_string();
            let item = to_json(item, before.and_then(|b| b.get(&key)));
            (key, item)
        })
        .collect();
    Value::Object(map)
}

/// Runs one shipped script with `obj` set, as Argo CD does, and returns what it returned.
fn run(name: &str, obj: &Value) -> Value {
    let lua = argo_lua();
    lua.globals().set("obj", to_lua(&lua, obj)).expect("set obj");
    let out: LuaValue = lua
        .load(script(name))
        .set_name(name)
        .eval()
        .unwrap_or_else(|e| panic!("{name} failed (Argo CD would show Unknown): {e}"));
    assert!(matches!(out, LuaValue::Table(_)), "{name} must return a table, not {}", out.type_name());
    to_json(&out, Some(obj))
}

fn health(obj: &Value) -> (String, String) {
    let out = run("health.lua", obj);
    let status = out["status"].as_str().expect("status").to_string();
    assert!(
        ["Healthy", "Progressing", "Degraded", "Suspended"].contains(&status.as_str()),
        "unexpected health status {status:?}"
    );
    let message = out["message"].as_str().unwrap_or_default().to_string();
    (status, message)
}

fn assert_health(obj: &Value, status: &str, message: &str) {
    assert_eq!(health(obj), (status.to_string(), message.to_string()), "object: {obj:#}");
}

/// Enabled or not, per action, read the way Argo CD reads the discovery result (`isActionDisabled`).
fn discovery(obj: &Value) -> BTreeMap<String, bool> {
    let Value::Object(actions) = run("actions/discovery.lua", obj) else {
        panic!("discovery must return a map of actions");
    };
    actions
        .into_iter()
        .map(|(name, action)| {
            let disabled = action["disabled"].as_bool().unwrap_or(false);
            (name, !disabled)
        })
        .collect()
}

fn action(name: &str, obj: &Value) -> Value {
    run(&format!("actions/{name}/action.lua"), obj)
}

fn condition(type_: &str, status: &str, reason: &str, message: &str) -> Value {
    json!({
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": "2026-01-02T03:04:05Z",
        "observedGeneration": 3,
    })
}

/// A connector the operator has seen at generation 3 and found running.
fn connector() -> Value {
    json!({
        "apiVersion": "baton.conductorone.com/v1alpha1",
        "kind": "BatonConnector",
        "metadata": {
            "name": "okta",
            "namespace": "identity",
            "uid": "0b6f5b8e-1d2c-4c1e-9a53-3b7f0d1f2a10",
            "resourceVersion": "48213",
            "generation": 3,
            "creationTimestamp": "2026-01-01T00:00:00Z",
            "labels": { "team": "identity" },
            "annotations": { "example.com/owner": "iam" },
            "finalizers": ["baton.conductorone.com/revoke-credentials"],
        },
        "spec": {
            "connector": "okta",
            "mode": "Service",
            "env": [{ "name": "BATON_DOMAIN", "value": "example.okta.com" }],
            "secretRefs": [{ "name": "okta-api-token" }],
            "credentials": { "managed": { "rotation": { "interval": "720h", "gracePeriod": "10m" } } },
            "conductorOne": {
                "apiCredentialsSecretRef": { "name": "c1-api" },
                "appId": "app-1",
                "connectorId": "conn-1",
            },
            "provisioning": false,
            "ticketing": false,
            "tolerations": [],
            "suspend": false,
            "deletionPolicy": "Revoke",
        },
        "status": {
            "observedGeneration": 3,
            "handledRequests": {},
            "conditions": [
                condition("Ready", "True", "Available", "the connector is running"),
                condition("Reconciling", "False", "Idle", ""),
                condition("Stalled", "False", "NotStalled", ""),
                condition("WorkloadAvailable", "True", "Available", "1 of 1 pods available"),
            ],
        },
    })
}

fn with_conditions(conditions: Vec<Value>) -> Value {
    let mut obj = connector();
    obj["status"]["conditions"] = Value::Array(conditions);
    obj
}

/// Ready=False for `reason`, with Reconciling and Stalled both False, as a detail the health check
/// has to classify on its own.
fn not_ready(reason: &str, message: &str) -> Value {
    with_conditions(vec![
        condition("Ready", "False", reason, message),
        condition("Reconciling", "False", "Idle", ""),
        condition("Stalled", "False", "NotStalled", ""),
    ])
}

#[test]
fn sandbox_matches_argo_cd() {
    let lua = argo_lua();
    let (string, math, os, date): (bool, bool, bool, bool) = lua
        .load(
            r#"return string == nil, math == nil, os == nil,
                      type(require("os").date) == "function""#,
        )
        .eval()
        .unwrap();
    assert!(string && math && os && date);
}

#[test]
fn healthy_when_ready() {
    assert_health(&connector(), "Healthy", "the connector is running");
}

#[test]
fn healthy_message_falls_back_to_the_reason() {
    let obj = with_conditions(vec![condition("Ready", "True", "Available", "")]);
    assert_health(&obj, "Healthy", "Available");
}

#[test]
fn deleting_is_progressing_and_names_the_finalizers() {
    let mut obj = with_conditions(vec![
        condition("Ready", "False", "InvalidSpec", "bad"),
        condition("Stalled", "True", "InvalidSpec", "bad"),
    ]);
    obj["metadata"]["deletionTimestamp"] = json!("2026-02-01T00:00:00Z");
    assert_health(
        &obj,
        "Progressing",
        "Pending deletion; blocked by finalizers: baton.conductorone.com/revoke-credentials",
    );

    obj["metadata"]["finalizers"] = json!([]);
    assert_health(&obj, "Progressing", "Pending deletion");
    obj["metadata"].as_object_mut().unwrap().remove("finalizers");
    assert_health(&obj, "Progressing", "Pending deletion");
}

#[test]
fn suspended_wins_over_status() {
    let mut obj = connector();
    obj["spec"]["suspend"] = json!(true);
    obj["metadata"]["generation"] = json!(4);
    assert_health(&obj, "Suspended", "Suspended: the operator changes nothing until spec.suspend is false");

    obj["status"]["observedGeneration"] = json!(4);
    obj["status"]["conditions"] = json!([
        condition("Ready", "True", "Suspended", "reconciliation is suspended"),
        condition("Stalled", "True", "InvalidSpec", "bad"),
        condition("Suspended", "True", "Suspended", "suspended since Tuesday"),
    ]);
    assert_health(&obj, "Suspended", "suspended since Tuesday");

    obj.as_object_mut().unwrap().remove("status");
    assert_health(&obj, "Suspended", "Suspended: the operator changes nothing until spec.suspend is false");
}

#[test]
fn suspend_false_or_absent_is_not_suspended() {
    let mut obj = connector();
    obj["spec"].as_object_mut().unwrap().remove("suspend");
    assert_health(&obj, "Healthy", "the connector is running");
    obj["spec"]["suspend"] = Value::Null;
    assert_health(&obj, "Healthy", "the connector is running");
}

#[test]
fn no_status_waits_for_the_operator() {
    let mut obj = connector();
    obj.as_object_mut().unwrap().remove("status");
    assert_health(&obj, "Progressing", "Waiting for the operator to observe generation 3");
    obj["status"] = Value::Null;
    assert_health(&obj, "Progressing", "Waiting for the operator to observe generation 3");
}

#[test]
fn schema_default_observed_generation_waits_for_the_operator() {
    let mut obj = connector();
    obj["metadata"]["generation"] = json!(1);
    obj["status"] = json!({ "observedGeneration": -1 });
    assert_health(&obj, "Progressing", "Waiting for the operator to observe generation 1");
}

#[test]
fn stale_generation_hides_old_conditions() {
    let mut obj = connector();
    obj["metadata"]["generation"] = json!(4);
    assert_health(&obj, "Progressing", "Waiting for the operator to observe generation 4");

    // Stalled from an older spec may be fixed by the newer one.
    let mut obj = with_conditions(vec![condition("Stalled", "True", "InvalidSpec", "bad")]);
    obj["metadata"]["generation"] = json!(4);
    assert_health(&obj, "Progressing", "Waiting for the operator to observe generation 4");
}

#[test]
fn status_without_observed_generation_waits_for_the_operator() {
    let mut obj = connector();
    obj["status"].as_object_mut().unwrap().remove("observedGeneration");
    assert_health(&obj, "Progressing", "Waiting for the operator to observe generation 3");
}

#[test]
fn generations_given_as_strings_still_compare() {
    let mut obj = connector();
    obj["metadata"]["generation"] = json!("3");
    obj["status"]["observedGeneration"] = json!("3");
    assert_health(&obj, "Healthy", "the connector is running");
    obj["status"]["observedGeneration"] = json!("2");
    assert_health(&obj, "Progressing", "Waiting for the operator to observe generation 3");
}

#[test]
fn stalled_is_degraded() {
    let obj = with_conditions(vec![
        condition("Ready", "False", "OwnershipConflict", "ready message"),
        condition("Reconciling", "False", "Idle", ""),
        condition(
            "Stalled",
            "True",
            "OwnershipConflict",
            "Secret \"okta-baton\" exists and is not owned by this BatonConnector",
        ),
    ]);
    assert_health(&obj, "Degraded", "Secret \"okta-baton\" exists and is not owned by this BatonConnector");
}

#[test]
fn stalled_comes_before_ready_and_ready_before_reconciling() {
    let obj = with_conditions(vec![
        condition("Ready", "True", "Available", "running"),
        condition("Stalled", "True", "SyncStale", "no sync for 3 days"),
    ]);
    assert_health(&obj, "Degraded", "no sync for 3 days");

    let obj = with_conditions(vec![
        condition("Reconciling", "True", "Progressing", "rolling out"),
        condition("Ready", "True", "Available", "running"),
    ]);
    assert_health(&obj, "Healthy", "running");
}

#[test]
fn reconciling_is_progressing() {
    let obj = with_conditions(vec![
        condition("Ready", "False", "Progressing", "ready message"),
        condition("Reconciling", "True", "Progressing", "1 of 2 pods updated"),
        condition("Stalled", "False", "NotStalled", ""),
    ]);
    assert_health(&obj, "Progressing", "1 of 2 pods updated");
}

#[test]
fn reconciling_comes_before_a_hard_ready_reason() {
    let obj = with_conditions(vec![
        condition("Ready", "False", "SyncFailed", "last sync failed"),
        condition("Reconciling", "True", "Progressing", "retrying the sync"),
    ]);
    assert_health(&obj, "Progressing", "retrying the sync");
}

#[test]
fn hard_ready_reasons_are_degraded() {
    for reason in HARD_REASONS {
        let message = format!("because {reason}");
        assert_health(&not_ready(reason, &message), "Degraded", &message);
    }
    assert_health(&not_ready("Unauthorized", ""), "Degraded", "Unauthorized");
}

/// The pods' reasons as the operator writes them: a person must act (Stalled) on a crash loop; a
/// failed pull, a full cluster or a slow probe may pass (Reconciling); a OneShot run's pod is
/// neither, and only what waiting will not fix is Degraded.
#[test]
fn pod_reasons_are_degraded_only_where_a_person_must_act() {
    let stalled = with_conditions(vec![
        condition("Ready", "False", "CrashLoopBackOff", "pod okta-1: keeps crashing"),
        condition("Reconciling", "False", "Idle", ""),
        condition("Stalled", "True", "CrashLoopBackOff", "pod okta-1: keeps crashing"),
    ]);
    assert_health(&stalled, "Degraded", "pod okta-1: keeps crashing");
    for reason in ["ErrImagePull", "Unschedulable", "ProbeFailing"] {
        let obj = with_conditions(vec![
            condition("Ready", "False", reason, "pod okta-1: waiting"),
            condition("Reconciling", "True", reason, "pod okta-1: waiting"),
            condition("Stalled", "False", "NotStalled", ""),
        ]);
        assert_health(&obj, "Progressing", "pod okta-1: waiting");
    }
    assert_health(&not_ready("OOMKilled", "run pod: out of memory"), "Degraded", "run pod: out of memory");
    assert_health(&not_ready("ContainerFailed", "run pod: exit 1"), "Progressing", "run pod: exit 1");
}

#[test]
fn soft_ready_reasons_are_progressing() {
    for reason in ["Progressing", "SecretNotFound", "Issuing", "SomethingNew"] {
        let message = format!("because {reason}");
        assert_health(&not_ready(reason, &message), "Progressing", &message);
    }
}

#[test]
fn ready_unknown_is_progressing_even_with_a_hard_reason() {
    let obj = with_conditions(vec![condition(
        "Ready",
        "Unknown",
        "InvalidCredentials",
        "checking the credentials",
    )]);
    assert_health(&obj, "Progressing", "checking the credentials");
}

#[test]
fn missing_conditions_are_progressing() {
    let mut obj = connector();
    obj["status"].as_object_mut().unwrap().remove("conditions");
    assert_health(&obj, "Progressing", "Waiting for the operator to report readiness");
    obj["status"]["conditions"] = json!([]);
    assert_health(&obj, "Progressing", "Waiting for the operator to report readiness");
    // Only detail conditions: nothing says Ready yet.
    obj["status"]["conditions"] = json!([condition("WorkloadAvailable", "True", "Available", "")]);
    assert_health(&obj, "Progressing", "Waiting for the operator to report readiness");
}

#[test]
fn malformed_objects_do_not_break_the_script() {
    assert_health(&json!({}), "Progressing", "Waiting for the operator to observe this resource");
    assert_health(
        &json!({ "metadata": { "generation": 2 }, "status": { "observedGeneration": 2 } }),
        "Progressing",
        "Waiting for the operator to report readiness",
    );

    let mut obj = connector();
    obj["status"]["conditions"] = json!("not a list");
    assert_health(&obj, "Progressing", "Waiting for the operator to report readiness");
    obj["status"]["conditions"] = json!(["Ready", 7, null, { "status": "True" }, { "type": "Ready" }]);
    assert_health(&obj, "Progressing", "Waiting for the operator to report readiness");
    obj["status"]["conditions"] = json!([{ "type": "Stalled", "status": "True" }]);
    assert_health(&obj, "Degraded", "Stalled");
    obj["status"]["conditions"] = json!([{ "type": "Ready", "status": "False", "reason": 5 }]);
    assert_health(&obj, "Progressing", "Waiting for the operator to report readiness");
    obj["spec"] = json!("not a map");
    obj["status"]["conditions"] = json!([condition("Ready", "True", "Available", "up")]);
    assert_health(&obj, "Healthy", "up");
}

fn civil_from_days(days: i64) -> (i64, u32, u32) {
    // Howard Hinnant's days-to-civil algorithm; avoids a date crate for one test.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn rfc3339_now() -> String {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!("{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}Z", s / 3600, s % 3600 / 60, s % 60)
}

/// Checks that `action_name` sets `annotation` to a UTC RFC 3339 time of this moment and that the rest
/// of the object comes back exactly as it went in.
fn assert_sets_timestamp(action_name: &str, annotation: &str, obj: &Value) {
    let before = rfc3339_now();
    let mut out = action(action_name, obj);
    let after = rfc3339_now();

    let stamp = out["metadata"]["annotations"][annotation]
        .as_str()
        .unwrap_or_else(|| panic!("{action_name} did not set {annotation}: {out:#}"))
        .to_string();
    assert_eq!(stamp.len(), 20, "{stamp}");
    assert!(before <= stamp && stamp <= after, "{stamp} is not between {before} and {after}");

    let mut expected = obj.clone();
    if !expected["metadata"]["annotations"].is_object() {
        expected["metadata"]["annotations"] = json!({});
    }
    expected["metadata"]["annotations"][annotation] = json!(stamp);
    out["metadata"]["annotations"][annotation] = json!(stamp);
    assert_eq!(out, expected);
}

#[test]
fn rotate_sets_the_rotate_annotation_only() {
    assert_sets_timestamp("rotate", ROTATE_ANNOTATION, &connector());
    let out = action("rotate", &connector());
    assert!(out["metadata"]["annotations"][RESTART_ANNOTATION].is_null(), "{out:#}");
}

#[test]
fn restart_sets_the_restart_annotation_only() {
    assert_sets_timestamp("restart", RESTART_ANNOTATION, &connector());
    let out = action("restart", &connector());
    assert!(out["metadata"]["annotations"][ROTATE_ANNOTATION].is_null(), "{out:#}");
}

#[test]
fn sync_sets_the_sync_annotation_and_is_offered_only_where_it_does_something() {
    assert_sets_timestamp("sync", SYNC_ANNOTATION, &connector());
    let out = action("sync", &connector());
    assert!(out["metadata"]["annotations"][RESTART_ANNOTATION].is_null(), "{out:#}");
    // Service mode without ConductorOne API access: no ForceSync to ask for.
    let mut obj = connector();
    obj["spec"].as_object_mut().unwrap().remove("conductorOne");
    assert!(!discovery(&obj)["sync"]);
    // OneShot mode runs a Job instead.
    obj["spec"]["mode"] = json!("OneShot");
    assert!(discovery(&obj)["sync"]);
}

#[test]
fn trigger_actions_create_annotations_and_replace_old_requests() {
    let mut obj = connector();
    obj["metadata"].as_object_mut().unwrap().remove("annotations");
    assert_sets_timestamp("rotate", ROTATE_ANNOTATION, &obj);
    assert_sets_timestamp("restart", RESTART_ANNOTATION, &obj);

    let mut obj = connector();
    obj["metadata"]["annotations"][ROTATE_ANNOTATION] = json!("2020-01-01T00:00:00Z");
    obj["metadata"]["annotations"][RESTART_ANNOTATION] = json!("2020-01-01T00:00:00Z");
    assert_sets_timestamp("rotate", ROTATE_ANNOTATION, &obj);
    assert_sets_timestamp("restart", RESTART_ANNOTATION, &obj);
}

#[test]
fn suspend_and_resume_set_spec_suspend_only() {
    let obj = connector();
    let mut expected = obj.clone();
    expected["spec"]["suspend"] = json!(true);
    assert_eq!(action("suspend", &obj), expected);

    let mut suspended = connector();
    suspended["spec"]["suspend"] = json!(true);
    let mut expected = suspended.clone();
    expected["spec"]["suspend"] = json!(false);
    assert_eq!(action("resume", &suspended), expected);

    let mut unset = connector();
    unset["spec"].as_object_mut().unwrap().remove("suspend");
    let mut expected = unset.clone();
    expected["spec"]["suspend"] = json!(true);
    assert_eq!(action("suspend", &unset), expected);
}

fn enabled(pairs: &[(&str, bool)]) -> BTreeMap<String, bool> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

#[test]
fn discovery_offers_suspend_or_resume_by_state() {
    assert_eq!(
        discovery(&connector()),
        enabled(&[("restart", true), ("resume", false), ("rotate", true), ("suspend", true), ("sync", true)])
    );

    let mut obj = connector();
    obj["spec"]["suspend"] = json!(true);
    assert_eq!(
        discovery(&obj),
        enabled(&[
            ("restart", true),
            ("resume", true),
            ("rotate", true),
            ("suspend", false),
            ("sync", false)
        ])
    );

    obj["spec"].as_object_mut().unwrap().remove("suspend");
    assert!(discovery(&obj)["suspend"]);
    assert!(!discovery(&obj)["resume"]);
}

#[test]
fn discovery_offers_rotate_only_for_managed_credentials() {
    let mut obj = connector();
    obj["spec"]["credentials"] = json!({ "secretRef": { "name": "okta-c1" } });
    assert_eq!(
        discovery(&obj),
        enabled(&[
            ("restart", true),
            ("resume", false),
            ("rotate", false),
            ("suspend", true),
            ("sync", true)
        ])
    );
    obj["spec"]["credentials"] = json!({ "managed": null, "secretRef": { "name": "okta-c1" } });
    assert!(!discovery(&obj)["rotate"]);
    obj["spec"].as_object_mut().unwrap().remove("credentials");
    assert!(!discovery(&obj)["rotate"]);
    assert_eq!(discovery(&json!({ "metadata": {} })).len(), ACTIONS.len());
}

fn assert_same_lua(in_yaml: Option<&str>, file: &str, key: &str) {
    let in_yaml = in_yaml.unwrap_or_else(|| panic!("{CM_PATCH} has no {key} for {file}"));
    let on_disk = script(file);
    if in_yaml != on_disk {
        let line = in_yaml.lines().zip(on_disk.lines()).take_while(|(a, b)| a == b).count() + 1;
        panic!(
            "{CM_PATCH}: {key} differs from {CUSTOMIZATION}/{file} from line {line} on; \
             copy the file into the YAML block"
        );
    }
}

#[test]
fn argocd_cm_patch_carries_the_same_lua_as_the_files() {
    let cm: serde_yaml::Value = serde_yaml::from_str(&read(CM_PATCH)).expect("YAML");
    assert_eq!(cm["kind"].as_str(), Some("ConfigMap"));
    assert_eq!(cm["metadata"]["name"].as_str(), Some("argocd-cm"));
    let data = cm["data"].as_mapping().expect("data");
    let keys: Vec<&str> = data.keys().filter_map(serde_yaml::Value::as_str).collect();
    // Then the tenants' health checks (`argocd_tenants.rs`).
    assert_eq!(keys[..2], [HEALTH_KEY, ACTIONS_KEY]);

    assert_same_lua(data[HEALTH_KEY].as_str(), "health.lua", HEALTH_KEY);

    let actions: serde_yaml::Value =
        serde_yaml::from_str(data[ACTIONS_KEY].as_str().expect("actions block")).expect("YAML");
    assert_same_lua(actions["discovery.lua"].as_str(), "actions/discovery.lua", "discovery.lua");
    let definitions = actions["definitions"].as_sequence().expect("definitions");
    let names: Vec<&str> = definitions.iter().map(|d| d["name"].as_str().expect("name")).collect();
    assert_eq!(names, ACTIONS);
    for (definition, name) in definitions.iter().zip(ACTIONS) {
        assert_same_lua(
            definition["action.lua"].as_str(),
            &format!("actions/{name}/action.lua"),
            &format!("definitions[{name}].action.lua"),
        );
    }
}

#[test]
fn every_action_directory_is_discovered_and_defined() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("{CUSTOMIZATION}/actions"));
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .expect("actions directory")
        .map(|e| e.expect("entry"))
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    let mut expected: Vec<String> = ACTIONS.iter().map(|a| a.to_string()).collect();
    expected.sort();
    assert_eq!(on_disk, expected);
    let discovered: Vec<String> = discovery(&connector()).into_keys().collect();
    assert_eq!(discovered, expected);
}
