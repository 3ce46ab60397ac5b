//! The ConductorOne client against the fake server: authentication and token caching, the
//! credential and connector operations, tolerant decoding, and how auth failures surface.
//! Retries, timeouts and rate limiting are in `conductorone_resilience.rs`; secret-leak checks
//! in `conductorone_secrets.rs`.

use baton_test_support as support;

use std::time::Duration;

use baton_operator::conductorone::{
    ApiCredentials, ClientConfig, ConductorOneClient, ErrorKind, ExposeSecret, SyncState,
};
use futures::future::join_all;
use serde_json::json;
use support::fake_conductorone::{FakeConductorOne, Fault, FaultRule};
use support::harness::{
    APP, CONNECTOR, ROTATE_PATH, TOKEN_PATH, config, connector_path, credential_path, creds, setup,
};

#[test]
fn client_is_shareable_across_tasks() {
    fn assert_shareable<T: Clone + Send + Sync + 'static>() {}
    assert_shareable::<ConductorOneClient>();
}

#[tokio::test]
async fn one_token_serves_many_calls() {
    let (fake, client, api) = setup(config()).await;
    for _ in 0..5 {
        client.get_connector(&api, APP, CONNECTOR).await.unwrap();
    }
    let concurrent = (0..8).map(|_| {
        let client = client.clone();
        let api = api.clone();
        async move { client.get_connector(&api, APP, CONNECTOR).await }
    });
    for result in join_all(concurrent).await {
        result.unwrap();
    }
    assert_eq!(fake.count("POST", TOKEN_PATH), 1);
    assert_eq!(fake.count("GET", &connector_path()), 13);
    // The fake records who exchanged a credential, which the e2e suite reads to see which
    // credential a running connector process authenticated with.
    let exchanges = fake.token_exchanges();
    assert_eq!(exchanges.len(), 1, "{exchanges:?}");
    assert_eq!(exchanges[0].client_id, api.client_id);
}

#[tokio::test]
async fn token_is_renewed_shortly_before_expiry() {
    let (fake, client, api) = setup(config()).await;
    fake.set_token_ttl(Duration::from_secs(2));
    client.get_connector(&api, APP, CONNECTOR).await.unwrap();
    client.get_connector(&api, APP, CONNECTOR).await.unwrap();
    assert_eq!(fake.count("POST", TOKEN_PATH), 1);
    // Past 90% of the lifetime the cached token is no longer used.
    tokio::time::sleep(Duration::from_millis(1900)).await;
    client.get_connector(&api, APP, CONNECTOR).await.unwrap();
    assert_eq!(fake.count("POST", TOKEN_PATH), 2);
}

#[tokio::test]
async fn tokens_are_cached_per_credential_not_per_client_id() {
    let (fake, client, api) = setup(config()).await;
    let other = creds(&fake.register_principal("other"));
    client.get_connector(&api, APP, CONNECTOR).await.unwrap();
    client.get_connector(&other, APP, CONNECTOR).await.unwrap();
    assert_eq!(fake.count("POST", TOKEN_PATH), 2);

    // Someone else's client id with a wrong secret must not ride on the cached token.
    let impostor =
        ApiCredentials { client_id: api.client_id.clone(), client_secret: other.client_secret.clone() };
    let err = client.get_connector(&impostor, APP, CONNECTOR).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized);
    assert_eq!(err.operation(), "token");
    assert_eq!(fake.count("POST", TOKEN_PATH), 3);
}

