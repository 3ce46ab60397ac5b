//! One hand-written connector Deployment as a BatonConnector spec, pure: the Deployment, the key
//! names of the Secrets that came with it, and the catalog. What the spec cannot hold is listed in
//! the notes rather than dropped silently.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::{
    apps::v1::Deployment,
    core::v1::{Container, PodSpec},
};

use super::{
    env::{self, Carried, Credential},
    notes::Notes,
    pod,
};
use crate::{
    api::{BatonConnectorSpec, CredentialsSpec, ImageSpec, PullPolicy, SecretRef},
    catalog::Catalog,
    resources::inputs::{CLIENT_ID_KEY, CLIENT_SECRET_KEY},
};

/// The registry and path the operator pulls `baton-<connector>` from when `spec.image` says nothing.
pub const DEFAULT_REGISTRY: &str = "public.ecr.aws/conductorone";

/// What an import reads.
#[derive(Clone, Copy, Debug)]
pub struct Source<'a> {
    pub deployment: &'a Deployment,
    /// The key names of the Secrets given with the Deployment, by Secret name; `None` when read from
    /// the cluster, where the import reads no Secret.
    pub secrets: Option<&'a BTreeMap<String, BTreeSet<String>>>,
    /// `--connector`: the app, when the image's name does not say.
    pub connector: Option<&'a str>,
    /// `-n`: the namespace, when the Deployment's metadata has none.
    pub namespace: Option<&'a str>,
}

/// The BatonConnector an import makes, and what it says about it.
#[derive(Clone, Debug)]
pub struct Imported {
    pub name: String,
    pub namespace: Option<String>,
    pub spec: BatonConnectorSpec,
    /// The image the Deployment ran, for the header.
    pub image: String,
    pub notes: Notes,
}

/// Converts the Deployment, or says why it is not a connector's.
pub fn convert(source: Source, catalog: &Catalog) -> Result<Imported, String> {
    let d = source.deployment;
    let name = d.metadata.name.clone().ok_or("the Deployment has no metadata.name")?;
    let pod_spec = d
        .spec
        .template
        .spec
        .as_ref()
        .ok_or_else(|| format!("deployment {name:?} has no spec.template.spec"))?;
    let (container, reference) = connector_container(pod_spec, source.connector).ok_or_else(|| {
        format!("deployment {name:?} runs no baton-<connector> image; name the connector with --connector")
    })?;
    let image = parse_image(reference);
    let connector = match source.connector {
        Some(c) => c.to_string(),
        None => image.app.clone().ok_or_else(|| {
            format!("deployment {name:?}: cannot tell the connector from the image {reference:?}; name it with --connector")
        })?,
    };
    if !valid_connector(&connector) {
        return Err(format!(
            "{connector:?} is not a connector name (lower-case letters, digits and '-', at most 50)"
        ));
    }
    let mut notes = Notes::default();
    let schema = catalog.get(&connector);
    if schema.is_none() {
        notes.at(
            "spec.connector",
            format!("baton-{connector} is not in the operator's catalog: its settings are kept in spec.env and not validated"),
        );
    }
    let mut spec: BatonConnectorSpec = serde_json::from_value(serde_json::json!({ "connector": connector }))
        .map_err(|e| format!("internal: an empty spec does not parse: {e}"))?;
    spec.image = image_spec(&connector, &image, container, &mut notes);
    let carried = env::carry(container.env.as_deref().unwrap_or_default(), schema, &name, &mut notes);
    spec.secret_refs = env_from(container, &mut notes);
    let namespace = d.metadata.namespace.clone().or_else(|| source.namespace.map(str::to_string));
    let who = Who { name: &name, namespace: namespace.as_deref() };
    spec.credentials = credentials(who, &carried, &spec.secret_refs, source.secrets, &mut notes);
    secret_keys(&spec.secret_refs, source.secrets, &mut notes);
    let Carried { config, env, provisioning, ticketing, health_check, .. } = carried;
    (spec.config, spec.env, spec.health_check) = (config, env, health_check);
    spec.provisioning = provisioning.unwrap_or(false);
    spec.ticketing = ticketing.unwrap_or(false);
    pod::carry(d, pod_spec, container, &mut spec, &mut notes);
    Ok(Imported { name, namespace, spec, image: reference.to_string(), notes })
}

/// The container running `baton-<connector>` (or the only one, with `--connector`), and its image.
fn connector_container<'a>(pod: &'a PodSpec, connector: Option<&str>) -> Option<(&'a Container, &'a str)> {
    let with_image = || pod.containers.iter().filter_map(|c| c.image.as_deref().map(|i| (c, i)));
    if let Some(c) = connector {
        let wanted = format!("baton-{c}");
        if let Some(found) = with_image().find(|(_, i)| parse_image(i).last == wanted) {
            return Some(found);
        }
        return match pod.containers.as_slice() {
            [only] => only.image.as_deref().map(|i| (only, i)),
            _ => None,
        };
    }
    with_image().find(|(_, i)| parse_image(i).app.is_some())
}

