//! The API and its reconciliation: defaults, validation, examples, rollouts, missing inputs, hand edits, Pod Security.

use super::*;

pub(crate) async fn status_starts_unobserved(env: &mut Env) -> anyhow::Result<()> {
    // Before the operator runs, a new resource must read as not yet observed (kstatus: in progress).
    namespace(&env.client, "defaults", json!({})).await?;
    okta_app(&env.client, "defaults").await?;
    apply_value(&env.client, connector("fresh", "okta", json!({})), Some("defaults")).await?;
    let bc = get_bc(&env.client, "defaults", "fresh").await?;
    ensure!(bc.status.as_ref().map(|s| s.observed_generation) == Some(-1), "status: {:?}", bc.status);
    ensure!(
        bc.spec.mode.as_str() == "Service"
            && bc.spec.deletion_policy == baton_operator::api::DeletionPolicy::Revoke
    );
    Ok(())
}

pub(crate) async fn invalid_resources_are_refused(env: &mut Env) -> anyhow::Result<()> {
    namespace(&env.client, "invalid", json!({})).await?;
    let api: Api<BatonConnector> = Api::namespaced(env.client.clone(), "invalid");
    let cases = [
        (json!({"connector": "okta"}), "set exactly one of credentials.secretRef or credentials.managed"),
        (
            json!({"connector": "okta", "credentials": {}}),
            "set exactly one of credentials.secretRef or credentials.managed",
        ),
        (
            json!({"connector": "okta", "credentials": {"secretRef": {"name": "a"}, "managed": {}}}),
            "set exactly one of credentials.secretRef or credentials.managed",
        ),
        (
            json!({"connector": "okta", "credentials": {"managed": {}}}),
            "credentials.managed needs spec.conductorOne",
        ),
        (json!({"connector": "Okta!", "credentials": {"secretRef": {"name": "a"}}}), "spec.connector"),
        (
            json!({"connector": "okta", "credentials": {"managed": {}}, "conductorOne": {"apiCredentialsSecretRef": {"name": "api"},
                   "appId": "a", "app": {"displayName": "Okta"}}}),
            "set exactly one of conductorOne.appId (an existing app) or conductorOne.app",
        ),
        (
            json!({"connector": "okta", "credentials": {"managed": {}}, "conductorOne": {"apiCredentialsSecretRef": {"name": "api"},
                   "app": {"displayName": "Okta"}, "connectorId": "c"}}),
            "conductorOne.connectorId needs conductorOne.appId",
        ),
        (
            json!({"connector": "okta", "mode": "OneShot", "output": {"s3": {"bucket": "uploads"}}}),
            "mode OneShot needs spec.schedule",
        ),
        (
            json!({"connector": "okta", "mode": "OneShot", "schedule": "every hour", "output": {"s3": {"bucket": "uploads"}}}),
            "spec.schedule",
        ),
        (
            json!({"connector": "okta", "mode": "OneShot", "schedule": "@hourly"}),
            "mode OneShot needs spec.output",
        ),
        (
            json!({"connector": "okta", "mode": "OneShot", "schedule": "@hourly", "output": {"s3": {"bucket": "uploads"}},
                   "credentials": {"managed": {}}, "conductorOne": {"apiCredentialsSecretRef": {"name": "api"}, "appId": "a", "connectorId": "c"}}),
            "credentials.managed is refused in OneShot mode",
        ),
        (
            json!({"connector": "okta", "mode": "OneShot", "schedule": "@hourly", "output": {"s3": {"bucket": "uploads"}},
                   "healthCheck": {"enabled": true}}),
            "healthCheck is refused in OneShot mode",
        ),
        (
            json!({"connector": "okta", "mode": "OneShot", "schedule": "@hourly",
                   "output": {"s3": {"bucket": "uploads"}, "persistentVolumeClaim": {"claimName": "c"}}}),
            "set exactly one of output.s3 or output.persistentVolumeClaim",
        ),
        (
            json!({"connector": "okta", "schedule": "@hourly", "credentials": {"secretRef": {"name": "a"}}}),
            "spec.schedule is only for mode OneShot",
        ),
        (
            json!({"connector": "okta", "mode": "Batch", "credentials": {"secretRef": {"name": "a"}}}),
            "Unsupported value: \"Batch\"",
        ),
        (
            json!({"connector": "okta", "credentials": {"secretRef": {"name": "a"}}, "image": {"digest": "latest"}}),
            "spec.image.digest",
        ),
        (
            json!({"connector": "okta", "credentials": {"secretRef": {"name": "a"}}, "env": [{"name": "BATON_CLIENT_SECRET", "value": "x"}]}),
            "env may not set BATON_CLIENT_ID",
        ),
        (
            json!({"connector": "okta", "credentials": {"managed": {"rotation": {"interval": "30 days"}}},
                   "conductorOne": {"apiCredentialsSecretRef": {"name": "api"}, "appId": "a", "connectorId": "c"}}),
            "spec.credentials.managed.rotation.interval",
        ),
    ];
    for (spec, expected) in cases {
        // Sent as raw JSON: several of these do not even deserialize into the operator's types.
        let raw = json!({"apiVersion": "baton.conductorone.com/v1alpha1", "kind": "BatonConnector", "metadata": {"name": "bad"}, "spec": spec});
        let pp = PostParams { dry_run: true, ..Default::default() };
        let dynamic: kube::api::DynamicObject = serde_json::from_value(raw)?;
        let dapi: Api<kube::api::DynamicObject> = Api::namespaced_with(
            env.client.clone(),
            "invalid",
            &kube::api::ApiResource::erase::<BatonConnector>(&()),
        );
        match dapi.create(&pp, &dynamic).await {
            Ok(_) => bail!("the API server accepted {spec}"),
            Err(kube::Error::Api(s)) => {
                ensure!(s.code == 422, "expected 422 for {spec}, got {}: {}", s.code, s.message);
                ensure!(
                    s.message.contains(expected),
                    "message for {spec} should mention {expected:?}: {}",
                    s.message
                );
            }
            Err(e) => bail!("unexpected error for {spec}: {e}"),
        }
    }
    // The connector of an existing resource cannot change.
    let valid = json!({"connector": "okta", "credentials": {"secretRef": {"name": "a"}}});
    okta_app(&env.client, "invalid").await?;
    apply_value(&env.client, connector("immutable", "okta", valid), Some("invalid")).await?;
    let patch = json!({"spec": {"connector": "github"}});
    match api.patch("immutable", &PatchParams::default(), &Patch::Merge(&patch)).await {
        Err(kube::Error::Api(s)) if s.message.contains("connector is immutable") => Ok(()),
        other => bail!("changing spec.connector: {other:?}"),
    }
}

