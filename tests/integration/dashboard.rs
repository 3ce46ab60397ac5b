//! The Grafana dashboard (`deploy/grafana/baton-fleet.json`): a dashboard Grafana can import, shipped
//! unchanged in the chart, querying only metrics the operator exposes.

use std::collections::BTreeSet;

use baton_operator::{
    conductorone::CallOutcome,
    metrics::{
        ApplyLabels, Fleet, Metrics, Outcome, OutcomeLabels, ReasonLabels,
        tenants::{TenantMetrics, TenantSample},
    },
};
use prometheus_client::registry::Registry;
use serde_json::Value;

fn read(path: &str) -> String {
    std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn dashboard() -> Value {
    serde_json::from_str(&read("deploy/grafana/baton-fleet.json")).expect("the dashboard is JSON")
}

/// Every panel, including those nested in collapsed rows.
fn panels(d: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for p in d["panels"].as_array().expect("panels") {
        out.push(p);
        out.extend(p["panels"].as_array().into_iter().flatten());
    }
    out
}

/// Every PromQL expression: panel targets and query variables.
fn expressions(d: &Value) -> Vec<String> {
    let mut exprs: Vec<String> = panels(d)
        .iter()
        .flat_map(|p| p["targets"].as_array().into_iter().flatten())
        .filter_map(|t| t["expr"].as_str().map(String::from))
        .collect();
    for v in d["templating"]["list"].as_array().into_iter().flatten().filter(|v| v["type"] == "query") {
        exprs.extend(v["query"]["query"].as_str().or(v["query"].as_str()).map(String::from));
    }
    exprs
}

/// The sample names the operator exposes: each family's TYPE line, with the suffixes its samples
/// carry (counters `_total`, histograms `_bucket`/`_sum`/`_count`). A labelled family is encoded
/// only once it has a series, so each gets one, the way the operator's own code paths make them.
fn exposed() -> BTreeSet<String> {
    let mut registry = Registry::default();
    let metrics = Metrics::register(&mut registry);
    metrics.record_call(&CallOutcome {
        operation: "get_connector",
        result: "RateLimited",
        status: Some(429),
        latency: std::time::Duration::from_millis(5),
        attempt: 0,
        rate_limited: true,
    });
    metrics.reconciliations.get_or_create(&OutcomeLabels { outcome: Outcome::success }).inc();
    metrics.reconcile_errors.get_or_create(&ReasonLabels { reason: "SecretNotFound" }).inc();
    metrics.applies.get_or_create(&ApplyLabels { kind: "Deployment", cause: "create" }).inc();
    registry.register_collector(Box::new(Fleet::default()));
    // The per-tenant series exist once there is a tenant.
    let tenant =
        TenantSample { kind: "ClusterConductorOneTenant", name: "prod".into(), ..Default::default() };
    registry.register_collector(Box::new(TenantMetrics(std::sync::Arc::new(vec![tenant]))));
    registry.register_collector(Box::new(baton_operator::controller::runtime::watch_health::WatchMetrics(
        Default::default(),
    )));
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    let mut names = BTreeSet::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("# TYPE ") else { continue };
        let (name, kind) = rest.split_once(' ').unwrap();
        match kind {
            "counter" => {
                names.insert(format!("{name}_total"));
            }
            "histogram" => {
                for suffix in ["_bucket", "_sum", "_count"] {
                    names.insert(format!("{name}{suffix}"));
                }
            }
            _ => {
                names.insert(name.to_string());
            }
        }
    }
    names
}

/// Metric names in a PromQL expression. Every metric of this project starts with `baton_`, and no
/// label, function or keyword does, so those identifiers are exactly the metric names queried.
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut current = String::new();
    for c in expr.chars().chain([' ']) {
        if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
            current.push(c);
        } else {
            if current.starts_with("baton_") {
                names.push(current.clone());
            }
            current.clear();
        }
    }
    names
}

#[test]
fn the_chart_ships_the_dashboard_unchanged() {
    assert_eq!(
        read("charts/baton-operator/files/baton-fleet.json"),
        read("deploy/grafana/baton-fleet.json"),
        "copy deploy/grafana/baton-fleet.json to charts/baton-operator/files/"
    );
}

#[test]
fn the_dashboard_is_importable() {
    let d = dashboard();
    assert_eq!(d["uid"], "baton-fleet");
    assert!(d["title"].as_str().is_some_and(|t| !t.is_empty()));
    assert!(d["schemaVersion"].as_u64().is_some_and(|v| v >= 36), "schemaVersion: {}", d["schemaVersion"]);
    let panels = panels(&d);
    let mut ids = BTreeSet::new();
    for p in &panels {
        let id = p["id"].as_u64().expect("every panel has a numeric id");
        assert!(ids.insert(id), "panel id {id} twice");
        let grid = &p["gridPos"];
        for k in ["h", "w", "x", "y"] {
            assert!(grid[k].is_u64(), "panel {id} gridPos.{k}");
        }
        assert!(
            grid["x"].as_u64().unwrap() + grid["w"].as_u64().unwrap() <= 24,
            "panel {id} is wider than the grid"
        );
        if p["type"] == "row" {
            continue;
        }
        assert!(p["title"].as_str().is_some_and(|t| !t.is_empty()), "panel {id} has no title");
        let targets = p["targets"].as_array().unwrap_or_else(|| panic!("panel {id} has no targets"));
        assert!(!targets.is_empty(), "panel {id} has no targets");
        let mut refs = BTreeSet::new();
        for t in targets {
            assert!(t["expr"].as_str().is_some_and(|e| !e.is_empty()), "panel {id}: a target without expr");
            assert!(refs.insert(t["refId"].as_str().unwrap().to_string()), "panel {id}: refId twice");
        }
    }
    assert!(panels.iter().filter(|p| p["type"] != "row").count() >= 10, "too few panels to cover the brief");
    let variables: Vec<&str> =
        d["templating"]["list"].as_array().unwrap().iter().filter_map(|v| v["name"].as_str()).collect();
    for used in ["datasource", "namespace", "worst"] {
        assert!(variables.contains(&used), "variable ${used} used but not defined");
    }
}

