//! OneShot mode: a CronJob whose runs sync to a file and upload it, runs on request, their outcome in
//! status and events, and switching modes both ways.

use super::*;
use k8s_openapi::api::batch::v1::{CronJob, Job};

const SYNC_REQUESTED_AT: &str = "baton.conductorone.com/sync-requested-at";

fn oneshot_connector(name: &str, extra: Value) -> Value {
    let mut spec = json!({"connector": "okta", "mode": "OneShot", "schedule": "0 3 * * *",
        "secretRefs": [{"name": "okta-app"}],
        "output": {"s3": {"bucket": "c1-uploads", "region": "us-west-2", "credentialsSecretRef": {"name": "aws"}}},
        "runs": {"backoffLimit": 0, "activeDeadlineSeconds": 600}});
    spec.as_object_mut().unwrap().extend(extra.as_object().cloned().unwrap_or_default());
    json!({"apiVersion": "baton.conductorone.com/v1alpha1", "kind": "BatonConnector", "metadata": {"name": name}, "spec": spec})
}

/// Asks for a run and returns its Job, once the operator has created it and said so in status.
pub(crate) async fn request_run(env: &Env, ns: &str, name: &str, at: &str) -> anyhow::Result<Job> {
    let api: Api<BatonConnector> = Api::namespaced(env.client.clone(), ns);
    let annotate = json!({"metadata": {"annotations": {SYNC_REQUESTED_AT: at}}});
    api.patch(name, &PatchParams::default(), &Patch::Merge(&annotate)).await?;
    eventually(&format!("the run requested at {at}"), WAIT, || async {
        let bc = get_bc(&env.client, ns, name).await?;
        if bc.status.as_ref().and_then(|s| s.handled_requests.sync.as_deref()) != Some(at) {
            return Ok(None);
        }
        let jobs: Vec<Job> = list(&env.client, ns, &format!("app.kubernetes.io/instance={name}")).await?;
        Ok(jobs.into_iter().find(|j| {
            j.annotations().get("cronjob.kubernetes.io/instantiate").is_some()
                && j.metadata.creation_timestamp.is_some()
                && j.status.as_ref().is_none_or(|s| s.conditions.as_ref().is_none_or(|c| c.is_empty()))
        }))
    })
    .await
}

