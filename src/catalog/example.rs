//! A complete `spec.config` for one way of configuring a connector: its required fields, with
//! placeholders, secret fields as references to one Secret, and what its constraints add. Used by
//! `kubectl baton new` and to test that every catalogued connector validates clean.

use std::collections::BTreeSet;

use super::{Connector, ConstraintKind, Field, FieldType};
use crate::api::{Config, ConfigValue};

/// The fields to set and the config for group `group` (or the connector's only set of fields).
/// `secret` names the Secret that secret fields refer to; each key is the field name.
pub fn config(connector: &Connector, group: Option<&str>, secret: &str) -> Result<Config, String> {
    let group = match group {
        Some(name) => Some(connector.group(name).ok_or_else(|| {
            let names: Vec<_> = connector.groups.iter().map(|g| g.name.as_str()).collect();
            format!("baton-{} has no field group {name:?}; its groups: {}", connector.name, names.join(", "))
        })?),
        None => connector.fallback_group(),
    };
    let usable = |n: &str| group.is_none_or(|g| g.fields.iter().any(|f| f == n));
    let mut chosen: BTreeSet<String> = connector
        .own_fields()
        .filter(|f| f.is_required() && usable(&f.name) && f.kind != FieldType::Bool)
        .map(|f| f.name.clone())
        .collect();
    close_over_constraints(connector, &mut chosen, &usable);
    let mut config = Config::new();
    if let Some(g) = group {
        // Always explicit: the SDK otherwise picks the default (or first) group, whatever is set.
        config.insert("auth-method".into(), ConfigValue::plain(g.name.clone()));
    }
    for name in chosen {
        let field = connector.field(&name).expect("chosen from the schema");
        config.insert(name.clone(), value(field, secret));
    }
    Ok(config)
}

/// Adds what the constraints ask for once some fields are chosen, until nothing changes.
fn close_over_constraints(
    connector: &Connector,
    chosen: &mut BTreeSet<String>,
    usable: &dyn Fn(&str) -> bool,
) {
    for _ in 0..8 {
        let before = chosen.len();
        for c in &connector.constraints {
            let any = c.field_names.iter().any(|n| chosen.contains(n));
            match c.kind {
                ConstraintKind::AtLeastOne if !any => {
                    if let Some(n) = c.field_names.iter().find(|n| usable(n)) {
                        chosen.insert(n.clone());
                    }
                }
                ConstraintKind::RequiredTogether if any => chosen.extend(c.field_names.iter().cloned()),
                ConstraintKind::DependentOn if any => chosen.extend(c.secondary_field_names.iter().cloned()),
                _ => {}
            }
        }
        if chosen.len() == before {
            return;
        }
    }
}

/// A placeholder that passes the field's rules, or a reference for a secret field.
fn value(field: &Field, secret: &str) -> ConfigValue {
    if field.secret {
        return ConfigValue::secret(secret, field.name.clone());
    }
    let r = &field.rules;
    match field.kind {
        FieldType::String => {
            let text = r.string_in.first().cloned().unwrap_or_else(|| {
                let base = if field.is_file() {
                    format!("/etc/baton/{}", field.name)
                } else {
                    format!("<{}>", field.name)
                };
                format!(
                    "{}{base}{}",
                    r.prefix.clone().unwrap_or_default(),
                    r.suffix.clone().unwrap_or_default()
                )
            });
            ConfigValue::plain(text)
        }
        FieldType::Bool => ConfigValue::plain(true),
        FieldType::Int => ConfigValue::plain(r.gte.or(r.gt.map(|g| g + 1)).filter(|v| *v != 0).unwrap_or(1)),
        FieldType::StringSlice => ConfigValue::plain(vec![format!("<{}>", field.name)]),
        FieldType::StringMap => ConfigValue::plain(serde_json::json!({"<key>": "<value>"})),
    }
}
