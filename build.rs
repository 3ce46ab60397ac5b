//! Embeds the connector catalog (`catalog/connectors/*.json`) in the binary: writes one Rust file
//! that `include_str!`s every connector file, so that adding a connector needs no code change and a
//! build needs no network.

use std::{env, fs, path::PathBuf};

fn main() {
    let dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap()).join("catalog/connectors");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut names: Vec<String> = fs::read_dir(&dir)
        .expect("catalog/connectors exists")
        .map(|e| e.expect("readable catalog entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json") && n != "index.json" && n != "provenance.json")
        .collect();
    names.sort();
    let mut out = String::from(
        "/// Every catalogued connector's file, by file name, sorted.\npub static FILES: &[(&str, &str)] = &[\n",
    );
    for name in &names {
        let path = dir.join(name);
        println!("cargo:rerun-if-changed={}", path.display());
        out.push_str(&format!("    ({name:?}, include_str!({:?})),\n", path.display().to_string()));
    }
    out.push_str("];\n");
    let provenance = dir.join("provenance.json");
    println!("cargo:rerun-if-changed={}", provenance.display());
    out.push_str(&format!(
        "/// provenance.json: which commit each connector's files come from.\npub static PROVENANCE: &str = include_str!({:?});\n",
        provenance.display().to_string()
    ));
    let target = PathBuf::from(env::var("OUT_DIR").unwrap()).join("catalog_files.rs");
    fs::write(target, out).expect("OUT_DIR is writable");
}
