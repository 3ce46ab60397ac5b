//! What the pod reads from Secrets, checked and hashed. A change of the hash rolls the pods.

use std::collections::BTreeMap;

use k8s_openapi::{ByteString, api::core::v1::Secret, jiff::Timestamp};
use sha2::{Digest, Sha256};

use super::credentials::{CREDENTIAL_ID_ANNOTATION, EXPIRES_AT_ANNOTATION, ISSUED_AT_ANNOTATION};
use crate::{
    api::{BatonConnector, Reason},
    decide::rotation::StoredCredential,
};

pub const CLIENT_ID_KEY: &str = "BATON_CLIENT_ID";
pub const CLIENT_SECRET_KEY: &str = "BATON_CLIENT_SECRET";

/// The data of Secrets as read from the cluster (or from a file for `render`), by name. A Secret that
/// is absent here does not exist. Of the operator's own credential revisions it also holds what their
/// annotations say about the credential, so a rotation never reads one back from the API server.
#[derive(Clone, Debug, Default)]
pub struct SecretData {
    data: BTreeMap<String, BTreeMap<String, ByteString>>,
    stored: BTreeMap<String, StoredCredential>,
}

impl SecretData {
    pub fn insert(&mut self, name: impl Into<String>, data: BTreeMap<String, ByteString>) {
        let name = name.into();
        self.stored.remove(&name);
        self.data.insert(name, data);
    }

    /// Adds a Secret's data and the annotations it carries (only the operator's are looked at).
    pub fn insert_with_annotations<'a>(
        &mut self,
        name: impl Into<String>,
        data: BTreeMap<String, ByteString>,
        annotations: impl IntoIterator<Item = (&'a String, &'a String)>,
    ) {
        let name = name.into();
        let stored = stored_credential(&data, annotations);
        self.insert(name.clone(), data);
        if let Some(stored) = stored {
            self.stored.insert(name, stored);
        }
    }

    /// Adds a Secret object, folding `stringData` into `data` as the API server would.
    pub fn insert_secret(&mut self, secret: &Secret) {
        let mut data = secret.data.clone().unwrap_or_default();
        for (k, v) in secret.string_data.iter().flatten() {
            data.insert(k.clone(), ByteString(v.clone().into_bytes()));
        }
        let name = secret.metadata.name.clone().unwrap_or_default();
        self.insert_with_annotations(name, data, secret.metadata.annotations.iter().flatten());
    }

    pub fn get(&self, name: &str) -> Option<&BTreeMap<String, ByteString>> {
        self.data.get(name)
    }

    /// What a credential revision the operator stored says about its credential (never its secret).
    pub fn stored_credential(&self, name: &str) -> Option<&StoredCredential> {
        self.stored.get(name)
    }
}

/// Reads a credential revision's annotations: the credential's id (present on every revision the
/// operator writes), when it was issued and when it expires, and the client ID from its data.
fn stored_credential<'a>(
    data: &BTreeMap<String, ByteString>,
    annotations: impl IntoIterator<Item = (&'a String, &'a String)>,
) -> Option<StoredCredential> {
    let annotations: BTreeMap<&str, &str> =
        annotations.into_iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let id = annotations.get(CREDENTIAL_ID_ANNOTATION)?;
    let time = |key: &str| annotations.get(key).and_then(|v| v.parse::<Timestamp>().ok());
    Some(StoredCredential {
        credential_id: id.to_string(),
        client_id: data
            .get(CLIENT_ID_KEY)
            .map(|v| String::from_utf8_lossy(&v.0).to_string())
            .unwrap_or_default(),
        issued_at: time(ISSUED_AT_ANNOTATION),
        expires_at: time(EXPIRES_AT_ANNOTATION),
    })
}

