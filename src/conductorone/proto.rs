//! Lenient readers for proto3 JSON as the ConductorOne API emits it: `null` for unset values,
//! 64-bit integers as strings, RFC 3339 timestamps, enums as names (or numbers).
//!
//! Use these with `#[serde(default, deserialize_with = "...")]` so that absent fields default too.

use k8s_openapi::jiff::Timestamp;
use secrecy::SecretString;
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};

/// `null` reads as the type's default, as proto3 JSON requires for scalars.
pub(crate) fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A `google.protobuf.Timestamp`: RFC 3339 text, or `null`/`""` for unset.
pub(crate) fn timestamp<'de, D>(d: D) -> Result<Option<Timestamp>, D::Error>
where
    D: Deserializer<'de>,
{
    match Option::<String>::deserialize(d)? {
        None => Ok(None),
        Some(s) if s.is_empty() => Ok(None),
        // The message names no value: decode errors must not echo response content.
        Some(s) => {
            s.parse::<Timestamp>().map(Some).map_err(|_| de::Error::custom("invalid RFC 3339 timestamp"))
        }
    }
}

/// A string that is a secret: `null` and `""` read as absent.
pub(crate) fn secret<'de, D>(d: D) -> Result<Option<SecretString>, D::Error>
where
    D: Deserializer<'de>,
{
    Ok(Option::<String>::deserialize(d)?.filter(|s| !s.is_empty()).map(SecretString::from))
}

#[derive(Deserialize)]
#[serde(untagged)]
enum IntRepr {
    Signed(i64),
    Unsigned(u64),
    Float(f64),
    Text(String),
}

/// Any proto integer: JSON number, or decimal string (how int64/uint64 are encoded), or `null`.
pub(crate) fn int64<'de, D>(d: D) -> Result<i64, D::Error>
where
    D: Deserializer<'de>,
{
    let invalid = || de::Error::custom("invalid integer");
    match Option::<IntRepr>::deserialize(d)? {
        None => Ok(0),
        Some(IntRepr::Signed(n)) => Ok(n),
        Some(IntRepr::Unsigned(n)) => i64::try_from(n).map_err(|_| invalid()),
        Some(IntRepr::Float(f)) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(f as i64),
        Some(IntRepr::Float(_)) => Err(invalid()),
        Some(IntRepr::Text(s)) if s.is_empty() => Ok(0),
        Some(IntRepr::Text(s)) => s.trim().parse().map_err(|_| invalid()),
    }
}

/// `c1.api.app.v1.ConnectorStatus.status`. Values this client does not know are kept as
/// [`SyncState::Unknown`] (the spec marks the enum `x-speakeasy-unknown-values: allow`).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum SyncState {
    #[default]
    Unspecified,
    Running,
    Done,
    Error,
    Disabled,
    /// A value added to the API after this client was written (its wire name, or the number).
    Unknown(String),
}

impl SyncState {
    const KNOWN: [(&'static str, SyncState); 5] = [
        ("SYNC_STATUS_UNSPECIFIED", SyncState::Unspecified),
        ("SYNC_STATUS_RUNNING", SyncState::Running),
        ("SYNC_STATUS_DONE", SyncState::Done),
        ("SYNC_STATUS_ERROR", SyncState::Error),
        ("SYNC_STATUS_DISABLED", SyncState::Disabled),
    ];

    pub fn from_wire(name: &str) -> Self {
        Self::KNOWN
            .iter()
            .find(|(wire, _)| *wire == name)
            .map_or_else(|| SyncState::Unknown(name.to_owned()), |(_, s)| s.clone())
    }

    /// The wire name, e.g. `SYNC_STATUS_DONE`.
    pub fn as_wire(&self) -> &str {
        match self {
            SyncState::Unknown(raw) => raw,
            known => Self::KNOWN
                .iter()
                .find(|(_, s)| s == known)
                .map_or("SYNC_STATUS_UNSPECIFIED", |(wire, _)| wire),
        }
    }

    /// A bounded label for metrics and conditions (`Unknown` for all unknown values).
    pub fn label(&self) -> &'static str {
        match self {
            SyncState::Unspecified => "Unspecified",
            SyncState::Running => "Running",
            SyncState::Done => "Done",
            SyncState::Error => "Error",
            SyncState::Disabled => "Disabled",
            SyncState::Unknown(_) => "Unknown",
        }
    }
}

