//! How the ConductorOne client copes with an unhealthy or busy server: 429 with Retry-After,
//! 5xx, timeouts, dropped connections, and the shared rate limiter.

use baton_test_support as support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use baton_operator::conductorone::{CallOutcome, ClientConfig, ConductorOneClient, ErrorKind};
use futures::future::join_all;
use support::fake_conductorone::{FakeConductorOne, Fault, FaultRule};
use support::harness::{APP, CONNECTOR, ROTATE_PATH, config, connector_path, creds, setup};
use tokio::time::Instant;

#[tokio::test]
async fn rate_limit_storm_honours_retry_after_and_gives_up() {
    let (fake, client, api) = setup(ClientConfig { max_retries: 2, ..config() }).await;
    client.get_connector(&api, APP, CONNECTOR).await.unwrap();
    fake.inject(FaultRule::new(Fault::rate_limited("1")).on("GET", &connector_path()).times(100));
    let start = Instant::now();
    let err = client.get_connector(&api, APP, CONNECTOR).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited);
    assert!(!err.is_permanent());
    assert_eq!(err.retry_after(), Some(Duration::from_secs(1)));
    assert!(start.elapsed() >= Duration::from_secs(2), "{:?}", start.elapsed());

    let calls: Vec<_> = fake.calls().into_iter().filter(|c| c.path == connector_path()).collect();
    assert_eq!(calls.len(), 1 + 3, "first success, then 1 + max_retries attempts");
    for pair in calls[1..].windows(2) {
        let gap = pair[1].at - pair[0].at;
        assert!(gap >= Duration::from_millis(990), "Retry-After not honoured: {gap:?}");
        assert_eq!(pair[1].status, Some(429));
    }
}

#[tokio::test]
async fn retry_after_beyond_the_cap_ends_the_call_at_once() {
    let (fake, client, api) = setup(config()).await;
    fake.inject(FaultRule::new(Fault::rate_limited("120")).on("GET", &connector_path()).times(100));
    let start = Instant::now();
    let err = client.get_connector(&api, APP, CONNECTOR).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited);
    assert_eq!(err.retry_after(), Some(Duration::from_secs(120)));
    assert_eq!(fake.count("GET", &connector_path()), 1);
    assert!(start.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn server_errors_then_success_are_retried_and_reported_to_metrics() {
    let fake = FakeConductorOne::start().await;
    fake.add_connector(APP, CONNECTOR, "okta");
    let api = creds(&fake.register_principal("operator"));
    let (client, seen) = recording_client();
    fake.inject(FaultRule::new(Fault::error(503, 14, "unavailable")).on("GET", &connector_path()).times(2));
    client.get_connector(&api, APP, CONNECTOR).await.unwrap();
    assert_eq!(fake.count("GET", &connector_path()), 3);

    let seen = seen.lock().unwrap();
    let summary: Vec<_> = seen.iter().map(|o| (o.operation, o.result, o.status, o.attempt)).collect();
    assert_eq!(
        summary,
        [
            ("token", "Ok", Some(200), 0),
            ("get_connector", "ServerError", Some(503), 0),
            ("get_connector", "ServerError", Some(503), 1),
            ("get_connector", "Ok", Some(200), 2),
        ]
    );
    assert_eq!(seen[1].status_class(), "5xx");
}

#[tokio::test]
async fn persistent_server_errors_stop_after_max_retries() {
    let (fake, client, api) = setup(config()).await;
    fake.inject(FaultRule::new(Fault::error(500, 13, "internal")).on("GET", &connector_path()).times(100));
    let err = client.get_connector(&api, APP, CONNECTOR).await.unwrap_err();
    assert_eq!((err.kind(), err.status(), err.grpc_code()), (ErrorKind::Server, Some(500), Some(13)));
    assert_eq!(err.message(), "internal");
    assert_eq!(fake.count("GET", &connector_path()), 4);
}

#[tokio::test]
async fn rotation_is_not_repeated_when_the_outcome_is_unknown() {
    let (fake, client, api) = setup(config()).await;
    fake.inject(FaultRule::new(Fault::error(500, 13, "internal")).on("POST", ROTATE_PATH));
    let err = client.rotate_credential(&api, APP, CONNECTOR).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Server);
    assert_eq!(fake.count("POST", ROTATE_PATH), 1);

    fake.inject(FaultRule::new(Fault::Drop).on("POST", ROTATE_PATH).times(100));
    let err = client.rotate_credential(&api, APP, CONNECTOR).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transport);
    assert_eq!(fake.count("POST", ROTATE_PATH), 2);
}

