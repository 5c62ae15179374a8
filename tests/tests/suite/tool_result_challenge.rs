//! The tool-result challenge (SEP-1489 draft, OpenAI Apps SDK): a tool call refused for want
//! of a token or of scopes answered with a `200` tool result, `isError: true`, whose
//! `_meta["mcp/www_authenticate"]` carries the very challenge the HTTP answer would have; the
//! per-server choice between it, the HTTP challenge and `auto` (by the client's `User-Agent`);
//! and everything that must stay an HTTP answer whatever the choice.

use mcp_guard::ToolCallChallenge;
use mcp_guard::challenge::{self, TOOL_RESULT_META_KEY};
use mcp_guard_tests::server::{LEGACY, STATELESS, stateless_body};
use mcp_guard_tests::{Answer, TestIssuer, TestKey, TestServer, claims};
use serde_json::{Value, json};

/// A token-less (or `authorization`) 2026-07-28 call of `tool` with extra headers.
async fn call(
    server: &TestServer,
    authorization: Option<&str>,
    tool: &str,
    args: Value,
    extra: &[(&str, &str)],
) -> Answer {
    let mut headers = vec![
        ("mcp-protocol-version", STATELESS),
        ("mcp-method", "tools/call"),
        ("mcp-name", tool),
    ];
    if let Some(a) = authorization {
        headers.push(("authorization", a));
    }
    headers.extend_from_slice(extra);
    server
        .post(
            &headers,
            &stateless_body("tools/call", json!({"name": tool, "arguments": args})),
        )
        .await
}

/// Asserts `a` is the tool-result challenge answering request `id`, and returns its one
/// challenge value, checked to be the `WWW-Authenticate` header of the same answer.
#[track_caller]
fn tool_result_challenge(a: &Answer, id: Value) -> challenge::ParsedChallenge {
    assert_eq!(a.status, 200, "{a:?}");
    let v = a.json();
    assert_eq!(v["id"], id, "{v}");
    let result = &v["result"];
    assert_eq!(result["isError"], true, "{v}");
    assert!(
        result["content"][0]["text"]
            .as_str()
            .is_some_and(|t| !t.is_empty()),
        "human-readable content: {v}"
    );
    let values = result["_meta"][TOOL_RESULT_META_KEY]
        .as_array()
        .unwrap_or_else(|| panic!("_meta challenges: {v}"));
    assert_eq!(values.len(), 1, "{v}");
    let value = values[0].as_str().expect("a string");
    assert_eq!(
        a.headers["www-authenticate"].to_str().expect("ascii"),
        value,
        "the header and the result carry the same challenge"
    );
    challenge::parse(value).expect("parsable challenge")
}

#[tokio::test]
async fn a_token_less_call_in_the_anonymous_posture_gets_the_same_challenge_in_a_tool_result() {
    let issuer = TestIssuer::start(vec![TestKey::rsa1().jwk()]).await;
    let http = TestServer::start_with(&issuer, |o| o.allow_anonymous = true).await;
    let result = TestServer::start_with(&issuer, |o| {
        o.allow_anonymous = true;
        o.tool_call_challenge = ToolCallChallenge::ToolResult;
    })
    .await;
    assert_eq!(
        result.running.guard.tool_call_challenge(),
        ToolCallChallenge::ToolResult
    );

    let over_http = call(&http, None, "read_file", json!({"path": "/a"}), &[]).await;
    assert_eq!(over_http.status, 401, "{over_http:?}");
    let expected = over_http.challenge();

    let answer = call(&result, None, "read_file", json!({"path": "/a"}), &[]).await;
    let c = tool_result_challenge(&answer, json!(9));
    assert_eq!(answer.json()["result"]["resultType"], "complete");
    assert_eq!(c.scheme, "Bearer");
    assert_eq!(
        c.param("resource_metadata"),
        Some(result.metadata_url.as_str())
    );
    assert_eq!(c.param("scope"), expected.param("scope"));
    assert_eq!(c.param("error"), None, "no credentials were sent");

    // The legacy wire, in an anonymous session: the same result, answering the body's id.
    let init = result
        .post(
            &[("mcp-protocol-version", LEGACY)],
            &json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{
                "protocolVersion": LEGACY, "capabilities": {},
                "clientInfo": {"name": "chatgpt-like", "version": "0"}}})
            .to_string(),
        )
        .await;
    assert_eq!(init.status, 200, "{init:?}");
    let sid = init.headers["mcp-session-id"].to_str().expect("ascii");
    let body = json!({"jsonrpc":"2.0","id":"call-1","method":"tools/call",
        "params":{"name":"write_file","arguments":{"path":"/x","content":"y"}}});
    let legacy = result
        .post(
            &[("mcp-protocol-version", LEGACY), ("mcp-session-id", sid)],
            &body.to_string(),
        )
        .await;
    let c = tool_result_challenge(&legacy, json!("call-1"));
    assert_eq!(c.param("scope"), Some("files:read"), "the baseline");
    assert!(
        legacy.json()["result"].get("resultType").is_none(),
        "2025-11-25 results have no resultType"
    );
    assert!(
        result.store.lock().expect("store").is_empty(),
        "nothing ran"
    );

    // Public tools are not refused at all.
    let about = call(&result, None, "about", json!({}), &[]).await;
    assert_eq!(about.status, 200);
    assert_ne!(about.json()["result"]["isError"], true, "{about:?}");
    http.stop().await;
    result.stop().await;
}

