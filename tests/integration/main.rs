//! The integration tests, one binary: the controller against a faked Kubernetes and ConductorOne,
//! the ConductorOne client against the fake, and the repository's own checks (CRDs, chart, docs,
//! layout). `cargo test --test integration -- managed::` runs one module. The end-to-end suite on a
//! real control plane is `tests/e2e/`.

mod architecture;
mod argocd_lua;
mod argocd_tenants;
mod catalog;
mod chart;
mod cli;
mod conductorone_client;
mod conductorone_resilience;
mod conductorone_secrets;
mod controller;
mod crd;
mod dashboard;
mod docs;
mod kubelet;
mod managed;
mod onboarding;
mod pods;
mod release;
mod render_unchanged;
mod tenant_crd;
mod tenant_status;
mod tenants;
