//! The Deployment that runs a connector in service mode.

use std::collections::BTreeMap;

use k8s_openapi::{
    api::{
        apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy},
        core::v1::{
            Capabilities, Container, ContainerPort, EmptyDirVolumeSource, EnvFromSource, EnvVar,
            EnvVarSource, HTTPGetAction, PodSecurityContext, PodSpec, PodTemplateSpec, Probe,
            ResourceRequirements, SeccompProfile, SecretEnvSource, SecretKeySelector, SecurityContext,
            Volume, VolumeMount,
        },
    },
    apimachinery::pkg::{
        api::resource::Quantity,
        apis::meta::v1::{LabelSelector, ObjectMeta},
        util::intstr::IntOrString,
    },
};
use kube::{Resource, ResourceExt};

use super::{image, inputs, labels};
use crate::api::{BatonConnector, RESTART_REQUESTED_AT};

/// Pod-template annotation holding the hash of the Secret data the pod reads.
pub const CONFIG_HASH_ANNOTATION: &str = "baton.conductorone.com/config-hash";
/// Pod-template annotation carrying the last restart request, so a new request rolls the pods once.
pub const RESTARTED_AT_ANNOTATION: &str = "baton.conductorone.com/restarted-at";
/// Pod-template annotation naming the template (a hash of the rest of it): a pod carries its
/// template's annotations verbatim, so the operator knows which pods run the current template even
/// where admission webhooks rewrite images or add containers.
pub const TEMPLATE_HASH_ANNOTATION: &str = "baton.conductorone.com/template-hash";

/// The connector's working directory, on the `work` volume. The images' own (`/home/nonroot` in
/// the distroless images) is on the read-only root filesystem, where the SDK fails to write
/// `debug.log` and, on older SDKs, `sync.c1z`.
pub const WORK_DIR: &str = "/work";
/// The `emptyDir` holding the working directory and, under [`TMP_SUBPATH`], `/tmp`.
pub const WORK_VOLUME: &str = "work";
/// `/tmp` is a subdirectory of the work volume rather than a volume of its own, so that one
/// `sizeLimit` bounds everything a connector writes. The kubelet creates it before the container
/// starts.
pub const TMP_SUBPATH: &str = "tmp";
/// Default cap of the work volume (`spec.workDir.sizeLimit`). In service mode a sync holds its
/// working database (the c1z decompressed: a few times the file), the compressed c1z it uploads
/// and, with `BATON_KEEP_PREVIOUS_SYNC_C1Z`, the previous one, plus `debug.log` when ConductorOne
/// asks for it: the SDK's guidance is two to three times the largest c1z. A large sync stays within
/// 250-500 MB of memory, and its files are of that order, so 2Gi holds it with room to spare.
/// It is a cap, not a reservation (the volume is node disk, not memory, so it does not count
/// against the memory limit): a larger one costs nothing until it is used, a smaller one evicts
/// large syncs.
pub const DEFAULT_WORK_DIR_SIZE_LIMIT: &str = "2Gi";

/// The connector images run as the distroless `nonroot` user.
pub const CONNECTOR_UID: i64 = 65532;
pub const DEFAULT_HEALTH_PORT: i32 = 8081;

/// What the Deployment depends on besides the spec.
#[derive(Clone, Debug)]
pub struct DeploymentInputs {
    /// Hash of the Secret data the pod reads (see [`inputs::pod_inputs_hash`]).
    pub config_hash: String,
    /// The Secret holding `BATON_CLIENT_ID` / `BATON_CLIENT_SECRET`.
    pub credentials_secret: String,
}

/// The Deployment name: the resource's own name, so `kubectl get deploy` lines up with
/// `kubectl get batonconnectors`.
pub fn deployment_name(bc: &BatonConnector) -> String {
    bc.name_any()
}

pub fn container_name(bc: &BatonConnector) -> String {
    labels::app_name(bc)
}

