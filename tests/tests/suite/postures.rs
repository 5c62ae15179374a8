//! The two postures towards callers without a token: sign-in (the default, every request
//! challenged, so every client starts OAuth at its first request) and anonymous access
//! (opt-in: discovery and `#[public]` operations without a token), in both wire formats.

use mcp_guard::{Guard, Issuer, ProtectedResource, guarded, protected, public};
use mcp_guard_tests::server::{LEGACY, STATELESS, bind, post_stateless, stateless_body};
use mcp_guard_tests::{Answer, TestIssuer, TestKey, TestServer, claims};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::{ServerHandler, tool, tool_handler, tool_router};
use serde_json::json;

fn initialize() -> String {
    json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{
        "protocolVersion": LEGACY, "capabilities": {},
        "clientInfo": {"name": "no-token-yet", "version": "0"}}})
    .to_string()
}

/// A token-less legacy `initialize`.
async fn legacy_initialize(server: &TestServer) -> Answer {
    server
        .post(&[("mcp-protocol-version", LEGACY)], &initialize())
        .await
}

/// A token-less 2026-07-28 `tools/list`.
async fn stateless_list(server: &TestServer) -> Answer {
    server
        .post(
            &[
                ("mcp-protocol-version", STATELESS),
                ("mcp-method", "tools/list"),
            ],
            &stateless_body("tools/list", json!({})),
        )
        .await
}

/// A token-less 2026-07-28 call of a tool.
async fn stateless_call(server: &TestServer, tool: &str) -> Answer {
    post_stateless(
        &server.mcp_url,
        "tools/call",
        tool,
        json!({"name": tool, "arguments": {}}),
    )
    .await
}

/// The sign-in challenge: 401, `Bearer` with the metadata URL and the baseline scope, no
/// `error` (RFC 6750 §3.1: no credentials were sent).
#[track_caller]
fn assert_sign_in_challenge(a: &Answer, server: &TestServer, why: &str) {
    assert_eq!(a.status, 401, "{why}: {a:?}");
    let c = a.challenge();
    assert_eq!(c.scheme, "Bearer", "{why}");
    assert_eq!(
        c.param("resource_metadata"),
        Some(server.metadata_url.as_str()),
        "{why}"
    );
    assert_eq!(c.param("scope"), Some("files:read"), "{why}");
    assert_eq!(c.param("error"), None, "{why}");
}

