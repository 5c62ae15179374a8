//! The declarative protection of the example file server, end to end over real HTTP with real
//! signed JWTs: `scopes!`, `#[protected(...)]` (argument-dependent scopes, hierarchy, hidden
//! tools), `#[public]`, `#[guarded]` (per-caller `tools/list`), `#[derive(ProtectedResource)]`
//! (catalogue and manifest), prompts and resources, and the in-process guards that still
//! refuse when the layer is bypassed.

use std::sync::Arc;

use mcp_guard::policy::ArgTest;
use mcp_guard::{Guard, Issuer, Policy, Requirement};
use mcp_guard_examples::files::{self, FileServer, Scopes};

use mcp_guard_tests::server::{LEGACY, STATELESS, post_stateless, stateless_body};
use mcp_guard_tests::{Answer, TestIssuer, TestKey, TestServer, claims};
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use serde_json::{Value, json};

async fn setup() -> (TestIssuer, TestServer, TestKey) {
    let key = TestKey::rsa1();
    let issuer = TestIssuer::start(vec![key.jwk()]).await;
    let server = TestServer::start(&issuer).await;
    (issuer, server, key)
}

/// The same in the anonymous access posture, for what callers without a token see.
async fn setup_anonymous() -> (TestIssuer, TestServer, TestKey) {
    let key = TestKey::rsa1();
    let issuer = TestIssuer::start(vec![key.jwk()]).await;
    let server = TestServer::start_with(&issuer, |o| o.allow_anonymous = true).await;
    (issuer, server, key)
}

fn token(issuer: &TestIssuer, server: &TestServer, key: &TestKey, scope: &str) -> String {
    key.sign(&claims(&issuer.issuer, &server.mcp_url, scope))
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// A 2026-07-28 request with `Mcp-Method`/`Mcp-Name` headers.
async fn stateless(
    server: &TestServer,
    authorization: Option<&str>,
    method: &str,
    name: &str,
    params: Value,
) -> Answer {
    let mut headers = vec![
        ("mcp-protocol-version", STATELESS),
        ("mcp-method", method),
        ("mcp-name", name),
    ];
    if let Some(a) = authorization {
        headers.push(("authorization", a));
    }
    server.post(&headers, &stateless_body(method, params)).await
}

/// A legacy (2025-11-25) `tools/call` without a session: classified from the body only.
async fn legacy_call(server: &TestServer, token: &str, tool: &str, args: Value) -> Answer {
    let body = json!({"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":tool,"arguments":args}});
    server
        .post(
            &[
                ("authorization", &bearer(token)),
                ("mcp-protocol-version", LEGACY),
            ],
            &body.to_string(),
        )
        .await
}

fn scope_words(challenge_scope: Option<&str>) -> Vec<String> {
    let mut v: Vec<String> = challenge_scope
        .unwrap_or_default()
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    v.sort();
    v
}

fn assert_insufficient_scope(a: &Answer, server: &TestServer, scope: &str) {
    assert_eq!(a.status, 403, "{a:?}");
    let c = a.challenge();
    assert_eq!(c.scheme, "Bearer");
    assert_eq!(c.param("error"), Some("insufficient_scope"), "{a:?}");
    assert_eq!(c.count("scope"), 1);
    assert_eq!(c.param("scope"), Some(scope), "{a:?}");
    assert_eq!(
        c.param("resource_metadata"),
        Some(server.metadata_url.as_str())
    );
}

fn tool_names(list: &Answer) -> Vec<String> {
    let v = list.json();
    let mut names: Vec<String> = v["result"]["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("not a tools/list result: {v}"))
        .iter()
        .map(|t| t["name"].as_str().expect("tool name").to_owned())
        .collect();
    names.sort();
    names
}

fn stored(server: &TestServer, path: &str) -> Option<String> {
    server.store.lock().unwrap().get(path).cloned()
}

// 1. Argument-dependent scopes.

#[tokio::test]
async fn write_file_needs_files_shared_only_under_shared_with_stateless_requests() {
    let (issuer, server, key) = setup().await;
    let writer = bearer(&token(&issuer, &server, &key, "files:write"));

    let a = server
        .call_stateless(
            Some(&writer),
            "write_file",
            "write_file",
            json!({"path": "/home/a", "content": "mine"}),
        )
        .await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.tool_text(), "alice wrote 4 bytes to /home/a");
    assert_eq!(stored(&server, "/home/a").as_deref(), Some("mine"));

    // Same token, same tool, another path: one challenge naming both scopes the call needs.
    let a = server
        .call_stateless(
            Some(&writer),
            "write_file",
            "write_file",
            json!({"path": "/shared/a", "content": "ours"}),
        )
        .await;
    assert_insufficient_scope(&a, &server, "files:shared files:write");
    assert_eq!(
        scope_words(a.challenge().param("scope")),
        ["files:shared", "files:write"]
    );
    assert_eq!(a.json()["error"], "insufficient_scope");
    assert_eq!(stored(&server, "/shared/a"), None, "the tool did not run");

    // A path that merely contains "/shared" further on is not under /shared.
    let a = server
        .call_stateless(
            Some(&writer),
            "write_file",
            "write_file",
            json!({"path": "/home/shared", "content": "x"}),
        )
        .await;
    assert_eq!(a.status, 200, "{a:?}");

    let both = bearer(&token(&issuer, &server, &key, "files:write files:shared"));
    let a = server
        .call_stateless(
            Some(&both),
            "write_file",
            "write_file",
            json!({"path": "/shared/a", "content": "ours"}),
        )
        .await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.tool_text(), "alice wrote 4 bytes to /shared/a");
    assert_eq!(stored(&server, "/shared/a").as_deref(), Some("ours"));

    // files:shared alone is not enough: files:write is still needed.
    let shared_only = bearer(&token(&issuer, &server, &key, "files:shared"));
    let a = server
        .call_stateless(
            Some(&shared_only),
            "write_file",
            "write_file",
            json!({"path": "/shared/b", "content": "x"}),
        )
        .await;
    assert_insufficient_scope(&a, &server, "files:shared files:write");
    assert_eq!(stored(&server, "/shared/b"), None);
}

