//! Runtime plumbing: the main loop and the watches that feed the caches and trigger reconciles, what
//! kube's `Controller` calls, the event recorder, per-resource backoff and the health of the watches.

pub mod backoff;
pub mod lean;
pub mod reconciler;
pub mod recorder;
pub mod runner;
pub mod watch_health;
pub mod watches;
