//! End-to-end suite: the operator binary against a real kube-apiserver, etcd and
//! kube-controller-manager (see `support/control_plane.rs` for where they come from). Without them it
//! prints one line saying it skipped, and why.
//!
//! No kubelet runs on this control plane: `support::kubelet` plays it. The operator's pods of images
//! it does not know are marked Running and Ready, so that ReplicaSets and Deployments report
//! availability as they would on a node. Pods of `e2e.local` images are executed: the stand-in
//! connector (this binary, run again by the kubelet with `E2E_STANDIN_PLAYS` in its image
//! environment: see `main`) in the image's root with the pod's environment, volumes, user, probes and
//! limits (`inside.rs`, `broken.rs`). Executing needs root; without it those cases are reported as
//! skipped, with the reason, and counted in the summary line.

use baton_test_support as support;

mod admission;
mod adoption;
mod basics;
mod broken;
mod catalog;
mod common;
mod fleet;
mod handover;
mod helm;
mod inside;
mod install;
mod managed;
mod onboarding;
mod oneshot;
mod outage;
mod plugin;
mod pods;
mod scale;
mod sync;
mod tenants;

use std::{future::Future, path::Path, pin::Pin, process::ExitCode, time::Duration};

use anyhow::{Context as _, bail, ensure};
use baton_operator::api::BatonConnector;
use common::*;
use k8s_openapi::api::{
    apps::v1::{Deployment, ReplicaSet},
    core::v1::{Pod, ServiceAccount},
};
use kube::{
    Api, Client, ResourceExt,
    api::{DeleteParams, Patch, PatchParams, PostParams},
};
use serde_json::{Value, json};
use support::{
    cluster::{self, Operator, apply_value, apply_yaml, eventually, list, namespace},
    control_plane::{self, ControlPlane, Source},
    fake_conductorone::FakeConductorOne,
};

const WAIT: Duration = Duration::from_secs(90);

struct Env {
    client: Client,
    /// Running against an existing cluster (`BATON_E2E_KUBECONFIG`), which the suite cleans up after.
    external: bool,
    admin_kubeconfig: std::path::PathBuf,
    operator: Operator,
    /// Executes the pods of `e2e.local` images, simulates the others. Before `cp`, so that its
    /// processes are stopped before the control plane's directory, which holds its files, goes.
    kubelet: support::kubelet::Kubelet,
    cp: Option<ControlPlane>,
    c1: FakeConductorOne,
}

/// A case that cannot run here, and why: reported as skipped, never as passed.
#[derive(Debug)]
struct Skipped(String);

impl std::fmt::Display for Skipped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Skipped {}

type Case = for<'a> fn(&'a mut Env) -> Pin<Box<dyn Future<Output = anyhow::Result<()>> + 'a>>;

macro_rules! cases {
    ($($module:ident::$name:ident),* $(,)?) => {
        vec![$((stringify!($name), (|env| Box::pin($module::$name(env))) as Case)),*]
    };
}

fn main() -> ExitCode {
    // Run as a connector image's entrypoint by the suite's kubelet: be the stand-in connector.
    if let Some(plays) = support::kubelet::connector::plays() {
        return support::kubelet::connector::main(plays);
    }
    tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a runtime").block_on(suite())
}