/// Builds the desired Deployment. Pure: the same resource and inputs always give the same object.
pub fn deployment(bc: &BatonConnector, inputs: &DeploymentInputs) -> Deployment {
    let mut template_annotations = bc.spec.pod_annotations.clone();
    template_annotations.insert(CONFIG_HASH_ANNOTATION.into(), inputs.config_hash.clone());
    if let Some(at) = bc.annotations().get(RESTART_REQUESTED_AT) {
        template_annotations.insert(RESTARTED_AT_ANNOTATION.into(), at.clone());
    }
    // The first container is the one `kubectl logs deploy/<name>` picks anyway; say so explicitly.
    template_annotations.insert("kubectl.kubernetes.io/default-container".into(), container_name(bc));

    Deployment {
        metadata: ObjectMeta {
            name: Some(deployment_name(bc)),
            namespace: bc.namespace(),
            labels: Some(labels::labels(bc)),
            owner_references: bc.controller_owner_ref(&()).map(|o| vec![o]),
            ..Default::default()
        },
        spec: DeploymentSpec {
            // One pod per connector: two pods with one BATON_HOST_ID would compete for the same tasks,
            // so the old pod goes before the new one starts.
            replicas: Some(1),
            strategy: Some(DeploymentStrategy { type_: Some("Recreate".into()), rolling_update: None }),
            revision_history_limit: Some(3),
            progress_deadline_seconds: Some(600),
            selector: LabelSelector { match_labels: Some(labels::selector(bc)), match_expressions: None },
            template: named(PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels::pod_labels(bc)),
                    annotations: Some(template_annotations),
                    ..Default::default()
                }),
                spec: Some(pod_spec(bc, inputs)),
            }),
            ..Default::default()
        },
        status: None,
    }
}

/// The template with its [`TEMPLATE_HASH_ANNOTATION`]: the hash of everything else in it.
fn named(mut template: PodTemplateSpec) -> PodTemplateSpec {
    use sha2::{Digest, Sha256};
    let json = serde_json::to_vec(&template).expect("a pod template serializes");
    let hash = hex::encode(&Sha256::digest(&json)[..8]);
    let meta = template.metadata.get_or_insert_with(Default::default);
    meta.annotations.get_or_insert_with(Default::default).insert(TEMPLATE_HASH_ANNOTATION.into(), hash);
    template
}

fn pod_spec(bc: &BatonConnector, inputs: &DeploymentInputs) -> PodSpec {
    PodSpec { containers: vec![container(bc, inputs)], ..base_pod_spec(bc) }
}

/// What every connector pod has, whatever its mode: the `restricted` security context, the work
/// volume, scheduling and identity from the spec.
pub(super) fn base_pod_spec(bc: &BatonConnector) -> PodSpec {
    let spec = &bc.spec;
    PodSpec {
        security_context: Some(PodSecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(CONNECTOR_UID),
            run_as_group: Some(CONNECTOR_UID),
            fs_group: Some(CONNECTOR_UID),
            seccomp_profile: Some(SeccompProfile { type_: "RuntimeDefault".into(), localhost_profile: None }),
            ..Default::default()
        }),
        volumes: Some(vec![work_volume(bc)]),
        // Connectors talk to ConductorOne and their app, not to Kubernetes, unless a ServiceAccount is
        // named for them (baton-kubernetes).
        automount_service_account_token: Some(spec.service_account_name.is_some()),
        service_account_name: spec.service_account_name.clone(),
        node_selector: non_empty_map(&spec.node_selector),
        tolerations: non_empty_vec(&spec.tolerations),
        affinity: spec.affinity.clone(),
        image_pull_secrets: non_empty_vec(&spec.image_pull_secrets),
        priority_class_name: spec.priority_class_name.clone(),
        ..Default::default()
    }
}

