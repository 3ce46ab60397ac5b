//! The tenant a rendered connector uses. Render runs without a cluster: it names the tenant (or the
//! default cluster tenant) and where its principal's Secret is, and applies the tenant's
//! `connectorDefaults` when the tenant is in the same input. The principal itself is read by the
//! operator at run time; render never reads or prints it.

use crate::{
    api::{BatonConnector, ClusterConductorOneTenant, ConductorOneTenant, ConnectorDefaults, TenantKind},
    decide::tenant::{FoundTenant, Wanted, resolve, wanted},
    resources::InputProblem,
};

/// The tenants of the input.
#[derive(Default)]
pub struct Tenants(Vec<InputTenant>);

struct InputTenant {
    /// A `ConductorOneTenant`'s namespace; `None` for a cluster tenant.
    namespace: Option<String>,
    /// A cluster tenant annotated as the default.
    is_default: bool,
    found: FoundTenant,
}

impl Tenants {
    pub fn add_namespaced(&mut self, t: ConductorOneTenant, default_namespace: &str) {
        let ns = t.metadata.namespace.clone().unwrap_or_else(|| default_namespace.to_string());
        let found = FoundTenant {
            kind: TenantKind::ConductorOneTenant,
            name: t.metadata.name.clone().unwrap_or_default(),
            settings: t.spec.settings,
            allowed: None,
            not_ready: None,
        };
        self.0.push(InputTenant { namespace: Some(ns), is_default: false, found });
    }

    pub fn add_cluster(&mut self, t: ClusterConductorOneTenant) {
        let is_default = t
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(crate::api::DEFAULT_TENANT_ANNOTATION))
            .is_some_and(|v| v == "true");
        let found = FoundTenant {
            kind: TenantKind::ClusterConductorOneTenant,
            name: t.metadata.name.clone().unwrap_or_default(),
            settings: t.spec.settings,
            allowed: t.spec.allowed_namespaces,
            not_ready: None,
        };
        self.0.push(InputTenant { namespace: None, is_default, found });
    }

    /// What `resolve` is given: the named tenant, or the cluster tenants annotated as the default.
    fn found(&self, namespace: &str, want: &Wanted) -> Vec<FoundTenant> {
        let fits = |i: &InputTenant| match want {
            Wanted::OwnSecret(_) => false,
            Wanted::Tenant(r) => {
                i.found.kind == r.kind
                    && i.found.name == r.name
                    && (i.namespace.is_none() || i.namespace.as_deref() == Some(namespace))
            }
            Wanted::DefaultTenant => i.is_default,
        };
        self.0
            .iter()
            .filter(|i| fits(i))
            .map(|InputTenant { found: t, .. }| FoundTenant {
                // Render cannot read the namespace's labels: it checks the names only, and says so.
                allowed: t.allowed.clone().map(|mut a| {
                    a.selector = None;
                    a
                }),
                ..t.clone()
            })
            .collect()
    }

    fn selects_by_label(&self, name: &str) -> bool {
        self.0.iter().map(|i| &i.found).any(|t| {
            t.kind == TenantKind::ClusterConductorOneTenant
                && t.name == name
                && t.allowed.as_ref().is_some_and(|a| a.selector.is_some())
        })
    }
}

