//! A container's environment, resolved the way the kubelet resolves it
//! (`pkg/kubelet/kubelet_pods.go`, `makeEnvironmentVariables`): `envFrom` first (prefixed, keys that
//! are not valid names skipped), then `env` in order, each `value` expanded with `$(VAR)` against what
//! is defined so far. A required Secret, ConfigMap or key that is missing stops the container from
//! being created: the error carries the kubelet's own message, which becomes the waiting state
//! `CreateContainerConfigError`.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Pod};

/// What the resolver reads from the cluster: Secret and ConfigMap data by name, in the pod's
/// namespace. `None` means the object does not exist.
pub trait Objects {
    fn secret(&self, name: &str) -> Option<BTreeMap<String, String>>;
    fn config_map(&self, name: &str) -> Option<BTreeMap<String, String>>;
}

/// Why a container cannot be created: the waiting reason and the kubelet's message.
#[derive(Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub reason: &'static str,
    pub message: String,
}

fn config_error(message: String) -> ConfigError {
    ConfigError { reason: "CreateContainerConfigError", message }
}

/// The environment of `container` in `pod`, in the order the kubelet hands it to the runtime.
pub fn resolve(
    pod: &Pod,
    container: &Container,
    objects: &dyn Objects,
) -> Result<Vec<(String, String)>, ConfigError> {
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let mut out: Vec<(String, String)> = Vec::new();
    let set = |out: &mut Vec<(String, String)>, k: String, v: String| {
        // A later definition replaces an earlier one in place, as the kubelet's map-then-order does.
        match out.iter_mut().find(|(name, _)| *name == k) {
            Some(slot) => slot.1 = v,
            None => out.push((k, v)),
        }
    };
    for from in container.env_from.iter().flatten() {
        let prefix = from.prefix.clone().unwrap_or_default();
        let data = if let Some(s) = &from.secret_ref {
            match objects.secret(&s.name) {
                Some(d) => d,
                None if s.optional == Some(true) => continue,
                None => return Err(config_error(format!("secret \"{}\" not found", s.name))),
            }
        } else if let Some(c) = &from.config_map_ref {
            match objects.config_map(&c.name) {
                Some(d) => d,
                None if c.optional == Some(true) => continue,
                None => return Err(config_error(format!("configmap \"{}\" not found", c.name))),
            }
        } else {
            continue;
        };
        for (k, v) in data {
            let name = format!("{prefix}{k}");
            // The kubelet skips (and reports in an event) keys that are not valid variable names.
            if valid_name(&name) {
                set(&mut out, name, v);
            }
        }
    }
    for var in container.env.iter().flatten() {
        let value = if let Some(v) = &var.value {
            let defined: BTreeMap<&str, &str> = out.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            expand(v, &defined)
        } else if let Some(source) = &var.value_from {
            if let Some(r) = &source.secret_key_ref {
                let optional = r.optional == Some(true);
                match objects.secret(&r.name) {
                    None if optional => continue,
                    None => return Err(config_error(format!("secret \"{}\" not found", r.name))),
                    Some(d) => match d.get(&r.key) {
                        Some(v) => v.clone(),
                        None if optional => continue,
                        None => {
                            return Err(config_error(format!(
                                "couldn't find key {} in Secret {ns}/{}",
                                r.key, r.name
                            )));
                        }
                    },
                }
            } else if let Some(r) = &source.config_map_key_ref {
                let optional = r.optional == Some(true);
                match objects.config_map(&r.name) {
                    None if optional => continue,
                    None => return Err(config_error(format!("configmap \"{}\" not found", r.name))),
                    Some(d) => match d.get(&r.key) {
                        Some(v) => v.clone(),
                        None if optional => continue,
                        None => {
                            return Err(config_error(format!(
                                "couldn't find key {} in ConfigMap {ns}/{}",
                                r.key, r.name
                            )));
                        }
                    },
                }
            } else if let Some(f) = &source.field_ref {
                field(pod, &f.field_path)
                    .ok_or_else(|| config_error(format!("unsupported fieldPath: {}", f.field_path)))?
            } else {
                String::new()
            }
        } else {
            String::new()
        };
        set(&mut out, var.name.clone(), value);
    }
    Ok(out)
}

/// `$(VAR)` replaced by a variable defined earlier, `$$` by `$`, anything else kept as written
/// (`k8s.io/kubernetes/third_party/forked/golang/expansion`).
pub fn expand(input: &str, defined: &BTreeMap<&str, &str>) -> String {
    let bytes = input.as_bytes();
    let mut out = String::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'$' && i + 1 < bytes.len() {
            match bytes[i + 1] {
                b'$' => {
                    out.push('$');
                    i += 2;
                    continue;
                }
                b'(' => {
                    if let Some(end) = input[i + 2..].find(')') {
                        let name = &input[i + 2..i + 2 + end];
                        match defined.get(name) {
                            Some(v) => out.push_str(v),
                            None => out.push_str(&input[i..i + 3 + end]),
                        }
                        i += 3 + end;
                        continue;
                    }
                }
                _ => {}
            }
        }
        let ch = input[i..].chars().next().unwrap_or_default();
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

/// The downward API fields the kubelet resolves for `fieldRef`.
fn field(pod: &Pod, path: &str) -> Option<String> {
    let meta = &pod.metadata;
    let status = pod.status.as_ref();
    let spec = pod.spec.as_ref();
    let subscript = |prefix: &str| path.strip_prefix(prefix)?.strip_suffix("']").map(str::to_string);
    Some(match path {
        "metadata.name" => meta.name.clone().unwrap_or_default(),
        "metadata.namespace" => meta.namespace.clone().unwrap_or_default(),
        "metadata.uid" => meta.uid.clone().unwrap_or_default(),
        "spec.nodeName" => spec.and_then(|s| s.node_name.clone()).unwrap_or_default(),
        "spec.serviceAccountName" => spec.and_then(|s| s.service_account_name.clone()).unwrap_or_default(),
        "status.hostIP" => status.and_then(|s| s.host_ip.clone()).unwrap_or_default(),
        "status.podIP" => status.and_then(|s| s.pod_ip.clone()).unwrap_or_default(),
        _ => {
            if let Some(k) = subscript("metadata.labels['") {
                meta.labels.as_ref().and_then(|l| l.get(&k).cloned()).unwrap_or_default()
            } else if let Some(k) = subscript("metadata.annotations['") {
                meta.annotations.as_ref().and_then(|a| a.get(&k).cloned()).unwrap_or_default()
            } else {
                return None;
            }
        }
    })
}

/// A C identifier-like name, as the kubelet requires of variables taken from `envFrom`.
fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '-' || c == '.')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
}
