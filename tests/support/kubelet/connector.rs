//! The stand-in connector: what the suite's binary does when it runs as a connector image (its image
//! environment names the connector and SDK version it plays, [`super::image::PLAYS_VAR`]). It follows
//! the Baton SDK's contract ([`super::sdk`]):
//!
//! - configuration from `BATON_*` variables and `--flag value` / `--flag=value` arguments (flags win);
//! - the connector's required fields (from the catalog) checked first: `Error: <the SDK's message>`,
//!   exit 1;
//! - `BATON_CLIENT_ID` and `BATON_CLIENT_SECRET` ⇒ service mode: the credential is exchanged for a
//!   token at `/auth/v1/token` of the host in the client id (plain HTTP for a loopback host: the fake
//!   ConductorOne, which the operator reaches the same way with `--c1-insecure-loopback`), with the
//!   pid in the `User-Agent`; then one task as ConductorOne would send it, with debug logging on
//!   (`debug.log` in the working directory, the sync in a temporary file of the temp dir); then it
//!   keeps running, exchanging again every `STANDIN_REAUTH_SECONDS` (2): a revoked credential makes
//!   it exit 1, as the SDK exits on a non-retryable error. `SIGTERM` is not handled (nor is it by
//!   the SDK): the process ends at once.
//! - otherwise a one-shot sync into `BATON_FILE` (default `sync.c1z`, relative to the working
//!   directory): written to `<file>.tmp`, then renamed; exit 0.
//! - the health server (`/live`, `/ready`, `/health`) on `BATON_HEALTH_CHECK_BIND_ADDRESS`
//!   (127.0.0.1) : `BATON_HEALTH_CHECK_PORT` (8081), in service mode, only with
//!   `BATON_HEALTH_CHECK=true` on SDK v0.7.6 or newer; the `health-check` subcommand likewise.
//! - `STANDIN_ALLOCATE_MIB=<n>`: first takes `n` MiB of memory, 4 MiB at a time (the OOM case);
//!   `STANDIN_FILL_MIB=<n>`: the service-mode task writes `n` MiB into `fill.db` in the working
//!   directory (the `emptyDir` `sizeLimit` case).

use std::{collections::BTreeMap, path::Path, process::ExitCode, time::Duration};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signer as _, SigningKey};
use serde_json::json;

use super::{image::PLAYS_VAR, sdk, standin};

/// Which connector and SDK version the process plays, when it runs as the stand-in.
pub fn plays() -> Option<(String, (u32, u32, u32))> {
    let value = std::env::var(PLAYS_VAR).ok()?;
    let (connector, version) = value.split_once(' ')?;
    let version = sdk::image_sdk_version(&format!("x:{version}"))?;
    Some((connector.to_string(), version))
}

/// The configuration the SDK sees: the environment, then the flags over it. A boolean flag
/// (`is_bool`) takes no separate value, as with cobra.
fn configuration(args: &[String], is_bool: impl Fn(&str) -> bool) -> (BTreeMap<String, String>, Vec<String>) {
    let mut config: BTreeMap<String, String> =
        std::env::vars().filter(|(k, _)| k.starts_with("BATON_")).collect();
    let mut positional = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        if let Some(flag) = arg.strip_prefix("--") {
            let (name, value) = match flag.split_once('=') {
                Some((n, v)) => (n.to_string(), v.to_string()),
                None if !is_bool(flag) && args.get(i + 1).is_some_and(|n| !n.starts_with("--")) => {
                    i += 1;
                    (flag.to_string(), args[i].clone())
                }
                None => (flag.to_string(), "true".to_string()),
            };
            config.insert(sdk::env_name(&name), value);
        } else {
            positional.push(arg.clone());
        }
        i += 1;
    }
    (config, positional)
}

/// The stand-in's `main`.
pub fn main((connector, version): (String, (u32, u32, u32))) -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let schema = baton_operator::catalog::Catalog::embedded().get(&connector);
    let is_bool = |flag: &str| {
        let field = schema.and_then(|s| s.field(flag));
        field.is_some_and(|f| f.kind == baton_operator::catalog::FieldType::Bool) || flag == "health-check"
    };
    let (config, positional) = configuration(&args, is_bool);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    let result = runtime.block_on(async {
        allocate().await;
        match positional.first().map(String::as_str) {
            Some("health-check") if version >= (0, 7, 6) => health_check(&config).await,
            Some(other) => Err(format!("unknown command \"{other}\" for \"baton-{connector}\"")),
            None => run(&connector, version, &config).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("Error: {message}");
            ExitCode::from(1)
        }
    }
}

