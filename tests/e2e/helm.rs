//! The chart with a real Helm on a fresh control plane: every command of
//! `charts/baton-operator/README.md`, extracted from it and run as written and in order (install,
//! adoption of the CRD, upgrade to watched namespaces, upgrade to two replicas, lint and template,
//! uninstall), with checks of what each one must have done. Without a helm binary (`BATON_HELM`,
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

/// A block that the suite does not run, with the reason it prints.
fn skip_reason(block: &str) -> Option<&'static str> {
    if block.contains("serviceMonitor.enabled=true") {
        Some("needs the Prometheus Operator's monitoring.coreos.com CRDs; tests/chart.rs renders it")
    } else if block.lines().any(|l| l.trim_start().starts_with("cp ")) {
        Some("would write into the checkout; tests/crd.rs checks that the copy is current")
    } else {
        None
    }
}

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
    let c = fresh.client.clone();
    let mut operator: Option<Operator> = None;
    let mut seen = Vec::new();
    for block in &blocks {
        if let Some(why) = skip_reason(block) {
            println!("e2e: chart README block skipped ({why}):\n{block}");
            continue;
        }
        if block.contains("helm uninstall") {
            // As the README says: delete the connectors while the operator still runs.
            fresh.sh("kubectl delete batonconnectors --all -A --wait=true --timeout=60s").await?;
            if let Some(mut op) = operator.take() {
                op.stop().await;
            }
        }
        fresh.sh(block).await?;
        if block.contains("helm install") {
            seen.push("install");
            fresh.sh(&format!("helm status {NAME} -n {NS}")).await?;
            Api::<Deployment>::namespaced(c.clone(), NS).get(NAME).await?;
            Api::<ClusterRole>::all(c.clone()).get(NAME).await?;
            fresh.pod_admitted(NS, &format!("app.kubernetes.io/instance={NAME}")).await?;
        } else if block.contains("watchNamespaces=") {
            seen.push("namespaced upgrade");
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
                "--reuse-values lost watchNamespaces"
            );
            Api::<PodDisruptionBudget>::namespaced(c.clone(), NS).get(NAME).await?;
            Api::<Role>::namespaced(c.clone(), NS).get(&format!("{NAME}-leader-election")).await?;
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
        seen == ["install", "namespaced upgrade", "two replicas", "uninstall", "crd deleted"],
        "the chart README's commands are not the ones this case checks (seen: {seen:?})"
    );
    Ok(())
}
