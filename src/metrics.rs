//! Prometheus metrics of the operator itself. Every label takes a value from a fixed, small set:
//! never an object name or an error string. The per-resource series (`Fleet`) and the per-tenant ones
//! (`tenants`) are labelled with the resources' own namespace and name.

pub mod tenants;

use std::sync::atomic::{AtomicI64, AtomicU64};

use prometheus_client::{
    encoding::{EncodeLabelSet, EncodeLabelValue},
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum Outcome {
    success,
    error,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: Outcome,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    /// A fixed `&'static str` category, see `Error::metric_label`.
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ApplyLabels {
    pub kind: &'static str,
    /// `create`, `update` (the desired object changed) or `drift` (someone edited owned fields).
    pub cause: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabels {
    /// `token`, `rotate_credential`, `get_credential`, `revoke_credential` or `get_connector`.
    pub operation: &'static str,
    /// `Ok` or a fixed error reason such as `RateLimited`.
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperationLabels {
    pub operation: &'static str,
}

/// The operator's metrics, registered once and shared by every reconcile.
pub struct Metrics {
    pub conductorone_calls: Family<CallLabels, Counter>,
    pub conductorone_latency: Family<OperationLabels, Histogram>,
    pub conductorone_rate_limited: Family<OperationLabels, Counter>,
    pub reconcile_duration: Histogram,
    pub reconciliations: Family<OutcomeLabels, Counter>,
    pub reconcile_errors: Family<ReasonLabels, Counter>,
    pub objects_in_backoff: Gauge<i64, AtomicI64>,
    pub applies: Family<ApplyLabels, Counter>,
    pub status_writes: Counter,
    pub sync_poll_interval: Gauge<f64, AtomicU64>,
    pub sync_poll_connectors: Gauge<i64, AtomicI64>,
}

impl Metrics {
    /// Creates the metrics and registers them under the `baton_operator` prefix.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self {
            conductorone_calls: Family::default(),
            conductorone_latency: Family::new_with_constructor(|| {
                Histogram::new([0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0])
            }),
            conductorone_rate_limited: Family::default(),
            reconcile_duration: Histogram::new([0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0, 60.0]),
            reconciliations: Family::default(),
            reconcile_errors: Family::default(),
            objects_in_backoff: Gauge::default(),
            applies: Family::default(),
            status_writes: Counter::default(),
            sync_poll_interval: Gauge::default(),
            sync_poll_connectors: Gauge::default(),
        };
        let r = registry.sub_registry_with_prefix("baton_operator");
        r.register("reconcile_duration_seconds", "Time one reconcile takes", m.reconcile_duration.clone());
        r.register("reconciliations", "Reconciles by outcome", m.reconciliations.clone());
        r.register("reconcile_errors", "Failed reconciles by reason", m.reconcile_errors.clone());
        r.register(
            "objects_in_backoff",
            "BatonConnectors waiting to retry after an error",
            m.objects_in_backoff.clone(),
        );
        r.register("applies", "Server-side applies of child objects by kind and cause", m.applies.clone());
        r.register("status_writes", "Status updates written to the API server", m.status_writes.clone());
        r.register(
            "sync_poll_interval_seconds",
            "The interval each connector's sync status is read at: the configured one, or longer when the ConductorOne request budget cannot cover the fleet",
            m.sync_poll_interval.clone(),
        );
        r.register(
            "sync_poll_connectors",
            "Connectors whose sync status the operator reads from ConductorOne",
            m.sync_poll_connectors.clone(),
        );
        r.register(
            "conductorone_calls",
            "HTTP attempts to the ConductorOne API by result",
            m.conductorone_calls.clone(),
        );
        r.register(
            "conductorone_call_duration_seconds",
            "Latency of ConductorOne API attempts",
            m.conductorone_latency.clone(),
        );
        r.register(
            "conductorone_rate_limited",
            "ConductorOne answers of 429 Too Many Requests",
            m.conductorone_rate_limited.clone(),
        );
        m
    }

    /// Records one attempt of a ConductorOne call; given to the client as its metrics hook.
    pub fn record_call(&self, call: &crate::conductorone::CallOutcome) {
        self.conductorone_calls
            .get_or_create(&CallLabels { operation: call.operation, result: call.result })
            .inc();
        self.conductorone_latency
            .get_or_create(&OperationLabels { operation: call.operation })
            .observe(call.latency.as_secs_f64());
        if call.rate_limited {
            self.conductorone_rate_limited
                .get_or_create(&OperationLabels { operation: call.operation })
                .inc();
        }
    }
}

/// Where the per-resource metrics come from: the BatonConnector caches of the running controllers
/// (`controller::store::stored` implements it for them), so that this module knows nothing of how
/// they are stored.
pub trait FleetSource: Send + Sync {
    /// Calls `f` with the namespace, name and sample of each readable resource held.
    fn each(&self, f: &mut dyn FnMut(&str, &str, &Sample));
}

/// The BatonConnector caches of the running controllers. Per-resource metrics are computed from them
/// at scrape time, so a deleted resource's series disappear with it and nothing is kept twice.
#[derive(Clone, Default)]
pub struct Fleet(std::sync::Arc<std::sync::RwLock<Vec<Box<dyn FleetSource>>>>);

impl std::fmt::Debug for Fleet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Fleet")
    }
}

