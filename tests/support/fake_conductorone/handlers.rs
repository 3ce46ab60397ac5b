//! HTTP routes of the fake, following the contract in `shared/reference/conductorone-api.md`:
//! the token endpoint, the three connector-credential operations, connectors (get, list, create,
//! delete, force sync, pause, resume) and apps (list, create, delete). Errors
//! are gRPC-status JSON `{code, message}` with the usual HTTP mapping, except the token
//! endpoint, which answers OAuth-style `{error, error_description}`.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, Path, Request, State as AxumState};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};
use tokio::sync::Notify;
use tokio::time::Instant;

use super::jws::{mint_secret, verify_assertion};
use super::state::{
    Fault, IssuedToken, Principal, RecordedCall, State, StoredApp, StoredConnector, StoredCredential,
    TokenExchange, new_id,
};

type AppState = AxumState<Arc<State>>;

/// Lets a handler close its own connection without answering (see [`Fault::Drop`]).
#[derive(Clone)]
pub struct ConnectionKill(pub Arc<Notify>);

pub fn router(state: Arc<State>) -> Router {
    Router::new()
        .route("/auth/v1/token", post(token))
        .route("/api/v1/apps/connectors/credentials", post(rotate_credential))
        .route(
            "/api/v1/apps/{app_id}/connectors/{connector_id}/credentials/{id}",
            get(get_credential).post(revoke_credential),
        )
        .route("/api/v1/apps", get(list_apps).post(create_app))
        .route("/api/v1/apps/{id}", delete(delete_app))
        .route("/api/v1/apps/{app_id}/connectors", get(list_connectors).post(create_connector))
        .route("/api/v1/apps/{app_id}/connectors/{connector_id}/force_sync", post(force_sync))
        .route("/api/v1/apps/{app_id}/connectors/{connector_id}/pause", post(pause_sync))
        .route("/api/v1/apps/{app_id}/connectors/{connector_id}/resume", post(resume_sync))
        .route("/api/v1/apps/{app_id}/connectors/{id}", get(get_connector).delete(delete_connector))
        .fallback(|| async { grpc_error(StatusCode::NOT_FOUND, 5, "Not Found") })
        .method_not_allowed_fallback(|| async {
            grpc_error(StatusCode::METHOD_NOT_ALLOWED, 12, "Method Not Allowed")
        })
        .layer(middleware::from_fn_with_state(state.clone(), record_and_inject))
        .with_state(state)
}

