//! Which service principal a connector uses, decided without I/O: the connector names a tenant
//! (`conductorOne.tenantRef`), the older form's Secret in its own namespace
//! (`conductorOne.apiCredentialsSecretRef`), or neither, and then the cluster tenant annotated as the
//! default serves it. The pass observes what [`wanted`] asks for; [`resolve`] says where the
//! principal's Secret is and which defaults apply, or why the connector cannot use the tenant.

use std::{borrow::Cow, collections::BTreeMap};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use crate::{
    api::{
        AllowedNamespaces, BatonConnector, ConductorOneSpec, ConnectorDefaults, DEFAULT_SYNC_FRESHNESS,
        EnvEntry, ManagedCredentials, RateLimit, RotationSpec, TenantKind, TenantRef, TenantSettings,
    },
    conductorone::ApiCredentials,
    resources::{InputProblem, SecretData},
};

/// Where a connector's principal comes from, in words (`kubectl baton describe`).
pub fn describe(c1: &ConductorOneSpec) -> String {
    match wanted(c1) {
        Wanted::Tenant(r) => format!("{} {}", r.kind.as_str(), r.name),
        Wanted::OwnSecret(name) => format!("Secret {name} (apiCredentialsSecretRef, the older form)"),
        Wanted::DefaultTenant => "the default ClusterConductorOneTenant".into(),
    }
}

/// What the pass must observe to resolve a connector's principal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Wanted {
    /// The older form: this Secret in the connector's namespace.
    OwnSecret(String),
    /// The tenant the connector names.
    Tenant(TenantRef),
    /// The cluster tenant annotated as the default.
    DefaultTenant,
}

pub fn wanted(c1: &ConductorOneSpec) -> Wanted {
    match (&c1.tenant_ref, &c1.api_credentials_secret_ref) {
        (Some(t), _) => Wanted::Tenant(t.clone()),
        (None, Some(s)) => Wanted::OwnSecret(s.name.clone()),
        (None, None) => Wanted::DefaultTenant,
    }
}

/// A tenant as the pass observed it.
#[derive(Clone, Debug, PartialEq)]
pub struct FoundTenant {
    pub kind: TenantKind,
    pub name: String,
    pub settings: TenantSettings,
    /// Cluster tenants only: the namespaces that may use it.
    pub allowed: Option<AllowedNamespaces>,
    /// The tenant's `Ready=False`, as its status says (`decide::tenant_status::not_ready`).
    pub not_ready: Option<String>,
}

/// Where a connector's principal comes from, and what the tenant adds.
#[derive(Clone, Debug, PartialEq)]
pub struct Source {
    /// The tenant, or `None` for the older form.
    pub tenant: Option<TenantRef>,
    pub secret_namespace: String,
    pub secret_name: String,
    pub defaults: Option<ConnectorDefaults>,
    pub rate_limit: Option<RateLimit>,
    /// The tenant's `Ready=False`: its connectors make no ConductorOne call and say
    /// `TenantNotReady` ([`usable`]); a deletion still tries to revoke.
    pub not_ready: Option<String>,
    /// PEM certificates the tenant's client trusts besides the operator's.
    pub ca_bundle: Option<String>,
}

