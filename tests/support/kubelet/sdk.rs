//! The parts of the Baton SDK's contract (see `../shared/reference/connector-config.md` and
//! `baton-connectors.md`) that the stand-in connector plays: names, modes, required fields, and which
//! SDK versions serve the health endpoints.

use std::collections::BTreeMap;

use baton_operator::catalog::{Connector, Field, FieldType};

/// Flag `--foo-bar` is read from env `BATON_FOO_BAR` (viper's prefix and key replacer).
pub fn env_name(flag: &str) -> String {
    format!("BATON_{}", flag.replace('-', "_").to_ascii_uppercase())
}

/// The SDK version an image plays, from its tag: `e2e.local/baton-standin:v0.7.6` → (0, 7, 6).
pub fn image_sdk_version(image: &str) -> Option<(u32, u32, u32)> {
    let tag = image.rsplit_once(':')?.1;
    let mut parts = tag.strip_prefix('v')?.split('.').map(|p| p.parse::<u32>().ok());
    Some((parts.next()??, parts.next()??, parts.next()??))
}

/// The health server (`/live`, `/ready`, `/health`) exists since v0.7.6; older SDKs do not know
/// `BATON_HEALTH_CHECK` and, as viper ignores unknown keys, say nothing about it.
pub fn health_server_enabled(version: (u32, u32, u32), config: &BTreeMap<String, String>) -> bool {
    // viper's GetBool: strconv.ParseBool.
    let truthy = |v: &String| matches!(v.as_str(), "1" | "t" | "T" | "true" | "TRUE" | "True");
    version >= (0, 7, 6) && config.get("BATON_HEALTH_CHECK").is_some_and(truthy)
}

#[derive(Debug, PartialEq, Eq)]
pub enum Mode {
    /// Service ("daemon") mode: `client-id` is non-empty.
    Service { client_id: String, client_secret: String },
    /// A one-shot sync into `BATON_FILE`.
    OneShot { file: String },
}

/// Layer C of startup: service mode on a non-empty `client-id`, and then an empty secret fails.
pub fn mode(config: &BTreeMap<String, String>) -> Result<Mode, String> {
    let get = |k: &str| config.get(k).cloned().unwrap_or_default();
    let (id, secret) = (get("BATON_CLIENT_ID"), get("BATON_CLIENT_SECRET"));
    if !id.is_empty() {
        if secret.is_empty() {
            return Err("client-secret is required in service mode".into());
        }
        return Ok(Mode::Service { client_id: id, client_secret: secret });
    }
    let file =
        config.get("BATON_FILE").filter(|f| !f.is_empty()).cloned().unwrap_or_else(|| "sync.c1z".into());
    Ok(Mode::OneShot { file })
}

/// The required-field check a connector runs at startup (`reference/connector-config.md`, layers
/// A and B), with its configuration read from `config` (env names; an empty value is unset, as
/// viper has it). Cobra's required flags (top-level `isRequired`) are marked only without field
/// groups (since v0.5.6; before, always): `required flag(s) "a", "b" not set`, names in alphabetical
/// order. Then `field.Validate` checks `rules.isRequired` on the selected group's fields (all fields
/// without groups), a default counting as a value:
/// `errors found:` and `field <n> of type string is marked as required but it has a zero-value`.
pub fn check_required(
    connector: &Connector,
    version: (u32, u32, u32),
    config: &BTreeMap<String, String>,
) -> Result<(), String> {
    let set = |name: &str| config.get(&env_name(name)).is_some_and(|v| !v.is_empty());
    if connector.groups.is_empty() || version < (0, 5, 6) {
        let mut missing: Vec<&str> = connector
            .fields
            .iter()
            .filter(|f| f.required && !set(&f.name))
            .map(|f| f.name.as_str())
            .collect();
        missing.sort();
        if !missing.is_empty() {
            let quoted: Vec<String> = missing.iter().map(|n| format!("\"{n}\"")).collect();
            return Err(format!("required flag(s) {} not set", quoted.join(", ")));
        }
    }
    // Group selection: the one named by `auth-method`, else the default one, else the first.
    let method = config.get("BATON_AUTH_METHOD").cloned().unwrap_or_default();
    let group = connector.group(&method).or_else(|| connector.fallback_group());
    let selected = |f: &&Field| group.is_none_or(|g| g.fields.contains(&f.name));
    let present = |f: &Field| set(&f.name) || f.default.as_ref().is_some_and(|d| !d.is_zero());
    let errors: Vec<String> = connector
        .fields
        .iter()
        .filter(selected)
        .filter(|f| f.rules.required && !present(f))
        .map(|f| {
            format!(
                "field {} of type {} is marked as required but it has a zero-value",
                f.name,
                go_type(f.kind)
            )
        })
        .collect();
    if errors.is_empty() { Ok(()) } else { Err(format!("errors found:\n{}", errors.join("\n"))) }
}

