//! The public client and its operations on connector credentials and connectors.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use secrecy::ExposeSecret;
use serde::de::DeserializeOwned;
use url::Url;

use super::config::ClientConfig;
use super::credentials::{ApiCredentials, ClientId};
use super::error::{Error, ErrorKind};
use super::metrics::MetricsHook;
use super::model::{
    AppInfo, AppResponse, ConnectorInfo, CreateAppRequest, CreateConnectorRequest, CredentialInfo,
    GetConnectorResponse, GetCredentialsResponse, IssuedCredential, ListAppsResponse, ListConnectorsResponse,
    NewConnector, RotateCredentialRequest, RotateCredentialResponse,
};
use super::retry::Idempotency;
use super::tls;
use super::token::TokenCache;
use super::transport::{Endpoint, Transport};

/// ConductorOne API client. Cheap to clone; clones share the HTTP connection pool, the rate
/// limiter and the token cache, so create one per process.
#[derive(Clone)]
pub struct ConductorOneClient {
    inner: Arc<Inner>,
}

struct Inner {
    transport: Transport,
    tokens: TokenCache,
}

impl fmt::Debug for ConductorOneClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConductorOneClient")
            .field("config", self.inner.transport.config())
            .finish_non_exhaustive()
    }
}

const ROTATE: &str = "rotate_credential";
const GET_CREDENTIAL: &str = "get_credential";
const REVOKE: &str = "revoke_credential";
const GET_CONNECTOR: &str = "get_connector";
const LIST_CONNECTORS: &str = "list_connectors";
const FORCE_SYNC: &str = "force_sync";
const PAUSE_SYNC: &str = "pause_sync";
const RESUME_SYNC: &str = "resume_sync";
const CREATE_APP: &str = "create_app";
const LIST_APPS: &str = "list_apps";
const DELETE_APP: &str = "delete_app";
const CREATE_CONNECTOR: &str = "create_connector";
const DELETE_CONNECTOR: &str = "delete_connector";
/// Pages of one list call at the most, so that a server that keeps answering with a next page
/// cannot keep a poll going forever.
const MAX_PAGES: usize = 50;

/// What a tenant's client has of its own.
#[derive(Clone, Copy, Debug)]
pub struct TenantClient<'a> {
    pub requests_per_second: u32,
    pub burst: u32,
    pub ca_bundle: Option<&'a str>,
}

/// Checks a tenant's `caBundle` as the client would load it.
pub fn check_ca_bundle(pem: &str) -> Result<(), Error> {
    tls::parse_ca_bundle(pem.as_bytes(), "the tenant's caBundle").map(|_| ())
}

impl ConductorOneClient {
    pub fn new(cfg: ClientConfig) -> Result<Self, Error> {
        Self::build(cfg, None)
    }

    /// Like [`new`](Self::new), reporting every HTTP attempt to `hook`.
    pub fn with_metrics(cfg: ClientConfig, hook: MetricsHook) -> Result<Self, Error> {
        Self::build(cfg, Some(hook))
    }

    /// A client of its own for one ConductorOne tenant: the same settings and metrics, but its own
    /// rate limiter (at this rate) and token cache, so that one tenant's budget, outage or 429s
    /// never hold up another's calls, and the tenant's CA certificates (PEM) trusted besides the
    /// operator's. Each attempt is reported to this client's hook and then to `also` (the tenant's
    /// own accounting).
    pub fn for_tenant(&self, tenant: TenantClient<'_>, also: MetricsHook) -> Result<Self, Error> {
        let cfg = ClientConfig {
            requests_per_second: tenant.requests_per_second,
            burst: tenant.burst,
            extra_ca_pem: tenant.ca_bundle.map(str::to_string),
            ..self.inner.transport.config().clone()
        };
        let hook: MetricsHook = match self.inner.transport.metrics_hook() {
            Some(base) => Arc::new(move |call| {
                base(call);
                also(call)
            }),
            None => also,
        };
        Self::build(cfg, Some(hook))
    }

    /// Obtains a token with these credentials (`POST /auth/v1/token`), or reuses the cached one
    /// while it is fresh: whether ConductorOne accepts the principal, at most one token request per
    /// token lifetime.
    pub async fn authenticate(&self, api: &ApiCredentials) -> Result<(), Error> {
        let client_id = ClientId::parse(&api.client_id)?;
        let base = base_url(&client_id, self.inner.transport.config().allow_insecure_http)?;
        let token_url = with_path(&base, &["auth", "v1", "token"]);
        self.inner.tokens.token(&self.inner.transport, api, &client_id, &token_url).await.map(|_| ())
    }

