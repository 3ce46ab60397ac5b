//! A `ValidatingAdmissionPolicy` generated from the catalog, so that `kubectl apply` refuses the
//! definite errors in a catalogued connector's settings before the resource is stored. It checks a
//! subset of what [`super::validate`] checks, and only where the answer cannot depend on what the
//! API server cannot see (the contents of Secrets, an image pinned to another version): whatever it
//! refuses, the operator would refuse too. The operator's own check stays for clusters without the
//! policy, and for everything the policy leaves out (constraints, rules, "did you mean").

use std::collections::BTreeSet;

use serde_json::{Value, json};

use super::{Catalog, Connector, FieldType, validate::SDK_FIELDS};

pub const POLICY_NAME: &str = "batonconnectors.baton.conductorone.com";

/// The policy and its binding, as one YAML stream (what `baton-operator admission-policy` prints and
/// `config/admission/` and the chart carry).
pub fn manifests(catalog: &Catalog) -> String {
    let docs = [policy(catalog), binding()];
    docs.iter()
        .map(|d| serde_yaml::to_string(d).expect("JSON values serialize"))
        .collect::<Vec<_>>()
        .join("---\n")
}

/// The binding: deny, cluster-wide.
fn binding() -> Value {
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": POLICY_NAME},
        "spec": {"policyName": POLICY_NAME, "validationActions": ["Deny"]},
    })
}

/// A string as a CEL string literal.
fn lit(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

fn list(items: impl IntoIterator<Item = String>) -> String {
    format!("[{}]", items.into_iter().map(|s| lit(&s)).collect::<Vec<_>>().join(", "))
}

/// `{'okta': [...], ...}` for the connectors where `entries` gives a non-empty list (every
/// connector with `keep_empty`).
fn by_connector(catalog: &Catalog, keep_empty: bool, entries: impl Fn(&Connector) -> Vec<String>) -> String {
    let pairs: Vec<String> = catalog
        .connectors()
        .filter_map(|c| {
            let e = entries(c);
            (keep_empty || !e.is_empty()).then(|| format!("{}: {}", lit(&c.name), list(e)))
        })
        .collect();
    format!("{{{}}}", pairs.join(", "))
}

fn fields_of(c: &Connector, kind: FieldType) -> Vec<String> {
    c.own_fields().filter(|f| f.kind == kind).map(|f| f.name.clone()).collect()
}

/// The settings a field group (or, without groups, the connector) needs, leaving out what the SDK
/// would count as present anyway (a non-zero default), as in `validate/groups.rs`.
fn required_sets(c: &Connector) -> Vec<Vec<String>> {
    let needed = |name: &str, cobra: bool| {
        c.field(name).is_some_and(|f| {
            let defaulted = f.default.as_ref().is_some_and(|d| !d.is_zero());
            !f.ops && f.is_required() && (!defaulted || (cobra && f.required))
        })
    };
    if c.groups.is_empty() {
        let all: Vec<String> =
            c.fields.iter().filter(|f| needed(&f.name, true)).map(|f| f.name.clone()).collect();
        return if all.is_empty() { Vec::new() } else { vec![all] };
    }
    c.groups.iter().map(|g| g.fields.iter().filter(|f| needed(f, false)).cloned().collect()).collect()
}

/// What the message says a connector needs: each group's fields with their variables.
fn needs(c: &Connector) -> String {
    let named = |fields: &[String]| {
        fields.iter().map(|f| format!("{f} ({})", super::env_name(f))).collect::<Vec<_>>().join(", ")
    };
    let sets = required_sets(c);
    if c.groups.is_empty() {
        return format!("missing required settings of baton-{}: {}", c.name, named(&sets[0]));
    }
    let groups: Vec<String> =
        c.groups.iter().zip(&sets).map(|(g, s)| format!("group {:?} needs {}", g.name, named(s))).collect();
    format!(
        "missing required settings of baton-{}: one complete field group is enough: {}",
        c.name,
        groups.join("; ")
    )
}

/// Whether some settings are always needed: every way to configure the connector requires one.
fn requires_any(c: &Connector) -> bool {
    let sets = required_sets(c);
    !sets.is_empty() && sets.iter().all(|s| !s.is_empty())
}

/// A CEL map of connector → the required sets (`[[...], [...]]`), for connectors that have any.
fn required_map(catalog: &Catalog) -> String {
    let pairs: Vec<String> = catalog
        .connectors()
        .filter(|c| requires_any(c))
        .map(|c| {
            let sets: Vec<String> = required_sets(c).into_iter().map(list).collect();
            format!("{}: [{}]", lit(&c.name), sets.join(", "))
        })
        .collect();
    format!("{{{}}}", pairs.join(", "))
}

fn needs_map(catalog: &Catalog) -> String {
    let pairs: Vec<String> = catalog
        .connectors()
        .filter(|c| requires_any(c))
        .map(|c| format!("{}: {}", lit(&c.name), lit(&needs(c))))
        .collect();
    format!("{{{}}}", pairs.join(", "))
}

fn variable(name: &str, expression: String) -> Value {
    json!({"name": name, "expression": expression})
}

fn policy(catalog: &Catalog) -> Value {
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": POLICY_NAME},
        "spec": {
            // The operator checks again; a policy that cannot evaluate must not stop every apply.
            "failurePolicy": "Ignore",
            "matchConstraints": {"resourceRules": [{
                "apiGroups": ["baton.conductorone.com"],
                "apiVersions": ["*"],
                "operations": ["CREATE", "UPDATE"],
                "resources": ["batonconnectors"],
            }]},
            // Only a new or changed spec: an object stored before the policy (or before a catalog
            // update) can still get its finalizer removed and its metadata edited.
            "matchConditions": [{
                "name": "spec-changed",
                "expression": "request.operation == 'CREATE' || object.spec != oldObject.spec",
            }],
            "variables": variables(catalog),
            "validations": validations(),
        },
    })
}

