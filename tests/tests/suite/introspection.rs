//! Opaque access tokens through RFC 7662 introspection, end to end: an introspection endpoint
//! the tests serve on 127.0.0.1 (it authenticates the resource server with
//! `client_secret_basic` or `client_secret_post`, counts calls, and answers from a table the
//! tests control or with staged faults), the example server configured with
//! `--introspection-endpoint` (next to a JWT issuer), and guards built directly for cache
//! control and introspection-only setups.
//!
//! Active tokens with the right audience are honoured with their scopes; inactive, foreign,
//! audience-less and expired ones get 401 `invalid_token`; an endpoint that cannot answer
//! (error status, refused connection, garbage, timeout, rejected client credentials) gets 503,
//! never a success. Answers are cached no longer than the token lives.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine as _;
use mcp_guard::Guard;
use mcp_guard::introspection::{ClientAuth, Introspection};
use mcp_guard_examples::files;
use mcp_guard_examples::server::ServerOptions;
use mcp_guard_tests::{Answer, FloodServer, TestIssuer, TestKey, TestServer, claims, now};
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------------
// The introspection endpoint
// ---------------------------------------------------------------------------------------------

/// How the endpoint answers.
#[derive(Debug, Clone)]
enum Mode {
    /// From the table (unknown tokens: `{"active": false}`).
    Normal,
    /// This status, with an OAuth error body.
    Status(u16),
    /// 200 with a body that is not JSON.
    Garbage,
    /// 200 with JSON that is not an object.
    NotAnObject,
    /// From the table, after this delay.
    Slow(Duration),
    /// A redirect elsewhere.
    Redirect,
}

/// One introspection request as received.
#[derive(Debug, Clone)]
struct Seen {
    /// `basic`, `post`, `both` or `none`.
    method: &'static str,
    token: Option<String>,
    hint: Option<String>,
}

struct EndpointState {
    client_id: String,
    secret: String,
    table: Mutex<HashMap<String, Value>>,
    mode: Mutex<Mode>,
    calls: AtomicUsize,
    seen: Mutex<Vec<Seen>>,
}

/// An RFC 7662 endpoint on 127.0.0.1.
struct Endpoint {
    /// `http://127.0.0.1:PORT`.
    origin: String,
    /// `{origin}/introspect`.
    url: String,
    state: Arc<EndpointState>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The resource server's credentials at the endpoint: characters that must be
/// form-urlencoded before Basic encoding (RFC 6749 §2.3.1).
const CLIENT_ID: &str = "mcp-files:rs";
const SECRET: &str = "s3cr3t/+ &=%:é";

impl Endpoint {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1");
        let origin = format!("http://{}", listener.local_addr().expect("addr"));
        let state = Arc::new(EndpointState {
            client_id: CLIENT_ID.to_owned(),
            secret: SECRET.to_owned(),
            table: Mutex::new(HashMap::new()),
            mode: Mutex::new(Mode::Normal),
            calls: AtomicUsize::new(0),
            seen: Mutex::new(Vec::new()),
        });
        let app = Router::new()
            .route("/introspect", post(introspect))
            .with_state(state.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            url: format!("{origin}/introspect"),
            origin,
            state,
            task,
        }
    }

    fn set(&self, token: &str, answer: Value) {
        self.state
            .table
            .lock()
            .unwrap()
            .insert(token.to_owned(), answer);
    }

    fn set_mode(&self, mode: Mode) {
        *self.state.mode.lock().unwrap() = mode;
    }

    fn calls(&self) -> usize {
        self.state.calls.load(Ordering::SeqCst)
    }

    fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }
}

/// `application/x-www-form-urlencoded` decoding of one name or value.
fn form_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz");
                match u8::from_str_radix(hex, 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_form(body: &str) -> HashMap<String, String> {
    body.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (form_decode(k), form_decode(v))
        })
        .collect()
}

fn oauth_error(status: StatusCode, error: &str) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::WWW_AUTHENTICATE, "Basic realm=\"introspection\""),
        ],
        json!({ "error": error }).to_string(),
    )
        .into_response()
}