/// Decides the principal's source. `found` holds what the pass observed for [`wanted`]: the named
/// tenant if it exists, or every cluster tenant annotated as the default. `namespace_labels` are
/// the connector namespace's labels, needed only when a cluster tenant selects namespaces by label
/// (`None` when they could not be read: such a tenant then does not allow the namespace).
pub fn resolve(
    namespace: &str,
    c1: &ConductorOneSpec,
    found: &[FoundTenant],
    operator_namespace: &str,
    namespace_labels: Option<&BTreeMap<String, String>>,
) -> Result<Source, InputProblem> {
    let tenant = match wanted(c1) {
        Wanted::OwnSecret(name) => {
            return Ok(Source {
                tenant: None,
                secret_namespace: namespace.to_string(),
                secret_name: name,
                defaults: None,
                rate_limit: None,
                not_ready: None,
                ca_bundle: None,
            });
        }
        Wanted::Tenant(r) => found.iter().find(|t| t.kind == r.kind && t.name == r.name).ok_or_else(|| {
            let place = match r.kind {
                TenantKind::ConductorOneTenant => format!(" in namespace {namespace:?}"),
                TenantKind::ClusterConductorOneTenant => String::new(),
            };
            InputProblem::TenantNotFound(format!(
                "{} {:?}{place} not found (conductorOne.tenantRef)",
                r.kind.as_str(),
                r.name
            ))
        })?,
        Wanted::DefaultTenant => match found {
            [one] => one,
            [] => return Err(InputProblem::TenantNotFound(
                "conductorOne names no tenantRef and no apiCredentialsSecretRef, and no ClusterConductorOneTenant is annotated baton.conductorone.com/is-default-tenant: \"true\"".into(),
            )),
            several => {
                let mut names: Vec<&str> = several.iter().map(|t| t.name.as_str()).collect();
                names.sort_unstable();
                return Err(InputProblem::TenantNotFound(format!(
                    "several ClusterConductorOneTenants are annotated as the default ({}); name one in conductorOne.tenantRef",
                    names.join(", ")
                )));
            }
        },
    };
    let secret_namespace = match tenant.kind {
        TenantKind::ConductorOneTenant => namespace.to_string(),
        TenantKind::ClusterConductorOneTenant => {
            if !allows(tenant.allowed.as_ref(), namespace, namespace_labels) {
                return Err(InputProblem::TenantNotAllowed {
                    tenant: tenant.name.clone(),
                    namespace: namespace.to_string(),
                });
            }
            operator_namespace.to_string()
        }
    };
    Ok(Source {
        tenant: Some(TenantRef { kind: tenant.kind, name: tenant.name.clone() }),
        secret_namespace,
        secret_name: tenant.settings.api_credentials_secret_ref.name.clone(),
        defaults: tenant.settings.connector_defaults.clone(),
        rate_limit: tenant.settings.rate_limit.clone(),
        not_ready: tenant.not_ready.clone(),
        ca_bundle: tenant.settings.ca_bundle.clone(),
    })
}

/// The principal, unless its tenant is not ready: then the tenant's problem, said once on the
/// tenant and named on each connector, instead of every connector's calls failing on their own.
pub fn usable(source: &Source, creds: ApiCredentials) -> Result<ApiCredentials, InputProblem> {
    match (&source.tenant, &source.not_ready) {
        (Some(t), Some(why)) => Err(InputProblem::TenantNotReady {
            kind: t.kind.as_str(),
            name: t.name.clone(),
            why: why.clone(),
        }),
        _ => Ok(creds),
    }
}

/// The principal in the source's Secret. A tenant's broken Secret is the tenant's problem
/// (`TenantNotReady`), reported once on the tenant rather than as every connector's own.
pub fn principal(source: &Source, secrets: &SecretData) -> Result<ApiCredentials, InputProblem> {
    let read = super::credentials::api_credentials_in(&source.secret_namespace, &source.secret_name, secrets);
    match (&source.tenant, read) {
        (Some(t), Err(p)) => Err(InputProblem::TenantNotReady {
            kind: t.kind.as_str(),
            name: t.name.clone(),
            why: p.to_string(),
        }),
        (_, read) => read,
    }
}

/// The variable the Baton SDK reads its OpenTelemetry collector from.
pub const OTEL_ENDPOINT_VAR: &str = "BATON_OTEL_COLLECTOR_ENDPOINT";

/// The connector as its workload is built: the tenant's defaults fill what the connector leaves
/// unset, and the connector's own fields win. The image registry mirror replaces only the default
/// repository (`public.ecr.aws/conductorone/baton-<connector>`). (Rotation and sync freshness are
/// not part of the workload: [`rotation`] and [`sync_freshness`].)
pub fn with_defaults<'a>(
    bc: &'a BatonConnector,
    defaults: Option<&ConnectorDefaults>,
) -> Cow<'a, BatonConnector> {
    let Some(d) = defaults else { return Cow::Borrowed(bc) };
    let mut out = bc.clone();
    let spec = &mut out.spec;
    if let Some(registry) = &d.image_registry {
        let image = spec.image.get_or_insert_with(Default::default);
        if image.repository.is_none() {
            image.repository = Some(format!("{}/baton-{}", registry.trim_end_matches('/'), spec.connector));
        }
    }
    if spec.resources.is_none() {
        spec.resources = d.resources.clone();
    }
    if let Some(endpoint) = &d.otel_collector_endpoint
        && !spec.env.iter().any(|e| e.name == OTEL_ENDPOINT_VAR)
    {
        spec.env.push(EnvEntry { name: OTEL_ENDPOINT_VAR.into(), value: endpoint.clone() });
    }
    Cow::Owned(out)
}

