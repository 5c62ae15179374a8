//! The status/challenge matrix (reference spec §1.6) over real HTTP against the example
//! server: 401 without credentials, 400 for malformed credentials, 401 `invalid_token`,
//! 403 `insufficient_scope` before the tool runs, 403 for a foreign `Origin`.

use mcp_guard_tests::server::stateless_body;
use mcp_guard_tests::{TestIssuer, TestKey, TestServer, claims};
use serde_json::json;

async fn setup() -> (TestIssuer, TestServer, TestKey) {
    let key = TestKey::rsa1();
    let issuer = TestIssuer::start(vec![key.jwk()]).await;
    let server = TestServer::start(&issuer).await;
    (issuer, server, key)
}

fn token(issuer: &TestIssuer, server: &TestServer, key: &TestKey, scope: &str) -> String {
    key.sign(&claims(&issuer.issuer, &server.mcp_url, scope))
}

#[tokio::test]
async fn no_credentials_gets_401_with_metadata_and_baseline_scope_and_no_error() {
    let (_issuer, server, _) = setup().await;
    for auth in [None, Some("Basic dXNlcjpwYXNz"), Some("Negotiate abc")] {
        let mut headers = vec![("mcp-protocol-version", "2025-11-25")];
        if let Some(a) = auth {
            headers.push(("authorization", a));
        }
        let a = server
            .post(
                &headers,
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"/x"}}}"#,
            )
            .await;
        assert_eq!(a.status, 401, "{auth:?}");
        let c = a.challenge();
        assert_eq!(c.scheme, "Bearer");
        assert_eq!(
            c.param("resource_metadata"),
            Some(server.metadata_url.as_str())
        );
        assert_eq!(c.param("scope"), Some("files:read"));
        assert_eq!(
            c.count("error"),
            0,
            "no error code without credentials (RFC 6750 section 3.1)"
        );
    }
}

#[tokio::test]
async fn malformed_credentials_get_400_invalid_request() {
    let (_issuer, server, _) = setup().await;
    for auth in [
        "Bearer",
        "Bearer    ",
        "Bearer abc def",
        "Bearer a,b",
        "Bearer a\"b",
        "Bearer ===",
        "Bearer a=b",
    ] {
        let a = server.list_with(auth).await;
        assert_eq!(a.status, 400, "{auth:?}: {a:?}");
        let c = a.challenge();
        assert_eq!(c.param("error"), Some("invalid_request"), "{auth:?}");
        assert_eq!(
            c.param("resource_metadata"),
            Some(server.metadata_url.as_str())
        );
    }
}

