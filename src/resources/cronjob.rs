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
    template_annotations.insert("kubectl.kubernetes.io/default-container".into(), deployment::container_name(bc));
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
    let plain = |name: &str, value: String| EnvVar { name: name.into(), value: Some(value), value_from: None };
    let mut env = vec![plain("BATON_HOST_ID", bc.name_any()), plain("BATON_FILE", SYNC_FILE.into())];
    env.extend(bc.spec.env.iter().map(|e| plain(&e.name, e.value.clone())));
    let mut c = deployment::connector_container(bc);
    c.env = Some(env);
    c.volume_mounts.get_or_insert_with(Vec::new).push(mount("sync", "/data"));
    c
}

fn uploader(bc: &BatonConnector) -> Container {
    let output = bc.spec.output.clone().unwrap_or(OutputSpec { s3: None, persistent_volume_claim: None, uploader_image: None });
    let plain = |name: &str, value: String| EnvVar { name: name.into(), value: Some(value), value_from: None };
    let mut c = Container {
        name: "upload".into(),
        resources: Some(deployment::default_resources()),
        security_context: Some(deployment::restricted_container()),
        volume_mounts: Some(vec![mount("tmp", "/tmp"), mount("sync", "/data")]),
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
    let empty = |name: &str| Volume {
        name: name.into(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Default::default()
    };
    let mut v = vec![empty("tmp"), empty("sync")];
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