fn container(bc: &BatonConnector, inputs: &DeploymentInputs) -> Container {
    let spec = &bc.spec;
    let health_port =
        spec.health_check.as_ref().filter(|h| h.enabled).map(|h| h.port.unwrap_or(DEFAULT_HEALTH_PORT));
    Container {
        env: Some(env(bc, inputs, health_port)),
        ports: health_port.map(|port| {
            vec![ContainerPort { name: Some("health".into()), container_port: port, ..Default::default() }]
        }),
        startup_probe: health_port.map(|p| probe("/live", p, 10, 30)),
        liveness_probe: health_port.map(|p| probe("/live", p, 20, 3)),
        readiness_probe: health_port.map(|p| probe("/ready", p, 10, 3)),
        ..connector_container(bc)
    }
}

/// The connector container without its environment and probes: image, the app's Secrets, resources,
/// a locked-down security context, and its working directory and `/tmp` on the work volume.
pub(super) fn connector_container(bc: &BatonConnector) -> Container {
    let spec = &bc.spec;
    Container {
        name: container_name(bc),
        image: Some(image::reference(bc)),
        image_pull_policy: spec.image.as_ref().and_then(|i| i.pull_policy).map(|p| p.as_str().to_string()),
        env_from: non_empty_vec(
            &spec
                .secret_refs
                .iter()
                .map(|s| EnvFromSource {
                    secret_ref: Some(SecretEnvSource { name: s.name.clone(), optional: Some(false) }),
                    ..Default::default()
                })
                .collect::<Vec<_>>(),
        ),
        resources: Some(spec.resources.clone().unwrap_or_else(default_resources)),
        security_context: Some(restricted_container()),
        // The root filesystem is read-only: the SDK writes `sync.c1z` and `debug.log` to the working
        // directory and its temporary sync databases to the temp dir, both on the work volume.
        working_dir: Some(WORK_DIR.into()),
        volume_mounts: Some(work_mounts()),
        // A connector that dies says why on stderr, not in /dev/termination-log: with this the
        // kubelet keeps the end of its log as the termination message, which the status carries
        // (redacted) as its last words.
        termination_message_policy: Some(FALLBACK_TO_LOGS.into()),
        ..Default::default()
    }
}

/// `terminationMessagePolicy` of the connector and uploader containers.
pub(super) const FALLBACK_TO_LOGS: &str = "FallbackToLogsOnError";

