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
