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
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels::pod_labels(bc)),
                    annotations: Some(template_annotations),
                    ..Default::default()
                }),
                spec: Some(pod_spec(bc, inputs)),
            },
            ..Default::default()
        },
        status: None,
    }
}

fn pod_spec(bc: &BatonConnector, inputs: &DeploymentInputs) -> PodSpec {
    PodSpec { containers: vec![container(bc, inputs)], ..base_pod_spec(bc) }
}

/// What every connector pod has, whatever its mode: the `restricted` security context, a writable
/// `/tmp`, scheduling and identity from the spec.
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
        volumes: Some(vec![Volume {
            name: "tmp".into(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Default::default()
        }]),
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
/// a locked-down security context and a writable `/tmp`.
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
        // Baton writes its c1z working files to the temp dir; the root filesystem is read-only.
        volume_mounts: Some(vec![VolumeMount {
            name: "tmp".into(),
            mount_path: "/tmp".into(),
            ..Default::default()
        }]),
        ..Default::default()
    }
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
