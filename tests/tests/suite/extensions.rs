//! The extension points, through real HTTP: a check after verification (revocation) and the
//! scope check on a plain axum route (the audit sink is in `audit`).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use axum::{Extension, Router, routing::get};
use mcp_guard::policy::{ArgRule, ArgTest, ArgumentsError, PolicyError};
use mcp_guard::{CheckError, ConfigError, Principal, Requirement};
use mcp_guard_examples::files;
use mcp_guard_examples::server::ServerOptions;
use mcp_guard_tests::server::bind;
use mcp_guard_tests::{Answer, TestIssuer, TestKey, TestServer, claims};
use serde_json::json;

/// A token for the example server with these scopes and this `jti`.
fn token(key: &TestKey, issuer: &TestIssuer, audience: &str, scope: &str, jti: &str) -> String {
    let mut c = claims(&issuer.issuer, audience, scope);
    c["jti"] = json!(jti);
    key.sign(&c)
}

#[tokio::test]
async fn a_revoked_token_is_refused_on_the_next_request_although_it_is_cached() {
    let key = TestKey::rsa1();
    let issuer = TestIssuer::start(vec![key.jwk()]).await;
    let revoked: Arc<Mutex<HashSet<String>>> = Arc::default();
    let list = revoked.clone();
    let server = TestServer::start_configured(&issuer, |b| {
        b.check(move |caller: Principal| {
            let refused = caller
                .token_id()
                .is_some_and(|jti| list.lock().expect("list").contains(jti));
            async move {
                if refused {
                    return Err(CheckError::Refused("the token has been revoked".into()));
                }
                Ok(())
            }
        })
    })
    .await;
    let first = token(&key, &issuer, &server.mcp_url, "files:read", "jti-kept");
    let second = token(&key, &issuer, &server.mcp_url, "files:read", "jti-revoked");
    for t in [&first, &second] {
        let a = server.call(t, "list_files", json!({})).await;
        assert_eq!(a.status, 200, "{}", a.body);
    }
    let verified = server.running.guard.verification_count();

    revoked
        .lock()
        .expect("list")
        .insert("jti-revoked".to_owned());
    let refused = server.call(&second, "list_files", json!({})).await;
    assert_eq!(refused.status, 401, "{}", refused.body);
    let challenge = refused.challenge();
    assert_eq!(challenge.param("error"), Some("invalid_token"));
    assert_eq!(
        challenge.param("error_description"),
        Some("the token has been revoked")
    );
    assert!(challenge.param("resource_metadata").is_some());
    refused.assert_not_echoing(&second, "a refused token is not echoed");
    let kept = server.call(&first, "list_files", json!({})).await;
    assert_eq!(kept.status, 200, "{}", kept.body);
    // The check ran on cached tokens: nothing was verified again.
    assert_eq!(server.running.guard.verification_count(), verified);
    server.stop().await;
}

#[tokio::test]
async fn a_check_that_cannot_be_made_refuses_with_503_and_runs_nothing() {
    let key = TestKey::rsa1();
    let issuer = TestIssuer::start(vec![key.jwk()]).await;
    let server = TestServer::start_configured(&issuer, |b| {
        b.check(|_: Principal| async {
            Err(CheckError::Unavailable(
                "revocation list unreachable".into(),
            ))
        })
    })
    .await;
    let admin = token(&key, &issuer, &server.mcp_url, "files:admin", "jti-a");
    let a = server
        .call(&admin, "write_file", json!({"path": "/x", "content": "y"}))
        .await;
    assert_eq!(a.status, 503, "{}", a.body);
    assert!(a.headers.contains_key("retry-after"));
    assert!(
        !a.body.contains("revocation list unreachable"),
        "{}",
        a.body
    );
    assert!(server.store.lock().expect("store").is_empty());
    server.stop().await;
}

#[tokio::test]
async fn a_check_that_never_answers_times_out_into_503() {
    let key = TestKey::rsa1();
    let issuer = TestIssuer::start(vec![key.jwk()]).await;
    let server = TestServer::start_configured(&issuer, |b| {
        b.check(|_: Principal| std::future::pending::<Result<(), CheckError>>())
            .check_timeout(std::time::Duration::from_millis(200))
    })
    .await;
    let admin = token(&key, &issuer, &server.mcp_url, "files:admin", "jti-t");
    let a = server
        .call(&admin, "write_file", json!({"path": "/x", "content": "y"}))
        .await;
    assert_eq!(a.status, 503, "{a:?}");
    assert!(server.store.lock().expect("store").is_empty());
    server.stop().await;
}

/// Serves the example's guard with one plain route, `/admin/report`, behind
/// `Guard::require(files:admin)`, and its metadata.
async fn admin_route(issuer: &TestIssuer) -> (String, String, tokio::task::JoinHandle<()>) {
    let listener = bind().await;
    let addr = listener.local_addr().expect("addr");
    let mcp_url = format!("http://{addr}/mcp");
    let guard = files::guard(&ServerOptions::new(&issuer.issuer, &mcp_url, addr)).expect("guard");
    async fn report(Extension(caller): Extension<Principal>) -> String {
        format!("report for {}", caller.subject())
    }
    let admin = Requirement::scopes(["files:admin"]).expect("scope");
    let app = Router::new()
        .route("/admin/report", get(report))
        .route_layer(guard.require(admin).expect("declared scope"))
        .merge(guard.metadata_router());
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.expect("serve");
    });
    (format!("http://{addr}/admin/report"), mcp_url, task)
}