#[tokio::test]
async fn rotate_get_revoke_round_trip() {
    let (fake, client, api) = setup(config()).await;
    fake.set_credential_lifetime(Some(Duration::from_secs(90 * 24 * 3600)));

    let issued = client.rotate_credential(&api, APP, CONNECTOR).await.unwrap();
    assert_eq!(fake.count("POST", ROTATE_PATH), 1);
    assert_eq!((issued.app_id.as_str(), issued.connector_id.as_str()), (APP, CONNECTOR));
    assert!(issued.client_id.ends_with(&format!("@{}/ccc", fake.authority())));
    assert!(issued.expose_client_secret().starts_with("secret-token:conductorone.com:v1:"));
    assert!(issued.created_at.is_some() && issued.expires_at.is_some());
    let issued_api =
        ApiCredentials { client_id: issued.client_id.clone(), client_secret: issued.client_secret.clone() };
    issued_api.validate().unwrap();
    assert!(!fake.credential(&issued.id).unwrap().is_revoked());

    let info = client.get_credential(&api, APP, CONNECTOR, &issued.id).await.unwrap();
    assert_eq!(info.id, issued.id);
    assert_eq!(info.client_id, issued.client_id);
    assert_eq!(info.display_name, issued.display_name);
    assert_eq!(info.expires_at, issued.expires_at);
    assert_eq!((info.deleted_at, info.last_used_at), (None, None));

    // The minted secret really authenticates (the token endpoint accepts it); a connector
    // credential just may not manage the API.
    let err = client.get_connector(&issued_api, APP, CONNECTOR).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Forbidden);
    let info = client.get_credential(&api, APP, CONNECTOR, &issued.id).await.unwrap();
    assert!(info.last_used_at.is_some());

    // Rotation mints; the earlier credential stays valid until revoked.
    let second = client.rotate_credential(&api, APP, CONNECTOR).await.unwrap();
    assert_ne!(second.id, issued.id);
    assert_ne!(second.client_id, issued.client_id);
    assert!(!fake.credential(&issued.id).unwrap().is_revoked());

    client.revoke_credential(&api, APP, CONNECTOR, &issued.id).await.unwrap();
    assert!(fake.credential(&issued.id).unwrap().is_revoked());
    assert!(!fake.credential(&second.id).unwrap().is_revoked());
    assert_eq!(fake.count("POST", &credential_path(&issued.id)), 1);
    let gone = client.get_credential(&api, APP, CONNECTOR, &issued.id).await.unwrap_err();
    assert_eq!(gone.kind(), ErrorKind::NotFound);
    let again = client.revoke_credential(&api, APP, CONNECTOR, &issued.id).await.unwrap_err();
    assert_eq!((again.kind(), again.status(), again.grpc_code()), (ErrorKind::NotFound, Some(404), Some(5)));
    // Revocation took effect at the token endpoint too (a fresh client has no cached token).
    let fresh = ConductorOneClient::new(config()).unwrap();
    let denied = fresh.get_connector(&issued_api, APP, CONNECTOR).await.unwrap_err();
    assert_eq!((denied.kind(), denied.operation()), (ErrorKind::Unauthorized, "token"));
}

#[tokio::test]
async fn rotating_for_an_unknown_connector_is_not_found() {
    let (fake, client, api) = setup(config()).await;
    let err = client.rotate_credential(&api, APP, "nope").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(fake.credentials().is_empty());
}

#[tokio::test]
async fn connector_sync_status_is_mapped() {
    let (fake, client, api) = setup(config()).await;
    let info = client.get_connector(&api, APP, CONNECTOR).await.unwrap();
    assert_eq!(
        (info.id.as_str(), info.app_id.as_str(), info.display_name.as_str()),
        (CONNECTOR, APP, "okta")
    );
    assert_eq!(info.sync, None, "status null means never synced");

    fake.set_sync_status(
        APP,
        CONNECTOR,
        json!({
            "status": "SYNC_STATUS_DONE", "startedAt": "2026-08-01T10:00:00Z",
            "completedAt": "2026-08-01T10:04:12Z", "updatedAt": "2026-08-01T10:04:12Z", "lastError": ""
        }),
    );
    let sync = client.get_connector(&api, APP, CONNECTOR).await.unwrap().sync.unwrap();
    assert_eq!(sync.state, SyncState::Done);
    assert_eq!(sync.last_completed_at.unwrap().to_string(), "2026-08-01T10:04:12Z");
    assert_eq!(sync.last_started_at.unwrap().to_string(), "2026-08-01T10:00:00Z");
    assert_eq!(sync.last_error, None);

    fake.set_sync_status(
        APP,
        CONNECTOR,
        json!({
            "status": "SYNC_STATUS_ERROR", "startedAt": null, "completedAt": null,
            "updatedAt": null, "lastError": "invalid okta token"
        }),
    );
    let sync = client.get_connector(&api, APP, CONNECTOR).await.unwrap().sync.unwrap();
    assert_eq!(sync.state, SyncState::Error);
    assert_eq!(sync.last_error.as_deref(), Some("invalid okta token"));
}

#[tokio::test]
async fn unknown_fields_and_enum_values_are_tolerated() {
    let (fake, client, api) = setup(config()).await;
    fake.set_connector_fields(
        APP,
        CONNECTOR,
        json!({
            "brandNewField": {"nested": [1, 2, {"x": null}]},
            "connectorApiVersion": "7",
            "syncDisabledReason": null,
            "canResumeSync": null,
        }),
    );
    fake.set_sync_status(
        APP,
        CONNECTOR,
        json!({"status": "SYNC_STATUS_PAUSED_FOR_MAINTENANCE", "futureField": true}),
    );
    let info = client.get_connector(&api, APP, CONNECTOR).await.unwrap();
    let sync = info.sync.unwrap();
    assert_eq!(sync.state, SyncState::Unknown("SYNC_STATUS_PAUSED_FOR_MAINTENANCE".into()));
    assert_eq!(sync.state.label(), "Unknown");
    assert_eq!((sync.last_started_at, sync.last_error), (None, None));
    assert_eq!((info.sync_disabled_reason.as_str(), info.can_resume_sync), ("", false));

    fake.set_sync_status(APP, CONNECTOR, json!({"status": 1}));
    let sync = client.get_connector(&api, APP, CONNECTOR).await.unwrap().sync.unwrap();
    assert_eq!(sync.state, SyncState::Running);
}

