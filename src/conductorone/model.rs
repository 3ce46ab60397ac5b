//! Request and response bodies (`c1.api.app.v1.*`, camelCase proto3 JSON) and the public types
//! the client returns. Wire structs accept unknown and missing fields; the public types keep
//! only what the operator uses.

use k8s_openapi::jiff::Timestamp;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use super::error::{Error, ErrorKind};
pub use super::proto::SyncState;
use super::proto::{null_default, secret, timestamp};

/// A freshly minted connector credential. The secret is returned by ConductorOne exactly once:
/// persist the whole value (id included) before doing anything else.
#[derive(Clone, Debug)]
pub struct IssuedCredential {
    pub id: String,
    pub app_id: String,
    pub connector_id: String,
    /// Goes into `BATON_CLIENT_ID`.
    pub client_id: String,
    /// Goes into `BATON_CLIENT_SECRET`.
    pub client_secret: SecretString,
    pub display_name: String,
    pub created_at: Option<Timestamp>,
    /// Set by the server; the API takes no expiry on rotation.
    pub expires_at: Option<Timestamp>,
}

/// A connector credential as `GetCredentials` shows it (the secret is never returned again).
#[derive(Clone, Debug, PartialEq)]
pub struct CredentialInfo {
    pub id: String,
    pub app_id: String,
    pub connector_id: String,
    pub client_id: String,
    pub display_name: String,
    pub created_at: Option<Timestamp>,
    pub updated_at: Option<Timestamp>,
    pub deleted_at: Option<Timestamp>,
    pub expires_at: Option<Timestamp>,
    pub last_used_at: Option<Timestamp>,
}

/// The parts of `c1.api.app.v1.Connector` the operator reports on.
#[derive(Clone, Debug, PartialEq)]
pub struct ConnectorInfo {
    pub id: String,
    pub app_id: String,
    pub catalog_id: String,
    pub display_name: String,
    pub description: String,
    /// `connector.status`; `None` when the server sends `null` (never synced).
    pub sync: Option<SyncStatus>,
    pub sync_disabled_at: Option<Timestamp>,
    pub sync_disabled_reason: String,
    pub sync_disabled_category: String,
    pub can_resume_sync: bool,
    pub created_at: Option<Timestamp>,
    pub updated_at: Option<Timestamp>,
    pub deleted_at: Option<Timestamp>,
}

/// `c1.api.app.v1.ConnectorStatus`.
#[derive(Clone, Debug, PartialEq)]
pub struct SyncStatus {
    /// `status`.
    pub state: SyncState,
    /// `startedAt`: when the last sync started.
    pub last_started_at: Option<Timestamp>,
    /// `completedAt`: when the last sync completed (the "last sync time").
    pub last_completed_at: Option<Timestamp>,
    /// `updatedAt`.
    pub updated_at: Option<Timestamp>,
    /// `lastError`; the API sends `""` when there is none, mapped to `None`.
    pub last_error: Option<String>,
}

/// The parts of `c1.api.app.v1.App` the operator uses.
#[derive(Clone, Debug, PartialEq)]
pub struct AppInfo {
    pub id: String,
    pub display_name: String,
    pub description: String,
    pub deleted_at: Option<Timestamp>,
}

/// `CreateAppRequest`: a manual app, to which the operator then adds a connector.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CreateAppRequest<'a> {
    pub display_name: &'a str,
    pub description: &'a str,
}

/// `ConnectorServiceCreateDelegatedRequest`: a connector pending its config, which is what a
/// self-hosted Baton connector is.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CreateConnectorRequest<'a> {
    pub catalog_id: &'a str,
    pub display_name: &'a str,
    pub description: &'a str,
    pub user_ids: &'a [String],
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct WireApp {
    #[serde(deserialize_with = "null_default")]
    id: String,
    #[serde(deserialize_with = "null_default")]
    display_name: String,
    #[serde(deserialize_with = "null_default")]
    description: String,
    #[serde(deserialize_with = "timestamp")]
    deleted_at: Option<Timestamp>,
}

impl WireApp {
    fn into_info(self) -> AppInfo {
        AppInfo {
            id: self.id,
            display_name: self.display_name,
            description: self.description,
            deleted_at: self.deleted_at,
        }
    }
}

/// `CreateAppResponse` (and `GetAppResponse`): `{app}`.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct AppResponse {
    app: Option<WireApp>,
}

impl AppResponse {
    pub(crate) fn into_info(self, operation: &'static str) -> Result<AppInfo, Error> {
        let app = self.app.ok_or_else(|| decode_error(operation, "response has no app"))?;
        if app.id.is_empty() {
            return Err(decode_error(operation, "response app has no id"));
        }
        Ok(app.into_info())
    }
}

/// `ListAppsResponse`: one page of apps.
#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct ListAppsResponse {
    list: Vec<WireApp>,
    next_page_token: String,
}