/// An image reference taken apart: `registry/path/baton-<app>[:tag][@digest]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Image {
    pub repository: String,
    /// The last path segment.
    pub last: String,
    pub app: Option<String>,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

pub fn parse_image(reference: &str) -> Image {
    let (rest, digest) = match reference.split_once('@') {
        Some((r, d)) => (r, Some(d.to_string())),
        None => (reference, None),
    };
    // A ':' after the last '/' is a tag; one before it is a registry's port.
    let slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (repository, tag) = match rest[slash..].split_once(':') {
        Some((_, t)) => (&rest[..slash + rest[slash..].find(':').unwrap_or_default()], Some(t.to_string())),
        None => (rest, None),
    };
    let last = repository.rsplit('/').next().unwrap_or_default().to_string();
    let app = last.strip_prefix("baton-").filter(|a| valid_connector(a)).map(str::to_string);
    Image { repository: repository.to_string(), last, app, tag, digest }
}

fn valid_connector(name: &str) -> bool {
    let bytes = name.as_bytes();
    !name.is_empty()
        && name.len() <= 50
        && bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes.first() != Some(&b'-')
        && bytes.last() != Some(&b'-')
}

fn image_spec(connector: &str, image: &Image, container: &Container, notes: &mut Notes) -> Option<ImageSpec> {
    let default_repository = format!("{DEFAULT_REGISTRY}/baton-{connector}");
    let mut spec = ImageSpec::default();
    if image.repository != default_repository {
        notes.at(
            "spec.image",
            format!("the Deployment's registry; the operator's default is {default_repository}: drop repository to use it"),
        );
        spec.repository = Some(image.repository.clone());
    }
    match (&image.tag, &image.digest) {
        (Some(t), None) if t == "latest" => {}
        (None, None) => {}
        (tag, digest) => {
            spec.tag = tag.clone().filter(|t| t != "latest");
            spec.digest = digest.clone();
        }
    }
    if image.tag.as_deref().is_none_or(|t| t == "latest") && image.digest.is_none() {
        notes.at("spec.image", "the image is not pinned (latest): pin a tag or, better, a digest");
    }
    spec.pull_policy = match container.image_pull_policy.as_deref() {
        Some("Always") => Some(PullPolicy::Always),
        Some("IfNotPresent") => Some(PullPolicy::IfNotPresent),
        Some("Never") => Some(PullPolicy::Never),
        _ => None,
    };
    (spec != ImageSpec::default()).then_some(spec)
}

/// `envFrom` Secrets become `secretRefs`; what they cannot say is listed.
fn env_from(container: &Container, notes: &mut Notes) -> Vec<SecretRef> {
    let mut refs = Vec::new();
    for source in container.env_from.iter().flatten() {
        let prefix = source.prefix.as_deref().filter(|p| !p.is_empty());
        match (&source.secret_ref, &source.config_map_ref, prefix) {
            (Some(s), _, None) => {
                if s.optional == Some(true) {
                    notes.at("spec.secretRefs", format!("{} was optional; the operator requires it", s.name));
                }
                refs.push(SecretRef { name: s.name.clone() });
            }
            (Some(s), _, Some(p)) => notes.not_carried(format!(
                "envFrom Secret {} with prefix {p:?}: secretRefs pass keys as they are; rename the keys instead",
                s.name
            )),
            (None, Some(c), _) => notes.not_carried(format!(
                "envFrom ConfigMap {}: put its settings in spec.config (or spec.env)",
                c.name
            )),
            _ => {}
        }
    }
    refs
}

