//! The connector's own settings, checked against its catalogued schema on every pass: the
//! `ConfigValid` condition, and the problem that holds back a rollout of settings the Baton SDK
//! would refuse at start. Pure: the spec, the Secrets the pass read, the catalog.

use std::collections::BTreeSet;

use crate::api::{
    BatonConnector, Reason,
    conditions::{CONFIG_VALID, Desired, Status},
};
use crate::catalog::{
    Catalog,
    validate::{self, Outcome},
};
use crate::decide::{messages::listing, status::Problem};
use crate::resources::SecretData;

/// Validates `bc`'s settings as the SDK would. The keys of its `secretRefs` Secrets count as
/// environment variables when every one of them was read; when one is missing (its own problem is
/// reported), a required field it might supply is a warning, not an error.
pub fn check(bc: &BatonConnector, secrets: &SecretData, catalog: &Catalog) -> Outcome {
    validate::validate(&bc.spec, env_from_keys(bc, secrets).as_ref(), catalog)
}

fn env_from_keys(bc: &BatonConnector, secrets: &SecretData) -> Option<BTreeSet<String>> {
    let mut keys = BTreeSet::new();
    for r in &bc.spec.secret_refs {
        keys.extend(secrets.get(&r.name)?.keys().cloned());
    }
    Some(keys)
}

/// The problem that blocks applying the workload, for definite errors only.
pub fn problem(outcome: &Outcome) -> Option<Problem> {
    match outcome.errors() {
        [] => None,
        errors => Some(Problem::ConfigInvalid { errors: errors.to_vec() }),
    }
}

/// The `ConfigValid` condition.
pub fn condition(outcome: &Outcome) -> Desired {
    match outcome {
        Outcome::NotCatalogued { connector } => Desired::new(
            CONFIG_VALID,
            Status::Unknown,
            Reason::NotCatalogued,
            format!(
                "connector {connector:?} is not in the catalog: its settings are passed through unvalidated"
            ),
        ),
        Outcome::Checked(report) if !report.errors.is_empty() => {
            Desired::new(CONFIG_VALID, false, Reason::ConfigInvalid, listing(&report.errors))
        }
        Outcome::Checked(report) if !report.warnings.is_empty() => Desired::new(
            CONFIG_VALID,
            true,
            Reason::ValidatedWithWarnings,
            format!("valid, with warnings: {}", listing(&report.warnings)),
        ),
        Outcome::Checked(_) => Desired::new(
            CONFIG_VALID,
            true,
            Reason::Validated,
            "the settings match the connector's catalogued schema",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn bc(spec: serde_json::Value) -> BatonConnector {
        serde_json::from_value(json!({
            "apiVersion": "baton.conductorone.com/v1alpha1", "kind": "BatonConnector",
            "metadata": {"name": "c", "namespace": "ns"}, "spec": spec,
        }))
        .unwrap()
    }

    fn secrets(entries: &[(&str, &[&str])]) -> SecretData {
        let mut out = SecretData::default();
        for (name, keys) in entries {
            let data = keys.iter().map(|k| (k.to_string(), k8s_openapi::ByteString(b"v".to_vec()))).collect();
            out.insert(*name, data);
        }
        out
    }

    fn okta(extra: serde_json::Value) -> BatonConnector {
        let mut spec = json!({"connector": "okta", "credentials": {"secretRef": {"name": "c1"}}});
        spec.as_object_mut().unwrap().extend(extra.as_object().cloned().unwrap());
        bc(spec)
    }

    #[test]
    fn complete_settings_are_valid() {
        let bc = okta(json!({
            "config": {"domain": {"value": "acme.okta.com"},
                       "api-token": {"secretKeyRef": {"name": "okta", "key": "token"}}},
        }));
        let outcome = check(&bc, &SecretData::default(), Catalog::embedded());
        assert_eq!(problem(&outcome), None);
        let c = condition(&outcome);
        assert_eq!((c.status, c.reason), (Status::True, Reason::Validated));
    }

    #[test]
    fn a_missing_field_blocks_and_names_the_field_and_its_variable() {
        let bc = okta(json!({"config": {"domain": {"value": "acme.okta.com"}}}));
        let outcome = check(&bc, &SecretData::default(), Catalog::embedded());
        let Some(Problem::ConfigInvalid { errors }) = problem(&outcome) else { panic!("{outcome:?}") };
        let c = condition(&outcome);
        assert_eq!((c.status, c.reason), (Status::False, Reason::ConfigInvalid));
        assert!(c.message.contains("BATON_API_TOKEN"), "{}", c.message);
        assert_eq!(c.message, listing(&errors));
    }

    #[test]
    fn secret_refs_keys_supply_fields_once_every_secret_is_read() {
        let bc = okta(json!({"secretRefs": [{"name": "a"}, {"name": "b"}]}));
        let both = secrets(&[("a", &["BATON_DOMAIN"]), ("b", &["BATON_API_TOKEN"])]);
        assert_eq!(problem(&check(&bc, &both, Catalog::embedded())), None);
        // `b` not read: whatever it holds is unknown, so the missing token is only a warning.
        let one = secrets(&[("a", &["BATON_DOMAIN"])]);
        let outcome = check(&bc, &one, Catalog::embedded());
        assert_eq!(problem(&outcome), None);
        assert_eq!(condition(&outcome).reason, Reason::ValidatedWithWarnings);
        // Both read and neither has the token: a definite error.
        let neither = secrets(&[("a", &["BATON_DOMAIN"]), ("b", &[])]);
        assert!(problem(&check(&bc, &neither, Catalog::embedded())).is_some());
    }

    #[test]
    fn a_custom_connector_is_unknown_and_never_blocked() {
        let bc = bc(json!({"connector": "in-house", "credentials": {"secretRef": {"name": "c1"}},
                           "env": [{"name": "BATON_ANYTHING", "value": "x"}]}));
        let outcome = check(&bc, &SecretData::default(), Catalog::embedded());
        assert_eq!(problem(&outcome), None);
        let c = condition(&outcome);
        assert_eq!((c.status, c.reason), (Status::Unknown, Reason::NotCatalogued));
    }

    #[test]
    fn long_lists_are_cut_with_a_count() {
        let entries: Vec<String> = (1..=5).map(|i| format!("e{i}")).collect();
        assert_eq!(listing(&entries), "e1; e2; e3; and 2 more");
        assert_eq!(listing(&entries[..2]), "e1; e2");
    }
}