#[tokio::test]
async fn write_file_argument_rule_is_applied_to_legacy_bodies() {
    let (issuer, server, key) = setup().await;
    let writer = token(&issuer, &server, &key, "files:write");

    // Without a session the layer still classifies the body and refuses before rmcp.
    let a = legacy_call(
        &server,
        &writer,
        "write_file",
        json!({"path": "/shared/a", "content": "x"}),
    )
    .await;
    assert_insufficient_scope(&a, &server, "files:shared files:write");
    assert_eq!(stored(&server, "/shared/a"), None);

    // An allowed sessionless legacy call passes the layer (no challenge) and is refused by
    // rmcp itself, which wants a session for 2025-11-25 requests: nothing runs.
    let a = legacy_call(
        &server,
        &writer,
        "write_file",
        json!({"path": "/home/a", "content": "x"}),
    )
    .await;
    assert_eq!(a.status, 400, "{a:?}");
    assert!(a.headers.get("www-authenticate").is_none(), "{a:?}");
    assert_eq!(stored(&server, "/home/a"), None);

    // In a legacy session: the same decisions, from the body.
    let sid = server.open_session(&writer).await;
    let a = server
        .call_in_session(
            &writer,
            &sid,
            "write_file",
            json!({"path": "/home/a", "content": "x"}),
        )
        .await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.tool_text(), "alice wrote 1 bytes to /home/a");
    let a = server
        .call_in_session(
            &writer,
            &sid,
            "write_file",
            json!({"path": "/shared/a", "content": "x"}),
        )
        .await;
    assert_insufficient_scope(&a, &server, "files:shared files:write");
    assert_eq!(stored(&server, "/shared/a"), None);

    // Lying headers do not help a legacy request: the body decides.
    let body = json!({"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":"write_file","arguments":{"path":"/shared/a","content":"x"}}});
    let a = server
        .post(
            &[
                ("authorization", &bearer(&writer)),
                ("mcp-protocol-version", LEGACY),
                ("mcp-session-id", &sid),
                ("mcp-method", "tools/call"),
                ("mcp-name", "read_file"),
            ],
            &body.to_string(),
        )
        .await;
    assert_insufficient_scope(&a, &server, "files:shared files:write");
    assert_eq!(stored(&server, "/shared/a"), None);

    let both = token(&issuer, &server, &key, "files:write files:shared");
    let sid2 = server.open_session(&both).await;
    let a = server
        .call_in_session(
            &both,
            &sid2,
            "write_file",
            json!({"path": "/shared/a", "content": "ours"}),
        )
        .await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.tool_text(), "alice wrote 4 bytes to /shared/a");
    assert_eq!(stored(&server, "/shared/a").as_deref(), Some("ours"));
}

// 2. Hierarchy.

#[tokio::test]
async fn files_admin_implies_read_and_write_and_may_reset_the_store() {
    let (issuer, server, key) = setup().await;
    let admin = bearer(&token(&issuer, &server, &key, "files:admin"));

    let a = server
        .call_stateless(
            Some(&admin),
            "write_file",
            "write_file",
            json!({"path": "/notes", "content": "hello"}),
        )
        .await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.tool_text(), "alice wrote 5 bytes to /notes");

    let a = server
        .call_stateless(
            Some(&admin),
            "read_file",
            "read_file",
            json!({"path": "/notes"}),
        )
        .await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.tool_text(), "hello");

    let a = server
        .call_stateless(Some(&admin), "list_files", "list_files", json!({}))
        .await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.tool_text(), "/notes");

    // files:admin does not imply files:shared.
    let a = server
        .call_stateless(
            Some(&admin),
            "write_file",
            "write_file",
            json!({"path": "/shared/x", "content": "x"}),
        )
        .await;
    assert_insufficient_scope(&a, &server, "files:admin files:shared files:write");
    assert_eq!(stored(&server, "/shared/x"), None);

    let a = server
        .call_stateless(Some(&admin), "reset_store", "reset_store", json!({}))
        .await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.tool_text(), "deleted 1 files");
    assert!(server.store.lock().unwrap().is_empty());
}

// 3. Hidden vs listed.

