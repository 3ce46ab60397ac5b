//! The fleet summary of `kubectl baton status`: a pure function of the listed resources and the
//! time, so every rule is unit-tested without a cluster.

use std::{collections::BTreeMap, time::Duration};

use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use serde::Serialize;

use crate::api::{BatonConnector, conditions};

/// How far ahead `status` looks for rotations.
pub const ROTATION_HORIZON: Duration = Duration::from_secs(7 * 24 * 3600);

/// The operator's own default for `spec.conductorOne.syncFreshness`, used when the value does not
/// parse (the CRD pattern makes that rare), so the plugin and the operator agree.
const DEFAULT_FRESHNESS: Duration = Duration::from_secs(24 * 3600);

#[derive(Serialize, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub total: usize,
    /// Counts by the `Ready` condition's status: `True`, `False`, or `Unknown` when the operator has
    /// not reported yet.
    pub by_ready: BTreeMap<String, usize>,
    /// Counts by the `Ready` condition's reason (`Unobserved` before the first report).
    pub by_reason: BTreeMap<String, usize>,
    pub suspended: usize,
    pub stale_syncs: Vec<StaleSync>,
    pub rotations_due: Vec<RotationDue>,
    pub possibly_orphaned: Vec<Orphaned>,
    pub unhealthy: Vec<Unhealthy>,
    /// The tenants in scope (the namespace's, or all with `-A`, and the cluster tenants), set by
    /// `status` after listing them.
    pub tenants: Vec<super::tenants::TenantLine>,
    /// Tenant lists the caller may not read, or that failed: the tenants are then left out.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tenant_notes: Vec<String>,
}

#[derive(Serialize, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct StaleSync {
    pub namespace: String,
    pub name: String,
    /// `None` when ConductorOne has never reported a completed sync.
    pub last_completed_at: Option<String>,
    pub freshness: String,
}

#[derive(Serialize, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RotationDue {
    pub namespace: String,
    pub name: String,
    pub next_rotation_at: String,
}

#[derive(Serialize, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Orphaned {
    pub namespace: String,
    pub name: String,
    /// Credentials minted but unused, waiting for the operator to revoke them.
    pub pending_revocations: usize,
    /// Issue attempts of the rotation under way that ended without a stored reply.
    pub unrecorded_attempts: i32,
}

#[derive(Serialize, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Unhealthy {
    pub namespace: String,
    pub name: String,
    pub reason: String,
    pub message: String,
}