async fn introspect(
    State(state): State<Arc<EndpointState>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    state.calls.fetch_add(1, Ordering::SeqCst);
    let form = parse_form(&body);
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| {
            s.split_once(':')
                .map(|(i, p)| (form_decode(i), form_decode(p)))
        });
    let post = match (form.get("client_id"), form.get("client_secret")) {
        (Some(i), Some(s)) => Some((i.clone(), s.clone())),
        _ => None,
    };
    let method = match (&basic, &post) {
        (Some(_), Some(_)) => "both",
        (Some(_), None) => "basic",
        (None, Some(_)) => "post",
        (None, None) => "none",
    };
    state.seen.lock().unwrap().push(Seen {
        method,
        token: form.get("token").cloned(),
        hint: form.get("token_type_hint").cloned(),
    });
    let creds = match (basic, post) {
        (Some(c), None) | (None, Some(c)) => c,
        // RFC 6749 §2.3: one method per request.
        (Some(_), Some(_)) => return oauth_error(StatusCode::BAD_REQUEST, "invalid_request"),
        (None, None) => return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client"),
    };
    if creds.0 != state.client_id || creds.1 != state.secret {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client");
    }
    let mode = state.mode.lock().unwrap().clone();
    match mode {
        Mode::Normal => {}
        Mode::Status(code) => {
            return oauth_error(
                StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                "server_error",
            );
        }
        Mode::Garbage => {
            return (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                "<html>maintenance",
            )
                .into_response();
        }
        Mode::NotAnObject => {
            return (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                "[{\"active\":true}]",
            )
                .into_response();
        }
        Mode::Slow(delay) => tokio::time::sleep(delay).await,
        Mode::Redirect => {
            return (
                StatusCode::TEMPORARY_REDIRECT,
                [(header::LOCATION, "http://127.0.0.1:9/introspect")],
            )
                .into_response();
        }
    }
    let answer = form
        .get("token")
        .and_then(|t| state.table.lock().unwrap().get(t).cloned())
        .unwrap_or_else(|| json!({ "active": false }));
    axum::Json(answer).into_response()
}

// ---------------------------------------------------------------------------------------------
// Servers and helpers
// ---------------------------------------------------------------------------------------------

/// The example server trusting `issuer` for JWTs and `ep` for opaque tokens, configured the
/// way its flags do it (`auth`: `basic` or `post`).
async fn example_with(issuer: &TestIssuer, ep: &Endpoint, auth: &str, secret: &str) -> TestServer {
    TestServer::start_with(issuer, |o| {
        o.introspection_endpoint = Some(ep.url.clone());
        o.introspection_client_id = Some(CLIENT_ID.to_owned());
        o.introspection_client_secret = Some(secret.to_owned());
        o.introspection_auth = auth.to_owned();
    })
    .await
}

/// The example file server behind a guard that trusts introspection alone (no JWT issuer),
/// built directly so that the introspection settings can be tuned.
async fn introspection_only(
    ep: &Endpoint,
    tune: impl FnOnce(Introspection) -> Introspection,
) -> TestServer {
    introspection_only_with(ep, tune, |b| b).await
}

/// [`introspection_only`] with the guard builder adjusted too.
async fn introspection_only_with(
    ep: &Endpoint,
    tune: impl FnOnce(Introspection) -> Introspection,
    adjust: impl FnOnce(mcp_guard::GuardBuilder) -> mcp_guard::GuardBuilder,
) -> TestServer {
    let listener = mcp_guard_tests::server::bind().await;
    let introspection = tune(
        Introspection::new(&ep.url, CLIENT_ID, SECRET)
            .expect("loopback endpoint")
            .issuer(&ep.origin),
    );
    TestServer::on_listener(
        listener,
        &ep.origin,
        |options| options.issuers = Vec::new(),
        |options| {
            adjust(files::configure(
                Guard::builder()
                    .resource(&options.resource)
                    .introspection(introspection),
            ))
            .build()
            .expect("guard builds")
        },
    )
}

/// An opaque token: random-looking, not JWT-shaped.
fn opaque(label: &str) -> String {
    format!("mcp_at_{label}_7f3c9a1e5b2d4c6e8a0f1b3d5c7e9a2b{}", now())
}

/// An RFC 7662 answer for an active token for `server`.
fn active(server: &TestServer, sub: &str, scope: &str) -> Value {
    let now = now();
    json!({
        "active": true,
        "scope": scope,
        "client_id": "vscode-mcp",
        "username": sub,
        "sub": sub,
        "token_type": "Bearer",
        "aud": server.mcp_url,
        "iat": now,
        "nbf": now,
        "exp": now + 600,
    })
}

