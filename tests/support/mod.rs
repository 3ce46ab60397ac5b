//! Test support shared by the integration test binaries. Each binary uses only part of it.
#![allow(dead_code, unused_imports)]

pub mod cluster;
pub mod control_plane;
pub mod fake_conductorone;
pub mod fake_kube;
pub mod harness;
pub mod kstatus;
pub mod kubelet;
pub mod world;
