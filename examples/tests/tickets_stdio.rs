//! The `tickets` binary over stdio: a real process, the real rmcp client on its stdin and
//! stdout, a token from the environment verified at start-up against an issuer discovered
//! over HTTP (the development server, on loopback).

use std::process::Stdio;
use std::time::Duration;

use mcp_guard::dev::{DevAuthServer, RunningDevAuthServer};
use rmcp::ServiceExt as _;
use rmcp::model::CallToolRequestParams;
use serde_json::json;
use tokio::process::{Child, Command};

const BIN: &str = env!("CARGO_BIN_EXE_tickets");
const RESOURCE: &str = "https://tickets.example.com/mcp";
/// Bound on every wait for the child.
const WAIT: Duration = Duration::from_secs(30);

async fn issuer() -> RunningDevAuthServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1");
    DevAuthServer::builder()
        .start(listener)
        .await
        .expect("the issuer starts")
}

/// `tickets --stdio` trusting `issuer`, with `token` (if any) in `MCP_GUARD_TOKEN`.
fn tickets(issuer: &str, token: Option<&str>) -> Child {
    let mut cmd = Command::new(BIN);
    cmd.args(["--stdio", "--issuer", issuer, "--resource", RESOURCE])
        .env_remove("MCP_GUARD_TOKEN")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(token) = token {
        cmd.env("MCP_GUARD_TOKEN", token);
    }
    cmd.spawn().expect("tickets runs")
}

/// Waits (bounded) for a child that must refuse to start; returns its stderr.
async fn refused_start(child: Child) -> String {
    let out = tokio::time::timeout(WAIT, child.wait_with_output())
        .await
        .expect("the child ends")
        .expect("output");
    assert!(!out.status.success(), "started: {out:?}");
    assert!(out.stdout.is_empty(), "wrote to stdout: {out:?}");
    String::from_utf8(out.stderr).expect("UTF-8")
}

#[tokio::test]
async fn a_verified_caller_is_served_over_stdio() {
    let dev = issuer().await;
    let token = dev
        .token()
        .subject("alice")
        .scope("tickets:write")
        .audience(RESOURCE)
        .sign();
    let mut child = tickets(dev.issuer(), Some(&token));
    let stdin = child.stdin.take().expect("stdin");
    let stdout = child.stdout.take().expect("stdout");
    let client = tokio::time::timeout(WAIT, ().serve((stdout, stdin)))
        .await
        .expect("the server answers")
        .expect("the client connects");
    let opened = client
        .call_tool(
            CallToolRequestParams::new("open_ticket")
                .with_arguments(json!({"title": "over stdio"}).as_object().unwrap().clone()),
        )
        .await
        .expect("tickets:write opens a ticket");
    assert_eq!(opened.content[0].as_text().unwrap().text, "opened #1");
    let refused = client
        .call_tool(CallToolRequestParams::new("purge"))
        .await
        .expect_err("purge needs tickets:admin");
    match refused {
        rmcp::ServiceError::McpError(e) => assert_eq!(e.code.0, mcp_guard::rmcp::FORBIDDEN),
        other => panic!("expected a JSON-RPC error, got {other:?}"),
    }
    client.cancel().await.expect("the client closes");
    let status = tokio::time::timeout(WAIT, child.wait())
        .await
        .expect("the server ends with its input")
        .expect("status");
    assert!(status.success(), "{status}");
}

#[tokio::test]
async fn an_invalid_token_refuses_start_up_without_echoing_it() {
    let dev = issuer().await;
    let token = dev
        .token()
        .subject("alice")
        .scope("tickets:write")
        .audience("https://elsewhere.example.com/mcp")
        .sign();
    let stderr = refused_start(tickets(dev.issuer(), Some(&token))).await;
    assert!(
        stderr.contains("the access token in `MCP_GUARD_TOKEN` was refused"),
        "{stderr}"
    );
    for piece in token.split('.') {
        assert!(!stderr.contains(piece), "stderr echoes the token: {stderr}");
    }
}

#[tokio::test]
async fn no_token_refuses_start_up() {
    let dev = issuer().await;
    let stderr = refused_start(tickets(dev.issuer(), None)).await;
    assert!(
        stderr.contains("no access token: set `MCP_GUARD_TOKEN`"),
        "{stderr}"
    );
}
