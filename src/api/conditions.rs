//! Condition types, reasons and the merge rule that keeps `lastTransitionTime` stable.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use super::Reason;

pub const READY: &str = "Ready";
pub const RECONCILING: &str = "Reconciling";
pub const STALLED: &str = "Stalled";
pub const WORKLOAD_AVAILABLE: &str = "WorkloadAvailable";
pub const CREDENTIALS_READY: &str = "CredentialsReady";
pub const SUSPENDED: &str = "Suspended";
pub const SYNCED: &str = "Synced";
pub const CONFIG_VALID: &str = "ConfigValid";

/// The order conditions are written in, so a status never differs by ordering alone.
pub const ORDER: &[&str] =
    &[READY, RECONCILING, STALLED, WORKLOAD_AVAILABLE, CREDENTIALS_READY, CONFIG_VALID, SYNCED, SUSPENDED];

/// A condition's status. `Unknown` is for what the operator cannot judge (a connector that is not in
/// the catalog has no schema to check against), as `metav1.Condition` allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    True,
    False,
    Unknown,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::True => "True",
            Self::False => "False",
            Self::Unknown => "Unknown",
        }
    }

    pub fn is_true(self) -> bool {
        self == Self::True
    }
}

impl From<bool> for Status {
    fn from(status: bool) -> Self {
        if status { Self::True } else { Self::False }
    }
}

/// A condition as computed, before the transition time is decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Desired {
    pub type_: &'static str,
    pub status: Status,
    pub reason: Reason,
    pub message: String,
}

impl Desired {
    pub fn new(
        type_: &'static str,
        status: impl Into<Status>,
        reason: Reason,
        message: impl Into<String>,
    ) -> Self {
        Self { type_, status: status.into(), reason, message: message.into() }
    }
}

/// Turns desired conditions into `metav1.Condition`s. A condition keeps its previous
/// `lastTransitionTime` unless its status flips; a new or flipped one gets `now`.
pub fn merge(
    previous: &[Condition],
    desired: Vec<Desired>,
    generation: Option<i64>,
    now: &Time,
) -> Vec<Condition> {
    let mut out: Vec<Condition> = desired
        .into_iter()
        .map(|d| {
            let status = d.status.as_str().to_string();
            let last_transition_time = previous
                .iter()
                .find(|p| p.type_ == d.type_ && p.status == status)
                .map(|p| p.last_transition_time.clone())
                .unwrap_or_else(|| now.clone());
            Condition {
                type_: d.type_.to_string(),
                status,
                reason: d.reason.as_str().to_string(),
                message: d.message,
                observed_generation: generation,
                last_transition_time,
            }
        })
        .collect();
    out.sort_by_key(|c| ORDER.iter().position(|t| *t == c.type_).unwrap_or(ORDER.len()));
    out
}

/// Looks a condition up by type.
pub fn find<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// Whether a condition of that type is present with status `True`.
pub fn is_true(conditions: &[Condition], type_: &str) -> bool {
    find(conditions, type_).is_some_and(|c| c.status == "True")
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::jiff::Timestamp;

    fn t(secs: i64) -> Time {
        Time(Timestamp::from_second(secs).unwrap())
    }

    #[test]
    fn new_condition_gets_now() {
        let out = merge(&[], vec![Desired::new(READY, true, Reason::Available, "ok")], Some(3), &t(100));
        assert_eq!(out[0].last_transition_time, t(100));
        assert_eq!(out[0].status, "True");
        assert_eq!(out[0].observed_generation, Some(3));
    }

    #[test]
    fn unchanged_status_keeps_transition_time_even_if_reason_changes() {
        let first = merge(&[], vec![Desired::new(READY, false, Reason::Progressing, "a")], Some(1), &t(100));
        let second =
            merge(&first, vec![Desired::new(READY, false, Reason::SecretNotFound, "b")], Some(1), &t(200));
        assert_eq!(second[0].last_transition_time, t(100));
        assert_eq!(second[0].reason, "SecretNotFound");
    }

    #[test]
    fn flipped_status_gets_new_transition_time() {
        let first = merge(&[], vec![Desired::new(READY, false, Reason::Progressing, "")], Some(1), &t(100));
        let second = merge(&first, vec![Desired::new(READY, true, Reason::Available, "")], Some(1), &t(200));
        assert_eq!(second[0].last_transition_time, t(200));
    }

    #[test]
    fn output_order_is_fixed() {
        let out = merge(
            &[],
            vec![
                Desired::new(SUSPENDED, false, Reason::NotSuspended, ""),
                Desired::new(STALLED, false, Reason::NotStalled, ""),
                Desired::new(READY, true, Reason::Available, ""),
            ],
            None,
            &t(1),
        );
        let types: Vec<_> = out.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(types, [READY, STALLED, SUSPENDED]);
    }
}
