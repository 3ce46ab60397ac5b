//! The decisions, as pure functions of what was observed: the next ConductorOne step of a rotation
//! or of onboarding, what a sync status means, the status and its conditions, the connector settings' check, the events, the
//! outcome of a pass. No I/O and no clock: the controller passes the time in. The desired children
//! are built by [`crate::resources`].

pub mod adoption;
pub mod config;
pub mod credentials;
pub mod events;
pub mod messages;
pub mod onboarding;
pub mod outcome;
pub mod pods;
pub mod redact;
pub mod rotation;
pub mod runs;
pub mod status;
#[cfg(test)]
mod status_tests;
pub mod sync_status;
pub mod tenant;
pub mod tenant_status;
