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
            Ok(line) if line.contains("ready") => break line,
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
}
