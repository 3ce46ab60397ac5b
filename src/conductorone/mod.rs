//! ConductorOne (C1) API client: connector credentials (rotate, get, revoke), connector
//! sync status and actions, apps and connectors (create, list, delete), authenticated with a
//! service principal's client ID and secret.
//!
//! The contract (paths, bodies, auth) is described in `shared/reference/conductorone-api.md`
//! and `shared/conductorone/connectors-openapi.yaml`.
//!
//! # Hosts and TLS
//! Every call goes to the host named in the client ID (`<name>@<host[:port]>/<use-case>`), so
//! EU (`*.c1eu.ai`) and private tenants need no configuration. Calls use `https://` with the
//! bundled Mozilla roots (reqwest + rustls). To trust another CA (a TLS-inspecting proxy, a
//! private endpoint), point `SSL_CERT_FILE` at a PEM bundle, or set
//! [`ClientConfig::ca_bundle`]; its certificates are added to the bundled roots, and a missing
//! or empty file fails [`ConductorOneClient::new`]. `HTTPS_PROXY`/`NO_PROXY` from the
//! environment are honoured.
//! Plain `http://` is used only for loopback hosts and only with
//! [`ClientConfig::allow_insecure_http`] (tests against the fake server).
//!
//! # Failures
//! Every [`Error`] has an [`ErrorKind`] with a stable [`ErrorKind::reason`] for conditions and
//! metrics. 401/403 are never retried and are [`Error::is_permanent`]; 429 (honouring
//! `Retry-After`), 5xx, timeouts and connection failures are retried with jittered exponential
//! backoff, except that a rotation is repeated only when the server cannot have acted on it.
//! All calls, retries and token requests included, share one rate limiter.
//!
//! # Secrets
//! Client secrets, issued connector secrets, access tokens and client assertions are held in
//! [`SecretString`] or dropped right after use, never logged, and never part of an error or of
//! any `Debug`/`Display` output.

mod assertion;
mod client;
mod config;
mod credentials;
mod error;
mod metrics;
mod model;
mod proto;
mod ratelimit;
mod retry;
mod tls;
mod token;
mod transport;

pub use client::{ConductorOneClient, TenantClient, check_ca_bundle};
pub use config::ClientConfig;
pub use credentials::{ApiCredentials, ClientId};
pub use error::{Error, ErrorKind};
pub use metrics::{CallOutcome, MetricsHook};
pub use model::{
    AppInfo, ConnectorInfo, CredentialInfo, IssuedCredential, NewConnector, SyncState, SyncStatus,
};
pub use secrecy::{ExposeSecret, SecretString};
