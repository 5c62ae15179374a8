//! Delegation (RFC 8693 §4.1): the `act` chain and `azp` reach the tool as the token says,
//! malformed chains are refused as invalid tokens, and `#[protected(actor = ...)]` decides the
//! same way behind the HTTP layer, in-process and in `tools/list`; the audit event names the
//! actors.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use mcp_guard::audit::AuditEvent;
use mcp_guard::rmcp::FORBIDDEN;
use mcp_guard::{Guard, Issuer, Principal, ProtectedResource, guarded, protected, testing};
use mcp_guard_tests::server::bind;
use mcp_guard_tests::{Answer, TestIssuer, TestKey, TestServer, claims};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::model::CallToolRequestParams;
use rmcp::{ServerHandler, tool, tool_handler, tool_router};
use serde_json::{Value, json};

mcp_guard::scopes! {
    /// An assistant service's scopes.
    pub Scopes {
        /// Use the service.
        #[baseline]
        USE = "assist:use",
    }
}

/// A service some of whose tools only agents, or only people, may call.
#[derive(Clone, ProtectedResource)]
#[protected_resource(scopes = Scopes, name = "assistant")]
pub struct Assistant {
    tool_router: ToolRouter<Self>,
}

impl Assistant {
    fn new() -> Self {
        Self {
            tool_router: Self::tool_router(),
        }
    }
}

#[guarded]
#[tool_router]
impl Assistant {
    /// Who is calling, and through whom.
    #[protected(scopes = USE)]
    #[tool]
    async fn whoami(&self, caller: Principal) -> String {
        let actors: Vec<Value> = caller
            .actors()
            .map(|a| json!({"sub": a.subject(), "iss": a.issuer(), "client_id": a.client_id()}))
            .collect();
        json!({
            "sub": caller.subject(),
            "azp": caller.azp(),
            "has_actor": caller.has_actor(),
            "actor": caller.actor().map(|a| a.subject()),
            "prior": caller.prior_actors().map(|a| a.subject()).collect::<Vec<_>>(),
            "actors": actors,
        })
        .to_string()
    }

    /// Only on someone's behalf.
    #[protected(scopes = USE, actor = "required")]
    #[tool]
    async fn on_behalf(&self) -> String {
        "on behalf".to_owned()
    }

    /// Only in person.
    #[protected(scopes = USE, actor = "forbidden")]
    #[tool]
    async fn in_person(&self) -> String {
        "in person".to_owned()
    }

    /// Only through the agent `agent-a`.
    #[protected(scopes = USE, actor = ["agent-a"])]
    #[tool]
    async fn agent_a_only(&self) -> String {
        "agent a".to_owned()
    }

    /// Only on someone's behalf, and unseen by others.
    #[protected(scopes = USE, actor = "required", hidden)]
    #[tool]
    async fn hidden_delegated(&self) -> String {
        "hidden".to_owned()
    }
}

#[guarded]
#[tool_handler(router = self.tool_router, name = "assistant", version = "0.1.0")]
impl ServerHandler for Assistant {
    fn get_info(&self) -> rmcp::model::ServerConfig {
        rmcp::model::ServerConfig::new(
            rmcp::model::ServerCapabilities::builder()
                .enable_tools()
                .build(),
        )
    }
}

/// The guard the HTTP test server runs, for `issuer` at `resource`.
fn guard_for(
    issuer: &TestIssuer,
    resource: &str,
    more: impl FnOnce(mcp_guard::GuardBuilder) -> mcp_guard::GuardBuilder,
) -> Guard {
    more(
        Guard::builder()
            .server::<Assistant>()
            .resource(resource)
            .issuer(Issuer::with_jwks_uri(&issuer.issuer, issuer.jwks_uri())),
    )
    .build()
    .expect("guard builds")
}

/// The service behind the real guard layer.
async fn start(
    issuer: &TestIssuer,
    more: impl FnOnce(mcp_guard::GuardBuilder) -> mcp_guard::GuardBuilder,
) -> TestServer {
    TestServer::serve(
        bind().await,
        &issuer.issuer,
        |_| {},
        |options| guard_for(issuer, &options.resource, more),
        Assistant::new,
    )
}

/// A signed token for the server holding `assist:use`, with `act` (and `azp`) when given.
fn token(key: &TestKey, issuer: &TestIssuer, server: &TestServer, act: Option<Value>) -> String {
    let mut c = claims(&issuer.issuer, &server.mcp_url, "assist:use");
    c["azp"] = json!("assistant-ui");
    if let Some(act) = act {
        c["act"] = act;
    }
    key.sign(&c)
}