#[tokio::test]
async fn contract_violations_are_decode_errors_and_not_retried() {
    let (fake, client, api) = setup(config()).await;
    fake.set_connector_fields(APP, CONNECTOR, json!({"createdAt": "last tuesday"}));
    let err = client.get_connector(&api, APP, CONNECTOR).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Decode);
    assert!(!err.message().contains("last tuesday"));
    assert_eq!(fake.count("GET", &connector_path()), 1);
}

#[tokio::test]
async fn unauthorized_is_final_and_drops_the_cached_token() {
    let (fake, client, api) = setup(config()).await;
    fake.inject(
        FaultRule::new(Fault::error(401, 16, "unauthenticated")).on("GET", &connector_path()).times(100),
    );
    let err = client.get_connector(&api, APP, CONNECTOR).await.unwrap_err();
    assert_eq!(
        (err.kind(), err.reason(), err.is_permanent()),
        (ErrorKind::Unauthorized, "Unauthorized", true)
    );
    assert_eq!(fake.count("GET", &connector_path()), 1, "401 must not be retried");

    // Server-side token revocation: the next call gets a 401 once, the one after a new token.
    let (fake, client, api) = setup(config()).await;
    client.get_connector(&api, APP, CONNECTOR).await.unwrap();
    fake.revoke_all_tokens();
    let err = client.get_connector(&api, APP, CONNECTOR).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized);
    client.get_connector(&api, APP, CONNECTOR).await.unwrap();
    assert_eq!(fake.count("POST", TOKEN_PATH), 2);
    assert_eq!(fake.count("GET", &connector_path()), 3);
}

#[tokio::test]
async fn forbidden_is_final() {
    let (fake, client, api) = setup(config()).await;
    fake.inject(
        FaultRule::new(Fault::error(403, 7, "permission denied")).on("GET", &connector_path()).times(100),
    );
    let err = client.get_connector(&api, APP, CONNECTOR).await.unwrap_err();
    assert_eq!((err.kind(), err.reason(), err.is_permanent()), (ErrorKind::Forbidden, "Forbidden", true));
    assert_eq!(fake.count("GET", &connector_path()), 1);
}

#[tokio::test]
async fn token_endpoint_failures() {
    let (fake, client, api) = setup(config()).await;
    fake.disable_principal(&api.client_id);
    let err = client.get_connector(&api, APP, CONNECTOR).await.unwrap_err();
    assert_eq!((err.kind(), err.operation(), err.status()), (ErrorKind::Unauthorized, "token", Some(401)));
    assert_eq!(fake.count("POST", TOKEN_PATH), 1);
    assert_eq!(fake.count("GET", &connector_path()), 0);

    // A 404 from the token endpoint must not look like "credential already revoked".
    let (fake, client, api) = setup(config()).await;
    fake.inject(FaultRule::new(Fault::error(404, 5, "not found")).on("POST", TOKEN_PATH));
    let err = client.revoke_credential(&api, APP, CONNECTOR, "cred").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized);

    let (fake, client, api) = setup(config()).await;
    fake.inject(FaultRule::new(Fault::error(503, 14, "unavailable")).on("POST", TOKEN_PATH).times(2));
    client.get_connector(&api, APP, CONNECTOR).await.unwrap();
    assert_eq!(fake.count("POST", TOKEN_PATH), 3);
}

#[tokio::test]
async fn a_404_without_a_conductorone_body_is_not_not_found() {
    let (fake, client, api) = setup(config()).await;
    let issued = client.rotate_credential(&api, APP, CONNECTOR).await.unwrap();
    fake.inject(FaultRule::new(Fault::bare(404)).on_path(&credential_path(&issued.id)));
    let err = client.revoke_credential(&api, APP, CONNECTOR, &issued.id).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
    assert!(!fake.credential(&issued.id).unwrap().is_revoked());
}

#[tokio::test]
async fn bad_credentials_fail_before_any_request() {
    let (fake, client, api) = setup(config()).await;
    let bad_secret = ApiCredentials::new(&api.client_id, "secret-token:conductorone.com:v1:@@@");
    let err = client.get_connector(&bad_secret, APP, CONNECTOR).await.unwrap_err();
    assert_eq!((err.kind(), err.is_permanent()), (ErrorKind::InvalidCredentials, true));
    let bad_id = ApiCredentials { client_id: "no-host".into(), client_secret: api.client_secret.clone() };
    let err = client.get_connector(&bad_id, APP, CONNECTOR).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidCredentials);
    assert!(fake.calls().is_empty());
}