impl Fleet {
    pub fn add(&self, source: impl FleetSource + 'static) {
        self.0.write().expect("fleet lock poisoned").push(Box::new(source));
    }

    /// Each readable resource of every source, until `f` fails.
    fn each(
        &self,
        f: &mut dyn FnMut(&str, &str, &Sample) -> Result<(), std::fmt::Error>,
    ) -> Result<(), std::fmt::Error> {
        let mut result = Ok(());
        for source in self.0.read().expect("fleet lock poisoned").iter() {
            source.each(&mut |namespace, name, sample| {
                if result.is_ok() {
                    result = f(namespace, name, sample);
                }
            });
        }
        result
    }
}

/// The per-resource series with their help, in the order of [`Sample`]'s values.
const SERIES: [(&str, &str); 5] = [
    ("baton_connector_ready", "1 when the connector's Ready condition is True"),
    ("baton_connector_suspended", "1 when spec.suspend is true"),
    ("baton_connector_last_sync_timestamp_seconds", "When ConductorOne last completed a sync"),
    ("baton_connector_credential_issued_timestamp_seconds", "When the managed credential in use was issued"),
    ("baton_connector_next_rotation_timestamp_seconds", "When the managed credential rotates next"),
];

/// What the per-resource metrics report of one BatonConnector, taken when the watch delivers it: the
/// controller keeps the object itself only as JSON.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    connector: String,
    /// One per [`SERIES`]; `None`: no series rather than a made-up value.
    values: [Option<f64>; 5],
    /// The reason of the Ready condition, `Unobserved` before the first report.
    ready_reason: String,
}

