//! Access tokens from `POST /auth/v1/token` (client-credentials grant with a signed JWT client
//! assertion), cached per credential until shortly before they expire.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tokio::time::Instant;
use url::Url;

use super::assertion::sign_assertion;
use super::credentials::{ApiCredentials, ClientId, SigningSecret};
use super::error::{Error, ErrorKind};
use super::proto::{int64, null_default, secret};
use super::retry::Idempotency;
use super::transport::{Endpoint, Transport};

pub(crate) const TOKEN_OPERATION: &str = "token";
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Renew this long before expiry at most (the Go SDKs use ~10 s; a wider margin absorbs
/// slow calls that start just before the deadline).
const MAX_REFRESH_MARGIN: Duration = Duration::from_secs(60);

struct CachedToken {
    token: SecretString,
    refresh_at: Instant,
}

type Slot = Arc<tokio::sync::Mutex<Option<CachedToken>>>;

/// One slot per (client id, secret digest). The slot's async lock makes concurrent callers
/// for the same credential share a single token request.
#[derive(Default)]
pub(crate) struct TokenCache {
    slots: Mutex<HashMap<(String, [u8; 32]), Slot>>,
}

impl TokenCache {
    pub(crate) async fn token(
        &self,
        transport: &Transport,
        creds: &ApiCredentials,
        client_id: &ClientId,
        token_url: &Url,
    ) -> Result<SecretString, Error> {
        let slot = self.slot(creds);
        let mut cached = slot.lock().await;
        if let Some(hit) = cached.as_ref().filter(|t| Instant::now() < t.refresh_at) {
            return Ok(hit.token.clone());
        }
        let (token, lifetime) = fetch(transport, creds, client_id, token_url).await?;
        *cached = lifetime.map(|lifetime| CachedToken {
            token: token.clone(),
            refresh_at: Instant::now() + lifetime - (lifetime / 10).min(MAX_REFRESH_MARGIN),
        });
        Ok(token)
    }

    /// Forgets `used` after the API rejected it (revoked server-side), unless a concurrent
    /// caller already replaced it.
    pub(crate) async fn invalidate(&self, creds: &ApiCredentials, used: &SecretString) {
        let slot = self.slot(creds);
        let mut cached = slot.lock().await;
        if cached.as_ref().is_some_and(|t| t.token.expose_secret() == used.expose_secret()) {
            *cached = None;
        }
    }

    fn slot(&self, creds: &ApiCredentials) -> Slot {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        let key = creds.cache_key();
        if let Some(slot) = slots.get(&key) {
            return slot.clone();
        }
        // Credentials come and go with Kubernetes Secrets: drop slots nobody is using and whose
        // token is stale, so the map stays as small as the set of live credentials.
        let now = Instant::now();
        slots.retain(|_, slot| {
            Arc::strong_count(slot) > 1
                || slot.try_lock().map_or(true, |t| t.as_ref().is_some_and(|t| now < t.refresh_at))
        });
        slots.entry(key).or_default().clone()
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.slots.lock().unwrap().len()
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct TokenResponse {
    #[serde(deserialize_with = "secret")]
    access_token: Option<SecretString>,
    #[serde(deserialize_with = "null_default")]
    token_type: String,
    #[serde(deserialize_with = "int64")]
    expires_in: i64,
}

/// Returns the token and how long it may be cached (`None`: the server gave no lifetime, so
/// use it for this call only).
async fn fetch(
    transport: &Transport,
    creds: &ApiCredentials,
    client_id: &ClientId,
    token_url: &Url,
) -> Result<(SecretString, Option<Duration>), Error> {
    let secret = SigningSecret::parse(&creds.client_secret)?;
    let body = transport
        .send(TOKEN_OPERATION, Endpoint::Token, Idempotency::Idempotent, || {
            // Signed per attempt: each needs a fresh nonce and time window.
            let assertion = sign_assertion(client_id, &secret, Timestamp::now().as_second());
            transport.http().post(token_url.clone()).form(&[
                ("grant_type", "client_credentials"),
                ("client_id", client_id.as_str()),
                ("client_assertion_type", JWT_BEARER),
                ("client_assertion", assertion.as_str()),
            ])
        })
        .await?;
    let decode = |why: &str| Error::new(ErrorKind::Decode, TOKEN_OPERATION, why.to_owned());
    let response: TokenResponse =
        serde_json::from_slice(&body).map_err(|_| decode("token response is not valid JSON"))?;
    if !response.token_type.is_empty() && !response.token_type.eq_ignore_ascii_case("bearer") {
        return Err(Error::new(
            ErrorKind::InvalidCredentials,
            TOKEN_OPERATION,
            format!(
                "token endpoint issued a {:?} token; only Bearer is supported (DPoP-bound credentials are not)",
                response.token_type
            ),
        ));
    }
    // The TypeScript SDK strips such a prefix too; seen from some deployments.
    let raw = response.access_token.ok_or_else(|| decode("token response has no access_token"))?;
    let raw = raw.expose_secret();
    let token = match raw.get(..7) {
        Some(prefix) if prefix.eq_ignore_ascii_case("bearer ") => &raw[7..],
        _ => raw,
    };
    let token = SecretString::from(token.trim());
    if token.expose_secret().is_empty() {
        return Err(decode("token response has no access_token"));
    }
    let lifetime = u64::try_from(response.expires_in).ok().filter(|s| *s > 0).map(Duration::from_secs);
    Ok((token, lifetime))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn slots_are_per_secret_and_stale_ones_are_pruned() {
        let cache = TokenCache::default();
        let a = ApiCredentials::new("a@h/spc", "one");
        let b = ApiCredentials::new("a@h/spc", "two");
        assert!(!Arc::ptr_eq(&cache.slot(&a), &cache.slot(&b)));
        assert!(Arc::ptr_eq(&cache.slot(&a), &cache.slot(&a)));
        // Both slots are empty and unused, so adding a third prunes them.
        cache.slot(&ApiCredentials::new("c@h/spc", "x"));
        assert_eq!(cache.len(), 1);
    }
}
