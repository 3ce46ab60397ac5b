//! The imported BatonConnector as commented YAML. The body is serialized from the typed spec, so
//! that what is printed is what the API types (and the API server) read; the comments are put
//! above the lines they are about.

use std::collections::{BTreeMap, BTreeSet};

use serde_yaml::{Mapping, Value};

use super::convert::Imported;

/// The manifest of one import: a header (what to do, what is not carried over), then the
/// BatonConnector with its comments.
pub fn manifest(imported: &Imported) -> Result<String, String> {
    let body = serde_yaml::to_string(&document(imported)?).map_err(|e| format!("internal: {e}"))?;
    let mut used = BTreeSet::new();
    let annotated = annotate(&body, &imported.notes.at, &mut used);
    let from = match &imported.namespace {
        Some(ns) => format!("{ns}/{}", imported.name),
        None => imported.name.clone(),
    };
    let mut out = format!(
        "# Imported by `kubectl baton import` from Deployment {from} (image {}).\n\
         # Review it, and compare what the operator would run with the running Deployment\n\
         # (baton-operator render): docs/migration.md.\n",
        imported.image
    );
    let notes = &imported.notes;
    section(&mut out, "To do:", &notes.todo);
    let leftover: Vec<String> =
        notes.at.iter().filter(|(p, _)| !used.contains(*p)).flat_map(|(_, c)| c.iter().cloned()).collect();
    section(&mut out, "Notes:", &leftover);
    let not_carried: Vec<String> =
        notes.not_carried.iter().map(|n| format!("not carried over: {n}")).collect();
    section(
        &mut out,
        "The BatonConnector has no field for these; the operator's Deployment will not have them:",
        &not_carried,
    );
    out.push_str(&annotated);
    Ok(out)
}

fn section(out: &mut String, title: &str, lines: &[String]) {
    if lines.is_empty() {
        return;
    }
    out.push_str(&format!("# {title}\n"));
    for line in lines {
        out.push_str(&format!("#   - {line}\n"));
    }
}

/// The object as a YAML value, in the spec's field order, without the defaults a person need not
/// read (`mode: Service`, `suspend: false`, `deletionPolicy: Revoke`, `ticketing: false`).
/// `provisioning` stays, false or true: the vendor's Secrets set it, and it changes what
/// ConductorOne may do.
fn document(imported: &Imported) -> Result<Value, String> {
    let mut spec = serde_yaml::to_value(&imported.spec).map_err(|e| format!("internal: {e}"))?;
    if let Value::Mapping(m) = &mut spec {
        for (key, default) in [
            ("mode", Value::from("Service")),
            ("suspend", Value::from(false)),
            ("deletionPolicy", Value::from("Revoke")),
            ("ticketing", Value::from(false)),
        ] {
            if m.get(key) == Some(&default) {
                m.remove(key);
            }
        }
    }
    let mut metadata = Mapping::new();
    metadata.insert("name".into(), imported.name.clone().into());
    if let Some(ns) = &imported.namespace {
        metadata.insert("namespace".into(), ns.clone().into());
    }
    let mut doc = Mapping::new();
    doc.insert("apiVersion".into(), "baton.conductorone.com/v1alpha1".into());
    doc.insert("kind".into(), "BatonConnector".into());
    doc.insert("metadata".into(), Value::Mapping(metadata));
    doc.insert("spec".into(), spec);
    Ok(Value::Mapping(doc))
}

/// Puts each path's comments above the line of its key (`spec.config.domain` above `domain:`
/// under `config:` under `spec:`), and records the paths it found.
fn annotate(body: &str, at: &BTreeMap<String, Vec<String>>, used: &mut BTreeSet<String>) -> String {
    let mut out = String::new();
    let mut stack: Vec<(usize, String)> = Vec::new();
    for line in body.lines() {
        let rest = line.trim_start();
        let indent = line.len() - rest.len();
        if let Some(key) = key_of(rest) {
            while stack.last().is_some_and(|(i, _)| *i >= indent) {
                stack.pop();
            }
            stack.push((indent, key.to_string()));
            let path = stack.iter().map(|(_, k)| k.as_str()).collect::<Vec<_>>().join(".");
            if let Some(comments) = at.get(&path) {
                for c in comments {
                    out.push_str(&format!("{:indent$}# {c}\n", ""));
                }
                used.insert(path);
            }
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// The key of a mapping line (`key:` or `key: value`), not of a sequence item or a comment.
fn key_of(rest: &str) -> Option<&str> {
    if rest.starts_with("- ") || rest.starts_with('#') || rest == "-" {
        return None;
    }
    let key = rest.strip_suffix(':').or_else(|| rest.split_once(": ").map(|(k, _)| k))?;
    let key = key.trim_matches(|c| c == '"' || c == '\'');
    (!key.is_empty() && !key.contains(' ')).then_some(key)
}
