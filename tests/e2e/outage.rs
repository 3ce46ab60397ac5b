//! The API server restarting under a running operator, as every control-plane upgrade does: the
//! operator's watches resume, what changed during the outage is acted on within the SLO (10 s after
//! the API server is ready again), rotations and onboarding finish with one live credential each,
//! and with two replicas the leader steps down before a standby can take over.
//!
//! Changes "during the outage" are made through a second API server on the same etcd (as in a highly
//! available control plane) while the operator's own API server is down.

use super::*;
use k8s_openapi::api::core::v1::Secret;

/// The recovery objective: from the API server answering `/readyz` again to the operator acting.
const SLO: Duration = Duration::from_secs(10);
const OUTAGE: Duration = Duration::from_secs(5);
const ISSUE: &str = "/api/v1/apps/connectors/credentials";

fn local(env: &mut Env) -> Option<&mut ControlPlane> {
    let cp = env.cp.as_mut();
    if cp.is_none() {
        println!("e2e: the outage cases restart the local control plane; skipped on an existing cluster");
    }
    cp
}

/// Waits for `what` within the SLO counted from `since`, and says how long it took.
async fn within_slo<T, F, Fut>(what: &str, since: std::time::Instant, check: F) -> anyhow::Result<Duration>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Option<T>>>,
{
    let left = SLO.saturating_sub(since.elapsed());
    eventually(what, left, check)
        .await
        .with_context(|| format!("{what}: not within {SLO:?} of the API server being ready"))?;
    Ok(since.elapsed())
}

fn managed_spec(app: &str, connector_id: &str) -> Value {
    json!({
        "connector": "okta",
        "secretRefs": [{"name": "okta-app"}],
        "credentials": {"managed": {"rotation": {"interval": "720h", "gracePeriod": "1s"}}},
        "conductorOne": {"apiCredentialsSecretRef": {"name": "c1-api"}, "appId": app, "connectorId": connector_id},
    })
}

/// A namespace with the connectors' Secrets and an API Secret for the fake ConductorOne.
async fn prepare(env: &mut Env, ns: &str) -> anyhow::Result<()> {
    ensure_operator(env).await?;
    namespace(&env.client, ns, json!({})).await?;
    apply_value(&env.client, credentials_secret("c1"), Some(ns)).await?;
    apply_value(&env.client, app_secret("okta-app", "one"), Some(ns)).await?;
    let principal = env.c1.register_principal(&format!("{ns}-principal"));
    let api_secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "c1-api"},
        "stringData": {"clientId": principal.client_id, "clientSecret": principal.client_secret}});
    apply_value(&env.client, api_secret, Some(ns)).await?;
    Ok(())
}

async fn managed(env: &mut Env, ns: &str, name: &str) -> anyhow::Result<String> {
    let (app, id) = (format!("app-{ns}-{name}"), format!("conn-{ns}-{name}"));
    env.c1.add_connector(&app, &id, "okta");
    env.c1.set_sync_status(&app, &id, done_sync());
    let mut bc = connector(name, "okta", json!({}));
    bc["spec"] = managed_spec(&app, &id);
    apply_value(&env.client, bc, Some(ns)).await?;
    Ok(id)
}

/// The credentials ConductorOne holds for a connector that are not revoked.
fn live_credentials(env: &Env, connector_id: &str) -> Vec<String> {
    env.c1
        .credentials()
        .into_iter()
        .filter(|c| c.connector_id == connector_id && c.revoked_at.is_none())
        .map(|c| c.id)
        .collect()
}

/// After the cases: every connector Ready, each managed one on exactly one live credential (the one
/// its status names, in the Secret revision its status names), and no credential Secret left over.
async fn converged_without_leftovers(env: &Env, ns: &str, managed: &[(&str, &str)]) -> anyhow::Result<()> {
    let connectors: Vec<BatonConnector> =
        Api::namespaced(env.client.clone(), ns).list(&Default::default()).await?.items;
    for bc in &connectors {
        wait_ready(&env.client, ns, &bc.name_any()).await?;
    }
    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), ns);
    for (name, connector_id) in managed {
        let bc = eventually(&format!("{name}: the rotation to finish"), WAIT, || async {
            let bc = get_bc(&env.client, ns, name).await?;
            let idle =
                bc.status.as_ref().and_then(|s| s.credentials.as_ref()).is_some_and(|c| c.rotation.is_none());
            Ok(idle.then_some(bc))
        })
        .await?;
        let credentials =
            bc.status.as_ref().and_then(|s| s.credentials.clone()).context("no credentials status")?;
        let live = eventually(&format!("{name}: one live credential"), WAIT, || async {
            let live = live_credentials(env, connector_id);
            Ok((live.len() == 1).then_some(live))
        })
        .await?;
        ensure!(
            credentials.credential_id.as_deref() == Some(live[0].as_str()),
            "{name}: status names {credentials:?}, live {live:?}"
        );
        let current = credentials.secret_name.context("no Secret in status")?;
        let prefix = format!("{name}-c1-credentials-");
        let revisions: Vec<String> = secrets
            .list(&Default::default())
            .await?
            .items
            .iter()
            .map(ResourceExt::name_any)
            .filter(|n| n.starts_with(&prefix))
            .collect();
        ensure!(
            revisions == [current.clone()],
            "{name}: credential Secrets {revisions:?}, status names {current}"
        );
    }
    Ok(())
}

