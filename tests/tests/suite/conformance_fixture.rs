//! The MCP conformance suite's pending server-side scope-challenge scenario (SEP-2350;
//! modelcontextprotocol/conformance#480, pull request #481), driven as it describes against
//! the fixture mode (`mcp_guard_examples::conformance_fixture`): the `low` token gets one 403
//! challenge naming the complete scope set of each operation, the `full` token succeeds, in
//! both wire formats; then what an attacker would try next.

use mcp_guard_examples::conformance_fixture::{
    self, FULL_TOKEN, LOW_TOKEN, RunningFixture, SIMPLE_TEXT, STATIC_TEXT, STATIC_URI,
};
use mcp_guard_tests::Answer;
use mcp_guard_tests::server::{LEGACY, STATELESS, bind, post_json, stateless_body};
use serde_json::{Value, json};

/// One invocable primitive of the scenario: its method, its `Mcp-Name`, its params, the scopes
/// its challenge must name, and a piece of its successful answer.
struct Operation {
    method: &'static str,
    name: &'static str,
    params: Value,
    scopes: &'static [&'static str],
    answer: &'static str,
}

fn operations() -> Vec<Operation> {
    vec![
        Operation {
            method: "tools/call",
            name: "test_simple_text",
            params: json!({"name": "test_simple_text", "arguments": {}}),
            scopes: &[
                "mcp:conformance:tools:call",
                "mcp:conformance:tools:test_simple_text",
            ],
            answer: SIMPLE_TEXT,
        },
        Operation {
            method: "resources/read",
            name: STATIC_URI,
            params: json!({"uri": STATIC_URI}),
            scopes: &[
                "mcp:conformance:resources:read",
                "mcp:conformance:resources:static",
            ],
            answer: STATIC_TEXT,
        },
        Operation {
            method: "resources/read",
            name: "test://template/123/data",
            params: json!({"uri": "test://template/123/data"}),
            scopes: &[
                "mcp:conformance:resources:read",
                "mcp:conformance:resources:template:123",
            ],
            answer: "Data for template id 123",
        },
        Operation {
            method: "prompts/get",
            name: "test_simple_prompt",
            params: json!({"name": "test_simple_prompt"}),
            scopes: &[
                "mcp:conformance:prompts:get",
                "mcp:conformance:prompts:test_simple_prompt",
            ],
            answer: "This is a simple prompt for testing.",
        },
    ]
}

async fn start() -> RunningFixture {
    conformance_fixture::start(bind().await, bind().await)
        .await
        .expect("the fixture starts")
}

/// `op` over the 2026-07-28 wire, with `token` if any.
async fn stateless(fx: &RunningFixture, token: Option<&str>, op: &Operation) -> Answer {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![
        ("mcp-protocol-version", STATELESS),
        ("mcp-method", op.method),
        ("mcp-name", op.name),
    ];
    if let Some(a) = &auth {
        headers.push(("authorization", a));
    }
    post_json(
        &fx.mcp_url,
        &headers,
        &stateless_body(op.method, op.params.clone()),
    )
    .await
}

