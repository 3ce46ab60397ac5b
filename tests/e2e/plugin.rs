//! `kubectl baton` (the built plugin binary) against the control plane, with the suite's admin
//! kubeconfig, as a person would run it.

use std::path::{Path, PathBuf};

use super::*;

pub(crate) struct Run {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

/// Runs the plugin off the async runtime, so a `--wait` does not hold up the suite's kubelet.
pub(crate) async fn plugin(kubeconfig: &Path, args: &[&str]) -> anyhow::Result<Run> {
    let kubeconfig = kubeconfig.to_path_buf();
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_kubectl-baton"))
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(&args)
            .env_remove("KUBECONFIG")
            .output()
    })
    .await??;
    Ok(Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout)?,
        stderr: String::from_utf8(out.stderr)?,
    })
}

async fn ok(env: &Env, args: &[&str]) -> anyhow::Result<String> {
    let run = plugin(&env.admin_kubeconfig, args).await?;
    ensure!(run.code == 0, "kubectl baton {args:?} exited {}: {}{}", run.code, run.stderr, run.stdout);
    Ok(run.stdout)
}

pub(crate) async fn plugin_status_describe_suspend_and_resume(env: &mut Env) -> anyhow::Result<()> {
    let ns = "plugin-fleet";
    ready_connector(env, ns, "ok", json!({})).await?;
    ready_connector(env, ns, "paused", json!({})).await?;
    apply_value(
        &env.client,
        connector("broken", "okta", json!({"secretRefs": [{"name": "absent"}]})),
        Some(ns),
    )
    .await?;
    eventually("broken to report SecretNotFound", WAIT, || async {
        let bc = get_bc(&env.client, ns, "broken").await?;
        Ok((condition(&bc, "Ready") == Some(("False".into(), "SecretNotFound".into()))).then_some(()))
    })
    .await?;

    let out = ok(env, &["suspend", "paused", "-n", ns, "--wait", "--timeout", "60s"]).await?;
    ensure!(out.contains("plugin-fleet/paused: spec.suspend false -> true"), "{out}");
    ensure!(out.contains("plugin-fleet/paused: handled by the operator"), "{out}");
    let paused = get_bc(&env.client, ns, "paused").await?;
    ensure!(paused.spec.suspend, "suspend did not set spec.suspend");
    ensure!(condition(&paused, "Suspended") == Some(("True".into(), "Suspended".into())), "{paused:?}");

    let json: Value = serde_json::from_str(&ok(env, &["status", "-n", ns, "-o", "json"]).await?)?;
    ensure!(json["total"] == 3, "{json:#}");
    ensure!(json["suspended"] == 1, "{json:#}");
    ensure!(json["byReason"]["SecretNotFound"] == 1 && json["byReason"]["Suspended"] == 1, "{json:#}");
    ensure!(json["byReady"]["False"] == 1 && json["byReady"]["True"] == 2, "{json:#}");
    let unhealthy = json["unhealthy"].as_array().context("no unhealthy list")?;
    ensure!(unhealthy.len() == 1 && unhealthy[0]["name"] == "broken", "{json:#}");
    ensure!(unhealthy[0]["reason"] == "SecretNotFound", "{json:#}");
    ensure!(unhealthy[0]["message"].as_str().is_some_and(|m| m.contains("absent")), "{json:#}");

    let text = ok(env, &["status", "-n", ns]).await?;
    ensure!(text.contains("BatonConnectors in namespace plugin-fleet: 3"), "{text}");
    ensure!(text.contains("Suspended:  1") && text.contains("Unhealthy: 1"), "{text}");
    ensure!(
        text.lines().any(|l| l.starts_with(ns) && l.contains("broken") && l.contains("SecretNotFound")),
        "{text}"
    );
    // -A sees at least this namespace's three.
    let all: Value = serde_json::from_str(&ok(env, &["status", "-A", "-o", "json"]).await?)?;
    ensure!(all["total"].as_u64().is_some_and(|n| n >= 3), "{all:#}");

    let described = ok(env, &["describe", "ok", "-n", ns]).await?;
    for expected in
        ["Name:       plugin-fleet/ok", "Ready", "WorkloadAvailable", "Deployment/ok: 1/1 available"]
    {
        ensure!(described.contains(expected), "describe lacks {expected:?}:\n{described}");
    }
    let described = ok(env, &["describe", "broken", "-n", ns]).await?;
    ensure!(described.contains("SecretNotFound"), "{described}");
    ensure!(
        described.lines().any(|l| l.contains("Warning") && l.contains("SecretNotFound")),
        "no event:\n{described}"
    );

    let out = ok(env, &["resume", "paused", "-n", ns, "--wait", "--timeout", "60s"]).await?;
    ensure!(out.contains("spec.suspend true -> false") && out.contains("handled by the operator"), "{out}");
    let resumed = get_bc(&env.client, ns, "paused").await?;
    ensure!(condition(&resumed, "Suspended") == Some(("False".into(), "NotSuspended".into())));

    // --all with a selector touches the matching connectors only.
    for name in ["ok", "paused"] {
        kubectl(env, &["label", "batonconnector", name, "-n", ns, "tier=a"])?;
    }
    let out = ok(env, &["restart", "--all", "-l", "tier=a", "-n", ns, "--wait", "--timeout", "60s"]).await?;
    for name in ["ok", "paused"] {
        ensure!(out.contains(&format!("{ns}/{name}: baton.conductorone.com/restart-requested-at=")), "{out}");
        ensure!(out.contains(&format!("{ns}/{name}: handled by the operator")), "{out}");
    }
    let broken = get_bc(&env.client, ns, "broken").await?;
    ensure!(!broken.annotations().contains_key("baton.conductorone.com/restart-requested-at"), "{out}");
    Ok(())
}