async fn get_with(url: &str, authorization: Option<&str>) -> Answer {
    let mut req = reqwest::Client::new().get(url);
    if let Some(a) = authorization {
        req = req.header("authorization", a);
    }
    let resp = req.send().await.expect("request");
    Answer {
        status: resp.status().as_u16(),
        headers: resp.headers().clone(),
        body: resp.text().await.expect("body"),
    }
}

#[tokio::test]
async fn a_plain_axum_route_gets_the_same_checks_and_challenges() {
    let key = TestKey::rsa1();
    let issuer = TestIssuer::start(vec![key.jwk()]).await;
    let (url, mcp_url, task) = admin_route(&issuer).await;

    let none = get_with(&url, None).await;
    assert_eq!(none.status, 401);
    let c = none.challenge();
    assert_eq!(c.scheme, "Bearer");
    assert!(
        c.param("resource_metadata")
            .is_some_and(|m| m.contains("/.well-known/oauth-protected-resource"))
    );
    assert_eq!(c.param("error"), None);

    let reader = token(&key, &issuer, &mcp_url, "files:read", "jti-1");
    let short = get_with(&url, Some(&format!("Bearer {reader}"))).await;
    assert_eq!(short.status, 403, "{}", short.body);
    let c = short.challenge();
    assert_eq!(c.param("error"), Some("insufficient_scope"));
    let scope: HashSet<&str> = c.param("scope").expect("scope").split(' ').collect();
    assert!(scope.contains("files:admin"), "{scope:?}");
    short.assert_not_echoing(&reader, "403");

    let admin = token(&key, &issuer, &mcp_url, "files:admin", "jti-2");
    let ok = get_with(&url, Some(&format!("Bearer {admin}"))).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.body, "report for alice");

    // Another audience, a forged signature, two credentials: refused as on the MCP endpoint.
    let foreign = token(
        &key,
        &issuer,
        "https://other.example/mcp",
        "files:admin",
        "jti-3",
    );
    let mut forged = admin.clone();
    forged.truncate(forged.len() - 4);
    forged.push_str("AAAA");
    for bad in [&foreign, &forged] {
        let a = get_with(&url, Some(&format!("Bearer {bad}"))).await;
        assert_eq!(a.status, 401, "{}", a.body);
        assert_eq!(a.challenge().param("error"), Some("invalid_token"));
        a.assert_not_echoing(bad, "401");
    }
    let query = get_with(&format!("{url}?access_token={admin}"), None).await;
    assert_eq!(
        query.status, 400,
        "a token in the query is malformed: {}",
        query.body
    );
    task.abort();
}

#[tokio::test]
async fn a_route_requirement_naming_an_undeclared_scope_is_refused_at_start_up() {
    let issuer = TestIssuer::start(Vec::new()).await;
    let listener = bind().await;
    let addr = listener.local_addr().expect("addr");
    let guard = files::guard(&ServerOptions::new(
        &issuer.issuer,
        &format!("http://{addr}/mcp"),
        addr,
    ))
    .expect("guard");
    // Argument rules cannot be decided on a plain route: refused, never silently dropped.
    fn always(
        _: Option<&serde_json::Map<String, serde_json::Value>>,
    ) -> Result<bool, ArgumentsError> {
        Ok(true)
    }
    let rule = ArgRule::typed("path", ArgTest::Truthy, ["files:admin"], always).expect("rule");
    let with_rule = Requirement::scopes(["files:read"])
        .expect("scope")
        .when(rule);
    assert_eq!(
        guard.require(with_rule).err(),
        Some(ConfigError::RouteArgumentRules)
    );
    let typo = Requirement::scopes(["files:admn"]).expect("a valid scope token");
    assert_eq!(
        guard.require(typo).err(),
        Some(ConfigError::Policy(PolicyError::UndeclaredScope(
            "files:admn".into()
        )))
    );
}

#[tokio::test]
async fn a_check_refusal_with_hostile_text_cannot_break_the_challenge_header() {
    let key = TestKey::rsa1();
    let issuer = TestIssuer::start(vec![key.jwk()]).await;
    let server = TestServer::start_configured(&issuer, |b| {
        b.check(|_: Principal| async {
            Err(CheckError::Refused(
                "revoked\", error=\"none\"\r\nSet-Cookie: x=1 \u{7f}é".into(),
            ))
        })
    })
    .await;
    let reader = token(&key, &issuer, &server.mcp_url, "files:read", "jti-h");
    let a = server.call(&reader, "list_files", json!({})).await;
    assert_eq!(a.status, 401, "{a:?}");
    assert!(a.headers.get("set-cookie").is_none());
    let c = a.challenge();
    assert_eq!(c.count("error"), 1, "one error parameter: {c:?}");
    assert_eq!(c.param("error"), Some("invalid_token"));
    let description = c.param("error_description").expect("description");
    assert!(
        description
            .chars()
            .all(|ch| ch == ' ' || ch.is_ascii_graphic()),
        "{description:?}"
    );
    let body: serde_json::Value = serde_json::from_str(&a.body).expect("JSON body");
    assert_eq!(body["error"], "invalid_token", "{body}");
    server.stop().await;
}
