//! The chart with a real Helm on a fresh control plane: every command of
//! `charts/baton-operator/README.md`, extracted from it and run as written and in order (install,
//! adoption of the CRD, upgrade to watched namespaces, upgrade to two replicas, the monitoring
//! upgrade (on stand-ins of the Prometheus Operator's CRDs), lint and template, uninstall), with
//! checks of what each one must have done; after the namespaced upgrade, every later upgrade must
//! leave the operator without a ClusterRole. Marked blocks are printed as skipped. Without a helm binary (`BATON_HELM`,
//! else `helm` on PATH) it says that it skipped.

use super::*;
use install::{Fresh, helm_binary, sh_blocks};
use k8s_openapi::api::{
    policy::v1::PodDisruptionBudget,
    rbac::v1::{ClusterRole, Role},
};

const NAME: &str = "baton-operator";
const NS: &str = "baton-system";
const CRD: &str = "batonconnectors.baton.conductorone.com";

/// Stand-ins of the Prometheus Operator's CRDs, so that the chart README's monitoring example can be
/// applied: any spec is accepted (the chart tests check what the chart renders into them).
const MONITORING_CRDS: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: servicemonitors.monitoring.coreos.com
spec:
  group: monitoring.coreos.com
  scope: Namespaced
  names: {kind: ServiceMonitor, plural: servicemonitors, singular: servicemonitor, listKind: ServiceMonitorList}
  versions:
    - name: v1
      served: true
      storage: true
      schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: prometheusrules.monitoring.coreos.com
spec:
  group: monitoring.coreos.com
  scope: Namespaced
  names: {kind: PrometheusRule, plural: prometheusrules, singular: prometheusrule, listKind: PrometheusRuleList}
  versions:
    - name: v1
      served: true
      storage: true
      schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
"#;

fn missing(r: &Result<impl Sized, kube::Error>) -> bool {
    matches!(r, Err(kube::Error::Api(e)) if e.code == 404)
}