/// Plays the kubelet for a run: its pod ends with the given phase.
async fn finish_run(env: &Env, ns: &str, job: &Job, phase: &str) -> anyhow::Result<()> {
    let job_name = job.name_any();
    let pod = eventually(&format!("a pod for Job {job_name}"), WAIT, || async {
        // Once the suite's kubelet has started it, so that it does not start it again afterwards.
        let pods: Vec<Pod> = list(&env.client, ns, &format!("job-name={job_name}")).await?;
        Ok(pods.into_iter().find(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")))
    })
    .await?;
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    let (code, reason) = if phase == "Succeeded" { (0, "Completed") } else { (1, "Error") };
    let terminated = |name: &str| {
        json!({"name": name, "ready": false, "restartCount": 0, "image": "x", "imageID": "",
        "state": {"terminated": {"exitCode": code, "reason": reason, "startedAt": now, "finishedAt": now}}})
    };
    let status = json!({"status": {"phase": phase, "startTime": now,
        "initContainerStatuses": [terminated("baton-okta")], "containerStatuses": [terminated("upload")]}});
    Api::<Pod>::namespaced(env.client.clone(), ns)
        .patch_status(&pod.name_any(), &PatchParams::default(), &Patch::Merge(&status))
        .await?;
    Ok(())
}

async fn has_event(env: &Env, ns: &str, reason: &str) -> anyhow::Result<bool> {
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(env.client.clone(), ns);
    Ok(events.list(&Default::default()).await?.items.iter().any(|e| e.reason.as_deref() == Some(reason)))
}

pub(crate) async fn oneshot_runs_on_schedule_and_on_request(env: &mut Env) -> anyhow::Result<()> {
    ensure_operator(env).await?;
    let ns = "oneshot";
    // The Job's pods are created under the restricted Pod Security Standard, or not at all.
    namespace(&env.client, ns, json!({"pod-security.kubernetes.io/enforce": "restricted"})).await?;
    apply_value(&env.client, app_secret("okta-app", "token-1"), Some(ns)).await?;
    let aws = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "aws"},
        "stringData": {"AWS_ACCESS_KEY_ID": "AKIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": "example"}});
    apply_value(&env.client, aws, Some(ns)).await?;
    apply_value(&env.client, oneshot_connector("okta", json!({})), Some(ns)).await?;
    let bc = wait_ready(&env.client, ns, "okta").await?;
    ensure!(condition(&bc, "Ready") == Some(("True".into(), "Scheduled".into())), "{:?}", bc.status);
    let schedule = bc.status.as_ref().and_then(|s| s.schedule.clone()).context("no status.schedule")?;
    ensure!(schedule.next_run_time.is_some(), "{schedule:?}");
    let table = kubectl(env, &["get", "batonconnectors", "-n", ns])?;
    ensure!(table.lines().nth(1).is_some_and(|l| l.contains("OneShot")), "{table}");

    let cronjob: CronJob = Api::namespaced(env.client.clone(), ns).get("okta").await?;
    ensure!(
        cronjob.spec.schedule == "0 3 * * *" && cronjob.spec.concurrency_policy.as_deref() == Some("Forbid")
    );
    ensure!(
        cronjob.owner_references().iter().any(|o| o.kind == "BatonConnector" && o.controller == Some(true)),
        "no owner reference"
    );
    let pod =
        cronjob.spec.job_template.spec.clone().and_then(|j| j.template.spec).context("no pod template")?;
    let env_names: Vec<String> = pod
        .init_containers
        .iter()
        .flatten()
        .chain(&pod.containers)
        .flat_map(|c| c.env.iter().flatten().map(|e| e.name.clone()))
        .collect();
    ensure!(
        !env_names.iter().any(|n| n.starts_with("BATON_CLIENT")),
        "a run got client credentials: {env_names:?}"
    );
    ensure!(pod.containers.iter().any(|c| c.name == "upload"), "no upload container");

    // A run on request; its pod is admitted under `restricted` and succeeds.
    let first = request_run(env, ns, "okta", "2026-11-30T12:00:00Z").await?;
    finish_run(env, ns, &first, "Succeeded").await?;
    let bc = eventually("the successful run in status", WAIT, || async {
        let bc = get_bc(&env.client, ns, "okta").await?;
        let done =
            bc.status.as_ref().and_then(|s| s.schedule.as_ref()).and_then(|s| s.last_successful_time.clone());
        Ok(done.map(|_| bc))
    })
    .await?;
    ensure!(condition(&bc, "Ready").is_some_and(|(s, _)| s == "True"), "{:?}", bc.status);
    ensure!(has_event(env, ns, "RunRequested").await?, "no RunRequested event");

    // A failed run: not ready, with its pod's answer (the connector exited 1), a RunFailed event; the
    // next good run recovers.
    let second = request_run(env, ns, "okta", "2026-11-30T12:10:00Z").await?;
    finish_run(env, ns, &second, "Failed").await?;
    let bc = eventually("the failed run in status", WAIT, || async {
        let bc = get_bc(&env.client, ns, "okta").await?;
        Ok((condition(&bc, "Ready") == Some(("False".into(), "ContainerFailed".into()))).then_some(bc))
    })
    .await?;
    let message = bc.status.as_ref().and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"));
    let message = message.map(|c| c.message.clone()).unwrap_or_default();
    ensure!(message.contains("container baton-okta exited with code 1"), "Ready's message: {message}");
    let failure = bc.status.as_ref().and_then(|s| s.schedule.as_ref()).and_then(|s| s.last_failure.clone());
    ensure!(failure.as_ref().is_some_and(|f| f.job == second.name_any()), "{failure:?}");
    ensure!(condition(&bc, "Stalled").is_some_and(|(s, _)| s == "False"), "a failed run is not a stall");
    ensure!(has_event(env, ns, "RunFailed").await?, "no RunFailed event");
    let third = request_run(env, ns, "okta", "2026-11-30T12:20:00Z").await?;
    finish_run(env, ns, &third, "Succeeded").await?;
    wait_ready(&env.client, ns, "okta").await?;
    eventually("a RunRecovered event", WAIT, || async {
        Ok(has_event(env, ns, "RunRecovered").await?.then_some(()))
    })
    .await?;
    // The same request again starts nothing.
    let jobs_before = list::<Job>(&env.client, ns, "app.kubernetes.io/instance=okta").await?.len();
    api_touch(env, ns, "okta").await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let jobs_after = list::<Job>(&env.client, ns, "app.kubernetes.io/instance=okta").await?.len();
    ensure!(jobs_after == jobs_before, "a handled request started another run");
    Ok(())
}

/// Makes the operator reconcile without changing the spec.
async fn api_touch(env: &Env, ns: &str, name: &str) -> anyhow::Result<()> {
    let api: Api<BatonConnector> = Api::namespaced(env.client.clone(), ns);
    let annotate =
        json!({"metadata": {"annotations": {"baton.conductorone.com/reconcile-requested-at": "touch"}}});
    api.patch(name, &PatchParams::default(), &Patch::Merge(&annotate)).await?;
    Ok(())
}