#[test]
fn every_queried_metric_is_exposed_by_the_operator() {
    let exposed = exposed();
    // The parser sees what it should: a sanity check that fails if exposure parsing breaks.
    for known in [
        "baton_operator_reconciliations_total",
        "baton_operator_reconcile_duration_seconds_bucket",
        "baton_operator_objects_in_backoff",
        "baton_connector_ready",
        "baton_connector_ready_reason",
    ] {
        assert!(exposed.contains(known), "{known} not found in {exposed:?}");
    }
    let exprs = expressions(&dashboard());
    let queried: BTreeSet<String> = exprs.iter().flat_map(|e| metric_names(e)).collect();
    assert!(queried.len() >= 10, "expected the dashboard to query most metrics, found {queried:?}");
    let unknown: Vec<_> = queried.difference(&exposed).collect();
    assert!(unknown.is_empty(), "the dashboard queries metrics the operator does not expose: {unknown:?}");
}

/// Issue 17: the dashboard covers tenants: their readiness, their ConductorOne calls, errors and
/// 429s, and how much of its budget each spends.
#[test]
fn the_dashboard_has_tenant_panels() {
    let d = dashboard();
    let panels = panels(&d);
    let row = panels.iter().find(|p| p["type"] == "row" && p["title"] == "Tenants").expect("a Tenants row");
    let y = row["gridPos"]["y"].as_u64().unwrap();
    let next_row = panels
        .iter()
        .filter(|p| p["type"] == "row")
        .filter_map(|p| p["gridPos"]["y"].as_u64())
        .filter(|&ry| ry > y)
        .min()
        .unwrap_or(u64::MAX);
    let exprs: Vec<String> = panels
        .iter()
        .filter(|p| p["type"] != "row")
        .filter(|p| p["gridPos"]["y"].as_u64().is_some_and(|py| py > y && py < next_row))
        .flat_map(|p| p["targets"].as_array().into_iter().flatten())
        .filter_map(|t| t["expr"].as_str().map(String::from))
        .collect();
    let queried: BTreeSet<String> = exprs.iter().flat_map(|e| metric_names(e)).collect();
    for wanted in [
        "baton_tenant_ready",
        "baton_tenant_ready_reason",
        "baton_tenant_connectors",
        "baton_tenant_conductorone_calls_total",
        "baton_tenant_conductorone_errors_total",
        "baton_tenant_conductorone_rate_limited_total",
        "baton_tenant_budget_requests_per_second",
    ] {
        assert!(queried.contains(wanted), "the Tenants row does not chart {wanted}: {queried:?}");
    }
    // Budget use is calls over budget, per tenant.
    assert!(
        exprs.iter().any(|e| e.contains("baton_tenant_conductorone_calls_total")
            && e.contains("/ on(kind, namespace, name)")
            && e.contains("baton_tenant_budget_requests_per_second")),
        "{exprs:?}"
    );
    // Labels: a tenant is its kind, namespace and name; nothing else splits the tenant panels.
    for e in &exprs {
        if let Some(by) = e.split("by (").nth(1) {
            assert!(by.starts_with("kind, namespace, name)"), "{e}");
        }
    }
}

#[test]
fn metric_names_are_read_from_promql() {
    assert_eq!(
        metric_names(r#"sum by (reason) (rate(baton_operator_reconcile_errors_total{reason!="x"}[5m]))"#),
        ["baton_operator_reconcile_errors_total"]
    );
    assert_eq!(
        metric_names("time() - baton_connector_last_sync_timestamp_seconds{namespace=~\"$namespace\"}"),
        ["baton_connector_last_sync_timestamp_seconds"]
    );
    assert_eq!(metric_names("baton_nope_total"), ["baton_nope_total"]);
}

/// The example alerts and the chart's PrometheusRule query only metrics the operator exposes, and
/// both alert on a watch that does not recover.
#[test]
fn every_alerted_metric_is_exposed_by_the_operator() {
    let exposed = exposed();
    for path in ["deploy/prometheus/alerts.yaml", "charts/baton-operator/templates/prometheusrule.yaml"] {
        let text = read(path);
        let exprs: Vec<String> = text
            .split("expr:")
            .skip(1)
            .map(|rest| rest.split("for:").next().unwrap_or_default().to_string())
            .collect();
        assert!(exprs.len() >= 5, "{path}: expected its alert expressions, found {}", exprs.len());
        let queried: BTreeSet<String> = exprs.iter().flat_map(|e| metric_names(e)).collect();
        let unknown: Vec<_> = queried.difference(&exposed).collect();
        assert!(unknown.is_empty(), "{path} alerts on metrics the operator does not expose: {unknown:?}");
        assert!(
            queried.contains("baton_operator_watch_up"),
            "{path} has no alert for a watch that does not recover"
        );
    }
}
