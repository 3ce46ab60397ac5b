//! Prometheus metrics of the operator itself. Every label takes a value from a fixed, small set:
//! never an object name or an error string.

use std::sync::atomic::AtomicI64;

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
