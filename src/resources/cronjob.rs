//! The CronJob that runs a connector in OneShot mode: the connector syncs to a file (an init
//! container, so that nothing is uploaded unless it succeeded), then an uploader puts the file where
//! ConductorOne or a person picks it up.
//!
//! An init container rather than a native sidecar: the upload must follow the sync, not run beside
//! it, and an init container that fails fails the pod, so a failed sync is a failed run.

use std::collections::BTreeMap;

use k8s_openapi::{
    api::{
        batch::v1::{CronJob, CronJobSpec, Job, JobSpec, JobTemplateSpec},
        core::v1::{
            Container, EmptyDirVolumeSource, EnvFromSource, EnvVar, PersistentVolumeClaimVolumeSource,
            PodTemplateSpec, SecretEnvSource, Volume, VolumeMount,
        },
    },
    apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference},
};
use kube::{Resource, ResourceExt};

use super::{deployment, labels};
use crate::api::{BatonConnector, OutputSpec, RunsSpec};

/// Where the connector writes its sync file, in a volume both containers mount.
pub const SYNC_FILE: &str = "/data/sync.c1z";
pub const DEFAULT_S3_UPLOADER: &str = "public.ecr.aws/aws-cli/aws-cli:latest";
pub const DEFAULT_PVC_UPLOADER: &str = "docker.io/library/busybox:stable";
/// Marks a Job made for a `sync-requested-at` request, as `kubectl create job --from` does.
pub const MANUAL_RUN_ANNOTATION: &str = "cronjob.kubernetes.io/instantiate";

/// Builds the desired CronJob. Pure, like the Deployment builder.
pub fn cronjob(bc: &BatonConnector, config_hash: &str) -> CronJob {
    let runs = bc.spec.runs.clone().unwrap_or_default();
    let mut template_annotations = bc.spec.pod_annotations.clone();
    template_annotations.insert(deployment::CONFIG_HASH_ANNOTATION.into(), config_hash.to_string());
    template_annotations
        .insert("kubectl.kubernetes.io/default-container".into(), deployment::container_name(bc));
    let pod = PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(labels::pod_labels(bc)),
            annotations: Some(template_annotations),
            ..Default::default()
        }),
        spec: Some(k8s_openapi::api::core::v1::PodSpec {
            init_containers: Some(vec![connector(bc)]),
            containers: vec![uploader(bc)],
            restart_policy: Some("Never".into()),
            volumes: Some(volumes(bc)),
            ..deployment::base_pod_spec(bc)
        }),
    };
    CronJob {
        metadata: ObjectMeta {
            name: Some(bc.name_any()),
            namespace: bc.namespace(),
            labels: Some(labels::labels(bc)),
            owner_references: bc.controller_owner_ref(&()).map(|o| vec![o]),
            ..Default::default()
        },
        spec: CronJobSpec {
            schedule: bc.spec.schedule.clone().unwrap_or_default(),
            time_zone: bc.spec.time_zone.clone(),
            // Two runs at once would upload over each other.
            concurrency_policy: Some("Forbid".into()),
            suspend: Some(bc.spec.suspend),
            starting_deadline_seconds: Some(runs.starting_deadline_seconds),
            successful_jobs_history_limit: Some(runs.history_limit),
            failed_jobs_history_limit: Some(runs.history_limit),
            job_template: JobTemplateSpec {
                metadata: Some(ObjectMeta { labels: Some(labels::labels(bc)), ..Default::default() }),
                spec: Some(job_spec(&runs, pod)),
            },
        },
        status: None,
    }
}

fn job_spec(runs: &RunsSpec, template: PodTemplateSpec) -> JobSpec {
    JobSpec {
        backoff_limit: Some(runs.backoff_limit),
        active_deadline_seconds: Some(runs.active_deadline_seconds),
        template,
        ..Default::default()
    }
}

