//! The parts of the Baton SDK's contract (see `../shared/reference/connector-config.md` and
//! `baton-connectors.md`) that the stand-in connector plays: names, modes, required fields, and which
//! SDK versions serve the health endpoints.

use std::collections::BTreeMap;

use serde_json::Value;

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
    version >= (0, 7, 6) && config.get("BATON_HEALTH_CHECK").is_some_and(|v| v == "true")
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

/// The required-field check a connector with `schema` (the catalog's `schema` object) runs at
/// startup, with its configuration read from `config` (env names). Without field groups cobra marks
/// the top-level `isRequired` fields as required flags: `required flag(s) "a", "b" not set`, names in
/// alphabetical order. With field groups only the selected group's fields are checked, by
/// `field.Validate`: `field <n> of type string is marked as required but it has a zero-value`.
pub fn check_required(schema: &Value, config: &BTreeMap<String, String>) -> Result<(), String> {
    let fields = schema["fields"].as_array().cloned().unwrap_or_default();
    let set = |name: &str| config.get(&env_name(name)).is_some_and(|v| !v.is_empty());
    let required = |f: &Value| f["isRequired"].as_bool() == Some(true);
    let groups = schema["fieldGroups"].as_array().filter(|g| !g.is_empty());
    let Some(groups) = groups else {
        let mut missing: Vec<&str> = fields
            .iter()
            .filter(|f| required(f))
            .filter_map(|f| f["name"].as_str())
            .filter(|n| !set(n))
            .collect();
        missing.sort();
        if missing.is_empty() {
            return Ok(());
        }
        let quoted: Vec<String> = missing.iter().map(|n| format!("\"{n}\"")).collect();
        return Err(format!("required flag(s) {} not set", quoted.join(", ")));
    };
    // Group selection: the one named by `auth-method`, else the default one, else the first.
    let method = config.get("BATON_AUTH_METHOD").cloned().unwrap_or_default();
    let group = groups
        .iter()
        .find(|g| g["name"].as_str() == Some(method.as_str()))
        .or_else(|| groups.iter().find(|g| g["default"].as_bool() == Some(true)))
        .unwrap_or(&groups[0]);
    let in_group: Vec<&str> =
        group["fields"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    let errors: Vec<String> = fields
        .iter()
        .filter(|f| f["name"].as_str().is_some_and(|n| in_group.contains(&n)))
        .filter(|f| {
            required(f) || f.pointer("/stringField/rules/isRequired").and_then(Value::as_bool) == Some(true)
        })
        .filter_map(|f| f["name"].as_str())
        .filter(|n| !set(n))
        .map(|n| format!("field {n} of type string is marked as required but it has a zero-value"))
        .collect();
    if errors.is_empty() { Ok(()) } else { Err(format!("errors found:\n{}", errors.join("\n"))) }
}