/// A 2025-11-25 session opened with `token`: its id.
async fn session(fx: &RunningFixture, token: &str) -> String {
    let auth = format!("Bearer {token}");
    let init = json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{
        "protocolVersion": LEGACY, "capabilities": {},
        "clientInfo": {"name": "scope-challenge", "version": "0"}}});
    let a = post_json(
        &fx.mcp_url,
        &[("authorization", &auth), ("mcp-protocol-version", LEGACY)],
        &init.to_string(),
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");
    let sid = a.headers["mcp-session-id"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let initialized = json!({"jsonrpc":"2.0","method":"notifications/initialized"});
    let n = post_json(
        &fx.mcp_url,
        &[
            ("authorization", &auth),
            ("mcp-protocol-version", LEGACY),
            ("mcp-session-id", &sid),
        ],
        &initialized.to_string(),
    )
    .await;
    assert_eq!(n.status, 202, "{n:?}");
    sid
}

/// `op` in a 2025-11-25 session.
async fn legacy(fx: &RunningFixture, token: &str, sid: &str, op: &Operation) -> Answer {
    let auth = format!("Bearer {token}");
    let body = json!({"jsonrpc":"2.0","id":3,"method":op.method,"params":op.params});
    post_json(
        &fx.mcp_url,
        &[
            ("authorization", &auth),
            ("mcp-protocol-version", LEGACY),
            ("mcp-session-id", sid),
        ],
        &body.to_string(),
    )
    .await
}

/// The scenario's check of a refusal: 403, one `Bearer` challenge, `insufficient_scope`,
/// the metadata URL, and every scope the operation requires in that one challenge.
#[track_caller]
fn assert_scope_challenge(a: &Answer, fx: &RunningFixture, op: &Operation, wire: &str) {
    let what = format!("{wire} {} {}", op.method, op.name);
    assert_eq!(a.status, 403, "{what}: {a:?}");
    let c = a.challenge();
    assert_eq!(c.scheme, "Bearer", "{what}");
    assert_eq!(c.param("error"), Some("insufficient_scope"), "{what}");
    assert_eq!(
        c.param("resource_metadata"),
        Some(fx.server.guard.metadata_url()),
        "{what}"
    );
    let scope: Vec<&str> = c.param("scope").expect("scope").split(' ').collect();
    for s in op.scopes {
        assert!(scope.contains(s), "{what}: `{s}` missing from {scope:?}");
    }
    assert!(
        !scope.contains(&"mcp:conformance:resources:template:{id}"),
        "{what}: a URI scope is named for the URI read, never as its template: {scope:?}"
    );
}

#[track_caller]
fn assert_success(a: &Answer, op: &Operation, wire: &str) {
    assert_eq!(a.status, 200, "{wire} {}: {a:?}", op.name);
    let v = a.json();
    assert!(v.get("error").is_none(), "{wire} {}: {v}", op.name);
    assert_ne!(v["result"]["isError"], true, "{wire} {}: {v}", op.name);
    assert!(
        v["result"].to_string().contains(op.answer),
        "{wire} {}: {v}",
        op.name
    );
}

#[tokio::test]
async fn the_low_token_gets_the_complete_challenge_and_the_full_token_succeeds() {
    let fx = start().await;
    for op in &operations() {
        assert_scope_challenge(
            &stateless(&fx, Some(LOW_TOKEN), op).await,
            &fx,
            op,
            "2026-07-28",
        );
        assert_success(
            &stateless(&fx, Some(FULL_TOKEN), op).await,
            op,
            "2026-07-28",
        );
    }
    let low = session(&fx, LOW_TOKEN).await;
    let full = session(&fx, FULL_TOKEN).await;
    for op in &operations() {
        assert_scope_challenge(
            &legacy(&fx, LOW_TOKEN, &low, op).await,
            &fx,
            op,
            "2025-11-25",
        );
        assert_success(&legacy(&fx, FULL_TOKEN, &full, op).await, op, "2025-11-25");
    }
    fx.stop().await.expect("stops");
}

#[tokio::test]
async fn the_fixture_cannot_be_talked_into_more_than_its_tokens_hold() {
    let fx = start().await;
    let tool = &operations()[0];

    // No token: discovery works (the anonymous posture), the operation is challenged.
    let none = stateless(&fx, None, tool).await;
    assert_eq!(none.status, 401, "{none:?}");
    assert_eq!(
        none.challenge().param("scope"),
        Some("mcp:conformance:baseline")
    );
    // Tokens that are not exactly the fixture's: unknown, another case, padded.
    for forged in [
        "mcp-conformance-scope-fulll",
        "MCP-CONFORMANCE-SCOPE-FULL",
        "mcp-conformance-scope-full=",
        "mcp-conformance-scope",
    ] {
        let a = stateless(&fx, Some(forged), tool).await;
        assert_eq!(a.status, 401, "{forged}: {a:?}");
        assert_eq!(
            a.challenge().param("error"),
            Some("invalid_token"),
            "{forged}"
        );
    }
    // The full token holds the template scope of id 123 only: another id is another scope.
    let other = Operation {
        method: "resources/read",
        name: "test://template/124/data",
        params: json!({"uri": "test://template/124/data"}),
        scopes: &[
            "mcp:conformance:resources:read",
            "mcp:conformance:resources:template:124",
        ],
        answer: "",
    };
    assert_scope_challenge(
        &stateless(&fx, Some(FULL_TOKEN), &other).await,
        &fx,
        &other,
        "id 124",
    );
    // An id that would smuggle a second scope into the challenge, or break out of it.
    for (uri, status) in [
        ("test://template/123%20mcp:conformance:baseline/data", 403),
        ("test://template/1\"2/data", 403),
    ] {
        let op = Operation {
            method: "resources/read",
            name: uri,
            params: json!({"uri": uri}),
            scopes: &[],
            answer: "",
        };
        let a = stateless(&fx, Some(FULL_TOKEN), &op).await;
        assert_eq!(a.status, status, "{uri}: {a:?}");
        assert!(!a.body.contains("Data for template"), "{uri}: {a:?}");
        if let Some(v) = a.headers.get("www-authenticate") {
            let c = mcp_guard::challenge::parse(v.to_str().expect("ascii")).expect("parsable");
            let scope = c.param("scope").unwrap_or_default();
            assert!(scope.split(' ').all(|s| !s.contains('"')), "{uri}: {scope}");
        }
    }
    // A session opened with the low token is not the full token's.
    let low = session(&fx, LOW_TOKEN).await;
    let a = legacy(&fx, FULL_TOKEN, &low, tool).await;
    assert_eq!(a.status, 404, "another subject's session: {a:?}");
    fx.stop().await.expect("stops");
}

#[tokio::test]
async fn static_tokens_expire_are_checked_when_listed_and_leave_other_tokens_to_the_issuers() {
    use mcp_guard::static_tokens::StaticTokenError;
    use mcp_guard::{ConfigError, Guard, StaticTokens};
    use mcp_guard_tests::{TestIssuer, TestKey, TestServer, claims};
    use std::time::{Duration, SystemTime};

    assert_eq!(
        StaticTokens::new().token("a b", "s", "x").err(),
        Some(StaticTokenError::InvalidToken)
    );
    assert_eq!(
        StaticTokens::new().token("", "s", "x").err(),
        Some(StaticTokenError::InvalidToken)
    );
    assert_eq!(
        StaticTokens::new().token("t", "", "x").err(),
        Some(StaticTokenError::EmptySubject)
    );
    assert!(matches!(
        StaticTokens::new().token("t", "s", "bad\"scope"),
        Err(StaticTokenError::Scope(_))
    ));
    let twice = StaticTokens::new()
        .token("t", "s", "x")
        .and_then(|t| t.token("t", "other", "y"));
    assert_eq!(twice.err(), Some(StaticTokenError::Duplicate));
    assert!(
        !format!(
            "{:?}",
            StaticTokens::new().token("secret-value", "s", "x").unwrap()
        )
        .contains("secret-value"),
        "the token is never printed"
    );

    // Static tokens come beside an issuer: alone, clients would have nowhere to sign in.
    let only_static = Guard::builder()
        .resource("https://mcp.example.com/mcp")
        .static_tokens(StaticTokens::new().token("t", "s", "x").unwrap())
        .build();
    assert!(
        matches!(only_static, Err(ConfigError::MissingIssuer)),
        "{only_static:?}"
    );

    // Beside an issuer: listed tokens by lookup (an expired one refused), the others verified.
    let key = TestKey::rsa1();
    let issuer = TestIssuer::start(vec![key.jwk()]).await;
    let tokens = StaticTokens::new()
        .token("service-reader", "svc", "files:read")
        .and_then(|t| {
            t.token_expiring(
                "service-expired",
                "svc",
                "files:read",
                Some(SystemTime::now() - Duration::from_secs(1)),
            )
        })
        .expect("tokens");
    let server = TestServer::start_configured(&issuer, move |b| b.static_tokens(tokens)).await;
    let listed = server.call("service-reader", "whoami", json!({})).await;
    assert_eq!(listed.status, 200, "{listed:?}");
    let who: Value = serde_json::from_str(&listed.tool_text()).expect("json");
    assert_eq!(who["sub"], "svc");
    assert_eq!(who["scopes"], json!(["files:read"]));
    let expired = server.call("service-expired", "whoami", json!({})).await;
    assert_eq!(expired.status, 401, "{expired:?}");
    assert_eq!(expired.challenge().param("error"), Some("invalid_token"));
    let jwt = key.sign(&claims(&issuer.issuer, &server.mcp_url, "files:read"));
    assert_eq!(server.call(&jwt, "list_files", json!({})).await.status, 200);
    let unknown = server.call("service-unknown", "whoami", json!({})).await;
    assert_eq!(unknown.status, 401, "{unknown:?}");
    server.stop().await;
}