#[tokio::test]
async fn by_default_every_request_without_a_token_is_challenged_public_tools_included() {
    let key = TestKey::rsa1();
    let issuer = TestIssuer::start(vec![key.jwk()]).await;
    let server = TestServer::start(&issuer).await;

    let init = legacy_initialize(&server).await;
    assert_sign_in_challenge(&init, &server, "legacy initialize");
    assert!(
        init.headers.get("mcp-session-id").is_none(),
        "no session opened"
    );
    assert_sign_in_challenge(
        &stateless_list(&server).await,
        &server,
        "stateless tools/list",
    );
    assert_sign_in_challenge(
        &stateless_call(&server, "about").await,
        &server,
        "the public tool",
    );
    assert_sign_in_challenge(
        &stateless_call(&server, "read_file").await,
        &server,
        "a protected tool",
    );

    // `#[public]` needs no scope, but a token: one without any of the catalogue's scopes.
    let scopeless = key.sign(&claims(&issuer.issuer, &server.mcp_url, "profile"));
    let about = server.call(&scopeless, "about", json!({})).await;
    assert_eq!(about.status, 200, "{about:?}");
    assert!(!about.tool_text().is_empty(), "{about:?}");
    let read = server
        .call(&scopeless, "read_file", json!({"path": "/x"}))
        .await;
    assert_eq!(
        read.status, 403,
        "a protected tool still needs its scope: {read:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn the_anonymous_posture_serves_discovery_and_public_tools_and_challenges_the_rest() {
    let key = TestKey::rsa1();
    let issuer = TestIssuer::start(vec![key.jwk()]).await;
    let server = TestServer::start_with(&issuer, |o| o.allow_anonymous = true).await;

    let init = legacy_initialize(&server).await;
    assert_eq!(init.status, 200, "{init:?}");
    assert!(init.headers.get("mcp-session-id").is_some());
    let list = stateless_list(&server).await;
    assert_eq!(list.status, 200, "{list:?}");
    assert!(list.body.contains(r#""about""#), "{}", list.body);
    let about = stateless_call(&server, "about").await;
    assert_eq!(about.status, 200, "{about:?}");
    assert!(!about.body.contains("isError\":true"), "{}", about.body);

    assert_sign_in_challenge(
        &stateless_call(&server, "read_file").await,
        &server,
        "a protected tool without a token",
    );
    // What reaches protected data without naming a tool, prompt or resource needs a token:
    // completions (which name prompts and resources) and tasks on both wires, resource
    // subscriptions on the legacy wire (2026-07-28 has none: rmcp answers them as unknown).
    let completion = json!({"ref": {"type": "ref/prompt", "name": "review_file"},
        "argument": {"name": "path", "value": "/"}});
    let subscribe = json!({"uri": "files:///x"});
    let task = json!({"taskId": "t-1"});
    let sid = init.headers["mcp-session-id"]
        .to_str()
        .expect("ascii")
        .to_owned();
    for (method, params) in [
        ("completion/complete", &completion),
        ("resources/subscribe", &subscribe),
        ("tasks/get", &task),
    ] {
        let stateless = server
            .post(
                &[("mcp-protocol-version", STATELESS), ("mcp-method", method)],
                &stateless_body(method, params.clone()),
            )
            .await;
        if method == "resources/subscribe" {
            assert!(
                matches!(stateless.status, 400 | 404),
                "{method}: rmcp's own refusal of a method 2026-07-28 does not have: {stateless:?}"
            );
        } else {
            assert_sign_in_challenge(&stateless, &server, method);
        }
        let body = json!({"jsonrpc": "2.0", "id": 5, "method": method, "params": params});
        let legacy = server
            .post(
                &[("mcp-protocol-version", LEGACY), ("mcp-session-id", &sid)],
                &body.to_string(),
            )
            .await;
        assert_sign_in_challenge(&legacy, &server, method);
    }

    let reader = key.sign(&claims(&issuer.issuer, &server.mcp_url, "files:read"));
    let write = server
        .call(&reader, "write_file", json!({"path": "/x", "content": "y"}))
        .await;
    assert_eq!(write.status, 403, "{write:?}");
    assert!(server.store.lock().expect("store").is_empty());
    server.stop().await;
}

mcp_guard::scopes! {
    /// The scopes of a server in the anonymous posture by its derive.
    pub Scopes {
        /// Read the secret.
        #[baseline]
        READ = "read",
    }
}

#[derive(Clone, ProtectedResource)]
#[protected_resource(scopes = Scopes, anonymous)]
struct OpenServer {
    tool_router: ToolRouter<Self>,
}

#[guarded]
#[tool_router]
impl OpenServer {
    #[public]
    #[tool]
    async fn hello(&self) -> String {
        "hello".into()
    }

    #[protected(scopes = "read")]
    #[tool]
    async fn secret(&self) -> String {
        "secret".into()
    }
}

#[guarded]
#[tool_handler(router = self.tool_router, name = "open", version = "0.1.0")]
impl ServerHandler for OpenServer {}

/// `OpenServer` behind a guard built from its type, then adjusted by `more`.
fn open_server(
    issuer: &TestIssuer,
    listener: tokio::net::TcpListener,
    more: fn(mcp_guard::GuardBuilder) -> mcp_guard::GuardBuilder,
) -> TestServer {
    let iss = issuer.issuer.clone();
    let jwks = issuer.jwks_uri();
    TestServer::serve(
        listener,
        &issuer.issuer,
        |_| {},
        move |options| {
            more(
                Guard::builder()
                    .server::<OpenServer>()
                    .resource(&options.resource)
                    .issuer(Issuer::with_jwks_uri(&iss, &jwks)),
            )
            .build()
            .expect("guard")
        },
        || OpenServer {
            tool_router: OpenServer::tool_router(),
        },
    )
}

#[tokio::test]
async fn the_derive_chooses_the_anonymous_posture_and_the_builder_overrides_it() {
    let issuer = TestIssuer::start(vec![TestKey::rsa1().jwk()]).await;
    let open = open_server(&issuer, bind().await, |b| b);
    assert!(open.running.guard.allows_anonymous());
    let hello = stateless_call(&open, "hello").await;
    assert_eq!(hello.status, 200, "{hello:?}");
    assert!(hello.body.contains("hello"), "{}", hello.body);
    let secret = stateless_call(&open, "secret").await;
    assert_eq!(secret.status, 401, "{secret:?}");
    assert_eq!(secret.challenge().param("scope"), Some("read"));
    open.stop().await;

    let closed = open_server(&issuer, bind().await, |b| b.anonymous(false));
    assert!(!closed.running.guard.allows_anonymous());
    let hello = stateless_call(&closed, "hello").await;
    assert_eq!(
        hello.status, 401,
        "the builder wins over the derive: {hello:?}"
    );
    closed.stop().await;
}

/// Each tool's advertised `securitySchemes` in a `tools/list` answer.
fn schemes_by_tool(list: &Answer) -> std::collections::BTreeMap<String, serde_json::Value> {
    let v = list.json();
    v["result"]["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("not a tools/list result: {v}"))
        .iter()
        .map(|t| {
            (
                t["name"].as_str().expect("name").to_owned(),
                t["_meta"]["securitySchemes"].clone(),
            )
        })
        .collect()
}

#[tokio::test]
async fn security_schemes_say_what_the_posture_enforces() {
    let key = TestKey::rsa1();
    let issuer = TestIssuer::start(vec![key.jwk()]).await;

    // Anonymous access: a token-less list shows the public tool as `noauth` and marks the
    // protected ones with their scopes; the hidden tool stays invisible.
    let open = TestServer::start_with(&issuer, |o| o.allow_anonymous = true).await;
    assert_eq!(
        open.running.guard.auth_declaration(),
        json!({"posture": "optional", "methods": [{"type": "oauth"}]})
    );
    let list = stateless_list(&open).await;
    assert_eq!(list.status, 200, "{list:?}");
    let schemes = schemes_by_tool(&list);
    assert_eq!(schemes["about"], json!([{"type": "noauth"}]));
    assert_eq!(
        schemes["read_file"],
        json!([{"type": "oauth2", "scopes": ["files:read"]}])
    );
    assert_eq!(
        schemes["write_file"],
        json!([{"type": "oauth2", "scopes": ["files:write"]}])
    );
    assert_eq!(
        schemes["whoami"],
        json!([{"type": "oauth2", "scopes": []}]),
        "any signed-in caller"
    );
    assert!(
        !schemes.contains_key("reset_store"),
        "hidden without its scope: {schemes:?}"
    );
    // What is advertised is what runs: `noauth` works without a token, `oauth2` does not.
    for (tool, scheme) in &schemes {
        let call = stateless_call(&open, tool).await;
        if scheme == &json!([{"type": "noauth"}]) {
            assert_eq!(call.status, 200, "{tool}: {call:?}");
        } else {
            assert_eq!(call.status, 401, "{tool}: {call:?}");
        }
    }
    open.stop().await;

    // Sign-in: nothing works without a token, so nothing is advertised as `noauth`.
    let closed = TestServer::start(&issuer).await;
    assert_eq!(
        closed.running.guard.auth_declaration(),
        json!({"posture": "required", "methods": [{"type": "oauth"}]})
    );
    let token = key.sign(&claims(&issuer.issuer, &closed.mcp_url, "files:read"));
    let list = closed.list_with(&format!("Bearer {token}")).await;
    let schemes = schemes_by_tool(&list);
    assert_eq!(schemes["about"], json!([{"type": "oauth2", "scopes": []}]));
    assert!(
        schemes.values().all(|s| s != &json!([{"type": "noauth"}])),
        "{schemes:?}"
    );
    closed.stop().await;
}