/// `credentials.secretRef` when one Secret holds both keys under the names the operator reads;
/// otherwise a Secret to create, and what to put in it.
fn credentials(
    who: Who,
    carried: &Carried,
    refs: &[SecretRef],
    secrets: Option<&BTreeMap<String, BTreeSet<String>>>,
    notes: &mut Notes,
) -> CredentialsSpec {
    let path = "spec.credentials";
    let secret_ref =
        |n: &str| CredentialsSpec { secret_ref: Some(SecretRef { name: n.into() }), managed: None };
    let id = carried.client_id.clone().unwrap_or(Credential::Absent);
    let secret = carried.client_secret.clone().unwrap_or(Credential::Absent);
    match (&id, &secret) {
        (Credential::Secret { name: a, key: ka }, Credential::Secret { name: b, key: kb })
            if a == b && ka == CLIENT_ID_KEY && kb == CLIENT_SECRET_KEY =>
        {
            notes.at(path, format!("BATON_CLIENT_ID and BATON_CLIENT_SECRET from Secret {a}"));
            return secret_ref(a);
        }
        (Credential::Absent, Credential::Absent) => {
            let has_both = |s: &str| {
                secrets
                    .and_then(|m| m.get(s))
                    .map(|keys| keys.contains(CLIENT_ID_KEY) && keys.contains(CLIENT_SECRET_KEY))
            };
            // `envFrom`: a later source wins, so the last Secret with both keys is the one in use.
            if let Some(r) = refs.iter().rev().find(|r| has_both(&r.name) == Some(true)) {
                notes.at(
                    path,
                    format!("Secret {} (envFrom) has BATON_CLIENT_ID and BATON_CLIENT_SECRET", r.name),
                );
                return secret_ref(&r.name);
            }
            let unknown: Vec<&SecretRef> = refs.iter().filter(|r| has_both(&r.name).is_none()).collect();
            if let [only] = unknown.as_slice() {
                notes.at(path, format!("assumed: the Deployment sets no BATON_CLIENT_ID itself, so it comes from envFrom Secret {}", only.name));
                notes.todo(format!(
                    "check that Secret {} has the keys BATON_CLIENT_ID and BATON_CLIENT_SECRET (kubectl get secret {} -o jsonpath='{{.data}}' lists them, with values)",
                    only.name, only.name
                ));
                return secret_ref(&only.name);
            }
        }
        _ => {}
    }
    let new = format!("{}-c1-client", who.name);
    notes.at(
        path,
        format!("a Secret to create: {new}, with the keys BATON_CLIENT_ID and BATON_CLIENT_SECRET"),
    );
    notes.todo(credentials_todo(&new, who.namespace, &id, &secret));
    secret_ref(&new)
}

/// The resource an import makes, for the commands it suggests.
#[derive(Clone, Copy)]
struct Who<'a> {
    name: &'a str,
    namespace: Option<&'a str>,
}

/// What to do about the client credentials, as commands that copy them without showing them.
fn credentials_todo(new: &str, namespace: Option<&str>, id: &Credential, secret: &Credential) -> String {
    let ns = namespace.map(|n| format!(" -n {n}")).unwrap_or_default();
    let source = |c: &Credential, var: &str| match c {
        Credential::Secret { name, key } => format!(
            "--from-literal={var}=\"$(kubectl{ns} get secret {name} -o jsonpath='{{.data.{key}}}' | base64 -d)\""
        ),
        _ => format!("--from-literal={var}=<{}>", var.to_ascii_lowercase().replace('_', " ")),
    };
    let why = match (id, secret) {
        (Credential::Inline, _) | (_, Credential::Inline) => {
            "the Deployment writes the ConductorOne client credentials inline (not printed)"
        }
        (Credential::Absent, Credential::Absent) => {
            "no Secret is known to hold the ConductorOne client credentials"
        }
        (Credential::Other, _) | (_, Credential::Other) => {
            "the client credentials come from something other than a Secret"
        }
        _ => {
            "the client credentials are not both in one Secret under the keys BATON_CLIENT_ID and BATON_CLIENT_SECRET"
        }
    };
    format!(
        "{why}: create Secret {new} with the keys the operator reads: kubectl{ns} create secret generic {new} {} {} (or switch to credentials.managed: docs/migration.md#managed-credentials-later)",
        source(id, CLIENT_ID_KEY),
        source(secret, CLIENT_SECRET_KEY)
    )
}

/// What the Secrets given with the Deployment tell: the settings they hold, and keys the operator
/// sets itself (so the Secret's would be overridden).
fn secret_keys(refs: &[SecretRef], secrets: Option<&BTreeMap<String, BTreeSet<String>>>, notes: &mut Notes) {
    for r in refs {
        let Some(keys) = secrets.and_then(|m| m.get(&r.name)) else { continue };
        let settings: Vec<&str> = keys
            .iter()
            .map(String::as_str)
            .filter(|k| k.starts_with("BATON_") && !crate::api::RESERVED_ENV.contains(k))
            .collect();
        if !settings.is_empty() {
            notes.at("spec.secretRefs", format!("{} supplies {}", r.name, settings.join(", ")));
        }
        for (key, field) in
            [("BATON_PROVISIONING", "provisioning"), ("BATON_TICKETING", "ticketing"), ("BATON_HOST_ID", "")]
        {
            if !keys.contains(key) {
                continue;
            }
            notes.todo(if field.is_empty() {
                format!("Secret {} has a key {key}; the operator sets it to the resource's name, which wins", r.name)
            } else {
                format!(
                    "Secret {} has a key {key}; the operator sets {key} from spec.{field}, which wins over the Secret: set spec.{field}: true if it was on",
                    r.name
                )
            });
        }
    }
}
