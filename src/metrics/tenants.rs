//! Per-tenant series: readiness, connectors, ConductorOne calls, errors and 429s, and the tenant's
//! request budget, computed at scrape time from a [`TenantSource`] (the controller's tenant store
//! and its per-tenant call accounting), so that a deleted tenant's series go with it. Tenants are
//! few, and their labels are their kind, namespace (empty for a cluster tenant) and name: nothing
//! else, never an error string.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;

/// What the per-tenant metrics report of one tenant.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TenantSample {
    /// `ConductorOneTenant` or `ClusterConductorOneTenant`.
    pub kind: &'static str,
    /// Empty for a cluster tenant.
    pub namespace: String,
    pub name: String,
    /// The `Ready` condition is True.
    pub ready: bool,
    /// The `Ready` condition's reason, `Unobserved` before the operator's first report.
    pub reason: String,
    /// Connectors that use the tenant.
    pub connectors: u32,
    /// ConductorOne answered this tenant 429 within the last minute.
    pub rate_limited: bool,
    /// HTTP attempts to ConductorOne with this tenant's principal since the operator started.
    pub calls: u64,
    /// Of those, the ones that failed (a 429 included).
    pub errors: u64,
    /// Of those, the ones answered 429 (Too Many Requests).
    pub throttled: u64,
    /// The budget the tenant's client spends: its `rateLimit`, or the operator's own rate.
    pub requests_per_second: u32,
    pub burst: u32,
}

/// Where the per-tenant metrics come from, so that this module knows nothing of how tenants are
/// stored (`controller::c1::tenant_metrics` implements it).
pub trait TenantSource: Send + Sync {
    /// Calls `f` with each tenant the operator knows.
    fn each(&self, f: &mut dyn FnMut(&TenantSample));
}

/// A fixed list of samples: tests and the dashboard check.
impl TenantSource for Vec<TenantSample> {
    fn each(&self, f: &mut dyn FnMut(&TenantSample)) {
        self.iter().for_each(f);
    }
}

/// The collector of the per-tenant series.
#[derive(Clone)]
pub struct TenantMetrics(pub Arc<dyn TenantSource>);