impl ListAppsResponse {
    pub(crate) fn into_page(self) -> (Vec<AppInfo>, Option<String>) {
        let apps = self.list.into_iter().map(WireApp::into_info).collect();
        (apps, Some(self.next_page_token).filter(|t| !t.is_empty()))
    }
}

/// `ConnectorServiceRotateCredentialRequest`: both ids go in the body, there are no path params.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RotateCredentialRequest<'a> {
    pub app_id: &'a str,
    pub connector_id: &'a str,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct RotateCredentialResponse {
    credential: Option<WireCredential>,
    /// Where the pre-2025-09 API put the secret; read as a fallback only.
    #[serde(rename = "clientSecret", deserialize_with = "secret")]
    legacy_client_secret: Option<SecretString>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct GetCredentialsResponse {
    credential: Option<WireCredential>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct GetConnectorResponse {
    connector_view: Option<WireConnectorView>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct WireConnectorView {
    connector: Option<WireConnector>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct WireCredential {
    #[serde(deserialize_with = "null_default")]
    id: String,
    #[serde(deserialize_with = "null_default")]
    app_id: String,
    #[serde(deserialize_with = "null_default")]
    connector_id: String,
    #[serde(deserialize_with = "null_default")]
    client_id: String,
    #[serde(deserialize_with = "secret")]
    client_secret: Option<SecretString>,
    #[serde(deserialize_with = "null_default")]
    display_name: String,
    #[serde(deserialize_with = "timestamp")]
    created_at: Option<Timestamp>,
    #[serde(deserialize_with = "timestamp")]
    updated_at: Option<Timestamp>,
    #[serde(deserialize_with = "timestamp")]
    deleted_at: Option<Timestamp>,
    #[serde(deserialize_with = "timestamp")]
    expires_time: Option<Timestamp>,
    #[serde(deserialize_with = "timestamp")]
    last_used_at: Option<Timestamp>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct WireConnector {
    #[serde(deserialize_with = "null_default")]
    id: String,
    #[serde(deserialize_with = "null_default")]
    app_id: String,
    #[serde(deserialize_with = "null_default")]
    catalog_id: String,
    #[serde(deserialize_with = "null_default")]
    display_name: String,
    #[serde(deserialize_with = "null_default")]
    description: String,
    status: Option<WireConnectorStatus>,
    #[serde(deserialize_with = "timestamp")]
    sync_disabled_at: Option<Timestamp>,
    #[serde(deserialize_with = "null_default")]
    sync_disabled_reason: String,
    #[serde(deserialize_with = "null_default")]
    sync_disabled_category: String,
    #[serde(deserialize_with = "null_default")]
    can_resume_sync: bool,
    #[serde(deserialize_with = "timestamp")]
    created_at: Option<Timestamp>,
    #[serde(deserialize_with = "timestamp")]
    updated_at: Option<Timestamp>,
    #[serde(deserialize_with = "timestamp")]
    deleted_at: Option<Timestamp>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct WireConnectorStatus {
    status: SyncState,
    #[serde(deserialize_with = "timestamp")]
    started_at: Option<Timestamp>,
    #[serde(deserialize_with = "timestamp")]
    completed_at: Option<Timestamp>,
    #[serde(deserialize_with = "timestamp")]
    updated_at: Option<Timestamp>,
    #[serde(deserialize_with = "null_default")]
    last_error: String,
}

fn decode_error(operation: &'static str, message: impl Into<String>) -> Error {
    Error::new(ErrorKind::Decode, operation, message)
}

impl RotateCredentialResponse {
    pub(crate) fn into_issued(self, operation: &'static str) -> Result<IssuedCredential, Error> {
        let wire = self.credential.ok_or_else(|| decode_error(operation, "response has no credential"))?;
        if wire.id.is_empty() {
            return Err(decode_error(operation, "response credential has no id"));
        }
        let secret = wire.client_secret.or(self.legacy_client_secret);
        let (Some(client_secret), false) = (secret, wire.client_id.is_empty()) else {
            // The id is in the message so the caller can still revoke the half-issued credential.
            return Err(decode_error(
                operation,
                format!("credential {} was issued without a client id or secret", wire.id),
            ));
        };
        Ok(IssuedCredential {
            id: wire.id,
            app_id: wire.app_id,
            connector_id: wire.connector_id,
            client_id: wire.client_id,
            client_secret,
            display_name: wire.display_name,
            created_at: wire.created_at,
            expires_at: wire.expires_time,
        })
    }
}

impl GetCredentialsResponse {
    pub(crate) fn into_info(self, operation: &'static str) -> Result<CredentialInfo, Error> {
        let wire = self.credential.ok_or_else(|| decode_error(operation, "response has no credential"))?;
        Ok(CredentialInfo {
            id: wire.id,
            app_id: wire.app_id,
            connector_id: wire.connector_id,
            client_id: wire.client_id,
            display_name: wire.display_name,
            created_at: wire.created_at,
            updated_at: wire.updated_at,
            deleted_at: wire.deleted_at,
            expires_at: wire.expires_time,
            last_used_at: wire.last_used_at,
        })
    }
}

impl GetConnectorResponse {
    /// Like [`into_info`](Self::into_info), also refusing a connector without an id (a create reply).
    pub(crate) fn into_created(self, operation: &'static str) -> Result<ConnectorInfo, Error> {
        let info = self.into_info(operation)?;
        if info.id.is_empty() {
            return Err(decode_error(operation, "response connector has no id"));
        }
        Ok(info)
    }

    pub(crate) fn into_info(self, operation: &'static str) -> Result<ConnectorInfo, Error> {
        let c = self
            .connector_view
            .and_then(|view| view.connector)
            .ok_or_else(|| decode_error(operation, "response has no connector"))?;
        Ok(c.into_info())
    }
}

/// `ConnectorServiceListResponse`: one page of an app's connectors.
#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct ListConnectorsResponse {
    list: Vec<WireConnectorView>,
    next_page_token: String,
}

impl ListConnectorsResponse {
    /// The page's connectors and the token of the next page, if any.
    pub(crate) fn into_page(self) -> (Vec<ConnectorInfo>, Option<String>) {
        let infos = self.list.into_iter().filter_map(|v| v.connector).map(WireConnector::into_info).collect();
        (infos, Some(self.next_page_token).filter(|t| !t.is_empty()))
    }
}

impl WireConnector {
    fn into_info(self) -> ConnectorInfo {
        let c = self;
        ConnectorInfo {
            id: c.id,
            app_id: c.app_id,
            catalog_id: c.catalog_id,
            display_name: c.display_name,
            description: c.description,
            sync: c.status.map(|s| SyncStatus {
                state: s.status,
                last_started_at: s.started_at,
                last_completed_at: s.completed_at,
                updated_at: s.updated_at,
                last_error: Some(s.last_error).filter(|e| !e.is_empty()),
            }),
            sync_disabled_at: c.sync_disabled_at,
            sync_disabled_reason: c.sync_disabled_reason,
            sync_disabled_category: c.sync_disabled_category,
            can_resume_sync: c.can_resume_sync,
            created_at: c.created_at,
            updated_at: c.updated_at,
            deleted_at: c.deleted_at,
        }
    }
}

impl IssuedCredential {
    /// Exposes the secret for writing it into the connector's Kubernetes Secret.
    pub fn expose_client_secret(&self) -> &str {
        self.client_secret.expose_secret()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rotate(body: serde_json::Value) -> Result<IssuedCredential, Error> {
        serde_json::from_value::<RotateCredentialResponse>(body).unwrap().into_issued("rotate_credential")
    }

    #[test]
    fn rotate_reads_nested_secret_and_falls_back_to_legacy_top_level() {
        let issued = rotate(json!({"credential": {
            "id": "c1", "clientId": "n@h/ccc", "clientSecret": "s3cr3t",
            "expiresTime": "2027-01-01T00:00:00Z", "createdAt": null, "somethingNew": {"a": 1}
        }}))
        .unwrap();
        assert_eq!(issued.id, "c1");
        assert_eq!(issued.expose_client_secret(), "s3cr3t");
        assert!(issued.expires_at.is_some());
        assert_eq!(issued.created_at, None);

        let legacy = rotate(json!({"clientSecret": "old", "credential": {
            "id": "c2", "clientId": "n@h/ccc", "clientSecret": ""
        }}))
        .unwrap();
        assert_eq!(legacy.expose_client_secret(), "old");
    }

    #[test]
    fn rotate_without_secret_names_the_credential_id_for_cleanup() {
        let err = rotate(json!({"credential": {"id": "c3", "clientId": "n@h/ccc"}})).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Decode);
        assert!(err.message().contains("c3"));
        assert_eq!(rotate(json!({"credential": null})).unwrap_err().kind(), ErrorKind::Decode);
    }

    #[test]
    fn connector_status_maps_spec_field_names() {
        let info: GetConnectorResponse = serde_json::from_value(json!({
            "connectorView": {"connector": {
                "id": "k1", "appId": "a1", "displayName": "okta", "connectorApiVersion": "2",
                "status": {"status": "SYNC_STATUS_ERROR", "startedAt": "2026-08-01T10:00:00Z",
                           "completedAt": null, "lastError": "boom"},
                "syncDisabledAt": null, "canResumeSync": true
            }, "appPath": ""},
            "expanded": []
        }))
        .unwrap();
        let info = info.into_info("get_connector").unwrap();
        let sync = info.sync.unwrap();
        assert_eq!(sync.state, SyncState::Error);
        assert!(sync.last_started_at.is_some());
        assert_eq!(sync.last_completed_at, None);
        assert_eq!(sync.last_error.as_deref(), Some("boom"));
        assert!(info.can_resume_sync);
    }
}

/// What the operator sends to create a connector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewConnector {
    pub display_name: String,
    pub description: String,
    pub catalog_id: String,
    pub owner_user_ids: Vec<String>,
}
