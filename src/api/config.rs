//! `spec.config`: the connector's own settings by their schema names, each a plain `value` or a
//! reference to a Secret key.
//!
//! `value` is the one schema node without a type (`x-kubernetes-preserve-unknown-fields`): a
//! structural schema cannot say "string, bool, integer or list" in one node, and the issue asks for
//! ordinary YAML types rather than strings. Everything around it is typed, and what the value must be
//! for a given field comes from the connector's schema (`catalog::validate`).

use std::collections::BTreeMap;

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// The settings, by field name (`domain`, `api-token`, ...), in a stable order.
pub type Config = BTreeMap<String, ConfigValue>;

/// One setting: exactly one of `value` or `secretKeyRef`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
// Exactly one of the two, said by counting properties: CEL cannot see `value`, a node without a
// type (the API server refuses a rule that names it).
#[schemars(extend("minProperties" = 1, "maxProperties" = 1))]
pub struct ConfigValue {
    /// The value as the connector's schema types it: a string, `true`/`false`, an integer, a list of
    /// strings, or (for a map field) an object of strings. Passed as `BATON_<NAME>`. Refused for a
    /// field the schema marks secret: use `secretKeyRef`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "any_value")]
    pub value: Option<serde_json::Value>,

    /// A key of a Secret in this namespace holding the value, for secret fields (API tokens, private
    /// keys). Passed as `BATON_<NAME>` from the Secret; the value is never copied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key_ref: Option<ConfigSecretKeyRef>,
}

impl ConfigValue {
    pub fn plain(value: impl Into<serde_json::Value>) -> Self {
        Self { value: Some(value.into()), secret_key_ref: None }
    }

    pub fn secret(name: impl Into<String>, key: impl Into<String>) -> Self {
        Self { value: None, secret_key_ref: Some(ConfigSecretKeyRef { name: name.into(), key: key.into() }) }
    }
}

/// A key of a Secret in the resource's namespace.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct ConfigSecretKeyRef {
    /// Name of the Secret.
    #[schemars(length(min = 1, max = 253), regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"))]
    pub name: String,
    /// The key in the Secret.
    #[schemars(length(min = 1, max = 253), regex(pattern = r"^[-._a-zA-Z0-9]+$"))]
    pub key: String,
}

fn any_value(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "description": "The value as the connector's schema types it: a string, `true`/`false`, an integer, a list of strings, or (for a map field) an object of strings. Passed as `BATON_<NAME>`. Refused for a field the schema marks secret: use `secretKeyRef`.",
        "x-kubernetes-preserve-unknown-fields": true
    })
}

/// Schema for the map itself (`config` in the spec), with its key rules.
pub(super) fn config_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let value = generator.subschema_for::<ConfigValue>();
    schemars::json_schema!({
        "type": "object",
        "maxProperties": 128,
        "additionalProperties": value,
        "x-kubernetes-validations": [
            {
                "rule": "self.all(k, k.matches('^[A-Za-z0-9][A-Za-z0-9_-]*$') && size(k) <= 100)",
                "message": "spec.config names are the connector's field names: letters, digits, '-' and '_', such as api-token"
            },
            {
                "rule": "self.all(k, !(k in ['client-id', 'client-secret', 'host-id', 'provisioning', 'ticketing', 'health-check', 'health-check-port', 'health-check-bind-address']))",
                "message": "spec.config may not set client-id, client-secret, host-id, provisioning, ticketing or health-check*: use credentials, provisioning, ticketing and healthCheck instead"
            }
        ]
    })
}

/// Environment variables the operator sets itself; a person sets them through dedicated spec fields
/// (or, for the ConductorOne credentials, through `credentials`), never through `env`.
pub const RESERVED_ENV: &[&str] = &[
    "BATON_CLIENT_ID",
    "BATON_CLIENT_SECRET",
    "BATON_HOST_ID",
    "BATON_PROVISIONING",
    "BATON_TICKETING",
    "BATON_HEALTH_CHECK",
    "BATON_HEALTH_CHECK_PORT",
    "BATON_HEALTH_CHECK_BIND_ADDRESS",
];

/// The field names the operator sets itself, matching [`RESERVED_ENV`].
pub const RESERVED_FIELDS: &[&str] = &[
    "client-id",
    "client-secret",
    "host-id",
    "provisioning",
    "ticketing",
    "health-check",
    "health-check-port",
    "health-check-bind-address",
];