async fn whoami(server: &TestServer, token: &str) -> Answer {
    server.call(token, "whoami", json!({})).await
}

async fn read(server: &TestServer, token: &str) -> Answer {
    server
        .call(token, "read_file", json!({"path": "/none"}))
        .await
}

async fn write(server: &TestServer, token: &str) -> Answer {
    server
        .call(token, "write_file", json!({"path": "/w", "content": "ok"}))
        .await
}

#[track_caller]
fn assert_read_ok(a: &Answer, why: &str) {
    assert_eq!(a.status, 200, "{why}: {a:?}");
    assert_eq!(a.tool_text(), "no such file: /none", "{why}");
}

/// 401 `invalid_token` mentioning `reason`, without the token, and nothing written.
#[track_caller]
fn assert_invalid(server: &TestServer, a: &Answer, token: &str, reason: &str, why: &str) {
    assert_eq!(a.status, 401, "{why}: expected 401: {a:?}");
    let c = a.challenge();
    assert_eq!(c.param("error"), Some("invalid_token"), "{why}: {c:?}");
    assert_eq!(
        c.param("resource_metadata"),
        Some(server.metadata_url.as_str()),
        "{why}"
    );
    let description = c.param("error_description").unwrap_or_default();
    assert!(
        description.to_lowercase().contains(&reason.to_lowercase()),
        "{why}: description {description:?} should mention {reason:?}"
    );
    let raw = a.headers["www-authenticate"].to_str().unwrap();
    assert!(
        !raw.contains(token) && !a.body.contains(token),
        "{why}: token echoed"
    );
    assert!(
        !server.store.lock().unwrap().contains_key("/w"),
        "{why}: no tool may run"
    );
}

/// 503 with `Retry-After`, no challenge, no success, nothing written.
#[track_caller]
fn assert_unavailable(server: &TestServer, a: &Answer, token: &str, why: &str) {
    assert!(
        !(200..300).contains(&a.status),
        "{why}: must never succeed: {a:?}"
    );
    assert_eq!(a.status, 503, "{why}: expected 503: {a:?}");
    assert!(
        a.headers.get("retry-after").is_some(),
        "{why}: Retry-After expected: {a:?}"
    );
    assert!(
        a.headers.get("www-authenticate").is_none(),
        "{why}: the token was not judged: {a:?}"
    );
    assert!(!a.body.contains(token), "{why}: token echoed");
    assert!(
        !server.store.lock().unwrap().contains_key("/w"),
        "{why}: no tool may run"
    );
}

const INACTIVE: &str = "not active";
const WRONG_AUDIENCE: &str = "not issued for this resource";
const EXPIRED: &str = "expired";
const WRONG_ISSUER: &str = "unexpected issuer";

// ---------------------------------------------------------------------------------------------
// Active tokens and client authentication
// ---------------------------------------------------------------------------------------------

async fn active_token_scopes_are_enforced(auth: &str) {
    let key = TestKey::rsa1();
    let issuer = TestIssuer::start(vec![key.jwk()]).await;
    let ep = Endpoint::start().await;
    let server = example_with(&issuer, &ep, auth, SECRET).await;
    let token = opaque("reader");
    ep.set(&token, active(&server, "alice", "files:read"));

    assert_read_ok(&read(&server, &token).await, auth);
    let me: Value = serde_json::from_str(&whoami(&server, &token).await.tool_text()).unwrap();
    assert_eq!(
        me,
        json!({"sub": "alice", "client_id": "vscode-mcp", "scopes": ["files:read"]}),
        "{auth}"
    );
    let a = write(&server, &token).await;
    assert_eq!(a.status, 403, "{auth}: {a:?}");
    let c = a.challenge();
    assert_eq!(c.param("error"), Some("insufficient_scope"), "{auth}");
    assert_eq!(c.param("scope"), Some("files:read files:write"), "{auth}");
    assert!(server.store.lock().unwrap().is_empty(), "{auth}");

    // Three requests, one introspection (the answer is cached).
    assert_eq!(ep.calls(), 1, "{auth}");
    assert_eq!(server.running.guard.introspection_count(), 1, "{auth}");
    let seen = ep.seen();
    assert_eq!(seen.len(), 1, "{auth}: {seen:?}");
    assert_eq!(
        seen[0].method, auth,
        "{auth}: one client authentication method"
    );
    assert_eq!(seen[0].token.as_deref(), Some(token.as_str()), "{auth}");
    assert_eq!(seen[0].hint.as_deref(), Some("access_token"), "{auth}");

    // A writer's token writes.
    let writer = opaque("writer");
    ep.set(&writer, active(&server, "bob", "files:read files:write"));
    let a = write(&server, &writer).await;
    assert_eq!(a.status, 200, "{auth}: {a:?}");
    assert_eq!(a.tool_text(), "bob wrote 2 bytes to /w", "{auth}");
    server.stop().await;
}