async fn suite() -> ExitCode {
    let source = match control_plane::discover() {
        Ok(s) => s,
        Err(why) => {
            println!("e2e: SKIPPED, no control plane: {why}");
            return ExitCode::SUCCESS;
        }
    };
    let mut env = match setup(source).await {
        Ok(env) => env,
        Err(e) => {
            println!("e2e: setup failed: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let cases = all_cases();
    // Like libtest: `cargo test --test e2e -- NAME...` runs the cases whose names contain one of them.
    let filters: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    for (name, case) in cases {
        if !filters.is_empty() && !filters.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        if let Some(cp) = &mut env.cp
            && let Err(e) = cp.check_alive()
        {
            println!("test e2e::{name} ... FAILED: {e:#}");
            failed += 1;
            continue;
        }
        let started = std::time::Instant::now();
        match case(&mut env).await {
            Ok(()) => {
                passed += 1;
                println!("test e2e::{name} ... ok ({:.1}s)", started.elapsed().as_secs_f64());
            }
            Err(e) if e.downcast_ref::<Skipped>().is_some() => {
                skipped += 1;
                println!("test e2e::{name} ... SKIPPED: {e}");
            }
            Err(e) => {
                failed += 1;
                println!("test e2e::{name} ... FAILED: {e:#}");
            }
        }
    }
    if failed > 0 {
        println!("--- operator log (tail) ---\n{}", env.operator.log_tail(60));
        if let Some(cp) = env.cp.take() {
            println!("--- kube-apiserver log (tail) ---\n{}", cp.log_tail("kube-apiserver", 20));
            println!("control plane files kept in {}", cp.keep().display());
        }
    }
    env.operator.stop().await;
    if env.external
        && let Err(e) = cluster::delete_namespaces(&env.client).await
    {
        println!("e2e: could not delete the test namespaces: {e:#}");
    }
    println!("e2e: {passed} passed, {failed} failed, {skipped} skipped");
    if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

/// Every case, in the order they run.
fn all_cases() -> Vec<(&'static str, Case)> {
    cases![
        basics::status_starts_unobserved,
        basics::invalid_resources_are_refused,
        basics::examples_converge,
        basics::two_resources_for_one_connector_do_not_share_pods,
        basics::edit_makes_exactly_one_rollout,
        basics::secret_change_makes_exactly_one_rollout,
        basics::missing_secret_is_reported_then_recovers,
        basics::hand_edits_are_put_back,
        basics::restricted_namespace_admits_connector_pods,
        pods::crash_loop_shows_in_kubectl_get_within_30s,
        catalog::new_output_applies_for_every_connector,
        admission::admission_policy_refuses_definite_errors_at_apply,
        catalog::invalid_settings_are_reported_before_any_pod_starts,
        managed::managed_credentials_issue_rotate_and_revoke,
        inside::managed_connector_runs_on_the_minted_credential_through_a_rotation,
        inside::read_only_root_fails_without_the_work_volume_and_passes_with_it,
        inside::oneshot_run_writes_its_file_into_the_claim_and_a_failed_run_names_its_reason,
        broken::connectors_that_cannot_start_say_why_in_kubectl_get,
        broken::a_key_removed_under_a_running_connector_is_named_at_its_restart,
        broken::health_checks_on_an_sdk_before_v0_7_6_say_why_the_probes_fail,
        broken::a_work_volume_over_its_size_limit_evicts_the_pod,
        oneshot::oneshot_runs_on_schedule_and_on_request,
        oneshot::switching_modes_cleans_up_both_ways,
        plugin::plugin_status_describe_suspend_and_resume,
        plugin::plugin_rotate_waits_for_the_operator,
        plugin::plugin_errors_have_their_exit_codes,
        plugin::plugin_sync_runs_a_oneshot_connector_now,
        plugin::plugin_import_moves_a_hand_written_deployment_to_the_operator,
        sync::sync_status_shows_in_status_columns_events_and_metrics,
        sync::kstatus_reads_progress_current_and_failed,
        sync::sync_now_and_suspend_reach_conductorone,
        onboarding::zero_click_example_onboards_and_cleans_up,
        onboarding::zero_click_with_orphan_keeps_app_and_connector,
        fleet::unreadable_resource_does_not_block_the_fleet,
        fleet::operator_restart_writes_nothing,
        fleet::delete_garbage_collects_children,
        adoption::adoption_takes_over_a_hand_written_deployment_with_no_gap,
        adoption::adoption_with_managed_credentials_revokes_the_hand_made_one_last,
        scale::slow_or_unreachable_conductorone_never_delays_other_connectors,
        scale::shards_split_the_fleet_and_a_connector_moves_without_a_rollout,
        fleet::leader_election_lets_one_replica_reconcile,
        handover::sigterm_finishes_the_in_flight_reconcile_then_hands_over,
        install::readme_install_and_worked_example_run_as_written,
        install::namespaced_install_reads_no_secret_outside_its_namespaces,
        tenants::a_team_that_cannot_read_the_principal_gets_managed_credentials_through_a_cluster_tenant,
        tenants::a_tenant_whose_conductorone_refuses_everything_never_delays_another_tenant,
        helm::chart_readme_runs_as_written_with_a_real_helm,
        outage::changes_during_an_api_server_outage_are_acted_on_within_the_slo,
        outage::rotations_onboarding_and_creates_survive_repeated_restarts,
        outage::leader_steps_down_during_an_outage_longer_than_the_lease,
    ]
}

async fn setup(source: Source) -> anyhow::Result<Env> {
    let (cp, admin, admin_kubeconfig) = match source {
        Source::Binaries { etcd, apiserver, controller_manager } => {
            let cp = ControlPlane::start(&etcd, &apiserver, &controller_manager).await?;
            let client = cp.client().await?;
            let path = cp.admin_kubeconfig.clone();
            (Some(cp), client, path)
        }
        Source::Kubeconfig(path) => {
            let config = kube::Config::from_custom_kubeconfig(
                kube::config::Kubeconfig::read_from(&path)?,
                &Default::default(),
            )
            .await?;
            (None, Client::try_from(config)?, path)
        }
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let read = |p: &str| std::fs::read_to_string(root.join(p)).with_context(|| format!("reading {p}"));
    // Every CRD: the operator watches tenants too, and is not ready while a watch fails.
    for crd in ["batonconnectors", "conductoronetenants", "clusterconductoronetenants"] {
        apply_yaml(&admin, &read(&format!("crds/baton.conductorone.com_{crd}.yaml"))?, None).await?;
    }
    eventually("the CRD to be established", WAIT, || {
        let admin = admin.clone();
        async move {
            let api: Api<BatonConnector> = Api::all(admin);
            Ok(api.list(&Default::default()).await.ok().map(|_| ()))
        }
    })
    .await?;
    apply_yaml(&admin, &read("config/manager/namespace.yaml")?, None).await?;
    for f in [
        "service_account.yaml",
        "cluster_role.yaml",
        "cluster_role_binding.yaml",
        "leader_election_role.yaml",
    ] {
        apply_yaml(&admin, &read(&format!("config/rbac/{f}"))?, None).await?;
    }

    // The operator runs with a token of its own ServiceAccount, so an RBAC gap fails the suite.
    let sa: Api<ServiceAccount> = Api::namespaced(admin.clone(), "baton-system");
    let request = serde_json::from_value(json!({"spec": {"audiences": [], "expirationSeconds": 7200}}))?;
    let token = sa.create_token_request("baton-operator", &PostParams::default(), &request).await?;
    let token = token
        .status
        .context("token request without status")?
        .token
        .context("token request without a token")?;
    let work = match &cp {
        Some(cp) => cp.dir().to_path_buf(),
        None => std::env::temp_dir(),
    };
    let kubeconfig = work.join("operator.kubeconfig");
    match &cp {
        Some(cp) => std::fs::write(&kubeconfig, cp.kubeconfig_with_token(&token))?,
        None => std::fs::write(&kubeconfig, token_kubeconfig(&admin_kubeconfig, &token)?)?,
    }
    let kubelet = support::kubelet::Kubelet::start(
        admin.clone(),
        "app.kubernetes.io/managed-by=baton-operator",
        work.join("kubelet"),
    );
    let operator =
        Operator::new(Path::new(env!("CARGO_BIN_EXE_baton-operator")), kubeconfig, work.join("operator.log"));
    let c1 = FakeConductorOne::start().await;
    let external = cp.is_none();
    Ok(Env { client: admin, external, operator, cp, c1, admin_kubeconfig, kubelet })
}

/// A kubeconfig for the cluster of `admin`'s current context that authenticates with `token`.
fn token_kubeconfig(admin: &Path, token: &str) -> anyhow::Result<String> {
    let config: serde_yaml::Value = serde_yaml::from_str(&std::fs::read_to_string(admin)?)?;
    let current = config["current-context"].as_str().context("kubeconfig without current-context")?;
    let find = |list: &str, name: &str| {
        config[list].as_sequence().and_then(|l| l.iter().find(|e| e["name"].as_str() == Some(name)).cloned())
    };
    let context = find("contexts", current).context("current context not found")?;
    let cluster_name = context["context"]["cluster"].as_str().context("context without cluster")?;
    let cluster = find("clusters", cluster_name).context("cluster not found")?;
    let out = json!({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [serde_json::to_value(&cluster)?],
        "users": [{"name": "baton-operator", "user": {"token": token}}],
        "contexts": [{"name": "baton-operator", "context": {"cluster": cluster_name, "user": "baton-operator"}}],
        "current-context": "baton-operator",
    });
    Ok(serde_yaml::to_string(&out)?)
}
