//! One version everywhere: the crate's version is the image tag that `config/` installs, the chart's
//! `appVersion` (the image tag the chart installs) and the chart's own `version`. The chart is
//! released with the operator, never on its own (docs/upgrade.md), so a release tag `vX.Y.Z` names
//! one operator, one image and one chart.

use std::path::{Path, PathBuf};

use serde::Deserialize as _;
use serde_yaml::Value;

const VERSION: &str = env!("CARGO_PKG_VERSION");
const IMAGE: &str = "ghcr.io/conductorone/baton-operator";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn yaml_documents(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml::Deserializer::from_str(&text)
        .map(|doc| Value::deserialize(doc).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .filter(|v| !v.is_null())
        .collect()
}

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            yaml_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(path);
        }
    }
}

/// Every `image` of a container (any object with a `name` and a string `image`), and every
/// kustomize `images:` override, as `(where, reference)`.
fn images(value: &Value, at: &str, out: &mut Vec<(String, String)>) {
    match value {
        Value::Mapping(map) => {
            if let (Some(Value::String(image)), Some(Value::String(name))) =
                (map.get("image"), map.get("name"))
            {
                out.push((format!("{at} container {name}"), image.clone()));
            }
            if let Some(Value::Sequence(overrides)) = map.get("images") {
                for o in overrides {
                    let name = o.get("newName").or(o.get("name")).and_then(Value::as_str).unwrap_or("?");
                    let tag = o.get("newTag").and_then(Value::as_str).unwrap_or("<no newTag>");
                    out.push((format!("{at} kustomize images"), format!("{name}:{tag}")));
                }
            }
            map.values().for_each(|v| images(v, at, out));
        }
        Value::Sequence(list) => list.iter().for_each(|v| images(v, at, out)),
        _ => {}
    }
}

#[test]
fn config_installs_the_image_of_this_version() {
    let mut files = Vec::new();
    yaml_files(&root().join("config"), &mut files);
    let mut found = Vec::new();
    for file in &files {
        let shown = file.strip_prefix(root()).unwrap().display().to_string();
        for doc in yaml_documents(file) {
            images(&doc, &shown, &mut found);
        }
    }
    assert!(!found.is_empty(), "no container image found under config/");
    let expected = format!("{IMAGE}:{VERSION}");
    let wrong: Vec<_> = found.iter().filter(|(_, image)| *image != expected).collect();
    assert!(wrong.is_empty(), "images under config/ other than {expected} (Cargo.toml's version): {wrong:?}");
}

#[test]
fn chart_versions_follow_the_crate() {
    let chart = &yaml_documents(&root().join("charts/baton-operator/Chart.yaml"))[0];
    assert_eq!(chart["appVersion"].as_str(), Some(VERSION), "Chart.yaml appVersion != Cargo.toml version");
    assert_eq!(chart["version"].as_str(), Some(VERSION), "Chart.yaml version != Cargo.toml version");
}

#[test]
fn chart_defaults_to_the_published_image_at_app_version() {
    let values = &yaml_documents(&root().join("charts/baton-operator/values.yaml"))[0];
    assert_eq!(values["image"]["repository"].as_str(), Some(IMAGE));
    // An empty tag means appVersion (templates/_helpers.tpl); a fixed one would go stale.
    assert_eq!(
        values["image"]["tag"].as_str(),
        Some(""),
        "values.yaml pins image.tag; leave it to appVersion"
    );
    assert_eq!(values["image"]["digest"].as_str(), Some(""));
}

/// The release workflow publishes under the name the installs use, and refuses a tag that is not
/// the crate's version.
#[test]
fn release_workflow_publishes_what_the_installs_use() {
    let path = root().join(".github/workflows/release.yml");
    let workflow = &yaml_documents(&path)[0];
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(workflow["on"]["push"]["tags"][0].as_str(), Some("v*"));
    assert!(text.contains(IMAGE), "release.yml does not push {IMAGE}");
    assert!(text.contains("Cargo.toml"), "release.yml does not compare the tag with Cargo.toml's version");
    assert!(text.contains("linux/amd64,linux/arm64"), "release.yml does not build both platforms");
}

/// The krew manifest names this version's release archives, one per platform the release workflow
/// builds, each with a checksum placeholder that workflow replaces.
#[test]
fn krew_manifest_follows_the_crate_and_the_release_archives() {
    let path = root().join("deploy/krew/baton.yaml");
    let manifest = &yaml_documents(&path)[0];
    let spec = &manifest["spec"];
    assert_eq!(manifest["metadata"]["name"].as_str(), Some("baton"), "kubectl baton needs the name baton");
    assert_eq!(spec["version"].as_str(), Some(format!("v{VERSION}").as_str()));
    let workflow = std::fs::read_to_string(root().join(".github/workflows/release.yml")).unwrap();
    let platforms = spec["platforms"].as_sequence().expect("platforms");
    assert_eq!(platforms.len(), 4);
    for p in platforms {
        let (os, arch) = (
            p["selector"]["matchLabels"]["os"].as_str().unwrap(),
            p["selector"]["matchLabels"]["arch"].as_str().unwrap(),
        );
        let archive = format!("kubectl-baton_v{VERSION}_{os}_{arch}.tar.gz");
        let uri =
            format!("https://github.com/conductorone/baton-operator/releases/download/v{VERSION}/{archive}");
        assert_eq!(p["uri"].as_str(), Some(uri.as_str()), "{os}/{arch}");
        let placeholder = format!("PLACEHOLDER_SHA256_{}_{}", os.to_uppercase(), arch.to_uppercase());
        assert_eq!(p["sha256"].as_str(), Some(placeholder.as_str()), "{os}/{arch}");
        assert_eq!(p["bin"].as_str(), Some("kubectl-baton"));
        assert!(
            workflow.contains(&format!("os: {os}, arch: {arch}")),
            "release.yml does not build {os}/{arch}"
        );
    }
}