/// Service with managed credentials to OneShot and back: each switch removes the other workload once
/// the new one exists, and the credentials minted for the service are revoked.
pub(crate) async fn switching_modes_cleans_up_both_ways(env: &mut Env) -> anyhow::Result<()> {
    ensure_operator(env).await?;
    let ns = "switch";
    let (app, connector_id) = ("app-switch", "conn-switch");
    env.c1.add_connector(app, connector_id, "okta");
    env.c1.set_sync_status(app, connector_id, done_sync());
    let principal = env.c1.register_principal("switch-operator");
    namespace(&env.client, ns, json!({})).await?;
    apply_value(&env.client, app_secret("okta-app", "token-1"), Some(ns)).await?;
    apply_value(&env.client, credentials_secret("c1"), Some(ns)).await?;
    let api_secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "c1-api"},
        "stringData": {"clientId": principal.client_id, "clientSecret": principal.client_secret}});
    apply_value(&env.client, api_secret, Some(ns)).await?;
    let c1 =
        json!({"apiCredentialsSecretRef": {"name": "c1-api"}, "appId": app, "connectorId": connector_id});
    let service = json!({"apiVersion": "baton.conductorone.com/v1alpha1", "kind": "BatonConnector", "metadata": {"name": "okta"},
        "spec": {"connector": "okta", "secretRefs": [{"name": "okta-app"}], "conductorOne": c1,
                 "credentials": {"managed": {"rotation": {"interval": "720h", "gracePeriod": "1s"}}}}});
    apply_value(&env.client, service, Some(ns)).await?;
    let bc = wait_ready(&env.client, ns, "okta").await?;
    let minted =
        bc.status.as_ref().and_then(|s| s.credentials.as_ref()).and_then(|c| c.credential_id.clone());
    let minted = minted.context("no credential minted")?;

    // To OneShot, written as a whole (as GitOps would): no credentials, a schedule and an output.
    let api: Api<BatonConnector> = Api::namespaced(env.client.clone(), ns);
    let mut oneshot = oneshot_connector("okta", json!({"conductorOne": c1}));
    oneshot["spec"]["output"] = json!({"persistentVolumeClaim": {"claimName": "uploads"}});
    let current = api.get("okta").await?;
    oneshot["metadata"]["resourceVersion"] = json!(current.resource_version());
    api.replace("okta", &PostParams::default(), &serde_json::from_value(oneshot)?).await?;
    eventually("the Deployment to give way to the CronJob", WAIT, || async {
        let d = Api::<Deployment>::namespaced(env.client.clone(), ns).get_opt("okta").await?;
        let c = Api::<CronJob>::namespaced(env.client.clone(), ns).get_opt("okta").await?;
        Ok((d.is_none() && c.is_some()).then_some(()))
    })
    .await?;
    eventually("the service's credential to be revoked", WAIT, || async {
        let bc = get_bc(&env.client, ns, "okta").await?;
        // Revoked in ConductorOne, and status no longer holds a credential of the operator's.
        let credentials = bc.status.as_ref().and_then(|s| s.credentials.clone()).unwrap_or_default();
        let forgotten = credentials.credential_id.is_none() && credentials.pending_revocations.is_empty();
        let revoked = env.c1.credential(&minted).is_some_and(|c| c.revoked_at.is_some());
        Ok((revoked && forgotten).then_some(()))
    })
    .await?;
    wait_ready(&env.client, ns, "okta").await?;
    ensure!(
        list::<k8s_openapi::api::core::v1::Secret>(
            &env.client,
            ns,
            "baton.conductorone.com/credential-revision"
        )
        .await?
        .is_empty(),
        "credential Secrets left behind"
    );

    // Back to Service, with a Secret of the user's.
    let back = json!({"apiVersion": "baton.conductorone.com/v1alpha1", "kind": "BatonConnector",
        "metadata": {"name": "okta", "resourceVersion": api.get("okta").await?.resource_version()},
        "spec": {"connector": "okta", "secretRefs": [{"name": "okta-app"}], "credentials": {"secretRef": {"name": "c1"}}}});
    api.replace("okta", &PostParams::default(), &serde_json::from_value(back)?).await?;
    wait_ready(&env.client, ns, "okta").await?;
    eventually("the CronJob to give way to the Deployment", WAIT, || async {
        let c = Api::<CronJob>::namespaced(env.client.clone(), ns).get_opt("okta").await?;
        let d = Api::<Deployment>::namespaced(env.client.clone(), ns).get_opt("okta").await?;
        Ok((c.is_none() && d.is_some()).then_some(()))
    })
    .await?;
    Ok(())
}
