//! Validation against the embedded catalog, as the SDK would judge each case.

use std::collections::BTreeSet;

use serde_json::json;

use super::{
    Catalog, example,
    validate::{Outcome, validate},
};
use crate::api::{BatonConnectorSpec, ConfigValue, EnvEntry, HealthCheckSpec, ImageSpec, SecretRef};

fn spec(connector: &str, config: serde_json::Value) -> BatonConnectorSpec {
    serde_json::from_value(json!({"connector": connector, "config": config})).unwrap()
}

fn check(spec: &BatonConnectorSpec) -> (Vec<String>, Vec<String>) {
    match validate(spec, Some(&BTreeSet::new()), Catalog::embedded()) {
        Outcome::Checked(r) => (r.errors, r.warnings),
        Outcome::NotCatalogued { connector } => panic!("{connector} not catalogued"),
    }
}

fn one_error(spec: &BatonConnectorSpec) -> String {
    let (errors, _) = check(spec);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    errors[0].clone()
}

fn okta_token() -> serde_json::Value {
    json!({"domain": {"value": "acme.okta.com"}, "api-token": {"secretKeyRef": {"name": "okta", "key": "token"}}})
}

#[test]
fn a_complete_default_group_is_clean() {
    assert_eq!(check(&spec("okta", okta_token())), (vec![], vec![]));
}

#[test]
fn every_catalogued_connector_validates_clean_with_each_complete_group() {
    let catalog = Catalog::embedded();
    let mut checked = 0;
    for c in catalog.connectors() {
        for group in c.group_choices() {
            let config = example::config(c, group, "creds").unwrap();
            let spec = BatonConnectorSpec { config, ..spec(&c.name, json!({})) };
            let (errors, _) = check(&spec);
            assert!(errors.is_empty(), "{} {group:?}: {errors:#?}", c.name);
            checked += 1;
        }
    }
    assert!(checked > 111, "{checked}");
}

#[test]
fn missing_required_field_names_field_and_variable() {
    let e = one_error(&spec("argo-cd", json!({"api-url": {"value": "https://argo"}})));
    assert!(e.contains("password (BATON_PASSWORD)") && e.contains("username (BATON_USERNAME)"), "{e}");
}

#[test]
fn groups_one_complete_is_enough_but_the_sdk_must_be_told_which() {
    let private_key = json!({
        "domain": {"value": "acme.okta.com"},
        "okta-client-id": {"value": "0oa1"},
        "okta-private-key-id": {"value": "kid"},
        "okta-private-key": {"secretKeyRef": {"name": "okta", "key": "pem"}},
    });
    let e = one_error(&spec("okta", private_key.clone()));
    assert!(
        e.contains("\"private-key-group\"") && e.contains("auth-method") && e.contains("\"api-token-group\""),
        "{e}"
    );
    let mut selected = private_key;
    selected["auth-method"] = json!({"value": "private-key-group"});
    assert_eq!(check(&spec("okta", selected)).0, Vec::<String>::new());
    let e = one_error(&spec("okta", json!({"domain": {"value": "acme.okta.com"}})));
    assert!(e.contains("api-token (BATON_API_TOKEN)") && e.contains("private-key-group"), "{e}");
    let e = one_error(&spec("okta", json!({"auth-method": {"value": "oauth"}, "domain": {"value": "x"}})));
    assert!(e.contains("names no field group") && e.contains("api-token-group, private-key-group"), "{e}");
}

#[test]
fn wrong_types_are_refused_with_a_hint() {
    let mut config = okta_token();
    config["http-timeout-seconds"] = json!({"value": "300"});
    config["sync-secrets"] = json!({"value": "yes"});
    config["filter-email-domains"] = json!({"value": "a.com"});
    let (errors, _) = check(&spec("okta", config));
    assert_eq!(errors.len(), 3, "{errors:#?}");
    assert!(errors.iter().any(|e| e.contains("BATON_HTTP_TIMEOUT_SECONDS") && e.contains("without quotes")));
    assert!(errors.iter().any(|e| e.contains("BATON_FILTER_EMAIL_DOMAINS") && e.contains("YAML list")));
}

#[test]
fn unknown_fields_suggest_the_near_miss_and_only_warn_for_a_pinned_image() {
    let mut config = okta_token();
    config["domian"] = json!({"value": "x"});
    let e = one_error(&spec("okta", config.clone()));
    assert!(e.contains("no field \"domian\"") && e.contains("did you mean \"domain\" (BATON_DOMAIN)"), "{e}");
    let mut pinned = spec("okta", config);
    pinned.image = Some(ImageSpec { tag: Some("v0.5.0".into()), ..Default::default() });
    let (errors, warnings) = check(&pinned);
    assert!(errors.is_empty() && warnings.iter().any(|w| w.contains("domian")), "{errors:?} {warnings:?}");
}

#[test]
fn a_value_for_a_secret_field_is_refused_without_echoing_it() {
    let mut config = okta_token();
    config["api-token"] = json!({"value": "00abcSECRET"});
    let e = one_error(&spec("okta", config));
    assert!(e.contains("secret field") && e.contains("secretKeyRef") && !e.contains("00abcSECRET"), "{e}");
}

