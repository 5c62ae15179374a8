//! The `files` binary: every option documented, one ready line with the MCP URL, a clean
//! exit on SIGTERM.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_files");

#[test]
fn help_documents_every_option_and_its_environment_variable() {
    let out = Command::new(BIN).arg("--help").output().expect("runs");
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for (flag, env) in [
        ("--issuer", "MCP_GUARD_ISSUER"),
        ("--resource", "MCP_GUARD_RESOURCE"),
        ("--listen", "MCP_GUARD_LISTEN"),
        ("--jwks-uri", "MCP_GUARD_JWKS_URI"),
        ("--audience", "MCP_GUARD_AUDIENCES"),
        ("--lenient-typ", "MCP_GUARD_LENIENT_TYP"),
        ("--leeway-secs", "MCP_GUARD_LEEWAY_SECS"),
        ("--key-cooldown-secs", "MCP_GUARD_KEY_COOLDOWN_SECS"),
        ("--allowed-origin", "MCP_GUARD_ALLOWED_ORIGINS"),
        ("--stateless", "MCP_GUARD_STATELESS"),
        ("--resource-name", "MCP_GUARD_RESOURCE_NAME"),
        ("--profile", "MCP_GUARD_PROFILE"),
        ("--tenant", "MCP_GUARD_TENANTS"),
        ("--client-id", "MCP_GUARD_CLIENT_IDS"),
        ("--scope-prefix", "MCP_GUARD_SCOPE_PREFIX"),
        (
            "--introspection-endpoint",
            "MCP_GUARD_INTROSPECTION_ENDPOINT",
        ),
        (
            "--introspection-client-id",
            "MCP_GUARD_INTROSPECTION_CLIENT_ID",
        ),
        (
            "--introspection-client-secret",
            "MCP_GUARD_INTROSPECTION_CLIENT_SECRET",
        ),
        ("--introspection-auth", "MCP_GUARD_INTROSPECTION_AUTH"),
        ("--introspection-issuer", "MCP_GUARD_INTROSPECTION_ISSUER"),
        ("--metrics-listen", "MCP_GUARD_METRICS_LISTEN"),
    ] {
        assert!(help.contains(flag), "{flag} missing from --help");
        assert!(help.contains(env), "{env} missing from --help");
    }
}

#[test]
fn refuses_an_insecure_public_resource_url() {
    let out = Command::new(BIN)
        .args([
            "--issuer",
            "https://as.example.com",
            "--resource",
            "http://mcp.example.com/mcp",
            "--listen",
            "127.0.0.1:0",
        ])
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("must use https"), "{err}");
}

#[test]
fn logs_its_url_when_ready_and_exits_cleanly_on_sigterm() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let resource = format!("http://127.0.0.1:{port}/mcp");
    let mut child = Command::new(BIN)
        .env("MCP_GUARD_ISSUER", "http://127.0.0.1:9/")
        .env("MCP_GUARD_RESOURCE", &resource)
        .env("MCP_GUARD_LISTEN", format!("127.0.0.1:{port}"))
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let ready = loop {
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(line) if line.contains("server ready") => break line,
            Ok(_) => continue,
            Err(e) => {
                let _ = child.kill();
                panic!("no ready line: {e}");
            }
        }
    };
    assert!(ready.contains(&format!("MCP URL {resource}")), "{ready}");

    // It answers: a protected tool called without a token gets the 401 challenge.
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"/x"}}}"#;
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connects");
    conn.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        conn,
        "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    let _ = conn.read_to_string(&mut response);
    assert!(response.starts_with("HTTP/1.1 401"), "{response}");
    assert!(
        response
            .to_ascii_lowercase()
            .contains("www-authenticate: bearer "),
        "{response}"
    );

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let mut waited = 0;
    let exit = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        waited += 1;
        if waited > 300 {
            let _ = child.kill();
            panic!("did not exit after SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(exit.success(), "{exit:?}");

    // The log, written by its own thread, is complete at exit: the refusal's audit line (at
    // the default filter) and the last line before `main` returns.
    let rest: Vec<String> = std::iter::from_fn(|| rx.recv_timeout(Duration::from_secs(10)).ok())
        .take(10_000)
        .collect();
    assert!(
        rest.iter()
            .any(|l| l.contains("mcp_guard::audit") && l.contains(r#"reason="missing_token""#)),
        "{rest:#?}"
    );
    assert!(
        rest.last()
            .is_some_and(|l| l.contains("stopped: every connection closed")),
        "{rest:#?}"
    );
}

/// `--print-manifest` with the flags given: no network, no listening (the port is taken), the
/// resource and authorization servers filled in.
#[test]
fn prints_the_manifest_with_the_configured_resource_without_listening() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let out = Command::new(BIN)
        .args([
            "--print-manifest",
            "--issuer",
            "https://as.example.com",
            "--resource",
            "https://mcp.example.com/mcp",
            "--listen",
            &taken.local_addr().unwrap().to_string(),
        ])
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let manifest: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(manifest["resource"], "https://mcp.example.com/mcp");
    assert_eq!(
        manifest["authorization_servers"],
        serde_json::json!(["https://as.example.com"])
    );
    assert!(manifest["tools"].as_array().is_some_and(|t| !t.is_empty()));
}

/// Without `--resource` (and without any other flag) the manifest is still printed.
#[test]
fn prints_the_manifest_without_a_resource() {
    let out = Command::new(BIN)
        .arg("--print-manifest")
        .env_remove("MCP_GUARD_RESOURCE")
        .env_remove("MCP_GUARD_ISSUER")
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let manifest: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert!(manifest["resource"].is_null());
    assert!(manifest["scopes"].as_array().is_some_and(|s| !s.is_empty()));
}

/// `--print-manifest | head -1`: a reader that closed the pipe is not an error, nor a panic.
#[test]
fn prints_the_manifest_to_a_closed_pipe_and_exits_0() {
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let out = Command::new(BIN)
        .arg("--print-manifest")
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}: {err}", out.status);
    assert!(!err.contains("panicked"), "{err}");
}

/// Configuration errors read as a message and its causes, not as Rust debug output.
#[test]
fn reports_errors_as_messages_and_exits_1() {
    for (args, expected) in [
        (
            [
                "--issuer",
                "http://as.example.com",
                "--resource",
                "https://mcp.example.com/mcp",
            ],
            "error: refusing to fetch `http://as.example.com/`: https is required except for loopback addresses",
        ),
        (
            [
                "--issuer",
                "https://as.example.com",
                "--resource",
                "https://mcp.example.com/mcp/",
            ],
            "error: invalid resource URL: the resource URL `https://mcp.example.com/mcp/` ends with `/`: write it as `https://mcp.example.com/mcp` (clients and tokens use exactly this URL)",
        ),
    ] {
        let out = Command::new(BIN)
            .args(args)
            .args(["--listen", "127.0.0.1:0", "--startup-check", "off"])
            .output()
            .expect("runs");
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim_end(), expected);
    }
}

/// `--startup-check fail` exits 1 naming the issuer whose keys could not be loaded (nothing
/// listens on port 9 of loopback).
#[test]
fn the_failing_start_up_check_names_the_unreachable_issuer() {
    let out = Command::new(BIN)
        .args([
            "--issuer",
            "http://127.0.0.1:9",
            "--resource",
            "http://127.0.0.1:8080/mcp",
            "--listen",
            "127.0.0.1:0",
            "--startup-check",
            "fail",
        ])
        .env("RUST_LOG", "off")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("error: the keys of issuer `http://127.0.0.1:9` could not be loaded: "),
        "{err}"
    );
}
