//! Unit tests of the stand-in kubelet's environment resolution and of the Baton SDK contract the
//! stand-in connector follows. Each expectation is the kubelet's or the SDK's documented behaviour.

use baton_test_support as support;

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Pod};
use serde_json::json;
use support::kubelet::{
    env::{ConfigError, Objects, expand, resolve},
    sdk::{self, Mode},
};

struct Cluster {
    secrets: BTreeMap<String, BTreeMap<String, String>>,
    config_maps: BTreeMap<String, BTreeMap<String, String>>,
}

impl Objects for Cluster {
    fn secret(&self, name: &str) -> Option<BTreeMap<String, String>> {
        self.secrets.get(name).cloned()
    }
    fn config_map(&self, name: &str) -> Option<BTreeMap<String, String>> {
        self.config_maps.get(name).cloned()
    }
}

fn data(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn cluster() -> Cluster {
    Cluster {
        secrets: [("app".to_string(), data(&[("BATON_API_TOKEN", "tok"), ("bad key", "x")]))].into(),
        config_maps: [("cfg".to_string(), data(&[("DOMAIN", "acme.okta.com")]))].into(),
    }
}

fn pod(container: serde_json::Value) -> (Pod, Container) {
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "okta-1", "namespace": "ns", "uid": "u-1", "labels": {"app": "okta"}},
        "spec": {"containers": [container], "serviceAccountName": "sa", "nodeName": "node-1"},
        "status": {"podIP": "127.0.0.1"}}))
    .unwrap();
    let c = pod.spec.as_ref().unwrap().containers[0].clone();
    (pod, c)
}

fn run(container: serde_json::Value) -> Result<Vec<(String, String)>, ConfigError> {
    let (p, c) = pod(container);
    resolve(&p, &c, &cluster())
}

#[test]
fn env_from_is_prefixed_skips_invalid_keys_and_env_overrides_it() {
    let got = run(json!({"name": "c", "envFrom": [
            {"secretRef": {"name": "app"}},
            {"configMapRef": {"name": "cfg"}, "prefix": "BATON_"},
            {"secretRef": {"name": "absent", "optional": true}}],
        "env": [{"name": "BATON_DOMAIN", "value": "override.okta.com"}]}))
    .unwrap();
    assert_eq!(
        got,
        vec![("BATON_API_TOKEN".into(), "tok".into()), ("BATON_DOMAIN".into(), "override.okta.com".into())]
    );
}

#[test]
fn values_expand_earlier_variables_only() {
    let got = run(json!({"name": "c", "env": [
        {"name": "A", "value": "a"},
        {"name": "B", "value": "$(A)-$(C)-$$(A)"},
        {"name": "C", "value": "c"}]}))
    .unwrap();
    assert_eq!(got[1], ("B".into(), "a-$(C)-$(A)".into()));
    let none = BTreeMap::new();
    assert_eq!(expand("$(unclosed", &none), "$(unclosed");
    assert_eq!(expand("cost $5", &none), "cost $5");
}

#[test]
fn key_refs_field_refs_and_optional() {
    let got = run(json!({"name": "c", "env": [
        {"name": "T", "valueFrom": {"secretKeyRef": {"name": "app", "key": "BATON_API_TOKEN"}}},
        {"name": "D", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "DOMAIN"}}},
        {"name": "O", "valueFrom": {"secretKeyRef": {"name": "app", "key": "nope", "optional": true}}},
        {"name": "P", "valueFrom": {"configMapKeyRef": {"name": "gone", "key": "x", "optional": true}}},
        {"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "L", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
        {"name": "S", "valueFrom": {"fieldRef": {"fieldPath": "spec.serviceAccountName"}}}]}))
    .unwrap();
    let names: Vec<&str> = got.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(names, ["T", "D", "N", "L", "S"]);
    assert_eq!(got[2].1, "okta-1");
    assert_eq!(got[3].1, "okta");
    assert_eq!(got[4].1, "sa");
}

#[test]
fn missing_required_objects_and_keys_are_create_container_config_errors() {
    let cases = [
        (json!({"secretKeyRef": {"name": "app", "key": "nope"}}), "couldn't find key nope in Secret ns/app"),
        (json!({"secretKeyRef": {"name": "gone", "key": "k"}}), "secret \"gone\" not found"),
        (
            json!({"configMapKeyRef": {"name": "cfg", "key": "nope"}}),
            "couldn't find key nope in ConfigMap ns/cfg",
        ),
        (json!({"configMapKeyRef": {"name": "gone", "key": "k"}}), "configmap \"gone\" not found"),
    ];
    for (from, message) in cases {
        let err = run(json!({"name": "c", "env": [{"name": "X", "valueFrom": from}]})).unwrap_err();
        assert_eq!(err, ConfigError { reason: "CreateContainerConfigError", message: message.into() });
    }
    let err = run(json!({"name": "c", "envFrom": [{"secretRef": {"name": "gone"}}]})).unwrap_err();
    assert_eq!(err.message, "secret \"gone\" not found");
}

