//! Everything the fake remembers: principals, tokens, connector credentials, connectors,
//! pending faults and the log of calls.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use ed25519_dalek::VerifyingKey;
use k8s_openapi::jiff::Timestamp;
use serde_json::{Map, Value, json};
use tokio::time::Instant;

/// A client that may ask for tokens.
pub struct Principal {
    pub key: VerifyingKey,
    /// Service principals may call the API; connector credentials may only authenticate.
    pub api_access: bool,
    pub disabled: bool,
    /// Set for principals minted by RotateCredential.
    pub credential_id: Option<String>,
}

pub struct IssuedToken {
    pub client_id: String,
    pub expires_at: Instant,
}

/// A connector credential as the fake stores it. The secret itself is not kept (C1 shows it
/// once); only its public key, inside the matching [`Principal`].
#[derive(Clone, Debug)]
pub struct StoredCredential {
    pub id: String,
    pub app_id: String,
    pub connector_id: String,
    pub client_id: String,
    pub display_name: String,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub last_used_at: Option<Timestamp>,
    /// Revocation marks rather than deletes, so tests can check it.
    pub revoked_at: Option<Timestamp>,
}

impl StoredCredential {
    pub fn is_revoked(&self) -> bool {
        self.revoked_at.is_some()
    }

    /// `c1.api.app.v1.ConnectorCredential` with every field present (EmitUnpopulated).
    pub fn to_json(&self, client_secret: &str) -> Value {
        json!({
            "id": self.id,
            "appId": self.app_id,
            "connectorId": self.connector_id,
            "clientId": self.client_id,
            "clientSecret": client_secret,
            "displayName": self.display_name,
            "createdAt": self.created_at.to_string(),
            "updatedAt": self.revoked_at.unwrap_or(self.created_at).to_string(),
            "deletedAt": self.revoked_at.map(|t| t.to_string()),
            "expiresTime": self.expires_at.map(|t| t.to_string()),
            "lastUsedAt": self.last_used_at.map(|t| t.to_string()),
        })
    }
}

/// An app. Deleting one marks it, so tests can check what was deleted.
#[derive(Clone, Debug)]
pub struct StoredApp {
    pub id: String,
    pub display_name: String,
    pub description: String,
    pub created_at: Timestamp,
    pub deleted_at: Option<Timestamp>,
}

impl StoredApp {
    /// `c1.api.app.v1.App`, the fields the contract lists, every one present (EmitUnpopulated).
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id, "displayName": self.display_name, "description": self.description,
            "appAccountId": "", "appAccountName": "", "appOwners": [], "annotations": {},
            "certifyPolicyId": "", "grantPolicyId": "", "revokePolicyId": "", "connectorVersion": 0,
            "defaultRequestCatalogId": "", "iconUrl": "", "logoUri": "", "instructions": "",
            "identityMatching": "APP_USER_IDENTITY_MATCHING_UNSPECIFIED", "isDirectory": false,
            "isManuallyManaged": true, "monthlyCostUsd": 0, "parentAppId": "", "userCount": "0",
            "createdAt": self.created_at.to_string(), "updatedAt": self.created_at.to_string(),
            "deletedAt": self.deleted_at.map(|t| t.to_string()),
        })
    }
}

pub struct StoredConnector {
    pub app_id: String,
    pub id: String,
    pub display_name: String,
    pub description: String,
    pub catalog_id: String,
    pub user_ids: Vec<String>,
    /// Raw `ConnectorStatus` JSON (or `null`), so tests can send values a client does not know.
    pub status: Value,
    /// Merged over the connector object last: unknown fields, or overrides of known ones.
    pub extra: Map<String, Value>,
    pub created_at: Timestamp,
}

impl StoredConnector {
    /// `c1.api.app.v1.Connector` with every field present (EmitUnpopulated).
    pub fn to_json(&self) -> Value {
        let mut connector = json!({
            "id": self.id, "appId": self.app_id, "catalogId": self.catalog_id,
            "displayName": self.display_name, "description": self.description, "config": null,
            "status": self.status,
            "syncDisabledAt": null, "syncDisabledReason": "", "syncDisabledCategory": "",
            "canResumeSync": false, "disableCheckBadSync": false,
            "connectorSyncCronSchedule": null, "syncConfig": null, "oauthAuthorizedAs": null,
            "downloadUrl": "", "connectorApiVersion": 0, "parallelSyncWorkerCount": null,
            "profileAllowList": [], "profileIgnoreList": [], "userIds": self.user_ids,
            "createdAt": self.created_at.to_string(), "updatedAt": self.created_at.to_string(),
            "deletedAt": null, "configUpdatedAt": null,
        });
        if let Value::Object(fields) = &mut connector {
            fields.extend(self.extra.clone());
        }
        connector
    }
}

/// What a fault rule does to a matching request.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Answer with `status`, an optional JSON body and an optional `Retry-After`.
    Respond { status: u16, body: Option<Value>, retry_after: Option<String> },
    /// Wait, then handle the request normally.
    Delay(Duration),
    /// Close the connection without answering.
    Drop,
    /// Handle the request, then close the connection without answering: the server acted, the
    /// client never learns of it.
    LoseReply,
}

impl Fault {
    /// `status` with the API's `{code, message}` error body.
    pub fn error(status: u16, code: i32, message: &str) -> Self {
        Fault::Respond {
            status,
            body: Some(json!({"code": code, "message": message, "details": []})),
            retry_after: None,
        }
    }