/// How the SDK's message names a field's type.
fn go_type(kind: FieldType) -> &'static str {
    match kind {
        FieldType::String => "string",
        FieldType::Bool => "bool",
        FieldType::Int => "int",
        FieldType::StringSlice => "[]string",
        FieldType::StringMap => "map[string]any",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use baton_operator::catalog::Catalog;

    fn config(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn names_versions_and_the_health_server() {
        assert_eq!(env_name("health-check-bind-address"), "BATON_HEALTH_CHECK_BIND_ADDRESS");
        assert_eq!(image_sdk_version("e2e.local/baton-okta:v0.7.6"), Some((0, 7, 6)));
        assert_eq!(image_sdk_version("e2e.local/baton-okta:latest"), None);
        let on = config(&[("BATON_HEALTH_CHECK", "true")]);
        assert!(health_server_enabled((0, 7, 6), &on));
        assert!(!health_server_enabled((0, 7, 5), &on));
        assert!(!health_server_enabled((0, 9, 0), &config(&[])));
    }

    #[test]
    fn service_mode_needs_both_halves_and_one_shot_writes_sync_c1z_by_default() {
        let id = ("BATON_CLIENT_ID", "a@b/c");
        assert!(matches!(mode(&config(&[id, ("BATON_CLIENT_SECRET", "s")])), Ok(Mode::Service { .. })));
        assert_eq!(mode(&config(&[id])), Err("client-secret is required in service mode".into()));
        assert_eq!(mode(&config(&[])), Ok(Mode::OneShot { file: "sync.c1z".into() }));
        assert_eq!(
            mode(&config(&[("BATON_FILE", "/data/x.c1z")])),
            Ok(Mode::OneShot { file: "/data/x.c1z".into() })
        );
    }

    #[test]
    fn okta_checks_its_selected_group_and_an_empty_value_is_missing() {
        let okta = Catalog::embedded().get("okta").unwrap();
        let v = (0, 25, 0);
        let ok = config(&[("BATON_DOMAIN", "x.okta.com"), ("BATON_API_TOKEN", "t")]);
        assert_eq!(check_required(okta, v, &ok), Ok(()));
        let empty = config(&[("BATON_DOMAIN", "x.okta.com"), ("BATON_API_TOKEN", "")]);
        assert_eq!(
            check_required(okta, v, &empty),
            Err(
                "errors found:\nfield api-token of type string is marked as required but it has a zero-value"
                    .into()
            )
        );
        let other = config(&[("BATON_DOMAIN", "x"), ("BATON_AUTH_METHOD", "private-key-group")]);
        let err = check_required(okta, v, &other).unwrap_err();
        assert!(err.contains("field okta-client-id") && !err.contains("api-token"), "{err}");
    }

    #[test]
    fn without_groups_cobra_names_the_missing_flags_in_order() {
        let c = Catalog::embedded()
            .connectors()
            .find(|c| c.groups.is_empty() && c.fields.iter().filter(|f| f.required).count() >= 2);
        let c = c.expect("a catalogued connector without groups and two required fields");
        let mut names: Vec<&str> = c.fields.iter().filter(|f| f.required).map(|f| f.name.as_str()).collect();
        names.sort();
        let err = check_required(c, (0, 25, 0), &config(&[])).unwrap_err();
        assert!(
            err.starts_with("required flag(s) ")
                && err.contains(&format!("\"{}\", \"{}\"", names[0], names[1])),
            "{err}"
        );
    }
}
