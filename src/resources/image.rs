//! The image a connector runs.

use crate::api::BatonConnector;

/// Connector releases are published here; GitHub's registry stopped receiving new tags in 2026.
pub const DEFAULT_REGISTRY: &str = "public.ecr.aws/conductorone";

/// `repository[:tag][@digest]`: a digest pins what runs, and a tag kept beside it documents it.
pub fn reference(bc: &BatonConnector) -> String {
    let image = bc.spec.image.clone().unwrap_or_default();
    let repository =
        image.repository.unwrap_or_else(|| format!("{DEFAULT_REGISTRY}/baton-{}", bc.spec.connector));
    match (image.tag, image.digest) {
        (Some(tag), Some(digest)) => format!("{repository}:{tag}@{digest}"),
        (None, Some(digest)) => format!("{repository}@{digest}"),
        (tag, None) => format!("{repository}:{}", tag.as_deref().unwrap_or("latest")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ImageSpec;
    use crate::resources::testing::connector;

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn with(image: ImageSpec) -> String {
        let mut bc = connector("x", "okta");
        bc.spec.image = Some(image);
        reference(&bc)
    }

    #[test]
    fn default_is_ecr_latest() {
        assert_eq!(
            reference(&connector("x", "sentinel-one")),
            "public.ecr.aws/conductorone/baton-sentinel-one:latest"
        );
    }

    #[test]
    fn tag_digest_and_repository() {
        assert_eq!(
            with(ImageSpec { tag: Some("1.2.3".into()), ..Default::default() }),
            format!("{DEFAULT_REGISTRY}/baton-okta:1.2.3")
        );
        assert_eq!(
            with(ImageSpec { digest: Some(DIGEST.into()), ..Default::default() }),
            format!("{DEFAULT_REGISTRY}/baton-okta@{DIGEST}")
        );
        assert_eq!(
            with(ImageSpec {
                repository: Some("mirror.local/baton-okta".into()),
                tag: Some("1.0.0".into()),
                digest: Some(DIGEST.into()),
                ..Default::default()
            }),
            format!("mirror.local/baton-okta:1.0.0@{DIGEST}")
        );
    }
}
