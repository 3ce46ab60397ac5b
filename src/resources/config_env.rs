//! `spec.config` as the container environment the Baton SDK reads
//! (`reference/connector-config.md` section 3): `BATON_<NAME>`, and each type in the SDK's
//! encoding. Pure and total: a value the connector's schema would not accept is still encoded
//! (the catalog's validation says what is wrong), so that custom connectors get their settings.

use k8s_openapi::api::core::v1::{EnvVar, EnvVarSource, SecretKeySelector};
use serde_json::Value;

use crate::{api::Config, catalog};

/// One variable per setting, in the map's (sorted) order.
pub fn env_vars(config: &Config) -> Vec<EnvVar> {
    config
        .iter()
        .map(|(field, setting)| {
            let name = catalog::env_name(field);
            match (&setting.secret_key_ref, &setting.value) {
                (Some(r), _) => EnvVar {
                    name,
                    value: None,
                    value_from: Some(EnvVarSource {
                        secret_key_ref: Some(SecretKeySelector {
                            name: r.name.clone(),
                            key: r.key.clone(),
                            optional: Some(false),
                        }),
                        ..Default::default()
                    }),
                },
                (None, value) => EnvVar {
                    name,
                    value: Some(encode(value.as_ref().unwrap_or(&Value::Null))),
                    value_from: None,
                },
            }
        })
        .collect()
}

/// A plain value as the SDK parses it from the environment: bool as `true`/`false` (Go strconv),
/// integers in decimal (never with a leading zero, which Go reads as octal), a list as one CSV record
/// (pflag's string slice), a map as a JSON object with string values.
pub fn encode(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Array(items) => items.iter().map(|i| csv_item(&scalar(i))).collect::<Vec<_>>().join(","),
        Value::Object(map) => {
            let strings: serde_json::Map<String, Value> =
                map.iter().map(|(k, v)| (k.clone(), Value::String(scalar(v)))).collect();
            Value::Object(strings).to_string()
        }
    }
}

fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => encode(other),
    }
}

/// Quotes an item the way Go's encoding/csv writer does, so that the reader gives it back as it
/// was: when it holds a comma, a quote or a line break, or starts with a space.
fn csv_item(item: &str) -> String {
    let needs_quotes = item.contains([',', '"', '\r', '\n']) || item.starts_with(char::is_whitespace);
    if needs_quotes { format!("\"{}\"", item.replace('"', "\"\"")) } else { item.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ConfigValue;
    use serde_json::json;

    #[test]
    fn each_type_is_encoded_as_the_sdk_reads_it() {
        assert_eq!(encode(&json!("acme.okta.com")), "acme.okta.com");
        assert_eq!(encode(&json!(true)), "true");
        assert_eq!(encode(&json!(false)), "false");
        assert_eq!(encode(&json!(8)), "8");
        assert_eq!(encode(&json!(-300)), "-300");
        assert_eq!(encode(&json!(["a.com", "b.com"])), "a.com,b.com");
        assert_eq!(encode(&json!([])), "");
        assert_eq!(encode(&json!({"k": "v", "n": 1})), r#"{"k":"v","n":"1"}"#);
    }

    #[test]
    fn list_items_that_csv_would_split_are_quoted() {
        assert_eq!(encode(&json!(["a,b", "c"])), r#""a,b",c"#);
        assert_eq!(encode(&json!(["say \"hi\""])), r#""say ""hi""""#);
        assert_eq!(encode(&json!([" lead", "trail "])), r#"" lead",trail "#);
        assert_eq!(encode(&json!(["two\nlines"])), "\"two\nlines\"");
    }

    #[test]
    fn names_follow_the_sdk_and_secrets_stay_references() {
        let config = Config::from([
            ("domain".to_string(), ConfigValue::plain("acme.okta.com")),
            ("api-token".to_string(), ConfigValue::secret("okta", "token")),
        ]);
        let env = env_vars(&config);
        assert_eq!(env[0].name, "BATON_API_TOKEN");
        assert_eq!(env[0].value, None);
        let r = env[0].value_from.as_ref().unwrap().secret_key_ref.as_ref().unwrap();
        assert_eq!((r.name.as_str(), r.key.as_str(), r.optional), ("okta", "token", Some(false)));
        assert_eq!(env[1].name, "BATON_DOMAIN");
        assert_eq!(env[1].value.as_deref(), Some("acme.okta.com"));
    }
}
