//! The controller's work against ConductorOne. Each step is one call, with its intent journaled in
//! status before it is made (see [`crate::controller::reconcile::pass::Pass`]); the decisions of
//! which step comes next are in [`crate::decide`].

pub mod actions;
pub mod credential_calls;
pub mod onboarding_steps;
pub mod poll_schedule;
pub mod pools;
pub mod rotation_steps;
pub mod sync_poller;
pub mod tenant_calls;
pub mod tenant_metrics;