    /// The sustained rate and burst of this client's limiter.
    pub fn rate(&self) -> (u32, u32) {
        let cfg = self.inner.transport.config();
        (cfg.requests_per_second, cfg.burst)
    }

    fn build(cfg: ClientConfig, hook: Option<MetricsHook>) -> Result<Self, Error> {
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("baton-operator/", env!("CARGO_PKG_VERSION")))
            // A redirect would be a misconfiguration; following it could carry the bearer
            // token somewhere unexpected.
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(cfg.timeout.min(Duration::from_secs(10)))
            .https_only(!cfg.allow_insecure_http);
        if cfg.allow_insecure_http {
            // Loopback traffic must not be sent to an HTTP(S)_PROXY from the environment.
            builder = builder.no_proxy();
        }
        if let Some(path) = tls::ca_bundle_path(cfg.ca_bundle.as_deref()) {
            for cert in tls::load_ca_bundle(&path)? {
                builder = builder.add_root_certificate(cert);
            }
        }
        if let Some(pem) = &cfg.extra_ca_pem {
            for cert in tls::parse_ca_bundle(pem.as_bytes(), "the tenant's caBundle")? {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder.build().map_err(|e| {
            Error::new(ErrorKind::Config, "configure", "cannot build the HTTP client").with_source(e)
        })?;
        let mut transport = Transport::new(http, cfg)?;
        if let Some(hook) = hook {
            transport.set_metrics(hook);
        }
        Ok(ConductorOneClient { inner: Arc::new(Inner { transport, tokens: TokenCache::default() }) })
    }

    /// Mints a new connector credential (`POST /api/v1/apps/connectors/credentials`).
    /// Earlier credentials stay valid until revoked. The secret in the answer is shown once.
    ///
    /// Not retried after failures that leave it unknown whether the server minted a credential
    /// (timeouts, 5xx, dropped connections): a blind retry could mint a second one that nobody
    /// records. Such errors have `is_permanent() == false`; the caller decides.
    pub async fn rotate_credential(
        &self,
        api: &ApiCredentials,
        app_id: &str,
        connector_id: &str,
    ) -> Result<IssuedCredential, Error> {
        require_ids(ROTATE, &[app_id, connector_id])?;
        let body = serde_json::to_vec(&RotateCredentialRequest { app_id, connector_id })
            .map_err(|_| Error::new(ErrorKind::InvalidRequest, ROTATE, "cannot encode request"))?;
        let path = ["api", "v1", "apps", "connectors", "credentials"];
        let body = self
            .call(ROTATE, api, Method::POST, (&path, &[]), Some(body), Idempotency::NotIdempotent)
            .await?;
        decode::<RotateCredentialResponse>(ROTATE, &body)?.into_issued(ROTATE)
    }

    /// `GET /api/v1/apps/{app_id}/connectors/{connector_id}/credentials/{id}`. A revoked or
    /// unknown credential gives [`ErrorKind::NotFound`].
    pub async fn get_credential(
        &self,
        api: &ApiCredentials,
        app_id: &str,
        connector_id: &str,
        credential_id: &str,
    ) -> Result<CredentialInfo, Error> {
        require_ids(GET_CREDENTIAL, &[app_id, connector_id, credential_id])?;
        let path = credential_path(app_id, connector_id, credential_id);
        let body =
            self.call(GET_CREDENTIAL, api, Method::GET, (&path, &[]), None, Idempotency::Idempotent).await?;
        decode::<GetCredentialsResponse>(GET_CREDENTIAL, &body)?.into_info(GET_CREDENTIAL)
    }

    /// `POST /api/v1/apps/{app_id}/connectors/{connector_id}/credentials/{id}` with `{}`.
    /// [`ErrorKind::NotFound`] means the credential is already revoked or never existed; it is
    /// only reported for a genuine ConductorOne 404, never for a token or routing failure.
    pub async fn revoke_credential(
        &self,
        api: &ApiCredentials,
        app_id: &str,
        connector_id: &str,
        credential_id: &str,
    ) -> Result<(), Error> {
        require_ids(REVOKE, &[app_id, connector_id, credential_id])?;
        let path = credential_path(app_id, connector_id, credential_id);
        // The answer is documented as an empty object; success is the status alone.
        self.call(REVOKE, api, Method::POST, (&path, &[]), Some(b"{}".to_vec()), Idempotency::Idempotent)
            .await?;
        Ok(())
    }

    /// `POST .../connectors/{connector_id}/force_sync`: queues a sync now. Success means queued, not
    /// started; the sync status says when it ran.
    pub async fn force_sync(
        &self,
        api: &ApiCredentials,
        app_id: &str,
        connector_id: &str,
    ) -> Result<(), Error> {
        self.connector_action(FORCE_SYNC, "force_sync", api, app_id, connector_id).await
    }

    /// `POST .../connectors/{connector_id}/pause`: no new syncs (or grant/revoke tasks) until resumed.
    pub async fn pause_sync(
        &self,
        api: &ApiCredentials,
        app_id: &str,
        connector_id: &str,
    ) -> Result<(), Error> {
        self.connector_action(PAUSE_SYNC, "pause", api, app_id, connector_id).await
    }

    /// `POST .../connectors/{connector_id}/resume`.
    pub async fn resume_sync(
        &self,
        api: &ApiCredentials,
        app_id: &str,
        connector_id: &str,
    ) -> Result<(), Error> {
        self.connector_action(RESUME_SYNC, "resume", api, app_id, connector_id).await
    }

    /// One of the connector's action endpoints: an empty body in, an empty object out. Each is safe to
    /// repeat (queuing a second sync, pausing a paused connector), so they are retried like reads.
    async fn connector_action(
        &self,
        operation: &'static str,
        action: &str,
        api: &ApiCredentials,
        app_id: &str,
        connector_id: &str,
    ) -> Result<(), Error> {
        require_ids(operation, &[app_id, connector_id])?;
        let path = ["api", "v1", "apps", app_id, "connectors", connector_id, action];
        self.call(operation, api, Method::POST, (&path, &[]), Some(b"{}".to_vec()), Idempotency::Idempotent)
            .await?;
        Ok(())
    }

    /// `GET /api/v1/apps/{app_id}/connectors/{connector_id}`, with its sync status.
    pub async fn get_connector(
        &self,
        api: &ApiCredentials,
        app_id: &str,
        connector_id: &str,
    ) -> Result<ConnectorInfo, Error> {
        require_ids(GET_CONNECTOR, &[app_id, connector_id])?;
        let path = ["api", "v1", "apps", app_id, "connectors", connector_id];
        let body =
            self.call(GET_CONNECTOR, api, Method::GET, (&path, &[]), None, Idempotency::Idempotent).await?;
        decode::<GetConnectorResponse>(GET_CONNECTOR, &body)?.into_info(GET_CONNECTOR)
    }

    /// `GET /api/v1/apps/{app_id}/connectors`, every page: the sync status of all of an app's
    /// connectors in as few requests as the server allows.
    pub async fn list_connectors(
        &self,
        api: &ApiCredentials,
        app_id: &str,
    ) -> Result<Vec<ConnectorInfo>, Error> {
        require_ids(LIST_CONNECTORS, &[app_id])?;
        self.all_pages(LIST_CONNECTORS, api, &["api", "v1", "apps", app_id, "connectors"], |body| {
            Ok(decode::<ListConnectorsResponse>(LIST_CONNECTORS, body)?.into_page())
        })
        .await
    }

    /// `POST /api/v1/apps`: a new app without a connector. Like a rotation, not repeated after a
    /// failure that leaves it unknown whether the server created it: the caller looks for it first.
    pub async fn create_app(
        &self,
        api: &ApiCredentials,
        display_name: &str,
        description: &str,
    ) -> Result<AppInfo, Error> {
        let body = encode(CREATE_APP, &CreateAppRequest { display_name, description })?;
        let path = ["api", "v1", "apps"];
        let body = self
            .call(CREATE_APP, api, Method::POST, (&path, &[]), Some(body), Idempotency::NotIdempotent)
            .await?;
        decode::<AppResponse>(CREATE_APP, &body)?.into_info(CREATE_APP)
    }

    /// `GET /api/v1/apps`, every page.
    pub async fn list_apps(&self, api: &ApiCredentials) -> Result<Vec<AppInfo>, Error> {
        self.all_pages(LIST_APPS, api, &["api", "v1", "apps"], |body| {
            Ok(decode::<ListAppsResponse>(LIST_APPS, body)?.into_page())
        })
        .await
    }

    /// `DELETE /api/v1/apps/{id}`. An app already gone gives [`ErrorKind::NotFound`].
    pub async fn delete_app(&self, api: &ApiCredentials, app_id: &str) -> Result<(), Error> {
        require_ids(DELETE_APP, &[app_id])?;
        let path = ["api", "v1", "apps", app_id];
        self.call(DELETE_APP, api, Method::DELETE, (&path, &[]), None, Idempotency::Idempotent).await?;
        Ok(())
    }

    /// `POST /api/v1/apps/{app_id}/connectors` (CreateDelegated): a connector pending its config, the
    /// kind a self-hosted Baton connector is. Not repeated after an ambiguous failure, like
    /// [`create_app`](Self::create_app).
    pub async fn create_connector(
        &self,
        api: &ApiCredentials,
        app_id: &str,
        connector: &NewConnector,
    ) -> Result<ConnectorInfo, Error> {
        require_ids(CREATE_CONNECTOR, &[app_id])?;
        let request = CreateConnectorRequest {
            catalog_id: &connector.catalog_id,
            display_name: &connector.display_name,
            description: &connector.description,
            user_ids: &connector.owner_user_ids,
        };
        let body = encode(CREATE_CONNECTOR, &request)?;
        let path = ["api", "v1", "apps", app_id, "connectors"];
        let body = self
            .call(CREATE_CONNECTOR, api, Method::POST, (&path, &[]), Some(body), Idempotency::NotIdempotent)
            .await?;
        decode::<GetConnectorResponse>(CREATE_CONNECTOR, &body)?.into_created(CREATE_CONNECTOR)
    }

    /// `DELETE /api/v1/apps/{app_id}/connectors/{id}`. A connector already gone gives
    /// [`ErrorKind::NotFound`].
    pub async fn delete_connector(
        &self,
        api: &ApiCredentials,
        app_id: &str,
        connector_id: &str,
    ) -> Result<(), Error> {
        require_ids(DELETE_CONNECTOR, &[app_id, connector_id])?;
        let path = ["api", "v1", "apps", app_id, "connectors", connector_id];
        self.call(DELETE_CONNECTOR, api, Method::DELETE, (&path, &[]), None, Idempotency::Idempotent).await?;
        Ok(())
    }

    /// Follows `nextPageToken` until the last page, at most [`MAX_PAGES`] pages.
    async fn all_pages<T>(
        &self,
        operation: &'static str,
        api: &ApiCredentials,
        path: &[&str],
        page: impl Fn(&[u8]) -> Result<(Vec<T>, Option<String>), Error>,
    ) -> Result<Vec<T>, Error> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut query = vec![("page_size", "100")];
            if let Some(t) = &token {
                query.push(("page_token", t));
            }
            let body =
                self.call(operation, api, Method::GET, (path, &query), None, Idempotency::Idempotent).await?;
            let (items, next) = page(&body)?;
            out.extend(items);
            match next {
                Some(t) => token = Some(t),
                None => return Ok(out),
            }
        }
        Err(Error::new(ErrorKind::Decode, operation, "the list did not end within the page limit"))
    }

    /// Authenticates and sends one API call, returning the 2xx body.
    async fn call(
        &self,
        operation: &'static str,
        api: &ApiCredentials,
        method: Method,
        (path, query): (&[&str], &[(&str, &str)]),
        body: Option<Vec<u8>>,
        idempotency: Idempotency,
    ) -> Result<Vec<u8>, Error> {
        let client_id = ClientId::parse(&api.client_id)?;
        let base = base_url(&client_id, self.inner.transport.config().allow_insecure_http)?;
        let token_url = with_path(&base, &["auth", "v1", "token"]);
        let mut url = with_path(&base, path);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        let transport = &self.inner.transport;
        let token = self.inner.tokens.token(transport, api, &client_id, &token_url).await?;
        let result = transport
            .send(operation, Endpoint::Api, idempotency, || {
                let request = transport
                    .http()
                    .request(method.clone(), url.clone())
                    .header(ACCEPT, "application/json")
                    .bearer_auth(token.expose_secret());
                match &body {
                    Some(body) => request.header(CONTENT_TYPE, "application/json").body(body.clone()),
                    None => request,
                }
            })
            .await;
        if let Err(err) = &result
            && err.kind() == ErrorKind::Unauthorized
        {
            // The token may have been revoked server-side; the next call mints anew.
            self.inner.tokens.invalidate(api, &token).await;
        }
        result
    }
}