#[tokio::test]
async fn active_token_scopes_are_enforced_with_client_secret_basic() {
    active_token_scopes_are_enforced("basic").await;
}

#[tokio::test]
async fn active_token_scopes_are_enforced_with_client_secret_post() {
    active_token_scopes_are_enforced("post").await;
}

#[tokio::test]
async fn wrong_client_secret_fails_closed_with_503() {
    let key = TestKey::rsa1();
    let issuer = TestIssuer::start(vec![key.jwk()]).await;
    let ep = Endpoint::start().await;
    for auth in ["basic", "post"] {
        let server = example_with(&issuer, &ep, auth, "not-the-secret").await;
        let token = opaque(&format!("wrong-secret-{auth}"));
        ep.set(&token, active(&server, "alice", "files:admin"));
        let a = write(&server, &token).await;
        assert_unavailable(&server, &a, &token, auth);
        assert_unavailable(&server, &read(&server, &token).await, &token, auth);
        server.stop().await;
    }
    // The endpoint did refuse the credentials, each time (failures are not cached).
    assert_eq!(ep.calls(), 4);
    assert!(
        ep.seen()
            .iter()
            .all(|s| s.method == "basic" || s.method == "post")
    );
}

// ---------------------------------------------------------------------------------------------
// Tokens that are not acceptable
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn inactive_foreign_audienceless_and_expired_tokens_get_401() {
    let key = TestKey::rsa1();
    let issuer = TestIssuer::start(vec![key.jwk()]).await;
    let ep = Endpoint::start().await;
    let server = example_with(&issuer, &ep, "basic", SECRET).await;
    let base = active(&server, "alice", "files:admin");

    let mut cases: Vec<(&str, Value, &str)> = Vec::new();
    cases.push(("inactive", json!({"active": false}), INACTIVE));
    let mut v = base.clone();
    v["active"] = json!("true");
    cases.push(("active as a string", v, INACTIVE));
    let mut v = base.clone();
    v.as_object_mut().unwrap().remove("active");
    cases.push(("no active member", v, INACTIVE));
    let mut v = base.clone();
    v["aud"] = json!("https://other.example/mcp");
    cases.push(("foreign aud", v, WRONG_AUDIENCE));
    let mut v = base.clone();
    v["aud"] = json!(["https://other.example/mcp", "account"]);
    cases.push(("foreign aud array", v, WRONG_AUDIENCE));
    let mut v = base.clone();
    v["aud"] = json!(format!("{}/", server.mcp_url));
    cases.push(("aud with a trailing slash", v, WRONG_AUDIENCE));
    let mut v = base.clone();
    v.as_object_mut().unwrap().remove("aud");
    cases.push(("no aud", v, "`aud`"));
    let mut v = base.clone();
    v["exp"] = json!(now() - 5);
    cases.push(("past exp", v, EXPIRED));
    let mut v = base.clone();
    v["iss"] = json!("https://other-as.example");
    cases.push(("other issuer", v, WRONG_ISSUER));

    for (i, (why, answer, reason)) in cases.into_iter().enumerate() {
        let token = opaque(&format!("bad{i}"));
        ep.set(&token, answer);
        let a = write(&server, &token).await;
        assert_invalid(&server, &a, &token, reason, why);
    }
    // A token the endpoint does not know.
    let unknown = opaque("unknown");
    assert_invalid(
        &server,
        &write(&server, &unknown).await,
        &unknown,
        INACTIVE,
        "unknown",
    );

    // The acceptable variants: `aud` array naming this resource, `iss` the configured issuer.
    let mut v = base.clone();
    v["aud"] = json!(["https://other.example/mcp", server.mcp_url]);
    v["iss"] = json!(issuer.issuer);
    let token = opaque("good-array");
    ep.set(&token, v);
    assert_read_ok(&read(&server, &token).await, "aud array with this resource");
    server.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Cache
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn answers_are_cached_unless_the_ttl_is_zero() {
    let ep = Endpoint::start().await;

    // Default TTL: the same token twice, one call.
    let cached = introspection_only(&ep, |i| i).await;
    let token = opaque("cached");
    ep.set(&token, active(&cached, "alice", "files:read"));
    assert_read_ok(&read(&cached, &token).await, "first");
    assert_read_ok(&read(&cached, &token).await, "second");
    assert_eq!(ep.calls(), 1);
    assert_eq!(cached.running.guard.introspection_count(), 1);
    // Direct authentication shares the cache.
    let p = cached
        .running
        .guard
        .authenticate(&token)
        .await
        .expect("active");
    assert_eq!(p.subject(), "alice");
    assert_eq!(p.scopes().to_string(), "files:read");
    assert_eq!(ep.calls(), 1);
    cached.stop().await;

    // TTL zero: every request is introspected.
    let uncached = introspection_only(&ep, |i| i.cache_ttl(Duration::ZERO)).await;
    let token = opaque("uncached");
    ep.set(&token, active(&uncached, "alice", "files:read"));
    let before = ep.calls();
    assert_read_ok(&read(&uncached, &token).await, "first");
    assert_read_ok(&read(&uncached, &token).await, "second");
    assert_eq!(ep.calls() - before, 2);
    assert_eq!(uncached.running.guard.introspection_count(), 2);
    // Revocation is then seen at once.
    ep.set(&token, json!({"active": false}));
    assert_invalid(
        &uncached,
        &write(&uncached, &token).await,
        &token,
        INACTIVE,
        "revoked",
    );
    uncached.stop().await;
}

#[tokio::test]
async fn a_cached_answer_is_not_used_after_the_token_expires() {
    let ep = Endpoint::start().await;
    let server = introspection_only(&ep, |i| i.cache_ttl(Duration::from_secs(300))).await;
    let token = opaque("short-lived");
    let mut answer = active(&server, "alice", "files:read");
    let exp = now() + 2;
    answer["exp"] = json!(exp);
    ep.set(&token, answer);
    assert_read_ok(&read(&server, &token).await, "before exp");
    assert_eq!(ep.calls(), 1);

    // Bounded wait until the token is past its `exp`.
    for _ in 0..10 {
        if now() > exp {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(now() > exp, "the clock moved past exp");
    let a = read(&server, &token).await;
    assert_invalid(&server, &a, &token, EXPIRED, "after exp");
    assert!(ep.calls() <= 2, "at most one more call: {}", ep.calls());
    server.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Endpoint failures: 503, never a success
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn endpoint_failures_get_503_and_are_not_cached() {
    let ep = Endpoint::start().await;
    let server = introspection_only(&ep, |i| i.timeout(Duration::from_millis(500))).await;
    let token = opaque("faults");
    ep.set(&token, active(&server, "alice", "files:admin"));

    for (why, mode) in [
        ("500", Mode::Status(500)),
        ("503", Mode::Status(503)),
        ("400", Mode::Status(400)),
        ("garbage", Mode::Garbage),
        ("not an object", Mode::NotAnObject),
        ("redirect", Mode::Redirect),
        ("timeout", Mode::Slow(Duration::from_secs(3))),
    ] {
        ep.set_mode(mode);
        let a = write(&server, &token).await;
        assert_unavailable(&server, &a, &token, why);
    }
    // Nothing was cached: once the endpoint recovers, the token works.
    ep.set_mode(Mode::Normal);
    let a = write(&server, &token).await;
    assert_eq!(a.status, 200, "{a:?}");
    server.stop().await;
}

#[tokio::test]
async fn unreachable_endpoint_gets_503() {
    // A port nothing listens on any more.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/introspect", closed.local_addr().unwrap());
    drop(closed);
    let key = TestKey::rsa1();
    let issuer = TestIssuer::start(vec![key.jwk()]).await;
    let server = TestServer::start_with(&issuer, |o| {
        o.introspection_endpoint = Some(url);
        o.introspection_client_id = Some(CLIENT_ID.into());
        o.introspection_client_secret = Some(SECRET.into());
    })
    .await;
    let token = opaque("unreachable");
    assert_unavailable(&server, &write(&server, &token).await, &token, "refused");
    // A JWT still works: its issuer's keys do not depend on the endpoint.
    let jwt = key.sign(&claims(&issuer.issuer, &server.mcp_url, "files:read"));
    assert_read_ok(&read(&server, &jwt).await, "jwt");
    server.stop().await;
}

#[tokio::test]
async fn an_endless_introspection_response_is_cut_off_and_gets_503() {
    // An endpoint that streams hundreds of MiB (chunked, then with the whole length
    // declared): the guard stops reading past 64 KiB and fails closed, and the endpoint only
    // got to send what the socket buffers hold.
    for (why, declare_length) in [("chunked", false), ("declared length", true)] {
        let flood = FloodServer::start(declare_length).await;
        let listener = mcp_guard_tests::server::bind().await;
        let url = format!("{}/introspect", flood.origin);
        let introspection = Introspection::new(&url, CLIENT_ID, SECRET)
            .expect("loopback endpoint")
            .issuer(&flood.origin);
        let server = TestServer::on_listener(
            listener,
            &flood.origin,
            |options| options.issuers = Vec::new(),
            |options| {
                files::configure(
                    Guard::builder()
                        .resource(&options.resource)
                        .introspection(introspection),
                )
                .build()
                .expect("guard builds")
            },
        );
        let token = opaque("flood");
        let a = write(&server, &token).await;
        assert_unavailable(&server, &a, &token, why);
        let sent = flood.sent_once_ended(1).await;
        assert!(
            sent < mcp_guard_tests::flood::BOUNDED_BY,
            "{why}: the guard read on: {sent} bytes sent"
        );
        server.stop().await;
    }
}

// ---------------------------------------------------------------------------------------------
// JWTs and opaque tokens side by side, and introspection alone
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn jwts_are_verified_locally_and_opaque_tokens_introspected() {
    let key = TestKey::rsa1();
    let issuer = TestIssuer::start(vec![key.jwk()]).await;
    let ep = Endpoint::start().await;
    let server = example_with(&issuer, &ep, "basic", SECRET).await;

    // A JWT from the trusted issuer: no introspection call.
    let jwt = key.sign(&claims(&issuer.issuer, &server.mcp_url, "files:read"));
    assert_read_ok(&read(&server, &jwt).await, "jwt");
    assert_eq!(ep.calls(), 0);
    // A forged JWT is refused locally; it is never sent to the endpoint either, even if the
    // endpoint would call it active.
    let forged = TestKey::rsa2().sign(&claims(&issuer.issuer, &server.mcp_url, "files:admin"));
    ep.set(&forged, active(&server, "mallory", "files:admin"));
    let a = write(&server, &forged).await;
    assert_eq!(a.status, 401, "{a:?}");
    assert_eq!(ep.calls(), 0);
    assert!(server.store.lock().unwrap().is_empty());

    // An opaque token: introspected; `iss` absent → the configured issuer.
    let token = opaque("mixed");
    ep.set(&token, active(&server, "alice", "files:read"));
    assert_read_ok(&read(&server, &token).await, "opaque");
    assert_eq!(ep.calls(), 1);
    assert_eq!(ep.seen()[0].token.as_deref(), Some(token.as_str()));
    let p = server.running.guard.authenticate(&token).await.unwrap();
    assert_eq!(p.issuer(), issuer.issuer);
    // The JWT again: still local.
    assert_read_ok(&read(&server, &jwt).await, "jwt again");
    assert_eq!(ep.calls(), 1);
    server.stop().await;
}

#[tokio::test]
async fn with_introspection_alone_every_token_is_introspected() {
    let ep = Endpoint::start().await;
    let server = introspection_only(&ep, |i| i.client_auth(ClientAuth::Post)).await;
    let doc: Value = serde_json::from_str(&server.get(&server.metadata_url).await.body).unwrap();
    assert_eq!(doc["authorization_servers"], json!([ep.origin]), "{doc}");

    // Even a JWT-shaped token goes to the endpoint (no local keys to check it with).
    let key = TestKey::rsa1();
    let jwt = key.sign(&claims(&ep.origin, &server.mcp_url, "files:read"));
    ep.set(&jwt, active(&server, "alice", "files:read"));
    assert_read_ok(&read(&server, &jwt).await, "jwt introspected");
    assert_eq!(ep.calls(), 1);
    assert_eq!(ep.seen()[0].method, "post");

    let token = opaque("alone");
    let mut answer = active(&server, "carol", "files:write");
    answer["iss"] = json!(ep.origin);
    ep.set(&token, answer);
    let a = write(&server, &token).await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.tool_text(), "carol wrote 2 bytes to /w");
    let p = server.running.guard.authenticate(&token).await.unwrap();
    assert_eq!(p.issuer(), ep.origin);
    assert_eq!(p.client_id(), Some("vscode-mcp"));
    server.stop().await;
}

/// An RFC 7662 answer for an app-only token of `client_id`: no `sub`, no `username`.
fn active_client(server: &TestServer, client_id: &str, scope: &str) -> Value {
    let now = now();
    json!({
        "active": true,
        "scope": scope,
        "client_id": client_id,
        "token_type": "Bearer",
        "aud": server.mcp_url,
        "iat": now,
        "exp": now + 600,
    })
}

#[tokio::test]
async fn subjects_without_sub_are_clients_and_never_users() {
    let ep = Endpoint::start().await;
    let server = introspection_only(&ep, |i| i).await;

    // An app-only answer without `sub`: the client acting for itself.
    let app = opaque("app");
    ep.set(&app, active_client(&server, "alice", "files:read"));
    assert_read_ok(&read(&server, &app).await, "client credentials");
    let p = server.running.guard.authenticate(&app).await.unwrap();
    assert_eq!(p.subject(), "alice");
    assert!(p.subject_is_client(), "{p:?}");
    assert_eq!(p.token_kind(), mcp_guard::TokenKind::App);
    assert_eq!(p.client_id(), Some("alice"));

    // A user with `sub` alice is another caller.
    let user = opaque("user");
    ep.set(&user, active(&server, "alice", "files:read"));
    let p = server.running.guard.authenticate(&user).await.unwrap();
    assert_eq!(p.subject(), "alice");
    assert!(!p.subject_is_client(), "{p:?}");

    // A user name is never an identity: `username` without `sub` is refused.
    let named = opaque("named");
    let mut answer = active(&server, "alice", "files:read");
    answer.as_object_mut().unwrap().remove("sub");
    ep.set(&named, answer);
    assert_invalid(
        &server,
        &read(&server, &named).await,
        &named,
        "`sub`",
        "username only",
    );
    // Neither `sub` nor `client_id`: no caller at all.
    let nobody = opaque("nobody");
    let mut answer = active_client(&server, "x", "files:read");
    answer.as_object_mut().unwrap().remove("client_id");
    ep.set(&nobody, answer);
    assert_invalid(
        &server,
        &read(&server, &nobody).await,
        &nobody,
        "`sub`",
        "nobody",
    );
    server.stop().await;
}

#[tokio::test]
async fn a_client_named_like_a_user_cannot_use_the_users_session() {
    // The user `alice` (sub) opens a 2025-11-25 session; the client `alice` (client
    // credentials, no `sub`) holds its id and is answered 404, and the other way round.
    let ep = Endpoint::start().await;
    let server = introspection_only(&ep, |i| i).await;
    let user = opaque("session-user");
    ep.set(&user, active(&server, "alice", "files:read files:write"));
    let app = opaque("session-app");
    ep.set(
        &app,
        active_client(&server, "alice", "files:read files:write"),
    );

    let sid = server.open_session(&user).await;
    let a = server
        .call_in_session(
            &app,
            &sid,
            "write_file",
            json!({"path": "/w", "content": "x"}),
        )
        .await;
    assert_eq!(a.status, 404, "the client used the user's session: {a:?}");
    assert!(!server.store.lock().unwrap().contains_key("/w"));
    let own = server
        .call_in_session(&user, &sid, "whoami", json!({}))
        .await;
    assert_eq!(own.status, 200, "{own:?}");

    let app_sid = server.open_session(&app).await;
    let a = server
        .call_in_session(&user, &app_sid, "whoami", json!({}))
        .await;
    assert_eq!(a.status, 404, "the user used the client's session: {a:?}");
    let own = server
        .call_in_session(&app, &app_sid, "whoami", json!({}))
        .await;
    assert_eq!(own.status, 200, "{own:?}");
    server.stop().await;
}

#[tokio::test]
async fn the_scope_prefix_applies_to_introspected_tokens_as_to_jwts() {
    // The identity provider names this resource's scopes in its namespace (Cognito, Entra):
    // an introspected `https://files.example.com/files:write` is this resource's
    // `files:write`, exactly as in a JWT, and challenges name scopes in that namespace.
    let ep = Endpoint::start().await;
    let prefix = "https://files.example.com/";
    let server = introspection_only_with(&ep, |i| i, |b| b.scope_prefix(prefix)).await;
    let namespaced = opaque("namespaced");
    ep.set(
        &namespaced,
        active(&server, "carol", &format!("{prefix}files:write")),
    );
    let a = write(&server, &namespaced).await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.tool_text(), "carol wrote 2 bytes to /w");
    let p = server
        .running
        .guard
        .authenticate(&namespaced)
        .await
        .unwrap();
    assert_eq!(p.scopes().to_string(), "files:write");

    let reader = opaque("reader");
    ep.set(
        &reader,
        active(&server, "dave", &format!("{prefix}files:read")),
    );
    let a = write(&server, &reader).await;
    assert_eq!(a.status, 403, "{a:?}");
    assert_eq!(
        a.challenge().param("scope"),
        Some(format!("{prefix}files:read {prefix}files:write").as_str()),
        "the challenge names the scopes as the provider does"
    );
    server.stop().await;
}

#[tokio::test]
async fn example_options_allow_introspection_without_an_issuer() {
    let ep = Endpoint::start().await;
    let addr: std::net::SocketAddr = "127.0.0.1:9".parse().unwrap();
    let mut o = ServerOptions::new("", "http://127.0.0.1:9/mcp", addr);
    o.issuers = Vec::new();
    o.introspection_endpoint = Some(ep.url.clone());
    o.introspection_client_id = Some(CLIENT_ID.into());
    o.introspection_client_secret = Some(SECRET.into());
    // Without an issuer to advertise, the options are refused with the fix in the message.
    let Err(err) = o.guard_builder() else {
        panic!("needs the issuer clients sign in with");
    };
    assert!(err.to_string().contains("--introspection-issuer"), "{err}");
    o.introspection_issuer = Some("https://as.example.com".into());
    let built = files::guard(&o).expect("introspection alone");
    assert_eq!(
        built.metadata().authorization_servers,
        ["https://as.example.com"]
    );
}

// ---------------------------------------------------------------------------------------------
// Logs
// ---------------------------------------------------------------------------------------------

// One thread, so that the subscriber set for this test sees the server's tasks too.
#[tokio::test(flavor = "current_thread")]
async fn logs_never_contain_opaque_tokens() {
    let logs = mcp_guard_tests::logs::CapturedLogs::start();

    let ep = Endpoint::start().await;
    let server = introspection_only(&ep, |i| i.cache_ttl(Duration::ZERO)).await;
    let good = opaque("log-good");
    let bad = opaque("log-bad");
    let down = opaque("log-down");
    ep.set(&good, active(&server, "alice", "files:read"));
    ep.set(&bad, json!({"active": false}));
    ep.set(&down, active(&server, "alice", "files:read"));
    assert_eq!(read(&server, &good).await.status, 200);
    assert_eq!(write(&server, &good).await.status, 403);
    assert_eq!(read(&server, &bad).await.status, 401);
    ep.set_mode(Mode::Status(500));
    assert_eq!(read(&server, &down).await.status, 503);
    server.stop().await;

    let log = logs.text();
    assert!(
        log.contains("mcp_guard::audit"),
        "audit events expected:\n{log}"
    );
    for t in [&good, &bad, &down] {
        assert!(!log.contains(t.as_str()), "token {t} logged:\n{log}");
        // Nor its distinctive part.
        assert!(!log.contains("7f3c9a1e5b2d4c6e8a0f1b3d5c7e9a2b"), "{log}");
    }
    assert!(!log.contains(SECRET), "client secret logged:\n{log}");
}
