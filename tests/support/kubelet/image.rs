//! The images the executing kubelet knows, all under the reserved registry `e2e.local` (no real
//! registry answers for it, so nothing the suite runs is ever pulled):
//!
//! - `e2e.local/baton-<connector>:v<X.Y.Z>`: the stand-in connector playing `<connector>` (its schema
//!   from the catalog) on baton-sdk `vX.Y.Z`. As the connector images do (distroless `nonroot`), it
//!   runs `/baton-<connector>` as user 65532 in `/home/nonroot`.
//! - `e2e.local/busybox:<tag>`: a shell and the coreutils (the host's), for the OneShot uploader.
//! - `e2e.local/missing/<anything>`: an image no registry has: the pull fails (`ErrImagePull`, then
//!   `ImagePullBackOff`).
//!
//! Any other image is unknown: its pod is simulated (marked Running and Ready), as before.

use super::sdk;

pub const REGISTRY: &str = "e2e.local/";
/// Set in the stand-in's image environment: which connector and SDK version it plays
/// (`okta v0.7.6`). The suite's binary runs as the stand-in when it finds it.
pub const PLAYS_VAR: &str = "E2E_STANDIN_PLAYS";
/// The distroless `nonroot` user and group.
pub const NONROOT: u32 = 65532;
const PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What an image's configuration says (OCI `config`): entrypoint, command, environment, working
/// directory and user; and which path of its root holds the stand-in binary, if any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageConfig {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<(String, String)>,
    pub working_dir: String,
    pub user: u32,
    /// `/baton-<connector>`: where the stand-in binary lies in the image's root.
    pub standin: Option<String>,
}

/// What pulling an image gives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pull {
    Image(ImageConfig),
    /// The registry has no such image: the message a container runtime gives.
    NotFound(String),
    /// Not an image of the suite's: the pod is simulated.
    Unknown,
}

pub fn pull(image: &str) -> Pull {
    let Some(rest) = image.strip_prefix(REGISTRY) else { return Pull::Unknown };
    if rest.starts_with("missing/") {
        return Pull::NotFound(format!(
            "failed to pull and unpack image \"{image}\": failed to resolve reference \"{image}\": {image}: not found"
        ));
    }
    let name = rest.split([':', '@']).next().unwrap_or_default();
    if name == "busybox" {
        return Pull::Image(ImageConfig {
            entrypoint: Vec::new(),
            cmd: vec!["sh".into()],
            env: vec![split(PATH)],
            working_dir: "/".into(),
            user: 0,
            standin: None,
        });
    }
    let (Some(connector), Some(version)) = (name.strip_prefix("baton-"), sdk::image_sdk_version(image))
    else {
        return Pull::NotFound(format!(
            "failed to pull and unpack image \"{image}\": {image}: not found (e2e.local serves baton-<connector>:v<X.Y.Z> and busybox)"
        ));
    };
    let binary = format!("/baton-{connector}");
    let (x, y, z) = version;
    Pull::Image(ImageConfig {
        entrypoint: vec![binary.clone()],
        cmd: Vec::new(),
        env: vec![split(PATH), (PLAYS_VAR.into(), format!("{connector} v{x}.{y}.{z}"))],
        working_dir: "/home/nonroot".into(),
        user: NONROOT,
        standin: Some(binary),
    })
}

/// Whether every container of a pod runs an image of the suite's (then the pod is executed).
pub fn known(image: &str) -> bool {
    image.starts_with(REGISTRY)
}

fn split(kv: &str) -> (String, String) {
    let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
    (k.into(), v.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connector_image_plays_its_connector_and_sdk() {
        let Pull::Image(c) = pull("e2e.local/baton-okta:v0.7.6") else { panic!() };
        assert_eq!(c.entrypoint, ["/baton-okta"]);
        assert_eq!(c.standin.as_deref(), Some("/baton-okta"));
        assert!(c.env.contains(&(PLAYS_VAR.into(), "okta v0.7.6".into())));
        assert_eq!((c.user, c.working_dir.as_str()), (NONROOT, "/home/nonroot"));
    }

    #[test]
    fn missing_and_malformed_images_do_not_pull_and_others_are_unknown() {
        assert!(
            matches!(pull("e2e.local/missing/baton-okta:v1.0.0"), Pull::NotFound(m) if m.contains("not found"))
        );
        assert!(matches!(pull("e2e.local/baton-okta:latest"), Pull::NotFound(_)));
        assert_eq!(pull("public.ecr.aws/conductorone/baton-okta:latest"), Pull::Unknown);
        assert!(matches!(pull("e2e.local/busybox:stable"), Pull::Image(c) if c.cmd == ["sh"]));
    }
}
