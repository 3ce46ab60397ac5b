//! Required fields (with field groups), constraints between fields, and what the SDK version allows.

use super::{Setting, Validation};
use crate::{
    api::BatonConnectorSpec,
    catalog::{ConstraintKind, FieldGroup, HEALTH_CHECK_SDK, Plain, env_name},
};

/// `a (BATON_A), b (BATON_B)`.
fn named(fields: &[String]) -> String {
    fields.iter().map(|f| format!("{f} ({})", env_name(f))).collect::<Vec<_>>().join(", ")
}

impl Validation<'_> {
    /// Whether the field has a non-zero value, counting its default (the SDK validation's
    /// "present"). A value from a Secret counts: it cannot be seen.
    fn present(&self, name: &str) -> bool {
        match self.settings.get(name) {
            Some(Setting::Hidden) => true,
            Some(Setting::Known(Some(p))) => !p.is_zero(),
            Some(Setting::Known(None)) | None => {
                self.connector.field(name).and_then(|f| f.default.as_ref()).is_some_and(|d| !d.is_zero())
            }
        }
    }

    /// The required fields of `fields` without a value. Without groups cobra also demands an
    /// explicit value for a top-level `isRequired` field, whatever its default.
    fn missing<'f>(&self, fields: impl Iterator<Item = &'f str>, cobra: bool) -> Vec<String> {
        fields
            .filter_map(|n| self.connector.field(n))
            .filter(|f| !f.ops && f.is_required())
            .filter(|f| {
                let explicit =
                    self.settings.get(&f.name).is_some_and(Setting::is_set) && self.present(&f.name);
                if cobra && f.required { !explicit } else { !self.present(&f.name) }
            })
            .map(|f| f.name.clone())
            .collect()
    }

    /// Checks required fields and returns the group the SDK would validate, if the schema has groups.
    pub(super) fn check_groups(&mut self, unknown_env_from: bool) -> Option<FieldGroup> {
        let connector = self.connector;
        let report = |v: &mut Self, message: String| {
            if unknown_env_from {
                v.warn(format!("{message} (unless a secretRefs Secret supplies it; its keys were not read)"));
            } else {
                v.error(message);
            }
        };
        if connector.groups.is_empty() {
            let missing = self.missing(connector.fields.iter().map(|f| f.name.as_str()), true);
            if !missing.is_empty() {
                report(
                    self,
                    format!("missing required field(s) of baton-{}: {}", connector.name, named(&missing)),
                );
            }
            return None;
        }
        let chosen = match self.settings.get("auth-method") {
            Some(Setting::Known(Some(Plain::String(name)))) => match connector.group(name) {
                Some(g) => Some(g),
                None => {
                    let groups: Vec<_> = connector.groups.iter().map(|g| g.name.as_str()).collect();
                    self.error(format!(
                        "auth-method (BATON_AUTH_METHOD) {name:?} names no field group of baton-{}; the groups are {}",
                        connector.name,
                        groups.join(", ")
                    ));
                    return None;
                }
            },
            // From a Secret: which group it names cannot be seen; one complete group must do.
            Some(Setting::Hidden) => None,
            _ => connector.fallback_group(),
        };
        let incomplete = |v: &Self, g: &FieldGroup| v.missing(g.fields.iter().map(String::as_str), false);
        if let Some(group) = chosen {
            let missing = incomplete(self, group);
            if missing.is_empty() {
                return Some(group.clone());
            }
            let explicit = self.settings.contains_key("auth-method");
            if let Some(other) =
                connector.groups.iter().find(|g| incomplete(self, g).is_empty()).filter(|_| !explicit)
            {
                self.error(format!(
                    "the settings complete field group {:?}, but without auth-method the SDK checks group {:?} ({}): set spec.config.auth-method to {:?} (BATON_AUTH_METHOD)",
                    other.name,
                    group.name,
                    if group.default { "the default" } else { "the first" },
                    other.name
                ));
                return Some(other.clone());
            }
            let note =
                if explicit { "selected by auth-method" } else { "checked when auth-method is not set" };
            report(
                self,
                format!(
                    "field group {:?} of baton-{} ({note}) is missing required field(s) {}; other groups: {}",
                    group.name,
                    connector.name,
                    named(&missing),
                    self.group_needs(Some(&group.name))
                ),
            );
            return Some(group.clone());
        }
        if connector.groups.iter().any(|g| incomplete(self, g).is_empty()) {
            return None;
        }
        report(
            self,
            format!(
                "missing required fields of baton-{}: one complete field group is enough: {}",
                connector.name,
                self.group_needs(None)
            ),
        );
        None
    }

    /// `group a needs x (BATON_X); group b needs ...`, leaving out `except`.
    fn group_needs(&self, except: Option<&str>) -> String {
        let parts: Vec<String> = self
            .connector
            .groups
            .iter()
            .filter(|g| Some(g.name.as_str()) != except)
            .map(|g| {
                let missing = self.missing(g.fields.iter().map(String::as_str), false);
                if missing.is_empty() {
                    format!("group {:?} is complete", g.name)
                } else {
                    format!("group {:?} needs {}", g.name, named(&missing))
                }
            })
            .collect();
        if parts.is_empty() { "none".into() } else { parts.join("; ") }
    }

    /// The connector's constraints, as the SDK validation checks them (defaults count, fields outside
    /// the selected group count as absent) and as cobra does (an explicit value counts, even `false`;
    /// groups and DEPENDENT_ON ignored). One message per failing constraint.
    pub(super) fn check_constraints(&mut self, group: Option<FieldGroup>) {
        let in_group = |n: &str| group.as_ref().is_none_or(|g| g.fields.iter().any(|f| f == n));
        for c in &self.connector.constraints {
            let sdk = |n: &String| in_group(n) && self.present(n);
            let cobra = |n: &String| self.settings.get(n).is_some_and(Setting::is_set);
            let fields = &c.field_names;
            let failure = |present: &dyn Fn(&String) -> bool| -> Option<String> {
                let set: Vec<String> = fields.iter().filter(|n| present(n)).cloned().collect();
                match c.kind {
                    ConstraintKind::RequiredTogether if !set.is_empty() && set.len() < fields.len() => {
                        let missing: Vec<String> =
                            fields.iter().filter(|n| !set.contains(n)).cloned().collect();
                        Some(format!(
                            "fields {} are needed together; missing {}",
                            named(fields),
                            named(&missing)
                        ))
                    }
                    ConstraintKind::AtLeastOne if set.is_empty() => {
                        Some(format!("at least one of the fields {} is needed", named(fields)))
                    }
                    ConstraintKind::MutuallyExclusive if set.len() > 1 => Some(format!(
                        "fields {} are mutually exclusive, but {} are set",
                        named(fields),
                        named(&set)
                    )),
                    _ => None,
                }
            };
            let message = failure(&sdk).or_else(|| failure(&cobra)).or_else(|| {
                let dependent = c.kind == ConstraintKind::DependentOn && fields.iter().any(sdk);
                let unmet: Vec<String> =
                    c.secondary_field_names.iter().filter(|n| !sdk(n)).cloned().collect();
                (dependent && !unmet.is_empty())
                    .then(|| format!("fields {} depend on {} being set", named(fields), named(&unmet)))
            });
            if let Some(message) = message {
                self.error(format!("baton-{}: {message}", self.connector.name));
            }
        }
    }

    /// `healthCheck.enabled` needs the SDK's health server (v0.7.6). Refused only where the catalogued
    /// SDK version is certain and the image is the catalogued one.
    pub(super) fn check_health(&mut self, spec: &BatonConnectorSpec) {
        if !spec.health_check.as_ref().is_some_and(|h| h.enabled) {
            return;
        }
        let c = self.connector;
        if c.sdk().is_none_or(|v| v >= HEALTH_CHECK_SDK) {
            return;
        }
        if c.sdk_version_certain && !self.pinned {
            self.error(format!(
                "healthCheck.enabled needs Baton SDK v0.7.6 or newer, but baton-{} at the catalogued commit is built with {}: it has no health server and the probes would fail",
                c.name, c.sdk_version
            ));
        } else {
            self.warn(format!(
                "healthCheck.enabled needs Baton SDK v0.7.6 or newer; whether this image has it is unknown (the catalog's SDK version for baton-{}, {}, comes from a different commit than its schema, or the image is pinned)",
                c.name, c.sdk_version
            ));
        }
    }
}
