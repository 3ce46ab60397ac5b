//! The typed model of one connector's schema, and its reading from the protobuf-JSON of
//! `config_schema.json` (int64 values written as strings, zero values left out, unknown keys
//! ignored: `reference/connector-config.md` section 1).

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

/// A field's type: the five variants config fields have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldType {
    String,
    Bool,
    Int,
    StringSlice,
    StringMap,
}

impl FieldType {
    /// How `kubectl baton fields` and messages name it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Bool => "bool",
            Self::Int => "int",
            Self::StringSlice => "list of strings",
            Self::StringMap => "map of strings",
        }
    }
}

/// A typed plain value: a field's default, or a value read from a manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Plain {
    String(String),
    Bool(bool),
    Int(i64),
    List(Vec<String>),
    Map(BTreeMap<String, String>),
}

impl Plain {
    /// The SDK's "present" in its own validation: non-empty, true, non-zero.
    pub fn is_zero(&self) -> bool {
        match self {
            Self::String(s) => s.is_empty(),
            Self::Bool(b) => !b,
            Self::Int(i) => *i == 0,
            Self::List(l) => l.is_empty(),
            Self::Map(m) => m.is_empty(),
        }
    }
}

/// The rules the SDK checks on a value (rules.proto). `pattern` and `wellKnown` are kept but not
/// checked here: no catalogued connector uses them, and the SDK's POSIX ERE is not Rust's regex.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rules {
    /// `rules.isRequired`: what the SDK's own validation reads (top-level `isRequired` is cobra's).
    pub required: bool,
    pub validate_empty: bool,
    pub string_in: Vec<String>,
    pub string_not_in: Vec<String>,
    pub min_len: Option<u64>,
    pub max_len: Option<u64>,
    pub prefix: Option<String>,
    pub suffix: Option<String>,
    pub gte: Option<i64>,
    pub lte: Option<i64>,
    pub gt: Option<i64>,
    pub lt: Option<i64>,
    pub int_in: Vec<i64>,
    pub min_items: Option<u64>,
    pub max_items: Option<u64>,
    pub unique: bool,
}

/// One configuration field.
#[derive(Clone, Debug)]
pub struct Field {
    pub name: String,
    pub display_name: Option<String>,
    pub description: String,
    pub placeholder: Option<String>,
    /// Top-level `isRequired` (cobra's required flag, and what the UI shows).
    pub required: bool,
    pub secret: bool,
    /// The SDK's operational fields (log level, OpenTelemetry, health check, HTTP timeout).
    pub ops: bool,
    pub kind: FieldType,
    /// The SDK field type for strings: `STRING_FIELD_TYPE_FILE_UPLOAD` means the value is a path.
    pub string_type: Option<String>,
    pub default: Option<Plain>,
    pub rules: Rules,
}

impl Field {
    /// Required in one sense or the other (cobra's or the SDK validation's).
    pub fn is_required(&self) -> bool {
        self.required || self.rules.required
    }

    pub fn is_file(&self) -> bool {
        self.string_type.as_deref() == Some("STRING_FIELD_TYPE_FILE_UPLOAD")
    }
}

/// An alternative way to configure the connector (usually an authentication method), selected with
/// `auth-method`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FieldGroup {
    pub name: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub help_text: Option<String>,
    #[serde(default)]
    pub fields: Vec<String>,
    #[serde(default)]
    pub default: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub enum ConstraintKind {
    #[serde(rename = "CONSTRAINT_KIND_REQUIRED_TOGETHER")]
    RequiredTogether,
    #[serde(rename = "CONSTRAINT_KIND_AT_LEAST_ONE")]
    AtLeastOne,
    #[serde(rename = "CONSTRAINT_KIND_MUTUALLY_EXCLUSIVE")]
    MutuallyExclusive,
    #[serde(rename = "CONSTRAINT_KIND_DEPENDENT_ON")]
    DependentOn,
    /// A kind a later SDK may add; not checked.
    #[serde(other)]
    Unknown,
}

