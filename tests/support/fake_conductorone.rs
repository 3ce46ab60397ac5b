//! An in-process fake of the ConductorOne API for tests, on `127.0.0.1:<random port>`.
//!
//! ```ignore
//! let fake = FakeConductorOne::start().await;
//! let operator = fake.register_principal("operator");      // client id + secret it accepts
//! fake.add_connector("app1", "conn1", "okta");
//! fake.inject(FaultRule::new(Fault::rate_limited("1")).on_path("/auth/v1/token"));
//! // ... call it with a client built with `allow_insecure_http: true` ...
//! assert_eq!(fake.count("POST", "/auth/v1/token"), 2);
//! ```
//!
//! Client ids it issues and accepts have the form `<name>@127.0.0.1:<port>/<use-case>`, so a
//! client that takes its host from the client id reaches the fake without extra configuration.

mod handlers;
pub mod jws;
mod state;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ed25519_dalek::VerifyingKey;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use k8s_openapi::jiff::Timestamp;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::{JoinHandle, JoinSet};

pub use state::{Fault, FaultRule, RecordedCall, StoredApp, StoredCredential, TokenExchange};

use handlers::ConnectionKill;
use jws::mint_secret;
use state::{Principal, State, StoredConnector};

/// A client id and secret the fake accepts.
#[derive(Clone, Debug)]
pub struct PrincipalCredentials {
    pub client_id: String,
    pub client_secret: String,
}

/// Handle to a running fake; the server stops when it is dropped.
pub struct FakeConductorOne {
    state: Arc<State>,
    /// `None` while offline.
    server: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for FakeConductorOne {
    fn drop(&mut self) {
        self.go_offline();
    }
}

fn serve(listener: TcpListener, state: Arc<State>) -> JoinHandle<()> {
    let app = handlers::router(state);
    tokio::spawn(async move {
        // Owning the connections here means aborting this task closes them all.
        let mut connections = JoinSet::new();
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            // Hand-rolled instead of axum::serve so that a handler can drop its connection.
            let kill = Arc::new(Notify::new());
            let service =
                TowerToHyperService::new(app.clone().layer(axum::Extension(ConnectionKill(kill.clone()))));
            connections.spawn(async move {
                let connection = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service);
                tokio::select! {
                    _ = connection => {}
                    _ = kill.notified() => {}
                }
            });
            while connections.try_join_next().is_some() {}
        }
    })
}