#[tokio::test]
async fn hidden_reset_store_is_answered_like_an_unknown_tool_and_does_not_run() {
    let (issuer, server, key) = setup().await;
    server
        .store
        .lock()
        .unwrap()
        .insert("/keep".into(), "kept".into());
    let rw = bearer(&token(&issuer, &server, &key, "files:read files:write"));

    let hidden = server
        .call_stateless(Some(&rw), "reset_store", "reset_store", json!({}))
        .await;
    assert_eq!(hidden.status, 200, "{hidden:?}");
    assert!(hidden.headers.get("www-authenticate").is_none());
    let hidden = hidden.json();
    assert_eq!(hidden["error"]["code"], -32602, "{hidden}");
    assert_eq!(hidden["error"]["message"], "tool not found", "{hidden}");
    assert_eq!(hidden["id"], 9, "answered with the request's id: {hidden}");
    assert!(hidden.get("result").is_none());

    let unknown = server
        .call_stateless(Some(&rw), "no_such_tool", "no_such_tool", json!({}))
        .await;
    assert_eq!(unknown.status, 200, "{unknown:?}");
    let unknown = unknown.json();
    assert_eq!(
        hidden["error"], unknown["error"],
        "a hidden tool and an unknown tool are indistinguishable"
    );
    assert_eq!(hidden["id"], unknown["id"]);
    assert_eq!(stored(&server, "/keep").as_deref(), Some("kept"));

    // Same in a legacy session, classified from the body.
    let rw_token = token(&issuer, &server, &key, "files:read files:write");
    let sid = server.open_session(&rw_token).await;
    let hidden = server
        .call_in_session(&rw_token, &sid, "reset_store", json!({}))
        .await;
    let unknown = server
        .call_in_session(&rw_token, &sid, "no_such_tool", json!({}))
        .await;
    assert_eq!(hidden.status, 200, "{hidden:?}");
    assert_eq!(unknown.status, 200, "{unknown:?}");
    assert_eq!(hidden.json()["error"]["code"], -32602);
    assert_eq!(hidden.json()["error"], unknown.json()["error"]);
    assert_eq!(hidden.json()["id"], 7);
    assert_eq!(stored(&server, "/keep").as_deref(), Some("kept"));
}

#[tokio::test]
async fn tools_list_hides_reset_store_but_keeps_listed_tools_the_caller_cannot_use() {
    let (issuer, server, key) = setup().await;
    let all_but_admin = [
        "about",
        "echo",
        "list_files",
        "read_file",
        "whoami",
        "write_file",
    ];

    for scope in ["", "files:read", "files:read files:write files:shared"] {
        let a = server
            .list_with(&bearer(&token(&issuer, &server, &key, scope)))
            .await;
        assert_eq!(a.status, 200, "{scope:?}: {a:?}");
        assert_eq!(
            tool_names(&a),
            all_but_admin,
            "{scope:?}: reset_store hidden, write_file still listed"
        );
    }

    let a = server
        .list_with(&bearer(&token(&issuer, &server, &key, "files:admin")))
        .await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(
        tool_names(&a),
        [
            "about",
            "echo",
            "list_files",
            "read_file",
            "reset_store",
            "whoami",
            "write_file"
        ]
    );

    // The legacy path (session, body-classified) filters the same way.
    let reader = token(&issuer, &server, &key, "files:read");
    let sid = server.open_session(&reader).await;
    let list = json!({"jsonrpc":"2.0","id":3,"method":"tools/list"}).to_string();
    let a = server
        .post(
            &[
                ("authorization", &bearer(&reader)),
                ("mcp-protocol-version", LEGACY),
                ("mcp-session-id", &sid),
            ],
            &list,
        )
        .await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(tool_names(&a), all_but_admin);
}

// 4. tools/list for 2026-07-28: cache scope and SEP-1488 security schemes.

#[tokio::test]
async fn stateless_tools_list_is_private_and_advertises_security_schemes_only() {
    let (issuer, server, key) = setup().await;
    let a = server
        .list_with(&bearer(&token(&issuer, &server, &key, "files:admin")))
        .await;
    assert_eq!(a.status, 200, "{a:?}");
    let v = a.json();
    assert_eq!(
        v["result"]["cacheScope"], "private",
        "lists depend on the caller because reset_store is hidden: {v}"
    );
    let tools = v["result"]["tools"].as_array().expect("tools");
    assert_eq!(tools.len(), 7, "{v}");
    let expected = |name: &str| match name {
        // The sign-in posture: the public tool needs a token, though no scope.
        "about" | "echo" | "whoami" => json!([{"type": "oauth2", "scopes": []}]),
        "list_files" | "read_file" => json!([{"type": "oauth2", "scopes": ["files:read"]}]),
        // Argument-dependent scopes are not advertised.
        "write_file" => json!([{"type": "oauth2", "scopes": ["files:write"]}]),
        "reset_store" => json!([{"type": "oauth2", "scopes": ["files:admin"]}]),
        other => panic!("unexpected tool {other}"),
    };
    for tool in tools {
        let name = tool["name"].as_str().expect("name");
        let meta = tool["_meta"]
            .as_object()
            .unwrap_or_else(|| panic!("{name} has no _meta: {tool}"));
        assert_eq!(meta["securitySchemes"], expected(name), "{name}");
        assert_eq!(
            meta.keys().collect::<Vec<_>>(),
            ["securitySchemes"],
            "{name}: _meta carries only what is advertised: {tool}"
        );
    }
}

// 5. Public tool.

