//! The quickstart and the Rust client example: the spec's whole journey against the quickstart
//! server, and the quickstart's printed `curl` lines.

use std::time::Duration;

use mcp_guard_examples::quickstart::{self, QuickstartOptions};
use serde_json::Value;

async fn start(auto_approve: bool) -> quickstart::Quickstart {
    let mcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let auth = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut options = QuickstartOptions::new(mcp.local_addr().unwrap(), auth.local_addr().unwrap());
    options.auto_approve = auto_approve;
    quickstart::start(&options, mcp, auth)
        .await
        .expect("quickstart starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rust_client_signs_in_meets_the_403_steps_up_and_retries() {
    let qs = start(true).await;
    let transcript = mcp_guard_examples::client::run(&qs.mcp_url, Duration::from_secs(5))
        .await
        .expect("the journey completes");
    let lines = transcript.lines;
    assert_eq!(lines.len(), 7, "{lines:#?}");
    assert!(
        lines[0].starts_with("1. 401 without a token: Bearer "),
        "{}",
        lines[0]
    );
    assert!(lines[0].contains(r#"scope="files:read""#) && lines[0].contains("resource_metadata="));
    assert!(
        lines[1].contains("registered as client dev-"),
        "{}",
        lines[1]
    );
    assert_eq!(
        lines[2],
        "3. authorized with PKCE; granted scopes: files:read"
    );
    let who: Value = serde_json::from_str(lines[3].trim_start_matches("4. whoami: ")).unwrap();
    assert_eq!(who["sub"], "dev-user");
    assert_eq!(who["scopes"], serde_json::json!(["files:read"]));
    assert_eq!(
        lines[4],
        r#"5. write_file refused with 403 insufficient_scope: needs scope "files:read files:write""#
    );
    assert_eq!(
        lines[5],
        "6. stepped up; granted scopes: files:read files:write"
    );
    assert_eq!(
        lines[6],
        "7. write_file retried: dev-user wrote 26 bytes to /notes/hello.txt"
    );
    assert_eq!(
        qs.store
            .lock()
            .unwrap()
            .get("/notes/hello.txt")
            .map(String::as_str),
        Some("hello from the Rust client")
    );
    qs.stop().await.unwrap();
}

/// Runs one of the printed `curl` commands' requests with reqwest: the same URL, headers and
/// body.
async fn curl_equivalent(url: &str, token: Option<&str>) -> reqwest::Response {
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami","arguments":{},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}"#;
    let mut req = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", "whoami")
        .body(body);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn the_printed_instructions_work() {
    let qs = start(false).await;
    let text = qs.instructions();
    assert!(text.contains(&format!("MCP server (protected resource):  {}", qs.mcp_url)));
    assert!(text.contains(qs.auth.issuer()));
    assert!(
        text.contains("VS Code") && text.contains("MCP Inspector") && text.contains("--bin client")
    );
    // The curl lines carry exactly the body the test sends.
    assert!(text.contains(r#""method":"tools/call","params":{"name":"whoami""#));

    let anonymous = curl_equivalent(&qs.mcp_url, None).await;
    assert_eq!(anonymous.status(), 401);
    let challenge = anonymous.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(challenge.starts_with("Bearer ") && challenge.contains("resource_metadata="));

    let token = text
        .split("authorization: Bearer ")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .expect("the instructions print a token");
    let with_token = curl_equivalent(&qs.mcp_url, Some(token)).await;
    assert_eq!(with_token.status(), 200);
    let body = with_token.text().await.unwrap();
    assert!(body.contains(r#"\"sub\":\"quickstart-user\""#), "{body}");
    qs.stop().await.unwrap();
}