impl std::fmt::Debug for TenantMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TenantMetrics")
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TenantLabels {
    kind: &'static str,
    namespace: String,
    name: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TenantReasonLabels {
    kind: &'static str,
    namespace: String,
    name: String,
    reason: String,
}

type Value = fn(&TenantSample) -> f64;

/// Gauges: name, help, value.
const GAUGES: [(&str, &str, Value); 5] = [
    (
        "baton_tenant_ready",
        "1 when the tenant's Ready condition is True (ConductorOne issues its principal a token)",
        |s| f64::from(u8::from(s.ready)),
    ),
    ("baton_tenant_connectors", "BatonConnectors that use the tenant", |s| f64::from(s.connectors)),
    (
        "baton_tenant_rate_limited",
        "1 while ConductorOne has answered the tenant 429 within the last minute",
        |s| f64::from(u8::from(s.rate_limited)),
    ),
    (
        "baton_tenant_budget_requests_per_second",
        "The tenant's ConductorOne request budget: its rateLimit.requestsPerSecond, or the operator's rate without one",
        |s| f64::from(s.requests_per_second),
    ),
    (
        "baton_tenant_budget_burst",
        "The tenant's ConductorOne burst: its rateLimit.burst, or the operator's without one",
        |s| f64::from(s.burst),
    ),
];

type Count = fn(&TenantSample) -> u64;

/// Counters (`_total` is added when encoded): name, help, value.
const COUNTERS: [(&str, &str, Count); 3] = [
    (
        "baton_tenant_conductorone_calls",
        "HTTP attempts to ConductorOne with the tenant's principal, retries included",
        |s| s.calls,
    ),
    ("baton_tenant_conductorone_errors", "Failed ConductorOne attempts of the tenant, 429s included", |s| {
        s.errors
    }),
    (
        "baton_tenant_conductorone_rate_limited",
        "ConductorOne answers of 429 (Too Many Requests) to the tenant",
        |s| s.throttled,
    ),
];

impl TenantMetrics {
    fn samples(&self) -> Vec<TenantSample> {
        let mut out = Vec::new();
        self.0.each(&mut |s| out.push(s.clone()));
        out
    }
}

fn labels(s: &TenantSample) -> TenantLabels {
    TenantLabels { kind: s.kind, namespace: s.namespace.clone(), name: s.name.clone() }
}

impl prometheus_client::collector::Collector for TenantMetrics {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::DescriptorEncoder,
    ) -> Result<(), std::fmt::Error> {
        use prometheus_client::{
            encoding::EncodeMetric,
            metrics::{counter::ConstCounter, gauge::ConstGauge},
        };
        let samples = self.samples();
        let gauge = ConstGauge::new(0.0f64).metric_type();
        for (name, help, value) in GAUGES {
            let mut family = encoder.encode_descriptor(name, help, None, gauge)?;
            for s in &samples {
                ConstGauge::new(value(s)).encode(family.encode_family(&labels(s))?)?;
            }
        }
        let counter = ConstCounter::new(0u64).metric_type();
        for (name, help, value) in COUNTERS {
            let mut family = encoder.encode_descriptor(name, help, None, counter)?;
            for s in &samples {
                ConstCounter::new(value(s)).encode(family.encode_family(&labels(s))?)?;
            }
        }
        // One series per tenant labelled with its Ready reason, to count tenants by reason.
        let mut family = encoder.encode_descriptor(
            "baton_tenant_ready_reason",
            "1, labelled with the reason of the tenant's Ready condition (Unobserved before the first report)",
            None,
            gauge,
        )?;
        for s in &samples {
            let l = TenantReasonLabels {
                kind: s.kind,
                namespace: s.namespace.clone(),
                name: s.name.clone(),
                reason: s.reason.clone(),
            };
            ConstGauge::new(1.0f64).encode(family.encode_family(&l)?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use prometheus_client::registry::Registry;

    use super::*;

    fn sample(kind: &'static str, namespace: &str, name: &str) -> TenantSample {
        TenantSample {
            kind,
            namespace: namespace.into(),
            name: name.into(),
            requests_per_second: 5,
            burst: 10,
            ..Default::default()
        }
    }

    fn scrape(samples: Vec<TenantSample>) -> String {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(TenantMetrics(Arc::new(samples))));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        text
    }

    #[test]
    fn each_tenant_has_its_readiness_calls_and_budget_labelled_by_kind_namespace_and_name() {
        let prod = TenantSample {
            ready: true,
            reason: "Authenticated".into(),
            connectors: 2,
            calls: 40,
            errors: 3,
            throttled: 2,
            rate_limited: true,
            ..sample("ClusterConductorOneTenant", "", "prod")
        };
        let team = TenantSample {
            reason: "CredentialsRejected".into(),
            requests_per_second: 2,
            burst: 4,
            ..sample("ConductorOneTenant", "team-a", "own")
        };
        let text = scrape(vec![prod, team]);
        let has = |line: &str| text.lines().any(|l| l == line);
        let p = r#"{kind="ClusterConductorOneTenant",namespace="",name="prod"}"#;
        let t = r#"{kind="ConductorOneTenant",namespace="team-a",name="own"}"#;
        for line in [
            format!("baton_tenant_ready{p} 1.0"),
            format!("baton_tenant_ready{t} 0.0"),
            format!("baton_tenant_connectors{p} 2.0"),
            format!("baton_tenant_rate_limited{p} 1.0"),
            format!("baton_tenant_rate_limited{t} 0.0"),
            format!("baton_tenant_budget_requests_per_second{p} 5.0"),
            format!("baton_tenant_budget_burst{t} 4.0"),
            format!("baton_tenant_conductorone_calls_total{p} 40"),
            format!("baton_tenant_conductorone_errors_total{p} 3"),
            format!("baton_tenant_conductorone_rate_limited_total{p} 2"),
            format!("baton_tenant_conductorone_calls_total{t} 0"),
            r#"baton_tenant_ready_reason{kind="ConductorOneTenant",namespace="team-a",name="own",reason="CredentialsRejected"} 1.0"#.into(),
        ] {
            assert!(has(&line), "no line {line} in\n{text}");
        }
        assert!(text.contains("# TYPE baton_tenant_conductorone_calls counter"), "{text}");
    }

    #[test]
    fn no_tenant_no_series() {
        let text = scrape(Vec::new());
        assert!(!text.lines().any(|l| l.starts_with("baton_tenant_")), "{text}");
    }
}