#[test]
fn env_names_are_checked_too() {
    let mut s = spec("okta", json!({"api-token": {"secretKeyRef": {"name": "okta", "key": "t"}}}));
    s.env = vec![EnvEntry { name: "BATON_DOMAN".into(), value: "x".into() }];
    let (errors, _) = check(&s);
    assert!(
        errors.iter().any(|e| e.contains("BATON_DOMAN") && e.contains("did you mean BATON_DOMAIN")),
        "{errors:#?}"
    );
    s.env = vec![
        EnvEntry { name: "BATON_DOMAIN".into(), value: "acme".into() },
        EnvEntry { name: "BATON_HTTP_TIMEOUT_SECONDS".into(), value: "5m".into() },
    ];
    let e = one_error(&s);
    assert!(e.contains("BATON_HTTP_TIMEOUT_SECONDS") && e.contains("not an integer"), "{e}");
    s.env.pop();
    s.config.insert("domain".into(), ConfigValue::plain("acme"));
    assert!(one_error(&s).contains("set twice"));
}

#[test]
fn secret_refs_whose_keys_were_not_read_make_missing_fields_a_warning() {
    let mut s = spec("okta", json!({"domain": {"value": "acme.okta.com"}}));
    s.secret_refs = vec![SecretRef { name: "okta-app".into() }];
    let Outcome::Checked(r) = validate(&s, None, Catalog::embedded()) else { panic!() };
    assert!(r.errors.is_empty() && r.warnings.iter().any(|w| w.contains("api-token")), "{r:?}");
    let keys = BTreeSet::from(["BATON_API_TOKEN".to_string()]);
    assert_eq!(validate(&s, Some(&keys), Catalog::embedded()), Outcome::Checked(Default::default()));
}

#[test]
fn constraints_between_fields() {
    let e = one_error(&spec(
        "argo-cd",
        json!({"api-url": {"value": "u"}, "username": {"value": "admin"}, "password": {"value": ""}}),
    ));
    assert!(e.contains("password"), "{e}");
    let base = json!({"token": {"secretKeyRef": {"name": "k", "key": "t"}},
        "as": {"value": "jane"}});
    let (errors, _) = check(&spec("kubernetes", base));
    assert!(errors.iter().any(|e| e.contains("mutually exclusive") && e.contains("BATON_AS")), "{errors:#?}");
    let (errors, _) = check(&spec("freshbooks", json!({"freshbooks-client-id": {"value": "id"}})));
    assert!(errors.iter().any(|e| e.contains("at least one of the fields access-token")), "{errors:#?}");
    assert!(
        errors.iter().any(|e| e.contains("needed together; missing refresh-token (BATON_REFRESH_TOKEN)")),
        "{errors:#?}"
    );
}

#[test]
fn rules_are_checked_and_name_the_allowed_values() {
    let e = one_error(&spec(
        "crowdstrike",
        json!({
        "crowdstrike-client-id": {"value": "id"},
        "crowdstrike-client-secret": {"secretKeyRef": {"name": "c", "key": "s"}},
        "region": {"value": "mars-1"}}),
    ));
    assert!(
        e.contains("BATON_REGION") && e.contains("us-1 us-2 eu-1 us-gov-1") && e.contains("mars-1"),
        "{e}"
    );
    let mut config = okta_token();
    config["http-timeout-seconds"] = json!({"value": 0});
    assert!(check(&spec("okta", config.clone())).0.is_empty(), "zero skips the rules, as in the SDK");
    config["http-timeout-seconds"] = json!({"value": 3600});
    assert!(one_error(&spec("okta", config)).contains("less than or equal to 1800"));
}

#[test]
fn health_check_on_an_old_sdk() {
    let catalog = Catalog::embedded();
    let old = |certain: bool| {
        catalog
            .connectors()
            .find(|c| c.sdk_version_certain == certain && c.sdk().is_some_and(|v| v < (0, 7, 6)))
            .unwrap()
    };
    for (connector, refused) in [(old(true), true), (old(false), false)] {
        let config = example::config(connector, None, "s").unwrap();
        let mut s = BatonConnectorSpec { config, ..spec(&connector.name, json!({})) };
        s.health_check = Some(HealthCheckSpec { enabled: true, port: None });
        let (errors, warnings) = check(&s);
        if refused {
            assert!(errors.len() == 1 && errors[0].contains("v0.7.6"), "{}: {errors:?}", connector.name);
        } else {
            assert!(
                errors.is_empty() && warnings.iter().any(|w| w.contains("unknown")),
                "{}: {warnings:?}",
                connector.name
            );
        }
    }
}

#[test]
fn custom_connectors_are_not_validated_and_say_so() {
    let outcome = validate(&spec("my-own", json!({"x": {"value": 1}})), None, Catalog::embedded());
    assert_eq!(outcome.errors(), &[] as &[String]);
    assert!(outcome.warnings()[0].contains("not in the catalog, so its settings are not validated"));
}

#[test]
fn sdk_flags_outside_the_schema_are_allowed() {
    let mut config = okta_token();
    config["log-format"] = json!({"value": "json"});
    config["otel-collector-endpoint"] = json!({"value": "otel:4317"});
    assert_eq!(check(&spec("okta", config)), (vec![], vec![]));
}
