//! The YAML a user would apply: per namespace of `CHUNK` connectors, one file with their credential
//! Secrets and BatonConnectors, and its hand-written equivalent (the same Secrets plus the Deployments
//! `baton-operator render` prints). kubectl gets a few hundred objects per file, as a user would.

use std::{
    fmt::Write as _,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, ensure};

pub const CHUNK: usize = 100;

pub struct Manifests {
    pub fleet_namespaces: PathBuf,
    pub fleet: PathBuf,
    pub baseline_namespaces: PathBuf,
    pub baseline: PathBuf,
}

pub fn connector_name(i: usize) -> String {
    format!("c-{i:05}")
}

pub fn fleet_namespace(chunk: usize) -> String {
    format!("fleet-{chunk:03}")
}

pub fn secret(ns: &str, name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\n  namespace: {ns}\nstringData:\n  \
         BATON_CLIENT_ID: bench@example.conductor.one/ccc\n  BATON_CLIENT_SECRET: secret-token:conductorone.com:v1:bench\n  \
         api-token: bench\n"
    )
}

/// A BatonConnector with its own credentials Secret (`<name>-c1`), as in the README's example, and
/// the settings baton-okta requires (`baton-operator render` checks them): the API token from the same Secret.
pub fn connector(ns: &str, name: &str) -> String {
    format!(
        "{}  credentials:\n    secretRef:\n      name: {name}-c1\n",
        connector_without_credentials(ns, name)
    )
}

/// The same without `spec.credentials`, for a connector whose credential the operator manages.
pub fn connector_without_credentials(ns: &str, name: &str) -> String {
    format!(
        "apiVersion: baton.conductorone.com/v1alpha1\nkind: BatonConnector\nmetadata:\n  name: {name}\n  namespace: {ns}\n\
         spec:\n  connector: okta\n  config:\n    domain:\n      value: {name}.okta.com\n    api-token:\n      \
         secretKeyRef: {{name: {name}-c1, key: api-token}}\n"
    )
}

fn namespaces(names: impl Iterator<Item = String>) -> String {
    names.map(|n| format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {n}\n---\n")).collect()
}

fn user_chunk(ns: &str, range: std::ops::Range<usize>) -> String {
    let mut out = String::new();
    for i in range {
        let name = connector_name(i);
        let _ = write!(out, "{}---\n{}---\n", secret(ns, &format!("{name}-c1")), connector(ns, &name));
    }
    out
}

/// Writes everything for `n` connectors under `dir`; `operator` renders the Deployments.
pub fn write(dir: &Path, n: usize, operator: &Path) -> anyhow::Result<Manifests> {
    let m = Manifests {
        fleet_namespaces: dir.join("fleet-namespaces.yaml"),
        fleet: dir.join("fleet"),
        baseline_namespaces: dir.join("baseline-namespaces.yaml"),
        baseline: dir.join("baseline"),
    };
    let render_input = dir.join("render-input.yaml");
    std::fs::create_dir_all(&m.fleet)?;
    std::fs::create_dir_all(&m.baseline)?;
    let chunks = n.div_ceil(CHUNK);
    std::fs::write(&m.fleet_namespaces, namespaces((0..chunks).map(fleet_namespace)))?;
    std::fs::write(&m.baseline_namespaces, namespaces((0..chunks).map(|c| format!("baseline-{c:03}"))))?;
    for c in 0..chunks {
        let range = c * CHUNK..((c + 1) * CHUNK).min(n);
        std::fs::write(m.fleet.join(format!("{c:03}.yaml")), user_chunk(&fleet_namespace(c), range.clone()))?;
        let ns = format!("baseline-{c:03}");
        let user = user_chunk(&ns, range.clone());
        std::fs::write(&render_input, &user)?;
        let out = Command::new(operator)
            .args(["render", "-n", &ns, "-f"])
            .arg(&render_input)
            .output()
            .context("running baton-operator render")?;
        ensure!(out.status.success(), "baton-operator render: {}", String::from_utf8_lossy(&out.stderr));
        let mut baseline: String =
            range.map(|i| format!("{}---\n", secret(&ns, &format!("{}-c1", connector_name(i))))).collect();
        baseline.push_str(&String::from_utf8(out.stdout)?);
        std::fs::write(m.baseline.join(format!("{c:03}.yaml")), baseline)?;
    }
    Ok(m)
}