#[tokio::test]
async fn public_about_needs_no_token_while_protected_tools_are_challenged() {
    let (_issuer, server, _key) = setup_anonymous().await;
    let a = server
        .call_stateless(None, "about", "about", json!({}))
        .await;
    assert_eq!(a.status, 200, "{a:?}");
    assert!(a.headers.get("www-authenticate").is_none());
    assert_eq!(a.tool_text(), "mcp-guard example file store");

    for (tool, args) in [
        ("whoami", json!({})),
        ("echo", json!({"text": "hi"})),
        ("read_file", json!({"path": "/x"})),
        ("write_file", json!({"path": "/x", "content": "x"})),
    ] {
        let a = server.call_stateless(None, tool, tool, args).await;
        assert_eq!(a.status, 401, "{tool}: {a:?}");
        let c = a.challenge();
        assert_eq!(c.scheme, "Bearer");
        assert_eq!(c.count("error"), 0, "{tool}: no error without credentials");
        assert_eq!(c.param("scope"), Some("files:read"), "{tool}: baseline");
        assert_eq!(
            c.param("resource_metadata"),
            Some(server.metadata_url.as_str())
        );
    }
    assert!(server.store.lock().unwrap().is_empty());

    // In the anonymous posture a caller without a token may list: everything but the hidden
    // tool, each with its advertised scheme.
    let a = stateless(&server, None, "tools/list", "", json!({})).await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(
        tool_names(&a),
        [
            "about",
            "echo",
            "list_files",
            "read_file",
            "whoami",
            "write_file"
        ]
    );
    assert_eq!(a.json()["result"]["cacheScope"], "private");
}

// 6. In-process guards when the layer is bypassed.

/// The example server behind rmcp's transport only, without any guard layer.
async fn unguarded(store: files::Store) -> (String, tokio::task::JoinHandle<()>) {
    unguarded_with(store, |app| app).await
}

/// The same, with the router adjusted (a test layer, say).
async fn unguarded_with(
    store: files::Store,
    adjust: impl FnOnce(axum::Router) -> axum::Router,
) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1");
    let url = format!("http://{}/mcp", listener.local_addr().expect("addr"));
    let service = StreamableHttpService::new(
        move || Ok(FileServer::new(store.clone())),
        Arc::new(NeverSessionManager::default()),
        StreamableHttpServerConfig::default()
            .with_legacy_session_mode(false)
            .with_json_response(true),
    );
    let app = adjust(axum::Router::new().route_service("/mcp", service));
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, task)
}

#[tokio::test]
async fn without_the_layer_protected_operations_fail_closed_in_process() {
    let store = files::Store::default();
    let (url, task) = unguarded(store.clone()).await;

    for (tool, args) in [
        ("write_file", json!({"path": "/home/a", "content": "x"})),
        ("write_file", json!({"path": "/shared/a", "content": "x"})),
        ("read_file", json!({"path": "/a"})),
        ("list_files", json!({})),
        ("whoami", json!({})),
        ("echo", json!({"text": "hi"})),
        ("reset_store", json!({})),
    ] {
        let a = post_stateless(
            &url,
            "tools/call",
            tool,
            json!({"name": tool, "arguments": args}),
        )
        .await;
        assert_eq!(a.status, 200, "{tool}: {a:?}");
        let v = a.json();
        assert_eq!(
            v["error"]["code"],
            mcp_guard::rmcp::UNAUTHENTICATED,
            "{tool}: {v}"
        );
        assert!(v.get("result").is_none(), "{tool}: {v}");
    }
    assert!(store.lock().unwrap().is_empty(), "no tool ran");

    // The prompt and the resources are refused the same way, even for an existing file.
    store.lock().unwrap().insert("/a".into(), "secret".into());
    let a = post_stateless(
        &url,
        "prompts/get",
        "review_file",
        json!({"name": "review_file", "arguments": {"path": "/a"}}),
    )
    .await;
    assert_eq!(
        a.json()["error"]["code"],
        mcp_guard::rmcp::UNAUTHENTICATED,
        "{a:?}"
    );
    assert!(!a.body.contains("secret"));
    let a = post_stateless(
        &url,
        "resources/read",
        "files:///a",
        json!({"uri": "files:///a"}),
    )
    .await;
    assert_eq!(
        a.json()["error"]["code"],
        mcp_guard::rmcp::UNAUTHENTICATED,
        "{a:?}"
    );
    assert!(!a.body.contains("secret"));
    let a = post_stateless(&url, "resources/list", "", json!({})).await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(
        a.json()["result"]["resources"],
        json!([]),
        "no resource is listed without a policy"
    );

    // The public tool works, and the list still leaves the hidden tool out.
    let a = post_stateless(
        &url,
        "tools/call",
        "about",
        json!({"name": "about", "arguments": {}}),
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.tool_text(), "mcp-guard example file store");
    let a = post_stateless(&url, "tools/list", "", json!({})).await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(
        tool_names(&a),
        [
            "about",
            "echo",
            "list_files",
            "read_file",
            "whoami",
            "write_file"
        ]
    );
    assert_eq!(a.json()["result"]["cacheScope"], "private");
    for tool in a.json()["result"]["tools"].as_array().unwrap() {
        assert_eq!(
            tool["_meta"].as_object().map(|m| m.len()),
            Some(1),
            "only securitySchemes: {tool}"
        );
    }
    assert_eq!(store.lock().unwrap().len(), 1);
    task.abort();
}

// 7. One policy for the layer and the in-process guards.

