//! The error paths of `execute` against a fake API server that answers as kube-apiserver does, so
//! the exit code a script sees is checked from the HTTP status up.

use std::collections::BTreeMap;

use clap::Parser as _;
use http::{Request, Response};
use kube::{Client, client::Body};
use serde_json::{Value, json};

use super::{Cli, PluginError, error::exit, execute};

const DISCOVERY: &str = "/apis/baton.conductorone.com/v1alpha1";

/// Answers by path; anything not listed is a 404 like the API server's for an unknown path.
fn fake(routes: BTreeMap<&'static str, (u16, Value)>) -> Client {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    tokio::spawn(async move {
        while let Some((request, send)) = handle.next_request().await {
            let (code, body) =
                routes.get(request.uri().path()).cloned().unwrap_or_else(|| (404, not_found("")));
            let response =
                Response::builder().status(code).body(Body::from(serde_json::to_vec(&body).unwrap()));
            send.send_response(response.unwrap());
        }
    });
    Client::new(service, "identity")
}

fn not_found(name: &str) -> Value {
    let message = if name.is_empty() {
        "the server could not find the requested resource".to_string()
    } else {
        format!("batonconnectors.baton.conductorone.com \"{name}\" not found")
    };
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
        "reason": "NotFound", "details": {"name": name, "group": "baton.conductorone.com", "kind": "batonconnectors"}, "code": 404})
}

fn forbidden() -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "batonconnectors.baton.conductorone.com is forbidden: User \"jane\" cannot list resource \"batonconnectors\" in API group \"baton.conductorone.com\" in the namespace \"identity\"",
        "reason": "Forbidden", "code": 403})
}

fn discovery(resources: &[&str]) -> (u16, Value) {
    let resources: Vec<Value> = resources
        .iter()
        .map(|r| json!({"name": r, "singularName": "", "namespaced": true, "kind": "BatonConnector", "verbs": ["get", "list"]}))
        .collect();
    (
        200,
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "baton.conductorone.com/v1alpha1", "resources": resources}),
    )
}

async fn exit_code(client: Client, args: &[&str]) -> (u8, String) {
    let cli = Cli::parse_from(std::iter::once("kubectl-baton").chain(args.iter().copied()));
    let mut out = Vec::new();
    match execute(client, cli, &mut out).await {
        Ok(()) => (0, String::from_utf8(out).unwrap()),
        Err(e) => (e.exit_code(), e.to_string()),
    }
}

#[tokio::test]
async fn a_group_the_api_server_does_not_serve_means_the_crd_is_missing() {
    let client = fake(BTreeMap::new());
    let (code, message) = exit_code(client, &["status", "-A"]).await;
    assert_eq!(code, exit::CRD_MISSING, "{message}");
    assert!(message.contains("CRD is not installed"), "{message}");
}

#[tokio::test]
async fn a_group_without_batonconnectors_means_the_crd_is_missing() {
    let client = fake(BTreeMap::from([(DISCOVERY, discovery(&["somethingelse"]))]));
    assert_eq!(exit_code(client, &["describe", "okta"]).await.0, exit::CRD_MISSING);
}

#[tokio::test]
async fn forbidden_list_is_a_permission_error_with_the_api_servers_words() {
    let client = fake(BTreeMap::from([
        (DISCOVERY, discovery(&["batonconnectors"])),
        ("/apis/baton.conductorone.com/v1alpha1/namespaces/identity/batonconnectors", (403, forbidden())),
    ]));
    let (code, message) = exit_code(client, &["status"]).await;
    assert_eq!(code, exit::FORBIDDEN, "{message}");
    assert!(message.contains("cannot list resource"), "{message}");
}

#[tokio::test]
async fn an_unknown_name_is_not_found_not_a_missing_crd() {
    let client = fake(BTreeMap::from([
        (DISCOVERY, discovery(&["batonconnectors"])),
        (
            "/apis/baton.conductorone.com/v1alpha1/namespaces/identity/batonconnectors/nope",
            (404, not_found("nope")),
        ),
    ]));
    for args in [&["describe", "nope"][..], &["rotate", "nope"], &["suspend", "nope", "-n", "identity"]] {
        let (code, message) = exit_code(client.clone(), args).await;
        assert_eq!(code, exit::NOT_FOUND, "{args:?}: {message}");
        assert!(message.contains("\"nope\" not found in namespace \"identity\""), "{message}");
    }
}