/// What the validations read: the catalog's data as CEL maps by connector, and what the object sets.
fn variables(catalog: &Catalog) -> Vec<Value> {
    // The SDK's own fields, and every ops field some catalogued schema lists: allowed everywhere.
    let common: BTreeSet<String> = SDK_FIELDS
        .iter()
        .map(|s| s.to_string())
        .chain(catalog.connectors().flat_map(|c| c.fields.iter().filter(|f| f.ops).map(|f| f.name.clone())))
        .collect();
    let env_of = "'BATON_' + f.upperAscii().replace('-', '_')";
    vec![
        variable("connector", "object.spec.connector".into()),
        variable("fields", by_connector(catalog, true, |c| c.own_fields().map(|f| f.name.clone()).collect())),
        variable("catalogued", "variables.connector in variables.fields".into()),
        variable("common", list(common)),
        variable(
            "own",
            "variables.catalogued ? variables.fields[variables.connector] + variables.common : []".into(),
        ),
        // An image pinned to a tag or digest may have fields the catalogued schema lacks.
        variable(
            "pinned",
            "has(object.spec.image) && (has(object.spec.image.digest) || (has(object.spec.image.tag) && object.spec.image.tag != 'latest'))".into(),
        ),
        variable("config", "has(object.spec.config) ? object.spec.config : {}".into()),
        variable("env", "has(object.spec.env) ? object.spec.env : []".into()),
        variable(
            "unknownConfig",
            "variables.config.filter(k, !(k in variables.own))".into(),
        ),
        variable(
            "unknownEnv",
            format!(
                "variables.env.filter(e, e.name.startsWith('BATON_') && !variables.own.exists(f, {env_of} == e.name)).map(e, e.name)"
            ),
        ),
        variable("secret", by_connector(catalog, false, |c| c.own_fields().filter(|f| f.secret).map(|f| f.name.clone()).collect())),
        variable(
            "inlineSecrets",
            "variables.connector in variables.secret ? variables.config.filter(k, k in variables.secret[variables.connector] && has(variables.config[k].value)) : []".into(),
        ),
        variable("bools", by_connector(catalog, false, |c| fields_of(c, FieldType::Bool))),
        variable("ints", by_connector(catalog, false, |c| fields_of(c, FieldType::Int))),
        variable("strings", by_connector(catalog, false, |c| fields_of(c, FieldType::String))),
        variable("lists", by_connector(catalog, false, |c| fields_of(c, FieldType::StringSlice))),
        variable(
            "wrongTypes",
            [
                ("bools", "type(variables.config[k].value) != bool"),
                ("ints", "type(variables.config[k].value) != int"),
                ("strings", "type(variables.config[k].value) != string"),
                ("lists", "(type(variables.config[k].value) != list || !variables.config[k].value.all(i, type(i) == string))"),
            ]
            .iter()
            .map(|(map, wrong)| format!(
                "(variables.connector in variables.{map} ? variables.config.filter(k, k in variables.{map}[variables.connector] && has(variables.config[k].value) && {wrong}) : [])"
            ))
            .collect::<Vec<_>>()
            .join(" + "),
        ),
        variable("required", required_map(catalog)),
        variable("needs", needs_map(catalog)),
        // Secrets and auth-method can supply or select what cannot be seen here: then the operator decides.
        variable(
            "unseen",
            "(has(object.spec.secretRefs) && size(object.spec.secretRefs) > 0) || 'auth-method' in variables.config || variables.env.exists(e, e.name == 'BATON_AUTH_METHOD')".into(),
        ),
        variable(
            "complete",
            format!(
                "!(variables.connector in variables.required) || variables.required[variables.connector].exists(set, set.all(f, (f in variables.config && (has(variables.config[f].secretKeyRef) || (has(variables.config[f].value) && (type(variables.config[f].value) != string || variables.config[f].value != '')))) || variables.env.exists(e, e.name == {env_of} && has(e.value) && e.value != '')))"
            ),
        ),
    ]
}