pub(crate) async fn plugin_rotate_waits_for_the_operator(env: &mut Env) -> anyhow::Result<()> {
    ensure_operator(env).await?;
    let ns = "plugin-managed";
    let (app, connector_id) = ("app-plugin", "conn-plugin");
    env.c1.add_connector(app, connector_id, "okta");
    env.c1.set_sync_status(app, connector_id, done_sync());
    let principal = env.c1.register_principal("plugin-operator");
    namespace(&env.client, ns, json!({})).await?;
    let api_secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "c1-api"},
        "stringData": {"clientId": principal.client_id, "clientSecret": principal.client_secret}});
    apply_value(&env.client, api_secret, Some(ns)).await?;
    okta_app(&env.client, ns).await?;
    let mut bc = connector("okta", "okta", json!({}));
    bc["spec"] = json!({
        "connector": "okta",
        "secretRefs": [{"name": "okta-app"}],
        "credentials": {"managed": {"rotation": {"interval": "720h", "gracePeriod": "1s"}}},
        "conductorOne": {"apiCredentialsSecretRef": {"name": "c1-api"}, "appId": app, "connectorId": connector_id},
    });
    apply_value(&env.client, bc, Some(ns)).await?;
    let before = wait_ready(&env.client, ns, "okta").await?;
    let first =
        before.status.and_then(|s| s.credentials).and_then(|c| c.credential_id).context("no credential")?;

    let status: Value = serde_json::from_str(&ok(env, &["status", "-n", ns, "-o", "json"]).await?)?;
    ensure!(
        status["rotationsDue"].as_array().is_some_and(Vec::is_empty),
        "720h is not within 7 days: {status:#}"
    );

    let out = ok(env, &["rotate", "okta", "-n", ns, "--wait", "--timeout", "90s"]).await?;
    ensure!(
        out.contains("baton.conductorone.com/rotate-requested-at=") && out.contains("(was unset)"),
        "{out}"
    );
    ensure!(out.contains("plugin-managed/okta: handled by the operator"), "{out}");
    let value = out
        .split("rotate-requested-at=")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .context("no value printed")?
        .to_string();
    let after = get_bc(&env.client, ns, "okta").await?;
    ensure!(after.annotations().get("baton.conductorone.com/rotate-requested-at") == Some(&value));
    let status = after.status.context("no status")?;
    ensure!(
        status.handled_requests.rotate.as_deref() == Some(value.as_str()),
        "{:?}",
        status.handled_requests
    );
    // Handled means the rotation started (or finished) with a new credential issued.
    let credentials = status.credentials.context("no credentials status")?;
    let started =
        credentials.rotation.is_some() || credentials.credential_id.as_deref() != Some(first.as_str());
    ensure!(started, "rotate handled but nothing rotates: {credentials:?}");
    ensure!(!out.contains("secret-token") && !out.contains(principal.client_secret.as_str()), "{out}");
    Ok(())
}