#[tokio::test]
async fn plain_http_is_not_used_unless_allowed() {
    let cfg = ClientConfig { allow_insecure_http: false, max_retries: 0, ..config() };
    let (fake, client, api) = setup(cfg).await;
    let err = client.get_connector(&api, APP, CONNECTOR).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transport);
    assert!(fake.calls().is_empty(), "a TLS handshake is not an HTTP request");
}

#[tokio::test]
async fn the_fake_rejects_assertions_it_should() {
    // Guards the guard: a client signing with the wrong key must be refused by the fake.
    let (fake, client, api) = setup(config()).await;
    let other = fake.register_principal("other");
    let wrong_key = ApiCredentials::new(&api.client_id, &other.client_secret);
    let err = client.get_connector(&wrong_key, APP, CONNECTOR).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized);
    assert!(err.message().contains("signature"), "{err}");
    let unknown =
        ApiCredentials::new(format!("ghost@{}/spc", fake.authority()), api.client_secret.expose_secret());
    let err = client.get_connector(&unknown, APP, CONNECTOR).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized);
}

/// Posts a hand-made assertion to the fake's token endpoint and returns the HTTP status.
async fn token_status(
    fake: &FakeConductorOne,
    key: &ed25519_dalek::SigningKey,
    client_id: &str,
    header: serde_json::Value,
    claims: serde_json::Value,
) -> u16 {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
    use ed25519_dalek::Signer as _;
    let input = format!("{}.{}", B64.encode(header.to_string()), B64.encode(claims.to_string()));
    let jws = format!("{input}.{}", B64.encode(key.sign(input.as_bytes()).to_bytes()));
    reqwest::Client::new()
        .post(format!("{}/auth/v1/token", fake.base_url()))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
            ("client_assertion", jws.as_str()),
        ])
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn the_fake_checks_audience_issuer_and_time_window() {
    let fake = FakeConductorOne::start().await;
    let key = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
    let id = format!("probe@{}/spc", fake.authority());
    fake.register_public_key(&id, key.verifying_key());
    let now = k8s_openapi::jiff::Timestamp::now().as_second();
    let header = json!({"alg": "EdDSA", "nonce": "00112233445566778899aabbccddeeff"});
    let claims = |aud: serde_json::Value, iss: &str, nbf: i64, exp: i64| json!({"iss": iss, "sub": id, "aud": aud, "iat": now, "nbf": nbf, "exp": exp});
    let good = claims(json!("127.0.0.1"), &id, now - 120, now + 120);
    assert_eq!(token_status(&fake, &key, &id, header.clone(), good).await, 200);
    // go-jose v2 and the TypeScript SDK send aud as an array; Python puts the nonce in the
    // claims and adds typ.
    let array_aud = claims(json!(["127.0.0.1"]), &id, now - 120, now + 120);
    assert_eq!(token_status(&fake, &key, &id, header.clone(), array_aud).await, 200);
    let mut python = claims(json!("127.0.0.1"), &id, now - 120, now + 120);
    python["nonce"] = json!("abc");
    let python_header = json!({"alg": "EdDSA", "typ": "JWT"});
    assert_eq!(token_status(&fake, &key, &id, python_header, python).await, 200);

    let rejected = [
        claims(json!(fake.authority()), &id, now - 120, now + 120),
        claims(json!("127.0.0.1"), "someone-else", now - 120, now + 120),
        claims(json!("127.0.0.1"), &id, now - 300, now - 60),
        claims(json!("127.0.0.1"), &id, now + 60, now + 120),
        claims(json!("127.0.0.1"), &id, now - 120, now + 600),
    ];
    for bad in rejected {
        let status = token_status(&fake, &key, &id, header.clone(), bad.clone()).await;
        assert_eq!(status, 401, "accepted {bad}");
    }
    let wrong_alg = json!({"alg": "HS256"});
    let good = claims(json!("127.0.0.1"), &id, now - 120, now + 120);
    assert_eq!(token_status(&fake, &key, &id, wrong_alg, good).await, 401);
}

#[tokio::test]
async fn listing_an_apps_connectors_reads_every_page() {
    let (fake, client, api) = setup(config()).await;
    // The fake answers ten per page at most, whatever the client asks for.
    for i in 0..24 {
        fake.add_connector(APP, &format!("conn-{i:02}"), "okta");
    }
    fake.add_connector("another-app", "elsewhere", "okta");
    let listed = client.list_connectors(&api, APP).await.unwrap();
    let mut ids: Vec<&str> = listed.iter().map(|c| c.id.as_str()).collect();
    ids.sort();
    assert_eq!(ids.len(), 25, "{ids:?}");
    assert!(ids.contains(&CONNECTOR) && !ids.contains(&"elsewhere"));
    assert_eq!(fake.count("GET", &format!("/api/v1/apps/{APP}/connectors")), 3);
}
