//! The pod and Deployment settings around the connector container: what the spec takes over
//! (resources, scheduling, identity, pod labels) and what it cannot express.

use k8s_openapi::api::{
    apps::v1::Deployment,
    core::v1::{Container, PodSpec},
};

use super::notes::Notes;
use crate::{api::BatonConnectorSpec, resources::labels};

/// Pod labels the operator sets itself, whatever the spec says (the vendor's and its own).
const OWN_LABELS: &[&str] = &[
    "app",
    "baton",
    "baton-app",
    labels::NAME_LABEL,
    labels::INSTANCE_LABEL,
    labels::MANAGED_BY_LABEL,
    labels::COMPONENT_LABEL,
];

/// Pod annotations kubectl or the operator write, not the person.
const OWN_ANNOTATIONS: &[&str] =
    &["kubectl.kubernetes.io/restartedAt", "kubectl.kubernetes.io/default-container"];

pub fn carry(
    d: &Deployment,
    pod: &PodSpec,
    container: &Container,
    spec: &mut BatonConnectorSpec,
    notes: &mut Notes,
) {
    spec.resources = container.resources.clone().filter(|r| r.limits.is_some() || r.requests.is_some());
    if spec.resources.is_none() {
        notes.at(
            "spec.resources",
            "the Deployment sets no resources: the operator's defaults apply (requests 100m CPU and 128Mi, limits 1 CPU and 1Gi)",
        );
    }
    spec.node_selector = pod.node_selector.clone().unwrap_or_default();
    spec.tolerations = pod.tolerations.clone().unwrap_or_default();
    spec.affinity = pod.affinity.clone();
    #[allow(deprecated)] // `serviceAccount` is the old spelling some manifests still use.
    let account = pod.service_account_name.clone().or_else(|| pod.service_account.clone());
    spec.service_account_name = account.filter(|a| a != "default");
    if pod.automount_service_account_token.is_some() {
        notes.at(
            "spec.serviceAccountName",
            "automountServiceAccountToken is not carried over: the operator mounts a token only with serviceAccountName",
        );
    }
    spec.image_pull_secrets = pod.image_pull_secrets.clone().unwrap_or_default();
    spec.priority_class_name = pod.priority_class_name.clone();
    let template = d.spec.template.metadata.as_ref();
    if let Some(meta) = template {
        spec.pod_labels = meta.labels.clone().unwrap_or_default();
        spec.pod_labels.retain(|k, _| !OWN_LABELS.contains(&k.as_str()));
        spec.pod_annotations = meta.annotations.clone().unwrap_or_default();
        spec.pod_annotations.retain(|k, _| !OWN_ANNOTATIONS.contains(&k.as_str()));
    }
    not_carried(d, pod, container, notes);
}

/// Everything the BatonConnector has no field for, by name and never by value: `args` may hold a
/// token as well as `env` may.
fn not_carried(d: &Deployment, pod: &PodSpec, container: &Container, notes: &mut Notes) {
    let replicas = d.spec.replicas.unwrap_or(1);
    if replicas > 1 {
        notes.not_carried(format!(
            "replicas: {replicas}: the operator runs one pod; two on one host id compete for the same tasks"
        ));
    }
    let count = |v: &Option<Vec<String>>| v.as_ref().map_or(0, Vec::len);
    if count(&container.command) > 0 {
        notes.not_carried(format!(
            "command ({} entries, not printed): the operator runs the image's entrypoint",
            count(&container.command)
        ));
    }
    if count(&container.args) > 0 {
        notes.not_carried(format!(
            "args ({} entries, not printed): pass settings as spec.config instead of flags",
            count(&container.args)
        ));
    }
    for v in pod.volumes.iter().flatten() {
        let what = if v.secret.is_some() {
            "a Secret mounted as files: a file-path setting takes the content in a Secret key instead"
        } else if v.config_map.is_some() {
            "a ConfigMap mounted as files"
        } else if v.empty_dir.is_some() {
            "an emptyDir: the operator gives the connector its own work volume at /work and /tmp"
        } else if v.persistent_volume_claim.is_some() {
            "a PersistentVolumeClaim"
        } else {
            "a volume"
        };
        notes.not_carried(format!("volume {} ({what})", v.name));
    }
    for m in container.volume_mounts.iter().flatten() {
        notes.not_carried(format!("volumeMount {} at {}", m.name, m.mount_path));
    }
    for c in pod.containers.iter().filter(|c| c.name != container.name) {
        notes.not_carried(format!("container {} (a sidecar): the operator runs the connector alone", c.name));
    }
    for c in pod.init_containers.iter().flatten() {
        notes.not_carried(format!("initContainer {}", c.name));
    }
    for (probe, set) in [
        ("livenessProbe", container.liveness_probe.is_some()),
        ("readinessProbe", container.readiness_probe.is_some()),
        ("startupProbe", container.startup_probe.is_some()),
    ] {
        if set {
            notes.not_carried(format!(
                "{probe}: spec.healthCheck.enabled adds probes on the SDK's health server (SDK v0.7.6 or newer)"
            ));
        }
    }
    others(pod, container, notes);
}

/// The rarer pod and container settings, each one line.
fn others(pod: &PodSpec, container: &Container, notes: &mut Notes) {
    let mut set = Vec::new();
    let checks: [(&str, bool); 11] = [
        ("ports", container.ports.as_ref().is_some_and(|p| !p.is_empty())),
        ("lifecycle", container.lifecycle.is_some()),
        ("workingDir", container.working_dir.is_some()),
        (
            "container securityContext",
            container.security_context.as_ref().is_some_and(|c| *c != Default::default()),
        ),
        ("pod securityContext", pod.security_context.as_ref().is_some_and(|c| *c != Default::default())),
        ("hostNetwork", pod.host_network == Some(true)),
        ("hostAliases", pod.host_aliases.as_ref().is_some_and(|h| !h.is_empty())),
        (
            "dnsConfig / dnsPolicy",
            pod.dns_config.is_some() || pod.dns_policy.as_deref().is_some_and(|p| p != "ClusterFirst"),
        ),
        ("runtimeClassName", pod.runtime_class_name.is_some()),
        (
            "topologySpreadConstraints",
            pod.topology_spread_constraints.as_ref().is_some_and(|t| !t.is_empty()),
        ),
        ("terminationGracePeriodSeconds", pod.termination_grace_period_seconds.is_some_and(|s| s != 30)),
    ];
    for (what, present) in checks {
        if present {
            set.push(what);
        }
    }
    for what in set {
        let why = if what.ends_with("securityContext") {
            ": the operator runs the connector under the restricted profile (non-root 65532, read-only root)"
        } else {
            ""
        };
        notes.not_carried(format!("{what}{why}"));
    }
}
