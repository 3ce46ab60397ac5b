//! `kubectl baton new <connector>`: a complete, commented manifest from the catalog. The Secrets
//! come first so that `kubectl apply -f` creates them before the connector that reads them.

use std::fmt::Write as _;

use crate::{
    api::ConfigValue,
    catalog::{Connector, env_name, example},
};

use super::fields::{default_text, one_line};

/// The manifest for `connector`, configured through `group` (the default or first group when
/// `None`), in `namespace` (the context's when `None`).
pub fn manifest(
    connector: &Connector,
    group: Option<&str>,
    namespace: Option<&str>,
) -> Result<String, String> {
    let name = &connector.name;
    let config_secret = format!("{name}-config");
    let config = example::config(connector, group, &config_secret)?;
    let chosen_group =
        group.map(str::to_string).or_else(|| connector.fallback_group().map(|g| g.name.clone()));
    let ns = namespace.map(|n| format!("\n  namespace: {n}")).unwrap_or_default();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# baton-{name}: {} at {}, Baton SDK {}.",
        connector.repository, connector.commit, connector.sdk_version
    );
    if let Some(g) = chosen_group.as_deref().and_then(|g| connector.group(g)) {
        let others: Vec<&str> =
            connector.groups.iter().filter(|o| o.name != g.name).map(|o| o.name.as_str()).collect();
        let _ = writeln!(
            out,
            "# Field group {:?}{}; others: {} (kubectl baton new {name} --group <name>).",
            g.name,
            g.display_name.as_deref().map(|d| format!(" ({d})")).unwrap_or_default(),
            others.join(", ")
        );
    }
    let _ =
        writeln!(out, "# Replace every <placeholder>; `kubectl baton fields {name}` describes each field.");
    let secrets: Vec<(&String, &ConfigValue)> =
        config.iter().filter(|(_, v)| v.secret_key_ref.is_some()).collect();
    if !secrets.is_empty() {
        let _ = write!(
            out,
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {config_secret}{ns}\ntype: Opaque\nstringData:\n"
        );
        for (field, _) in &secrets {
            let f = connector.field(field).expect("from the schema");
            let _ = writeln!(out, "  # {}", one_line(&f.description));
            let _ = writeln!(out, "  {field}: {}", quoted(&format!("<{field}>")));
        }
        out.push_str("---\n");
    }
    let _ = write!(
        out,
        "# The connector's ConductorOne client credentials, from \"Rotate\" on the connector in ConductorOne\n\
         # (or use credentials.managed with spec.conductorOne instead).\n\
         apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}-c1-client{ns}\ntype: Opaque\nstringData:\n  \
         BATON_CLIENT_ID: \"<client id>\"\n  BATON_CLIENT_SECRET: \"<client secret>\"\n---\n"
    );
    let _ = write!(
        out,
        "apiVersion: baton.conductorone.com/v1alpha1\nkind: BatonConnector\nmetadata:\n  name: {name}{ns}\nspec:\n  \
         connector: {name}\n  credentials:\n    secretRef:\n      name: {name}-c1-client\n  config:\n"
    );
    for (field, value) in &config {
        let description = connector
            .field(field)
            .map(|f| one_line(&f.description))
            .unwrap_or_else(|| "The field group the SDK validates and the connector uses".to_string());
        let _ = writeln!(out, "    # {description} ({})", env_name(field));
        let _ = writeln!(out, "    {field}:\n      {}", entry(value));
    }
    optional_fields(connector, &config, chosen_group.as_deref(), &config_secret, &mut out);
    Ok(out)
}

fn entry(value: &ConfigValue) -> String {
    match (&value.secret_key_ref, &value.value) {
        (Some(r), _) => format!("secretKeyRef: {{name: {}, key: {}}}", r.name, r.key),
        (None, v) => format!(
            "value: {}",
            serde_json::to_string(v.as_ref().unwrap_or(&serde_json::Value::Null)).unwrap_or_default()
        ),
    }
}