/// What render says of a connector's tenant: the comment above its objects, and the defaults that
/// apply. `None` for a connector without ConductorOne or of the older form (unchanged output).
pub fn principal(bc: &BatonConnector, tenants: &Tenants) -> Option<(String, Option<ConnectorDefaults>)> {
    let c1 = bc.spec.conductor_one.as_ref()?;
    let want = wanted(c1);
    if matches!(want, Wanted::OwnSecret(_)) {
        return None;
    }
    let namespace = bc.metadata.namespace.clone().unwrap_or_default();
    let who =
        format!("# {namespace}/{}: ConductorOne principal from", bc.metadata.name.as_deref().unwrap_or(""));
    let named = crate::decide::tenant::describe(c1);
    let found = tenants.found(&namespace, &want);
    if found.is_empty() {
        let text = format!(
            "{who} {named}, which is not in the input: the operator reads the tenant and its Secret at run time (its connectorDefaults are not applied here)\n"
        );
        return Some((text, None));
    }
    // A placeholder for the operator's namespace: render does not know POD_NAMESPACE.
    const OPERATOR_NS: &str = "<the operator's namespace>";
    match resolve(&namespace, c1, &found, OPERATOR_NS, None) {
        Ok(source) => {
            let tenant = source.tenant.as_ref().expect("a tenant, not the older form");
            let label_note = match tenant.kind == TenantKind::ClusterConductorOneTenant
                && tenants.selects_by_label(&tenant.name)
            {
                true => {
                    "; its namespace selector is checked at run time (render cannot read namespace labels)"
                }
                false => "",
            };
            let place = match source.secret_namespace.as_str() {
                OPERATOR_NS => "in the operator's namespace".to_string(),
                ns => format!("in namespace {ns:?}"),
            };
            let text = format!(
                "{who} {} {:?} (Secret {:?} {place}{label_note}); the operator reads the principal from it at run time, render never does\n",
                tenant.kind.as_str(),
                tenant.name,
                source.secret_name,
            );
            Some((text, source.defaults))
        }
        Err(problem) => {
            let reason = problem.reason();
            let why = match problem {
                InputProblem::TenantNotFound(m) => m,
                other => other.to_string(),
            };
            Some((format!("{who} {named}: the operator would report {reason}: {why}\n"), None))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connector(ns: &str, c1: serde_json::Value) -> BatonConnector {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "baton.conductorone.com/v1alpha1", "kind": "BatonConnector",
            "metadata": {"name": "okta", "namespace": ns},
            "spec": {"connector": "okta", "credentials": {"managed": {}}, "conductorOne": c1},
        }))
        .unwrap()
    }

    fn cluster(name: &str, default: bool, allowed: serde_json::Value) -> ClusterConductorOneTenant {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "baton.conductorone.com/v1alpha1", "kind": "ClusterConductorOneTenant",
            "metadata": {"name": name, "annotations": {crate::api::DEFAULT_TENANT_ANNOTATION: default.to_string()}},
            "spec": {"apiCredentialsSecretRef": {"name": "conductorone-prod"}, "allowedNamespaces": allowed,
                "connectorDefaults": {"imageRegistry": "mirror.example.com/c1"}},
        }))
        .unwrap()
    }

    #[test]
    fn names_the_tenant_and_where_its_secret_is_and_applies_its_defaults() {
        let mut tenants = Tenants::default();
        tenants.add_cluster(cluster("prod", true, serde_json::json!({"names": ["team-a"]})));
        let named = connector(
            "team-a",
            serde_json::json!({"tenantRef": {"kind": "ClusterConductorOneTenant", "name": "prod"}}),
        );
        let (text, defaults) = principal(&named, &tenants).unwrap();
        assert_eq!(
            text,
            "# team-a/okta: ConductorOne principal from ClusterConductorOneTenant \"prod\" (Secret \"conductorone-prod\" in the operator's namespace); the operator reads the principal from it at run time, render never does\n"
        );
        assert_eq!(defaults.unwrap().image_registry.as_deref(), Some("mirror.example.com/c1"));

        // Naming none: the default cluster tenant.
        let by_default = connector("team-a", serde_json::json!({}));
        assert!(principal(&by_default, &tenants).unwrap().0.contains("ClusterConductorOneTenant \"prod\""));

        let elsewhere = connector("team-c", serde_json::json!({}));
        let (text, defaults) = principal(&elsewhere, &tenants).unwrap();
        assert!(text.contains("the operator would report TenantNotAllowed"), "{text}");
        assert!(defaults.is_none());

        let missing = connector("team-a", serde_json::json!({"tenantRef": {"name": "own"}}));
        let (text, _) = principal(&missing, &tenants).unwrap();
        assert!(text.contains("ConductorOneTenant own, which is not in the input"), "{text}");

        let older = connector("team-a", serde_json::json!({"apiCredentialsSecretRef": {"name": "c1"}}));
        assert!(principal(&older, &tenants).is_none(), "the older form renders as before");
    }

    #[test]
    fn a_label_selector_is_left_to_run_time() {
        let mut tenants = Tenants::default();
        let selector = serde_json::json!({"selector": {"matchLabels": {"team": "a"}}});
        tenants.add_cluster(cluster("prod", true, selector));
        let (text, defaults) = principal(&connector("team-a", serde_json::json!({})), &tenants).unwrap();
        assert!(text.contains("its namespace selector is checked at run time"), "{text}");
        assert!(defaults.is_some());
    }
}
