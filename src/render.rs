//! `render`: what `run` would apply for the resources in a file, without a cluster. Secrets in the
//! same file stand in for the cluster's, so the config hash is the one `run` computes.

use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use serde::Deserialize;

use crate::{
    api::BatonConnector,
    resources::{self, SecretData, compare},
};

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("document {index}: {source}")]
    Parse { index: usize, source: serde_yaml::Error },
    #[error("BatonConnector {name:?}: {message}")]
    Invalid { name: String, message: String },
    #[error("no BatonConnector in the input")]
    Empty,
}

/// Renders every BatonConnector in `input` (a multi-document YAML stream) into the YAML of the objects
/// the operator would apply. Resources without a namespace get `default_namespace`.
pub fn render(input: &str, default_namespace: &str) -> Result<String, RenderError> {
    let mut secrets: Vec<Secret> = Vec::new();
    let mut connectors: Vec<BatonConnector> = Vec::new();
    for (index, doc) in serde_yaml::Deserializer::from_str(input).enumerate() {
        let value =
            serde_yaml::Value::deserialize(doc).map_err(|source| RenderError::Parse { index, source })?;
        let kind = value.get("kind").and_then(|k| k.as_str()).unwrap_or_default().to_string();
        match kind.as_str() {
            "Secret" => secrets
                .push(serde_yaml::from_value(value).map_err(|source| RenderError::Parse { index, source })?),
            "BatonConnector" => connectors
                .push(serde_yaml::from_value(value).map_err(|source| RenderError::Parse { index, source })?),
            _ => {}
        }
    }
    if connectors.is_empty() {
        return Err(RenderError::Empty);
    }
    let mut out = Vec::new();
    for mut bc in connectors {
        let ns = bc.namespace().unwrap_or_else(|| default_namespace.to_string());
        bc.metadata.namespace = Some(ns.clone());
        let name = bc.name_any();
        let invalid = |message: String| RenderError::Invalid { name: name.clone(), message };
        // The same CEL rules the API server enforces, so a bad file fails here rather than at apply.
        BatonConnector::validate_cel(&bc).map_err(|e| invalid(e.to_string()))?;
        let mut data = SecretData::default();
        for s in
            secrets.iter().filter(|s| s.namespace().unwrap_or_else(|| default_namespace.to_string()) == ns)
        {
            data.insert_secret(s);
        }
        // The connector's settings against the catalog, as the Baton SDK would check them at startup.
        crate::catalog::validate::for_render(&bc, &data).map_err(invalid)?;
        let missing = |p: crate::resources::InputProblem| {
            invalid(format!("{p} (render reads referenced Secrets from the same file)"))
        };
        if bc.spec.mode == crate::api::Mode::OneShot {
            let (mut cronjob, _) = resources::plan_cronjob(&bc, &data).map_err(missing)?;
            compare::stamp(&mut cronjob);
            out.push(serde_yaml::to_string(&cronjob).expect("a CronJob always serializes"));
            continue;
        }
        let Some(credentials) = bc.spec.credentials.secret_ref.as_ref().map(|r| r.name.clone()) else {
            return Err(invalid(
                "managed credentials are minted by the running operator; render shows secretRef connectors only".into(),
            ));
        };
        let plan = resources::plan(&bc, &data, &credentials).map_err(missing)?;
        let mut deployment = plan.deployment;
        compare::stamp(&mut deployment);
        out.push(serde_yaml::to_string(&deployment).expect("a Deployment always serializes"));
    }
    Ok(out.join("---\n"))
}