/// Records every request and applies the first matching fault rule before routing.
async fn record_and_inject(
    AxumState(state): AppState,
    Extension(kill): Extension<ConnectionKill>,
    request: Request,
    next: Next,
) -> Response {
    let method = request.method().to_string();
    let path = request.uri().path().to_owned();
    let (index, fault, latency) = {
        let mut inner = state.lock();
        inner.calls.push(RecordedCall {
            method: method.clone(),
            path: path.clone(),
            status: None,
            at: Instant::now(),
        });
        (inner.calls.len() - 1, inner.take_fault(&method, &path), inner.latency)
    };
    if let Some(latency) = latency {
        tokio::time::sleep(latency).await;
    }
    let response = match fault {
        Some(Fault::Drop) => {
            kill.0.notify_one();
            std::future::pending::<()>().await;
            unreachable!("the connection task is dropped first")
        }
        Some(Fault::LoseReply) => {
            let _ = next.run(request).await;
            state.lock().calls[index].status = None;
            kill.0.notify_one();
            std::future::pending::<()>().await;
            unreachable!("the connection task is dropped first")
        }
        Some(Fault::Delay(delay)) => {
            tokio::time::sleep(delay).await;
            next.run(request).await
        }
        Some(Fault::Respond { status, body, retry_after }) => {
            let status = StatusCode::from_u16(status).expect("valid status in a fault rule");
            let mut response = match body {
                Some(body) => json_response(status, body),
                None => status.into_response(),
            };
            if let Some(value) = retry_after {
                let value = HeaderValue::from_str(&value).expect("valid Retry-After");
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            response
        }
        None => next.run(request).await,
    };
    state.lock().calls[index].status = Some(response.status().as_u16());
    response
}

fn json_response(status: StatusCode, body: Value) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

fn grpc_error(status: StatusCode, code: i32, message: &str) -> Response {
    json_response(status, json!({"code": code, "message": message, "details": []}))
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    json_response(status, json!({"error": error, "error_description": description}))
}

async fn token(AxumState(state): AppState, headers: HeaderMap, body: Bytes) -> Response {
    let form_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if !form_type.starts_with("application/x-www-form-urlencoded") {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "expected a form body");
    }
    let form: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(&body).into_owned().collect();
    let field = |name: &str| form.get(name).map(String::as_str).unwrap_or_default();
    if field("grant_type") != "client_credentials" {
        return oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type", "");
    }
    if field("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
        || field("client_assertion").is_empty()
    {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "client assertion required");
    }
    let client_id = field("client_id");
    let now = Timestamp::now();
    let mut inner = state.lock();
    let Some(principal) = inner.principals.get(client_id) else {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "unknown client");
    };
    if principal.disabled {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "client revoked");
    }
    let checked = verify_assertion(
        field("client_assertion"),
        &principal.key,
        client_id,
        &state.audience,
        now.as_second(),
    );
    if let Err(why) = checked {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", &why);
    }
    let exchange = TokenExchange {
        client_id: client_id.to_owned(),
        credential_id: principal.credential_id.clone(),
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned(),
        at: now,
    };
    if let Some(id) = principal.credential_id.clone()
        && let Some(credential) = inner.credentials.iter_mut().find(|c| c.id == id)
    {
        credential.last_used_at = Some(now);
    }
    inner.exchanges.push(exchange);
    let access_token = format!("fake-at-{}", new_id());
    let ttl = inner.token_ttl;
    inner.tokens.insert(
        access_token.clone(),
        IssuedToken { client_id: client_id.to_owned(), expires_at: Instant::now() + ttl },
    );
    json_response(
        StatusCode::OK,
        json!({"access_token": access_token, "token_type": "Bearer", "expires_in": ttl.as_secs()}),
    )
}

/// The refusal, if the bearer token does not belong to a principal allowed to use the API.
fn refuse(state: &State, headers: &HeaderMap) -> Option<Response> {
    let unauthenticated = |why| Some(grpc_error(StatusCode::UNAUTHORIZED, 16, why));
    let Some(token) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return unauthenticated("unauthenticated: missing bearer token");
    };
    let inner = state.lock();
    let Some(issued) = inner.tokens.get(token) else {
        return unauthenticated("unauthenticated: unknown token");
    };
    if Instant::now() >= issued.expires_at {
        return unauthenticated("unauthenticated: token expired");
    }
    match inner.principals.get(&issued.client_id) {
        Some(Principal { disabled: true, .. }) | None => {
            unauthenticated("unauthenticated: principal revoked")
        }
        Some(Principal { api_access: false, .. }) => {
            Some(grpc_error(StatusCode::FORBIDDEN, 7, "permission denied"))
        }
        Some(_) => None,
    }
}

/// Bodies are parsed strictly: unknown or misspelt fields are refused, so a client that
/// drifts from the contract fails here rather than in production.
fn rotate_request(body: &[u8]) -> Option<(String, String)> {
    let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(body) else {
        return None;
    };
    if fields.keys().any(|k| k != "appId" && k != "connectorId") {
        return None;
    }
    let text = |name: &str| fields.get(name)?.as_str().filter(|s| !s.is_empty());
    Some((text("appId")?.to_owned(), text("connectorId")?.to_owned()))
}

async fn rotate_credential(AxumState(state): AppState, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(denied) = refuse(&state, &headers) {
        return denied;
    }
    let Some((app_id, connector_id)) = rotate_request(&body) else {
        return grpc_error(StatusCode::BAD_REQUEST, 3, "invalid argument: expected {appId, connectorId}");
    };
    match issue(&state, &app_id, &connector_id) {
        Some((credential, secret)) => {
            json_response(StatusCode::OK, json!({"credential": credential.to_json(&secret)}))
        }
        None => grpc_error(StatusCode::NOT_FOUND, 5, "connector not found"),
    }
}