/// The rotation in force: the connector's fields, else its tenant's defaults, else the operator's.
pub fn rotation(managed: &ManagedCredentials, defaults: Option<&ConnectorDefaults>) -> RotationSpec {
    match defaults.and_then(|d| d.rotation.as_ref()) {
        Some(tenant) => managed.rotation.or(tenant),
        None => managed.rotation.clone(),
    }
}

/// The sync freshness in force: the connector's, else its tenant's default, else the operator's.
pub fn sync_freshness<'a>(c1: &'a ConductorOneSpec, defaults: Option<&'a ConnectorDefaults>) -> &'a str {
    c1.sync_freshness
        .as_deref()
        .or_else(|| defaults.and_then(|d| d.sync_freshness.as_deref()))
        .unwrap_or(DEFAULT_SYNC_FRESHNESS)
}

/// Whether a cluster tenant allows a namespace: no `allowedNamespaces` allows every one; `names`
/// and `selector` must both hold where set.
pub fn allows(
    allowed: Option<&AllowedNamespaces>,
    namespace: &str,
    labels: Option<&BTreeMap<String, String>>,
) -> bool {
    let Some(allowed) = allowed else { return true };
    let named = allowed.names.as_ref().is_none_or(|names| names.iter().any(|n| n == namespace));
    let selected = match (&allowed.selector, labels) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(selector), Some(labels)) => selects(selector, labels),
    };
    named && selected
}

/// A label selector's verdict, as the API server evaluates it: every `matchLabels` entry and every
/// expression must hold. An unknown operator selects nothing.
pub fn selects(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let by_labels =
        selector.match_labels.iter().flatten().all(|(k, v)| labels.get(k).is_some_and(|have| have == v));
    let by_expressions = selector.match_expressions.iter().flatten().all(|e| {
        let values = e.values.as_deref().unwrap_or_default();
        let have = labels.get(&e.key);
        match e.operator.as_str() {
            "In" => have.is_some_and(|v| values.contains(v)),
            "NotIn" => have.is_none_or(|v| !values.contains(v)),
            "Exists" => have.is_some(),
            "DoesNotExist" => have.is_none(),
            _ => false,
        }
    });
    by_labels && by_expressions
}

#[cfg(test)]
mod tests {
    use k8s_openapi::{ByteString, apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement};

    use super::*;
    use crate::api::SecretRef;

    fn c1(tenant: Option<TenantRef>, secret: Option<&str>) -> ConductorOneSpec {
        ConductorOneSpec {
            tenant_ref: tenant,
            api_credentials_secret_ref: secret.map(|n| SecretRef { name: n.into() }),
            app_id: Some("app".into()),
            app: None,
            connector_id: None,
            connector: None,
            sync_freshness: None,
            pause_when_suspended: true,
        }
    }

    fn tenant(kind: TenantKind, name: &str, allowed: Option<AllowedNamespaces>) -> FoundTenant {
        FoundTenant {
            kind,
            name: name.into(),
            settings: TenantSettings {
                api_credentials_secret_ref: SecretRef { name: format!("{name}-principal") },
                rate_limit: Some(RateLimit { requests_per_second: 5, burst: 10 }),
                connector_defaults: Some(ConnectorDefaults {
                    image_registry: Some("mirror.example.com/c1".into()),
                    ..Default::default()
                }),
                ca_bundle: None,
            },
            allowed,
            not_ready: None,
        }
    }

    fn cluster_ref(name: &str) -> Option<TenantRef> {
        Some(TenantRef { kind: TenantKind::ClusterConductorOneTenant, name: name.into() })
    }