/// The tool names a stateless `tools/list` shows this token.
async fn listed(server: &TestServer, token: &str) -> BTreeSet<String> {
    let a = server.list_with(&format!("Bearer {token}")).await;
    assert_eq!(a.status, 200, "tools/list: {a:?}");
    a.json()["result"]["tools"]
        .as_array()
        .expect("a tool list")
        .iter()
        .map(|t| t["name"].as_str().expect("a name").to_owned())
        .collect()
}

fn names(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// Asserts the layer's refusal of a call for a missing or unwanted actor: 403 before rmcp,
/// no `WWW-Authenticate` challenge (no scope can fix it), the reason in the body.
#[track_caller]
fn assert_actor_refusal(a: &Answer, tool: &str) {
    assert_eq!(a.status, 403, "{tool}: {a:?}");
    assert!(
        a.headers.get("www-authenticate").is_none(),
        "{tool}: an actor cannot be obtained by asking for scopes: {a:?}"
    );
    assert!(
        a.body.contains(tool) && a.body.contains("actor"),
        "{tool}: the body says why: {}",
        a.body
    );
}

#[tokio::test]
async fn the_tool_sees_azp_and_the_actor_chain_outermost_first() {
    let key = TestKey::rsa1();
    let issuer = TestIssuer::start(vec![key.jwk()]).await;
    let server = start(&issuer, |b| b).await;

    let act = json!({
        "sub": "agent-b",
        "iss": "https://agents.example",
        "client_id": "agent-b-client",
        "act": {"sub": "agent-a", "act": {"sub": "gateway", "client_id": "gw"}},
    });
    let delegated = token(&key, &issuer, &server, Some(act));
    let a = server.call(&delegated, "whoami", json!({})).await;
    assert_eq!(a.status, 200, "{a:?}");
    let seen: Value = serde_json::from_str(&a.tool_text()).expect("JSON");
    assert_eq!(
        seen,
        json!({
            "sub": "alice",
            "azp": "assistant-ui",
            "has_actor": true,
            "actor": "agent-b",
            "prior": ["agent-a", "gateway"],
            "actors": [
                {"sub": "agent-b", "iss": "https://agents.example", "client_id": "agent-b-client"},
                {"sub": "agent-a", "iss": null, "client_id": null},
                {"sub": "gateway", "iss": null, "client_id": "gw"},
            ],
        })
    );

    let plain = token(&key, &issuer, &server, None);
    let a = server.call(&plain, "whoami", json!({})).await;
    let seen: Value = serde_json::from_str(&a.tool_text()).expect("JSON");
    assert_eq!(seen["has_actor"], json!(false));
    assert_eq!(seen["actor"], Value::Null);
    assert_eq!(seen["actors"], json!([]));
    assert_eq!(seen["azp"], json!("assistant-ui"));
    server.stop().await;
}

#[tokio::test]
async fn malformed_act_claims_are_invalid_tokens() {
    let key = TestKey::rsa1();
    let issuer = TestIssuer::start(vec![key.jwk()]).await;
    let server = start(&issuer, |b| b).await;

    let mut nine_deep = json!({"sub": "a9"});
    for i in (1..9).rev() {
        nine_deep = json!({"sub": format!("a{i}"), "act": nine_deep});
    }
    let mut eight_deep = json!({"sub": "a8"});
    for i in (1..8).rev() {
        eight_deep = json!({"sub": format!("a{i}"), "act": eight_deep});
    }
    let malformed = [
        ("a string", json!("agent-a")),
        ("null", Value::Null),
        ("an array", json!([{"sub": "agent-a"}])),
        ("no sub", json!({"client_id": "agent-a"})),
        ("an empty sub", json!({"sub": ""})),
        ("a numeric sub", json!({"sub": 7})),
        ("a numeric iss", json!({"sub": "agent-a", "iss": 1})),
        (
            "a nested string",
            json!({"sub": "agent-a", "act": "agent-b"}),
        ),
        (
            "a nested actor without sub",
            json!({"sub": "agent-a", "act": {"iss": "https://x"}}),
        ),
        ("nine actors deep", nine_deep),
    ];
    for (what, act) in malformed {
        let bad = token(&key, &issuer, &server, Some(act));
        for tool in ["whoami", "in_person", "on_behalf"] {
            let a = server.call(&bad, tool, json!({})).await;
            assert_eq!(a.status, 401, "{what}, {tool}: {a:?}");
            let challenge = a.challenge();
            assert_eq!(
                challenge.param("error"),
                Some("invalid_token"),
                "{what}: {a:?}"
            );
            a.assert_not_echoing(&bad, what);
        }
    }

    // Eight actors deep is the bound, not past it.
    let deep = token(&key, &issuer, &server, Some(eight_deep));
    let a = server.call(&deep, "whoami", json!({})).await;
    assert_eq!(a.status, 200, "{a:?}");
    let seen: Value = serde_json::from_str(&a.tool_text()).expect("JSON");
    assert_eq!(seen["actors"].as_array().map(Vec::len), Some(8));

    // An `azp` that is not a string is refused the same way.
    let mut c = claims(&issuer.issuer, &server.mcp_url, "assist:use");
    c["azp"] = json!(["assistant-ui"]);
    let a = server.call(&key.sign(&c), "whoami", json!({})).await;
    assert_eq!(a.status, 401, "{a:?}");
    assert_eq!(a.challenge().param("error"), Some("invalid_token"));
    server.stop().await;
}

#[tokio::test]
async fn actor_requirements_are_enforced_by_the_layer() {
    let key = TestKey::rsa1();
    let issuer = TestIssuer::start(vec![key.jwk()]).await;
    let server = start(&issuer, |b| b).await;
    let plain = token(&key, &issuer, &server, None);
    let by_a = token(&key, &issuer, &server, Some(json!({"sub": "agent-a"})));
    // `agent-b` acts now; `agent-a` only acted before it, which does not count.
    let by_b_for_a = token(
        &key,
        &issuer,
        &server,
        Some(json!({"sub": "agent-b", "act": {"sub": "agent-a"}})),
    );

    // Required: refused without an actor, with the status and no challenge.
    assert_actor_refusal(
        &server.call(&plain, "on_behalf", json!({})).await,
        "on_behalf",
    );
    for t in [&by_a, &by_b_for_a] {
        let a = server.call(t, "on_behalf", json!({})).await;
        assert_eq!(a.status, 200, "{a:?}");
        assert_eq!(a.tool_text(), "on behalf");
    }

    // Forbidden: refused with one, allowed without.
    for t in [&by_a, &by_b_for_a] {
        assert_actor_refusal(&server.call(t, "in_person", json!({})).await, "in_person");
    }
    let a = server.call(&plain, "in_person", json!({})).await;
    assert_eq!((a.status, a.tool_text()), (200, "in person".to_owned()));

    // The allow-list judges the current actor only.
    let a = server.call(&by_a, "agent_a_only", json!({})).await;
    assert_eq!((a.status, a.tool_text()), (200, "agent a".to_owned()));
    for t in [&plain, &by_b_for_a] {
        assert_actor_refusal(
            &server.call(t, "agent_a_only", json!({})).await,
            "agent_a_only",
        );
    }

    // Hidden: a caller without an actor is answered as if the tool did not exist.
    let a = server.call(&plain, "hidden_delegated", json!({})).await;
    assert_eq!(a.status, 200, "{a:?}");
    assert!(a.json()["error"].is_object(), "concealed: {a:?}");
    assert!(!a.body.contains("hidden"), "{a:?}");
    let a = server.call(&by_a, "hidden_delegated", json!({})).await;
    assert_eq!(a.tool_text(), "hidden");

    // A token without the scope is still challenged for it first (scopes can be asked for).
    let mut c = claims(&issuer.issuer, &server.mcp_url, "other:scope");
    c["act"] = json!({"sub": "agent-a"});
    let unscoped = key.sign(&c);
    let a = server.call(&unscoped, "in_person", json!({})).await;
    assert_eq!(a.status, 403, "{a:?}");
    assert_eq!(a.challenge().param("error"), Some("insufficient_scope"));

    // The same answers in a legacy session, where the layer reads the call from the body.
    let session = server.open_session(&plain).await;
    let a = server
        .call_in_session(&plain, &session, "on_behalf", json!({}))
        .await;
    assert_actor_refusal(&a, "on_behalf");
    let a = server
        .call_in_session(&plain, &session, "in_person", json!({}))
        .await;
    assert_eq!((a.status, a.tool_text()), (200, "in person".to_owned()));
    server.stop().await;
}

#[tokio::test]
async fn lists_and_the_in_process_check_agree_with_the_layer() {
    let key = TestKey::rsa1();
    let issuer = TestIssuer::start(vec![key.jwk()]).await;
    let server = start(&issuer, |b| b).await;
    // The same guard configuration, for the in-process path (no HTTP layer).
    let guard = guard_for(&issuer, &server.mcp_url, |b| b);
    let plain = token(&key, &issuer, &server, None);
    let by_a = token(&key, &issuer, &server, Some(json!({"sub": "agent-a"})));
    let by_b_for_a = token(
        &key,
        &issuer,
        &server,
        Some(json!({"sub": "agent-b", "act": {"sub": "agent-a"}})),
    );

    // What each caller may call; the hidden tool is also what each one sees listed.
    let cases = [
        (&plain, names(&["whoami", "in_person"])),
        (
            &by_a,
            names(&["whoami", "on_behalf", "agent_a_only", "hidden_delegated"]),
        ),
        (
            &by_b_for_a,
            names(&["whoami", "on_behalf", "hidden_delegated"]),
        ),
    ];
    let all = [
        "whoami",
        "on_behalf",
        "in_person",
        "agent_a_only",
        "hidden_delegated",
    ];
    for (token, allowed) in &cases {
        // Over HTTP.
        let mut by_layer = BTreeSet::new();
        for tool in all {
            let a = server.call(token, tool, json!({})).await;
            if a.status == 200
                && a.json()["result"]["isError"] != json!(true)
                && a.json()["error"].is_null()
            {
                by_layer.insert(tool.to_owned());
            }
        }
        assert_eq!(&by_layer, allowed, "the layer");
        // Listed: the visible tools are the allowed ones plus the listed tools refused with 403.
        let visible = listed(&server, token).await;
        let mut expected_list = allowed.clone();
        expected_list
            .extend(["on_behalf", "in_person", "agent_a_only", "whoami"].map(str::to_owned));
        assert_eq!(visible, expected_list, "tools/list");

        // In process, as the same verified caller.
        let caller = guard.authenticate(token).await.expect("the token verifies");
        let client = testing::connect(&guard, Assistant::new(), Some(caller))
            .await
            .expect("connects");
        // A hidden tool is refused as rmcp refuses a tool it does not have.
        let unknown = client
            .call_tool(CallToolRequestParams::new("no_such_tool"))
            .await
            .expect_err("no such tool");
        let not_found = testing::error_code(&unknown);
        assert_ne!(not_found, Some(FORBIDDEN));
        let mut in_process = BTreeSet::new();
        for tool in all {
            match client.call_tool(CallToolRequestParams::new(tool)).await {
                Ok(r) if r.is_error != Some(true) => {
                    in_process.insert(tool.to_owned());
                }
                Ok(r) => panic!("{tool}: an error result {r:?}"),
                Err(e) => {
                    let expected = if tool == "hidden_delegated" {
                        not_found
                    } else {
                        Some(FORBIDDEN)
                    };
                    assert_eq!(testing::error_code(&e), expected, "{tool}: {e:?}");
                }
            }
        }
        assert_eq!(&in_process, allowed, "in process");
        let listed_in_process: BTreeSet<String> = client
            .list_all_tools()
            .await
            .expect("lists")
            .into_iter()
            .map(|t| t.name.into_owned())
            .collect();
        assert_eq!(listed_in_process, visible, "in-process list");
        client.close().await;
    }
    server.stop().await;
}

// One thread, so that the captured log sees the server's tasks too.
#[tokio::test(flavor = "current_thread")]
async fn audit_events_name_the_actor_chain_never_the_token() {
    let logs = mcp_guard_tests::logs::CapturedLogs::start();
    let key = TestKey::rsa1();
    let issuer = TestIssuer::start(vec![key.jwk()]).await;
    let seen: Arc<Mutex<Vec<Vec<String>>>> = Arc::default();
    let sink = seen.clone();
    let server = start(&issuer, move |b| {
        b.audit_sink(move |e: &AuditEvent<'_>| {
            let chain = e
                .principal
                .map(|p| p.actors().map(|a| a.subject().to_owned()).collect())
                .unwrap_or_default();
            sink.lock().expect("sink").push(chain);
        })
    })
    .await;
    let act = json!({"sub": "agent-b", "act": {"sub": "agent-a"}});
    let delegated = token(&key, &issuer, &server, Some(act));
    let plain = token(&key, &issuer, &server, None);

    assert_eq!(
        server.call(&delegated, "on_behalf", json!({})).await.status,
        200
    );
    assert_eq!(
        server.call(&delegated, "in_person", json!({})).await.status,
        403
    );
    assert_eq!(
        server.call(&plain, "in_person", json!({})).await.status,
        200
    );
    server.stop().await;

    let log = logs.text();
    let audit: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("mcp_guard::audit"))
        .collect();
    assert_eq!(audit.len(), 3, "one event per decision:\n{log}");
    assert!(
        audit[0].contains(r#"decision="allowed""#)
            && audit[0].contains(r#"actors=["agent-b","agent-a"]"#),
        "{}",
        audit[0]
    );
    assert!(
        audit[1].contains(r#"reason="forbidden""#)
            && audit[1].contains(r#"actors=["agent-b","agent-a"]"#),
        "{}",
        audit[1]
    );
    assert!(
        audit[2].contains(r#"decision="allowed""#) && !audit[2].contains("actors="),
        "no actor, no field: {}",
        audit[2]
    );
    for secret in [&delegated, &plain] {
        assert!(
            !log.contains(secret.as_str()),
            "a token appeared in the logs"
        );
        assert!(!log.contains(secret.rsplit('.').next().unwrap()));
    }
    let seen = seen.lock().expect("sink").clone();
    assert_eq!(
        seen,
        [
            vec!["agent-b".to_owned(), "agent-a".to_owned()],
            vec!["agent-b".to_owned(), "agent-a".to_owned()],
            vec![],
        ],
        "the sink sees the same chain"
    );
}
