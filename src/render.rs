//! `render`: what `run` would apply for the resources in a file, without a cluster. Secrets in the
//! same file stand in for the cluster's, so the config hash is the one `run` computes.
//!
//! Managed credentials exist only once the running operator has minted them: for those, render
//! shows the Secret revision the operator would create, named, labelled and owned as the operator
//! does it, with [`MINTED`] in place of every value it cannot know, and never a real secret.
//!
//! A connector that uses a tenant gets a comment naming the tenant and where its principal is
//! (`tenant.rs`); the tenant's `connectorDefaults` apply when the tenant is in the same input.

mod tenant;

use std::collections::BTreeMap;

use k8s_openapi::{api::core::v1::Secret, jiff::Timestamp};
use kube::ResourceExt;
use serde::Deserialize;

use crate::{
    api::{BatonConnector, ConnectorRef, CredentialsStatus, RotationPhase},
    decide::rotation::{self, StoredCredential, Trigger},
    resources::{
        self, SecretData, compare,
        credentials::{self, CREDENTIAL_ID_ANNOTATION, ISSUED_AT_ANNOTATION},
        deployment, inputs,
    },
};

/// Stands for a value the operator gets from ConductorOne when it mints a credential.
pub const MINTED: &str = "<minted by the operator at run time>";
/// Stands for a hash over minted values: render cannot compute the one the operator will write.
pub const HASHED_AT_RUN_TIME: &str = "<hash of the minted credential, computed by the operator at run time>";

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
    let mut tenants = tenant::Tenants::default();
    for (index, doc) in serde_yaml::Deserializer::from_str(input).enumerate() {
        let value =
            serde_yaml::Value::deserialize(doc).map_err(|source| RenderError::Parse { index, source })?;
        let kind = value.get("kind").and_then(|k| k.as_str()).unwrap_or_default().to_string();
        match kind.as_str() {
            "Secret" => secrets
                .push(serde_yaml::from_value(value).map_err(|source| RenderError::Parse { index, source })?),
            "BatonConnector" => connectors
                .push(serde_yaml::from_value(value).map_err(|source| RenderError::Parse { index, source })?),
            "ConductorOneTenant" => tenants.add_namespaced(
                serde_yaml::from_value(value).map_err(|source| RenderError::Parse { index, source })?,
                default_namespace,
            ),
            "ClusterConductorOneTenant" => tenants.add_cluster(
                serde_yaml::from_value(value).map_err(|source| RenderError::Parse { index, source })?,
            ),
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
        let (note, defaults) = tenant::principal(&bc, &tenants).unwrap_or_default();
        let bc = crate::decide::tenant::with_defaults(&bc, defaults.as_ref()).into_owned();
        let first = out.len();
        let missing = |p: crate::resources::InputProblem| {
            invalid(format!("{p} (render reads referenced Secrets from the same file)"))
        };
        if bc.spec.mode == crate::api::Mode::OneShot {
            let (mut cronjob, _) = resources::plan_cronjob(&bc, &data).map_err(missing)?;
            compare::stamp(&mut cronjob);
            out.push(serde_yaml::to_string(&cronjob).expect("a CronJob always serializes"));
            out[first].insert_str(0, &note);
            continue;
        }
        let managed = bc.spec.credentials.managed.is_some().then(|| managed_secret(&bc));
        let credentials = match (&managed, &bc.spec.credentials.secret_ref) {
            (Some(secret), _) => {
                data.insert_secret(secret);
                secret.name_any()
            }
            (None, Some(r)) => r.name.clone(),
            // validate_cel refuses a Service connector with neither.
            (None, None) => return Err(invalid("set credentials.secretRef or credentials.managed".into())),
        };
        let plan = resources::plan(&bc, &data, &credentials).map_err(missing)?;
        let mut deployment = plan.deployment;
        if let Some(secret) = managed {
            // Both hashes cover the minted values; one computed over the placeholders would look
            // real and never match the cluster's.
            let template = deployment.spec.template.metadata.as_mut();
            if let Some(annotations) = template.and_then(|m| m.annotations.as_mut()) {
                annotations.insert(deployment::CONFIG_HASH_ANNOTATION.into(), HASHED_AT_RUN_TIME.into());
            }
            deployment
                .annotations_mut()
                .insert(compare::APPLIED_HASH_ANNOTATION.into(), HASHED_AT_RUN_TIME.into());
            out.push(serde_yaml::to_string(&secret).expect("a Secret always serializes"));
        } else {
            compare::stamp(&mut deployment);
        }
        out.push(serde_yaml::to_string(&deployment).expect("a Deployment always serializes"));
        out[first].insert_str(0, &note);
    }
    Ok(out.join("---\n"))
}