impl FakeConductorOne {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the fake ConductorOne");
        let addr = listener.local_addr().expect("local address");
        let state = Arc::new(State::new(addr.to_string(), addr.ip().to_string()));
        let server = Mutex::new(Some(serve(listener, state.clone())));
        FakeConductorOne { state, server }
    }

    /// Stops listening and drops every open connection: clients get "connection refused", as from a
    /// ConductorOne whose address is gone. [`go_online`](Self::go_online) listens again on the same port.
    pub fn go_offline(&self) {
        if let Some(server) = self.server.lock().unwrap_or_else(|e| e.into_inner()).take() {
            server.abort();
        }
    }

    pub async fn go_online(&self) {
        if self.server.lock().unwrap_or_else(|e| e.into_inner()).is_some() {
            return;
        }
        let listener =
            TcpListener::bind(&self.state.authority).await.expect("bind the fake ConductorOne again");
        *self.server.lock().unwrap_or_else(|e| e.into_inner()) = Some(serve(listener, self.state.clone()));
    }

    /// Delays every request by `latency` before answering (`None`: answer at once), as a slow
    /// ConductorOne would; on top of any injected fault.
    pub fn set_latency(&self, latency: Option<Duration>) {
        self.state.lock().latency = latency;
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.state.authority)
    }

    /// `127.0.0.1:<port>`: the host part of client ids for this fake.
    pub fn authority(&self) -> &str {
        &self.state.authority
    }

    /// Registers a service principal with API access and returns its credentials.
    pub fn register_principal(&self, name: &str) -> PrincipalCredentials {
        let (client_secret, key) = mint_secret();
        let client_id = format!("{name}@{}/spc", self.state.authority);
        self.register_public_key(&client_id, key);
        PrincipalCredentials { client_id, client_secret }
    }

    /// Registers a principal with API access under a caller-chosen id and key.
    pub fn register_public_key(&self, client_id: &str, key: VerifyingKey) {
        self.state.lock().principals.insert(
            client_id.to_owned(),
            Principal { key, api_access: true, disabled: false, credential_id: None },
        );
    }

    /// Refuses further tokens for `client_id` and rejects the tokens it already holds.
    pub fn disable_principal(&self, client_id: &str) {
        if let Some(p) = self.state.lock().principals.get_mut(client_id) {
            p.disabled = true;
        }
    }

    /// Lifetime (`expires_in`) of tokens issued from now on. Default 600 s.
    pub fn set_token_ttl(&self, ttl: Duration) {
        self.state.lock().token_ttl = ttl;
    }

    /// Forgets every issued token, as if the server had revoked them.
    pub fn revoke_all_tokens(&self) {
        self.state.lock().tokens.clear();
    }

    /// Every successful token exchange so far, oldest first.
    pub fn token_exchanges(&self) -> Vec<TokenExchange> {
        self.state.lock().exchanges.clone()
    }

    /// Access tokens issued so far, for leak checks.
    pub fn issued_tokens(&self) -> Vec<String> {
        self.state.lock().tokens.keys().cloned().collect()
    }

    /// `expiresTime` of credentials minted from now on (default: none).
    pub fn set_credential_lifetime(&self, lifetime: Option<Duration>) {
        self.state.lock().credential_lifetime = lifetime;
    }

    pub fn add_connector(&self, app_id: &str, connector_id: &str, display_name: &str) {
        let mut inner = self.state.lock();
        inner.ensure_app(app_id);
        inner.connectors.push(StoredConnector {
            app_id: app_id.to_owned(),
            id: connector_id.to_owned(),
            display_name: display_name.to_owned(),
            description: String::new(),
            catalog_id: String::new(),
            user_ids: Vec::new(),
            status: Value::Null,
            extra: Default::default(),
            created_at: Timestamp::now(),
        });
    }

    /// Every app ever created or used, deleted ones included (`deleted_at`).
    pub fn apps(&self) -> Vec<StoredApp> {
        self.state.lock().apps.clone()
    }

    /// The live app with this id.
    pub fn app(&self, id: &str) -> Option<StoredApp> {
        self.state.lock().app(id).cloned()
    }

    /// Ids of the app's connectors.
    pub fn connector_ids(&self, app_id: &str) -> Vec<String> {
        self.state.lock().connectors.iter().filter(|c| c.app_id == app_id).map(|c| c.id.clone()).collect()
    }

    /// `(description, catalogId, userIds)` of a connector.
    pub fn connector_details(&self, app_id: &str, id: &str) -> Option<(String, String, Vec<String>)> {
        let mut inner = self.state.lock();
        inner
            .connector_mut(app_id, id)
            .map(|c| (c.description.clone(), c.catalog_id.clone(), c.user_ids.clone()))
    }

    /// Deletes a connector as a person in the UI would.
    pub fn remove_connector(&self, app_id: &str, id: &str) {
        self.state.lock().connectors.retain(|c| !(c.app_id == app_id && c.id == id));
    }

    /// Sets `connector.status` verbatim (a `ConnectorStatus` object, or `null`).
    pub fn set_sync_status(&self, app_id: &str, connector_id: &str, status: Value) {
        let mut inner = self.state.lock();
        let connector =
            inner.connector_mut(app_id, connector_id).expect("set_sync_status on an unknown connector");
        connector.status = status;
    }

    /// Adds (or overrides) fields of the connector object in responses.
    pub fn set_connector_fields(&self, app_id: &str, connector_id: &str, fields: Value) {
        let mut inner = self.state.lock();
        let connector =
            inner.connector_mut(app_id, connector_id).expect("set_connector_fields on an unknown connector");
        let Value::Object(fields) = fields else {
            panic!("set_connector_fields takes a JSON object");
        };
        connector.extra.extend(fields);
    }

    /// A credential made by hand, as a person clicks "Rotate" in the UI: the record and its client
    /// secret. `None` for a connector the fake does not have.
    pub fn issue_by_hand(&self, app_id: &str, connector_id: &str) -> Option<(StoredCredential, String)> {
        handlers::issue(&self.state, app_id, connector_id)
    }

    pub fn credential(&self, id: &str) -> Option<StoredCredential> {
        self.state.lock().credentials.iter().find(|c| c.id == id).cloned()
    }

    pub fn credentials(&self) -> Vec<StoredCredential> {
        self.state.lock().credentials.clone()
    }

    /// Queues a fault; rules are tried in the order they were added.
    pub fn inject(&self, rule: FaultRule) {
        self.state.lock().faults.push(rule);
    }

    /// Drops every fault rule not used up yet.
    pub fn clear_faults(&self) {
        self.state.lock().faults.clear();
    }

    pub fn calls(&self) -> Vec<RecordedCall> {
        self.state.lock().calls.clone()
    }

    /// Calls with this method and path so far.
    pub fn count(&self, method: &str, path: &str) -> usize {
        self.state
            .lock()
            .calls
            .iter()
            .filter(|c| c.method.eq_ignore_ascii_case(method) && c.path == path)
            .count()
    }

    /// Calls to this path so far, any method.
    pub fn count_path(&self, path: &str) -> usize {
        self.state.lock().calls.iter().filter(|c| c.path == path).count()
    }
}
