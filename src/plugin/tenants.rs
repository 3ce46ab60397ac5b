//! Tenants in `kubectl baton status` and `describe`: each tenant's Ready, reason, connectors and
//! whether ConductorOne is rate limiting it, read from the tenants' status (never their Secrets).
//! A person who may not list tenants still gets the connectors' summary: the tenants are then left
//! out with a note rather than failing the command.

use kube::{Api, Client, ResourceExt, api::ListParams};
use serde::Serialize;

use crate::{
    api::{
        ClusterConductorOneTenant, ConductorOneSpec, ConductorOneTenant, DEFAULT_TENANT_ANNOTATION,
        TenantStatus, conditions,
    },
    decide::tenant::{Wanted, wanted},
};

/// One tenant as `status` lists it.
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct TenantLine {
    pub kind: String,
    /// Empty for a cluster tenant.
    pub namespace: String,
    pub name: String,
    /// The `Ready` condition's status: `True`, `False`, or `Unknown` before the operator reports.
    pub ready: String,
    /// The `Ready` condition's reason, `Unobserved` before the operator reports.
    pub reason: String,
    pub message: String,
    pub connectors: u32,
    pub rate_limited: bool,
    /// Deleted, and waiting for the connectors that use it (`InUse`).
    pub deletion_blocked: bool,
}

impl TenantLine {
    fn of<K: kube::Resource>(kind: &str, object: &K, status: Option<&TenantStatus>) -> Self {
        let status = status.cloned().unwrap_or_default();
        let ready = conditions::find(&status.conditions, conditions::READY);
        let in_use = conditions::find(&status.conditions, crate::decide::tenant_status::IN_USE);
        Self {
            kind: kind.to_string(),
            namespace: object.meta().namespace.clone().unwrap_or_default(),
            name: object.meta().name.clone().unwrap_or_default(),
            ready: ready.map_or("Unknown", |c| c.status.as_str()).to_string(),
            reason: ready.map_or(crate::api::Reason::Unobserved.as_str(), |c| c.reason.as_str()).to_string(),
            message: ready.map(|c| c.message.clone()).unwrap_or_default(),
            connectors: status.connectors,
            rate_limited: status.rate_limited,
            deletion_blocked: object.meta().deletion_timestamp.is_some()
                && in_use.is_some_and(|c| c.status == "True"),
        }
    }

    pub fn namespaced(t: &ConductorOneTenant) -> Self {
        Self::of("ConductorOneTenant", t, t.status.as_ref())
    }

    pub fn cluster(t: &ClusterConductorOneTenant) -> Self {
        Self::of("ClusterConductorOneTenant", t, t.status.as_ref())
    }

    /// `Ready (Authenticated), 3 connectors` or `NOT READY (CredentialsRejected: ...)`.
    pub fn readiness(&self) -> String {
        let mut text = match self.ready.as_str() {
            "True" => format!("Ready ({})", self.reason),
            "Unknown" if self.reason == crate::api::Reason::Unobserved.as_str() => {
                "not checked by the operator yet".to_string()
            }
            _ if self.message.is_empty() => format!("NOT READY ({})", self.reason),
            _ => format!("NOT READY ({}: {})", self.reason, self.message),
        };
        text.push_str(&format!(", {} connectors", self.connectors));
        if self.rate_limited {
            text.push_str(", rate limited by ConductorOne");
        }
        if self.deletion_blocked {
            text.push_str(", deleted: waits for its connectors (InUse)");
        }
        text
    }
}

/// The tenants `status` shows: the namespace's `ConductorOneTenant`s (every namespace's with `-A`)
/// and the cluster's `ClusterConductorOneTenant`s, and a note for each list that was refused.
pub async fn list(client: &Client, scope: &super::scope::Scope) -> (Vec<TenantLine>, Vec<String>) {
    let mut lines = Vec::new();
    let mut notes = Vec::new();
    let namespaced: Api<ConductorOneTenant> = match scope.all_namespaces {
        true => Api::all(client.clone()),
        false => Api::namespaced(client.clone(), &scope.namespace),
    };
    // An operator older than tenants has no tenant CRDs: nothing to list, nothing to say.
    let missing = |e: &kube::Error| matches!(e, kube::Error::Api(s) if s.code == 404);
    match namespaced.list(&ListParams::default()).await {
        Ok(l) => lines.extend(l.items.iter().map(TenantLine::namespaced)),
        Err(e) if missing(&e) => {}
        Err(e) => notes.push(format!("ConductorOneTenants not listed: {}", short(&e))),
    }
    match Api::<ClusterConductorOneTenant>::all(client.clone()).list(&ListParams::default()).await {
        Ok(l) => lines.extend(l.items.iter().map(TenantLine::cluster)),
        Err(e) if missing(&e) => {}
        Err(e) => notes.push(format!("ClusterConductorOneTenants not listed: {}", short(&e))),
    }
    lines.sort_by(|a, b| (&a.kind, &a.namespace, &a.name).cmp(&(&b.kind, &b.namespace, &b.name)));
    (lines, notes)
}