#[tokio::test]
async fn insufficient_scope_gets_the_step_up_challenge_in_a_tool_result() {
    let key = TestKey::rsa1();
    let issuer = TestIssuer::start(vec![key.jwk()]).await;
    let server = TestServer::start_with(&issuer, |o| {
        o.tool_call_challenge = ToolCallChallenge::ToolResult;
    })
    .await;
    let reader = format!(
        "Bearer {}",
        key.sign(&claims(&issuer.issuer, &server.mcp_url, "files:read"))
    );
    let write = call(
        &server,
        Some(&reader),
        "write_file",
        json!({"path": "/shared/x", "content": "y"}),
        &[],
    )
    .await;
    let c = tool_result_challenge(&write, json!(9));
    assert_eq!(c.param("error"), Some("insufficient_scope"));
    let scope = c.param("scope").expect("scope").to_owned();
    for s in ["files:write", "files:shared"] {
        assert!(
            scope.split(' ').any(|x| x == s),
            "the argument-dependent set: {scope}"
        );
    }
    assert!(
        server.store.lock().expect("store").is_empty(),
        "nothing ran"
    );

    // The same token is enough for what it holds.
    let read = call(&server, Some(&reader), "list_files", json!({}), &[]).await;
    assert_eq!(read.status, 200, "{read:?}");
    assert_ne!(read.json()["result"]["isError"], true, "{read:?}");
    server.stop().await;
}

#[tokio::test]
async fn auto_answers_chatgpt_with_the_tool_result_and_every_other_client_over_http() {
    let issuer = TestIssuer::start(vec![TestKey::rsa1().jwk()]).await;
    let server = TestServer::start_with(&issuer, |o| {
        o.allow_anonymous = true;
        o.tool_call_challenge = ToolCallChallenge::Auto;
    })
    .await;
    for ua in ["openai-mcp/1.0.0", "OpenAI-MCP/2", "openai-mcp"] {
        let a = call(
            &server,
            None,
            "read_file",
            json!({"path": "/a"}),
            &[("user-agent", ua)],
        )
        .await;
        tool_result_challenge(&a, json!(9));
    }
    for ua in [
        "Claude-User",
        "node",
        "python-httpx/0.28.1",
        "not-openai-mcp/1.0",
        "openai-mcpx/1",
        "Mozilla/5.0 openai-mcp/1.0",
    ] {
        let a = call(
            &server,
            None,
            "read_file",
            json!({"path": "/a"}),
            &[("user-agent", ua)],
        )
        .await;
        assert_eq!(a.status, 401, "{ua}: {a:?}");
        assert_eq!(a.challenge().param("scope"), Some("files:read"), "{ua}");
    }
    server.stop().await;
}

#[tokio::test]
async fn auto_recognises_the_configured_clients_instead_of_the_default() {
    let issuer = TestIssuer::start(vec![TestKey::rsa1().jwk()]).await;
    let server = TestServer::start_configured(&issuer, |b| {
        b.anonymous(true)
            .tool_call_challenge(ToolCallChallenge::Auto)
            .tool_result_clients(["acme-agent"])
    })
    .await;
    let acme = call(
        &server,
        None,
        "read_file",
        json!({"path": "/a"}),
        &[("user-agent", "acme-agent/3.1 (linux)")],
    )
    .await;
    tool_result_challenge(&acme, json!(9));
    let chatgpt = call(
        &server,
        None,
        "read_file",
        json!({"path": "/a"}),
        &[("user-agent", "openai-mcp/1.0.0")],
    )
    .await;
    assert_eq!(chatgpt.status, 401, "the list replaces the default");
    server.stop().await;
}