pub(crate) async fn chart_readme_runs_as_written_with_a_real_helm(_env: &mut Env) -> anyhow::Result<()> {
    // Runs on a control plane of its own, not the suite's.
    if helm_binary().is_none() {
        println!(
            "e2e::chart_readme_runs_as_written_with_a_real_helm: SKIPPED, no helm binary (BATON_HELM unset, none on PATH; .ci/helm.sh installs one)"
        );
        return Ok(());
    }
    let Some(fresh) = Fresh::start("chart_readme_runs_as_written_with_a_real_helm").await? else {
        return Ok(());
    };
    println!(
        "e2e: chart tests with {}",
        fresh.sh("helm version --short").await?.lines().last().unwrap_or_default()
    );
    let readme = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("charts/baton-operator/README.md"),
    )?;
    let blocks = sh_blocks(&readme, None);
    // After the namespaced upgrade, every later upgrade must keep the operator to its namespaces.
    let mut namespaced = false;
    let c = fresh.client.clone();
    let mut operator: Option<Operator> = None;
    let mut seen = Vec::new();
    for block in &blocks {
        if block.contains("serviceMonitor.enabled=true") {
            fresh.sh(&format!("kubectl apply -f - <<'EOF'\n{MONITORING_CRDS}\nEOF\nkubectl wait --for=condition=Established crd/servicemonitors.monitoring.coreos.com crd/prometheusrules.monitoring.coreos.com")).await?;
        }
        if block.contains("helm uninstall") {
            // As the README says: delete the connectors while the operator still runs.
            fresh.sh("kubectl delete batonconnectors --all -A --wait=true --timeout=60s").await?;
            if let Some(mut op) = operator.take() {
                op.stop().await;
            }
        }
        fresh.sh(block).await?;
        if namespaced && block.contains("helm upgrade") {
            // No upgrade of the README may widen the operator's access: a value dropped on the way
            // would bring back the ClusterRole that reads every Secret.
            ensure!(
                missing(&Api::<ClusterRole>::all(c.clone()).get(NAME).await),
                "after `{}` the operator has a ClusterRole again",
                block.lines().next().unwrap_or_default()
            );
            let d = Api::<Deployment>::namespaced(c.clone(), NS).get(NAME).await?;
            let env = d.spec.template.spec.map(|p| p.containers[0].env.clone().unwrap_or_default());
            let watched = env
                .unwrap_or_default()
                .into_iter()
                .find(|e| e.name == "WATCH_NAMESPACES")
                .and_then(|e| e.value);
            ensure!(
                watched.as_deref() == Some("identity,connectors"),
                "after `{}` WATCH_NAMESPACES is {watched:?}",
                block.lines().next().unwrap_or_default()
            );
        }
        if block.contains("helm install") {
            seen.push("install");
            fresh.sh(&format!("helm status {NAME} -n {NS}")).await?;
            Api::<Deployment>::namespaced(c.clone(), NS).get(NAME).await?;
            Api::<ClusterRole>::all(c.clone()).get(NAME).await?;
            fresh.pod_admitted(NS, &format!("app.kubernetes.io/instance={NAME}")).await?;
        } else if block.contains("watchNamespaces=") {
            seen.push("namespaced upgrade");
            namespaced = true;
            ensure!(
                missing(&Api::<ClusterRole>::all(c.clone()).get(NAME).await),
                "watchNamespaces set, yet the ClusterRole is still there"
            );
            for ns in ["identity", "connectors"] {
                Api::<Role>::namespaced(c.clone(), ns).get(NAME).await?;
            }
            let sa = format!("system:serviceaccount:{NS}:{NAME}");
            let out =
                fresh.sh(&format!("kubectl auth can-i get secrets -n default --as={sa} || true")).await?;
            ensure!(
                out.lines().any(|l| l.trim() == "no"),
                "the chart's operator may read Secrets in default: {out}"
            );
            // The operator with the chart's ServiceAccount and exactly these Roles.
            let args = ["--namespace".to_string(), "identity,connectors".to_string()];
            operator = Some(fresh.operator_as(NS, NAME, "chart-operator", &args).await?);
            apply_value(&c, credentials_secret("c1"), Some("identity")).await?;
            okta_app(&c, "identity").await?;
            apply_value(&c, connector("okta", "okta", json!({})), Some("identity")).await?;
            wait_ready(&c, "identity", "okta").await?;
        } else if block.contains("replicaCount=2") {
            seen.push("two replicas");
            let d = Api::<Deployment>::namespaced(c.clone(), NS).get(NAME).await?;
            let spec = d.spec;
            ensure!(spec.replicas == Some(2), "replicas: {:?}", spec.replicas);
            let env =
                spec.template.spec.as_ref().and_then(|p| p.containers[0].env.clone()).unwrap_or_default();
            let get = |n: &str| env.iter().find(|e| e.name == n).and_then(|e| e.value.clone());
            ensure!(get("LEADER_ELECTION").as_deref() == Some("true"), "leader election is not on");
            ensure!(
                get("WATCH_NAMESPACES").as_deref() == Some("identity,connectors"),
                "--reset-then-reuse-values lost watchNamespaces"
            );
            Api::<PodDisruptionBudget>::namespaced(c.clone(), NS).get(NAME).await?;
            Api::<Role>::namespaced(c.clone(), NS).get(&format!("{NAME}-leader-election")).await?;
        } else if block.contains("serviceMonitor.enabled=true") {
            seen.push("monitoring");
            Api::<kube::api::DynamicObject>::namespaced_with(
                c.clone(),
                NS,
                &kube::api::ApiResource::from_gvk(&kube::api::GroupVersionKind::gvk(
                    "monitoring.coreos.com",
                    "v1",
                    "ServiceMonitor",
                )),
            )
            .get(NAME)
            .await
            .context("the monitoring upgrade made no ServiceMonitor")?;
        } else if block.contains("helm uninstall") {
            seen.push("uninstall");
            ensure!(
                missing(&Api::<Deployment>::namespaced(c.clone(), NS).get(NAME).await),
                "helm uninstall left the Deployment"
            );
            ensure!(
                missing(&Api::<Role>::namespaced(c.clone(), "identity").get(NAME).await),
                "helm uninstall left a Role"
            );
            fresh
                .sh(&format!("kubectl get crd {CRD}"))
                .await
                .context("helm uninstall removed the CRD (it is kept)")?;
        } else if block.contains("kubectl delete crd") {
            seen.push("crd deleted");
        }
    }
    ensure!(
        seen == ["install", "namespaced upgrade", "two replicas", "monitoring", "uninstall", "crd deleted"],
        "the chart README's commands are not the ones this case checks (seen: {seen:?})"
    );
    Ok(())
}