/// Why the pod's inputs are not usable. Messages name Secrets and keys, never values.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InputProblem {
    #[error("Secret {name:?} not found in namespace {namespace:?}")]
    SecretNotFound { namespace: String, name: String },
    #[error("Secret {name:?} has no key {key:?}")]
    KeyMissing { name: String, key: &'static str },
    #[error("Secret {name:?} key {key:?} is empty")]
    KeyEmpty { name: String, key: &'static str },
    /// A `spec.config` reference to a key the Secret lacks (the kubelet would refuse to start the pod).
    #[error("Secret {name:?} has no key {key:?} (spec.config.{field}.secretKeyRef)")]
    ConfigKeyMissing { name: String, key: String, field: String },
    /// `conductorOne.tenantRef` names no existing tenant, or no cluster tenant is the default.
    #[error("{0}")]
    TenantNotFound(String),
    /// The cluster tenant does not allow this namespace.
    #[error(
        "ClusterConductorOneTenant {tenant:?} does not allow namespace {namespace:?} (spec.allowedNamespaces)"
    )]
    TenantNotAllowed { tenant: String, namespace: String },
    /// The tenant's own credentials cannot be used: said once, on the tenant, not as the Secret's
    /// problem of every connector.
    #[error("{kind} {name:?} is not ready: {why}")]
    TenantNotReady { kind: &'static str, name: String, why: String },
}

impl InputProblem {
    /// A short CamelCase reason for conditions and events.
    pub fn reason(&self) -> Reason {
        match self {
            Self::SecretNotFound { .. } => Reason::SecretNotFound,
            Self::KeyMissing { .. } | Self::ConfigKeyMissing { .. } => Reason::SecretKeyMissing,
            Self::KeyEmpty { .. } => Reason::SecretKeyEmpty,
            Self::TenantNotFound(_) => Reason::TenantNotFound,
            Self::TenantNotAllowed { .. } => Reason::TenantNotAllowed,
            Self::TenantNotReady { .. } => Reason::TenantNotReady,
        }
    }

    /// Whether waiting can fix it: a Secret that does not exist yet is often created moments later by
    /// GitOps or an external-secrets controller; a Secret with the wrong keys needs a person.
    pub fn may_resolve_itself(&self) -> bool {
        matches!(self, Self::SecretNotFound { .. } | Self::TenantNotFound(_) | Self::TenantNotReady { .. })
    }
}

/// The names of every Secret the operator must read to reconcile this resource, in a stable order.
pub fn referenced_secrets(bc: &BatonConnector) -> Vec<String> {
    let mut names: Vec<String> = bc.spec.secret_refs.iter().map(|s| s.name.clone()).collect();
    names.extend(config_refs(bc).map(|(_, r)| r.name.clone()));
    if let Some(r) = &bc.spec.credentials.secret_ref {
        names.push(r.name.clone());
    }
    // The older form's Secret, in this namespace; a tenant's Secret is the tenant's input, read
    // where the tenant says (`decide::tenant`).
    if let Some(r) = bc.spec.conductor_one.as_ref().and_then(|c1| c1.api_credentials_secret_ref.as_ref()) {
        names.push(r.name.clone());
    }
    names.extend(output_secret(bc));
    // The operator's own credential Secrets, so that deleting one by hand is noticed at once.
    if let Some(c) = bc.status.as_ref().and_then(|s| s.credentials.as_ref()) {
        names.extend(c.secret_name.iter().cloned());
        // And the revision a rotation is issuing or rolling out, which the workload reads next.
        names.extend(
            c.rotation
                .iter()
                .map(|r| crate::decide::rotation::secret_name(&kube::ResourceExt::name_any(bc), r.revision)),
        );
    }
    names.sort();
    names.dedup();
    names
}

