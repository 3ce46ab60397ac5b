//! OneShot mode's part of the spec: the limits of each run and where its sync file goes.
//!
//! Every field carries a doc comment: the comments become the CRD's descriptions.

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

use super::refs::SecretRef;

/// Limits of each OneShot run.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RunsSpec {
    /// Retries of a failed run before it counts as failed.
    #[serde(default = "default_backoff_limit")]
    #[schemars(range(min = 0, max = 10))]
    pub backoff_limit: i32,
    /// How long one run may take, in seconds, retries included.
    #[serde(default = "default_active_deadline")]
    #[schemars(range(min = 60))]
    pub active_deadline_seconds: i64,
    /// How late a missed run may still start, in seconds (the operator or the cluster was down).
    #[serde(default = "default_starting_deadline")]
    #[schemars(range(min = 10))]
    pub starting_deadline_seconds: i64,
    /// How many finished runs of each kind (succeeded, failed) stay for `kubectl logs`.
    #[serde(default = "default_history")]
    #[schemars(range(min = 0, max = 20))]
    pub history_limit: i32,
}

fn default_backoff_limit() -> i32 {
    2
}
fn default_active_deadline() -> i64 {
    4 * 3600
}
fn default_starting_deadline() -> i64 {
    600
}
fn default_history() -> i32 {
    3
}

impl Default for RunsSpec {
    fn default() -> Self {
        Self {
            backoff_limit: default_backoff_limit(),
            active_deadline_seconds: default_active_deadline(),
            starting_deadline_seconds: default_starting_deadline(),
            history_limit: default_history(),
        }
    }
}

/// Where a OneShot run's sync file goes: exactly one destination.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.s3) != has(self.persistentVolumeClaim)").message("set exactly one of output.s3 or output.persistentVolumeClaim"))]
pub struct OutputSpec {
    /// An S3 bucket (or an S3-compatible store), for example the one ConductorOne's S3 data source
    /// reads. The file is uploaded in one request, so a reader never sees half of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3: Option<S3Output>,
    /// A PersistentVolumeClaim in this namespace, for uploading by hand. The file is written under a
    /// temporary name and renamed, so a reader never sees half of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistent_volume_claim: Option<PvcOutput>,
    /// The image of the container that uploads the file after the connector succeeded. Defaults to
    /// `public.ecr.aws/aws-cli/aws-cli:latest` for `s3` and `docker.io/library/busybox:stable` for
    /// `persistentVolumeClaim`; pin one (by digest) in production.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 512))]
    pub uploader_image: Option<String>,
}

/// An S3 destination.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct S3Output {
    /// The bucket name.
    #[schemars(length(min = 3, max = 63), regex(pattern = r"^[a-z0-9][a-z0-9.-]*[a-z0-9]$"))]
    pub bucket: String,
    /// The object key. Defaults to `<namespace>/<name>/sync.c1z`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1024))]
    pub key: Option<String>,
    /// The bucket's region, for example `us-west-2`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64), regex(pattern = r"^[a-z0-9-]+$"))]
    pub region: Option<String>,
    /// The endpoint of an S3-compatible store (MinIO, Ceph, R2), as an `https://` or `http://` URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 512), regex(pattern = r"^https?://[^\s]+$"))]
    pub endpoint: Option<String>,
    /// A Secret in this namespace with `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` (and optionally
    /// `AWS_SESSION_TOKEN`) for the uploader. Without it the uploader uses the pod's identity: set
    /// `serviceAccountName` to a ServiceAccount bound to a cloud role (IRSA, workload identity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret_ref: Option<SecretRef>,
}

/// A PersistentVolumeClaim destination.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PvcOutput {
    /// The claim's name, in this namespace.
    #[schemars(length(min = 1, max = 253), regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"))]
    pub claim_name: String,
    /// The file's path inside the volume. Defaults to `<name>/sync.c1z`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1024), regex(pattern = r"^[^/](.*[^/])?$"))]
    #[x_kube(validation = Rule::new("!self.contains('..')").message("output.persistentVolumeClaim.path may not contain '..'"))]
    pub path: Option<String>,
}