/// One run now, from the CronJob's template, as `kubectl create job --from=cronjob/<name>` makes it.
pub fn manual_job(cronjob: &CronJob, request: &str) -> Option<Job> {
    let spec = &cronjob.spec;
    let name = format!("{}-manual-{}", cronjob.name_any(), short_hash(request));
    let owner = OwnerReference {
        api_version: "batch/v1".into(),
        kind: "CronJob".into(),
        name: cronjob.name_any(),
        uid: cronjob.uid()?,
        controller: Some(true),
        block_owner_deletion: Some(true),
    };
    let template = spec.job_template.metadata.clone().unwrap_or_default();
    Some(Job {
        metadata: ObjectMeta {
            name: Some(truncate(&name, 63)),
            namespace: cronjob.namespace(),
            labels: template.labels,
            annotations: Some(BTreeMap::from([(MANUAL_RUN_ANNOTATION.to_string(), "manual".to_string())])),
            owner_references: Some(vec![owner]),
            ..Default::default()
        },
        spec: spec.job_template.spec.clone(),
        status: None,
    })
}

fn short_hash(s: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(&Sha256::digest(s.as_bytes())[..4])
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect::<String>().trim_end_matches('-').to_string()
}

/// The connector, syncing to a file. Without `BATON_CLIENT_ID` it runs once and exits.
fn connector(bc: &BatonConnector) -> Container {
    let plain =
        |name: &str, value: String| EnvVar { name: name.into(), value: Some(value), value_from: None };
    let mut env = vec![plain("BATON_HOST_ID", bc.name_any()), plain("BATON_FILE", SYNC_FILE.into())];
    env.extend(deployment::work_env(bc));
    env.extend(super::config_env::env_vars(&bc.spec.config));
    env.extend(bc.spec.env.iter().map(|e| plain(&e.name, e.value.clone())));
    let mut c = deployment::connector_container(bc);
    c.env = Some(env);
    c.volume_mounts.get_or_insert_with(Vec::new).push(mount("sync", "/data"));
    c
}

fn uploader(bc: &BatonConnector) -> Container {
    let output = bc.spec.output.clone().unwrap_or(OutputSpec {
        s3: None,
        persistent_volume_claim: None,
        uploader_image: None,
    });
    let plain =
        |name: &str, value: String| EnvVar { name: name.into(), value: Some(value), value_from: None };
    let mut c = Container {
        name: "upload".into(),
        resources: Some(deployment::default_resources()),
        security_context: Some(deployment::restricted_container()),
        // `/tmp` on the work volume too: the AWS CLI keeps its cache there (HOME below). The
        // connector has finished when the uploader starts, so they never compete for the space.
        volume_mounts: Some(vec![deployment::tmp_mount(), mount("sync", "/data")]),
        termination_message_policy: Some(deployment::FALLBACK_TO_LOGS.into()),
        ..Default::default()
    };
    if let Some(s3) = &output.s3 {
        let key = s3.key.clone().unwrap_or_else(|| default_key(bc));
        let mut args = vec![
            "s3".to_string(),
            "cp".into(),
            SYNC_FILE.into(),
            format!("s3://{}/{}", s3.bucket, key),
            "--only-show-errors".into(),
            "--no-progress".into(),
        ];
        if let Some(region) = &s3.region {
            args.extend(["--region".into(), region.clone()]);
        }
        if let Some(endpoint) = &s3.endpoint {
            args.extend(["--endpoint-url".into(), endpoint.clone()]);
        }
        c.image = Some(output.uploader_image.clone().unwrap_or_else(|| DEFAULT_S3_UPLOADER.into()));
        c.command = Some(vec!["aws".into()]);
        c.args = Some(args);
        // The CLI keeps its cache under HOME; the root filesystem is read-only.
        c.env = Some(vec![plain("HOME", "/tmp".into())]);
        c.env_from = s3.credentials_secret_ref.as_ref().map(|r| {
            vec![EnvFromSource {
                secret_ref: Some(SecretEnvSource { name: r.name.clone(), optional: Some(false) }),
                ..Default::default()
            }]
        });
    } else if let Some(pvc) = &output.persistent_volume_claim {
        let path = pvc.path.clone().unwrap_or_else(|| format!("{}/sync.c1z", bc.name_any()));
        c.image = Some(output.uploader_image.clone().unwrap_or_else(|| DEFAULT_PVC_UPLOADER.into()));
        // Copy under a temporary name, then rename: a rename within one volume is atomic.
        c.command = Some(vec!["sh".into(), "-c".into()]);
        c.args = Some(vec![
            r#"set -eu; dest="/output/$DEST"; mkdir -p "$(dirname "$dest")"; cp /data/sync.c1z "$dest.partial"; mv "$dest.partial" "$dest""#
                .into(),
        ]);
        c.env = Some(vec![plain("DEST", path)]);
        c.volume_mounts.get_or_insert_with(Vec::new).push(mount("output", "/output"));
    }
    c
}