/// Each definite error, refused with a message that names the fields.
fn validations() -> Vec<Value> {
    vec![
        json!({
            "expression": "!variables.catalogued || variables.pinned || size(variables.unknownConfig) == 0",
            "messageExpression": "'spec.config: baton-' + variables.connector + ' has no field ' + variables.unknownConfig.join(', ') + ' (kubectl baton fields ' + variables.connector + ' lists them)'",
            "reason": "Invalid",
        }),
        json!({
            "expression": "!variables.catalogued || variables.pinned || size(variables.unknownEnv) == 0",
            "messageExpression": "'spec.env: baton-' + variables.connector + ' has no field read from ' + variables.unknownEnv.join(', ') + ' (kubectl baton fields ' + variables.connector + ' lists them)'",
            "reason": "Invalid",
        }),
        json!({
            "expression": "size(variables.inlineSecrets) == 0",
            "messageExpression": "'spec.config: ' + variables.inlineSecrets.join(', ') + ' is a secret field of baton-' + variables.connector + '; a value here would be stored in the manifest (and in Git): use secretKeyRef to a key of a Secret'",
            "reason": "Invalid",
        }),
        json!({
            "expression": "size(variables.wrongTypes) == 0",
            "messageExpression": "'spec.config: ' + variables.wrongTypes.join(', ') + ': the value is not of the type baton-' + variables.connector + ' declares (kubectl baton fields ' + variables.connector + ' shows the types)'",
            "reason": "Invalid",
        }),
        json!({
            "expression": "variables.unseen || variables.complete",
            "messageExpression": "variables.needs[variables.connector]",
            "reason": "Invalid",
        }),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn okta_needs_one_of_its_groups_and_names_every_variable() {
        let okta = Catalog::embedded().get("okta").unwrap();
        let sets = required_sets(okta);
        assert_eq!(sets.len(), 2);
        assert!(sets[0].contains(&"api-token".to_string()) && sets[0].contains(&"domain".to_string()));
        let message = needs(okta);
        for part in ["api-token-group", "private-key-group", "BATON_API_TOKEN", "BATON_OKTA_PRIVATE_KEY_ID"] {
            assert!(message.contains(part), "{part} not in {message}");
        }
    }

    #[test]
    fn literals_are_quoted_for_cel() {
        assert_eq!(lit("it's"), r"'it\'s'");
        assert_eq!(list(["a".to_string(), "b".to_string()]), "['a', 'b']");
    }

    #[test]
    fn the_policy_covers_every_catalogued_connector() {
        let policy = policy(Catalog::embedded());
        let fields = policy["spec"]["variables"].as_array().unwrap().iter().find(|v| v["name"] == "fields");
        let text = fields.unwrap()["expression"].as_str().unwrap();
        for c in Catalog::embedded().connectors() {
            assert!(text.contains(&format!("'{}': [", c.name)), "{} is not in the policy", c.name);
        }
    }
}
