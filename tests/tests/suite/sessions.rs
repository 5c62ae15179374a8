//! The allowed path through the real rmcp client, legacy sessions bound to their subject,
//! and 2026-07-28 stateless requests classified from validated headers.

use mcp_guard_tests::server::{LEGACY, stateless_body};
use mcp_guard_tests::{TestIssuer, TestKey, TestServer, claims};
use rmcp::ServiceExt as _;
use rmcp::model::CallToolRequestParams;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::{Value, json};

async fn setup() -> (TestIssuer, TestServer, TestKey) {
    let key = TestKey::rsa1();
    let issuer = TestIssuer::start(vec![key.jwk()]).await;
    let server = TestServer::start(&issuer).await;
    (issuer, server, key)
}

fn token_for(
    issuer: &TestIssuer,
    server: &TestServer,
    key: &TestKey,
    sub: &str,
    scope: &str,
) -> String {
    let mut c = claims(&issuer.issuer, &server.mcp_url, scope);
    c["sub"] = json!(sub);
    key.sign(&c)
}

#[tokio::test]
async fn rmcp_client_lists_and_calls_tools_with_a_valid_token() {
    let (issuer, server, key) = setup().await;
    let token = token_for(&issuer, &server, &key, "alice", "files:read files:write");
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(server.mcp_url.clone()).auth_header(token),
    );
    let client = ().serve(transport).await.expect("client connects");
    let tools = client.list_all_tools().await.expect("tools/list");
    let mut names: Vec<_> = tools.iter().map(|t| t.name.to_string()).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "about",
            "echo",
            "list_files",
            "read_file",
            "whoami",
            "write_file"
        ],
        "reset_store is hidden from a caller without files:admin"
    );

    let who = client
        .call_tool(CallToolRequestParams::new("whoami"))
        .await
        .expect("whoami");
    let text = who.content[0].as_text().expect("text").text.clone();
    let who: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(who["sub"], "alice");
    assert_eq!(who["client_id"], "test-client");
    assert_eq!(who["scopes"], json!(["files:read", "files:write"]));

    let args = json!({"path": "/notes", "content": "hi"})
        .as_object()
        .unwrap()
        .clone();
    let wrote = client
        .call_tool(CallToolRequestParams::new("write_file").with_arguments(args))
        .await
        .expect("write_file");
    assert_eq!(
        wrote.content[0].as_text().unwrap().text,
        "alice wrote 2 bytes to /notes"
    );
    assert_eq!(
        server
            .store
            .lock()
            .unwrap()
            .get("/notes")
            .map(String::as_str),
        Some("hi")
    );

    // files:admin is missing: the 403 reaches the client as an error and nothing runs.
    let refused = client
        .call_tool(CallToolRequestParams::new("reset_store"))
        .await;
    assert!(refused.is_err(), "{refused:?}");
    assert_eq!(server.store.lock().unwrap().len(), 1);
    client.cancel().await.expect("client closes");
}

