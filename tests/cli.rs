//! The binary behaves like a command-line tool: quiet on a closed pipe, clear about a busy port.

use std::{
    net::TcpListener,
    process::{Command, Output, Stdio},
    time::{Duration, Instant},
};

const BIN: &str = env!("CARGO_BIN_EXE_baton-operator");

/// Waits for the child with a deadline, so a binary that hangs fails the test instead of CI.
fn output_within(mut command: Command, limit: Duration) -> Output {
    let mut child = command.stdin(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > limit {
            child.kill().unwrap();
            panic!("{command:?} still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

/// `baton-operator crd | head`: the reader is gone before the first write.
#[test]
fn closed_stdout_exits_quietly() {
    for args in [&["crd"][..], &["render", "-f", "examples/okta.yaml"]] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let mut command = Command::new(BIN);
        command.args(args).current_dir(env!("CARGO_MANIFEST_DIR")).stdout(writer);
        let out = output_within(command, Duration::from_secs(30));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?}: exit {:?}, stderr: {stderr}", out.status);
        assert!(stderr.is_empty(), "{args:?} wrote to stderr: {stderr}");
    }
}

#[test]
fn errors_go_to_stderr_without_a_panic() {
    let mut command = Command::new(BIN);
    command.args(["render", "-f", "/nonexistent/baton.yaml"]).stdout(Stdio::piped());
    let out = output_within(command, Duration::from_secs(30));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert!(stderr.starts_with("error: reading /nonexistent/baton.yaml"), "stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "stderr: {stderr}");
    assert!(out.stdout.is_empty());
}

#[test]
fn http_addr_in_use_is_named() {
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    let mut command = Command::new(BIN);
    command
        .args(["run", "--http-addr", &addr])
        // No cluster either way: the address must be what stops it, and it must not wait for one.
        .env("KUBECONFIG", "/nonexistent/kubeconfig")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("HTTP_ADDR")
        .stdout(Stdio::null());
    let out = output_within(command, Duration::from_secs(30));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains(&addr), "stderr does not name {addr}: {stderr}");
    assert!(stderr.contains("in use"), "stderr does not say why: {stderr}");
    drop(busy);
}