impl Sample {
    pub fn of(bc: &crate::api::BatonConnector) -> Self {
        use crate::api::conditions::{READY, find};
        let status = bc.status.as_ref();
        let seconds = |t: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>| {
            t.map(|t| t.0.as_second() as f64)
        };
        let credentials = status.and_then(|s| s.credentials.as_ref());
        Self {
            connector: bc.spec.connector.clone(),
            values: [
                Some(f64::from(u8::from(conditions_true(bc, READY)))),
                Some(f64::from(u8::from(bc.spec.suspend))),
                seconds(status.and_then(|s| s.sync.as_ref()?.last_completed_at.as_ref())),
                seconds(credentials.and_then(|c| c.issued_at.as_ref())),
                seconds(credentials.and_then(|c| c.next_rotation_at.as_ref())),
            ],
            ready_reason: status
                .and_then(|s| find(&s.conditions, READY))
                .map_or_else(|| crate::api::Reason::Unobserved.to_string(), |c| c.reason.clone()),
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResourceLabels {
    namespace: String,
    name: String,
    connector: String,
}

impl prometheus_client::collector::Collector for Fleet {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::DescriptorEncoder,
    ) -> Result<(), std::fmt::Error> {
        use prometheus_client::{encoding::EncodeMetric, metrics::gauge::ConstGauge};
        // Unreadable resources have no sample: they are reported on themselves instead.
        for (i, (name, help)) in SERIES.into_iter().enumerate() {
            let mut family =
                encoder.encode_descriptor(name, help, None, ConstGauge::new(0.0f64).metric_type())?;
            self.each(&mut |namespace, name, sample| {
                let Some(v) = sample.values[i] else { return Ok(()) };
                let labels = ResourceLabels {
                    namespace: namespace.to_string(),
                    name: name.to_string(),
                    connector: sample.connector.clone(),
                };
                ConstGauge::new(v).encode(family.encode_family(&labels)?)
            })?;
        }
        // One series per resource whose label is the reason, so dashboards can count connectors by
        // reason; reasons are the fixed set of docs/troubleshooting.md.
        let mut family = encoder.encode_descriptor(
            "baton_connector_ready_reason",
            "1, labelled with the reason of the connector's Ready condition (Unobserved before the first report)",
            None,
            ConstGauge::new(0.0f64).metric_type(),
        )?;
        self.each(&mut |namespace, name, sample| {
            let labels = ReasonResourceLabels {
                namespace: namespace.to_string(),
                name: name.to_string(),
                connector: sample.connector.clone(),
                reason: sample.ready_reason.clone(),
            };
            ConstGauge::new(1.0f64).encode(family.encode_family(&labels)?)
        })
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonResourceLabels {
    namespace: String,
    name: String,
    connector: String,
    reason: String,
}

fn conditions_true(bc: &crate::api::BatonConnector, type_: &str) -> bool {
    bc.status.as_ref().is_some_and(|s| crate::api::conditions::is_true(&s.conditions, type_))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{BatonConnector, BatonConnectorStatus, CredentialsStatus, SyncStatus, conditions};
    use k8s_openapi::{apimachinery::pkg::apis::meta::v1::Time, jiff::Timestamp};
    use kube::runtime::{reflector, watcher};
    use prometheus_client::registry::Registry;

    fn connector(name: &str, ready: bool, suspend: bool) -> BatonConnector {
        let mut bc = crate::resources::testing::connector(name, "okta");
        bc.spec.suspend = suspend;
        let at = |s| Time(Timestamp::from_second(s).unwrap());
        let mut ready = conditions::merge(
            &[],
            vec![conditions::Desired::new(conditions::READY, ready, crate::api::Reason::Available, "")],
            Some(1),
            &at(1),
        );
        // Whatever reason a condition carries is the label, also one another version wrote.
        ready[0].reason = "R".into();
        bc.status = Some(BatonConnectorStatus {
            conditions: ready,
            sync: Some(SyncStatus { last_completed_at: Some(at(1_700_000_000)), ..Default::default() }),
            credentials: Some(CredentialsStatus {
                next_rotation_at: Some(at(1_800_000_000)),
                ..Default::default()
            }),
            ..Default::default()
        });
        bc
    }

    #[test]
    fn per_resource_series_come_from_the_cache() {
        let (store, mut writer) = reflector::store::<crate::controller::store::stored::Stored>();
        for bc in [connector("a", true, false), connector("b", false, true)] {
            let stored = kube::core::DeserializeGuard(Ok(bc)).into();
            writer.apply_watcher_event(&watcher::Event::Apply(stored));
        }
        let fleet = Fleet::default();
        fleet.add(crate::controller::store::stored::Sampled(store));
        let mut registry = Registry::default();
        registry.register_collector(Box::new(fleet.clone()));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        let has = |line: &str| text.lines().any(|l| l == line);
        assert!(has(r#"baton_connector_ready{namespace="ns",name="a",connector="okta"} 1.0"#), "{text}");
        assert!(has(r#"baton_connector_ready{namespace="ns",name="b",connector="okta"} 0.0"#), "{text}");
        assert!(has(r#"baton_connector_suspended{namespace="ns",name="b",connector="okta"} 1.0"#), "{text}");
        assert!(has(
            r#"baton_connector_last_sync_timestamp_seconds{namespace="ns",name="a",connector="okta"} 1700000000.0"#
        ));
        assert!(has(
            r#"baton_connector_next_rotation_timestamp_seconds{namespace="ns",name="a",connector="okta"} 1800000000.0"#
        ));
        assert!(
            has(r#"baton_connector_ready_reason{namespace="ns",name="a",connector="okta",reason="R"} 1.0"#),
            "{text}"
        );
        // No credential issued: no series rather than a made-up value.
        assert!(!text.contains("baton_connector_credential_issued_timestamp_seconds{"));
    }
}