#[test]
fn sdk_names_versions_and_health_server() {
    assert_eq!(sdk::env_name("health-check-bind-address"), "BATON_HEALTH_CHECK_BIND_ADDRESS");
    assert_eq!(sdk::image_sdk_version("e2e.local/baton-standin:v0.7.6"), Some((0, 7, 6)));
    assert_eq!(sdk::image_sdk_version("e2e.local/baton-standin:latest"), None);
    let on = data(&[("BATON_HEALTH_CHECK", "true")]);
    assert!(sdk::health_server_enabled((0, 7, 6), &on));
    assert!(sdk::health_server_enabled((0, 25, 0), &on));
    // Older SDKs ignore the variable, as viper ignores unknown keys.
    assert!(!sdk::health_server_enabled((0, 7, 5), &on));
    assert!(!sdk::health_server_enabled((0, 25, 0), &data(&[("BATON_HEALTH_CHECK", "false")])));
}

#[test]
fn sdk_mode_follows_client_credentials() {
    let service = data(&[("BATON_CLIENT_ID", "id@t.conductor.one/x"), ("BATON_CLIENT_SECRET", "s")]);
    assert!(matches!(sdk::mode(&service), Ok(Mode::Service { .. })));
    let no_secret = data(&[("BATON_CLIENT_ID", "id@t.conductor.one/x")]);
    assert_eq!(sdk::mode(&no_secret), Err("client-secret is required in service mode".into()));
    assert_eq!(sdk::mode(&BTreeMap::new()), Ok(Mode::OneShot { file: "sync.c1z".into() }));
    let file = data(&[("BATON_FILE", "/out/x.c1z")]);
    assert_eq!(sdk::mode(&file), Ok(Mode::OneShot { file: "/out/x.c1z".into() }));
}

#[test]
fn sdk_required_fields_from_the_catalog_schema() {
    let okta = baton_operator::catalog::Catalog::embedded().get("okta").unwrap();
    let err = sdk::check_required(okta, (0, 25, 0), &BTreeMap::new()).unwrap_err();
    // Okta has field groups and none is the default, so `field.Validate` names the first group's.
    assert!(err.contains("field domain of type string is marked as required"), "{err}");
    assert!(err.contains("field api-token of type string"), "{err}");
    required_with_a_small_schema();
}

/// One connector made up for the test, read as the catalog reads its files.
fn connector(schema: serde_json::Value) -> baton_operator::catalog::Connector {
    let file = json!({"connector": "small", "repository": "ConductorOne/baton-small", "commit": "0",
        "sdkVersion": "v0.25.0", "schema": schema});
    let catalog =
        baton_operator::catalog::Catalog::parse(&[("small.json", &file.to_string())], "{}").unwrap();
    catalog.get("small").unwrap().clone()
}

fn required_with_a_small_schema() {
    let schema = connector(json!({"fields": [
        {"name": "domain", "isRequired": true, "stringField": {}},
        {"name": "api-token", "isRequired": true, "stringField": {}}]}));
    let v = (0, 25, 0);
    assert_eq!(
        sdk::check_required(&schema, v, &data(&[("BATON_DOMAIN", "x")])),
        Err("required flag(s) \"api-token\" not set".into())
    );
    assert_eq!(
        sdk::check_required(&schema, v, &BTreeMap::new()),
        Err("required flag(s) \"api-token\", \"domain\" not set".into())
    );
    // An empty variable is no value (viper).
    assert_eq!(
        sdk::check_required(&schema, v, &data(&[("BATON_DOMAIN", "x"), ("BATON_API_TOKEN", "")])),
        Err("required flag(s) \"api-token\" not set".into())
    );
    assert_eq!(
        sdk::check_required(&schema, v, &data(&[("BATON_DOMAIN", "x"), ("BATON_API_TOKEN", "t")])),
        Ok(())
    );
    let rules = json!({"rules": {"isRequired": true}});
    let grouped = connector(json!({"fields": [
            {"name": "token", "isRequired": true, "stringField": rules},
            {"name": "key", "isRequired": true, "stringField": rules}],
        "fieldGroups": [{"name": "token", "fields": ["token"], "default": true}, {"name": "key", "fields": ["key"]}]}));
    let err = sdk::check_required(&grouped, v, &BTreeMap::new()).unwrap_err();
    assert_eq!(
        err,
        "errors found:\nfield token of type string is marked as required but it has a zero-value"
    );
    let err = sdk::check_required(&grouped, v, &data(&[("BATON_AUTH_METHOD", "key")])).unwrap_err();
    assert!(err.contains("field key ") && !err.contains("field token"), "{err}");
    // Before v0.5.6 cobra marked the required flags even with groups.
    let err = sdk::check_required(&grouped, (0, 5, 5), &BTreeMap::new()).unwrap_err();
    assert_eq!(err, "required flag(s) \"key\", \"token\" not set");
}