/// The `emptyDir` behind the working directory and `/tmp`, capped at `spec.workDir.sizeLimit`.
pub(super) fn work_volume(bc: &BatonConnector) -> Volume {
    Volume {
        name: WORK_VOLUME.into(),
        // `medium` unset: node disk. `Memory` would count the files against the memory limit.
        empty_dir: Some(EmptyDirVolumeSource {
            size_limit: Some(work_dir_size_limit(bc)),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The work volume's cap: the spec's, else [`DEFAULT_WORK_DIR_SIZE_LIMIT`]. Applied here rather than
/// as a schema default so that the stored resource keeps what the person wrote, and a connector that
/// spells out the default (or writes `workDir: {}`) gets exactly the pod one that does not.
pub fn work_dir_size_limit(bc: &BatonConnector) -> Quantity {
    bc.spec
        .work_dir
        .as_ref()
        .and_then(|w| w.size_limit.clone())
        .unwrap_or_else(|| Quantity(DEFAULT_WORK_DIR_SIZE_LIMIT.into()))
}

/// The working directory and `/tmp`, both on the work volume.
pub(super) fn work_mounts() -> Vec<VolumeMount> {
    vec![
        VolumeMount { name: WORK_VOLUME.into(), mount_path: WORK_DIR.into(), ..Default::default() },
        tmp_mount(),
    ]
}

/// `/tmp`, a subdirectory of the work volume.
pub(super) fn tmp_mount() -> VolumeMount {
    VolumeMount {
        name: WORK_VOLUME.into(),
        mount_path: "/tmp".into(),
        sub_path: Some(TMP_SUBPATH.into()),
        ..Default::default()
    }
}

/// `TMPDIR`, named explicitly so that the SDK's temp dir (`BATON_TMPDIR`, else `os.TempDir()`) is on
/// the work volume whatever the image's environment says. Left out when `env` sets it: the person's
/// value wins, and a second entry of one name would make the API server refuse the apply.
pub(super) fn work_env(bc: &BatonConnector) -> Vec<EnvVar> {
    if bc.spec.env.iter().any(|e| e.name == "TMPDIR") {
        return Vec::new();
    }
    vec![EnvVar { name: "TMPDIR".into(), value: Some("/tmp".into()), value_from: None }]
}

pub(super) fn restricted_container() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        read_only_root_filesystem: Some(true),
        run_as_non_root: Some(true),
        capabilities: Some(Capabilities { drop: Some(vec!["ALL".into()]), add: None }),
        ..Default::default()
    }
}

fn env(bc: &BatonConnector, inputs: &DeploymentInputs, health_port: Option<i32>) -> Vec<EnvVar> {
    let plain =
        |name: &str, value: String| EnvVar { name: name.into(), value: Some(value), value_from: None };
    let from_secret = |name: &str| EnvVar {
        name: name.into(),
        value: None,
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: inputs.credentials_secret.clone(),
                key: name.into(),
                optional: Some(false),
            }),
            ..Default::default()
        }),
    };
    let mut env = vec![
        from_secret(inputs::CLIENT_ID_KEY),
        from_secret(inputs::CLIENT_SECRET_KEY),
        // The host id names this connector in ConductorOne; the pod name would change on every rollout.
        plain("BATON_HOST_ID", bc.name_any()),
        plain("BATON_PROVISIONING", bc.spec.provisioning.to_string()),
        plain("BATON_TICKETING", bc.spec.ticketing.to_string()),
    ];
    env.extend(work_env(bc));
    if let Some(port) = health_port {
        env.push(plain("BATON_HEALTH_CHECK", "true".into()));
        env.push(plain("BATON_HEALTH_CHECK_PORT", port.to_string()));
        // The SDK binds to 127.0.0.1 by default, where the kubelet's probes cannot reach it.
        env.push(plain("BATON_HEALTH_CHECK_BIND_ADDRESS", "0.0.0.0".into()));
    }
    // Before `env`, so that an `env` entry of the same name still wins, as it did before `config`.
    env.extend(super::config_env::env_vars(&bc.spec.config));
    env.extend(bc.spec.env.iter().map(|e| plain(&e.name, e.value.clone())));
    env
}

fn probe(path: &str, port: i32, period: i32, failures: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::Int(port),
            ..Default::default()
        }),
        period_seconds: Some(period),
        failure_threshold: Some(failures),
        timeout_seconds: Some(5),
        ..Default::default()
    }
}

/// Sized from the vendor's guidance: a connector stays under 100 MB of memory normally, so the
/// 128Mi request is what it uses and what the scheduler reserves; a large sync takes 250-500 MB,
/// and the 1Gi limit leaves twice that before an OOM kill. The work volume is disk, not memory
/// (`medium` unset), so its files do not count against this limit.
pub(super) fn default_resources() -> ResourceRequirements {
    let q = |s: &str| Quantity(s.into());
    ResourceRequirements {
        requests: Some(BTreeMap::from([("cpu".into(), q("100m")), ("memory".into(), q("128Mi"))])),
        limits: Some(BTreeMap::from([("cpu".into(), q("1")), ("memory".into(), q("1Gi"))])),
        ..Default::default()
    }
}

pub(super) fn non_empty_vec<T: Clone>(v: &[T]) -> Option<Vec<T>> {
    (!v.is_empty()).then(|| v.to_vec())
}

fn non_empty_map(m: &BTreeMap<String, String>) -> Option<BTreeMap<String, String>> {
    (!m.is_empty()).then(|| m.clone())
}