/// Issues a credential for a connector (RotateCredential, or "Rotate" in the UI): the stored record
/// and the client secret, which is returned only here.
pub(super) fn issue(state: &State, app_id: &str, connector_id: &str) -> Option<(StoredCredential, String)> {
    let mut inner = state.lock();
    inner.connector_mut(app_id, connector_id)?;
    let (secret, key) = mint_secret();
    let id = new_id();
    let client_id = format!("{}@{}/ccc", new_id().to_lowercase(), state.authority);
    let now = Timestamp::now();
    let credential = StoredCredential {
        id: id.clone(),
        app_id: app_id.to_owned(),
        connector_id: connector_id.to_owned(),
        client_id: client_id.clone(),
        display_name: format!("Credential {}", inner.credentials.len() + 1),
        created_at: now,
        expires_at: inner.credential_lifetime.map(|lifetime| now + lifetime),
        last_used_at: None,
        revoked_at: None,
    };
    inner.credentials.push(credential.clone());
    inner
        .principals
        .insert(client_id, Principal { key, api_access: false, disabled: false, credential_id: Some(id) });
    Some((credential, secret))
}

async fn get_credential(
    AxumState(state): AppState,
    Path((app_id, connector_id, id)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Some(denied) = refuse(&state, &headers) {
        return denied;
    }
    let inner = state.lock();
    match inner
        .credentials
        .iter()
        .find(|c| c.id == id && c.app_id == app_id && c.connector_id == connector_id && !c.is_revoked())
    {
        // The secret is shown only on creation.
        Some(credential) => json_response(StatusCode::OK, json!({"credential": credential.to_json("")})),
        None => grpc_error(StatusCode::NOT_FOUND, 5, "not found"),
    }
}

async fn revoke_credential(
    AxumState(state): AppState,
    Path((app_id, connector_id, id)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(denied) = refuse(&state, &headers) {
        return denied;
    }
    // The request message has no fields: an absent body or `{}` only.
    let empty_object = matches!(serde_json::from_slice::<Value>(&body), Ok(Value::Object(o)) if o.is_empty());
    if !body.is_empty() && !empty_object {
        return grpc_error(StatusCode::BAD_REQUEST, 3, "invalid argument: expected {}");
    }
    let mut inner = state.lock();
    let Some(credential) = inner
        .credentials
        .iter_mut()
        .find(|c| c.id == id && c.app_id == app_id && c.connector_id == connector_id && !c.is_revoked())
    else {
        return grpc_error(StatusCode::NOT_FOUND, 5, "not found");
    };
    let id = credential.id.clone();
    inner.revoke_where(|c| c.id == id);
    json_response(StatusCode::OK, json!({}))
}

async fn get_connector(
    AxumState(state): AppState,
    Path((app_id, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Some(denied) = refuse(&state, &headers) {
        return denied;
    }
    let mut inner = state.lock();
    match inner.connector_mut(&app_id, &id) {
        Some(connector) => json_response(
            StatusCode::OK,
            json!({
                "connectorView": {
                    "connector": connector.to_json(),
                    "appPath": "", "capabilitiesPath": "", "usersPath": "",
                },
                "expanded": [],
            }),
        ),
        None => grpc_error(StatusCode::NOT_FOUND, 5, "not found (request-id: fake)"),
    }
}

/// Connector.List: pages of at most ten, whatever `page_size` asks for (a server caps page sizes),
/// with the offset of the next page as its token.
async fn list_connectors(
    AxumState(state): AppState,
    Path(app_id): Path<String>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Response {
    if let Some(denied) = refuse(&state, &headers) {
        return denied;
    }
    let Some((start, size)) = page_of(&uri) else {
        return grpc_error(StatusCode::BAD_REQUEST, 3, "invalid page token");
    };
    let inner = state.lock();
    if inner.apps.iter().any(|a| a.id == app_id && a.deleted_at.is_some()) {
        return grpc_error(StatusCode::NOT_FOUND, 5, "app not found (request-id: fake)");
    }
    let all: Vec<_> = inner.connectors.iter().filter(|c| c.app_id == app_id).collect();
    let page: Vec<Value> = all
        .iter()
        .skip(start)
        .take(size)
        .map(|c| json!({"connector": c.to_json(), "appPath": "", "capabilitiesPath": "", "usersPath": ""}))
        .collect();
    let next = if start + size < all.len() { (start + size).to_string() } else { String::new() };
    json_response(StatusCode::OK, json!({"list": page, "nextPageToken": next, "expanded": []}))
}

/// ForceSync: queues a sync. The fake records the call (see `calls`) and marks the sync running.
async fn force_sync(
    AxumState(state): AppState,
    Path((app_id, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    connector_action(&state, &app_id, &id, &headers, |c| {
        c.status = json!({"status": "SYNC_STATUS_RUNNING", "startedAt": Timestamp::now().to_string(),
            "completedAt": c.status.get("completedAt").cloned().unwrap_or(Value::Null), "lastError": ""});
    })
}

/// PauseSync: ConductorOne shows a paused connector as sync-disabled.
async fn pause_sync(
    AxumState(state): AppState,
    Path((app_id, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    connector_action(&state, &app_id, &id, &headers, |c| {
        c.extra.insert("syncDisabledAt".into(), json!(Timestamp::now().to_string()));
        c.extra.insert("syncDisabledReason".into(), json!("paused by a user"));
        c.extra.insert("canResumeSync".into(), json!(true));
    })
}

async fn resume_sync(
    AxumState(state): AppState,
    Path((app_id, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    connector_action(&state, &app_id, &id, &headers, |c| {
        for key in ["syncDisabledAt", "syncDisabledReason", "canResumeSync"] {
            c.extra.remove(key);
        }
    })
}

fn connector_action(
    state: &Arc<State>,
    app_id: &str,
    id: &str,
    headers: &HeaderMap,
    change: impl FnOnce(&mut super::state::StoredConnector),
) -> Response {
    if let Some(denied) = refuse(state, headers) {
        return denied;
    }
    let mut inner = state.lock();
    match inner.connector_mut(app_id, id) {
        Some(connector) => {
            change(connector);
            json_response(StatusCode::OK, json!({}))
        }
        None => grpc_error(StatusCode::NOT_FOUND, 5, "not found (request-id: fake)"),
    }
}

/// A request body as a JSON object whose keys all come from `allowed`, or `None`.
fn strict_body(body: &[u8], allowed: &[&str]) -> Option<serde_json::Map<String, Value>> {
    let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(body) else { return None };
    fields.keys().all(|k| allowed.contains(&k.as_str())).then_some(fields)
}

fn text_field(fields: &serde_json::Map<String, Value>, name: &str) -> Option<String> {
    match fields.get(name) {
        None => Some(String::new()),
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => None,
    }
}

/// Apps.Create: a manual app. `displayName` is required.
async fn create_app(AxumState(state): AppState, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(denied) = refuse(&state, &headers) {
        return denied;
    }
    const ALLOWED: &[&str] = &[
        "displayName",
        "description",
        "annotations",
        "owners",
        "appEntitlementOwnerRefs",
        "certifyPolicyId",
        "grantPolicyId",
        "revokePolicyId",
        "identityMatching",
        "instructions",
        "monthlyCostUsd",
        "strictAccessEntitlementProvisioning",
        "matchBatonRef",
    ];
    let fields = strict_body(&body, ALLOWED);
    let (Some(name), Some(description)) = (
        fields.as_ref().and_then(|f| text_field(f, "displayName")).filter(|n| !n.is_empty()),
        fields.as_ref().and_then(|f| text_field(f, "description")),
    ) else {
        return grpc_error(
            StatusCode::BAD_REQUEST,
            3,
            "invalid argument: CreateAppRequest.displayName is required",
        );
    };
    let app = StoredApp {
        id: new_id(),
        display_name: name,
        description,
        created_at: Timestamp::now(),
        deleted_at: None,
    };
    let body = json!({"app": app.to_json()});
    state.lock().apps.push(app);
    json_response(StatusCode::OK, body)
}

/// Apps.List: pages of at most ten, like Connector.List.
async fn list_apps(AxumState(state): AppState, uri: axum::http::Uri, headers: HeaderMap) -> Response {
    if let Some(denied) = refuse(&state, &headers) {
        return denied;
    }
    let Some((start, size)) = page_of(&uri) else {
        return grpc_error(StatusCode::BAD_REQUEST, 3, "invalid page token");
    };
    let inner = state.lock();
    let all: Vec<&StoredApp> = inner.apps.iter().filter(|a| a.deleted_at.is_none()).collect();
    let page: Vec<Value> = all.iter().skip(start).take(size).map(|a| a.to_json()).collect();
    let next = if start + size < all.len() { (start + size).to_string() } else { String::new() };
    json_response(StatusCode::OK, json!({"list": page, "nextPageToken": next}))
}

/// `(offset, size)` from `page_token` and `page_size`; pages hold at most ten.
fn page_of(uri: &axum::http::Uri) -> Option<(usize, usize)> {
    let query: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes()).into_owned().collect();
    let size =
        query.get("page_size").and_then(|s| s.parse::<usize>().ok()).filter(|n| *n > 0).unwrap_or(10).min(10);
    let start = query.get("page_token").map_or(Ok(0), |t| t.parse::<usize>()).ok()?;
    Some((start, size))
}

/// Apps.Delete. The fake refuses to delete an app that still has connectors (FAILED_PRECONDITION),
/// so a client must remove its connector first.
async fn delete_app(AxumState(state): AppState, Path(id): Path<String>, headers: HeaderMap) -> Response {
    if let Some(denied) = refuse(&state, &headers) {
        return denied;
    }
    let mut inner = state.lock();
    if inner.app(&id).is_none() {
        return grpc_error(StatusCode::NOT_FOUND, 5, "app not found (request-id: fake)");
    }
    if inner.connectors.iter().any(|c| c.app_id == id) {
        return grpc_error(StatusCode::BAD_REQUEST, 9, "failed precondition: the app still has connectors");
    }
    if let Some(app) = inner.apps.iter_mut().find(|a| a.id == id) {
        app.deleted_at = Some(Timestamp::now());
    }
    json_response(StatusCode::OK, json!({}))
}

/// Connector.CreateDelegated: a connector pending its config, in an existing app.
async fn create_connector(
    AxumState(state): AppState,
    Path(app_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(denied) = refuse(&state, &headers) {
        return denied;
    }
    const ALLOWED: &[&str] =
        &["catalogId", "description", "displayName", "userIds", "appEntitlementOwnerRefs", "expandMask"];
    let Some(fields) = strict_body(&body, ALLOWED) else {
        return grpc_error(StatusCode::BAD_REQUEST, 3, "invalid argument: unknown field in the request");
    };
    let user_ids = match fields.get("userIds") {
        None | Some(Value::Null) => Some(Vec::new()),
        Some(Value::Array(ids)) => ids.iter().map(|v| v.as_str().map(str::to_owned)).collect(),
        Some(_) => None,
    };
    let (Some(catalog_id), Some(display_name), Some(description), Some(user_ids)) = (
        text_field(&fields, "catalogId"),
        text_field(&fields, "displayName"),
        text_field(&fields, "description"),
        user_ids,
    ) else {
        return grpc_error(StatusCode::BAD_REQUEST, 3, "invalid argument: malformed field");
    };
    if catalog_id.is_empty() {
        return grpc_error(StatusCode::BAD_REQUEST, 3, "invalid argument: catalogId is required");
    }
    let mut inner = state.lock();
    if inner.app(&app_id).is_none() {
        return grpc_error(StatusCode::NOT_FOUND, 5, "app not found (request-id: fake)");
    }
    let connector = StoredConnector {
        app_id,
        id: new_id(),
        display_name,
        description,
        catalog_id,
        user_ids,
        status: Value::Null,
        extra: Default::default(),
        created_at: Timestamp::now(),
    };
    let body = json!({
        "connectorView": {"connector": connector.to_json(), "appPath": "", "capabilitiesPath": "", "usersPath": ""},
        "expanded": [],
    });
    inner.connectors.push(connector);
    json_response(StatusCode::OK, body)
}

/// Connector.Delete. Credentials of the connector stop working with it.
async fn delete_connector(
    AxumState(state): AppState,
    Path((app_id, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Some(denied) = refuse(&state, &headers) {
        return denied;
    }
    let mut inner = state.lock();
    if inner.connector_mut(&app_id, &id).is_none() {
        return grpc_error(StatusCode::NOT_FOUND, 5, "connector not found (request-id: fake)");
    }
    inner.connectors.retain(|c| !(c.app_id == app_id && c.id == id));
    inner.revoke_where(|c| c.app_id == app_id && c.connector_id == id);
    json_response(StatusCode::OK, json!({}))
}
