//! Managed credentials, decided without I/O: the service principal a resource uses (from its Secret's
//! data), the rotation settings and jitter seed, the Secret revision that holds an issued credential
//! (the client secret goes from ConductorOne's reply straight into it and nowhere else), and whether
//! a Deployment reads a revision.

use std::{collections::BTreeMap, time::Duration};

use k8s_openapi::{
    ByteString,
    api::{apps::v1::Deployment, core::v1::Secret},
    jiff::Timestamp,
};
use kube::{ResourceExt, api::ObjectMeta};

use crate::decide::status::Problem;
use crate::{
    api::{BatonConnector, CredentialsStatus, RotationSpec},
    conductorone::{ApiCredentials, ExposeSecret, IssuedCredential},
    resources::{
        InputProblem,
        SecretData,
        // The identity of a revision is shared with `render`, which shows the Secret built here.
        credentials::{
            CREDENTIAL_ID_ANNOTATION, EXPIRES_AT_ANNOTATION, ISSUED_AT_ANNOTATION, secret_metadata,
        },
        inputs,
    },
};

/// The service principal in the named Secret of a namespace.
pub fn api_credentials_in(
    namespace: &str,
    name: &str,
    secrets: &SecretData,
) -> std::result::Result<ApiCredentials, InputProblem> {
    let data = secrets.get(name).ok_or_else(|| InputProblem::SecretNotFound {
        namespace: namespace.to_string(),
        name: name.to_string(),
    })?;
    let value = |key: &'static str| -> std::result::Result<String, InputProblem> {
        let raw = data.get(key).ok_or_else(|| InputProblem::KeyMissing { name: name.to_string(), key })?;
        let text = String::from_utf8_lossy(&raw.0).trim().to_string();
        if text.is_empty() {
            return Err(InputProblem::KeyEmpty { name: name.to_string(), key });
        }
        Ok(text)
    };
    Ok(ApiCredentials::new(value("clientId")?, value("clientSecret")?))
}

/// Seeds the rotation jitter: stable for one resource, different across a fleet. Status shows the
/// next rotation from the same seed the driver decides with.
pub fn jitter_seed(bc: &BatonConnector) -> String {
    format!("{}/{}/{}", bc.namespace().unwrap_or_default(), bc.name_any(), bc.uid().unwrap_or_default())
}

/// Parsed rotation settings, as in force (the connector's, its tenant's defaults, the operator's:
/// `decide::tenant::rotation`). The CRD's pattern only admits Go-style durations.
pub fn rotation_settings(rotation: &RotationSpec) -> std::result::Result<(Duration, Duration), Problem> {
    let parse = |field: &str, v: &str| {
        humantime::parse_duration(v).map_err(|e| Problem::Rejected { message: format!("{field} {v:?}: {e}") })
    };
    let interval = parse("credentials.managed.rotation.interval", rotation.interval())?;
    let grace = parse("credentials.managed.rotation.gracePeriod", rotation.grace_period())?;
    if interval < Duration::from_secs(60) {
        return Err(Problem::Rejected {
            message: "credentials.managed.rotation.interval must be at least 1m".into(),
        });
    }
    Ok((interval, grace))
}

/// How long a credential nobody knows of may stay valid, from what the operator knows of this
/// connector's credential lifetime.
pub fn expiry_horizon(state: &CredentialsStatus, since: Timestamp) -> String {
    match (&state.issued_at, &state.expires_at) {
        (Some(issued), Some(expires)) => {
            let lifetime = expires.0.duration_since(issued.0);
            match since.checked_add(lifetime) {
                Ok(at) => format!("it expires by {at} at the latest, unless revoked in ConductorOne"),
                Err(_) => "its expiry is unknown; revoke unused credentials in ConductorOne".into(),
            }
        }
        _ => "ConductorOne did not report an expiry for this connector's credentials; revoke unused ones in ConductorOne".into(),
    }
}

pub fn c1_problem(e: &crate::conductorone::Error) -> Problem {
    Problem::conductorone(e.to_string(), e)
}

/// The Secret revision holding one issued credential: the two keys the connector reads, and the
/// credential's id in an annotation so a crash right after this write loses nothing.
pub fn credential_secret(
    bc: &BatonConnector,
    revision: i64,
    issued: &IssuedCredential,
    issued_at: Option<Timestamp>,
) -> Secret {
    let mut annotations = BTreeMap::from([(CREDENTIAL_ID_ANNOTATION.to_string(), issued.id.clone())]);
    if let Some(at) = issued_at {
        annotations.insert(ISSUED_AT_ANNOTATION.into(), at.to_string());
    }
    if let Some(at) = issued.expires_at {
        annotations.insert(EXPIRES_AT_ANNOTATION.into(), at.to_string());
    }
    Secret {
        metadata: ObjectMeta { annotations: Some(annotations), ..secret_metadata(bc, revision) },
        type_: Some("Opaque".into()),
        data: Some(BTreeMap::from([
            (inputs::CLIENT_ID_KEY.to_string(), ByteString(issued.client_id.clone().into_bytes())),
            (
                inputs::CLIENT_SECRET_KEY.to_string(),
                ByteString(issued.client_secret.expose_secret().as_bytes().to_vec()),
            ),
        ])),
        ..Default::default()
    }
}

/// Whether a Deployment's connector reads its ConductorOne credentials from the named Secret.
pub fn reads_credentials_from(d: &Deployment, secret: &str) -> bool {
    d.spec.template.spec.as_ref().is_some_and(|p| {
        p.containers.iter().flat_map(|c| c.env.iter().flatten()).any(|e| {
            e.name == inputs::CLIENT_SECRET_KEY
                && e.value_from
                    .as_ref()
                    .and_then(|v| v.secret_key_ref.as_ref())
                    .is_some_and(|r| r.name == secret)
        })
    })
}