pub(crate) async fn examples_converge(env: &mut Env) -> anyhow::Result<()> {
    ensure_operator(env).await?;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut files: Vec<_> = std::fs::read_dir(&dir)?.filter_map(|e| e.ok()).map(|e| e.path()).collect();
    files.sort();
    ensure!(files.len() >= 4, "expected the example files, found {files:?}");
    // These need ConductorOne: `onboarding` applies the zero-click one against the fake, and the
    // README quickstart (`install`), which tests/integration/docs.rs keeps equal to okta-managed.yaml, the
    // second; the tenant example mints through its tenant's principal and puts its objects in its own
    // namespaces (`tenants` covers the same setup against the fake).
    let needs_conductorone = |f: &Path| {
        f.file_name().is_some_and(|n| {
            n == "okta-zero-click.yaml" || n == "okta-managed.yaml" || n == "tenant-two-teams.yaml"
        })
    };
    for file in files.iter().filter(|f| f.extension().is_some_and(|e| e == "yaml") && !needs_conductorone(f))
    {
        let ns = format!("ex-{}", file.file_stem().unwrap().to_string_lossy());
        namespace(&env.client, &ns, json!({})).await?;
        let objects = apply_yaml(&env.client, &std::fs::read_to_string(file)?, Some(&ns)).await?;
        for bc in objects.iter().filter(|o| o.types.as_ref().is_some_and(|t| t.kind == "BatonConnector")) {
            let name = bc.name_any();
            let bc = wait_ready(&env.client, &ns, &name).await.with_context(|| file.display().to_string())?;
            let oneshot = bc.spec.mode == baton_operator::api::Mode::OneShot;
            let labels = if oneshot {
                let c: k8s_openapi::api::batch::v1::CronJob =
                    Api::namespaced(env.client.clone(), &ns).get(&name).await?;
                c.labels().clone()
            } else {
                let d: Deployment = Api::namespaced(env.client.clone(), &ns).get(&name).await?;
                d.labels().clone()
            };
            let labels = &labels;
            let app = &bc.spec.connector;
            ensure!(labels.get("app") == Some(&format!("baton-{app}")), "labels {labels:?}");
            ensure!(labels.get("baton").map(String::as_str) == Some("true"));
            ensure!(labels.get("baton-app") == Some(app));
            ensure!(labels.get("app.kubernetes.io/managed-by").map(String::as_str) == Some("baton-operator"));
            ensure!(
                bc.status
                    .as_ref()
                    .and_then(|s| s.image.as_deref())
                    .is_some_and(|i| i.contains(&format!("baton-{app}")))
            );
            if oneshot {
                // No run is due yet: no pod.
                continue;
            }
            let pods: Vec<Pod> = list(&env.client, &ns, &format!("app=baton-{app}")).await?;
            ensure!(pods.len() == 1, "kubectl logs -l app=baton-{app} finds {} pods", pods.len());
        }
    }
    Ok(())
}