/// A connector is unhealthy when it is not Ready and not suspended on purpose: a suspended one is
/// counted separately, since nobody needs to act on it.
pub fn summarize(fleet: &[BatonConnector], now: Timestamp) -> Summary {
    let mut s = Summary { total: fleet.len(), ..Default::default() };
    for bc in fleet {
        let (namespace, name) = (bc.namespace().unwrap_or_default(), bc.name_any());
        let status = bc.status.as_ref();
        let ready = status.and_then(|s| conditions::find(&s.conditions, conditions::READY));
        let ready_status = ready.map_or("Unknown", |c| c.status.as_str());
        let reason = ready.map_or(crate::api::Reason::Unobserved.as_str(), |c| c.reason.as_str());
        *s.by_ready.entry(ready_status.to_string()).or_default() += 1;
        *s.by_reason.entry(reason.to_string()).or_default() += 1;
        if bc.spec.suspend {
            s.suspended += 1;
        } else if ready_status != "True" {
            s.unhealthy.push(Unhealthy {
                namespace: namespace.clone(),
                name: name.clone(),
                reason: reason.to_string(),
                message: ready.map(|c| c.message.clone()).unwrap_or_default(),
            });
        }
        if let Some(c1) = &bc.spec.conductor_one
            && !bc.spec.suspend
        {
            let freshness = humantime::parse_duration(c1.sync_freshness()).unwrap_or(DEFAULT_FRESHNESS);
            let last = status.and_then(|s| s.sync.as_ref()).and_then(|s| s.last_completed_at.as_ref());
            let stale = match last {
                None => true,
                Some(t) => now.as_second() - t.0.as_second() > freshness.as_secs() as i64,
            };
            if stale {
                s.stale_syncs.push(StaleSync {
                    namespace: namespace.clone(),
                    name: name.clone(),
                    last_completed_at: last.map(|t| t.0.to_string()),
                    freshness: c1.sync_freshness().to_string(),
                });
            }
        }
        let Some(credentials) = status.and_then(|s| s.credentials.as_ref()) else { continue };
        if let Some(next) = &credentials.next_rotation_at
            && next.0.as_second() - now.as_second() < ROTATION_HORIZON.as_secs() as i64
        {
            s.rotations_due.push(RotationDue {
                namespace: namespace.clone(),
                name: name.clone(),
                next_rotation_at: next.0.to_string(),
            });
        }
        let unrecorded = credentials.rotation.as_ref().map_or(0, |r| r.unrecorded_attempts);
        if !credentials.pending_revocations.is_empty() || unrecorded > 0 {
            s.possibly_orphaned.push(Orphaned {
                namespace,
                name,
                pending_revocations: credentials.pending_revocations.len(),
                unrecorded_attempts: unrecorded,
            });
        }
    }
    s.rotations_due.sort_by(|a, b| a.next_rotation_at.cmp(&b.next_rotation_at));
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{
        BatonConnectorStatus, ConductorOneSpec, CredentialsStatus, RotationPhase, RotationStatus, SecretRef,
        SyncStatus,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    const NOW: i64 = 1_800_000_000;
    const HOUR: i64 = 3600;

    fn at(secs: i64) -> Time {
        Time(Timestamp::from_second(secs).unwrap())
    }

    fn bc(name: &str, ready: Option<(bool, &'static str, &str)>) -> BatonConnector {
        let mut bc = crate::resources::testing::connector(name, "okta");
        if let Some((ok, reason, message)) = ready {
            bc.status = Some(BatonConnectorStatus {
                conditions: conditions::merge(
                    &[],
                    vec![conditions::Desired::new(
                        conditions::READY,
                        ok,
                        crate::api::Reason::parse(reason).expect("a known reason"),
                        message,
                    )],
                    Some(1),
                    &at(NOW - HOUR),
                ),
                ..Default::default()
            });
        }
        bc
    }

    fn with_c1(mut bc: BatonConnector, freshness: &str, last_completed: Option<i64>) -> BatonConnector {
        bc.spec.conductor_one = Some(ConductorOneSpec {
            tenant_ref: None,
            api_credentials_secret_ref: Some(SecretRef { name: "api".into() }),
            app_id: Some("app".into()),
            app: None,
            connector_id: Some("conn".into()),
            connector: None,
            sync_freshness: Some(freshness.into()),
            pause_when_suspended: true,
        });
        let status = bc.status.get_or_insert_with(Default::default);
        status.sync = Some(SyncStatus { last_completed_at: last_completed.map(at), ..Default::default() });
        bc
    }

    fn with_credentials(mut bc: BatonConnector, credentials: CredentialsStatus) -> BatonConnector {
        bc.status.get_or_insert_with(Default::default).credentials = Some(credentials);
        bc
    }

    #[test]
    fn counts_by_ready_and_reason_and_lists_the_unhealthy() {
        let fleet = [
            bc("a", Some((true, "Available", ""))),
            bc("b", Some((true, "Available", ""))),
            bc("c", Some((false, "SecretNotFound", "Secret c1 not found"))),
            bc("d", None),
        ];
        let s = summarize(&fleet, Timestamp::from_second(NOW).unwrap());
        assert_eq!(s.total, 4);
        assert_eq!(s.by_ready.get("True"), Some(&2));
        assert_eq!(s.by_ready.get("False"), Some(&1));
        assert_eq!(s.by_ready.get("Unknown"), Some(&1));
        assert_eq!(s.by_reason.get("Available"), Some(&2));
        assert_eq!(s.by_reason.get("SecretNotFound"), Some(&1));
        assert_eq!(s.by_reason.get("Unobserved"), Some(&1));
        let names: Vec<_> = s.unhealthy.iter().map(|u| u.name.as_str()).collect();
        assert_eq!(names, ["c", "d"]);
        assert_eq!(s.unhealthy[0].reason, "SecretNotFound");
        assert_eq!(s.unhealthy[0].message, "Secret c1 not found");
    }

    #[test]
    fn suspended_is_counted_but_not_unhealthy_nor_stale() {
        let mut suspended = with_c1(bc("s", Some((false, "Suspended", "spec.suspend is true"))), "1h", None);
        suspended.spec.suspend = true;
        let s = summarize(&[suspended], Timestamp::from_second(NOW).unwrap());
        assert_eq!(s.suspended, 1);
        assert!(s.unhealthy.is_empty(), "{s:?}");
        assert!(s.stale_syncs.is_empty(), "{s:?}");
        assert_eq!(s.by_reason.get("Suspended"), Some(&1));
    }

    #[test]
    fn a_sync_is_stale_past_its_own_freshness_window_or_when_never_completed() {
        let ok = || Some((true, "Available", ""));
        let fleet = [
            with_c1(bc("fresh", ok()), "24h", Some(NOW - 23 * HOUR)),
            with_c1(bc("stale", ok()), "24h", Some(NOW - 25 * HOUR)),
            with_c1(bc("tight", ok()), "2h", Some(NOW - 3 * HOUR)),
            with_c1(bc("never", ok()), "24h", None),
            // No ConductorOne access: the operator cannot know, so neither can the plugin.
            bc("unknown", ok()),
        ];
        let s = summarize(&fleet, Timestamp::from_second(NOW).unwrap());
        let names: Vec<_> = s.stale_syncs.iter().map(|x| x.name.as_str()).collect();
        assert_eq!(names, ["stale", "tight", "never"]);
        assert_eq!(s.stale_syncs[2].last_completed_at, None);
        assert_eq!(s.stale_syncs[1].freshness, "2h");
    }

    #[test]
    fn rotations_due_within_seven_days_soonest_first_including_overdue() {
        let ok = || Some((true, "Available", ""));
        let due = |h| CredentialsStatus { next_rotation_at: Some(at(NOW + h * HOUR)), ..Default::default() };
        let fleet = [
            with_credentials(bc("later", ok()), due(8 * 24)),
            with_credentials(bc("soon", ok()), due(6 * 24)),
            with_credentials(bc("overdue", ok()), due(-1)),
            bc("unmanaged", ok()),
        ];
        let s = summarize(&fleet, Timestamp::from_second(NOW).unwrap());
        let names: Vec<_> = s.rotations_due.iter().map(|x| x.name.as_str()).collect();
        assert_eq!(names, ["overdue", "soon"]);
    }

    #[test]
    fn pending_revocations_or_unrecorded_attempts_flag_possibly_orphaned_credentials() {
        let ok = || Some((true, "Available", ""));
        let rotation = |unrecorded| RotationStatus {
            phase: RotationPhase::Issuing,
            trigger: "Requested".into(),
            revision: 2,
            started_at: at(NOW),
            issue_in_flight_since: None,
            unrecorded_attempts: unrecorded,
            new_credential_id: None,
            previous: None,
            grace_until: None,
        };
        let fleet = [
            with_credentials(
                bc("pending", ok()),
                CredentialsStatus { pending_revocations: vec!["x".into(), "y".into()], ..Default::default() },
            ),
            with_credentials(
                bc("unrecorded", ok()),
                CredentialsStatus { rotation: Some(rotation(1)), ..Default::default() },
            ),
            with_credentials(
                bc("clean", ok()),
                CredentialsStatus { rotation: Some(rotation(0)), ..Default::default() },
            ),
        ];
        let s = summarize(&fleet, Timestamp::from_second(NOW).unwrap());
        assert_eq!(s.possibly_orphaned.len(), 2, "{s:?}");
        assert_eq!(s.possibly_orphaned[0].pending_revocations, 2);
        assert_eq!(s.possibly_orphaned[1].unrecorded_attempts, 1);
    }
}
