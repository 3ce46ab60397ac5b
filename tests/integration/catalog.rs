//! The project's copy of the connector catalog is the shared one, file for file and byte for byte,
//! wherever the shared folder exists (`../shared/connectors/catalog/` from the repository root).

use std::{collections::BTreeMap, fs, path::Path};

fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .map(|e| (e.file_name().to_string_lossy().into_owned(), fs::read(e.path()).unwrap()))
        .collect()
}

#[test]
fn catalog_matches_the_shared_copy() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let shared = root.join("../shared/connectors/catalog");
    if !shared.is_dir() {
        println!("skipped: {} does not exist here, nothing to compare with", shared.display());
        return;
    }
    let ours = files(&root.join("catalog/connectors"));
    let theirs = files(&shared);
    let only_ours: Vec<_> = ours.keys().filter(|k| !theirs.contains_key(*k)).collect();
    let only_theirs: Vec<_> = theirs.keys().filter(|k| !ours.contains_key(*k)).collect();
    let differ: Vec<_> =
        ours.iter().filter(|(k, v)| theirs.get(*k).is_some_and(|t| t != *v)).map(|(k, _)| k).collect();
    assert!(
        only_ours.is_empty() && only_theirs.is_empty() && differ.is_empty(),
        "catalog/connectors differs from {}: only here {only_ours:?}, only there {only_theirs:?}, different {differ:?}; \
         copy it again (catalog/README.md)",
        shared.display()
    );
    assert!(ours.len() > 100, "{} files", ours.len());
}

/// The admission policy in `config/admission/` and the chart is the one this catalog generates.
#[test]
fn committed_admission_policy_matches_the_catalog() {
    let generated =
        baton_operator::catalog::admission::manifests(baton_operator::catalog::Catalog::embedded());
    for file in
        ["config/admission/admission-policy.yaml", "charts/baton-operator/files/admission-policy.yaml"]
    {
        let committed = std::fs::read_to_string(format!("{}/{file}", env!("CARGO_MANIFEST_DIR"))).unwrap();
        assert!(
            committed == generated,
            "{file} is stale: run `cargo run -- admission-policy > {file}` (after a catalog refresh)"
        );
    }
}

/// Every example sets its connector's settings through `spec.config`, by the field names of the
/// connector's catalogued schema, with secret fields as references to keys of the example's own
/// Secrets, and passes the operator's check without an error or a warning.
#[test]
fn examples_take_their_settings_from_the_catalog() {
    use baton_operator::{api::BatonConnector, catalog::Catalog, catalog::validate};
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut checked = 0;
    for (file, text) in files(&root.join("examples")) {
        let text = String::from_utf8(text).unwrap();
        let mut secrets: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut connectors = Vec::new();
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let value: serde_json::Value = serde::Deserialize::deserialize(doc).unwrap();
            match value["kind"].as_str() {
                Some("Secret") => {
                    let keys = value["stringData"].as_object().unwrap().keys().cloned().collect();
                    secrets.insert(value["metadata"]["name"].as_str().unwrap().to_string(), keys);
                }
                Some("BatonConnector") => {
                    connectors.push(serde_json::from_value::<BatonConnector>(value).unwrap())
                }
                _ => {}
            }
        }
        for bc in connectors {
            let spec = &bc.spec;
            assert!(
                Catalog::embedded().get(&spec.connector).is_some(),
                "{file}: {} is not catalogued",
                spec.connector
            );
            assert!(spec.secret_refs.is_empty(), "{file}: settings through secretRefs, not spec.config");
            let env: Vec<_> = spec.env.iter().filter(|e| e.name.starts_with("BATON_")).collect();
            assert!(env.is_empty(), "{file}: settings through env, not spec.config: {env:?}");
            assert!(!spec.config.is_empty(), "{file}: no spec.config");
            for (field, entry) in &spec.config {
                if let Some(r) = &entry.secret_key_ref {
                    let keys = secrets.get(&r.name).unwrap_or_else(|| panic!("{file}: no Secret {}", r.name));
                    assert!(
                        keys.contains(&r.key),
                        "{file}: Secret {} has no key {} for {field}",
                        r.name,
                        r.key
                    );
                }
            }
            match validate::validate(spec, Some(&Default::default()), Catalog::embedded()) {
                validate::Outcome::Checked(report) => {
                    assert_eq!(report, validate::Report::default(), "{file}: the operator's check")
                }
                other => panic!("{file}: {other:?}"),
            }
            checked += 1;
        }
    }
    assert!(checked >= 7, "only {checked} examples");
}

/// The README's list of connectors is the catalog's.
#[test]
fn the_readme_lists_every_catalogued_connector() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = fs::read_to_string(root.join("README.md")).unwrap();
    let (begin, end) = ("<!-- catalog list: begin -->\n", "<!-- catalog list: end -->");
    let start = readme.find(begin).expect("the README has the catalog list") + begin.len();
    let listed = &readme[start..start + readme[start..].find(end).expect("the list ends")];
    let names: Vec<String> =
        baton_operator::catalog::Catalog::embedded().names().map(|n| format!("`{n}`")).collect();
    let want = format!("{}.\n", names.join(", "));
    assert!(listed == want, "README.md: the catalog list is stale; it should read:\n{want}");
    let count = format!("knows the settings of {} ConductorOne connectors", names.len());
    assert!(readme.contains(&count), "README.md should say it {count}");
}