#[test]
fn exit_codes_are_distinct() {
    let errors = [
        PluginError::CrdMissing,
        PluginError::Forbidden(String::new()),
        PluginError::NotFound { kind: "batonconnector", namespace: String::new(), name: String::new() },
        PluginError::Invalid(String::new()),
        PluginError::Timeout { what: String::new(), after: std::time::Duration::ZERO },
        PluginError::Other(anyhow::anyhow!("x")),
    ];
    let mut codes: Vec<u8> = errors.iter().map(PluginError::exit_code).collect();
    codes.sort();
    codes.dedup();
    assert_eq!(codes.len(), errors.len());
    assert!(!codes.contains(&0) && !codes.contains(&2), "0 is success and 2 is clap's usage error");
}

/// `import NAME` reads the Deployment alone, before (and without) the CRD: it may run before the
/// operator is installed. A Deployment that is not there is exit 5, named as a Deployment.
#[tokio::test]
async fn import_reads_the_deployment_from_the_cluster_without_the_crd() {
    let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "baton-okta", "namespace": "identity"},
        "spec": {"selector": {"matchLabels": {"app": "baton-okta"}}, "template": {"spec": {"containers": [{
            "name": "baton-okta", "image": "public.ecr.aws/conductorone/baton-okta:v0.4.2",
            "env": [{"name": "BATON_DOMAIN", "value": "acme.okta.com"},
                    {"name": "BATON_API_TOKEN", "valueFrom": {"secretKeyRef": {"name": "okta", "key": "api-token"}}}],
            "envFrom": [{"secretRef": {"name": "okta-c1"}}]}]}}}});
    let client = fake(BTreeMap::from([(
        "/apis/apps/v1/namespaces/identity/deployments/baton-okta",
        (200, deployment),
    )]));
    let (code, text) = exit_code(client.clone(), &["import", "baton-okta"]).await;
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("  connector: okta\n") && text.contains("  namespace: identity\n"), "{text}");
    // The Secret is not read, so the client credentials are assumed to be in it, and the reader is told.
    assert!(text.contains("assumed: the Deployment sets no BATON_CLIENT_ID itself"), "{text}");
    let (code, message) = exit_code(client, &["import", "nope"]).await;
    assert_eq!(code, exit::NOT_FOUND, "{message}");
    assert!(message.contains("deployment \"nope\" not found in namespace \"identity\""), "{message}");
}

/// `status` lists the tenants in scope; a list the caller may not read leaves the tenants out with a
/// note, and the connectors' summary still comes.
#[tokio::test]
async fn status_lists_tenants_and_survives_a_forbidden_tenant_list() {
    let tenant = json!({"apiVersion": "baton.conductorone.com/v1alpha1", "kind": "ConductorOneTenant",
        "metadata": {"name": "own", "namespace": "identity"},
        "spec": {"apiCredentialsSecretRef": {"name": "c1"}},
        "status": {"connectors": 1, "rateLimited": true, "conditions": [{"type": "Ready", "status": "False",
            "reason": "Unreachable", "message": "timeout", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}});
    let list = |kind: &str, items: Vec<Value>| {
        (
            200,
            json!({"apiVersion": "baton.conductorone.com/v1alpha1", "kind": kind, "metadata": {}, "items": items}),
        )
    };
    let client = fake(BTreeMap::from([
        (DISCOVERY, discovery(&["batonconnectors"])),
        (
            "/apis/baton.conductorone.com/v1alpha1/namespaces/identity/batonconnectors",
            list("BatonConnectorList", vec![]),
        ),
        (
            "/apis/baton.conductorone.com/v1alpha1/namespaces/identity/conductoronetenants",
            list("ConductorOneTenantList", vec![tenant]),
        ),
        ("/apis/baton.conductorone.com/v1alpha1/clusterconductoronetenants", (403, forbidden())),
    ]));
    let (code, text) = exit_code(client, &["status"]).await;
    assert_eq!(code, 0, "{text}");
    let row = text.lines().find(|l| l.contains("own")).unwrap_or_default();
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        cells,
        ["ConductorOneTenant", "identity", "own", "False", "Unreachable", "1", "yes"],
        "{text}"
    );
    assert!(text.contains("(ClusterConductorOneTenants not listed: forbidden)"), "{text}");
}