    /// `status` with no body at all, as a proxy might answer.
    pub fn bare(status: u16) -> Self {
        Fault::Respond { status, body: None, retry_after: None }
    }

    /// 429 `RESOURCE_EXHAUSTED` with `Retry-After: <value>`.
    pub fn rate_limited(retry_after: &str) -> Self {
        Fault::error(429, 8, "rate limit exceeded").with_retry_after(retry_after)
    }

    pub fn with_retry_after(self, value: &str) -> Self {
        match self {
            Fault::Respond { status, body, .. } => {
                Fault::Respond { status, body, retry_after: Some(value.to_owned()) }
            }
            other => other,
        }
    }
}

/// A fault applied to the next `times` requests matching `method` and `path` (`None`: any).
#[derive(Clone, Debug)]
pub struct FaultRule {
    pub method: Option<String>,
    pub path: Option<String>,
    pub fault: Fault,
    pub times: usize,
}

impl FaultRule {
    /// Matches every request once; narrow with [`on`](Self::on), repeat with [`times`](Self::times).
    pub fn new(fault: Fault) -> Self {
        FaultRule { method: None, path: None, fault, times: 1 }
    }

    pub fn on(mut self, method: &str, path: &str) -> Self {
        self.method = Some(method.to_owned());
        self.path = Some(path.to_owned());
        self
    }

    pub fn on_path(mut self, path: &str) -> Self {
        self.path = Some(path.to_owned());
        self
    }

    pub fn times(mut self, times: usize) -> Self {
        self.times = times;
        self
    }
}

/// One request as the fake saw it.
#[derive(Clone, Debug)]
pub struct RecordedCall {
    pub method: String,
    pub path: String,
    /// `None` when the connection was dropped (or the client gave up before the answer).
    pub status: Option<u16>,
    pub at: Instant,
}

/// A successful token exchange: which client asked, and which minted credential that client is,
/// so a test can tell which credential each running connector process authenticated with.
#[derive(Clone, Debug)]
pub struct TokenExchange {
    pub client_id: String,
    pub credential_id: Option<String>,
    /// The `User-Agent` the client sent (the stand-in connector puts its pid there).
    pub user_agent: String,
    pub at: Timestamp,
}

pub struct Inner {
    pub principals: HashMap<String, Principal>,
    pub exchanges: Vec<TokenExchange>,
    pub tokens: HashMap<String, IssuedToken>,
    pub credentials: Vec<StoredCredential>,
    pub connectors: Vec<StoredConnector>,
    pub apps: Vec<StoredApp>,
    pub faults: Vec<FaultRule>,
    pub calls: Vec<RecordedCall>,
    pub token_ttl: Duration,
    pub credential_lifetime: Option<Duration>,
    pub latency: Option<Duration>,
}

pub struct State {
    inner: Mutex<Inner>,
    /// `127.0.0.1:<port>`: the host part of every client id this fake issues.
    pub authority: String,
    /// The host without port: the audience assertions must name.
    pub audience: String,
}

impl State {
    pub fn new(authority: String, audience: String) -> Self {
        State {
            inner: Mutex::new(Inner {
                exchanges: Vec::new(),
                principals: HashMap::new(),
                tokens: HashMap::new(),
                credentials: Vec::new(),
                connectors: Vec::new(),
                apps: Vec::new(),
                faults: Vec::new(),
                calls: Vec::new(),
                token_ttl: Duration::from_secs(600),
                credential_lifetime: None,
                latency: None,
            }),
            authority,
            audience,
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panicking test thread must not hide the fake's state from the others.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Inner {
    /// Takes one use of the first rule matching the request.
    pub fn take_fault(&mut self, method: &str, path: &str) -> Option<Fault> {
        let rule = self.faults.iter_mut().find(|r| {
            r.times > 0
                && r.method.as_deref().is_none_or(|m| m.eq_ignore_ascii_case(method))
                && r.path.as_deref().is_none_or(|p| p == path)
        })?;
        rule.times -= 1;
        let fault = rule.fault.clone();
        self.faults.retain(|r| r.times > 0);
        Some(fault)
    }

    /// Revokes the live credentials that match, and the principals they authenticate as.
    pub fn revoke_where(&mut self, matches: impl Fn(&StoredCredential) -> bool) {
        let now = Timestamp::now();
        for credential in self.credentials.iter_mut().filter(|c| !c.is_revoked() && matches(c)) {
            credential.revoked_at = Some(now);
            if let Some(principal) = self.principals.get_mut(&credential.client_id) {
                principal.disabled = true;
            }
        }
    }

    /// The app, unless it does not exist or was deleted.
    pub fn app(&self, id: &str) -> Option<&StoredApp> {
        self.apps.iter().find(|a| a.id == id && a.deleted_at.is_none())
    }

    /// Records an app that connectors were added to directly, as if made in the UI.
    pub fn ensure_app(&mut self, id: &str) {
        if !self.apps.iter().any(|a| a.id == id) {
            let app = StoredApp {
                id: id.to_owned(),
                display_name: id.to_owned(),
                description: String::new(),
                created_at: Timestamp::now(),
                deleted_at: None,
            };
            self.apps.push(app);
        }
    }

    pub fn connector_mut(&mut self, app_id: &str, id: &str) -> Option<&mut StoredConnector> {
        self.connectors.iter_mut().find(|c| c.app_id == app_id && c.id == id)
    }
}

/// A 27-character base62 id, the shape of C1 object ids (KSUIDs).
pub fn new_id() -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    (0..27).map(|_| ALPHABET[rand::random_range(0..ALPHABET.len())] as char).collect()
}