/// The example server behind a guard with an explicit policy instead of the declared one.
async fn with_policy(issuer: &TestIssuer, policy: Policy) -> TestServer {
    let listener = mcp_guard_tests::server::bind().await;
    TestServer::on_listener(
        listener,
        &issuer.issuer,
        |_| {},
        |options| {
            Guard::builder()
                .resource(&options.resource)
                .issuer(Issuer::with_jwks_uri(&issuer.issuer, issuer.jwks_uri()))
                .policy(policy)
                .build()
                .expect("guard builds")
        },
    )
}

#[tokio::test]
async fn layer_and_in_process_guard_decide_from_the_same_policy() {
    let key = TestKey::rsa1();
    let issuer = TestIssuer::start(vec![key.jwk()]).await;

    // With the declared policy, both refuse a reader's write: the layer answers 403 first.
    let declared = TestServer::start(&issuer).await;
    let reader = bearer(&token(&issuer, &declared, &key, "files:read"));
    let a = declared
        .call_stateless(
            Some(&reader),
            "write_file",
            "write_file",
            json!({"path": "/a", "content": "x"}),
        )
        .await;
    assert_insufficient_scope(&a, &declared, "files:read files:write");
    assert!(declared.store.lock().unwrap().is_empty());
    declared.stop().await;

    // An explicit policy replaces the declared requirements everywhere: write_file without
    // its `/shared` rule and echo needing files:admin. The in-process guard follows the
    // layer's policy, so the shared write runs and echo is refused by the layer.
    let policy = Policy::builder()
        .catalogue(<Scopes as mcp_guard::scope::ScopeCatalogue>::ENTRIES)
        .tool("write_file", Requirement::scopes(["files:write"]).unwrap())
        .tool("echo", Requirement::scopes(["files:admin"]).unwrap())
        .build()
        .expect("policy builds");
    let explicit = with_policy(&issuer, policy).await;
    let writer = bearer(&token(&issuer, &explicit, &key, "files:write"));
    let a = explicit
        .call_stateless(
            Some(&writer),
            "write_file",
            "write_file",
            json!({"path": "/shared/a", "content": "x"}),
        )
        .await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.tool_text(), "alice wrote 1 bytes to /shared/a");
    assert_eq!(stored(&explicit, "/shared/a").as_deref(), Some("x"));
    let a = explicit
        .call_stateless(Some(&writer), "echo", "echo", json!({"text": "hi"}))
        .await;
    assert_insufficient_scope(&a, &explicit, "files:admin files:write");
    explicit.stop().await;
}

// 8. Prompts.