#[tokio::test]
async fn rate_limited_rotation_is_repeated() {
    let (fake, client, api) = setup(config()).await;
    fake.inject(FaultRule::new(Fault::rate_limited("0")).on("POST", ROTATE_PATH));
    client.rotate_credential(&api, APP, CONNECTOR).await.unwrap();
    assert_eq!(fake.count("POST", ROTATE_PATH), 2);
    assert_eq!(fake.credentials().len(), 1);
}

#[tokio::test]
async fn slow_answers_time_out_and_are_retried() {
    let cfg = ClientConfig { timeout: Duration::from_millis(300), max_retries: 2, ..config() };
    let (fake, client, api) = setup(cfg).await;
    client.get_connector(&api, APP, CONNECTOR).await.unwrap();
    fake.inject(FaultRule::new(Fault::Delay(Duration::from_secs(2))).on("GET", &connector_path()));
    client.get_connector(&api, APP, CONNECTOR).await.unwrap();
    assert_eq!(fake.count("GET", &connector_path()), 3);

    fake.inject(FaultRule::new(Fault::Delay(Duration::from_secs(2))).on("GET", &connector_path()).times(3));
    let start = Instant::now();
    let err = client.get_connector(&api, APP, CONNECTOR).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert!(!err.is_permanent());
    assert_eq!(fake.count("GET", &connector_path()), 6);
    let elapsed = start.elapsed();
    assert!(elapsed >= Duration::from_millis(900) && elapsed < Duration::from_secs(2), "{elapsed:?}");
}

#[tokio::test]
async fn refused_connections_are_retried_even_for_rotation() {
    let fake = FakeConductorOne::start().await;
    fake.add_connector(APP, CONNECTOR, "okta");
    let api = creds(&fake.register_principal("operator"));
    let (client, seen) = recording_client();
    client.get_connector(&api, APP, CONNECTOR).await.unwrap();
    drop(fake);
    // Let the pooled keep-alive connection notice it was closed.
    tokio::time::sleep(Duration::from_millis(100)).await;

    // The token is cached, so only the rotation itself meets the closed port. A refused
    // connection cannot have minted anything, so even rotation is retried.
    let err = client.rotate_credential(&api, APP, CONNECTOR).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transport);
    let attempts: Vec<_> = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|o| o.operation == "rotate_credential")
        .map(|o| (o.result, o.status))
        .collect();
    assert_eq!(attempts, vec![("TransportError", None); 4]);
}

#[tokio::test]
async fn dropped_connections_are_retried() {
    let (fake, client, api) = setup(ClientConfig { max_retries: 2, ..config() }).await;
    fake.inject(FaultRule::new(Fault::Drop).on("GET", &connector_path()).times(2));
    client.get_connector(&api, APP, CONNECTOR).await.unwrap();
    let statuses: Vec<_> =
        fake.calls().iter().filter(|c| c.path == connector_path()).map(|c| c.status).collect();
    assert_eq!(statuses, [None, None, Some(200)]);

    fake.inject(FaultRule::new(Fault::Drop).on("GET", &connector_path()).times(100));
    let err = client.get_connector(&api, APP, CONNECTOR).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transport);
    assert_eq!(fake.count("GET", &connector_path()), 6);
}

#[tokio::test]
async fn the_rate_limiter_bounds_throughput_across_clones() {
    let cfg = ClientConfig { requests_per_second: 10, burst: 2, ..config() };
    let (fake, client, api) = setup(cfg).await;
    let start = Instant::now();
    let calls = (0..13).map(|_| {
        let client = client.clone();
        let api = api.clone();
        async move { client.get_connector(&api, APP, CONNECTOR).await }
    });
    for result in join_all(calls).await {
        result.unwrap();
    }
    // 14 requests (one token) with 2 up front and 10/s after: at least 1.2 s.
    let elapsed = start.elapsed();
    assert!(elapsed >= Duration::from_millis(1150), "{elapsed:?}");
    let times: Vec<Instant> = fake.calls().iter().map(|c| c.at).collect();
    assert_eq!(times.len(), 14);
    for (i, t) in times.iter().enumerate() {
        let in_window = times[i..].iter().filter(|u| **u - *t < Duration::from_millis(500)).count();
        // Burst + 0.5 s of rate, plus slack for scheduling jitter on a busy machine.
        assert!(in_window <= 2 + 5 + 2, "{in_window} requests within 500 ms");
    }
}

/// A client whose metrics hook records every attempt.
fn recording_client() -> (ConductorOneClient, Arc<Mutex<Vec<CallOutcome>>>) {
    let seen: Arc<Mutex<Vec<CallOutcome>>> = Arc::default();
    let sink = seen.clone();
    let hook = Arc::new(move |o: &CallOutcome| sink.lock().unwrap().push(o.clone()));
    (ConductorOneClient::with_metrics(config(), hook).unwrap(), seen)
}