/// Checks that every Secret the pod reads exists with the keys it needs, and returns the hash of
/// exactly the data the pod reads: the two credential keys of the credentials Secret and every key of
/// each `secretRefs` Secret (they are mounted whole with `envFrom`).
pub fn pod_inputs_hash(
    bc: &BatonConnector,
    namespace: &str,
    secrets: &SecretData,
    credentials_secret: Option<&str>,
) -> Result<String, InputProblem> {
    let lookup = |name: &str| {
        secrets.get(name).ok_or_else(|| InputProblem::SecretNotFound {
            namespace: namespace.to_string(),
            name: name.to_string(),
        })
    };
    let mut hasher = Sha256::new();
    let mut feed = |parts: &[&[u8]]| {
        for p in parts {
            hasher.update((p.len() as u64).to_be_bytes());
            hasher.update(p);
        }
    };
    if let Some(credentials_secret) = credentials_secret {
        let data = lookup(credentials_secret)?;
        for key in [CLIENT_ID_KEY, CLIENT_SECRET_KEY] {
            let name = credentials_secret.to_string();
            let value = data.get(key).ok_or_else(|| InputProblem::KeyMissing { name: name.clone(), key })?;
            if value.0.is_empty() {
                return Err(InputProblem::KeyEmpty { name, key });
            }
            feed(&[b"credentials", credentials_secret.as_bytes(), key.as_bytes(), &value.0]);
        }
    }
    for r in &bc.spec.secret_refs {
        for (key, value) in lookup(&r.name)? {
            feed(&[b"secretRef", r.name.as_bytes(), key.as_bytes(), &value.0]);
        }
    }
    // Only the referenced key: the pod reads no other. Without `config` nothing is fed, so the hash of
    // a resource that has none is what it always was.
    for (field, r) in config_refs(bc) {
        let value = lookup(&r.name)?.get(&r.key).ok_or_else(|| InputProblem::ConfigKeyMissing {
            name: r.name.clone(),
            key: r.key.clone(),
            field: field.clone(),
        })?;
        feed(&[b"config", field.as_bytes(), r.name.as_bytes(), r.key.as_bytes(), &value.0]);
    }
    // The uploader reads its own credentials (OneShot to S3); Service mode has none, so its hash is
    // what it always was.
    if let Some(name) = output_secret(bc) {
        for (key, value) in lookup(&name)? {
            feed(&[b"output", name.as_bytes(), key.as_bytes(), &value.0]);
        }
    }
    Ok(hex::encode(&hasher.finalize()[..16]))
}

/// The ConductorOne client ID in a user-managed credentials Secret, for status (it is not secret).
pub fn client_id(bc: &BatonConnector, secrets: &SecretData) -> Option<String> {
    let r = bc.spec.credentials.secret_ref.as_ref()?;
    let raw = secrets.get(&r.name)?.get(CLIENT_ID_KEY)?;
    String::from_utf8(raw.0.clone()).ok().map(|s| s.trim().to_string())
}

/// The `spec.config` entries that come from a Secret key.
fn config_refs(bc: &BatonConnector) -> impl Iterator<Item = (&String, &crate::api::ConfigSecretKeyRef)> {
    bc.spec.config.iter().filter_map(|(field, v)| v.secret_key_ref.as_ref().map(|r| (field, r)))
}

