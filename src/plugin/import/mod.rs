//! `kubectl baton import`: a hand-written connector Deployment (the vendor's Secret + Deployment
//! layout) as a BatonConnector manifest, checked as the operator checks it. From a file it needs no
//! cluster, and reads only the key names of the Secrets in it; from the cluster it reads the
//! Deployment alone. No value of a Secret, and no value the schema marks secret, is ever printed.

pub mod convert;
mod env;
mod notes;
mod pod;
pub mod print;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::{apps::v1::Deployment, core::v1::Secret};
use kube::{Api, Client};
use serde_yaml::Value;

use super::error::{self, PluginError, Result};
use crate::{
    api::BatonConnectorSpec,
    catalog::{Catalog, validate},
    resources::labels,
};
use convert::{Imported, Source};

/// What a file holds for an import: its Deployments, the key names of its Secrets, and what was
/// fixed on reading (values Kubernetes would refuse, such as a label written as a boolean).
#[derive(Debug, Default)]
pub struct Objects {
    pub deployments: Vec<Deployment>,
    pub secrets: BTreeMap<String, BTreeSet<String>>,
    pub fixes: Vec<String>,
}

/// What the import printed and what its check found.
#[derive(Debug, Default)]
pub struct Report {
    pub text: String,
    pub warnings: Vec<String>,
    pub errors: Vec<String>,
}

/// Reads every YAML document of `text` (a `List`, as `kubectl get -o yaml` writes, is unpacked).
pub fn read(text: &str) -> Result<Objects, String> {
    let mut objects = Objects::default();
    for doc in serde_yaml::Deserializer::from_str(text) {
        let value: Value = serde::Deserialize::deserialize(doc).map_err(|e| e.to_string())?;
        let mut queue = vec![value];
        while let Some(mut value) = queue.pop() {
            let kind = value.get("kind").and_then(Value::as_str).unwrap_or_default().to_string();
            if kind.ends_with("List") {
                if let Some(Value::Sequence(items)) = value.get("items") {
                    queue.extend(items.iter().rev().cloned());
                }
                continue;
            }
            normalize(&mut value, "", &kind, &mut objects.fixes);
            match kind.as_str() {
                "Deployment" => objects
                    .deployments
                    .push(serde_yaml::from_value(value).map_err(|e| format!("a Deployment: {e}"))?),
                "Secret" => {
                    let secret: Secret =
                        serde_yaml::from_value(value).map_err(|e| format!("a Secret: {e}"))?;
                    let keys = secret.data.unwrap_or_default().into_keys();
                    let keys = keys.chain(secret.string_data.unwrap_or_default().into_keys());
                    let name = secret.metadata.name.unwrap_or_default();
                    objects.secrets.entry(name).or_default().extend(keys);
                }
                _ => {}
            }
        }
    }
    Ok(objects)
}

/// Maps of strings that hand-written YAML fills with booleans and numbers (`baton: true`,
/// `BATON_PROVISIONING: true` under `stringData`): the API server refuses them, and so would the
/// typed read. Each becomes the string it meant, and is reported by key, never by a Secret's value.
fn normalize(value: &mut Value, key: &str, kind: &str, fixes: &mut Vec<String>) {
    const STRING_MAPS: &[&str] =
        &["labels", "annotations", "matchLabels", "nodeSelector", "data", "stringData"];
    match value {
        Value::Mapping(map) => {
            for (k, child) in map.iter_mut() {
                let k = k.as_str().unwrap_or_default().to_string();
                let in_env_item = key == "env" && k == "value";
                if (STRING_MAPS.contains(&key) || in_env_item)
                    && matches!(child, Value::Bool(_) | Value::Number(_))
                {
                    let text = match child {
                        Value::Bool(b) => b.to_string(),
                        Value::Number(n) => n.to_string(),
                        _ => unreachable!(),
                    };
                    *child = Value::String(text);
                    let place = if in_env_item { "an env value".to_string() } else { format!("{key}.{k}") };
                    fixes.push(format!(
                        "{kind}: {place} is not a string, which the API server refuses; read as one"
                    ));
                } else {
                    normalize(child, &k, kind, fixes);
                }
            }
        }
        // Items of `env` keep the key, so that their `value` is recognised above.
        Value::Sequence(items) => items.iter_mut().for_each(|i| normalize(i, key, kind, fixes)),
        _ => {}
    }
}

