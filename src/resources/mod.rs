//! Pure desired-state builders: labels, inputs and their hash, the Deployment, and the comparison that
//! decides whether an apply is needed. Nothing here talks to a server.

pub mod compare;
pub mod config_env;
pub mod credentials;
pub mod cronjob;
pub mod deployment;
pub mod image;
pub mod inputs;
pub mod labels;
#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;

use k8s_openapi::api::apps::v1::Deployment;
use kube::ResourceExt;

pub use inputs::{InputProblem, SecretData};

use crate::api::BatonConnector;

/// Everything the operator applies for one resource.
#[derive(Clone, Debug)]
pub struct Plan {
    pub deployment: Deployment,
    pub image: String,
    pub config_hash: String,
}

/// Computes the desired children of `bc` from the Secret data it reads; `credentials_secret` holds
/// the ConductorOne client ID and secret (the user's, or the operator's current managed revision).
pub fn plan(
    bc: &BatonConnector,
    secrets: &SecretData,
    credentials_secret: &str,
) -> Result<Plan, InputProblem> {
    let namespace = bc.namespace().unwrap_or_default();
    let config_hash = inputs::pod_inputs_hash(bc, &namespace, secrets, Some(credentials_secret))?;
    let credentials_secret = credentials_secret.to_string();
    let deployment = deployment::deployment(
        bc,
        &deployment::DeploymentInputs { config_hash: config_hash.clone(), credentials_secret },
    );
    Ok(Plan { deployment, image: image::reference(bc), config_hash })
}

/// OneShot mode: the CronJob and the hash of what its runs read.
pub fn plan_cronjob(
    bc: &BatonConnector,
    secrets: &SecretData,
) -> Result<(k8s_openapi::api::batch::v1::CronJob, String), InputProblem> {
    let namespace = bc.namespace().unwrap_or_default();
    let config_hash = inputs::pod_inputs_hash(bc, &namespace, secrets, None)?;
    Ok((cronjob::cronjob(bc, &config_hash), config_hash))
}