    #[test]
    fn tenant_defaults_fill_what_the_connector_leaves_unset_and_its_own_fields_win() {
        use k8s_openapi::{api::core::v1::ResourceRequirements, apimachinery::pkg::api::resource::Quantity};
        let bc = |spec: serde_json::Value| -> BatonConnector {
            serde_json::from_value(serde_json::json!({
                "apiVersion": "baton.conductorone.com/v1alpha1", "kind": "BatonConnector",
                "metadata": {"name": "okta", "namespace": "team-a"}, "spec": spec,
            }))
            .unwrap()
        };
        let small = ResourceRequirements {
            requests: Some(BTreeMap::from([("cpu".to_string(), Quantity("50m".into()))])),
            ..Default::default()
        };
        let defaults = ConnectorDefaults {
            image_registry: Some("mirror.example.com/c1/".into()),
            resources: Some(small.clone()),
            otel_collector_endpoint: Some("http://otel:4317".into()),
            ..Default::default()
        };
        let plain = bc(serde_json::json!({"connector": "okta", "credentials": {"secretRef": {"name": "c"}}}));
        let merged = with_defaults(&plain, Some(&defaults)).into_owned();
        let image = merged.spec.image.as_ref().unwrap();
        assert_eq!(image.repository.as_deref(), Some("mirror.example.com/c1/baton-okta"));
        assert_eq!(merged.spec.resources, Some(small));
        assert!(merged.spec.env.iter().any(|e| e.name == OTEL_ENDPOINT_VAR && e.value == "http://otel:4317"));

        let own = bc(serde_json::json!({"connector": "okta", "credentials": {"secretRef": {"name": "c"}},
            "image": {"repository": "registry.corp/baton-okta", "tag": "v1"},
            "resources": {"requests": {"cpu": "2"}},
            "env": [{"name": "BATON_OTEL_COLLECTOR_ENDPOINT", "value": "http://mine:4317"}]}));
        let kept = with_defaults(&own, Some(&defaults)).into_owned();
        assert_eq!(kept.spec, own.spec, "the connector's own fields win");
        assert!(matches!(with_defaults(&plain, None), Cow::Borrowed(_)), "no tenant: unchanged");
    }

    #[test]
    fn rotation_and_sync_freshness_come_from_the_connector_then_the_tenant_then_the_operator() {
        let tenant = ConnectorDefaults {
            rotation: Some(RotationSpec { interval: Some("2160h".into()), grace_period: None }),
            sync_freshness: Some("6h".into()),
            ..Default::default()
        };
        let own_grace = ManagedCredentials {
            rotation: RotationSpec { interval: None, grace_period: Some("30m".into()) },
            ..Default::default()
        };
        let r = rotation(&own_grace, Some(&tenant));
        assert_eq!(
            (r.interval(), r.grace_period()),
            ("2160h", "30m"),
            "the tenant's interval, its own grace"
        );
        let r = rotation(&own_grace, None);
        assert_eq!((r.interval(), r.grace_period()), ("720h", "30m"), "the operator's interval");

        let mut spec = c1(cluster_ref("prod"), None);
        assert_eq!(sync_freshness(&spec, Some(&tenant)), "6h");
        assert_eq!(sync_freshness(&spec, None), "24h");
        spec.sync_freshness = Some("1h".into());
        assert_eq!(sync_freshness(&spec, Some(&tenant)), "1h", "the connector's own wins");
    }

    #[test]
    fn describe_names_the_principal_source() {
        assert_eq!(describe(&c1(cluster_ref("prod"), None)), "ClusterConductorOneTenant prod");
        assert_eq!(describe(&c1(None, Some("api"))), "Secret api (apiCredentialsSecretRef, the older form)");
        assert_eq!(describe(&c1(None, None)), "the default ClusterConductorOneTenant");
    }

    #[test]
    fn the_older_form_reads_its_own_namespace_whatever_tenants_exist() {
        let found = [tenant(TenantKind::ClusterConductorOneTenant, "prod", None)];
        let s = resolve("team-a", &c1(None, Some("api")), &found, "baton-system", None).unwrap();
        assert_eq!((s.tenant, s.secret_namespace.as_str(), s.secret_name.as_str()), (None, "team-a", "api"));
        assert_eq!(s.rate_limit, None);
    }

    #[test]
    fn a_cluster_tenant_reads_its_secret_in_the_operator_namespace() {
        let found = [tenant(TenantKind::ClusterConductorOneTenant, "prod", None)];
        let s = resolve("team-a", &c1(cluster_ref("prod"), None), &found, "baton-system", None).unwrap();
        assert_eq!((s.secret_namespace.as_str(), s.secret_name.as_str()), ("baton-system", "prod-principal"));
        assert_eq!(s.tenant, cluster_ref("prod"));
        assert_eq!(s.rate_limit, Some(RateLimit { requests_per_second: 5, burst: 10 }));
        assert_eq!(s.defaults.unwrap().image_registry.as_deref(), Some("mirror.example.com/c1"));
    }

    #[test]
    fn a_namespaced_tenant_reads_its_secret_in_the_connector_namespace() {
        let r = TenantRef { kind: TenantKind::ConductorOneTenant, name: "sandbox".into() };
        let found = [tenant(TenantKind::ConductorOneTenant, "sandbox", None)];
        let s = resolve("team-a", &c1(Some(r), None), &found, "baton-system", None).unwrap();
        assert_eq!((s.secret_namespace.as_str(), s.secret_name.as_str()), ("team-a", "sandbox-principal"));
    }

