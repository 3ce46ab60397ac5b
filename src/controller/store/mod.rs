//! What the watches deliver, kept compact for fleets of thousands: BatonConnectors as packed JSON,
//! the caches of children and Secrets, the index of which resource reads which Secret, and the ConductorOne tenants.

pub mod cache;
pub mod index;
pub mod packed;
pub mod stored;
pub mod tenants;

/// A namespaced object's (namespace, name): how the caches, the index and the poller key objects.
pub type Key = (String, String);
