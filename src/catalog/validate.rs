//! Validation of a BatonConnector's connector settings as the Baton SDK would do it at startup
//! (`reference/connector-config.md` section 2), before any pod starts. Pure: the spec, the key names
//! of its `secretRefs` Secrets when the caller has read them, and the catalog. Messages name the
//! field, its environment variable and the group; they never contain a value of a secret field.

use std::collections::{BTreeMap, BTreeSet};

use super::{Catalog, Connector, Field, Plain, env_name, values};
use crate::api::BatonConnectorSpec;

/// The SDK's own flags that `config_schema.json` leaves out (CLI-only or SDK-internal) but every
/// connector reads, plus the ops fields of the newest SDK (older schemas export fewer): always
/// allowed. The ones the operator sets itself are refused by the CRD instead.
pub const SDK_FIELDS: &[&str] = &[
    "auth-method",
    "log-format",
    "file",
    "sync-resources",
    "sync-resource-types",
    "skip-full-sync",
    "keep-previous-sync-c1z",
    "task-concurrency",
    "storage-engine",
    "c1z-temp-dir",
    "external-resource-c1z",
    "external-resource-traits",
    "log-level",
    "log-level-debug-expires-at",
    "session-store-maximum-size",
    "otel-collector-endpoint",
    "otel-collector-endpoint-tls-cert-path",
    "otel-collector-endpoint-tls-cert",
    "otel-collector-endpoint-tls-insecure",
    "otel-tracing-disabled",
    "otel-logging-disabled",
    "http-timeout-seconds",
];

/// What validation found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A custom connector: nothing to check against.
    NotCatalogued {
        connector: String,
    },
    Checked(Report),
}

impl Outcome {
    pub fn errors(&self) -> &[String] {
        match self {
            Self::Checked(r) => &r.errors,
            Self::NotCatalogued { .. } => &[],
        }
    }

    pub fn warnings(&self) -> Vec<String> {
        match self {
            Self::Checked(r) => r.warnings.clone(),
            Self::NotCatalogued { connector } => {
                vec![format!(
                    "connector {connector:?} is not in the catalog, so its settings are not validated"
                )]
            }
        }
    }
}

/// Definite errors (the SDK would refuse to start, or a secret would sit in the manifest) and
/// warnings (may be fine; a person should look).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
}

/// Where a setting comes from, and what is known of its value.
#[derive(Clone, Debug)]
enum Setting {
    /// A value read from `spec.config` or `env`; `None` when empty (the SDK's "unset").
    Known(Option<Plain>),
    /// From a Secret: present, value unknown.
    Hidden,
}

impl Setting {
    /// Given a value that parses (cobra's "set": `false` and `0` count, an empty string does not).
    fn is_set(&self) -> bool {
        !matches!(self, Self::Known(None))
    }
}

/// Validates `spec` against its connector's catalogued schema. `env_from_keys`: the keys of the
/// `secretRefs` Secrets (each is an environment variable), or `None` when they were not read; then a
/// required field they might supply is a warning rather than an error.
pub fn validate(
    spec: &BatonConnectorSpec,
    env_from_keys: Option<&BTreeSet<String>>,
    catalog: &Catalog,
) -> Outcome {
    let Some(connector) = catalog.get(&spec.connector) else {
        return Outcome::NotCatalogued { connector: spec.connector.clone() };
    };
    let mut v =
        Validation { connector, report: Report::default(), settings: BTreeMap::new(), pinned: pinned(spec) };
    v.read_config(spec);
    v.read_env(spec);
    if let Some(keys) = env_from_keys {
        v.read_env_from(keys);
    }
    let unknown_env_from = env_from_keys.is_none() && !spec.secret_refs.is_empty();
    let group = v.check_groups(unknown_env_from);
    v.check_constraints(group);
    v.check_health(spec);
    Outcome::Checked(v.report)
}