#[tokio::test]
async fn review_file_prompt_needs_files_read() {
    let (issuer, server, key) = setup().await;
    let params = json!({"name": "review_file", "arguments": {"path": "/a"}});

    let writer = bearer(&token(&issuer, &server, &key, "files:write"));
    let a = stateless(
        &server,
        Some(&writer),
        "prompts/get",
        "review_file",
        params.clone(),
    )
    .await;
    assert_insufficient_scope(&a, &server, "files:read files:write");

    let a = stateless(&server, None, "prompts/get", "review_file", params.clone()).await;
    assert_eq!(a.status, 401, "{a:?}");
    assert_eq!(a.challenge().param("scope"), Some("files:read"));

    // Allowed, but the file does not exist yet: the prompt's own error.
    let reader = bearer(&token(&issuer, &server, &key, "files:read"));
    let a = stateless(
        &server,
        Some(&reader),
        "prompts/get",
        "review_file",
        params.clone(),
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");
    let v = a.json();
    assert_eq!(v["error"]["code"], -32602, "{v}");
    assert_eq!(v["error"]["message"], "no such file: /a", "{v}");

    let admin = bearer(&token(&issuer, &server, &key, "files:admin"));
    let w = server
        .call_stateless(
            Some(&admin),
            "write_file",
            "write_file",
            json!({"path": "/a", "content": "fn main() {}"}),
        )
        .await;
    assert_eq!(w.status, 200, "{w:?}");

    let a = stateless(
        &server,
        Some(&reader),
        "prompts/get",
        "review_file",
        params.clone(),
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");
    let v = a.json();
    let messages = v["result"]["messages"].as_array().expect("messages");
    assert_eq!(messages.len(), 1, "{v}");
    assert_eq!(messages[0]["role"], "user");
    let text = messages[0]["content"]["text"].as_str().expect("text");
    assert!(text.contains("fn main() {}"), "{text}");
    assert!(text.contains("(/a)"), "{text}");

    // files:admin implies files:read for prompts too.
    let a = stateless(&server, Some(&admin), "prompts/get", "review_file", params).await;
    assert_eq!(a.status, 200, "{a:?}");
    assert!(a.json()["result"]["messages"].is_array());
}

// 9. Resources.

#[tokio::test]
async fn file_resources_need_files_read_to_read_and_to_be_listed() {
    let (issuer, server, key) = setup().await;
    let admin = bearer(&token(&issuer, &server, &key, "files:admin"));
    let w = server
        .call_stateless(
            Some(&admin),
            "write_file",
            "write_file",
            json!({"path": "/a", "content": "resource body"}),
        )
        .await;
    assert_eq!(w.status, 200, "{w:?}");

    let uri = "files:///a";
    let writer = bearer(&token(&issuer, &server, &key, "files:write"));
    let a = stateless(
        &server,
        Some(&writer),
        "resources/read",
        uri,
        json!({"uri": uri}),
    )
    .await;
    assert_insufficient_scope(&a, &server, "files:read files:write");
    assert!(!a.body.contains("resource body"));

    let reader = bearer(&token(&issuer, &server, &key, "files:read"));
    let a = stateless(
        &server,
        Some(&reader),
        "resources/read",
        uri,
        json!({"uri": uri}),
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");
    let v = a.json();
    let contents = v["result"]["contents"].as_array().expect("contents");
    assert_eq!(contents.len(), 1, "{v}");
    assert_eq!(contents[0]["uri"], uri);
    assert_eq!(contents[0]["text"], "resource body");

    // A missing file under the template: allowed, then not found by the handler.
    let a = stateless(
        &server,
        Some(&reader),
        "resources/read",
        "files:///missing",
        json!({"uri": "files:///missing"}),
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");
    // rmcp answers 2026-07-28 peers' resource-not-found with -32602 (not -32002).
    assert_eq!(a.json()["error"]["code"], -32602, "{a:?}");
    assert_eq!(a.json()["error"]["message"], "no such file: /missing");

    // resources/list needs only authentication; the handler filters per caller.
    let a = stateless(&server, Some(&reader), "resources/list", "", json!({})).await;
    assert_eq!(a.status, 200, "{a:?}");
    let listed = a.json()["result"]["resources"].clone();
    let listed = listed.as_array().expect("resources");
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["uri"], uri);
    assert_eq!(listed[0]["name"], "/a");

    let a = stateless(&server, Some(&writer), "resources/list", "", json!({})).await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(
        a.json()["result"]["resources"],
        json!([]),
        "a caller without files:read sees no file"
    );
}

// 10. Manifest.

#[tokio::test]
async fn manifest_lists_the_catalogue_and_every_declared_requirement() {
    let m = mcp_guard::manifest::<FileServer>();

    let scopes = m["scopes"].as_array().expect("scopes");
    assert_eq!(scopes.len(), 4, "{m}");
    let scope = |name: &str| {
        scopes
            .iter()
            .find(|s| s["scope"] == name)
            .unwrap_or_else(|| panic!("{name} missing from {m}"))
            .clone()
    };
    for s in scopes {
        assert!(
            !s["description"].as_str().unwrap_or_default().is_empty(),
            "{s}"
        );
    }
    assert_eq!(scope("files:read")["baseline"], true);
    assert_eq!(scope("files:read")["implies"], json!([]));
    assert_eq!(scope("files:read")["description"], "Read and list files.");
    assert_eq!(scope("files:write")["baseline"], false);
    assert_eq!(scope("files:shared")["baseline"], false);
    assert_eq!(scope("files:admin")["baseline"], false);
    // Advertised in the metadata: the baseline and `#[advertised]`; the manifest lists all.
    assert_eq!(scope("files:read")["advertised"], true);
    assert_eq!(scope("files:write")["advertised"], true);
    assert_eq!(scope("files:shared")["advertised"], false);
    assert_eq!(scope("files:admin")["advertised"], false);
    let mut implied: Vec<String> = scope("files:admin")["implies"]
        .as_array()
        .expect("implies")
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect();
    implied.sort();
    assert_eq!(implied, ["files:read", "files:write"]);
    assert!(
        scope("files:admin")["description"]
            .as_str()
            .unwrap()
            .contains("implies reading and writing")
    );

    let tools = m["tools"].as_array().expect("tools");
    assert_eq!(tools.len(), 7, "every tool, hidden ones included: {m}");
    let tool = |name: &str| {
        tools
            .iter()
            .find(|t| t["name"] == name)
            .unwrap_or_else(|| panic!("{name} missing from {m}"))
            .clone()
    };
    assert_eq!(tool("about")["requirement"], json!({"public": true}));
    assert_eq!(
        tool("about")["securitySchemes"],
        json!([{"type": "oauth2", "scopes": []}]),
        "the example's derive declares the sign-in posture: a token, no scope"
    );
    assert_eq!(
        m["auth"],
        json!({"posture": "required", "methods": [{"type": "oauth"}]})
    );
    assert_eq!(tool("echo")["requirement"], json!({}));
    assert_eq!(tool("whoami")["requirement"], json!({}));
    assert_eq!(
        tool("read_file")["requirement"],
        json!({"scopes": ["files:read"]})
    );
    assert_eq!(
        tool("list_files")["requirement"],
        json!({"scopes": ["files:read"]})
    );
    assert_eq!(
        tool("write_file")["requirement"],
        json!({
            "scopes": ["files:write"],
            "when": [{
                "field": ["path"],
                "test": {"under": "/shared"},
                "scopes": ["files:shared"]
            }]
        })
    );
    assert_eq!(
        tool("reset_store")["requirement"],
        json!({"scopes": ["files:admin"], "visibility": "hidden"})
    );
    assert_eq!(
        tool("reset_store")["securitySchemes"],
        json!([{"type": "oauth2", "scopes": ["files:admin"]}])
    );

    let prompts = m["prompts"].as_array().expect("prompts");
    assert_eq!(prompts.len(), 1, "{m}");
    assert_eq!(prompts[0]["name"], "review_file");
    assert_eq!(prompts[0]["requirement"], json!({"scopes": ["files:read"]}));

    // The manifest and the policy the guard builds from the same server agree.
    let policy = mcp_guard::policy_builder::<FileServer>()
        .build()
        .expect("policy");
    assert_eq!(policy.baseline().to_string(), "files:read");
    assert_eq!(
        policy.scopes_supported().to_string(),
        "files:read files:write"
    );
    assert_eq!(
        policy.known_scopes().to_string(),
        "files:admin files:read files:shared files:write"
    );
    let write = policy.tool_requirement("write_file");
    assert_eq!(write.when.len(), 1);
    assert_eq!(write.when[0].field, ["path"]);
    assert_eq!(write.when[0].test, ArgTest::Under("/shared".into()));
    assert_eq!(write.when[0].scopes.to_string(), "files:shared");
    let args = |v: serde_json::Value| v.as_object().cloned();
    assert_eq!(
        write.when[0].applies(args(json!({"path": "//shared/./a", "content": ""})).as_ref()),
        Ok(true)
    );
    assert_eq!(
        write.when[0].applies(args(json!({"path": "/notes/a", "content": ""})).as_ref()),
        Ok(false)
    );
    assert!(
        write.when[0]
            .applies(args(json!({"path": 1})).as_ref())
            .is_err()
    );
    assert!(policy.is_hidden(policy.tool_requirement("reset_store")));
    assert!(policy.tool_requirement("about").public);
    assert_eq!(
        files::resource_requirement(),
        Requirement::scopes(["files:read"]).unwrap()
    );
}

#[tokio::test]
async fn hidden_and_unknown_tools_look_the_same_to_every_caller() {
    let (issuer, server, key) = setup_anonymous().await;
    let callers = [
        None,
        Some(bearer(&token(&issuer, &server, &key, ""))),
        Some(bearer(&token(&issuer, &server, &key, "files:write"))),
    ];
    for caller in &callers {
        let hidden = server
            .call_stateless(caller.as_deref(), "reset_store", "reset_store", json!({}))
            .await;
        let unknown = server
            .call_stateless(caller.as_deref(), "no_such_tool", "no_such_tool", json!({}))
            .await;
        assert_eq!(hidden.status, 200, "{caller:?}: {hidden:?}");
        assert_eq!(unknown.status, 200, "{caller:?}: {unknown:?}");
        assert_eq!(hidden.json(), unknown.json(), "{caller:?}");
        assert_eq!(hidden.json()["error"]["message"], "tool not found");
    }
}

#[tokio::test]
async fn prompts_list_carries_only_the_advertised_security_schemes() {
    let (issuer, server, key) = setup().await;
    let reader = bearer(&token(&issuer, &server, &key, "files:read"));
    let a = server
        .post(
            &[
                ("authorization", reader.as_str()),
                ("mcp-protocol-version", STATELESS),
                ("mcp-method", "prompts/list"),
            ],
            &stateless_body("prompts/list", json!({})),
        )
        .await;
    assert_eq!(a.status, 200, "{a:?}");
    let prompts = a.json()["result"]["prompts"].clone();
    assert_eq!(prompts[0]["name"], "review_file");
    assert_eq!(
        prompts[0]["_meta"],
        json!({"securitySchemes": [{"type": "oauth2", "scopes": ["files:read"]}]})
    );
}

#[tokio::test]
async fn resources_outside_the_declared_template_are_neither_read_nor_listed() {
    let (issuer, server, key) = setup().await;
    // A file the store holds under a name the template `files:///{+path}` does not cover.
    server
        .store
        .lock()
        .unwrap()
        .insert("payroll.csv".into(), "salaries".into());
    server
        .store
        .lock()
        .unwrap()
        .insert("/notes/a".into(), "note".into());
    let outside = "files://payroll.csv";
    let none = bearer(&token(&issuer, &server, &key, ""));
    let reader = bearer(&token(&issuer, &server, &key, "files:read"));
    let admin = bearer(&token(&issuer, &server, &key, "files:admin"));

    // A token without scope: the undeclared URI needs the baseline, like any undeclared
    // operation, in both wire formats.
    let a = stateless(
        &server,
        Some(&none),
        "resources/read",
        outside,
        json!({"uri": outside}),
    )
    .await;
    assert_insufficient_scope(&a, &server, "files:read");
    let body = json!({"jsonrpc":"2.0","id":5,"method":"resources/read","params":{"uri":outside}});
    let a = server
        .post(
            &[("authorization", &none), ("mcp-protocol-version", LEGACY)],
            &body.to_string(),
        )
        .await;
    assert_insufficient_scope(&a, &server, "files:read");
    assert!(!a.body.contains("salaries"));
    let a = stateless(&server, Some(&none), "resources/list", "", json!({})).await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.json()["result"]["resources"], json!([]), "{a:?}");

    // Even a caller with every scope is not served outside the template, nor shown it.
    for caller in [&reader, &admin] {
        let a = stateless(
            &server,
            Some(caller),
            "resources/read",
            outside,
            json!({"uri": outside}),
        )
        .await;
        assert_eq!(a.status, 200, "{a:?}");
        assert_eq!(
            a.json()["error"]["message"],
            "resource not found: files://payroll.csv"
        );
        assert!(!a.body.contains("salaries"));
        let a = stateless(&server, Some(caller), "resources/list", "", json!({})).await;
        let listed: Vec<Value> = a.json()["result"]["resources"]
            .as_array()
            .expect("resources")
            .iter()
            .map(|r| r["uri"].clone())
            .collect();
        assert_eq!(listed, [json!("files:///notes/a")], "{a:?}");
    }

    // `resources/templates/list` follows the same rule: the declared template only, and only
    // to a caller who may read from it.
    let templates = |a: &Answer| -> Vec<Value> {
        a.json()["result"]["resourceTemplates"]
            .as_array()
            .unwrap_or_else(|| panic!("templates: {a:?}"))
            .iter()
            .map(|t| t["uriTemplate"].clone())
            .collect()
    };
    let a = stateless(
        &server,
        Some(&none),
        "resources/templates/list",
        "",
        json!({}),
    )
    .await;
    assert_eq!(templates(&a), Vec::<Value>::new(), "{a:?}");
    for caller in [&reader, &admin] {
        let a = stateless(
            &server,
            Some(caller),
            "resources/templates/list",
            "",
            json!({}),
        )
        .await;
        assert_eq!(templates(&a), [json!(files::RESOURCE_TEMPLATE)], "{a:?}");
    }
}

#[tokio::test]
async fn undeclared_prompts_and_resources_need_the_baseline_like_tools() {
    let policy = Policy::builder()
        .catalogue(<Scopes as mcp_guard::scope::ScopeCatalogue>::ENTRIES)
        .build()
        .expect("policy");
    let claims = json!({"sub": "a", "iss": "i", "exp": 1, "scope": ""});
    let nobody = mcp_guard::Principal::from_claims(claims.as_object().unwrap().clone()).unwrap();
    for target in [
        mcp_guard::policy::Target::Tool("undeclared"),
        mcp_guard::policy::Target::Prompt("undeclared"),
        mcp_guard::policy::Target::Resource("other://x"),
    ] {
        match policy.decide(Some(&nobody), target, None) {
            mcp_guard::Decision::InsufficientScope { required, .. } => {
                assert_eq!(required.to_string(), "files:read", "{target:?}")
            }
            d => panic!("{target:?}: {d:?}"),
        }
    }
}

/// Spellings of a path under `/shared` that a raw prefix test would miss.
const SHARED_TRICKS: [&str; 7] = [
    "//shared/a",
    "/./shared/a",
    "/notes/../shared/a",
    "shared/a",
    " /shared/a",
    "/shared",
    "/../shared/a",
];

#[tokio::test]
async fn every_spelling_of_a_shared_path_needs_files_shared_through_the_layer() {
    let (issuer, server, key) = setup().await;
    let writer = token(&issuer, &server, &key, "files:write");
    for path in SHARED_TRICKS {
        let args = json!({"path": path, "content": "x"});
        let a = server
            .call_stateless(
                Some(&bearer(&writer)),
                "write_file",
                "write_file",
                args.clone(),
            )
            .await;
        assert_insufficient_scope(&a, &server, "files:shared files:write");
        let a = legacy_call(&server, &writer, "write_file", args).await;
        assert_insufficient_scope(&a, &server, "files:shared files:write");
    }
    assert!(
        server.store.lock().unwrap().is_empty(),
        "nothing was written"
    );

    // With files:shared the tool stores the normalised path the rule read.
    let both = bearer(&token(&issuer, &server, &key, "files:write files:shared"));
    let a = server
        .call_stateless(
            Some(&both),
            "write_file",
            "write_file",
            json!({"path": "/notes/../shared//a", "content": "x"}),
        )
        .await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.tool_text(), "alice wrote 1 bytes to /shared/a");
    assert_eq!(stored(&server, "/shared/a").as_deref(), Some("x"));
}

#[tokio::test]
async fn every_spelling_of_a_shared_path_needs_files_shared_in_process() {
    // The example behind a layer that only hands the caller and the policy to rmcp, deciding
    // nothing itself: the in-process guard alone must refuse.
    let policy = mcp_guard::policy_builder::<FileServer>()
        .resource(files::RESOURCE_TEMPLATE, files::resource_requirement())
        .build()
        .expect("policy");
    let policy = Arc::new(policy);
    let claims = json!({"sub": "alice", "iss": "i", "exp": 1, "scope": "files:write"});
    let writer = mcp_guard::Principal::from_claims(claims.as_object().unwrap().clone()).unwrap();
    let store = files::Store::default();
    let (url, task) = unguarded_with(store.clone(), move |app| {
        app.layer(axum::middleware::map_request(
            move |mut req: axum::extract::Request| {
                let (policy, writer) = (policy.clone(), writer.clone());
                async move {
                    mcp_guard::testing::leave_for_in_process_checks(
                        req.extensions_mut(),
                        policy,
                        Some(writer),
                    );
                    req
                }
            },
        ))
    })
    .await;

    for path in SHARED_TRICKS {
        let a = post_stateless(
            &url,
            "tools/call",
            "write_file",
            json!({"name": "write_file", "arguments": {"path": path, "content": "x"}}),
        )
        .await;
        assert_eq!(a.status, 200, "{path}: {a:?}");
        assert_eq!(
            a.json()["error"]["code"],
            mcp_guard::rmcp::FORBIDDEN,
            "{path}: {a:?}"
        );
    }
    assert!(store.lock().unwrap().is_empty(), "nothing was written");
    // A private path still runs in process.
    let a = post_stateless(
        &url,
        "tools/call",
        "write_file",
        json!({"name": "write_file", "arguments": {"path": "/notes/a", "content": "x"}}),
    )
    .await;
    assert_eq!(a.tool_text(), "alice wrote 1 bytes to /notes/a", "{a:?}");
    task.abort();
}