pub(crate) async fn plugin_errors_have_their_exit_codes(env: &mut Env) -> anyhow::Result<()> {
    ensure_operator(env).await?;
    let ns = "plugin-errors";
    namespace(&env.client, ns, json!({})).await?;
    let run = plugin(&env.admin_kubeconfig, &["describe", "nope", "-n", ns]).await?;
    ensure!(run.code == 5, "unknown name: exit {} {}", run.code, run.stderr);
    ensure!(run.stderr.contains("\"nope\" not found in namespace \"plugin-errors\""), "{}", run.stderr);
    let run = plugin(&env.admin_kubeconfig, &["rotate", "nope", "-n", ns, "--wait"]).await?;
    ensure!(run.code == 5, "unknown name on rotate: exit {} {}", run.code, run.stderr);

    // A ServiceAccount with no RBAC: discovery works for anyone authenticated, the list is refused.
    let sa = json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "nobody"}});
    apply_value(&env.client, sa, Some(ns)).await?;
    let sas: Api<ServiceAccount> = Api::namespaced(env.client.clone(), ns);
    let request = serde_json::from_value(json!({"spec": {"audiences": [], "expirationSeconds": 600}}))?;
    let token = sas.create_token_request("nobody", &PostParams::default(), &request).await?;
    let token = token.status.and_then(|s| s.token).context("no token")?;
    let kubeconfig: PathBuf =
        std::env::temp_dir().join(format!("plugin-nobody-{}.kubeconfig", std::process::id()));
    match &env.cp {
        Some(cp) => std::fs::write(&kubeconfig, cp.kubeconfig_with_token(&token))?,
        None => std::fs::write(&kubeconfig, super::token_kubeconfig(&env.admin_kubeconfig, &token)?)?,
    }
    let run = plugin(&kubeconfig, &["status", "-n", ns]).await;
    let _ = std::fs::remove_file(&kubeconfig);
    let run = run?;
    ensure!(run.code == 4, "no permission: exit {} {}{}", run.code, run.stderr, run.stdout);
    ensure!(run.stderr.contains("permission denied") && run.stderr.contains("cannot list"), "{}", run.stderr);
    ensure!(!run.stderr.contains(&token), "the token reached the output");

    // --wait gives up with its own code when the operator does not answer: a suspended connector
    // never handles a restart.
    let mut bc = connector("asleep", "okta", json!({"suspend": true}));
    bc["spec"]["credentials"] = json!({"secretRef": {"name": "c1"}});
    apply_value(&env.client, credentials_secret("c1"), Some(ns)).await?;
    okta_app(&env.client, ns).await?;
    apply_value(&env.client, bc, Some(ns)).await?;
    let run =
        plugin(&env.admin_kubeconfig, &["restart", "asleep", "-n", ns, "--wait", "--timeout", "3s"]).await?;
    ensure!(run.code == 6, "timeout: exit {} {}{}", run.code, run.stderr, run.stdout);
    ensure!(run.stderr.contains("timed out after 3s"), "{}", run.stderr);
    Ok(())
}

pub(crate) async fn plugin_sync_runs_a_oneshot_connector_now(env: &mut Env) -> anyhow::Result<()> {
    ensure_operator(env).await?;
    let ns = "plugin-oneshot";
    namespace(&env.client, ns, json!({})).await?;
    apply_value(&env.client, app_secret("okta-app", "token-1"), Some(ns)).await?;
    let aws = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "aws"},
        "stringData": {"AWS_ACCESS_KEY_ID": "AKIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": "example"}});
    apply_value(&env.client, aws, Some(ns)).await?;
    let spec = json!({"connector": "okta", "mode": "OneShot", "schedule": "0 3 * * *",
        "secretRefs": [{"name": "okta-app"}],
        "output": {"s3": {"bucket": "c1-uploads", "region": "us-west-2", "credentialsSecretRef": {"name": "aws"}}}});
    let bc = json!({"apiVersion": "baton.conductorone.com/v1alpha1", "kind": "BatonConnector",
        "metadata": {"name": "nightly"}, "spec": spec});
    apply_value(&env.client, bc, Some(ns)).await?;
    wait_ready(&env.client, ns, "nightly").await?;

    let out = ok(env, &["sync", "nightly", "-n", ns, "--wait", "--timeout", "60s"]).await?;
    ensure!(
        out.contains("baton.conductorone.com/sync-requested-at=") && out.contains("handled by the operator"),
        "{out}"
    );
    let described = ok(env, &["describe", "nightly", "-n", ns]).await?;
    ensure!(described.contains("Connector:  okta (OneShot mode)"), "{described}");
    ensure!(described.contains("CronJob/nightly: last scheduled"), "{described}");
    ensure!(
        described.lines().any(|l| l.trim_start().starts_with("Job/nightly")),
        "no run listed:\n{described}"
    );
    ensure!(described.contains("Next run:"), "{described}");
    ensure!(
        !described.contains("AKIAEXAMPLE") && !described.contains("token-1"),
        "a secret reached the output"
    );
    Ok(())
}