/// Whether the image is pinned to something the catalogued schema may not describe.
fn pinned(spec: &BatonConnectorSpec) -> bool {
    spec.image.as_ref().is_some_and(|i| i.digest.is_some() || i.tag.as_deref().is_some_and(|t| t != "latest"))
}

struct Validation<'a> {
    connector: &'a Connector,
    report: Report,
    /// Every known field that is given a value somewhere, by field name.
    settings: BTreeMap<String, Setting>,
    pinned: bool,
}

impl<'a> Validation<'a> {
    fn error(&mut self, message: String) {
        self.report.errors.push(message);
    }

    fn warn(&mut self, message: String) {
        self.report.warnings.push(message);
    }

    /// The field called `name`, or `None` with the unknown name reported (or `Some(None)` for an
    /// SDK flag the schema does not list).
    fn lookup(&mut self, name: &str, place: &str) -> Option<Option<&'a Field>> {
        if let Some(field) = self.connector.field(name) {
            if field.description.to_ascii_lowercase().contains("deprecated") {
                self.warn(format!("{place} is deprecated: {}", field.description));
            }
            return Some(Some(field));
        }
        if SDK_FIELDS.contains(&name) {
            return Some(None);
        }
        let names = self.connector.fields.iter().map(|f| f.name.as_str()).chain(SDK_FIELDS.iter().copied());
        let hint = values::nearest(name, names)
            .map(|n| format!("; did you mean {n:?} ({})?", env_name(n)))
            .unwrap_or_default();
        let message = format!("{place}: baton-{} has no field {name:?}{hint}", self.connector.name);
        if self.pinned {
            self.warn(format!("{message} (the image is pinned to a version the catalog may not describe)"));
        } else {
            self.error(message);
        }
        None
    }

    fn record(&mut self, name: &str, setting: Setting, place: &str) {
        if self.settings.insert(name.to_string(), setting).is_some() {
            self.error(format!(
                "{place}: field {name:?} ({}) is set twice, in spec.config and spec.env; keep one",
                env_name(name)
            ));
        }
    }

    fn read_config(&mut self, spec: &BatonConnectorSpec) {
        for (name, entry) in &spec.config {
            let place = format!("spec.config.{name} ({})", env_name(name));
            let Some(field) = self.lookup(name, &place) else { continue };
            let setting = match (&entry.secret_key_ref, &entry.value, field) {
                (Some(_), _, _) => Setting::Hidden,
                (None, Some(_), Some(f)) if f.secret => {
                    self.error(format!(
                        "{place}: {name:?} is a secret field; a value here would be stored in the manifest (and in Git): use secretKeyRef to a key of a Secret"
                    ));
                    Setting::Hidden
                }
                (None, Some(value), Some(f)) => match values::from_config(f, value) {
                    Ok(plain) => {
                        self.rules(f, &plain, &place);
                        Setting::Known((!is_empty_string(&plain)).then_some(plain))
                    }
                    Err(why) => {
                        self.error(format!("{place}: {} field {why}", f.kind.as_str()));
                        Setting::Hidden
                    }
                },
                (None, value, None) => Setting::Known(
                    value.as_ref().map(|v| Plain::String(crate::resources::config_env::encode(v))),
                ),
                (None, None, Some(_)) => Setting::Known(None),
            };
            self.record(name, setting, &place);
        }
    }

    fn read_env(&mut self, spec: &BatonConnectorSpec) {
        let by_env = self.env_index();
        for entry in spec.env.iter().filter(|e| e.name.starts_with("BATON_")) {
            let place = format!("spec.env {}", entry.name);
            let Some(name) = self.env_field(&by_env, &entry.name, &place) else { continue };
            let setting = match self.connector.field(&name) {
                Some(f) => {
                    if f.secret && !entry.value.is_empty() {
                        self.warn(format!(
                            "{place}: field {name:?} is secret; its value is in the manifest: use spec.config.{name}.secretKeyRef or a secretRefs Secret"
                        ));
                    }
                    match values::from_env(f, &entry.value) {
                        Ok(plain) => {
                            if let Some(p) = &plain {
                                self.rules(f, p, &place);
                            }
                            if f.kind == super::FieldType::Int && is_octal_looking(&entry.value) {
                                self.warn(format!(
                                    "{place}: {:?} has a leading zero, which the SDK reads as octal",
                                    entry.value
                                ));
                            }
                            Setting::Known(plain)
                        }
                        Err(why) => {
                            self.error(format!("{place}: {} field {name:?}: {why}", f.kind.as_str()));
                            Setting::Hidden
                        }
                    }
                }
                None => Setting::Known((!entry.value.is_empty()).then(|| Plain::String(entry.value.clone()))),
            };
            self.record(&name, setting, &place);
        }
    }

    fn read_env_from(&mut self, keys: &BTreeSet<String>) {
        let by_env = self.env_index();
        for key in keys.iter().filter(|k| k.starts_with("BATON_")) {
            if let Some(name) = by_env.get(key.as_str()) {
                // `env` wins over `envFrom` in Kubernetes, so a field set in both keeps the `env` one.
                self.settings.entry(name.clone()).or_insert(Setting::Hidden);
            } else if !crate::api::RESERVED_ENV.contains(&key.as_str()) {
                self.warn(format!(
                    "secretRefs key {key}: baton-{} has no field with this variable; the SDK ignores it",
                    self.connector.name
                ));
            }
        }
    }

    /// Field names by environment variable: the schema's and the SDK's own.
    fn env_index(&self) -> BTreeMap<String, String> {
        let names = self.connector.fields.iter().map(|f| f.name.as_str()).chain(SDK_FIELDS.iter().copied());
        names.map(|n| (env_name(n), n.to_string())).collect()
    }

    fn env_field(&mut self, by_env: &BTreeMap<String, String>, var: &str, place: &str) -> Option<String> {
        if let Some(name) = by_env.get(var) {
            return self.lookup(name, place).map(|_| name.clone());
        }
        let hint = values::nearest(var, by_env.keys().map(String::as_str))
            .map(|n| format!("; did you mean {n} (field {:?})?", by_env[n]))
            .unwrap_or_default();
        let message = format!("{place}: baton-{} has no field read from {var}{hint}", self.connector.name);
        if self.pinned {
            self.warn(format!("{message} (the image is pinned to a version the catalog may not describe)"));
        } else {
            self.error(message);
        }
        None
    }

    fn rules(&mut self, field: &Field, value: &Plain, place: &str) {
        for failure in values::rule_failures(field, value) {
            // A secret value never goes into a message.
            let failure = if field.secret {
                failure.split(" but got").next().unwrap_or_default().to_string()
            } else {
                failure
            };
            self.error(format!("{place}: field {}: {failure}", field.name));
        }
    }
}

fn is_empty_string(p: &Plain) -> bool {
    matches!(p, Plain::String(s) if s.is_empty())
}

fn is_octal_looking(text: &str) -> bool {
    let digits = text.trim_start_matches(['-', '+']);
    digits.len() > 1 && digits.starts_with('0') && digits.chars().all(|c| c.is_ascii_digit() || c == '_')
}

mod groups;

/// For `baton-operator render`: the definite errors as one message (`Err`), warnings printed to
/// standard error. The keys of the `secretRefs` Secrets in the file count as variables.
pub fn for_render(
    bc: &crate::api::BatonConnector,
    secrets: &crate::resources::SecretData,
) -> Result<(), String> {
    let keys: BTreeSet<String> = bc
        .spec
        .secret_refs
        .iter()
        .filter_map(|r| secrets.get(&r.name))
        .flat_map(|data| data.keys().cloned())
        .collect();
    let outcome = validate(&bc.spec, Some(&keys), Catalog::embedded());
    for warning in outcome.warnings() {
        eprintln!("warning: {warning}");
    }
    match outcome.errors() {
        [] => Ok(()),
        errors => Err(format!("invalid connector settings:\n  {}", errors.join("\n  "))),
    }
}