pub(crate) async fn changes_during_an_api_server_outage_are_acted_on_within_the_slo(
    env: &mut Env,
) -> anyhow::Result<()> {
    if local(env).is_none() {
        return Ok(());
    }
    let ns = "outage-changes";
    prepare(env, ns).await?;
    for name in ["edited", "deleted"] {
        apply_value(&env.client, connector(name, "okta", json!({})), Some(ns)).await?;
    }
    apply_value(
        &env.client,
        connector("secret", "okta", json!({"secretRefs": [{"name": "okta-app"}]})),
        Some(ns),
    )
    .await?;
    let rotated = managed(env, ns, "rotated").await?;
    for name in ["edited", "deleted", "secret", "rotated"] {
        wait_ready(&env.client, ns, name).await?;
    }
    let hash_of = |bc: &BatonConnector| {
        bc.status.as_ref().and_then(|s| s.workload.as_ref()).and_then(|w| w.config_hash.clone())
    };
    let secret_hash = hash_of(&get_bc(&env.client, ns, "secret").await?);
    let first_credential =
        get_bc(&env.client, ns, "rotated").await?.status.and_then(|s| s.credentials?.credential_id);
    let issued = env.c1.count("POST", ISSUE);

    let cp = env.cp.as_mut().context("local control plane")?;
    let second = cp.add_apiserver().await?;
    // The operator's API server goes away; the cluster changes behind its back.
    let outage = {
        let cp = env.cp.as_mut().context("local control plane")?;
        let restart = cp.restart(false, OUTAGE);
        let readyz = format!("http://127.0.0.1:{}/readyz", env.operator.metrics_port);
        let changes = async {
            tokio::time::sleep(Duration::from_millis(500)).await;
            // The operator says it cannot see its cluster.
            let said = eventually(
                "the operator's /readyz to fail while its API server is down",
                Duration::from_secs(4),
                || async {
                    let response = reqwest::get(&readyz).await?;
                    let status = response.status();
                    let body = response.text().await?;
                    Ok((status == 503).then_some(body))
                },
            )
            .await?;
            ensure!(said.contains("watches down"), "/readyz said {said:?}");
            let deployments: Api<Deployment> = Api::namespaced(second.clone(), ns);
            let image = json!({"spec": {"template": {"spec": {"containers": [{"name": "baton-okta", "image": "evil:latest"}]}}}});
            deployments.patch("edited", &PatchParams::default(), &Patch::Strategic(&image)).await?;
            deployments.delete("deleted", &DeleteParams::default()).await?;
            apply_value(&second, app_secret("okta-app", "two"), Some(ns)).await?;
            let rotate = json!({"metadata": {"annotations": {"baton.conductorone.com/rotate-requested-at": "2026-12-02T12:00:00Z"}}});
            Api::<BatonConnector>::namespaced(second.clone(), ns)
                .patch("rotated", &PatchParams::default(), &Patch::Merge(&rotate))
                .await?;
            okta_app(&second, ns).await?;
            apply_value(&second, connector("created", "okta", json!({})), Some(ns)).await?;
            anyhow::Ok(())
        };
        let (ready_at, changed) = tokio::join!(restart, changes);
        changed.context("changing the cluster through the second API server")?;
        ready_at?
    };
    // Wall-clock time of readiness, for reading the operator's log (a second of slack for the
    // requests that were in flight when it came back).
    let recovered_at = k8s_openapi::jiff::Timestamp::now() + k8s_openapi::jiff::SignedDuration::from_secs(1);
    let deployments: Api<Deployment> = Api::namespaced(env.client.clone(), ns);
    let created =
        within_slo("the connector created during the outage to get its Deployment", outage, || async {
            Ok(deployments.get_opt("created").await.ok().flatten().map(|_| ()))
        })
        .await?;
    let recreated =
        within_slo("the Deployment deleted during the outage to be created again", outage, || async {
            Ok(deployments
                .get_opt("deleted")
                .await
                .ok()
                .flatten()
                .filter(|d| d.metadata.deletion_timestamp.is_none())
                .map(|_| ()))
        })
        .await?;
    let put_back = within_slo("the edited Deployment to be put back", outage, || async {
        let d = deployments.get_opt("edited").await.ok().flatten();
        let image = d.and_then(|d| d.spec.template.spec?.containers.first()?.image.clone());
        Ok((image.as_deref() == Some("public.ecr.aws/conductorone/baton-okta:latest")).then_some(()))
    })
    .await?;
    let rolled = within_slo("the changed Secret to roll its connector", outage, || async {
        let bc = get_bc(&env.client, ns, "secret").await.ok();
        Ok(bc.filter(|bc| hash_of(bc) != secret_hash).map(|_| ()))
    })
    .await?;
    let rotation =
        within_slo("the rotation requested during the outage to issue a credential", outage, || async {
            Ok((env.c1.count("POST", ISSUE) > issued).then_some(()))
        })
        .await?;
    converged_without_leftovers(env, ns, &[("rotated", &rotated)]).await?;
    env.operator.wait_ready().await?;
    let metrics = env.operator.metrics().await?;
    for kind in ["BatonConnector", "Deployment", "Secret", "Pod"] {
        let up = format!("baton_operator_watch_up{{kind=\"{kind}\"}} 1");
        ensure!(metrics.contains(&up), "no {up:?} in the metrics");
    }
    ensure!(
        metrics.lines().any(|l| l.starts_with("baton_operator_watch_restarts_total{kind=\"Deployment\"}")
            && !l.ends_with(" 0")),
        "the Deployment watch's restarts are not counted"
    );
    // Requests after the recovery go to the new API server: none fails on a connection to the old.
    let log = std::fs::read_to_string(env.operator.log_path())?;
    let after: Vec<&str> = log
        .lines()
        .filter(|l| timestamp(l).is_some_and(|t| t > recovered_at))
        .filter(|l| l.contains("SendRequest") || l.contains("Connect)"))
        .collect();
    ensure!(after.is_empty(), "requests failed after the API server was back: {after:?}");
    let now = get_bc(&env.client, ns, "rotated").await?.status.and_then(|s| s.credentials?.credential_id);
    ensure!(now != first_credential, "the rotation did not replace the credential");
    println!(
        "e2e: after the API server was ready again: created {:.1}s, recreated {:.1}s, put back {:.1}s, secret rolled {:.1}s, rotation issued {:.1}s",
        created.as_secs_f64(),
        recreated.as_secs_f64(),
        put_back.as_secs_f64(),
        rolled.as_secs_f64(),
        rotation.as_secs_f64()
    );
    Ok(())
}