/// A relationship between fields.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Constraint {
    pub kind: ConstraintKind,
    #[serde(default)]
    pub field_names: Vec<String>,
    /// DEPENDENT_ON: the fields `field_names` depend on.
    #[serde(default)]
    pub secondary_field_names: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Provenance {
    #[serde(default)]
    pub same_commit: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RawConnector {
    pub connector: String,
    repository: String,
    commit: String,
    sdk_version: String,
    schema: RawSchema,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawSchema {
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    fields: Vec<RawField>,
    #[serde(default)]
    field_groups: Vec<FieldGroup>,
    #[serde(default)]
    constraints: Vec<Constraint>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawField {
    name: String,
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    description: String,
    #[serde(default)]
    placeholder: Option<String>,
    #[serde(default)]
    is_required: bool,
    #[serde(default)]
    is_secret: bool,
    #[serde(default)]
    is_ops: bool,
    string_field: Option<Value>,
    bool_field: Option<Value>,
    int_field: Option<Value>,
    string_slice_field: Option<Value>,
    string_map_field: Option<Value>,
}

impl RawConnector {
    pub(super) fn into_connector(self, sdk_version_certain: bool) -> Result<Connector, String> {
        let fields = self.schema.fields.into_iter().map(RawField::into_field).collect::<Result<_, _>>()?;
        Ok(Connector {
            name: self.connector,
            repository: self.repository,
            commit: self.commit,
            display_name: self.schema.display_name,
            sdk_version: self.sdk_version,
            sdk_version_certain,
            fields,
            groups: self.schema.field_groups,
            constraints: self.schema.constraints,
        })
    }
}

impl RawField {
    fn into_field(self) -> Result<Field, String> {
        let (kind, body) = [
            (FieldType::String, &self.string_field),
            (FieldType::Bool, &self.bool_field),
            (FieldType::Int, &self.int_field),
            (FieldType::StringSlice, &self.string_slice_field),
            (FieldType::StringMap, &self.string_map_field),
        ]
        .into_iter()
        .find_map(|(kind, body)| body.as_ref().map(|b| (kind, b)))
        .ok_or_else(|| format!("field {:?} has no type", self.name))?;
        let default = body.get("defaultValue").map(|v| plain(kind, v)).transpose()?;
        let rules = body.get("rules").map(rules).unwrap_or_default();
        Ok(Field {
            string_type: body.get("type").and_then(Value::as_str).map(str::to_string),
            name: self.name,
            display_name: self.display_name,
            description: self.description,
            placeholder: self.placeholder,
            required: self.is_required,
            secret: self.is_secret,
            ops: self.is_ops,
            kind,
            default,
            rules,
        })
    }
}

/// An int64 as protobuf JSON writes it: a string, or a number.
fn int(v: &Value) -> Option<i64> {
    v.as_i64().or_else(|| v.as_str()?.parse().ok())
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array).into_iter().flatten().filter_map(|s| s.as_str().map(str::to_string)).collect()
}

fn plain(kind: FieldType, v: &Value) -> Result<Plain, String> {
    let bad = || format!("defaultValue {v} is not a {}", kind.as_str());
    Ok(match kind {
        FieldType::String => Plain::String(v.as_str().ok_or_else(bad)?.to_string()),
        FieldType::Bool => Plain::Bool(v.as_bool().ok_or_else(bad)?),
        FieldType::Int => Plain::Int(int(v).ok_or_else(bad)?),
        FieldType::StringSlice => Plain::List(strings(Some(v))),
        // Values are `Any`s holding a google.protobuf.Value; a string one has it under "value".
        FieldType::StringMap => Plain::Map(
            v.as_object()
                .ok_or_else(bad)?
                .iter()
                .map(|(k, any)| {
                    let value = any.get("value").unwrap_or(any);
                    (k.clone(), value.as_str().map(str::to_string).unwrap_or_else(|| value.to_string()))
                })
                .collect(),
        ),
    })
}

fn rules(r: &Value) -> Rules {
    let get_int = |k: &str| r.get(k).and_then(int);
    let get_u = |k: &str| get_int(k).and_then(|i| u64::try_from(i).ok());
    let get_str = |k: &str| r.get(k).and_then(Value::as_str).map(str::to_string);
    let flag = |k: &str| r.get(k).and_then(Value::as_bool).unwrap_or(false);
    Rules {
        required: flag("isRequired"),
        validate_empty: flag("validateEmpty"),
        string_in: strings(r.get("in")).into_iter().collect(),
        string_not_in: strings(r.get("notIn")),
        min_len: get_u("minLen"),
        max_len: get_u("maxLen"),
        prefix: get_str("prefix"),
        suffix: get_str("suffix"),
        gte: get_int("gte"),
        lte: get_int("lte"),
        gt: get_int("gt"),
        lt: get_int("lt"),
        int_in: r.get("in").and_then(Value::as_array).into_iter().flatten().filter_map(int).collect(),
        min_items: get_u("minItems"),
        max_items: get_u("maxItems"),
        unique: flag("unique"),
    }
}

/// One catalogued connector.
#[derive(Clone, Debug)]
pub struct Connector {
    /// The repository name without `baton-`, as in `spec.connector`.
    pub name: String,
    pub repository: String,
    /// The commit `config_schema.json` was copied from.
    pub commit: String,
    pub display_name: Option<String>,
    /// The baton-sdk version in the repository's go.mod.
    pub sdk_version: String,
    /// Whether schema and go.mod come from one commit (provenance.json `sameCommit`); otherwise
    /// `sdk_version` may not be the SDK that generated the schema.
    pub sdk_version_certain: bool,
    pub fields: Vec<Field>,
    pub groups: Vec<FieldGroup>,
    pub constraints: Vec<Constraint>,
}

impl Connector {
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// The connector's own fields (not the SDK's ops fields), in schema order.
    pub fn own_fields(&self) -> impl Iterator<Item = &Field> {
        self.fields.iter().filter(|f| !f.ops)
    }

    /// The group the SDK validates when `auth-method` names none: the default one, else the first.
    pub fn fallback_group(&self) -> Option<&FieldGroup> {
        self.groups.iter().find(|g| g.default).or_else(|| self.groups.first())
    }

    pub fn group(&self, name: &str) -> Option<&FieldGroup> {
        self.groups.iter().find(|g| g.name == name)
    }

    /// Every way to configure the connector: each field group by name, or `None` for a connector
    /// without groups.
    pub fn group_choices(&self) -> Vec<Option<&str>> {
        if self.groups.is_empty() {
            vec![None]
        } else {
            self.groups.iter().map(|g| Some(g.name.as_str())).collect()
        }
    }

    /// The SDK version as numbers, if it reads as `vX.Y.Z`.
    pub fn sdk(&self) -> Option<(u64, u64, u64)> {
        parse_version(&self.sdk_version)
    }
}

/// `v0.7.6` (or `v0.7.6-pre`, `0.7.6`) as numbers.
pub fn parse_version(v: &str) -> Option<(u64, u64, u64)> {
    let core = v.trim_start_matches('v').split(['-', '+']).next()?;
    let mut parts = core.split('.').map(|p| p.parse::<u64>().ok());
    Some((parts.next()??, parts.next()??, parts.next()??))
}
