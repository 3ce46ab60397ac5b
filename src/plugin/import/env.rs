//! The connector container's `env`, entry by entry, as `spec.config`, `spec.env` and the spec fields
//! the operator sets variables from. A plain value is typed as the SDK reads it (`catalog::values`);
//! a value the schema marks secret, or that a variable's name says may be secret, is never copied.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::EnvVar;
use serde_json::Value;

use super::notes::{Notes, looks_secret};
use crate::{
    api::{Config, ConfigValue, EnvEntry, HealthCheckSpec},
    catalog::{Connector, Field, Plain, env_name, validate::SDK_FIELDS, values},
};

/// Where `BATON_CLIENT_ID` or `BATON_CLIENT_SECRET` came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Credential {
    /// Not in `env` (so from `envFrom`, if anywhere).
    Absent,
    /// `valueFrom.secretKeyRef`.
    Secret { name: String, key: String },
    /// A `value` written into the Deployment.
    Inline,
    /// Another `valueFrom` (a ConfigMap, a field).
    Other,
}

/// What the environment becomes.
#[derive(Clone, Debug, Default)]
pub struct Carried {
    pub config: Config,
    pub env: Vec<EnvEntry>,
    pub client_id: Option<Credential>,
    pub client_secret: Option<Credential>,
    pub provisioning: Option<bool>,
    pub ticketing: Option<bool>,
    pub health_check: Option<HealthCheckSpec>,
}

/// Maps every entry of `env` (the last of a repeated name wins, as in Kubernetes). `connector` is
/// the catalogued schema, `None` for a custom connector; `name` is the new resource's.
pub fn carry(env: &[EnvVar], connector: Option<&Connector>, name: &str, notes: &mut Notes) -> Carried {
    let mut last: BTreeMap<&str, &EnvVar> = BTreeMap::new();
    for var in env {
        if last.insert(var.name.as_str(), var).is_some() {
            notes.not_carried(format!(
                "env {}: set twice in the Deployment; the last entry is used",
                var.name
            ));
        }
    }
    let mut out = Carried::default();
    let by_env = connector.map(env_index).unwrap_or_default();
    for var in env.iter().filter(|v| last.get(v.name.as_str()).is_some_and(|l| std::ptr::eq(*l, *v))) {
        let kind = Kind::of(var);
        match var.name.as_str() {
            "BATON_CLIENT_ID" => out.client_id = Some(kind.credential()),
            "BATON_CLIENT_SECRET" => out.client_secret = Some(kind.credential()),
            "BATON_HOST_ID" => host_id(&kind, name, notes),
            "BATON_PROVISIONING" => out.provisioning = switch(var, &kind, "provisioning", notes),
            "BATON_TICKETING" => out.ticketing = switch(var, &kind, "ticketing", notes),
            "BATON_HEALTH_CHECK" | "BATON_HEALTH_CHECK_PORT" | "BATON_HEALTH_CHECK_BIND_ADDRESS" => {
                health(var, &kind, &mut out, notes)
            }
            n if n.starts_with("BATON_") => setting(var, &kind, connector, &by_env, &mut out, notes),
            _ => other(var, &kind, &mut out, notes),
        }
    }
    out
}