#[test]
fn standin_sync_lands_complete_under_its_name_and_logs_in_the_working_dir() {
    use support::kubelet::standin::{debug_log, write_sync};
    let dir = std::env::temp_dir().join(format!("baton-standin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let content = vec![7u8; 1 << 20];
    write_sync(&dir, "sync.c1z", &content).unwrap();
    assert_eq!(std::fs::read(dir.join("sync.c1z")).unwrap(), content);
    assert!(!dir.join("sync.c1z.tmp").exists(), "temporary file left behind");
    debug_log(&dir, "one").unwrap();
    debug_log(&dir, "two").unwrap();
    assert_eq!(std::fs::read_to_string(dir.join("debug.log")).unwrap(), "one\ntwo\n");
    // A working directory that does not exist fails the way the SDK's Go code reports it.
    let gone = dir.join("gone");
    assert_eq!(write_sync(&gone, "sync.c1z", b"x"), Err("open sync.c1z: no such file or directory".into()));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn standin_errors_read_as_go_path_errors() {
    use support::kubelet::standin::go_error;
    let rofs = std::io::Error::from_raw_os_error(30);
    assert_eq!(
        go_error("open", std::path::Path::new("sync.c1z"), &rofs),
        "open sync.c1z: read-only file system"
    );
    let denied = std::io::Error::from_raw_os_error(13);
    assert_eq!(
        go_error("stat", std::path::Path::new("debug.log"), &denied),
        "stat debug.log: permission denied"
    );
}

/// The container's root is read-only and its volume writable, it runs as the pod's user in its
/// working directory, and nothing it does reaches the host's root. Needs root (CI runs as root).
#[tokio::test]
async fn a_container_root_is_read_only_and_its_volumes_are_writable() {
    use support::kubelet::{
        image::{self, Pull},
        isolate::{self, Mount, Spec},
    };
    if let Err(why) = isolate::available() {
        eprintln!("not run here: {why}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (rootfs, volume) = (dir.path().join("rootfs"), dir.path().join("work"));
    std::fs::create_dir_all(&volume).unwrap();
    std::fs::set_permissions(&volume, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let Pull::Image(busybox) = image::pull("e2e.local/busybox:stable") else { panic!("no busybox") };
    let mut mounts = isolate::image_root(&rootfs, &busybox).unwrap();
    // Each start of a container lays out its root again: the same mounts, the second time too.
    let targets = |m: &[Mount]| m.iter().map(|m| m.target.clone()).collect::<Vec<_>>();
    assert_eq!(targets(&isolate::image_root(&rootfs, &busybox).unwrap()), targets(&mounts));
    assert!(targets(&mounts).contains(&"/usr".to_string()));
    mounts.push(Mount { source: volume.clone(), target: "/work".into(), read_only: false });
    let log = dir.path().join("log");
    let spec = Spec {
        argv: ["/bin/sh", "-c", "touch /escaped; touch /work/kept && id -u && pwd"].map(String::from).into(),
        env: busybox.env.clone(),
        rootfs: rootfs.clone(),
        working_dir: "/work".into(),
        uid: 65532,
        gid: 65532,
        groups: vec![65532],
        read_only_root: true,
        mounts,
        log: log.clone(),
    };
    let status = isolate::spawn(&spec).unwrap().wait().await.unwrap();
    let out = std::fs::read_to_string(&log).unwrap();
    assert!(status.success(), "{out}");
    // Not `Permission denied`: the root's directory is root's, and the image's user could not write
    // there anyway; only the read-only mount gives this error.
    assert!(out.contains("Read-only file system"), "the root was writable: {out}");
    assert!(out.contains("65532\n/work"), "{out}");
    assert!(volume.join("kept").is_file(), "the volume was not writable: {out}");
    assert!(!rootfs.join("escaped").exists() && !std::path::Path::new("/escaped").exists());
}