/// Restarts one after another, every other one with etcd, each while a rotation and an onboarding
/// are under way; after each, a connector created at once gets its Deployment within the SLO.
pub(crate) async fn rotations_onboarding_and_creates_survive_repeated_restarts(
    env: &mut Env,
) -> anyhow::Result<()> {
    if local(env).is_none() {
        return Ok(());
    }
    let ns = "outage-repeated";
    prepare(env, ns).await?;
    let mut managed_ids = Vec::new();
    let mut slowest = Duration::ZERO;
    for round in 0..4 {
        let with_etcd = round % 2 == 1;
        // A rotation under way: the fake holds each issue call for a while.
        let name = format!("rotating-{round}");
        let id = managed(env, ns, &name).await?;
        managed_ids.push((name.clone(), id));
        // An onboarding under way: no app or connector given, the operator creates both.
        let onboard = format!("onboard-{round}");
        let mut bc = connector(&onboard, "okta", json!({}));
        bc["spec"] = json!({"connector": "okta", "secretRefs": [{"name": "okta-app"}], "credentials": {"managed": {}},
            "conductorOne": {"apiCredentialsSecretRef": {"name": "c1-api"}, "app": {"displayName": format!("Okta {round}")}}});
        apply_value(&env.client, bc, Some(ns)).await?;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let cp = env.cp.as_mut().context("local control plane")?;
        let ready_at = cp.restart(with_etcd, OUTAGE).await?;
        let fresh = format!("fresh-{round}");
        eventually("the admin client to reach the API server", SLO, || async {
            Ok(apply_value(&env.client, connector(&fresh, "okta", json!({})), Some(ns))
                .await
                .ok()
                .map(|_| ()))
        })
        .await?;
        let deployments: Api<Deployment> = Api::namespaced(env.client.clone(), ns);
        let took = within_slo(&format!("round {round}: a new connector's Deployment"), ready_at, || async {
            Ok(deployments.get_opt(&fresh).await.ok().flatten().map(|_| ()))
        })
        .await?;
        println!(
            "e2e: restart {round} ({}): new connector's Deployment {:.1}s after ready",
            if with_etcd { "API server and etcd" } else { "API server" },
            took.as_secs_f64()
        );
        slowest = slowest.max(took);
        // Onboarding finishes with exactly one app and connector, whose sync the fake then reports.
        let (app, connector_id) = eventually(&format!("{onboard}: onboarded"), WAIT, || async {
            let c1 = get_bc(&env.client, ns, &onboard)
                .await?
                .status
                .and_then(|s| s.conductor_one)
                .unwrap_or_default();
            Ok(c1.app_id.zip(c1.connector_id))
        })
        .await?;
        env.c1.set_sync_status(&app, &connector_id, done_sync());
        let apps = env.c1.apps().into_iter().filter(|a| a.display_name == format!("Okta {round}")).count();
        ensure!(apps == 1, "{onboard}: {apps} apps created");
        ensure!(env.c1.connector_ids(&app).len() == 1, "{onboard}: {:?}", env.c1.connector_ids(&app));
        managed_ids.push((onboard.clone(), connector_id));
    }
    let pairs: Vec<(&str, &str)> = managed_ids.iter().map(|(n, i)| (n.as_str(), i.as_str())).collect();
    converged_without_leftovers(env, ns, &pairs).await?;
    println!(
        "e2e: 4 restarts (2 with etcd): slowest new-connector Deployment {:.1}s after ready",
        slowest.as_secs_f64()
    );
    Ok(())
}