/// The Secret the OneShot uploader reads its S3 credentials from, if any.
pub fn output_secret(bc: &BatonConnector) -> Option<String> {
    let s3 = bc.spec.output.as_ref()?.s3.as_ref()?;
    s3.credentials_secret_ref.as_ref().map(|r| r.name.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{ConfigValue, SecretRef};
    use crate::resources::testing::{connector, secret_data};

    fn inputs() -> (BatonConnector, SecretData) {
        let mut bc = connector("okta", "okta");
        bc.spec.secret_refs = vec![SecretRef { name: "okta-app".into() }];
        let mut s = SecretData::default();
        s.insert(
            "c1",
            secret_data(&[(CLIENT_ID_KEY, "id@acme.conductor.one/ccc"), (CLIENT_SECRET_KEY, "s3cr3t")]),
        );
        s.insert("okta-app", secret_data(&[("BATON_API_TOKEN", "tok")]));
        (bc, s)
    }

    #[test]
    fn hash_is_stable_and_follows_read_data() {
        let (bc, mut s) = inputs();
        let h1 = pod_inputs_hash(&bc, "ns", &s, Some("c1")).unwrap();
        assert_eq!(h1, pod_inputs_hash(&bc, "ns", &s, Some("c1")).unwrap());
        s.insert("okta-app", secret_data(&[("BATON_API_TOKEN", "tok2")]));
        assert_ne!(h1, pod_inputs_hash(&bc, "ns", &s, Some("c1")).unwrap());
    }

    #[test]
    fn unread_keys_of_the_credentials_secret_do_not_roll() {
        let (bc, mut s) = inputs();
        let h1 = pod_inputs_hash(&bc, "ns", &s, Some("c1")).unwrap();
        s.insert(
            "c1",
            secret_data(&[
                (CLIENT_ID_KEY, "id@acme.conductor.one/ccc"),
                (CLIENT_SECRET_KEY, "s3cr3t"),
                ("note", "x"),
            ]),
        );
        assert_eq!(h1, pod_inputs_hash(&bc, "ns", &s, Some("c1")).unwrap());
    }

    #[test]
    fn hash_does_not_confuse_boundaries() {
        let (bc, mut s) = inputs();
        s.insert("okta-app", secret_data(&[("AB", "C")]));
        let h1 = pod_inputs_hash(&bc, "ns", &s, Some("c1")).unwrap();
        s.insert("okta-app", secret_data(&[("A", "BC")]));
        assert_ne!(h1, pod_inputs_hash(&bc, "ns", &s, Some("c1")).unwrap());
    }

    #[test]
    fn missing_secret_and_keys_are_reported_without_values() {
        let (bc, mut s) = inputs();
        let mut empty = SecretData::default();
        empty.insert("okta-app", secret_data(&[]));
        let err = pod_inputs_hash(&bc, "ns", &empty, Some("c1")).unwrap_err();
        assert_eq!(err.reason(), "SecretNotFound");
        assert!(err.may_resolve_itself());

        s.insert("c1", secret_data(&[(CLIENT_ID_KEY, "id")]));
        let err = pod_inputs_hash(&bc, "ns", &s, Some("c1")).unwrap_err();
        assert_eq!(err, InputProblem::KeyMissing { name: "c1".into(), key: CLIENT_SECRET_KEY });
        assert!(!err.may_resolve_itself());

        s.insert("c1", secret_data(&[(CLIENT_ID_KEY, "id"), (CLIENT_SECRET_KEY, "")]));
        assert_eq!(pod_inputs_hash(&bc, "ns", &s, Some("c1")).unwrap_err().reason(), "SecretKeyEmpty");
    }

    #[test]
    fn referenced_secrets_are_sorted_and_unique() {
        let (mut bc, _) = inputs();
        bc.spec.secret_refs.push(SecretRef { name: "c1".into() });
        assert_eq!(referenced_secrets(&bc), ["c1", "okta-app"]);
    }

    #[test]
    fn config_secret_keys_are_read_hashed_and_checked() {
        let (mut bc, mut s) = inputs();
        let before = pod_inputs_hash(&bc, "ns", &s, Some("c1")).unwrap();
        bc.spec.config.insert("domain".into(), ConfigValue::plain("acme.okta.com"));
        assert_eq!(
            before,
            pod_inputs_hash(&bc, "ns", &s, Some("c1")).unwrap(),
            "plain values are in the spec, not the hash"
        );
        bc.spec.config.insert("api-token".into(), ConfigValue::secret("okta-token", "token"));
        assert_eq!(referenced_secrets(&bc), ["c1", "okta-app", "okta-token"]);
        let err = pod_inputs_hash(&bc, "ns", &s, Some("c1")).unwrap_err();
        assert_eq!(err.reason(), "SecretNotFound");
        s.insert("okta-token", secret_data(&[("other", "x")]));
        let err = pod_inputs_hash(&bc, "ns", &s, Some("c1")).unwrap_err();
        assert_eq!(err.reason(), "SecretKeyMissing");
        assert_eq!(
            err.to_string(),
            r#"Secret "okta-token" has no key "token" (spec.config.api-token.secretKeyRef)"#
        );
        s.insert("okta-token", secret_data(&[("token", "t1"), ("other", "x")]));
        let h1 = pod_inputs_hash(&bc, "ns", &s, Some("c1")).unwrap();
        s.insert("okta-token", secret_data(&[("token", "t1"), ("other", "y")]));
        assert_eq!(h1, pod_inputs_hash(&bc, "ns", &s, Some("c1")).unwrap(), "an unread key does not roll");
        s.insert("okta-token", secret_data(&[("token", "t2"), ("other", "y")]));
        assert_ne!(h1, pod_inputs_hash(&bc, "ns", &s, Some("c1")).unwrap(), "the referenced key rolls");
    }

    #[test]
    fn string_data_is_folded_in() {
        let mut s = SecretData::default();
        let secret = Secret {
            metadata: kube::api::ObjectMeta { name: Some("x".into()), ..Default::default() },
            string_data: Some(BTreeMap::from([("K".to_string(), "v".to_string())])),
            ..Default::default()
        };
        s.insert_secret(&secret);
        assert_eq!(s.get("x").unwrap()["K"].0, b"v");
    }
}