#[tokio::test]
async fn every_other_refusal_keeps_its_http_answer_under_the_tool_result_form() {
    let key = TestKey::rsa1();
    let issuer = TestIssuer::start(vec![key.jwk()]).await;
    let server = TestServer::start_with(&issuer, |o| {
        o.tool_call_challenge = ToolCallChallenge::ToolResult;
    })
    .await;

    // The sign-in posture challenges a token-less request before reading it: over HTTP.
    let none = call(&server, None, "read_file", json!({"path": "/a"}), &[]).await;
    assert_eq!(none.status, 401, "{none:?}");
    assert!(none.challenge().param("resource_metadata").is_some());

    // A token that fails verification, a malformed header: HTTP, whatever the operation.
    let expired = {
        let mut c = claims(&issuer.issuer, &server.mcp_url, "files:read");
        c["exp"] = json!(1_000_000);
        format!("Bearer {}", key.sign(&c))
    };
    let a = call(
        &server,
        Some(&expired),
        "read_file",
        json!({"path": "/a"}),
        &[],
    )
    .await;
    assert_eq!(a.status, 401, "{a:?}");
    assert_eq!(a.challenge().param("error"), Some("invalid_token"));
    let a = call(&server, Some("Bearer a b"), "read_file", json!({}), &[]).await;
    assert_eq!(a.status, 400, "{a:?}");

    // A prompt refused for scope: the HTTP step-up (tool results answer tool calls only).
    let scopeless = format!(
        "Bearer {}",
        key.sign(&claims(&issuer.issuer, &server.mcp_url, "profile"))
    );
    let prompt = server
        .post(
            &[
                ("authorization", &scopeless),
                ("mcp-protocol-version", STATELESS),
                ("mcp-method", "prompts/get"),
                ("mcp-name", "review_file"),
            ],
            &stateless_body(
                "prompts/get",
                json!({"name": "review_file", "arguments": {"path": "/a"}}),
            ),
        )
        .await;
    assert_eq!(prompt.status, 403, "{prompt:?}");
    assert_eq!(
        prompt.challenge().param("error"),
        Some("insufficient_scope")
    );

    // A hidden tool stays concealed: "not found", no challenge naming its scope.
    let hidden = call(&server, Some(&scopeless), "reset_store", json!({}), &[]).await;
    assert_eq!(hidden.status, 200, "{hidden:?}");
    assert!(
        hidden.headers.get("www-authenticate").is_none(),
        "{hidden:?}"
    );
    assert!(!hidden.body.contains("files:admin"), "{}", hidden.body);

    // A batch answers several requests: the HTTP challenge.
    let batch = json!([
        {"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"write_file","arguments":{"path":"/x","content":"y"}}},
        {"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"list_files","arguments":{}}},
    ]);
    let reader = format!(
        "Bearer {}",
        key.sign(&claims(&issuer.issuer, &server.mcp_url, "files:read"))
    );
    let a = server
        .post(
            &[
                ("authorization", &reader),
                ("mcp-protocol-version", "2025-03-26"),
            ],
            &batch.to_string(),
        )
        .await;
    assert_eq!(a.status, 403, "{a:?}");
    assert!(
        server.store.lock().expect("store").is_empty(),
        "nothing ran"
    );
    server.stop().await;
}

#[test]
fn the_form_is_named_as_the_flags_spell_it() {
    for (name, form) in [
        ("http", ToolCallChallenge::Http),
        ("tool_result", ToolCallChallenge::ToolResult),
        ("tool-result", ToolCallChallenge::ToolResult),
        ("auto", ToolCallChallenge::Auto),
    ] {
        assert_eq!(name.parse::<ToolCallChallenge>(), Ok(form));
    }
    let err = "HTTP"
        .parse::<ToolCallChallenge>()
        .expect_err("case matters");
    assert!(err.to_string().contains("expected `http`"), "{err}");
    assert_eq!(ToolCallChallenge::Auto.to_string(), "auto");
}