fn short(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) if s.code == 403 => "forbidden".into(),
        kube::Error::Api(s) if s.code == 404 => "the tenant CRDs are not installed".into(),
        other => other.to_string(),
    }
}

/// The tenant a connector uses, in words, with whether it is ready: what `describe` shows.
pub async fn of_connector(client: &Client, namespace: &str, c1: &ConductorOneSpec) -> String {
    let found = match wanted(c1) {
        Wanted::OwnSecret(_) => return "none: the older form, apiCredentialsSecretRef".into(),
        Wanted::Tenant(r) => match r.kind {
            crate::api::TenantKind::ConductorOneTenant => {
                Api::<ConductorOneTenant>::namespaced(client.clone(), namespace)
                    .get_opt(&r.name)
                    .await
                    .map(|t| t.as_ref().map(TenantLine::namespaced))
            }
            crate::api::TenantKind::ClusterConductorOneTenant => {
                Api::<ClusterConductorOneTenant>::all(client.clone())
                    .get_opt(&r.name)
                    .await
                    .map(|t| t.as_ref().map(TenantLine::cluster))
            }
        },
        Wanted::DefaultTenant => Api::<ClusterConductorOneTenant>::all(client.clone())
            .list(&ListParams::default())
            .await
            .map(|l| {
                l.items
                    .iter()
                    .filter(|t| t.annotations().get(DEFAULT_TENANT_ANNOTATION).is_some_and(|v| v == "true"))
                    .map(TenantLine::cluster)
                    .next()
            }),
    };
    match found {
        Ok(Some(t)) => format!("{} {}: {}", t.kind, t.name, t.readiness()),
        Ok(None) => "not found (the connector says TenantNotFound)".into(),
        Err(e) => format!("not read: {}", short(&e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster(status: serde_json::Value, deleting: bool) -> ClusterConductorOneTenant {
        let mut t = serde_json::json!({
            "apiVersion": "baton.conductorone.com/v1alpha1", "kind": "ClusterConductorOneTenant",
            "metadata": {"name": "prod", "generation": 1},
            "spec": {"apiCredentialsSecretRef": {"name": "c1"}},
            "status": status,
        });
        if deleting {
            t["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z".into();
        }
        serde_json::from_value(t).unwrap()
    }

    fn ready(status: &str, reason: &str, message: &str) -> serde_json::Value {
        serde_json::json!({"type": "Ready", "status": status, "reason": reason, "message": message,
            "lastTransitionTime": "2026-01-01T00:00:00Z"})
    }

    #[test]
    fn a_tenant_line_says_ready_reason_connectors_and_rate_limiting() {
        let ok = TenantLine::cluster(&cluster(
            serde_json::json!({"connectors": 3, "rateLimited": true,
                "conditions": [ready("True", "Authenticated", "issued a token")]}),
            false,
        ));
        assert_eq!(
            (ok.ready.as_str(), ok.reason.as_str(), ok.connectors, ok.rate_limited),
            ("True", "Authenticated", 3, true)
        );
        assert_eq!(ok.namespace, "");
        assert_eq!(ok.readiness(), "Ready (Authenticated), 3 connectors, rate limited by ConductorOne");

        let bad = TenantLine::cluster(&cluster(
            serde_json::json!({"connectors": 1, "conditions": [
                ready("False", "CredentialsRejected", "refused the principal"),
                {"type": "InUse", "status": "True", "reason": "InUse", "message": "team-a/okta",
                 "lastTransitionTime": "2026-01-01T00:00:00Z"}]}),
            true,
        ));
        assert_eq!(
            bad.readiness(),
            "NOT READY (CredentialsRejected: refused the principal), 1 connectors, deleted: waits for its connectors (InUse)"
        );

        let new = TenantLine::cluster(&cluster(serde_json::json!({}), false));
        assert_eq!((new.ready.as_str(), new.reason.as_str()), ("Unknown", "Unobserved"));
        assert_eq!(new.readiness(), "not checked by the operator yet, 0 connectors");
    }
}
