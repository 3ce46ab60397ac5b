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

/// A managed-credentials connector renders: the Secret the operator would mint, with placeholders,
/// and the Deployment reading it; no value from the input's Secrets reaches the output.
#[test]
fn render_shows_managed_credentials_as_placeholders() {
    let mut command = Command::new(BIN);
    command
        .args(["render", "-f", "examples/okta-zero-click.yaml", "-n", "identity"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::piped());
    let out = output_within(command, Duration::from_secs(30));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("kind: Secret") && stdout.contains("kind: Deployment"), "{stdout}");
    assert!(stdout.contains("name: okta-c1-credentials-1"), "{stdout}");
    assert!(stdout.contains("BATON_CLIENT_SECRET: <minted by the operator at run time>"), "{stdout}");
    assert!(!stdout.contains("REPLACE_ME") && !stdout.contains("secret-token:"), "{stdout}");
}

/// Runs `run --log-format text` against an unreachable API server until its first log line, with
/// stderr a pipe, and returns what it wrote there.
fn text_logs(envs: &[(&str, &str)], under_pty: bool) -> String {
    use std::io::Read;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'http://127.0.0.1:1'}}]\n\
         users: [{name: u, user: {}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n",
    )
    .unwrap();
    let args = [BIN, "run", "--log-format", "text", "--http-addr", "127.0.0.1:0"];
    let mut command = if under_pty {
        // util-linux `script` gives the child a terminal; its output (the terminal's) comes on stdout.
        let mut c = Command::new("script");
        c.args(["-qefc", &format!("exec {}", args.join(" ")), "/dev/null"]);
        c
    } else {
        let mut c = Command::new(args[0]);
        c.args(&args[1..]);
        c
    };
    command
        .env("KUBECONFIG", &kubeconfig)
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("NO_COLOR")
        .env_remove("RUST_LOG")
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("spawn (is util-linux `script` installed?)");
    let mut stream: Box<dyn Read + Send> = if under_pty {
        Box::new(child.stdout.take().unwrap())
    } else {
        Box::new(child.stderr.take().unwrap())
    };
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stream.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !String::from_utf8_lossy(&seen).contains("starting baton-operator") {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(chunk) => seen.extend(chunk),
            Err(_) => break,
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let text = String::from_utf8_lossy(&seen).to_string();
    assert!(text.contains("starting baton-operator"), "no log line within 30 s: {text:?}");
    text
}

const ESC: char = '\u{1b}';

#[test]
fn text_logs_have_no_colour_codes_in_a_pipe() {
    assert!(!text_logs(&[], false).contains(ESC));
}

#[test]
fn text_logs_are_coloured_on_a_terminal_unless_no_color() {
    assert!(text_logs(&[], true).contains(ESC), "a terminal gets colour");
    assert!(!text_logs(&[("NO_COLOR", "1")], true).contains(ESC), "NO_COLOR is honoured");
}

const PLUGIN: &str = env!("CARGO_BIN_EXE_kubectl-baton");

/// The Segment guide's manifests, as published: the label `baton: true` is a boolean, which the API
/// server refuses; the Secret's values are stand-ins that must never be printed.
const VENDOR_SEGMENT: &str = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: baton-segment-secrets\ntype: Opaque\nstringData:\n  BATON_CLIENT_ID: VENDOR-CLIENT-ID\n  BATON_CLIENT_SECRET: VENDOR-CLIENT-SECRET\n  BATON_TOKEN: VENDOR-SEGMENT-TOKEN\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: baton-segment\n  labels:\n    app: baton-segment\nspec:\n  selector:\n    matchLabels:\n      app: baton-segment\n  template:\n    metadata:\n      labels:\n        app: baton-segment\n        baton: true\n        baton-app: segment\n    spec:\n      containers:\n      - name: baton-segment\n        image: ghcr.io/conductorone/baton-segment:latest\n        imagePullPolicy: IfNotPresent\n        envFrom:\n        - secretRef:\n            name: baton-segment-secrets\n";

/// Runs `program args` with `stdin` as its input; waits with a deadline.
fn piped(program: &str, args: &[&str], stdin: &str) -> Output {
    use std::io::Write as _;
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env("KUBECONFIG", "/nonexistent/kubeconfig")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        assert!(started.elapsed() < Duration::from_secs(30), "{program} {args:?} still running");
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

/// `kubectl baton import -f` on the vendor's files needs no cluster, prints no Secret value, and
/// prints what `baton-operator render` turns into the Deployment reading the same Secret.
#[test]
fn import_of_the_vendors_manifests_renders_without_a_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("baton-segment.yaml");
    std::fs::write(&file, VENDOR_SEGMENT).unwrap();
    let out = piped(PLUGIN, &["import", "-f", file.to_str().unwrap(), "-n", "conductorone"], "");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "exit {:?}: {stderr}", out.status);
    assert!(
        stdout.contains("kind: BatonConnector") && stdout.contains("namespace: conductorone"),
        "{stdout}"
    );
    assert!(stderr.contains("warning: Deployment: labels.baton is not a string"), "{stderr}");
    assert!(
        !format!("{stdout}{stderr}").contains("VENDOR-"),
        "a Secret value was printed:\n{stdout}\n{stderr}"
    );

    let secret = VENDOR_SEGMENT.split("---").next().unwrap();
    let rendered =
        piped(BIN, &["render", "-f", "-", "-n", "conductorone"], &format!("{stdout}---\n{secret}"));
    let text = String::from_utf8_lossy(&rendered.stdout);
    assert!(rendered.status.success(), "render: {}", String::from_utf8_lossy(&rendered.stderr));
    assert!(text.contains("kind: Deployment") && text.contains("name: baton-segment-secrets"), "{text}");
    assert!(text.contains("image: ghcr.io/conductorone/baton-segment:latest"), "{text}");

    // A file without a connector Deployment is an error (1), on stderr.
    let out = piped(PLUGIN, &["import", "-f", "-"], "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("error: no connector Deployment"));
}
