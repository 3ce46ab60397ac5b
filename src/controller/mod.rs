//! The controller, by concern. [`reconcile`] is the path of one reconcile (observe, decide, act, write
//! status); [`c1`] the work against ConductorOne (credentials, rotation and onboarding steps, the
//! sync-status poller); [`store`] what the watches deliver, kept compact; [`runtime`] the watches,
//! the main loop, the event recorder, backoff and leader election. The pure decisions they carry out
//! are in [`crate::decide`]. See `docs/architecture.md`.
//!
//! Modules here import from each other's own files, never through the re-exports below: those are
//! for the binary and the tests.

pub mod c1;
pub mod context;
pub mod reconcile;
pub mod runtime;
pub mod store;
pub mod tenants;

pub use context::{Config, Context, FIELD_MANAGER};
pub use reconcile::reconcile;
pub use runtime::{reconciler::reconcile_stored, runner::run};
pub use store::stored::Stored;