pub(crate) async fn two_resources_for_one_connector_do_not_share_pods(env: &mut Env) -> anyhow::Result<()> {
    ready_connector(env, "twins", "okta-a", json!({})).await?;
    okta_app(&env.client, "twins").await?;
    apply_value(&env.client, connector("okta-b", "okta", json!({})), Some("twins")).await?;
    wait_ready(&env.client, "twins", "okta-b").await?;
    let deployments: Api<Deployment> = Api::namespaced(env.client.clone(), "twins");
    let mut seen = Vec::new();
    for name in ["okta-a", "okta-b"] {
        let d = deployments.get(name).await?;
        let selector = d.spec.selector.match_labels.unwrap_or_default();
        let selector = selector.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",");
        let pods: Vec<Pod> = list(&env.client, "twins", &selector).await?;
        ensure!(pods.len() == 1, "{name}'s selector {selector} matches {} pods", pods.len());
        seen.push(pods[0].name_any());
    }
    ensure!(seen[0] != seen[1]);
    let all: Vec<Pod> = list(&env.client, "twins", "app=baton-okta").await?;
    ensure!(all.len() == 2);
    Ok(())
}

pub(crate) async fn edit_makes_exactly_one_rollout(env: &mut Env) -> anyhow::Result<()> {
    ready_connector(env, "edit", "okta", json!({"env": [{"name": "BATON_DOMAIN", "value": "a.okta.com"}]}))
        .await?;
    ensure!(replica_sets(&env.client, "edit", "okta").await?.len() == 1);
    let api: Api<BatonConnector> = Api::namespaced(env.client.clone(), "edit");
    let patch = json!({"spec": {"env": [{"name": "BATON_DOMAIN", "value": "b.okta.com"}]}});
    api.patch("okta", &PatchParams::default(), &Patch::Merge(&patch)).await?;
    let bc = wait_ready(&env.client, "edit", "okta").await?;
    ensure!(bc.status.as_ref().unwrap().observed_generation == 2);
    settle(env, Duration::from_secs(2)).await?;
    let rs = replica_sets(&env.client, "edit", "okta").await?;
    ensure!(rs.len() == 2, "expected exactly one new ReplicaSet, found {}", rs.len());
    Ok(())
}