/// Whether the operator made this Deployment (then it is a BatonConnector already).
fn operators_own(d: &Deployment) -> bool {
    let managed = d.metadata.labels.as_ref().and_then(|l| l.get(labels::MANAGED_BY_LABEL));
    let owned = d.metadata.owner_references.iter().flatten().any(|o| o.kind == "BatonConnector");
    owned || managed.is_some_and(|m| m == labels::MANAGED_BY)
}

/// Imports `name` (or, without a name, every connector Deployment) from `objects`.
pub fn import(
    objects: &Objects,
    name: Option<&str>,
    connector: Option<&str>,
    namespace: Option<&str>,
    from_file: bool,
) -> Result<Report> {
    let mut report = Report { warnings: objects.fixes.clone(), ..Default::default() };
    let mut imported = Vec::new();
    let chosen: Vec<&Deployment> = objects
        .deployments
        .iter()
        .filter(|d| name.is_none_or(|n| d.metadata.name.as_deref() == Some(n)))
        .collect();
    if let (Some(n), []) = (name, chosen.as_slice()) {
        return Err(PluginError::NotFound {
            kind: "deployment",
            namespace: namespace.unwrap_or("(the file)").into(),
            name: n.into(),
        });
    }
    for d in chosen {
        let label = d.metadata.name.clone().unwrap_or_default();
        if operators_own(d) {
            let why = format!("deployment {label:?} is the operator's own (a BatonConnector's child)");
            if name.is_some() {
                return Err(anyhow::anyhow!(why).into());
            }
            report.warnings.push(format!("{why}; skipped"));
            continue;
        }
        let secrets = from_file.then_some(&objects.secrets);
        match convert::convert(Source { deployment: d, secrets, connector, namespace }, Catalog::embedded()) {
            Ok(i) => imported.push(i),
            Err(e) if name.is_some() => return Err(anyhow::anyhow!(e).into()),
            Err(e) => report.warnings.push(format!("{e}; skipped")),
        }
    }
    if imported.is_empty() {
        return Err(anyhow::anyhow!("no connector Deployment (image baton-<connector>) to import").into());
    }
    let mut documents = Vec::new();
    for i in &imported {
        documents.push(print::manifest(i).map_err(anyhow::Error::msg)?);
        check(i, from_file.then_some(&objects.secrets), &mut report);
    }
    report.text = documents.join("---\n");
    Ok(report)
}

/// The operator's own check of the settings (`ConfigValid`), with the key names of the
/// `secretRefs` Secrets when every one of them was in the file.
fn check(i: &Imported, secrets: Option<&BTreeMap<String, BTreeSet<String>>>, report: &mut Report) {
    let keys = env_from_keys(&i.spec, secrets);
    let outcome = validate::validate(&i.spec, keys.as_ref(), Catalog::embedded());
    let name = &i.name;
    report.warnings.extend(outcome.warnings().into_iter().map(|w| format!("{name}: {w}")));
    report.errors.extend(outcome.errors().iter().map(|e| format!("{name}: {e}")));
}

fn env_from_keys(
    spec: &BatonConnectorSpec,
    secrets: Option<&BTreeMap<String, BTreeSet<String>>>,
) -> Option<BTreeSet<String>> {
    let secrets = secrets?;
    let mut keys = BTreeSet::new();
    for r in &spec.secret_refs {
        keys.extend(secrets.get(&r.name)?.iter().cloned());
    }
    Some(keys)
}

/// `-f FILE` (`-` for standard input).
pub fn from_file(
    path: &std::path::Path,
    name: Option<&str>,
    connector: Option<&str>,
    namespace: Option<&str>,
) -> Result<Report> {
    let text = if path.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin())
    } else {
        std::fs::read_to_string(path)
    }
    .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
    let objects = read(&text).map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
    import(&objects, name, connector, namespace, true)
}

/// NAME from the cluster: the Deployment only.
pub async fn from_cluster(
    client: &Client,
    namespace: &str,
    name: &str,
    connector: Option<&str>,
) -> Result<Report> {
    let api: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let deployment = api.get(name).await.map_err(|e| error::named(e, "deployment", namespace, name))?;
    let objects = Objects { deployments: vec![deployment], ..Default::default() };
    import(&objects, Some(name), connector, Some(namespace), false)
}

/// Prints the manifests to `out` and the check's findings to standard error; definite errors make
/// the command fail after printing, so that a script stops on them and a person still sees the draft.
pub fn finish(report: Report, out: &mut impl std::io::Write) -> Result<()> {
    out.write_all(report.text.as_bytes()).map_err(anyhow::Error::from)?;
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    match report.errors.as_slice() {
        [] => Ok(()),
        errors => Err(PluginError::Invalid(errors.join("\n  "))),
    }
}
