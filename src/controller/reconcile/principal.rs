//! The service principal a connector's ConductorOne calls use, observed: the older form's Secret
//! in the connector's namespace, or its tenant (from the tenant store) and the tenant's Secret (for
//! a cluster tenant, in the operator's namespace). `decide::tenant` decides; this reads.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Namespace;
use kube::Api;

use crate::{
    Result,
    api::{ConductorOneSpec, ConnectorDefaults},
    conductorone::ApiCredentials,
    controller::context::Context,
    decide::tenant::{self, Source, Wanted},
    resources::{InputProblem, SecretData},
};

/// The principal as observed, or the connector's problem with it.
pub type Principal = std::result::Result<(Source, ApiCredentials), InputProblem>;

/// Resolves a connector's principal. `own` holds the Secrets of the connector's namespace that the
/// pass already read (the older form's among them). Errors are the API server's only.
pub async fn observe(
    ctx: &Context,
    namespace: &str,
    c1: &ConductorOneSpec,
    own: &SecretData,
) -> Result<Principal> {
    Ok(observe_with_defaults(ctx, namespace, c1, own).await?.0)
}

/// [`observe`], and the connector defaults of the tenant once it is found, even when its Secret is
/// not usable: the workload does not change with the state of the tenant's credentials.
pub async fn observe_with_defaults(
    ctx: &Context,
    namespace: &str,
    c1: &ConductorOneSpec,
    own: &SecretData,
) -> Result<(Principal, Option<ConnectorDefaults>)> {
    let wanted = tenant::wanted(c1);
    if let Wanted::OwnSecret(_) = wanted {
        let source = tenant::resolve(namespace, c1, &[], &ctx.config.operator_namespace, None)
            .expect("the older form always resolves");
        return Ok((tenant::principal(&source, own).map(|creds| (source, creds)), None));
    }
    let tenants = &ctx.caches.tenants;
    tenants.listed().await;
    let found = tenants.found(namespace, &wanted);
    let labels = if found.iter().any(|t| t.allowed.as_ref().is_some_and(|a| a.selector.is_some())) {
        namespace_labels(ctx, namespace).await?
    } else {
        None
    };
    let source = match tenant::resolve(namespace, c1, &found, &ctx.config.operator_namespace, labels.as_ref())
    {
        Ok(source) => source,
        Err(p) => return Ok((Err(p), None)),
    };
    let secrets = ctx
        .caches
        .secrets(&ctx.client, &source.secret_namespace, std::slice::from_ref(&source.secret_name))
        .await?;
    let defaults = source.defaults.clone();
    Ok((tenant::principal(&source, &secrets).map(|creds| (source, creds)), defaults))
}

/// A namespace's labels, for a cluster tenant that selects namespaces by label; `None` when the
/// namespace does not exist.
async fn namespace_labels(ctx: &Context, namespace: &str) -> Result<Option<BTreeMap<String, String>>> {
    let api: Api<Namespace> = Api::all(ctx.client.clone());
    Ok(api.get_opt(namespace).await?.map(|n| n.metadata.labels.unwrap_or_default()))
}