impl<'de> Deserialize<'de> for SyncState {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            Name(String),
            Number(i64),
        }
        Ok(match Option::<Repr>::deserialize(d)? {
            None => SyncState::Unspecified,
            Some(Repr::Name(name)) => SyncState::from_wire(&name),
            // proto3 JSON parsers must also accept enum numbers.
            Some(Repr::Number(n)) => usize::try_from(n)
                .ok()
                .and_then(|i| Self::KNOWN.get(i))
                .map_or_else(|| SyncState::Unknown(n.to_string()), |(_, s)| s.clone()),
        })
    }
}

impl Serialize for SyncState {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_wire())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Deserialize, Default, Debug)]
    #[serde(default)]
    struct Sample {
        #[serde(deserialize_with = "null_default")]
        name: String,
        #[serde(deserialize_with = "int64")]
        count: i64,
        #[serde(deserialize_with = "timestamp")]
        at: Option<Timestamp>,
        state: SyncState,
    }

    fn sample(value: serde_json::Value) -> Sample {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn absent_and_null_fields_default() {
        let s = sample(json!({}));
        assert_eq!((s.name.as_str(), s.count, s.at, s.state), ("", 0, None, SyncState::Unspecified));
        let s = sample(json!({"name": null, "count": null, "at": null, "state": null}));
        assert_eq!((s.name.as_str(), s.count, s.at, s.state), ("", 0, None, SyncState::Unspecified));
    }

    #[test]
    fn integers_arrive_as_numbers_or_strings() {
        assert_eq!(sample(json!({"count": "9007199254740993"})).count, 9_007_199_254_740_993);
        assert_eq!(sample(json!({"count": 42})).count, 42);
        assert_eq!(sample(json!({"count": "-7"})).count, -7);
        assert_eq!(sample(json!({"count": 3.0})).count, 3);
        assert!(serde_json::from_value::<Sample>(json!({"count": "many"})).is_err());
        assert!(serde_json::from_value::<Sample>(json!({"count": 1.5})).is_err());
    }

    #[test]
    fn timestamps_parse_rfc3339_and_reject_garbage_without_echoing_it() {
        let s = sample(json!({"at": "2026-08-01T10:04:12.5Z"}));
        assert_eq!(s.at.unwrap().as_millisecond(), 1_785_578_652_500);
        assert_eq!(sample(json!({"at": ""})).at, None);
        let err = serde_json::from_value::<Sample>(json!({"at": "yesterday-ish"})).unwrap_err();
        assert!(!err.to_string().contains("yesterday-ish"));
    }

    #[test]
    fn sync_states_known_unknown_and_numeric() {
        assert_eq!(sample(json!({"state": "SYNC_STATUS_DONE"})).state, SyncState::Done);
        assert_eq!(sample(json!({"state": 1})).state, SyncState::Running);
        let unknown = sample(json!({"state": "SYNC_STATUS_QUEUED"})).state;
        assert_eq!(unknown, SyncState::Unknown("SYNC_STATUS_QUEUED".into()));
        assert_eq!(unknown.label(), "Unknown");
        assert_eq!(unknown.as_wire(), "SYNC_STATUS_QUEUED");
        assert_eq!(sample(json!({"state": 99})).state, SyncState::Unknown("99".into()));
        assert_eq!(SyncState::Disabled.as_wire(), "SYNC_STATUS_DISABLED");
        assert_eq!(serde_json::to_value(SyncState::Error).unwrap(), json!("SYNC_STATUS_ERROR"));
    }
}