async fn run(
    connector: &str,
    version: (u32, u32, u32),
    config: &BTreeMap<String, String>,
) -> Result<(), String> {
    if let Some(schema) = baton_operator::catalog::Catalog::embedded().get(connector) {
        sdk::check_required(schema, version, config)?;
    }
    match sdk::mode(config)? {
        sdk::Mode::OneShot { file } => {
            log("info", "starting one-shot sync");
            let tmp = temp_dir(config);
            standin::write_sync(&tmp, "baton-sdk-sync.c1z-working", b"working")?;
            let _ = std::fs::remove_file(tmp.join("baton-sdk-sync.c1z-working"));
            standin::write_sync(Path::new("."), &file, &sync_content(connector))?;
            log("info", "Sync complete.");
            Ok(())
        }
        sdk::Mode::Service { client_id, client_secret } => {
            service(connector, version, config, &client_id, &client_secret).await
        }
    }
}

/// What the sync file holds: a header the test can check for completeness.
pub fn sync_content(connector: &str) -> Vec<u8> {
    let mut out = format!("C1ZF stand-in sync of baton-{connector}\n").into_bytes();
    out.extend(std::iter::repeat_n(b'.', 64 * 1024));
    out.extend(b"\nend of sync\n");
    out
}

fn temp_dir(config: &BTreeMap<String, String>) -> std::path::PathBuf {
    config
        .get("BATON_TMPDIR")
        .cloned()
        .or_else(|| std::env::var("TMPDIR").ok())
        .unwrap_or_else(|| "/tmp".into())
        .into()
}

/// A zap-style JSON line on stderr, as the SDK logs.
fn log(level: &str, msg: &str) {
    let ts = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default();
    eprintln!("{}", json!({"level": level, "ts": ts, "msg": msg}));
}

async fn service(
    connector: &str,
    version: (u32, u32, u32),
    config: &BTreeMap<String, String>,
    client_id: &str,
    client_secret: &str,
) -> Result<(), String> {
    exchange(client_id, client_secret).await?;
    log("info", "c1_api_task_manager: startup Hello succeeded.");
    if sdk::health_server_enabled(version, config) {
        serve_health(config).await?;
    }
    // One task, as ConductorOne sends them, with debug logging on: a failure is the task's, logged,
    // and the connector keeps running.
    let task = standin::debug_log(Path::new("."), "task started").and_then(|()| {
        standin::write_sync(&temp_dir(config), "baton-sdk-sync-upload.c1z", &sync_content(connector))
    });
    let task = task.and_then(|()| fill(Path::new(".")));
    match task {
        Ok(()) => log("info", "task done: full sync"),
        Err(e) => log("error", &format!("c1_api_task_manager.Process(): task failed: {e}")),
    }
    let every = std::env::var("STANDIN_REAUTH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(2);
    loop {
        tokio::time::sleep(Duration::from_secs(every)).await;
        exchange(client_id, client_secret).await?;
    }
}

/// The client-credentials exchange with a signed assertion (EdDSA, `aud` = host without port).
async fn exchange(client_id: &str, client_secret: &str) -> Result<(), String> {
    let authority =
        client_id.split_once('@').and_then(|(_, rest)| rest.split('/').next()).unwrap_or_default();
    let host = authority.rsplit_once(':').map_or(authority, |(h, _)| h);
    let loopback = host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
    let scheme = if loopback { "http" } else { "https" };
    let key = signing_key(client_secret).ok_or("invalid client secret")?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default();
    let header = json!({"alg": "EdDSA", "nonce": rand::random::<[u8; 16]>().iter().map(|b| format!("{b:02x}")).collect::<String>()});
    let claims = json!({"iss": client_id, "sub": client_id, "aud": host, "iat": now, "nbf": now - 120, "exp": now + 120});
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let assertion = format!("{input}.{}", URL_SAFE_NO_PAD.encode(key.sign(input.as_bytes()).to_bytes()));
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", client_id),
        ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
        ("client_assertion", &assertion),
    ];
    let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
    let agent = format!("baton-standin (pid {})", std::process::id());
    let client = reqwest::Client::builder().no_proxy().build().map_err(|e| e.to_string())?;
    let response = client
        .post(format!("{scheme}://{authority}/auth/v1/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("user-agent", agent)
        .body(body)
        .send()
        .await
        .map_err(|e| format!("failed to get token: {e}"))?;
    if response.status().is_success() {
        return Ok(());
    }
    let status = response.status();
    let error: serde_json::Value = response.json().await.unwrap_or_default();
    Err(format!(
        "failed to get token: {status}: {} {}",
        error["error"].as_str().unwrap_or_default(),
        error["error_description"].as_str().unwrap_or_default()
    ))
}

/// The Ed25519 key inside `secret-token:conductorone.com:v1:<base64url JWK>`.
fn signing_key(secret: &str) -> Option<SigningKey> {
    let jwk = URL_SAFE_NO_PAD.decode(secret.strip_prefix("secret-token:conductorone.com:v1:")?).ok()?;
    let jwk: serde_json::Value = serde_json::from_slice(&jwk).ok()?;
    let d: [u8; 32] = URL_SAFE_NO_PAD.decode(jwk["d"].as_str()?).ok()?.try_into().ok()?;
    Some(SigningKey::from_bytes(&d))
}

/// Where an address the connector binds lands on this host: see the pod network in `mod.rs`.
fn pod_address(address: &str) -> String {
    let var = |name: &str| std::env::var(name).unwrap_or_else(|_| "127.0.0.1".into());
    match address {
        "0.0.0.0" | "::" | "" => var("E2E_POD_IP"),
        "127.0.0.1" | "localhost" | "::1" => var("E2E_POD_LOOPBACK"),
        other => other.to_string(),
    }
}

fn health_address(config: &BTreeMap<String, String>) -> String {
    let bind = config.get("BATON_HEALTH_CHECK_BIND_ADDRESS").cloned().unwrap_or_else(|| "127.0.0.1".into());
    let port = config.get("BATON_HEALTH_CHECK_PORT").cloned().unwrap_or_else(|| "8081".into());
    format!("{}:{port}", pod_address(&bind))
}

async fn serve_health(config: &BTreeMap<String, String>) -> Result<(), String> {
    let address = health_address(config);
    let listener = tokio::net::TcpListener::bind(&address)
        .await
        .map_err(|e| format!("health check server: listen tcp {address}: {e}"))?;
    log("info", &format!("health check server starting on {address}"));
    let answer = |status: &'static str| {
        move || async move { ([("content-type", "application/json")], json!({"status": status}).to_string()) }
    };
    let app = axum::Router::new()
        .route("/live", axum::routing::get(answer("alive")))
        .route("/ready", axum::routing::get(answer("ready")))
        .route("/health", axum::routing::get(answer("healthy")));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(())
}

/// `health-check --endpoint=live|ready|health`: 0 on HTTP 200.
async fn health_check(config: &BTreeMap<String, String>) -> Result<(), String> {
    let endpoint = config.get("BATON_ENDPOINT").cloned().unwrap_or_else(|| "health".into());
    let url = format!("http://{}/{endpoint}", health_address(config));
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| e.to_string())?;
    match client.get(&url).send().await {
        Ok(r) if r.status().is_success() => Ok(()),
        Ok(r) => Err(format!("health check failed: {}", r.status())),
        Err(e) => Err(format!("health check failed: {e}")),
    }
}