#[tokio::test]
async fn two_authorization_headers_get_400() {
    let (issuer, server, key) = setup().await;
    let t = token(&issuer, &server, &key, "files:read");
    let resp = server
        .http
        .post(&server.mcp_url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("authorization", format!("Bearer {t}"))
        .header("authorization", format!("Bearer {t}"))
        .body(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let c =
        mcp_guard::challenge::parse(resp.headers()["www-authenticate"].to_str().unwrap()).unwrap();
    assert_eq!(c.param("error"), Some("invalid_request"));
}

#[tokio::test]
async fn token_in_query_string_is_never_honoured() {
    let (issuer, server, key) = setup().await;
    let t = token(&issuer, &server, &key, "files:read files:write");
    let url = format!("{}?access_token={t}", server.mcp_url);
    let a = server
        .post_to(
            &url,
            &[("mcp-protocol-version", "2025-11-25")],
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
        )
        .await;
    assert_eq!(a.status, 400);
    assert_eq!(a.challenge().param("error"), Some("invalid_request"));
    // Also refused next to a valid header: two methods at once.
    let auth = format!("Bearer {t}");
    let a = server
        .post_to(
            &url,
            &[("authorization", &auth)],
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
        )
        .await;
    assert_eq!(a.status, 400);
}

#[tokio::test]
async fn scheme_is_case_insensitive() {
    let (issuer, server, key) = setup().await;
    let t = token(&issuer, &server, &key, "files:read");
    for scheme in ["bearer", "BEARER", "Bearer"] {
        let a = server.list_with(&format!("{scheme} {t}")).await;
        assert_eq!(a.status, 200, "{scheme}: {a:?}");
    }
}

#[tokio::test]
async fn invalid_token_gets_401_invalid_token_without_echoing_it() {
    let (_issuer, server, _) = setup().await;
    let garbage = "c2VjcmV0LXRva2VuLXZhbHVl";
    let a = server.list_with(&format!("Bearer {garbage}")).await;
    assert_eq!(a.status, 401);
    let c = a.challenge();
    assert_eq!(c.param("error"), Some("invalid_token"));
    assert!(c.param("error_description").is_some());
    assert_eq!(
        c.param("resource_metadata"),
        Some(server.metadata_url.as_str())
    );
    let raw = a.headers["www-authenticate"].to_str().unwrap();
    assert!(
        !raw.contains(garbage) && !a.body.contains(garbage),
        "the token is never echoed"
    );
}

#[tokio::test]
async fn missing_scope_gets_403_before_the_tool_runs() {
    let (issuer, server, key) = setup().await;
    let reader = token(&issuer, &server, &key, "files:read");
    let a = server
        .call(&reader, "write_file", json!({"path": "/a", "content": "x"}))
        .await;
    assert_eq!(a.status, 403, "{a:?}");
    let c = a.challenge();
    assert_eq!(c.param("error"), Some("insufficient_scope"));
    // What the call needs plus the relevant scopes already held.
    assert_eq!(c.param("scope"), Some("files:read files:write"));
    assert_eq!(
        c.param("resource_metadata"),
        Some(server.metadata_url.as_str())
    );
    assert!(
        server.store.lock().unwrap().is_empty(),
        "the tool did not run"
    );

    // The same token calls what it may.
    let a = server
        .call(&reader, "read_file", json!({"path": "/none"}))
        .await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.tool_text(), "no such file: /none");
}

#[tokio::test]
async fn broader_scope_satisfies_narrower_ones() {
    let (issuer, server, key) = setup().await;
    let admin = token(&issuer, &server, &key, "files:admin");
    let a = server
        .call(
            &admin,
            "write_file",
            json!({"path": "/a", "content": "hello"}),
        )
        .await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.tool_text(), "alice wrote 5 bytes to /a");
    let a = server
        .call(&admin, "read_file", json!({"path": "/a"}))
        .await;
    assert_eq!(a.tool_text(), "hello");
    let a = server.call(&admin, "reset_store", json!({})).await;
    assert_eq!(a.tool_text(), "deleted 1 files");
}

#[tokio::test]
async fn scopes_match_exactly_never_by_prefix() {
    let (issuer, server, key) = setup().await;
    let t = token(&issuer, &server, &key, "files:writer files:write:all");
    let a = server
        .call(&t, "write_file", json!({"path": "/a", "content": "x"}))
        .await;
    assert_eq!(a.status, 403);
    assert_eq!(a.challenge().param("scope"), Some("files:write"));
}

#[tokio::test]
async fn challenge_never_contains_offline_access_or_foreign_scopes() {
    let (issuer, server, key) = setup().await;
    let t = token(
        &issuer,
        &server,
        &key,
        "offline_access mail:send files:read",
    );
    let a = server
        .call(&t, "write_file", json!({"path": "/a", "content": "x"}))
        .await;
    assert_eq!(a.status, 403);
    assert_eq!(a.challenge().param("scope"), Some("files:read files:write"));
}

#[tokio::test]
async fn scp_array_claim_is_honoured() {
    let (issuer, server, key) = setup().await;
    let mut c = claims(&issuer.issuer, &server.mcp_url, "");
    c.as_object_mut().unwrap().remove("scope");
    c["scp"] = json!(["files:write"]);
    let a = server
        .call(
            &key.sign(&c),
            "write_file",
            json!({"path": "/s", "content": "x"}),
        )
        .await;
    assert_eq!(a.status, 200, "{a:?}");
}

