//! Fixtures for the builders' unit tests.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use kube::api::ObjectMeta;

use crate::api::{BatonConnector, BatonConnectorSpec, CredentialsSpec, SecretRef};

/// A minimal valid resource named `name` in namespace `ns` for `connector`, reading its ConductorOne
/// credentials from the Secret `c1`.
pub fn connector(name: &str, connector: &str) -> BatonConnector {
    let spec: BatonConnectorSpec = serde_json::from_value(serde_json::json!({
        "connector": connector,
        "credentials": { "secretRef": { "name": "c1" } },
    }))
    .unwrap();
    let mut bc = BatonConnector::new(name, spec);
    bc.metadata = ObjectMeta {
        name: Some(name.into()),
        namespace: Some("ns".into()),
        uid: Some(format!("uid-{name}")),
        generation: Some(1),
        ..Default::default()
    };
    bc.spec.credentials =
        CredentialsSpec { secret_ref: Some(SecretRef { name: "c1".into() }), managed: None };
    bc
}

pub fn secret_data(pairs: &[(&str, &str)]) -> BTreeMap<String, ByteString> {
    pairs.iter().map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec()))).collect()
}