/// The managed-credentials Secret revision the connector's pod would read, as the operator writes
/// it (`controller::credentials`), its values replaced by [`MINTED`]. The revision comes from the
/// resource's status when the input has one (`kubectl get bc -o yaml | baton-operator render -f -`),
/// else it is the one the operator's first rotation stores.
fn managed_secret(bc: &BatonConnector) -> Secret {
    let recorded: CredentialsStatus =
        bc.status.as_ref().and_then(|s| s.credentials.clone()).unwrap_or_default();
    let placeholder = StoredCredential {
        credential_id: MINTED.into(),
        client_id: MINTED.into(),
        issued_at: None,
        expires_at: None,
    };
    let settled = recorded.rotation.as_ref().is_some_and(|r| r.phase != RotationPhase::Issuing);
    let state = if settled || (recorded.rotation.is_none() && recorded.credential_id.is_some()) {
        recorded
    } else {
        // No credential yet, or one being issued: the rotation that stores it, numbered as the
        // operator numbers it. The connector it is minted for is recorded, not part of any name.
        let connector = ConnectorRef { app_id: MINTED.into(), connector_id: MINTED.into() };
        let started = rotation::start(&recorded, Trigger::Initial, &connector, Timestamp::UNIX_EPOCH);
        rotation::record_stored(&started, &placeholder)
    };
    // The revision the pod reads (`rotation::workload_secret`): the one being rolled to, else the
    // current one.
    let revision = match &state.rotation {
        Some(r) if r.phase == RotationPhase::Rolling => r.revision,
        _ => state.revision.unwrap_or(1),
    };
    let mut metadata = credentials::secret_metadata(bc, revision);
    metadata.annotations = Some(BTreeMap::from([
        (CREDENTIAL_ID_ANNOTATION.to_string(), MINTED.to_string()),
        (ISSUED_AT_ANNOTATION.to_string(), MINTED.to_string()),
    ]));
    Secret {
        metadata,
        type_: Some("Opaque".into()),
        // `stringData`, so that the placeholders read as text; the operator writes the same keys
        // under `data`.
        string_data: Some(BTreeMap::from([
            (inputs::CLIENT_ID_KEY.to_string(), MINTED.to_string()),
            (inputs::CLIENT_SECRET_KEY.to_string(), MINTED.to_string()),
        ])),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANAGED: &str = r#"
apiVersion: baton.conductorone.com/v1alpha1
kind: BatonConnector
metadata: {name: okta, namespace: identity}
spec:
  connector: okta
  config:
    domain: {value: acme.okta.com}
    api-token: {secretKeyRef: {name: okta-app, key: api-token}}
  credentials: {managed: {}}
  conductorOne: {apiCredentialsSecretRef: {name: api}, appId: a, connectorId: c}
"#;

    /// The Secret `MANAGED`'s settings refer to.
    const APP_SECRET: &str = "---\napiVersion: v1\nkind: Secret\nmetadata: {name: okta-app, namespace: identity}\nstringData: {api-token: not-a-real-token}\n";

    fn docs(out: &str) -> Vec<serde_json::Value> {
        serde_yaml::Deserializer::from_str(out).map(|d| serde_json::Value::deserialize(d).unwrap()).collect()
    }

    fn secret_read_by(deployment: &serde_json::Value) -> String {
        let env = deployment["spec"]["template"]["spec"]["containers"][0]["env"].as_array().unwrap();
        let id = env.iter().find(|e| e["name"] == inputs::CLIENT_SECRET_KEY).unwrap();
        id["valueFrom"]["secretKeyRef"]["name"].as_str().unwrap().to_string()
    }

    #[test]
    fn managed_credentials_render_the_first_revision_with_placeholders() {
        let out = docs(&render(&format!("{MANAGED}{APP_SECRET}"), "default").unwrap());
        assert_eq!(out.len(), 2, "the Secret, then the Deployment that reads it");
        let (secret, deployment) = (&out[0], &out[1]);
        assert_eq!(secret["kind"], "Secret");
        assert_eq!(secret["metadata"]["name"], rotation::secret_name("okta", 1));
        assert_eq!(secret["metadata"]["labels"][credentials::REVISION_LABEL], "1");
        assert_eq!(secret_read_by(deployment), rotation::secret_name("okta", 1));
        for key in [inputs::CLIENT_ID_KEY, inputs::CLIENT_SECRET_KEY] {
            assert_eq!(secret["stringData"][key], MINTED);
        }
        assert!(secret.get("data").is_none());
        let annotations = &deployment["spec"]["template"]["metadata"]["annotations"];
        assert_eq!(annotations[deployment::CONFIG_HASH_ANNOTATION], HASHED_AT_RUN_TIME);
        assert_eq!(
            deployment["metadata"]["annotations"][compare::APPLIED_HASH_ANNOTATION],
            HASHED_AT_RUN_TIME
        );
    }

    #[test]
    fn a_status_names_the_revision_in_use_or_being_rolled_to() {
        let with_status = |status: serde_json::Value| {
            let mut doc: serde_json::Value = serde_yaml::from_str(MANAGED).unwrap();
            doc["status"] = status;
            let input = format!("{}{APP_SECRET}", serde_yaml::to_string(&doc).unwrap());
            let out = docs(&render(&input, "default").unwrap());
            (out[0]["metadata"]["name"].as_str().unwrap().to_string(), secret_read_by(&out[1]))
        };
        let settled = json_state(3, None);
        let expected = rotation::secret_name("okta", 3);
        assert_eq!(with_status(settled), (expected.clone(), expected));
        let rolling = json_state(3, Some(("Rolling", 4)));
        let expected = rotation::secret_name("okta", 4);
        assert_eq!(with_status(rolling), (expected.clone(), expected));
        // Issuing: the pod reads the current revision until the new one is stored; render shows
        // the one the rotation stores next, which the next apply rolls to.
        let issuing = json_state(3, Some(("Issuing", 4)));
        let expected = rotation::secret_name("okta", 4);
        assert_eq!(with_status(issuing), (expected.clone(), expected));
    }

    /// The tenant example: each connector says which tenant serves it, and the principal in the
    /// same file is never printed (render never reads it).
    #[test]
    fn the_tenant_example_names_each_connector_s_tenant_and_never_prints_the_principal() {
        let input = include_str!("../examples/tenant-two-teams.yaml");
        let out = render(input, "default").unwrap();
        for connector in ["team-a/okta", "team-b/segment"] {
            let line = format!(
                "# {connector}: ConductorOne principal from ClusterConductorOneTenant \"prod\" (Secret \"conductorone-prod\" in the operator's namespace); the operator reads the principal from it at run time, render never does\n"
            );
            assert!(out.contains(&line), "{out}");
        }
        for principal in ["baton-operator@acme.conductor.one/spc", "secret-token:conductorone.com"] {
            assert!(!out.contains(principal), "the principal leaked into render's output");
        }
        let docs = docs(&out);
        assert_eq!(docs.iter().filter(|d| d["kind"] == "Deployment").count(), 2);
    }

    fn json_state(revision: i64, rotation: Option<(&str, i64)>) -> serde_json::Value {
        let mut credentials = serde_json::json!({
            "secretName": rotation::secret_name("okta", revision),
            "credentialId": "cred-1",
            "revision": revision,
        });
        if let Some((phase, r)) = rotation {
            credentials["rotation"] = serde_json::json!({
                "phase": phase, "trigger": "Requested", "revision": r, "startedAt": "2026-12-01T00:00:00Z",
            });
        }
        serde_json::json!({"credentials": credentials})
    }
}