/// An entry's source, with only what the import may print.
enum Kind<'a> {
    Plain(&'a str),
    Secret {
        name: String,
        key: String,
        optional: bool,
    },
    /// Any other `valueFrom`, by what it is.
    From(&'static str),
}

impl<'a> Kind<'a> {
    fn of(var: &'a EnvVar) -> Self {
        let Some(from) = &var.value_from else {
            return Self::Plain(var.value.as_deref().unwrap_or_default());
        };
        if let Some(r) = &from.secret_key_ref {
            return Self::Secret {
                name: r.name.clone(),
                key: r.key.clone(),
                optional: r.optional == Some(true),
            };
        }
        Self::From(if from.config_map_key_ref.is_some() {
            "valueFrom.configMapKeyRef"
        } else if from.field_ref.is_some() {
            "valueFrom.fieldRef"
        } else if from.resource_field_ref.is_some() {
            "valueFrom.resourceFieldRef"
        } else {
            "valueFrom"
        })
    }

    fn credential(&self) -> Credential {
        match self {
            Self::Plain(_) => Credential::Inline,
            Self::Secret { name, key, .. } => Credential::Secret { name: name.clone(), key: key.clone() },
            Self::From(_) => Credential::Other,
        }
    }
}

/// Field names by the variable the SDK reads them from: the schema's and the SDK's own.
fn env_index(connector: &Connector) -> BTreeMap<String, String> {
    let names = connector.fields.iter().map(|f| f.name.as_str()).chain(SDK_FIELDS.iter().copied());
    names.map(|n| (env_name(n), n.to_string())).collect()
}

fn host_id(kind: &Kind, name: &str, notes: &mut Notes) {
    // A host id is a name, not a secret: printing the old one tells the reader what changes.
    let text = match kind {
        Kind::Plain(v) if *v == name => {
            format!("BATON_HOST_ID stays {name:?}: the operator sets it to the resource's name")
        }
        Kind::Plain(v) => format!(
            "BATON_HOST_ID was {v:?}; the operator sets it to the resource's name, {name:?} (docs/migration.md#the-host-id)"
        ),
        _ => format!(
            "BATON_HOST_ID was set from a reference; the operator sets it to the resource's name, {name:?} (docs/migration.md#the-host-id)"
        ),
    };
    notes.at("metadata.name", text);
}

fn switch(var: &EnvVar, kind: &Kind, field: &str, notes: &mut Notes) -> Option<bool> {
    match kind {
        Kind::Plain(v) => match values::go_bool(v) {
            Some(b) => {
                notes.at(&format!("spec.{field}"), format!("from {}", var.name));
                Some(b)
            }
            None => {
                notes
                    .not_carried(format!("env {}: {v:?} is not a bool; set spec.{field} yourself", var.name));
                None
            }
        },
        _ => {
            notes.not_carried(format!(
                "env {}: from a reference; the operator sets it from spec.{field}, so set that to the value it holds",
                var.name
            ));
            None
        }
    }
}

fn health(var: &EnvVar, kind: &Kind, out: &mut Carried, notes: &mut Notes) {
    let Kind::Plain(v) = kind else {
        notes.not_carried(format!("env {}: from a reference; see spec.healthCheck", var.name));
        return;
    };
    match var.name.as_str() {
        "BATON_HEALTH_CHECK" => {
            if values::go_bool(v) == Some(true) {
                out.health_check.get_or_insert_with(Default::default).enabled = true;
                notes.at("spec.healthCheck", "from BATON_HEALTH_CHECK; the operator adds the probes on it");
            }
        }
        "BATON_HEALTH_CHECK_PORT" => match v.parse::<i32>() {
            Ok(port) if (1..=65535).contains(&port) => {
                out.health_check.get_or_insert_with(Default::default).port = Some(port)
            }
            _ => notes.not_carried(format!("env BATON_HEALTH_CHECK_PORT: {v:?} is not a port")),
        },
        _ => notes.at(
            "spec.healthCheck",
            "BATON_HEALTH_CHECK_BIND_ADDRESS is not carried over: the operator binds 0.0.0.0, where probes reach it",
        ),
    }
}

/// A `BATON_*` variable that is none of the operator's own: a connector setting.
fn setting(
    var: &EnvVar,
    kind: &Kind,
    connector: Option<&Connector>,
    by_env: &BTreeMap<String, String>,
    out: &mut Carried,
    notes: &mut Notes,
) {
    let field_name = by_env.get(&var.name).cloned().unwrap_or_else(|| field_of(&var.name));
    let field = connector.and_then(|c| c.field(&field_name));
    let path = format!("spec.config.{field_name}");
    match kind {
        Kind::Secret { name, key, optional } => {
            if *optional {
                notes.at(&path, format!("{} was optional; the operator requires the key", var.name));
            }
            if connector.is_some() && !by_env.contains_key(&var.name) {
                notes.at(&path, format!("{} is no field of the catalogued schema", var.name));
            }
            out.config.insert(field_name, ConfigValue::secret(name, key));
        }
        Kind::From(what) => notes.not_carried(format!(
            "env {} ({what}): spec.config takes a value or a Secret key; copy the value into one",
            var.name
        )),
        Kind::Plain(text) => match (connector, field) {
            (Some(_), Some(f)) => typed(var, f, text, out, notes),
            // An SDK flag the schema does not list (none of them secret): the SDK reads it as text.
            (Some(_), None) if by_env.contains_key(&var.name) => {
                out.config.insert(field_name, ConfigValue::plain(*text));
            }
            _ => inline(var, text, Some(&field_name), connector.is_none(), out, notes),
        },
    }
}

/// A plain value of a catalogued field, typed as the SDK reads it.
fn typed(var: &EnvVar, field: &Field, text: &str, out: &mut Carried, notes: &mut Notes) {
    let path = format!("spec.config.{}", field.name);
    if field.secret {
        if !text.is_empty() {
            notes.todo(format!(
                "{} ({}) is a secret field written inline in the Deployment (its value is not printed): put it in a Secret and set spec.config.{}.secretKeyRef",
                var.name, field.name, field.name
            ));
        }
        return;
    }
    match values::from_env(field, text) {
        Ok(Some(plain)) => {
            out.config.insert(field.name.clone(), ConfigValue::plain(json(plain)));
            notes.at(&path, format!("from {}", var.name));
        }
        Ok(None) => notes.not_carried(format!("env {}: empty, which the SDK reads as unset", var.name)),
        // Kept as the Deployment had it, so that the check below names the problem as the operator would.
        Err(_) => out.env.push(EnvEntry { name: var.name.clone(), value: text.to_string() }),
    }
}

/// A plain value outside the schema: kept in `spec.env`, unless its name says it may be a secret.
fn inline(var: &EnvVar, text: &str, field: Option<&str>, custom: bool, out: &mut Carried, notes: &mut Notes) {
    if looks_secret(&var.name) && !text.is_empty() {
        let target = match field {
            Some(f) => format!("set spec.config.{f}.secretKeyRef"),
            None => format!("add that Secret, with the key {}, to spec.secretRefs", var.name),
        };
        notes.todo(format!(
            "{} is written inline in the Deployment and may be a secret (its value is not printed): put it in a Secret and {target}",
            var.name
        ));
        return;
    }
    if custom && field.is_some() {
        notes.at("spec.env", format!("{}: not validated (the connector is not in the catalog)", var.name));
    }
    out.env.push(EnvEntry { name: var.name.clone(), value: text.to_string() });
}

/// A variable that is not the connector's: plain ones stay in `spec.env`.
fn other(var: &EnvVar, kind: &Kind, out: &mut Carried, notes: &mut Notes) {
    match kind {
        Kind::Plain(text) => inline(var, text, None, false, out, notes),
        Kind::Secret { name, key, .. } => notes.not_carried(format!(
            "env {} (valueFrom.secretKeyRef {name}/{key}): only BATON_* settings take a Secret key; a Secret whose key {} holds it can go in spec.secretRefs",
            var.name, var.name
        )),
        Kind::From(what) => notes.not_carried(format!("env {} ({what})", var.name)),
    }
}

/// `BATON_API_TOKEN` → `api-token`: the inverse of `catalog::env_name` for names outside a schema.
pub fn field_of(var: &str) -> String {
    var.trim_start_matches("BATON_").to_ascii_lowercase().replace('_', "-")
}

fn json(plain: Plain) -> Value {
    match plain {
        Plain::String(s) => Value::String(s),
        Plain::Bool(b) => Value::Bool(b),
        Plain::Int(i) => Value::from(i),
        Plain::List(l) => Value::from(l),
        Plain::Map(m) => Value::Object(m.into_iter().map(|(k, v)| (k, Value::String(v))).collect()),
    }
}