/// The group's other fields, commented out with their defaults.
fn optional_fields(
    connector: &Connector,
    config: &crate::api::Config,
    group: Option<&str>,
    secret: &str,
    out: &mut String,
) {
    let group = group.and_then(|g| connector.group(g));
    let rest: Vec<_> = connector
        .own_fields()
        .filter(|f| !config.contains_key(&f.name))
        .filter(|f| group.is_none_or(|g| g.fields.contains(&f.name)))
        .collect();
    if rest.is_empty() {
        return;
    }
    out.push_str("    # Optional:\n");
    for f in rest {
        let line = if f.secret {
            format!("{{secretKeyRef: {{name: {secret}, key: {}}}}}", f.name)
        } else {
            let d = default_text(f);
            format!("{{value: {}}}", if d.is_empty() { "...".into() } else { d })
        };
        let _ = writeln!(
            out,
            "    # {}: {line}   # {} ({})",
            f.name,
            one_line(&f.description),
            env_name(&f.name)
        );
    }
}

/// A YAML double-quoted scalar (JSON's string syntax is valid YAML).
fn quoted(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use k8s_openapi::api::core::v1::Secret;
    use serde::Deserialize;

    use super::*;
    use crate::{
        api::BatonConnector,
        catalog::{Catalog, validate},
    };

    /// Every catalogued connector, through every field group: the output parses, passes the CRD's
    /// CEL rules, validates clean, and its Secret holds every key the connector refers to.
    #[test]
    fn new_output_for_every_connector_and_group_is_valid() {
        let catalog = Catalog::embedded();
        let mut count = 0;
        for c in catalog.connectors() {
            for group in c.group_choices() {
                let text = manifest(c, group, Some("identity")).unwrap();
                let mut connectors = Vec::new();
                let mut keys: BTreeSet<(String, String)> = BTreeSet::new();
                for doc in serde_yaml::Deserializer::from_str(&text) {
                    let value = serde_yaml::Value::deserialize(doc)
                        .unwrap_or_else(|e| panic!("{}: {e}\n{text}", c.name));
                    match value["kind"].as_str() {
                        Some("Secret") => {
                            let s: Secret = serde_yaml::from_value(value).unwrap();
                            for k in s.string_data.unwrap_or_default().keys() {
                                keys.insert((s.metadata.name.clone().unwrap(), k.clone()));
                            }
                        }
                        Some("BatonConnector") => {
                            connectors.push(serde_yaml::from_value::<BatonConnector>(value).unwrap())
                        }
                        other => panic!("{}: unexpected {other:?}", c.name),
                    }
                }
                let [bc] = connectors.as_slice() else { panic!("{}: one BatonConnector", c.name) };
                BatonConnector::validate_cel(bc)
                    .unwrap_or_else(|e| panic!("{} {group:?}: {e}\n{text}", c.name));
                let outcome = validate::validate(&bc.spec, Some(&BTreeSet::new()), catalog);
                assert!(
                    outcome.errors().is_empty() && outcome.warnings().is_empty(),
                    "{} {group:?}: {outcome:?}\n{text}",
                    c.name
                );
                for r in bc.spec.config.values().filter_map(|v| v.secret_key_ref.as_ref()) {
                    assert!(
                        keys.contains(&(r.name.clone(), r.key.clone())),
                        "{}: {} has no key {}",
                        c.name,
                        r.name,
                        r.key
                    );
                }
                count += 1;
            }
        }
        assert!(count > 111);
    }

    #[test]
    fn okta_new_reads_as_a_person_would_write_it() {
        let okta = Catalog::embedded().get("okta").unwrap();
        let text = manifest(okta, Some("private-key-group"), None).unwrap();
        assert!(text.contains("  okta-private-key: \"<okta-private-key>\""), "{text}");
        assert!(
            text.contains(
                "    okta-private-key:\n      secretKeyRef: {name: okta-config, key: okta-private-key}"
            ),
            "{text}"
        );
        assert!(text.contains("    auth-method:\n      value: \"private-key-group\""), "{text}");
        assert!(text.contains("# sync-inactive-apps: {value: true}"), "{text}");
        assert!(!text.contains("namespace:"));
        assert!(
            manifest(okta, Some("nope"), None).unwrap_err().contains("api-token-group, private-key-group")
        );
    }
}
