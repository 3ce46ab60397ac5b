//! Client secrets, issued connector secrets, their private keys and access tokens never show up
//! in errors (`Display`, `Debug`, source chains), in `Debug` of the public structs, or in logs.

use baton_test_support as support;

use std::collections::HashSet;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use baton_operator::conductorone::{
    ApiCredentials, ClientConfig, ConductorOneClient, Error, ErrorKind, ExposeSecret,
};
use serde_json::json;
use support::fake_conductorone::jws::private_part;
use support::fake_conductorone::{Fault, FaultRule};
use support::harness::{APP, CONNECTOR, config, connector_path, setup};
use tracing_subscriber::fmt::MakeWriter;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

fn render(err: &Error) -> String {
    let mut text = format!("{err}\n{err:?}\n{err:#?}\n");
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text += &format!("{cause}\n{cause:?}\n");
        source = cause.source();
    }
    text
}

/// The secret itself, the private key inside it, and the encoded JWK holding that key.
fn secret_forms(secret: &str) -> Vec<String> {
    let jwk = secret.rsplit(':').next().unwrap().to_owned();
    vec![secret.to_owned(), private_part(secret), jwk]
}

// Single-threaded runtime: the thread-local log capture then sees the client's and the
// fake's spans alike.
#[tokio::test(flavor = "current_thread")]
async fn secrets_never_appear_in_errors_debug_or_logs() {
    // A second live dispatcher, as in managed::no_secret_reaches_the_logs_events_or_status: the test
    // threads of this binary share tracing's process-wide callsite interest, and without it a sibling
    // thread with no subscriber can cache "never" and blind the capture.
    let _anchor = tracing::Dispatch::new(tracing_subscriber::registry());
    let logs = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(logs.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    // Long enough that only the delayed answer times out, even on a loaded machine (300 ms once made
    // another call of this test a Timeout under CI-like load).
    let cfg = ClientConfig { timeout: Duration::from_secs(2), max_retries: 0, ..config() };
    let (fake, client, api) = setup(cfg.clone()).await;
    let operator_secret = api.client_secret.expose_secret().to_owned();
    let connector_path = connector_path();

    let issued = client.rotate_credential(&api, APP, CONNECTOR).await.unwrap();
    let issued_api =
        ApiCredentials { client_id: issued.client_id.clone(), client_secret: issued.client_secret.clone() };
    let info = client.get_credential(&api, APP, CONNECTOR, &issued.id).await.unwrap();
    let connector = client.get_connector(&api, APP, CONNECTOR).await.unwrap();
    let mut outputs = vec![format!(
        "{issued:?}\n{issued:#?}\n{api:?}\n{issued_api:?}\n{client:?}\n{cfg:?}\n{info:?}\n{connector:?}"
    )];

    let mut errors = Vec::new();
    let mangled = format!("{}:x", operator_secret);
    errors.push(client.get_connector(&ApiCredentials::new(&api.client_id, mangled), APP, CONNECTOR).await);
    let wrong_key = ApiCredentials::new(&api.client_id, issued.expose_client_secret());
    errors.push(client.get_connector(&wrong_key, APP, CONNECTOR).await);
    errors.push(client.get_connector(&issued_api, APP, CONNECTOR).await);
    errors.push(client.get_connector(&api, APP, "missing").await);
    for fault in [
        Fault::bare(400),
        Fault::rate_limited("120"),
        Fault::error(500, 13, "internal"),
        Fault::Delay(Duration::from_secs(4)),
        Fault::Drop,
    ] {
        fake.inject(FaultRule::new(fault).on("GET", &connector_path));
        errors.push(client.get_connector(&api, APP, CONNECTOR).await);
    }
    fake.set_connector_fields(APP, CONNECTOR, json!({"updatedAt": operator_secret}));
    errors.push(client.get_connector(&api, APP, CONNECTOR).await);
    let zero_rate = ClientConfig { requests_per_second: 0, ..cfg.clone() };
    let config_error = ConductorOneClient::new(zero_rate).unwrap_err();

    let mut kinds = HashSet::new();
    for err in errors.into_iter().map(|r| r.unwrap_err()).chain([config_error]) {
        kinds.insert(err.kind());
        outputs.push(render(&err));
    }
    assert_eq!(kinds.len(), 11, "every ErrorKind is exercised: {kinds:?}");
    assert!(kinds.contains(&ErrorKind::Decode) && kinds.contains(&ErrorKind::Transport));

    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("ConductorOne call"), "logs were captured");
    outputs.push(logs);

    let tokens = fake.issued_tokens();
    assert!(tokens.len() >= 2);
    let mut secrets = secret_forms(&operator_secret);
    secrets.extend(secret_forms(issued.client_secret.expose_secret()));
    secrets.extend(tokens);
    for output in &outputs {
        for secret in &secrets {
            assert!(!secret.is_empty());
            assert!(!output.contains(secret.as_str()), "secret leaked into:\n{output}");
        }
    }
}