/// The default object key: one per resource, so that two connectors never overwrite each other.
pub fn default_key(bc: &BatonConnector) -> String {
    format!("{}/{}/sync.c1z", bc.namespace().unwrap_or_default(), bc.name_any())
}

fn volumes(bc: &BatonConnector) -> Vec<Volume> {
    // The sync file waits in its own volume for the uploader, uncapped as before: evicting a run for
    // the size of the file it exists to produce would only lose the sync. `workDir.sizeLimit` bounds
    // the connector's scratch space, which is what grows without bound when something goes wrong.
    let sync = Volume {
        name: "sync".into(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Default::default()
    };
    let mut v = vec![deployment::work_volume(bc), sync];
    if let Some(pvc) = bc.spec.output.as_ref().and_then(|o| o.persistent_volume_claim.as_ref()) {
        v.push(Volume {
            name: "output".into(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: pvc.claim_name.clone(),
                read_only: Some(false),
            }),
            ..Default::default()
        });
    }
    v
}

fn mount(name: &str, path: &str) -> VolumeMount {
    VolumeMount { name: name.into(), mount_path: path.into(), ..Default::default() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        api::{Mode, PvcOutput, S3Output, SecretRef},
        resources::testing::connector,
    };
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

    fn oneshot(output: OutputSpec) -> BatonConnector {
        let mut bc = connector("okta", "okta");
        bc.spec.mode = Mode::OneShot;
        bc.spec.credentials = Default::default();
        bc.spec.schedule = Some("0 */6 * * *".into());
        bc.spec.output = Some(output);
        bc
    }

    fn s3() -> OutputSpec {
        OutputSpec {
            s3: Some(S3Output {
                bucket: "c1-uploads".into(),
                key: None,
                region: Some("us-west-2".into()),
                endpoint: None,
                credentials_secret_ref: Some(SecretRef { name: "aws".into() }),
            }),
            persistent_volume_claim: None,
            uploader_image: None,
        }
    }

    fn pod(c: &CronJob) -> k8s_openapi::api::core::v1::PodSpec {
        c.spec.job_template.spec.clone().unwrap().template.spec.unwrap()
    }

    #[test]
    fn runs_never_get_client_credentials_and_sync_to_a_shared_file() {
        let c = cronjob(&oneshot(s3()), "hash");
        let pod = pod(&c);
        let connector = &pod.init_containers.as_ref().unwrap()[0];
        let env: Vec<&str> = connector.env.iter().flatten().map(|e| e.name.as_str()).collect();
        assert!(!env.iter().any(|e| e.starts_with("BATON_CLIENT")), "{env:?}");
        let file = connector.env.iter().flatten().find(|e| e.name == "BATON_FILE").unwrap();
        assert_eq!(file.value.as_deref(), Some(SYNC_FILE));
        assert_eq!(pod.containers.len(), 1);
        assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
        for c in pod.containers.iter().chain(pod.init_containers.iter().flatten()) {
            let sc = c.security_context.as_ref().unwrap();
            assert_eq!(sc.read_only_root_filesystem, Some(true));
            assert_eq!(sc.allow_privilege_escalation, Some(false));
            assert!(c.volume_mounts.iter().flatten().any(|m| m.mount_path == "/data"), "{}", c.name);
        }
        assert_eq!(pod.security_context.unwrap().run_as_non_root, Some(true));
        assert_eq!(c.spec.concurrency_policy.as_deref(), Some("Forbid"));
        assert_eq!(c.spec.schedule, "0 */6 * * *");
    }

    #[test]
    fn the_sync_step_works_in_the_capped_work_volume() {
        let mut bc = oneshot(s3());
        bc.spec.work_dir = Some(crate::api::WorkDirSpec { size_limit: Some(Quantity("8Gi".into())) });
        let pod = pod(&cronjob(&bc, "hash"));
        let volumes = pod.volumes.clone().unwrap();
        let work = volumes.iter().find(|v| v.name == deployment::WORK_VOLUME).unwrap();
        assert_eq!(work.empty_dir.as_ref().unwrap().size_limit, Some(Quantity("8Gi".into())));
        let connector = &pod.init_containers.as_ref().unwrap()[0];
        assert_eq!(connector.working_dir.as_deref(), Some("/work"));
        let tmpdir = connector.env.iter().flatten().find(|e| e.name == "TMPDIR").unwrap();
        assert_eq!(tmpdir.value.as_deref(), Some("/tmp"));
        let mounts = |c: &Container| -> Vec<(String, String, Option<String>)> {
            c.volume_mounts
                .iter()
                .flatten()
                .map(|m| (m.mount_path.clone(), m.name.clone(), m.sub_path.clone()))
                .collect()
        };
        let m = |path: &str, name: &str, sub: Option<&str>| {
            (path.to_string(), name.to_string(), sub.map(Into::into))
        };
        assert_eq!(
            mounts(connector),
            [m("/work", "work", None), m("/tmp", "work", Some("tmp")), m("/data", "sync", None)]
        );
        assert_eq!(mounts(&pod.containers[0]), [m("/tmp", "work", Some("tmp")), m("/data", "sync", None)]);
        for c in pod.containers.iter().chain(pod.init_containers.iter().flatten()) {
            for mount in c.volume_mounts.iter().flatten() {
                assert!(volumes.iter().any(|v| v.name == mount.name), "{}: no volume {}", c.name, mount.name);
            }
        }
    }

    #[test]
    fn s3_upload_is_one_copy_to_the_default_key() {
        let c = cronjob(&oneshot(s3()), "hash");
        let upload = &pod(&c).containers[0];
        assert_eq!(upload.image.as_deref(), Some(DEFAULT_S3_UPLOADER));
        let args = upload.args.clone().unwrap();
        assert!(args.contains(&"s3://c1-uploads/ns/okta/sync.c1z".to_string()), "{args:?}");
        assert!(args.windows(2).any(|w| w == ["--region", "us-west-2"]));
        let from = upload.env_from.as_ref().unwrap()[0].secret_ref.as_ref().unwrap();
        assert_eq!(from.name, "aws");
    }

    #[test]
    fn a_volume_gets_the_file_under_a_temporary_name_first() {
        let output = OutputSpec {
            s3: None,
            persistent_volume_claim: Some(PvcOutput { claim_name: "uploads".into(), path: None }),
            uploader_image: Some("registry.example/busybox:1.36".into()),
        };
        let c = cronjob(&oneshot(output), "hash");
        let pod = pod(&c);
        let upload = &pod.containers[0];
        assert_eq!(upload.image.as_deref(), Some("registry.example/busybox:1.36"));
        let script = &upload.args.as_ref().unwrap()[0];
        assert!(script.contains(".partial") && script.contains("mv "), "{script}");
        let dest = upload.env.iter().flatten().find(|e| e.name == "DEST").unwrap();
        assert_eq!(dest.value.as_deref(), Some("okta/sync.c1z"));
        let volume = pod.volumes.unwrap().into_iter().find(|v| v.name == "output").unwrap();
        assert_eq!(volume.persistent_volume_claim.unwrap().claim_name, "uploads");
    }

    #[test]
    fn suspend_and_inputs_reach_the_cronjob() {
        let mut bc = oneshot(s3());
        bc.spec.suspend = true;
        let c = cronjob(&bc, "abc");
        assert_eq!(c.spec.suspend, Some(true));
        let annotations = c.spec.job_template.spec.unwrap().template.metadata.unwrap().annotations.unwrap();
        assert_eq!(annotations[deployment::CONFIG_HASH_ANNOTATION], "abc");
    }

    #[test]
    fn a_requested_run_is_one_job_per_request_owned_by_the_cronjob() {
        let mut c = cronjob(&oneshot(s3()), "hash");
        assert!(manual_job(&c, "2026-11-30T12:00:00Z").is_none(), "no uid yet: not created");
        c.metadata.uid = Some("cj-uid".into());
        let a = manual_job(&c, "2026-11-30T12:00:00Z").unwrap();
        let b = manual_job(&c, "2026-11-30T12:00:00Z").unwrap();
        assert_eq!(a.metadata.name, b.metadata.name, "a retry finds the same Job");
        assert_ne!(a.metadata.name, manual_job(&c, "2026-11-30T13:00:00Z").unwrap().metadata.name);
        let owner = &a.metadata.owner_references.unwrap()[0];
        assert_eq!((owner.kind.as_str(), owner.uid.as_str()), ("CronJob", "cj-uid"));
        assert_eq!(a.metadata.labels.unwrap()[labels::INSTANCE_LABEL], "okta");
    }
}