#[tokio::test]
async fn foreign_origin_gets_403_even_with_a_valid_token() {
    let (issuer, server, key) = setup().await;
    let t = token(&issuer, &server, &key, "files:admin");
    let auth = format!("Bearer {t}");
    let body = stateless_body(
        "tools/call",
        json!({"name":"write_file","arguments":{"path":"/o","content":"x"}}),
    );
    let headers = |origin| {
        vec![
            ("authorization", auth.as_str()),
            ("origin", origin),
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", "tools/call"),
            ("mcp-name", "write_file"),
        ]
    };
    let a = server.post(&headers("https://evil.example"), &body).await;
    assert_eq!(a.status, 403);
    assert!(a.json()["error"].is_object() && a.json()["id"].is_null());
    assert!(server.store.lock().unwrap().is_empty());
    // The server's own origin is allowed.
    let own = server.mcp_url.trim_end_matches("/mcp").to_owned();
    let a = server.post(&headers(&own), &body).await;
    assert_eq!(a.status, 200, "{a:?}");
}

#[tokio::test]
async fn legacy_requests_are_classified_from_the_body_not_the_headers() {
    let (issuer, server, key) = setup().await;
    let reader = format!("Bearer {}", token(&issuer, &server, &key, "files:read"));
    let body = json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"write_file","arguments":{"path":"/h","content":"x"}}}).to_string();
    let a = server
        .post(
            &[
                ("authorization", &reader),
                ("mcp-protocol-version", "2025-11-25"),
                ("mcp-method", "ping"),
                ("mcp-name", "read_file"),
            ],
            &body,
        )
        .await;
    assert_eq!(a.status, 403, "{a:?}");
    assert!(server.store.lock().unwrap().is_empty());
}

#[tokio::test]
async fn ambiguous_bodies_are_refused_before_rmcp() {
    let (issuer, server, key) = setup().await;
    let reader = format!("Bearer {}", token(&issuer, &server, &key, "files:read"));
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file","name":"write_file","arguments":{"path":"/d","content":"x"}}}"#;
    let a = server
        .post(
            &[
                ("authorization", &reader),
                ("mcp-protocol-version", "2025-11-25"),
            ],
            body,
        )
        .await;
    assert_eq!(a.status, 400);
    assert!(server.store.lock().unwrap().is_empty());
}

#[tokio::test]
async fn batches_are_checked_message_by_message() {
    let (issuer, server, key) = setup().await;
    let reader = format!("Bearer {}", token(&issuer, &server, &key, "files:read"));
    let body = json!([
        {"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"/x"}}},
        {"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"write_file","arguments":{"path":"/b","content":"x"}}}
    ]).to_string();
    let a = server
        .post(
            &[
                ("authorization", &reader),
                ("mcp-protocol-version", "2025-03-26"),
            ],
            &body,
        )
        .await;
    assert_eq!(a.status, 403);
    assert!(server.store.lock().unwrap().is_empty());
}

#[tokio::test]
async fn oversized_bodies_get_413() {
    let (issuer, server, key) = setup().await;
    let t = format!("Bearer {}", token(&issuer, &server, &key, "files:read"));
    let big = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{{"pad":"{}"}}}}"#,
        "x".repeat(5 * 1024 * 1024)
    );
    let a = server
        .post(
            &[
                ("authorization", &t),
                ("mcp-protocol-version", "2025-11-25"),
            ],
            &big,
        )
        .await;
    assert_eq!(a.status, 413);
}

#[tokio::test]
async fn positional_params_are_refused_with_a_json_rpc_error_and_run_nothing() {
    let (issuer, server, key) = setup().await;
    let auth = format!("Bearer {}", token(&issuer, &server, &key, "files:write"));
    for body in [
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":["write_file",{"path":"/shared/x","content":"x"}]}"#,
        r#"[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"write_file","arguments":{"path":"/notes/x","content":"x"}}},{"jsonrpc":"2.0","id":2,"method":"tools/call","params":["write_file","/shared/y"]}]"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":[]}"#,
    ] {
        let a = server
            .post(
                &[
                    ("authorization", &auth),
                    ("mcp-protocol-version", "2025-11-25"),
                ],
                body,
            )
            .await;
        assert_eq!(a.status, 400, "{body}: {a:?}");
        let err = &a.json()["error"];
        assert_eq!(err["code"], -32602, "{a:?}");
        assert_eq!(
            err["message"], "Invalid params: `params` must be a JSON object",
            "{a:?}"
        );
    }
    assert!(server.store.lock().unwrap().is_empty());
}