#[tokio::test]
async fn a_session_is_bound_to_the_subject_that_opened_it() {
    let (issuer, server, key) = setup().await;
    let alice = token_for(&issuer, &server, &key, "alice", "files:read files:write");
    let bob = token_for(&issuer, &server, &key, "bob", "files:read files:write");
    let sid = server.open_session(&alice).await;

    let a = server
        .call_in_session(
            &alice,
            &sid,
            "write_file",
            json!({"path": "/a", "content": "x"}),
        )
        .await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.tool_text(), "alice wrote 1 bytes to /a");

    // Another subject's valid token on alice's session: refused, nothing runs.
    let b = server
        .call_in_session(
            &bob,
            &sid,
            "write_file",
            json!({"path": "/b", "content": "x"}),
        )
        .await;
    assert_eq!(b.status, 404, "{b:?}");
    assert!(!server.store.lock().unwrap().contains_key("/b"));

    // A session id without a token is not authentication: neither a protected call nor even
    // an anonymous list can use alice's session; the answer is the sign-in challenge.
    let call = json!({"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"whoami","arguments":{}}}).to_string();
    let n = server
        .post(
            &[("mcp-protocol-version", LEGACY), ("mcp-session-id", &sid)],
            &call,
        )
        .await;
    assert_eq!(n.status, 401);
    assert_eq!(n.challenge().count("error"), 0);
    let list = json!({"jsonrpc":"2.0","id":4,"method":"tools/list"}).to_string();
    let n = server
        .post(
            &[("mcp-protocol-version", LEGACY), ("mcp-session-id", &sid)],
            &list,
        )
        .await;
    assert_eq!(n.status, 401);
    assert_eq!(n.challenge().count("error"), 0);

    // An unknown session id is refused before rmcp.
    let u = server
        .call_in_session(&alice, "not-a-session", "whoami", json!({}))
        .await;
    assert_eq!(u.status, 404);
}

#[tokio::test]
async fn an_anonymous_session_belongs_to_the_first_caller_who_signs_in() {
    let key = TestKey::rsa1();
    let issuer = TestIssuer::start(vec![key.jwk()]).await;
    let server = TestServer::start_with(&issuer, |o| o.allow_anonymous = true).await;
    let init = json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{
        "protocolVersion": LEGACY, "capabilities": {},
        "clientInfo": {"name": "anonymous-first", "version": "0"}}});
    let a = server
        .post(&[("mcp-protocol-version", LEGACY)], &init.to_string())
        .await;
    assert_eq!(
        a.status, 200,
        "the anonymous posture lets clients connect first: {a:?}"
    );
    let sid = a.headers["mcp-session-id"].to_str().unwrap().to_owned();
    let note = json!({"jsonrpc":"2.0","method":"notifications/initialized"}).to_string();
    let n = server
        .post(
            &[("mcp-protocol-version", LEGACY), ("mcp-session-id", &sid)],
            &note,
        )
        .await;
    assert_eq!(n.status, 202);

    let alice = token_for(&issuer, &server, &key, "alice", "files:read");
    let bob = token_for(&issuer, &server, &key, "bob", "files:read");
    let who = server
        .call_in_session(&alice, &sid, "whoami", json!({}))
        .await;
    assert_eq!(who.status, 200, "{who:?}");
    assert!(who.tool_text().contains(r#""sub":"alice""#));
    // Now alice's: neither bob nor an anonymous caller may use it.
    assert_eq!(
        server
            .call_in_session(&bob, &sid, "whoami", json!({}))
            .await
            .status,
        404
    );
    let list = json!({"jsonrpc":"2.0","id":4,"method":"tools/list"}).to_string();
    let anon = server
        .post(
            &[("mcp-protocol-version", LEGACY), ("mcp-session-id", &sid)],
            &list,
        )
        .await;
    assert_eq!(anon.status, 401);
}

#[tokio::test]
async fn a_closed_session_cannot_be_reused() {
    let (issuer, server, key) = setup().await;
    let alice = token_for(&issuer, &server, &key, "alice", "files:read");
    let sid = server.open_session(&alice).await;
    let resp = server
        .http
        .delete(&server.mcp_url)
        .header("authorization", format!("Bearer {alice}"))
        .header("mcp-session-id", &sid)
        .header("mcp-protocol-version", LEGACY)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{:?}", resp.status());
    let a = server
        .call_in_session(&alice, &sid, "whoami", json!({}))
        .await;
    assert_eq!(a.status, 404);
}

#[tokio::test]
async fn every_request_in_a_session_is_authenticated_again() {
    let (issuer, server, key) = setup().await;
    let alice = token_for(&issuer, &server, &key, "alice", "files:read");
    let sid = server.open_session(&alice).await;
    let mut expired = claims(&issuer.issuer, &server.mcp_url, "files:read");
    expired["exp"] = json!(mcp_guard_tests::now() - 600);
    let a = server
        .call_in_session(&key.sign(&expired), &sid, "whoami", json!({}))
        .await;
    assert_eq!(a.status, 401);
    assert_eq!(a.challenge().param("error"), Some("invalid_token"));
    // And a narrower token in the same session gets the 403, not the opener's rights.
    let writer = token_for(&issuer, &server, &key, "alice", "files:read files:write");
    let sid2 = server.open_session(&writer).await;
    let a = server
        .call_in_session(
            &alice,
            &sid2,
            "write_file",
            json!({"path": "/x", "content": "x"}),
        )
        .await;
    assert_eq!(a.status, 403);
}

#[tokio::test]
async fn stateless_requests_are_decided_from_validated_headers() {
    let (issuer, server, key) = setup().await;
    let reader = format!(
        "Bearer {}",
        token_for(&issuer, &server, &key, "alice", "files:read")
    );

    let a = server
        .call_stateless(
            Some(&reader),
            "write_file",
            "write_file",
            json!({"path": "/s", "content": "x"}),
        )
        .await;
    assert_eq!(a.status, 403);
    assert_eq!(a.challenge().param("scope"), Some("files:read files:write"));

    // Headers that disagree with the body: rmcp refuses with HeaderMismatch, nothing runs.
    let a = server
        .call_stateless(
            Some(&reader),
            "write_file",
            "read_file",
            json!({"path": "/s", "content": "x"}),
        )
        .await;
    assert_eq!(a.status, 400, "{a:?}");
    assert_eq!(a.json()["error"]["code"], -32020);
    assert!(server.store.lock().unwrap().is_empty());

    let a = server
        .call_stateless(
            Some(&reader),
            "read_file",
            "read_file",
            json!({"path": "/none"}),
        )
        .await;
    assert_eq!(a.status, 200);
    assert_eq!(a.tool_text(), "no such file: /none");
}

#[tokio::test]
async fn stateless_tools_list_needs_only_authentication() {
    let (issuer, server, key) = setup().await;
    let nobody = format!("Bearer {}", token_for(&issuer, &server, &key, "carol", ""));
    let a = server.list_with(&nobody).await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(
        a.json()["result"]["tools"].as_array().map(Vec::len),
        Some(6)
    );
    let body = stateless_body(
        "tools/call",
        json!({"name": "echo", "arguments": {"text": "hi"}}),
    );
    let a = server
        .post(
            &[
                ("authorization", &nobody),
                ("mcp-protocol-version", "2026-07-28"),
                ("mcp-method", "tools/call"),
                ("mcp-name", "echo"),
            ],
            &body,
        )
        .await;
    assert_eq!(a.tool_text(), "hi");
}

#[tokio::test]
async fn a_session_named_with_the_2026_07_28_header_is_still_checked_against_its_subject() {
    use mcp_guard_tests::server::STATELESS;
    let (issuer, server, key) = setup().await;
    let alice = token_for(&issuer, &server, &key, "alice", "files:read files:write");
    let bob = format!(
        "Bearer {}",
        token_for(&issuer, &server, &key, "bob", "files:read files:write")
    );
    let sid = server.open_session(&alice).await;
    let init = json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{
        "protocolVersion": LEGACY, "capabilities": {},
        "clientInfo": {"name": "intruder", "version": "0"}}})
    .to_string();
    for version in [STATELESS, LEGACY] {
        // POST without a token, and with another subject's token, in both wire formats.
        let anonymous = server
            .post(
                &[
                    ("mcp-protocol-version", version),
                    ("mcp-method", "initialize"),
                    ("mcp-session-id", &sid),
                ],
                &init,
            )
            .await;
        assert_eq!(anonymous.status, 401, "{version}: {anonymous:?}");
        let other = server
            .post(
                &[
                    ("authorization", &bob),
                    ("mcp-protocol-version", version),
                    ("mcp-method", "initialize"),
                    ("mcp-session-id", &sid),
                ],
                &init,
            )
            .await;
        assert_eq!(other.status, 404, "{version}: {other:?}");
        // GET (the SSE stream) and DELETE of alice's session, without and with bob's token.
        for method in [reqwest::Method::GET, reqwest::Method::DELETE] {
            for auth in [None, Some(bob.as_str())] {
                let mut req = server
                    .http
                    .request(method.clone(), &server.mcp_url)
                    .header("accept", "text/event-stream")
                    .header("mcp-protocol-version", version)
                    .header("mcp-session-id", &sid);
                if let Some(a) = auth {
                    req = req.header("authorization", a);
                }
                let status = req.send().await.expect("sent").status().as_u16();
                let expected = if auth.is_none() { 401 } else { 404 };
                assert_eq!(status, expected, "{version} {method} {auth:?}");
            }
        }
    }
    // Alice's session is untouched: still open, still hers.
    let a = server
        .call_in_session(&alice, &sid, "whoami", json!({}))
        .await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(
        serde_json::from_str::<Value>(&a.tool_text()).unwrap()["sub"],
        "alice"
    );
}
