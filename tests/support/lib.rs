//! Test support shared by the integration tests, the end-to-end suite and the fleet benchmark.

pub mod cluster;
pub mod control_plane;
pub mod doc_blocks;
pub mod fake_conductorone;
pub mod fake_kube;
pub mod harness;
pub mod kstatus;
pub mod kubelet;
pub mod world;

/// The repository's root: this library lives in `tests/support`.
pub fn repository() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}