    #[test]
    fn a_missing_tenant_or_one_of_the_other_kind_is_not_found() {
        let found = [tenant(TenantKind::ConductorOneTenant, "prod", None)];
        let err =
            resolve("team-a", &c1(cluster_ref("prod"), None), &found, "baton-system", None).unwrap_err();
        assert_eq!(err.reason(), crate::api::Reason::TenantNotFound);
        assert!(err.to_string().contains("ClusterConductorOneTenant \"prod\" not found"), "{err}");
        assert!(err.may_resolve_itself(), "a tenant applied moments later is picked up");
    }

    #[test]
    fn no_reference_uses_the_one_default_tenant_and_refuses_none_or_several() {
        let none = resolve("team-a", &c1(None, None), &[], "baton-system", None).unwrap_err();
        assert_eq!(none.reason(), crate::api::Reason::TenantNotFound);
        assert!(none.to_string().contains("is-default-tenant"), "{none}");

        let one = [tenant(TenantKind::ClusterConductorOneTenant, "prod", None)];
        let s = resolve("team-a", &c1(None, None), &one, "baton-system", None).unwrap();
        assert_eq!(s.tenant, cluster_ref("prod"));

        let two = [
            tenant(TenantKind::ClusterConductorOneTenant, "sandbox", None),
            tenant(TenantKind::ClusterConductorOneTenant, "prod", None),
        ];
        let err = resolve("team-a", &c1(None, None), &two, "baton-system", None).unwrap_err();
        assert!(err.to_string().contains("(prod, sandbox)"), "{err}");
    }

    #[test]
    fn allowed_namespaces_by_name_and_by_label() {
        let names = AllowedNamespaces { names: Some(vec!["team-a".into()]), selector: None };
        let found = [tenant(TenantKind::ClusterConductorOneTenant, "prod", Some(names))];
        assert!(resolve("team-a", &c1(cluster_ref("prod"), None), &found, "op", None).is_ok());
        let err = resolve("team-b", &c1(cluster_ref("prod"), None), &found, "op", None).unwrap_err();
        assert_eq!(err.reason(), crate::api::Reason::TenantNotAllowed);
        assert!(!err.may_resolve_itself());

        let selector = LabelSelector {
            match_labels: Some(BTreeMap::from([("baton/tenant".into(), "prod".into())])),
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "env".into(),
                operator: "NotIn".into(),
                values: Some(vec!["sandbox".into()]),
            }]),
        };
        let by_label = AllowedNamespaces { names: None, selector: Some(selector) };
        let labels = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
        };
        assert!(allows(Some(&by_label), "x", Some(&labels(&[("baton/tenant", "prod")]))));
        assert!(!allows(
            Some(&by_label),
            "x",
            Some(&labels(&[("baton/tenant", "prod"), ("env", "sandbox")]))
        ));
        assert!(!allows(Some(&by_label), "x", Some(&labels(&[("baton/tenant", "dev")]))));
        assert!(!allows(Some(&by_label), "x", None), "unread labels allow nothing");
        assert!(allows(None, "x", None), "no allowedNamespaces allows every namespace");
    }

    #[test]
    fn a_tenant_secret_problem_is_the_tenant_not_being_ready_and_the_older_form_keeps_its_reasons() {
        let found = [tenant(TenantKind::ClusterConductorOneTenant, "prod", None)];
        let s = resolve("team-a", &c1(cluster_ref("prod"), None), &found, "op", None).unwrap();
        let err = principal(&s, &SecretData::default()).unwrap_err();
        assert_eq!(err.reason(), crate::api::Reason::TenantNotReady);
        assert!(err.to_string().starts_with("ClusterConductorOneTenant \"prod\" is not ready"), "{err}");

        let mut secrets = SecretData::default();
        secrets.insert(
            "prod-principal",
            [("clientId", "id.example.conductor.one"), ("clientSecret", "s3cr3t")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
                .collect(),
        );
        assert!(principal(&s, &secrets).is_ok());

        let own = resolve("team-a", &c1(None, Some("api")), &[], "op", None).unwrap();
        assert_eq!(
            principal(&own, &SecretData::default()).unwrap_err().reason(),
            crate::api::Reason::SecretNotFound
        );
    }
}
