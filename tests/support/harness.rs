//! Shared set-up for client tests: a fake with one connector and one service principal, and
//! a client configuration with fast retries and no effective rate limit.

use std::time::Duration;

use baton_operator::conductorone::{ApiCredentials, ClientConfig, ConductorOneClient};

use super::fake_conductorone::{FakeConductorOne, PrincipalCredentials};

pub const APP: &str = "2xyzAppAAAAAAAAAAAAAAAAAAAA";
pub const CONNECTOR: &str = "2abcConnBBBBBBBBBBBBBBBBBBB";
pub const TOKEN_PATH: &str = "/auth/v1/token";
pub const ROTATE_PATH: &str = "/api/v1/apps/connectors/credentials";

pub fn connector_path() -> String {
    format!("/api/v1/apps/{APP}/connectors/{CONNECTOR}")
}

pub fn credential_path(id: &str) -> String {
    format!("/api/v1/apps/{APP}/connectors/{CONNECTOR}/credentials/{id}")
}

/// Fast retries and no effective rate limit, so tests measure only what they mean to.
pub fn config() -> ClientConfig {
    ClientConfig {
        timeout: Duration::from_secs(2),
        max_retries: 3,
        requests_per_second: 1000,
        burst: 1000,
        allow_insecure_http: true,
        backoff_base: Duration::from_millis(10),
        backoff_max: Duration::from_millis(50),
        max_retry_after: Duration::from_secs(5),
        ca_bundle: None,
        extra_ca_pem: None,
    }
}

pub fn creds(p: &PrincipalCredentials) -> ApiCredentials {
    ApiCredentials::new(&p.client_id, &p.client_secret)
}

pub async fn setup(cfg: ClientConfig) -> (FakeConductorOne, ConductorOneClient, ApiCredentials) {
    let fake = FakeConductorOne::start().await;
    fake.add_connector(APP, CONNECTOR, "okta");
    let api = creds(&fake.register_principal("operator"));
    (fake, ConductorOneClient::new(cfg).unwrap(), api)
}