/// docs/migration.md's path for one connector: a hand-written Deployment in the vendor's layout,
/// imported from the cluster (the Deployment only), accepted by the API server as printed, and run
/// by the operator under the same name once the old Deployment is deleted, reading the same Secret.
pub(crate) async fn plugin_import_moves_a_hand_written_deployment_to_the_operator(
    env: &mut Env,
) -> anyhow::Result<()> {
    ensure_operator(env).await?;
    let ns = "plugin-import";
    namespace(&env.client, ns, json!({})).await?;
    let mut secret = credentials_secret("baton-okta-secrets");
    secret["stringData"]["BATON_DOMAIN"] = json!("e2e.okta.com");
    secret["stringData"]["BATON_API_TOKEN"] = json!("e2e-import-token");
    apply_value(&env.client, secret, Some(ns)).await?;
    let vendor = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "baton-okta", "labels": {"app": "baton-okta"}},
        "spec": {"selector": {"matchLabels": {"app": "baton-okta"}}, "template": {
            "metadata": {"labels": {"app": "baton-okta", "baton": "true", "baton-app": "okta"}},
            "spec": {"containers": [{"name": "baton-okta", "image": "public.ecr.aws/conductorone/baton-okta:latest",
                "env": [{"name": "BATON_HOST_ID", "value": "baton-okta"}],
                "envFrom": [{"secretRef": {"name": "baton-okta-secrets"}}]}]}}}});
    apply_value(&env.client, vendor, Some(ns)).await?;

    let run = plugin(&env.admin_kubeconfig, &["import", "baton-okta", "-n", ns]).await?;
    ensure!(run.code == 0, "import exited {}: {}", run.code, run.stderr);
    ensure!(
        !format!("{}{}", run.stdout, run.stderr).contains("e2e-import-token"),
        "a Secret value was printed"
    );
    let value: Value = serde_json::to_value(serde_yaml::from_str::<serde_yaml::Value>(&run.stdout)?)?;
    let api: Api<BatonConnector> = Api::namespaced(env.client.clone(), ns);
    let dry_run = PostParams { dry_run: true, ..Default::default() };
    api.create(&dry_run, &serde_json::from_value(value.clone())?)
        .await
        .context("the API server refused the import")?;

    // Delete first, then apply: the operator creates its own Deployment under the old name.
    let deployments: Api<Deployment> = Api::namespaced(env.client.clone(), ns);
    deployments.delete("baton-okta", &Default::default()).await?;
    eventually("the hand-written Deployment to be gone", WAIT, || async {
        Ok(deployments.get_opt("baton-okta").await?.is_none().then_some(()))
    })
    .await?;
    apply_value(&env.client, value, Some(ns)).await?;
    let bc = wait_ready(&env.client, ns, "baton-okta").await?;
    let d = deployments.get("baton-okta").await?;
    ensure!(
        d.owner_references().iter().any(|o| Some(&o.uid) == bc.metadata.uid.as_ref()),
        "not the operator's Deployment"
    );
    let pod = d.spec.template.spec.as_ref().context("no pod spec")?;
    let from = pod.containers[0].env_from.as_ref().context("no envFrom")?;
    ensure!(from[0].secret_ref.as_ref().is_some_and(|s| s.name == "baton-okta-secrets"), "{from:?}");
    let labels = d.spec.template.metadata.as_ref().and_then(|m| m.labels.clone());
    ensure!(
        labels.is_some_and(|l| l.get("app").map(String::as_str) == Some("baton-okta")),
        "vendor labels lost"
    );
    Ok(())
}