pub(crate) async fn secret_change_makes_exactly_one_rollout(env: &mut Env) -> anyhow::Result<()> {
    ensure_operator(env).await?;
    namespace(&env.client, "secret-change", json!({})).await?;
    apply_value(&env.client, app_secret("okta-app", "one"), Some("secret-change")).await?;
    ready_connector(env, "secret-change", "okta", json!({"secretRefs": [{"name": "okta-app"}]})).await?;
    let before = get_bc(&env.client, "secret-change", "okta").await?;
    let hash = |bc: &BatonConnector| {
        bc.status.as_ref().and_then(|s| s.workload.as_ref()).and_then(|w| w.config_hash.clone())
    };
    apply_value(&env.client, app_secret("okta-app", "two"), Some("secret-change")).await?;
    eventually("a new config hash", WAIT, || async {
        let bc = get_bc(&env.client, "secret-change", "okta").await?;
        Ok((hash(&bc) != hash(&before)).then_some(()))
    })
    .await?;
    wait_ready(&env.client, "secret-change", "okta").await?;
    settle(env, Duration::from_secs(2)).await?;
    let rs = replica_sets(&env.client, "secret-change", "okta").await?;
    ensure!(rs.len() == 2, "expected exactly one new ReplicaSet, found {}", rs.len());
    Ok(())
}

pub(crate) async fn missing_secret_is_reported_then_recovers(env: &mut Env) -> anyhow::Result<()> {
    ensure_operator(env).await?;
    namespace(&env.client, "missing", json!({})).await?;
    apply_value(&env.client, credentials_secret("c1"), Some("missing")).await?;
    apply_value(
        &env.client,
        connector("okta", "okta", json!({"secretRefs": [{"name": "later"}]})),
        Some("missing"),
    )
    .await?;
    eventually("Ready=False SecretNotFound", WAIT, || async {
        let bc = get_bc(&env.client, "missing", "okta").await?;
        Ok((condition(&bc, "Ready") == Some(("False".into(), "SecretNotFound".into()))).then_some(()))
    })
    .await?;
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(env.client.clone(), "missing");
    let warnings = events.list(&Default::default()).await?.items;
    ensure!(
        warnings
            .iter()
            .any(|e| e.type_.as_deref() == Some("Warning") && e.reason.as_deref() == Some("SecretNotFound")),
        "no SecretNotFound warning event"
    );
    // Creating the Secret is enough: the operator watches Secret metadata and reconciles at once.
    apply_value(&env.client, app_secret("later", "x"), Some("missing")).await?;
    wait_ready(&env.client, "missing", "okta").await?;
    Ok(())
}

pub(crate) async fn hand_edits_are_put_back(env: &mut Env) -> anyhow::Result<()> {
    ready_connector(env, "drift", "okta", json!({})).await?;
    let deployments: Api<Deployment> = Api::namespaced(env.client.clone(), "drift");
    // `kubectl rollout restart` writes this annotation; the operator does not own it and keeps it.
    let restart = json!({"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "now"}}}}});
    deployments.patch("okta", &PatchParams::default(), &Patch::Strategic(&restart)).await?;
    let image = json!({"spec": {"template": {"spec": {"containers": [{"name": "baton-okta", "image": "evil:latest"}]}}}});
    deployments.patch("okta", &PatchParams::default(), &Patch::Strategic(&image)).await?;
    eventually("the image to be put back", WAIT, || async {
        let d = deployments.get("okta").await?;
        let t = d.spec.template;
        let image = t.spec.as_ref().and_then(|s| s.containers[0].image.clone()).unwrap_or_default();
        let kept = t
            .metadata
            .and_then(|m| m.annotations)
            .is_some_and(|a| a.contains_key("kubectl.kubernetes.io/restartedAt"));
        Ok((image == "public.ecr.aws/conductorone/baton-okta:latest" && kept).then_some(()))
    })
    .await?;
    Ok(())
}

pub(crate) async fn restricted_namespace_admits_connector_pods(env: &mut Env) -> anyhow::Result<()> {
    ensure_operator(env).await?;
    namespace(&env.client, "restricted", json!({"pod-security.kubernetes.io/enforce": "restricted"})).await?;
    apply_value(&env.client, credentials_secret("c1"), Some("restricted")).await?;
    okta_app(&env.client, "restricted").await?;
    apply_value(
        &env.client,
        connector("okta", "okta", json!({"healthCheck": {"enabled": true}})),
        Some("restricted"),
    )
    .await?;
    wait_ready(&env.client, "restricted", "okta").await?;
    let pods: Vec<Pod> = list(&env.client, "restricted", "app=baton-okta").await?;
    ensure!(pods.len() == 1);
    Ok(())
}