/// Two replicas; the API server stays away longer than the lease. The leader stops before a standby
/// may take the lease, exits (the kubelet would restart it as a standby), and exactly one replica
/// leads afterwards.
pub(crate) async fn leader_steps_down_during_an_outage_longer_than_the_lease(
    env: &mut Env,
) -> anyhow::Result<()> {
    if local(env).is_none() {
        return Ok(());
    }
    const LEASE: &str = "outage";
    let (mut leader, mut standby, _) = leader_and_standby(env, "outage", LEASE).await?;
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> =
        Api::namespaced(env.client.clone(), "baton-system");
    let ns = "outage-leader";
    namespace(&env.client, ns, json!({})).await?;
    apply_value(&env.client, credentials_secret("c1"), Some(ns)).await?;
    okta_app(&env.client, ns).await?;
    apply_value(&env.client, connector("before", "okta", json!({})), Some(ns)).await?;
    wait_ready(&env.client, ns, "before").await?;

    // Longer than the lease (15 s): the leader cannot renew, and must be gone before it expires.
    let cp = env.cp.as_mut().context("local control plane")?;
    let ready_at = cp.restart(false, Duration::from_secs(20)).await?;
    let exited = leader.wait_exit(Duration::from_secs(1)).await;
    let log = std::fs::read_to_string(leader.log_path())?;
    ensure!(
        exited.is_some(),
        "the leader is still running after an outage longer than its lease:\n{}",
        leader.log_tail(20)
    );
    ensure!(
        log.contains("no renewal of the leader-election lease within the deadline"),
        "{}",
        leader.log_tail(20)
    );
    eventually("a replica to lead again", WAIT, || async {
        let holder = leases.get(LEASE).await?.spec.and_then(|s| s.holder_identity);
        Ok(holder.filter(|h| !h.is_empty()).map(|_| ()))
    })
    .await?;
    // The standby took over only after the leader had stopped acting: its first reconcile comes
    // after the leader's last line.
    let stopped = last_timestamp(&log).context("no timestamp in the leader's log")?;
    let standby_log = std::fs::read_to_string(standby.log_path())?;
    let took_over = standby_log
        .lines()
        .find(|l| plain(l).contains("leader: leading"))
        .and_then(timestamp)
        .context("the standby never led")?;
    ensure!(took_over > stopped, "the standby led at {took_over} while the old leader acted until {stopped}");
    okta_app(&env.client, ns).await?;
    apply_value(&env.client, connector("after", "okta", json!({})), Some(ns)).await?;
    wait_ready(&env.client, ns, "after").await?;
    println!(
        "e2e: outage of 20 s with a 15 s lease: the leader stopped at {stopped}, the standby led at {took_over}; a new connector was Ready {:.1}s after the API server",
        ready_at.elapsed().as_secs_f64()
    );
    standby.stop().await;
    leader.stop().await;
    Ok(())
}

/// A text log line without terminal colour codes.
fn plain(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI sequences end with a letter.
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The RFC 3339 time stamp a text log line starts with.
fn timestamp(line: &str) -> Option<k8s_openapi::jiff::Timestamp> {
    plain(line).split_whitespace().next()?.parse().ok()
}

fn last_timestamp(log: &str) -> Option<k8s_openapi::jiff::Timestamp> {
    log.lines().rev().find_map(timestamp)
}