/// Writes `STANDIN_FILL_MIB` MiB into `fill.db` in `dir`, as a large sync's working database does.
fn fill(dir: &Path) -> Result<(), String> {
    let Some(mib) = std::env::var("STANDIN_FILL_MIB").ok().and_then(|s| s.parse::<usize>().ok()) else {
        return Ok(());
    };
    let mut f = std::fs::File::create(dir.join("fill.db"))
        .map_err(|e| standin::go_error("open", Path::new("fill.db"), &e))?;
    for _ in 0..mib {
        std::io::Write::write_all(&mut f, &[0u8; 1 << 20])
            .map_err(|e| standin::go_error("write", Path::new("fill.db"), &e))?;
    }
    Ok(())
}

/// Takes `STANDIN_ALLOCATE_MIB` MiB, touched so that it is resident, and keeps it.
async fn allocate() {
    let Some(mib) = std::env::var("STANDIN_ALLOCATE_MIB").ok().and_then(|s| s.parse::<usize>().ok()) else {
        return;
    };
    let mut held: Vec<Vec<u8>> = Vec::new();
    for _ in 0..mib.div_ceil(4) {
        held.push(vec![1u8; 4 << 20]);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    log("info", &format!("holding {} MiB", held.len() * 4));
    std::mem::forget(held);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_over_the_environment_and_name_the_same_settings() {
        let args: Vec<String> = ["--domain=x.okta.com", "--api-token", "t", "--health-check", "health-check"]
            .map(String::from)
            .into();
        let (config, positional) = configuration(&args, |f| f == "health-check");
        assert_eq!(config["BATON_DOMAIN"], "x.okta.com");
        assert_eq!(config["BATON_API_TOKEN"], "t");
        assert_eq!(config["BATON_HEALTH_CHECK"], "true");
        assert_eq!(positional, ["health-check"]);
    }

    #[test]
    fn the_fake_secret_format_gives_the_signing_key() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let secret = crate::fake_conductorone::jws::secret_for(&key);
        assert_eq!(signing_key(&secret).map(|k| k.to_bytes()), Some(key.to_bytes()));
        assert!(signing_key("not a secret").is_none());
    }
}