fn encode(operation: &'static str, request: &impl serde::Serialize) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(request)
        .map_err(|_| Error::new(ErrorKind::InvalidRequest, operation, "cannot encode request"))
}

fn decode<T: DeserializeOwned>(operation: &'static str, body: &[u8]) -> Result<T, Error> {
    // Decoder messages can quote the input (a secret, even), so only the position is kept.
    serde_json::from_slice(body).map_err(|e| {
        Error::new(
            ErrorKind::Decode,
            operation,
            format!("response does not match the API contract (line {}, column {})", e.line(), e.column()),
        )
    })
}

fn require_ids(operation: &'static str, ids: &[&str]) -> Result<(), Error> {
    if ids.iter().any(|id| id.trim().is_empty()) {
        return Err(Error::new(
            ErrorKind::InvalidRequest,
            operation,
            "app, connector and credential ids must not be empty",
        ));
    }
    Ok(())
}

fn credential_path<'a>(app_id: &'a str, connector_id: &'a str, id: &'a str) -> [&'a str; 8] {
    ["api", "v1", "apps", app_id, "connectors", connector_id, "credentials", id]
}

/// `https://<host[:port]>/`, or `http://` for loopback hosts when explicitly allowed.
pub(crate) fn base_url(client_id: &ClientId, allow_insecure_http: bool) -> Result<Url, Error> {
    let scheme = if allow_insecure_http && client_id.is_loopback() { "http" } else { "https" };
    Url::parse(&format!("{scheme}://{}/", client_id.authority())).map_err(|_| {
        Error::new(ErrorKind::InvalidCredentials, "parse_client_id", "client ID host does not form a URL")
    })
}

/// Appends percent-encoded segments, so an id can never change the path's shape.
fn with_path(base: &Url, segments: &[&str]) -> Url {
    let mut url = base.clone();
    if let Ok(mut path) = url.path_segments_mut() {
        path.clear().extend(segments);
    }
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url_for(client_id: &str, insecure: bool) -> String {
        base_url(&ClientId::parse(client_id).unwrap(), insecure).unwrap().to_string()
    }

    #[test]
    fn https_unless_insecure_is_allowed_and_the_host_is_loopback() {
        assert_eq!(url_for("a@acme.conductor.one/spc", false), "https://acme.conductor.one/");
        assert_eq!(url_for("a@acme.conductor.one/spc", true), "https://acme.conductor.one/");
        assert_eq!(url_for("a@acme.c1eu.ai:8443/spc", true), "https://acme.c1eu.ai:8443/");
        assert_eq!(url_for("a@127.0.0.1:4000/spc", false), "https://127.0.0.1:4000/");
        assert_eq!(url_for("a@127.0.0.1:4000/spc", true), "http://127.0.0.1:4000/");
        assert_eq!(url_for("a@localhost:4000/spc", true), "http://localhost:4000/");
    }

    #[test]
    fn ids_are_encoded_as_single_segments() {
        let base = Url::parse("https://h/").unwrap();
        let url = with_path(&base, &credential_path("a/../b", "c d", "e?f"));
        assert_eq!(url.as_str(), "https://h/api/v1/apps/a%2F..%2Fb/connectors/c%20d/credentials/e%3Ff");
    }

    #[test]
    fn empty_ids_are_refused_locally() {
        let err = require_ids("get_connector", &["app", " "]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidRequest);
    }

    #[test]
    fn config_errors_are_reported_at_construction() {
        let zero_rate = ClientConfig { requests_per_second: 0, ..ClientConfig::default() };
        let err = ConductorOneClient::new(zero_rate).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        let missing_ca =
            ClientConfig { ca_bundle: Some("/nonexistent/ca.pem".into()), ..ClientConfig::default() };
        assert_eq!(ConductorOneClient::new(missing_ca).unwrap_err().kind(), ErrorKind::Config);
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "no certificates here\n").unwrap();
        let err = ConductorOneClient::new(ClientConfig { ca_bundle: Some(empty), ..ClientConfig::default() })
            .unwrap_err();
        assert!(err.message().contains("no certificate"), "{err}");
        let system = std::path::Path::new("/etc/ssl/certs/ca-certificates.crt");
        if system.exists() {
            let cfg = ClientConfig { ca_bundle: Some(system.into()), ..ClientConfig::default() };
            ConductorOneClient::new(cfg).expect("a real PEM bundle loads");
        }
    }
}
