//! The conformance checklist: one test per row of the status/challenge matrix (reference spec
//! §1.6, tests `s1_6_rowN_…`) and per applicable numbered test idea of §4 (tests `s4_NN_…`),
//! against the example file server over real HTTP on 127.0.0.1.
//!
//! Every case that involves an MCP request runs in both wire formats:
//!
//! - [`Wire::Legacy`]: 2025-11-25, `initialize` then `Mcp-Session-Id` on every request;
//! - [`Wire::Stateless`]: 2026-07-28, `MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name` headers
//!   and the per-request `_meta` in `params`.
//!
//! The fixture serves the example in the anonymous access posture (`--allow-anonymous`), the
//! mixed posture the checklist and the official suite describe (discovery without a token,
//! protected operations challenged); the default sign-in posture, where every token-less
//! request is challenged, is checked in `postures.rs`.
//!
//! The fixture of §4 maps onto the example server as follows: `E` is
//! `http://127.0.0.1:PORT/mcp`, `P` its path-suffixed metadata URL, `ISS` a [`TestIssuer`]
//! with key `rsa1` (RS256); `mcp:read` is `files:read` (the baseline scope), `echo` needs any
//! valid token, `write_file` needs `files:write` (plus `files:shared` under `/shared`), and
//! `files:admin` implies `files:read` and `files:write`.
//!
//! The checklist itself (each row and case with its expected answer), its spec basis, and the
//! index of the deeper tests covering each row and case (in `challenges.rs`, `tokens.rs`,
//! `keysource.rs`, `sessions.rs`, `introspection.rs`, … and the library's unit tests) are in
//! `tests/conformance/CHECKLIST.md`. This file runs each case once, every MCP request in both wire
//! formats; the deeper tests vary one behaviour in depth. The official conformance package is run
//! separately by `tests/conformance/run.sh` (see `tests/conformance/README.md`).
//!
//! Cases that do not apply to the example server (no test, by design):
//! - 44 (2026-07-28 state handles bound to the user): the example server mints no state
//!   handles; there is nothing to present as another user.
//! - 45 (token passthrough upstream): the example server calls no upstream API, so there is no
//!   outbound request whose `Authorization` header could be inspected. (mcp-guard never hands
//!   the raw token to handlers: `Principal` carries claims, not the token.)
//! - 47 (stdio without OAuth): the example only has the Streamable HTTP transport.
//!
//! Known gaps are tests marked `#[ignore = "known gap: …"]`; they assert the spec's expected
//! answer and fail against the current library.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Validation};
use mcp_guard::challenge::ParsedChallenge;
use mcp_guard::metadata::MetadataSigningKey;
use mcp_guard::{Guard, Issuer};
use mcp_guard_examples::server::ServerOptions;
use mcp_guard_tests::keys::{self, alg_name};
use mcp_guard_tests::server::{LEGACY, STATELESS, stateless_body};
use mcp_guard_tests::{Answer, JwksMode, TestIssuer, TestKey, TestServer, claims, now};
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------------
// Wire formats
// ---------------------------------------------------------------------------------------------

/// The two MCP wire formats every request-level case runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wire {
    /// 2025-11-25: `initialize`, then the `Mcp-Session-Id` on every request.
    Legacy,
    /// 2026-07-28: no session; `MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name` and `_meta`.
    Stateless,
}

/// One MCP request, built for either wire.
struct Req<'r> {
    method: &'r str,
    params: Value,
    /// `Authorization` header values, sent in order (none, one, or several).
    authorization: Vec<&'r str>,
    /// Further headers, sent after the wire's own.
    headers: Vec<(&'r str, &'r str)>,
    /// Another URL than the MCP endpoint (e.g. with a query string).
    url: Option<String>,
    /// `Mcp-Name` sent by the stateless wire (defaults to the tool of a `tools/call`).
    mcp_name: Option<&'r str>,
    /// `Mcp-Method` sent by the stateless wire (defaults to the body's method).
    mcp_method: Option<&'r str>,
}

impl<'r> Req<'r> {
    /// `tools/call` of `tool` with `args`.
    fn call(tool: &'r str, args: Value) -> Self {
        Self {
            method: "tools/call",
            params: json!({"name": tool, "arguments": args}),
            authorization: Vec::new(),
            headers: Vec::new(),
            url: None,
            mcp_name: Some(tool),
            mcp_method: None,
        }
    }

    /// `tools/list`.
    fn list() -> Self {
        Self {
            method: "tools/list",
            params: json!({}),
            authorization: Vec::new(),
            headers: Vec::new(),
            url: None,
            mcp_name: None,
            mcp_method: None,
        }
    }

    fn auth(mut self, value: &'r str) -> Self {
        self.authorization.push(value);
        self
    }

    fn auth_opt(self, value: Option<&'r str>) -> Self {
        match value {
            Some(v) => self.auth(v),
            None => self,
        }
    }

    fn header(mut self, name: &'r str, value: &'r str) -> Self {
        self.headers.push((name, value));
        self
    }

    fn url(mut self, url: String) -> Self {
        self.url = Some(url);
        self
    }

    fn mcp_name(mut self, name: &'r str) -> Self {
        self.mcp_name = Some(name);
        self
    }

    fn mcp_method(mut self, method: &'r str) -> Self {
        self.mcp_method = Some(method);
        self
    }
}

/// A client of the example server in one wire format (with its session, for the legacy one).
struct Mcp<'a> {
    server: &'a TestServer,
    wire: Wire,
    session: Option<String>,
}

impl<'a> Mcp<'a> {
    /// Connects: for the legacy wire, `initialize` + `notifications/initialized` with
    /// `opener` as the `Authorization` value (or anonymously: the example server has a public
    /// tool, so anonymous clients may connect); nothing for the stateless wire.
    async fn connect(server: &'a TestServer, wire: Wire, opener: Option<&str>) -> Self {
        let session = match wire {
            Wire::Stateless => None,
            Wire::Legacy => {
                let init = json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{
                    "protocolVersion": LEGACY, "capabilities": {},
                    "clientInfo": {"name": "mcp-guard-conformance", "version": "0"}}});
                let mut headers = vec![("mcp-protocol-version", LEGACY)];
                if let Some(a) = opener {
                    headers.push(("authorization", a));
                }
                let a = server.post(&headers, &init.to_string()).await;
                assert_eq!(a.status, 200, "initialize: {a:?}");
                let sid = a
                    .headers
                    .get("mcp-session-id")
                    .expect("initialize returns a session id")
                    .to_str()
                    .expect("ASCII session id")
                    .to_owned();
                headers.push(("mcp-session-id", &sid));
                let note = json!({"jsonrpc":"2.0","method":"notifications/initialized"});
                let n = server.post(&headers, &note.to_string()).await;
                assert_eq!(n.status, 202, "notifications/initialized: {n:?}");
                Some(sid)
            }
        };
        Self {
            server,
            wire,
            session,
        }
    }

    /// Sends `req` in this wire format.
    async fn send(&self, req: Req<'_>) -> Answer {
        let mut headers: Vec<(&str, &str)> = Vec::new();
        let body = match self.wire {
            Wire::Legacy => {
                headers.push(("mcp-protocol-version", LEGACY));
                if let Some(sid) = &self.session {
                    headers.push(("mcp-session-id", sid));
                }
                json!({"jsonrpc": "2.0", "id": 11, "method": req.method, "params": req.params})
                    .to_string()
            }
            Wire::Stateless => {
                headers.push(("mcp-protocol-version", STATELESS));
                headers.push(("mcp-method", req.mcp_method.unwrap_or(req.method)));
                if let Some(name) = req.mcp_name {
                    headers.push(("mcp-name", name));
                }
                stateless_body(req.method, req.params.clone())
            }
        };
        headers.extend(req.authorization.iter().map(|a| ("authorization", *a)));
        headers.extend(req.headers.iter().copied());
        let url = req.url.as_deref().unwrap_or(&self.server.mcp_url);
        self.server.post_to(url, &headers, &body).await
    }

    /// `tools/call` with this `Authorization` value (or none).
    async fn call(&self, authorization: Option<&str>, tool: &str, args: Value) -> Answer {
        self.send(Req::call(tool, args).auth_opt(authorization))
            .await
    }

    /// `tools/list` with this `Authorization` value (or none).
    async fn list(&self, authorization: Option<&str>) -> Answer {
        self.send(Req::list().auth_opt(authorization)).await
    }
}

// ---------------------------------------------------------------------------------------------
// Fixture
// ---------------------------------------------------------------------------------------------

/// The issuer, the example server trusting it, and the issuer's signing key.
struct Fx {
    issuer: TestIssuer,
    server: TestServer,
    key: TestKey,
}

impl Fx {
    async fn new() -> Self {
        Self::with(|_| {}).await
    }

    async fn with(adjust: impl FnOnce(&mut ServerOptions)) -> Self {
        let key = TestKey::rsa1();
        let issuer = TestIssuer::start(vec![key.jwk()]).await;
        let server = TestServer::start_with(&issuer, |o| {
            o.allow_anonymous = true;
            adjust(o);
        })
        .await;
        Self {
            issuer,
            server,
            key,
        }
    }

    /// Valid RFC 9068 claims for subject `alice`.
    fn claims(&self, scope: &str) -> Value {
        claims(&self.issuer.issuer, &self.server.mcp_url, scope)
    }

    fn token(&self, scope: &str) -> String {
        self.key.sign(&self.claims(scope))
    }

    fn token_for(&self, sub: &str, scope: &str) -> String {
        let mut c = self.claims(scope);
        c["sub"] = json!(sub);
        self.key.sign(&c)
    }

    /// Both wires; the legacy session opened by alice with a `files:read` token, the way a
    /// client that signed in first connects.
    async fn wires(&self) -> [Mcp<'_>; 2] {
        let opener = bearer(&self.token("files:read"));
        [
            Mcp::connect(&self.server, Wire::Legacy, Some(&opener)).await,
            Mcp::connect(&self.server, Wire::Stateless, None).await,
        ]
    }

    /// Both wires; the legacy session opened anonymously (a client without a token yet).
    async fn anonymous_wires(&self) -> [Mcp<'_>; 2] {
        [
            Mcp::connect(&self.server, Wire::Legacy, None).await,
            Mcp::connect(&self.server, Wire::Stateless, None).await,
        ]
    }

    fn stored(&self, path: &str) -> Option<String> {
        self.server.store.lock().unwrap().get(path).cloned()
    }

    fn store_is_empty(&self) -> bool {
        self.server.store.lock().unwrap().is_empty()
    }
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The RFC 9068 header for `key`, to be edited by a test.
fn header_for(key: &TestKey) -> Value {
    json!({"alg": alg_name(key.alg), "typ": "at+jwt", "kid": key.kid})
}

/// Arguments of a `write_file` that would succeed with a valid `files:admin` token: the
/// evidence that a refused token had no side effect.
fn pwn() -> Value {
    json!({"path": "/pwned", "content": "x"})
}

// ---------------------------------------------------------------------------------------------
// Assertions
// ---------------------------------------------------------------------------------------------

/// RFC 6750 §3: `realm`, `scope`, `error`, `error_description`, `error_uri` at most once; and
/// (for the challenges of this server) every parameter at most once.
#[track_caller]
fn assert_params_once(c: &ParsedChallenge, why: &str) {
    for (name, _) in &c.params {
        assert_eq!(c.count(name), 1, "{why}: `{name}` repeated in {c:?}");
    }
}

/// The challenge of a request without usable credentials: 401, `Bearer`, `resource_metadata`
/// = P, the baseline `scope`, no `error`.
#[track_caller]
fn assert_no_credentials(server: &TestServer, a: &Answer, why: &str) {
    assert_eq!(a.status, 401, "{why}: {a:?}");
    let c = a.challenge();
    assert!(c.scheme.eq_ignore_ascii_case("Bearer"), "{why}: {c:?}");
    assert_eq!(
        c.param("resource_metadata"),
        Some(server.metadata_url.as_str()),
        "{why}"
    );
    assert_eq!(
        c.param("scope"),
        Some("files:read"),
        "{why}: baseline scope"
    );
    assert_eq!(
        c.count("error"),
        0,
        "{why}: no error code without credentials (RFC 6750 §3.1)"
    );
    assert_eq!(c.count("error_description"), 0, "{why}");
    assert_params_once(&c, why);
}

/// 400 `invalid_request` with `resource_metadata`.
#[track_caller]
fn assert_invalid_request(server: &TestServer, a: &Answer, why: &str) {
    assert_eq!(a.status, 400, "{why}: {a:?}");
    let c = a.challenge();
    assert!(c.scheme.eq_ignore_ascii_case("Bearer"), "{why}: {c:?}");
    assert_eq!(c.param("error"), Some("invalid_request"), "{why}: {c:?}");
    assert_eq!(
        c.param("resource_metadata"),
        Some(server.metadata_url.as_str()),
        "{why}"
    );
    assert_params_once(&c, why);
}

/// 401 `invalid_token` with `error_description` and `resource_metadata`, no `scope`, the token
/// not echoed, and no tool side effect.
#[track_caller]
fn assert_invalid_token(fx: &Fx, a: &Answer, token: &str, why: &str) {
    assert_eq!(a.status, 401, "{why}: {a:?}");
    let c = a.challenge();
    assert!(c.scheme.eq_ignore_ascii_case("Bearer"), "{why}: {c:?}");
    assert_eq!(c.param("error"), Some("invalid_token"), "{why}: {c:?}");
    assert!(c.param("error_description").is_some(), "{why}: {c:?}");
    assert_eq!(
        c.param("resource_metadata"),
        Some(fx.server.metadata_url.as_str()),
        "{why}"
    );
    assert_params_once(&c, why);
    a.assert_not_echoing(token, why);
    assert!(fx.store_is_empty(), "{why}: a tool ran");
}

/// 403 `insufficient_scope` whose `scope` contains every scope in `needed` (in one challenge),
/// never `offline_access`, with `resource_metadata`. Returns the challenged scopes, sorted.
#[track_caller]
fn assert_insufficient_scope(
    server: &TestServer,
    a: &Answer,
    needed: &[&str],
    why: &str,
) -> Vec<String> {
    assert_eq!(a.status, 403, "{why}: {a:?}");
    let c = a.challenge();
    assert!(c.scheme.eq_ignore_ascii_case("Bearer"), "{why}: {c:?}");
    assert_eq!(c.param("error"), Some("insufficient_scope"), "{why}: {c:?}");
    assert_eq!(
        c.param("resource_metadata"),
        Some(server.metadata_url.as_str()),
        "{why}"
    );
    assert_params_once(&c, why);
    let mut scopes: Vec<String> = c
        .param("scope")
        .unwrap_or_else(|| panic!("{why}: scope expected: {c:?}"))
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    scopes.sort();
    for n in needed {
        assert!(scopes.iter().any(|s| s == n), "{why}: {n} missing: {c:?}");
    }
    assert!(
        !scopes.iter().any(|s| s == "offline_access"),
        "{why}: offline_access challenged: {c:?}"
    );
    scopes
}

#[track_caller]
fn assert_never_2xx(a: &Answer, why: &str) {
    assert!(!(200..300).contains(&a.status), "{why}: succeeded: {a:?}");
}

/// `token` is refused with 401 `invalid_token` on both wires, and `write_file` did not run.
async fn assert_refused(fx: &Fx, wires: &[Mcp<'_>], token: &str, why: &str) {
    let auth = bearer(token);
    for m in wires {
        let a = m.call(Some(&auth), "write_file", pwn()).await;
        assert_invalid_token(fx, &a, token, &format!("{why} [{:?}]", m.wire));
    }
}

/// `token` is accepted on both wires: `whoami` runs and sees alice.
async fn assert_accepted(wires: &[Mcp<'_>], token: &str, why: &str) {
    let auth = bearer(token);
    for m in wires {
        let why = format!("{why} [{:?}]", m.wire);
        let a = m.call(Some(&auth), "whoami", json!({})).await;
        assert_eq!(a.status, 200, "{why}: {a:?}");
        let me: Value = serde_json::from_str(&a.tool_text()).expect("whoami answers JSON");
        assert_eq!(me["sub"], "alice", "{why}: {me}");
    }
}

/// `write_file` with `token` runs on both wires (the strongest evidence of acceptance).
async fn assert_writes(fx: &Fx, wires: &[Mcp<'_>], token: &str, why: &str) {
    let auth = bearer(token);
    for m in wires {
        let why = format!("{why} [{:?}]", m.wire);
        let path = format!("/ok-{:?}", m.wire).to_lowercase();
        let a = m
            .call(
                Some(&auth),
                "write_file",
                json!({"path": path, "content": "ok"}),
            )
            .await;
        assert_eq!(a.status, 200, "{why}: {a:?}");
        assert_eq!(
            a.tool_text(),
            format!("alice wrote 2 bytes to {path}"),
            "{why}"
        );
        assert_eq!(fx.stored(&path).as_deref(), Some("ok"), "{why}");
    }
    fx.server.store.lock().unwrap().clear();
}

// =============================================================================================
// §1.6 Status/challenge matrix, one test per row
// =============================================================================================

/// Row 1: no `Authorization` header, or a non-Bearer scheme → 401, `Bearer
/// resource_metadata=…, scope=…`, no `error`.
#[tokio::test]
async fn s1_6_row1_no_or_non_bearer_credentials_give_401_without_error() {
    let fx = Fx::new().await;
    for m in fx.anonymous_wires().await {
        for auth in [None, Some("Basic dXNlcjpwYXNz"), Some("Negotiate YIIBhg==")] {
            let a = m.call(auth, "read_file", json!({"path": "/x"})).await;
            assert_no_credentials(&fx.server, &a, &format!("{auth:?} [{:?}]", m.wire));
        }
    }
}

/// Row 2: malformed Bearer credentials (empty token, bad `b64token` characters, two
/// `Authorization` headers, header plus query token) → 400 `invalid_request`.
#[tokio::test]
async fn s1_6_row2_malformed_bearer_credentials_give_400_invalid_request() {
    let fx = Fx::new().await;
    let valid = bearer(&fx.token("files:read"));
    let query = format!(
        "{}?access_token={}",
        fx.server.mcp_url,
        fx.token("files:read")
    );
    for m in fx.wires().await {
        for auth in ["Bearer", "Bearer a b", "Bearer a,b", "Bearer a\"b"] {
            let a = m.list(Some(auth)).await;
            assert_invalid_request(&fx.server, &a, &format!("{auth:?} [{:?}]", m.wire));
        }
        let a = m.send(Req::list().auth(&valid).auth(&valid)).await;
        assert_invalid_request(&fx.server, &a, &format!("two headers [{:?}]", m.wire));
        let a = m.send(Req::list().auth(&valid).url(query.clone())).await;
        assert_invalid_request(&fx.server, &a, &format!("header + query [{:?}]", m.wire));
    }
}

/// Row 3: an invalid token (bad signature, unparsable, `alg` not allowed, unknown `kid`, wrong
/// `iss`, wrong or missing `aud`, expired, `nbf` in the future, wrong `typ`) → 401
/// `invalid_token` with `error_description` and `resource_metadata`. Introspection
/// `active:false` is in `s4_31`, revocation in `s4_32`.
#[tokio::test]
async fn s1_6_row3_invalid_tokens_give_401_invalid_token() {
    let fx = Fx::new().await;
    let wires = fx.wires().await;
    let good = fx.claims("files:admin");
    let token = fx.key.sign(&good);
    let parts: Vec<&str> = token.split('.').collect();
    let mut tokens = vec![
        (
            "bad signature",
            format!("{}.{}.{}", parts[0], parts[1], b64(&[7u8; 256])),
        ),
        ("unparsable", "not-a-jwt".to_owned()),
        ("alg none", keys::unsigned("none", &good, "")),
        (
            "kid unknown",
            fx.key.clone().with_kid("no-such-kid").sign(&good),
        ),
    ];
    let edited = |edit: &dyn Fn(&mut Value)| {
        let mut c = good.clone();
        edit(&mut c);
        fx.key.sign(&c)
    };
    tokens.push((
        "wrong iss",
        edited(&|c| c["iss"] = json!("https://evil.example")),
    ));
    tokens.push((
        "wrong aud",
        edited(&|c| c["aud"] = json!("https://other.example/mcp")),
    ));
    tokens.push((
        "missing aud",
        edited(&|c| {
            c.as_object_mut().unwrap().remove("aud");
        }),
    ));
    tokens.push(("expired", edited(&|c| c["exp"] = json!(now() - 600))));
    tokens.push((
        "nbf in the future",
        edited(&|c| {
            c["nbf"] = json!(now() + 600);
            c["exp"] = json!(now() + 1200);
        }),
    ));
    let mut h = header_for(&fx.key);
    h["typ"] = json!("JWT");
    tokens.push(("typ JWT", fx.key.sign_with_header(&h, &good)));
    for (why, token) in tokens {
        assert_refused(&fx, &wires, &token, why).await;
    }
}

/// Row 4: a valid token lacking the operation's scope → 403 `insufficient_scope` with every
/// scope the operation needs and `resource_metadata`.
#[tokio::test]
async fn s1_6_row4_missing_scope_gives_403_insufficient_scope() {
    let fx = Fx::new().await;
    let reader = bearer(&fx.token("files:read"));
    for m in fx.wires().await {
        let why = format!("{:?}", m.wire);
        let a = m.call(Some(&reader), "write_file", pwn()).await;
        assert_insufficient_scope(&fx.server, &a, &["files:write"], &why);
        let description = a.challenge().param("error_description").map(str::to_owned);
        assert!(
            description.is_some_and(|d| d.contains("write_file")),
            "{why}"
        );
        assert!(fx.store_is_empty(), "{why}: the tool ran");
    }
}

/// Row 5: a foreign `Origin` → 403, body a JSON-RPC error without `id` (no challenge needed).
#[tokio::test]
async fn s1_6_row5_foreign_origin_gives_403() {
    let fx = Fx::new().await;
    let admin = bearer(&fx.token("files:admin"));
    for m in fx.wires().await {
        let why = format!("{:?}", m.wire);
        let a = m
            .send(
                Req::call("write_file", pwn())
                    .auth(&admin)
                    .header("origin", "https://evil.example"),
            )
            .await;
        assert_eq!(a.status, 403, "{why}: {a:?}");
        let body = a.json();
        assert!(body["error"].is_object(), "{why}: {body}");
        assert!(body["id"].is_null(), "{why}: {body}");
        assert!(fx.store_is_empty(), "{why}: the tool ran");
    }
}

/// Row 6: the token validator cannot be reached (key set down before the first load,
/// introspection down in `s4_31`) → 5xx, fail closed, never 2xx.
#[tokio::test]
async fn s1_6_row6_unreachable_validator_fails_closed_with_503() {
    let fx = Fx::new().await;
    fx.issuer.set_mode(JwksMode::Status(500));
    let admin = fx.token("files:admin");
    for m in fx.anonymous_wires().await {
        let why = format!("{:?}", m.wire);
        let a = m.call(Some(&bearer(&admin)), "write_file", pwn()).await;
        assert_eq!(a.status, 503, "{why}: {a:?}");
        assert!(a.headers.get("www-authenticate").is_none(), "{why}: {a:?}");
        assert!(a.headers.get("retry-after").is_some(), "{why}: {a:?}");
        a.assert_not_echoing(&admin, &why);
        assert!(fx.store_is_empty(), "{why}: the tool ran");
    }
}

/// Row 7: protocol errors after authentication passed → 400/404/405 per transport, without a
/// challenge.
#[tokio::test]
async fn s1_6_row7_protocol_errors_after_auth_give_400_404_405() {
    let fx = Fx::new().await;
    let t = bearer(&fx.token("files:read"));
    let [legacy, stateless] = fx.wires().await;
    let no_challenge = |a: &Answer, why: &str| {
        assert!(a.headers.get("www-authenticate").is_none(), "{why}: {a:?}");
    };

    // 2026-07-28: header and `_meta` versions differ → 400 HeaderMismatch (-32020).
    let mut body: Value = serde_json::from_str(&stateless_body("tools/list", json!({}))).unwrap();
    body["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"] = json!(LEGACY);
    let a = fx
        .server
        .post(
            &[
                ("authorization", &t),
                ("mcp-protocol-version", STATELESS),
                ("mcp-method", "tools/list"),
            ],
            &body.to_string(),
        )
        .await;
    assert_eq!(a.status, 400, "{a:?}");
    assert_eq!(a.json()["error"]["code"], -32020);
    no_challenge(&a, "version mismatch");

    // 2026-07-28: missing `Mcp-Method` → 400 -32020.
    let a = fx
        .server
        .post(
            &[("authorization", &t), ("mcp-protocol-version", STATELESS)],
            &stateless_body("tools/list", json!({})),
        )
        .await;
    assert_eq!(a.status, 400, "{a:?}");
    assert_eq!(a.json()["error"]["code"], -32020);
    no_challenge(&a, "no Mcp-Method");

    // 2026-07-28: unknown method → 404 -32601.
    let a = stateless
        .send(
            Req {
                method: "foo/bar",
                ..Req::list()
            }
            .auth(&t),
        )
        .await;
    assert_eq!(a.status, 404, "{a:?}");
    assert_eq!(a.json()["error"]["code"], -32601);
    no_challenge(&a, "unknown method");

    // 2026-07-28: GET → 405.
    let resp = fx
        .server
        .http
        .get(&fx.server.mcp_url)
        .header("authorization", &t)
        .header("accept", "text/event-stream")
        .header("mcp-protocol-version", STATELESS)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 405);
    assert!(resp.headers().get("www-authenticate").is_none());

    // 2025-11-25: unsupported MCP-Protocol-Version → 400.
    let a = fx
        .server
        .post(
            &[
                ("authorization", &t),
                ("mcp-protocol-version", "1999-01-01"),
                ("mcp-session-id", legacy.session.as_deref().unwrap()),
            ],
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
        )
        .await;
    assert_eq!(a.status, 400, "{a:?}");
    no_challenge(&a, "unsupported version");

    // 2025-11-25: no session id → 400; unknown session id → 404.
    let no_session = Mcp {
        server: &fx.server,
        wire: Wire::Legacy,
        session: None,
    };
    let a = no_session.list(Some(&t)).await;
    assert_eq!(a.status, 400, "{a:?}");
    no_challenge(&a, "no session");
    let unknown = Mcp {
        server: &fx.server,
        wire: Wire::Legacy,
        session: Some("no-such-session".to_owned()),
    };
    let a = unknown.list(Some(&t)).await;
    assert_eq!(a.status, 404, "{a:?}");
    no_challenge(&a, "unknown session");
}

// =============================================================================================
// §4 PRM / discovery (1–6)
// =============================================================================================

async fn get_json(server: &TestServer, url: &str) -> Value {
    let a = server.get(url).await;
    assert_eq!(a.status, 200, "GET {url}: {a:?}");
    let ct = a.headers["content-type"].to_str().unwrap();
    assert!(ct.starts_with("application/json"), "GET {url}: {ct}");
    let v: Value = serde_json::from_str(&a.body).expect("JSON");
    assert!(v.is_object(), "GET {url}: not an object: {v}");
    v
}

#[tokio::test]
async fn s4_01_prm_is_json_with_resource_e_and_authorization_servers() {
    let fx = Fx::new().await;
    let p = &fx.server.metadata_url;
    assert_eq!(
        *p,
        fx.server
            .mcp_url
            .replace("/mcp", "/.well-known/oauth-protected-resource/mcp")
    );
    // Unauthenticated GET.
    let doc = get_json(&fx.server, p).await;
    assert_eq!(
        doc["resource"],
        fx.server.mcp_url.as_str(),
        "resource == E exactly"
    );
    let servers = doc["authorization_servers"]
        .as_array()
        .expect("authorization_servers array");
    assert!(!servers.is_empty());
    for s in servers {
        let url = reqwest::Url::parse(s.as_str().expect("string")).expect("absolute URL");
        // https, except on loopback as in these tests.
        assert!(
            url.scheme() == "https" || url.host_str() == Some("127.0.0.1"),
            "{url}"
        );
        assert!(url.fragment().is_none() && url.query().is_none(), "{url}");
    }
    assert_eq!(doc["authorization_servers"], json!([fx.issuer.issuer]));
}

#[tokio::test]
async fn s4_02_prm_scopes_are_strings_without_offline_access_and_bearer_methods_header() {
    let fx = Fx::new().await;
    let doc = get_json(&fx.server, &fx.server.metadata_url).await;
    let scopes = doc["scopes_supported"]
        .as_array()
        .expect("scopes_supported");
    assert!(scopes.iter().all(Value::is_string), "{doc}");
    assert!(!scopes.contains(&json!("offline_access")), "{doc}");
    assert_eq!(doc["bearer_methods_supported"], json!(["header"]));
    if let Some(algs) = doc.get("resource_signing_alg_values_supported") {
        assert!(
            !algs.as_array().expect("array").contains(&json!("none")),
            "{doc}"
        );
    }
}

#[tokio::test]
async fn s4_03_root_prm_names_a_prefix_of_e_on_the_same_host() {
    let fx = Fx::new().await;
    let root = fx.server.metadata_url.trim_end_matches("/mcp").to_owned();
    let a = fx.server.get(&root).await;
    if a.status == 404 {
        return;
    }
    let doc = get_json(&fx.server, &root).await;
    let resource = doc["resource"].as_str().expect("resource");
    let e = reqwest::Url::parse(&fx.server.mcp_url).unwrap();
    let r = reqwest::Url::parse(resource).expect("absolute resource");
    assert_eq!(r.origin(), e.origin(), "never another host: {resource}");
    assert!(
        fx.server.mcp_url.starts_with(resource),
        "{resource} is the origin or a path prefix of E"
    );
}

#[tokio::test]
async fn s4_04_challenge_resource_metadata_dereferences_to_resource_e() {
    let fx = Fx::new().await;
    let reader = bearer(&fx.token("files:read"));
    for m in fx.anonymous_wires().await {
        let challenges = [
            m.call(None, "read_file", json!({"path": "/x"})).await,
            m.call(Some(&reader), "write_file", pwn()).await,
            m.call(Some("Bearer garbage"), "read_file", json!({"path": "/x"}))
                .await,
        ];
        for a in challenges {
            let why = format!("{} [{:?}]", a.status, m.wire);
            let url = a
                .challenge()
                .param("resource_metadata")
                .expect("resource_metadata")
                .to_owned();
            // Dereferenced without a token.
            let doc = get_json(&fx.server, &url).await;
            assert_eq!(doc["resource"], fx.server.mcp_url.as_str(), "{why}");
        }
    }
}

/// Case 5 is about the authorization server's own metadata (a third-party deployment check).
/// The example server's issuer is the test issuer; the one authorization server this project
/// ships is the quickstart's development server, checked here (deeper in
/// `dev_auth_server.rs`).
#[tokio::test]
async fn s4_05_quickstart_authorization_server_metadata_matches_its_issuer() {
    use mcp_guard_examples::quickstart::{self, QuickstartOptions};
    let mcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let auth = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let options = QuickstartOptions::new(mcp.local_addr().unwrap(), auth.local_addr().unwrap());
    let qs = quickstart::start(&options, mcp, auth).await.unwrap();
    let http = reqwest::Client::new();
    let prm: Value = http
        .get(qs.server.guard.metadata_url())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let servers = prm["authorization_servers"].as_array().unwrap().clone();
    assert!(!servers.is_empty());
    for s in servers {
        let issuer = s.as_str().unwrap();
        let u = reqwest::Url::parse(issuer).unwrap();
        let path = u.path().trim_end_matches('/');
        let well_known = format!(
            "{}/.well-known/oauth-authorization-server{path}",
            u.origin().ascii_serialization()
        );
        let resp = http.get(&well_known).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{well_known}");
        let meta: Value = resp.json().await.unwrap();
        assert_eq!(
            meta["issuer"], issuer,
            "issuer identical to the listed value"
        );
        assert!(
            meta["code_challenge_methods_supported"]
                .as_array()
                .unwrap()
                .contains(&json!("S256"))
        );
    }
    qs.stop().await.unwrap();
}

#[tokio::test]
async fn s4_06_signed_metadata_is_a_verifiable_jws_with_iss_and_no_nested_signed_metadata() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let resource = format!("http://{addr}/mcp");
    let signer = TestKey::ec256();
    let guard = Guard::builder()
        .resource(&resource)
        .issuer(Issuer::with_jwks_uri(
            "https://as.example.com",
            "https://as.example.com/jwks",
        ))
        .resource_name("signed")
        .sign_metadata(MetadataSigningKey {
            issuer: format!("http://{addr}"),
            algorithm: Algorithm::ES256,
            kid: Some("meta-1".into()),
            key: EncodingKey::from_ec_pem(&keys::key_file("ec256.pem")).unwrap(),
        })
        .build()
        .expect("guard builds");
    let router: axum::Router = guard.metadata_router();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });

    let doc: Value = reqwest::get(guard.metadata_url())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let jwt = doc["signed_metadata"].as_str().expect("signed_metadata");
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(signer.jwk()).unwrap();
    let mut v = Validation::new(Algorithm::ES256);
    v.set_required_spec_claims(&["iss"]);
    v.validate_exp = false;
    v.set_issuer(&[format!("http://{addr}")]);
    let data = jsonwebtoken::decode::<Value>(jwt, &DecodingKey::from_jwk(&jwk).unwrap(), &v)
        .expect("the JWS verifies");
    assert_eq!(data.header.kid.as_deref(), Some("meta-1"));
    assert!(data.claims.get("signed_metadata").is_none());
    // Signed values take precedence for consumers, so they must agree with the plain ones.
    for (name, value) in data.claims.as_object().unwrap() {
        if name != "iss" && name != "iat" && name != "exp" && name != "sub" {
            assert_eq!(&doc[name], value, "{name}");
        }
    }
    assert_eq!(data.claims["resource"], resource.as_str());
    // A tampered document does not verify.
    let parts: Vec<&str> = jwt.split('.').collect();
    let mut claims = data.claims.clone();
    claims["resource"] = json!("https://evil.example/mcp");
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        b64(claims.to_string().as_bytes()),
        parts[2]
    );
    assert!(
        jsonwebtoken::decode::<Value>(&forged, &DecodingKey::from_jwk(&jwk).unwrap(), &v).is_err()
    );
    task.abort();
}

// =============================================================================================
// §4 401: missing / malformed credentials (7–13)
// =============================================================================================

/// `tools/list` is anonymous on the example server (it has a public tool, and lists need no
/// scope), so the protected request here is a `tools/call`; the anonymous list is checked too.
#[tokio::test]
async fn s4_07_no_authorization_gives_401_bearer_challenge_with_scope_and_no_error() {
    let fx = Fx::new().await;
    for m in fx.anonymous_wires().await {
        let why = format!("{:?}", m.wire);
        for tool in ["read_file", "whoami", "write_file"] {
            let a = m
                .call(None, tool, json!({"path": "/x", "content": "x"}))
                .await;
            assert_no_credentials(&fx.server, &a, &format!("{tool} {why}"));
            let body: Value = serde_json::from_str(&a.body).expect("JSON error body");
            assert!(body["error"].is_string(), "{why}: {body}");
        }
        assert!(fx.store_is_empty());
        let a = m.list(None).await;
        assert_eq!(a.status, 200, "{why}: anonymous list (public tool `about`)");
    }
}

#[tokio::test]
async fn s4_08_basic_credentials_give_the_same_401_as_none() {
    let fx = Fx::new().await;
    for m in fx.anonymous_wires().await {
        let none = m.call(None, "read_file", json!({"path": "/x"})).await;
        let basic = m
            .call(
                Some("Basic dXNlcjpwYXNz"),
                "read_file",
                json!({"path": "/x"}),
            )
            .await;
        assert_no_credentials(&fx.server, &basic, &format!("Basic [{:?}]", m.wire));
        assert_eq!(
            none.headers["www-authenticate"], basic.headers["www-authenticate"],
            "{:?}",
            m.wire
        );
    }
}

#[tokio::test]
async fn s4_09_empty_bearer_gives_400_invalid_request() {
    let fx = Fx::new().await;
    for m in fx.wires().await {
        for auth in ["Bearer", "Bearer    ", "bearer "] {
            let a = m.call(Some(auth), "read_file", json!({"path": "/x"})).await;
            assert_invalid_request(&fx.server, &a, &format!("{auth:?} [{:?}]", m.wire));
        }
    }
}

#[tokio::test]
async fn s4_10_bearer_with_bad_b64token_characters_gives_400_invalid_request() {
    let fx = Fx::new().await;
    for m in fx.wires().await {
        for auth in [
            "Bearer abc def",
            "Bearer abc,def",
            "Bearer abc\"def",
            "Bearer a=b",
            "Bearer ===",
        ] {
            let a = m.call(Some(auth), "read_file", json!({"path": "/x"})).await;
            assert_invalid_request(&fx.server, &a, &format!("{auth:?} [{:?}]", m.wire));
        }
    }
}

#[tokio::test]
async fn s4_11_two_authorization_headers_give_400_invalid_request() {
    let fx = Fx::new().await;
    let valid = bearer(&fx.token("files:admin"));
    let other = bearer(&fx.token("files:read"));
    for m in fx.wires().await {
        for (first, second) in [(&valid, &valid), (&other, &valid)] {
            let a = m
                .send(Req::call("write_file", pwn()).auth(first).auth(second))
                .await;
            assert_invalid_request(&fx.server, &a, &format!("{:?}", m.wire));
        }
        assert!(fx.store_is_empty());
    }
}

/// The header plus an RFC 6750 §2.2 form-body token → 400 `invalid_request` ("more than one
/// method"), on both wires: a form body is read (bounded) for an `access_token` before any
/// classification, since form-body tokens are never accepted. Never 2xx, nothing runs.
#[tokio::test]
async fn s4_11_header_plus_form_body_token_gives_400_invalid_request() {
    let fx = Fx::new().await;
    let token = fx.token("files:admin");
    let auth = bearer(&token);
    let form = format!("access_token={token}");
    // The media type is case-insensitive (RFC 9110 §8.3.1), parameters or not.
    let send = |wire: Wire, content_type: &str| {
        let mut req = fx
            .server
            .http
            .post(&fx.server.mcp_url)
            .header("authorization", &auth)
            .header("content-type", content_type)
            .header("accept", "application/json, text/event-stream")
            .body(form.clone());
        req = match wire {
            Wire::Legacy => req.header("mcp-protocol-version", LEGACY),
            Wire::Stateless => req
                .header("mcp-protocol-version", STATELESS)
                .header("mcp-method", "tools/call")
                .header("mcp-name", "whoami"),
        };
        req.send()
    };
    let forms = [
        "application/x-www-form-urlencoded",
        "Application/X-WWW-Form-URLEncoded; charset=UTF-8",
    ];
    for wire in [Wire::Legacy, Wire::Stateless] {
        for form in forms {
            let resp = send(wire, form).await.unwrap();
            assert!(!resp.status().is_success(), "{wire:?}: {}", resp.status());
        }
    }
    assert!(fx.store_is_empty());
    for (wire, form) in [Wire::Legacy, Wire::Stateless]
        .into_iter()
        .flat_map(|w| forms.map(|f| (w, f)))
    {
        let resp = send(wire, form).await.unwrap();
        assert_eq!(resp.status(), 400, "{wire:?} {form}");
        let c = mcp_guard::challenge::parse(
            resp.headers()
                .get("www-authenticate")
                .unwrap_or_else(|| panic!("{wire:?}: no WWW-Authenticate"))
                .to_str()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(c.param("error"), Some("invalid_request"), "{wire:?}");
    }
}

#[tokio::test]
async fn s4_12_token_in_the_query_string_is_never_honoured() {
    let fx = Fx::new().await;
    let token = fx.token("files:admin");
    let url = format!("{}?access_token={token}", fx.server.mcp_url);
    for m in fx.anonymous_wires().await {
        let why = format!("{:?}", m.wire);
        let a = m
            .send(Req::call("write_file", pwn()).url(url.clone()))
            .await;
        assert_never_2xx(&a, &why);
        assert_invalid_request(&fx.server, &a, &why);
        a.assert_not_echoing(&token, &why);
        assert!(fx.store_is_empty(), "{why}");
    }
}

#[tokio::test]
async fn s4_13_lower_case_bearer_scheme_is_accepted() {
    let fx = Fx::new().await;
    let token = fx.token("files:read");
    for m in fx.wires().await {
        for scheme in ["bearer", "BEARER", "bEaReR"] {
            let a = m
                .call(Some(&format!("{scheme} {token}")), "whoami", json!({}))
                .await;
            assert_eq!(a.status, 200, "{scheme} [{:?}]: {a:?}", m.wire);
        }
    }
}

// =============================================================================================
// §4 401: invalid tokens (14–32)
// =============================================================================================

#[tokio::test]
async fn s4_14_random_opaque_string_gives_401() {
    let fx = Fx::new().await;
    let wires = fx.wires().await;
    let opaque = format!("mcp_at_8f3c1d2e9a7b4c6d5e0f1a2b3c4d5e6f{}", now());
    assert_refused(&fx, &wires, &opaque, "opaque").await;
}

#[tokio::test]
async fn s4_15_tampered_payload_with_the_original_signature_gives_401() {
    let fx = Fx::new().await;
    let wires = fx.wires().await;
    let original = fx.claims("files:read");
    let token = fx.key.sign(&original);
    let parts: Vec<&str> = token.split('.').collect();
    let mut widened = original.clone();
    widened["scope"] = json!("files:admin");
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        b64(widened.to_string().as_bytes()),
        parts[2]
    );
    assert_refused(&fx, &wires, &tampered, "scope widened").await;
}

/// The example server's leeway is 60 s (the `--leeway-secs` default).
#[tokio::test]
async fn s4_16_expired_token_gives_401_and_the_leeway_is_60_seconds() {
    let fx = Fx::new().await;
    let wires = fx.wires().await;
    let expired_at = |offset: i64| {
        let mut c = fx.claims("files:admin");
        c["iat"] = json!(now() - 1200);
        c["exp"] = json!(now() + offset);
        fx.key.sign(&c)
    };
    assert_refused(&fx, &wires, &expired_at(-600), "exp = now - 600").await;
    assert_refused(
        &fx,
        &wires,
        &expired_at(-75),
        "exp = now - 75 (past leeway)",
    )
    .await;
    assert_writes(&fx, &wires, &expired_at(-30), "exp = now - 30").await;
    assert_writes(
        &fx,
        &wires,
        &expired_at(-50),
        "exp = now - 50 (inside leeway)",
    )
    .await;

    // Without leeway, the control token is refused.
    let strict = Fx::with(|o| o.leeway_secs = 0).await;
    let strict_wires = strict.wires().await;
    let mut c = strict.claims("files:admin");
    c["exp"] = json!(now() - 30);
    assert_refused(&strict, &strict_wires, &strict.key.sign(&c), "no leeway").await;
}

#[tokio::test]
async fn s4_17_nbf_in_the_future_gives_401() {
    let fx = Fx::new().await;
    let wires = fx.wires().await;
    let mut c = fx.claims("files:admin");
    c["nbf"] = json!(now() + 600);
    c["exp"] = json!(now() + 1200);
    assert_refused(&fx, &wires, &fx.key.sign(&c), "nbf = now + 600").await;
    // Small clock skew is tolerated by the same leeway.
    let mut c = fx.claims("files:admin");
    c["nbf"] = json!(now() + 30);
    assert_writes(&fx, &wires, &fx.key.sign(&c), "nbf = now + 30").await;
}

#[tokio::test]
async fn s4_18_token_without_exp_gives_401() {
    let fx = Fx::new().await;
    let wires = fx.wires().await;
    let mut c = fx.claims("files:admin");
    c.as_object_mut().unwrap().remove("exp");
    assert_refused(&fx, &wires, &fx.key.sign(&c), "no exp").await;
}

#[tokio::test]
async fn s4_19_wrong_iss_gives_401() {
    let fx = Fx::new().await;
    let wires = fx.wires().await;
    for iss in [
        "https://evil.example".to_owned(),
        format!("{}/", fx.issuer.issuer),
        fx.issuer.issuer.replace("127.0.0.1", "localhost"),
    ] {
        let mut c = fx.claims("files:admin");
        c["iss"] = json!(iss);
        assert_refused(&fx, &wires, &fx.key.sign(&c), &iss).await;
    }
}

#[tokio::test]
async fn s4_20_attacker_key_with_a_colliding_kid_gives_401() {
    let fx = Fx::new().await;
    let wires = fx.wires().await;
    let attacker = TestKey::rsa2().with_kid(&fx.key.kid);
    assert_refused(
        &fx,
        &wires,
        &attacker.sign(&fx.claims("files:admin")),
        "kid rsa1",
    )
    .await;
}

#[tokio::test]
async fn s4_21_wrong_aud_gives_401() {
    let fx = Fx::new().await;
    let wires = fx.wires().await;
    for aud in [
        json!("https://other.example/mcp"),
        json!(fx.server.mcp_url.replace("/mcp", "/other")),
        json!(["https://other.example/mcp", "test-client"]),
    ] {
        let mut c = fx.claims("files:admin");
        c["aud"] = aud.clone();
        assert_refused(&fx, &wires, &fx.key.sign(&c), &aud.to_string()).await;
    }
}

#[tokio::test]
async fn s4_22_missing_aud_gives_401() {
    let fx = Fx::new().await;
    let wires = fx.wires().await;
    let mut c = fx.claims("files:admin");
    c.as_object_mut().unwrap().remove("aud");
    assert_refused(&fx, &wires, &fx.key.sign(&c), "no aud").await;
}

/// Policy: an `aud` array containing E is accepted; scheme and host compare
/// case-insensitively; a trailing slash names another resource (refused).
#[tokio::test]
async fn s4_23_aud_forms_array_case_and_trailing_slash() {
    let fx = Fx::new().await;
    let wires = fx.wires().await;
    let with_aud = |aud: Value| {
        let mut c = fx.claims("files:admin");
        c["aud"] = aud;
        fx.key.sign(&c)
    };
    let e = fx.server.mcp_url.clone();
    assert_writes(
        &fx,
        &wires,
        &with_aud(json!(["https://other.example/api", e, "account"])),
        "aud array with E",
    )
    .await;
    let upper = e.replacen("http://", "HTTP://", 1);
    assert_writes(&fx, &wires, &with_aud(json!(upper)), "upper-case scheme").await;
    assert_refused(&fx, &wires, &with_aud(json!(format!("{e}/"))), "E + /").await;
}

#[tokio::test]
async fn s4_24_alg_none_in_any_case_gives_401() {
    let fx = Fx::new().await;
    let wires = fx.wires().await;
    let c = fx.claims("files:admin");
    for alg in ["none", "None", "NONE"] {
        assert_refused(&fx, &wires, &keys::unsigned(alg, &c, ""), alg).await;
        let fake = keys::unsigned(alg, &c, &b64(b"definitely-a-signature"));
        assert_refused(&fx, &wires, &fake, &format!("{alg} + fake signature")).await;
    }
}

#[tokio::test]
async fn s4_25_hmac_keyed_with_the_rsa_public_key_gives_401() {
    let fx = Fx::new().await;
    let wires = fx.wires().await;
    let c = fx.claims("files:admin");
    let n = fx.key.jwk()["n"].as_str().unwrap().to_owned();
    let n_bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(&n)
        .unwrap();
    for (what, secret) in [
        ("PEM", keys::key_file("rsa1.pub.pem")),
        ("DER", keys::key_file("rsa1.pub.der")),
        ("JWK n bytes", n_bytes),
        ("JWK n text", n.into_bytes()),
    ] {
        for header in [
            json!({"alg": "HS256", "typ": "at+jwt", "kid": "rsa1"}),
            json!({"alg": "HS256", "typ": "at+jwt"}),
        ] {
            let token = keys::sign_hmac(&secret, &header, &c);
            assert_refused(&fx, &wires, &token, &format!("HS256 with {what} {header}")).await;
        }
    }
}

#[tokio::test]
async fn s4_26_algorithm_outside_the_allowlist_gives_401() {
    let fx = Fx::new().await;
    let wires = fx.wires().await;
    let c = fx.claims("files:admin");
    // The JWKS publishes rsa1 as RS256 only.
    for (why, signer) in [
        (
            "PS256 under kid rsa1",
            TestKey::rsa1_with(Algorithm::PS256).with_kid("rsa1"),
        ),
        (
            "RS512 under kid rsa1",
            TestKey::rsa1_with(Algorithm::RS512).with_kid("rsa1"),
        ),
        ("ES256 under kid rsa1", TestKey::ec256().with_kid("rsa1")),
        ("ES256 under its own kid", TestKey::ec256()),
    ] {
        assert_refused(&fx, &wires, &signer.sign(&c), why).await;
    }
}

#[tokio::test]
async fn s4_27_unknown_kid_after_one_refresh_and_rotated_out_key_give_401() {
    let fx = Fx::new().await;
    let wires = fx.wires().await; // loads the key set
    let loaded = fx.issuer.jwks_fetches();
    assert_eq!(loaded, 1);
    for i in 0..3 {
        let token = fx
            .key
            .clone()
            .with_kid(&format!("unknown-{i}"))
            .sign(&fx.claims("files:admin"));
        assert_refused(&fx, &wires, &token, &format!("unknown kid {i}")).await;
    }
    assert!(
        fx.issuer.jwks_fetches() <= loaded + 1,
        "at most one rate-limited refresh: {} fetches",
        fx.issuer.jwks_fetches()
    );

    // Rotation: rsa1 retired, rsa2 introduced; once the set is refreshed, rsa1 is refused.
    let rot = Fx::with(|o| o.key_cooldown_secs = 1).await;
    let rot_wires = rot.wires().await;
    let rsa2 = TestKey::rsa2();
    rot.issuer.set_keys(vec![rsa2.jwk()]);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_accepted(&rot_wires, &rsa2.sign(&rot.claims("files:read")), "rsa2").await;
    assert_refused(
        &rot,
        &rot_wires,
        &rot.token("files:admin"),
        "rotated-out rsa1",
    )
    .await;
}

#[tokio::test]
async fn s4_28_jku_x5u_and_embedded_jwk_give_401_and_the_canary_sees_nothing() {
    let fx = Fx::new().await;
    let wires = fx.wires().await;
    let attacker = TestKey::rsa2().with_kid("attacker");
    let canary = fx.issuer.canary_url();
    let c = fx.claims("files:admin");
    let mut headers = Vec::new();
    for param in ["jku", "x5u"] {
        let mut h = header_for(&attacker);
        h[param] = json!(canary);
        headers.push((format!("{param}, attacker kid"), h));
        let mut h = header_for(&fx.key);
        h[param] = json!(canary);
        headers.push((format!("{param}, kid rsa1"), h));
    }
    let mut h = header_for(&attacker);
    h["jwk"] = attacker.jwk();
    headers.push(("embedded jwk, attacker kid".to_owned(), h));
    let mut h = header_for(&fx.key);
    h["jwk"] = attacker.clone().with_kid("rsa1").jwk();
    headers.push(("embedded jwk, kid rsa1".to_owned(), h));
    for (why, h) in headers {
        assert_refused(&fx, &wires, &attacker.sign_with_header(&h, &c), &why).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(fx.issuer.canary_hits(), 0, "the canary URL was contacted");
}

#[tokio::test]
async fn s4_29_crit_header_gives_401() {
    let fx = Fx::new().await;
    let wires = fx.wires().await;
    let mut h = header_for(&fx.key);
    h["crit"] = json!(["unknown-ext"]);
    h["unknown-ext"] = json!(true);
    let token = fx.key.sign_with_header(&h, &fx.claims("files:admin"));
    assert_refused(&fx, &wires, &token, "crit unknown-ext").await;
}

#[tokio::test]
async fn s4_30_id_token_presented_as_access_token_gives_401() {
    let id_token = |fx: &Fx| {
        let now = now();
        let claims = json!({
            "iss": fx.issuer.issuer, "sub": "alice", "aud": "test-client",
            "iat": now, "exp": now + 600, "auth_time": now - 5, "nonce": "n-0S6_WzA2Mj",
        });
        let mut h = header_for(&fx.key);
        h["typ"] = json!("JWT");
        fx.key.sign_with_header(&h, &claims)
    };
    // Default: typ must be at+jwt.
    let fx = Fx::new().await;
    let wires = fx.wires().await;
    assert_refused(&fx, &wires, &id_token(&fx), "ID token, typ check").await;
    // With typ JWT tolerated, the audience check still refuses it.
    let lenient = Fx::with(|o| o.lenient_typ = true).await;
    let lenient_wires = lenient.wires().await;
    assert_refused(
        &lenient,
        &lenient_wires,
        &id_token(&lenient),
        "ID token, aud check",
    )
    .await;
}

/// A tiny RFC 7662 endpoint answering from a table (unknown tokens: inactive). Client
/// authentication, caching and every failure mode are in `introspection.rs`.
async fn introspection_endpoint(
    table: HashMap<String, Value>,
) -> (String, tokio::task::JoinHandle<()>) {
    use axum::extract::State;
    let table = Arc::new(table);
    let app = axum::Router::new()
        .route(
            "/introspect",
            axum::routing::post(
                |State(table): State<Arc<HashMap<String, Value>>>, body: String| async move {
                    let token = body
                        .split('&')
                        .find_map(|p| p.strip_prefix("token="))
                        .unwrap_or_default()
                        .to_owned();
                    axum::Json(
                        table
                            .get(&token)
                            .cloned()
                            .unwrap_or_else(|| json!({"active": false})),
                    )
                },
            ),
        )
        .with_state(table);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/introspect", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, task)
}

fn introspection_options(url: String) -> impl FnOnce(&mut ServerOptions) {
    move |o: &mut ServerOptions| {
        o.introspection_endpoint = Some(url);
        o.introspection_client_id = Some("rs".into());
        o.introspection_client_secret = Some("secret".into());
    }
}

#[tokio::test]
async fn s4_31_introspection_inactive_foreign_expired_give_401_and_endpoint_down_503() {
    // The resource URL goes into the endpoint's answers: bind the server's listener first.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let e = format!("http://{}/mcp", listener.local_addr().unwrap());
    let answer = |aud: &str, exp: i64| {
        json!({"active": true, "sub": "alice", "client_id": "c", "scope": "files:admin",
               "aud": aud, "iat": now(), "exp": exp})
    };
    let table = HashMap::from([
        ("opaque_good".to_owned(), answer(&e, now() + 600)),
        ("opaque_inactive".to_owned(), json!({"active": false})),
        (
            "opaque_foreign".to_owned(),
            answer("https://other.example/mcp", now() + 600),
        ),
        ("opaque_expired".to_owned(), answer(&e, now() - 5)),
    ]);
    let (url, _endpoint) = introspection_endpoint(table).await;

    let key = TestKey::rsa1();
    let issuer = TestIssuer::start(vec![key.jwk()]).await;
    let server = start_on(listener, &issuer, introspection_options(url));
    let fx = Fx {
        issuer,
        server,
        key,
    };
    let wires = fx.wires().await;
    assert_writes(&fx, &wires, "opaque_good", "active, this audience").await;
    for token in [
        "opaque_inactive",
        "opaque_foreign",
        "opaque_expired",
        "opaque_unknown",
    ] {
        assert_refused(&fx, &wires, token, token).await;
    }

    // Endpoint down: 503, fail closed.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let down_url = format!("http://{}/introspect", closed.local_addr().unwrap());
    drop(closed);
    let down = Fx::with(introspection_options(down_url)).await;
    for m in down.wires().await {
        let a = m
            .call(Some("Bearer opaque_good"), "write_file", pwn())
            .await;
        assert_never_2xx(&a, &format!("{:?}", m.wire));
        assert_eq!(a.status, 503, "{:?}: {a:?}", m.wire);
        assert!(down.store_is_empty());
    }
}

/// The example server on `listener`, as `TestServer::start_with` starts it.
fn start_on(
    listener: tokio::net::TcpListener,
    issuer: &TestIssuer,
    adjust: impl FnOnce(&mut ServerOptions),
) -> TestServer {
    use mcp_guard_examples::files;
    TestServer::on_listener(listener, &issuer.issuer, adjust, |options| {
        files::guard(options).expect("valid options")
    })
}

#[tokio::test]
async fn s4_32_token_expiring_between_two_requests_gives_401_on_the_second() {
    let fx = Fx::with(|o| o.leeway_secs = 0).await;
    let wires = fx.wires().await;
    let mut c = fx.claims("files:admin");
    let exp = now() + 3;
    c["exp"] = json!(exp);
    let token = fx.key.sign(&c);
    assert_writes(&fx, &wires, &token, "request 1, valid").await;
    while now() <= exp {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_refused(&fx, &wires, &token, "request 2, expired since").await;
}

// =============================================================================================
// §4 403: scope / step-up (33–39)
// =============================================================================================

#[tokio::test]
async fn s4_33_read_only_token_gets_403_for_write_file_and_the_tool_does_not_run() {
    let fx = Fx::new().await;
    let reader = bearer(&fx.token("files:read"));
    for m in fx.wires().await {
        let why = format!("{:?}", m.wire);
        let a = m
            .call(
                Some(&reader),
                "write_file",
                json!({"path": "/a", "content": "x"}),
            )
            .await;
        let scopes = assert_insufficient_scope(&fx.server, &a, &["files:write"], &why);
        assert_eq!(scopes, ["files:read", "files:write"], "{why}");
        assert!(fx.store_is_empty(), "{why}: the tool ran");
    }
}

#[tokio::test]
async fn s4_34_the_same_token_calls_the_tools_it_may() {
    let fx = Fx::new().await;
    let reader = bearer(&fx.token("files:read"));
    for m in fx.wires().await {
        let a = m.call(Some(&reader), "echo", json!({"text": "hi"})).await;
        assert_eq!(a.status, 200, "{:?}: {a:?}", m.wire);
        assert_eq!(a.tool_text(), "hi");
        let a = m
            .call(Some(&reader), "read_file", json!({"path": "/none"}))
            .await;
        assert_eq!(a.status, 200, "{:?}: {a:?}", m.wire);
        assert_eq!(a.tool_text(), "no such file: /none");
    }
}

#[tokio::test]
async fn s4_35_broader_scope_implies_narrower_ones() {
    let fx = Fx::new().await;
    let wires = fx.wires().await;
    assert_writes(&fx, &wires, &fx.token("files:admin"), "files:admin").await;
}

#[tokio::test]
async fn s4_36_scopes_match_exactly_and_scp_arrays_are_honoured() {
    let fx = Fx::new().await;
    let near = bearer(&fx.token("files:writer files:write:all FILES:WRITE"));
    let wires = fx.wires().await;
    for m in &wires {
        let a = m.call(Some(&near), "write_file", pwn()).await;
        assert_insufficient_scope(&fx.server, &a, &["files:write"], &format!("{:?}", m.wire));
    }
    assert!(fx.store_is_empty());
    let mut c = fx.claims("");
    c.as_object_mut().unwrap().remove("scope");
    c["scp"] = json!(["files:write"]);
    assert_writes(&fx, &wires, &fx.key.sign(&c), "scp array").await;
}

#[tokio::test]
async fn s4_37_argument_dependent_scopes_are_challenged_all_at_once() {
    let fx = Fx::new().await;
    let writer = bearer(&fx.token("files:write"));
    for m in fx.wires().await {
        let why = format!("{:?}", m.wire);
        let a = m
            .call(
                Some(&writer),
                "write_file",
                json!({"path": "/public/x", "content": "x"}),
            )
            .await;
        assert_eq!(a.status, 200, "{why}: {a:?}");
        let a = m
            .call(
                Some(&writer),
                "write_file",
                json!({"path": "/shared/x", "content": "x"}),
            )
            .await;
        let scopes =
            assert_insufficient_scope(&fx.server, &a, &["files:shared", "files:write"], &why);
        assert_eq!(scopes, ["files:shared", "files:write"], "{why}");
        assert_eq!(fx.stored("/shared/x"), None, "{why}: the tool ran");
    }
}

#[tokio::test]
async fn s4_38_challenges_never_contain_offline_access_and_list_scopes_only() {
    let fx = Fx::new().await;
    let t = bearer(&fx.token("offline_access mail:send files:read"));
    let catalogue = ["files:admin", "files:read", "files:shared", "files:write"];
    // Anonymous first: the anonymous legacy session then belongs to the first caller who
    // signs in.
    for m in fx.anonymous_wires().await {
        let why = format!("{:?}", m.wire);
        let a = m.call(None, "read_file", json!({"path": "/x"})).await;
        assert_no_credentials(&fx.server, &a, &why);
        let a = m.call(Some(&t), "write_file", pwn()).await;
        let scopes = assert_insufficient_scope(&fx.server, &a, &["files:write"], &why);
        assert!(
            scopes.iter().all(|s| catalogue.contains(&s.as_str())),
            "{why}: only this server's scopes: {scopes:?}"
        );
    }
}

#[tokio::test]
async fn s4_39_tools_list_with_a_low_scope_token_is_200_and_private_when_filtered() {
    let fx = Fx::new().await;
    let low = bearer(&fx.token(""));
    let admin = bearer(&fx.token("files:admin"));
    for m in fx.anonymous_wires().await {
        let why = format!("{:?}", m.wire);
        let names = |a: &Answer| -> Vec<String> {
            a.json()["result"]["tools"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["name"].as_str().unwrap().to_owned())
                .collect()
        };
        let a = m.list(Some(&low)).await;
        assert_eq!(a.status, 200, "{why}: {a:?}");
        assert!(
            !names(&a).contains(&"reset_store".to_owned()),
            "{why}: filtered"
        );
        let result = &a.json()["result"];
        match m.wire {
            Wire::Stateless => assert_eq!(result["cacheScope"], "private", "{why}: {result}"),
            Wire::Legacy => assert!(result.get("cacheScope").is_none(), "{why}: {result}"),
        }
        // The list does depend on the token.
        let a = m.list(Some(&admin)).await;
        assert!(names(&a).contains(&"reset_store".to_owned()), "{why}");
    }
}

// =============================================================================================
// §4 Transport / cross-cutting (40–47)
// =============================================================================================

#[tokio::test]
async fn s4_40_foreign_origin_with_a_valid_token_gives_403_and_the_tool_does_not_run() {
    let fx = Fx::new().await;
    let admin = bearer(&fx.token("files:admin"));
    let own = fx.server.mcp_url.trim_end_matches("/mcp").to_owned();
    for m in fx.wires().await {
        let why = format!("{:?}", m.wire);
        for origin in [
            "https://evil.example",
            "null",
            "http://127.0.0.1.evil.example",
        ] {
            let a = m
                .send(
                    Req::call("write_file", pwn())
                        .auth(&admin)
                        .header("origin", origin),
                )
                .await;
            assert_eq!(a.status, 403, "{why} {origin}: {a:?}");
            assert!(a.json()["id"].is_null(), "{why}");
            assert!(fx.store_is_empty(), "{why} {origin}: the tool ran");
        }
        let a = m
            .send(
                Req::call("whoami", json!({}))
                    .auth(&admin)
                    .header("origin", &own),
            )
            .await;
        assert_eq!(a.status, 200, "{why}: own origin: {a:?}");
    }
}

#[tokio::test]
async fn s4_41_dns_rebinding_host_header_gives_4xx_and_localhost_is_served() {
    let fx = Fx::new().await;
    let t = bearer(&fx.token("files:read"));
    let port = fx.server.running.addr.port();
    let own_host = format!("127.0.0.1:{port}");
    let own_origin = format!("http://{own_host}");
    let localhost = format!("localhost:{port}");
    for m in fx.wires().await {
        let why = format!("{:?}", m.wire);
        // rmcp's allowed hosts refuse a rebinding Host even without an Origin, with a token.
        for (host, origin) in [
            ("evil.example.com", None),
            ("evil.example.com", Some("http://evil.example.com")),
            ("evil.example.com:80", None),
        ] {
            let mut req = Req::call("whoami", json!({})).auth(&t).header("host", host);
            if let Some(o) = origin {
                req = req.header("origin", o);
            }
            let a = m.send(req).await;
            assert!(
                (400..500).contains(&a.status),
                "{why} {host} {origin:?}: {a:?}"
            );
        }
        for (host, origin) in [
            (own_host.as_str(), Some(own_origin.as_str())),
            (own_host.as_str(), None),
            (localhost.as_str(), None),
        ] {
            let mut req = Req::call("whoami", json!({})).auth(&t).header("host", host);
            if let Some(o) = origin {
                req = req.header("origin", o);
            }
            let a = m.send(req).await;
            assert_eq!(a.status, 200, "{why} {host} {origin:?}: {a:?}");
        }
    }
    // Without a token, as the official suite probes it: the anonymous `initialize`.
    let init = json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{
        "protocolVersion": LEGACY, "capabilities": {},
        "clientInfo": {"name": "rebinding", "version": "0"}}})
    .to_string();
    let a = fx
        .server
        .post(
            &[
                ("host", "evil.example.com"),
                ("origin", "http://evil.example.com"),
                ("mcp-protocol-version", LEGACY),
            ],
            &init,
        )
        .await;
    assert!((400..500).contains(&a.status), "{a:?}");
    let a = fx
        .server
        .post(
            &[
                ("host", &own_host),
                ("origin", &own_origin),
                ("mcp-protocol-version", LEGACY),
            ],
            &init,
        )
        .await;
    assert_eq!(a.status, 200, "{a:?}");
}

#[tokio::test]
async fn s4_42_mcp_name_or_method_disagreeing_with_the_body_gives_400_32020_and_nothing_runs() {
    let fx = Fx::new().await;
    let reader = bearer(&fx.token("files:read"));
    let [legacy, stateless] = fx.wires().await;
    let body_args = json!({"path": "/h", "content": "x"});

    // 2026-07-28: the header says `echo` (allowed), the body `write_file` (not allowed).
    let a = stateless
        .send(
            Req::call("write_file", body_args.clone())
                .auth(&reader)
                .mcp_name("echo"),
        )
        .await;
    assert_eq!(a.status, 400, "{a:?}");
    assert_eq!(a.json()["error"]["code"], -32020, "{a:?}");
    // The header says `write_file`, the body `echo`.
    let a = stateless
        .send(
            Req::call("echo", json!({"text": "hi"}))
                .auth(&reader)
                .mcp_name("write_file"),
        )
        .await;
    assert_eq!(a.status, 400, "{a:?}");
    assert_eq!(a.json()["error"]["code"], -32020, "{a:?}");
    // `Mcp-Method: tools/list` on a `tools/call` body.
    let a = stateless
        .send(
            Req::call("write_file", body_args.clone())
                .auth(&reader)
                .mcp_method("tools/list"),
        )
        .await;
    assert_eq!(a.status, 400, "{a:?}");
    assert_eq!(a.json()["error"]["code"], -32020, "{a:?}");
    assert!(fx.store_is_empty(), "nothing executed");

    // 2025-11-25: the same lying headers are ignored; the body decides (403).
    let a = legacy
        .send(
            Req::call("write_file", body_args)
                .auth(&reader)
                .header("mcp-method", "tools/call")
                .header("mcp-name", "echo"),
        )
        .await;
    assert_insufficient_scope(&fx.server, &a, &["files:write"], "legacy");
    assert!(fx.store_is_empty(), "nothing executed");
}

#[tokio::test]
async fn s4_43_session_of_user_a_is_refused_to_user_b_and_to_no_token() {
    let fx = Fx::new().await;
    let alice = bearer(&fx.token_for("alice", "files:read files:write"));
    let bob = bearer(&fx.token_for("bob", "files:read files:write"));
    let a_session = Mcp::connect(&fx.server, Wire::Legacy, Some(&alice)).await;
    let a = a_session
        .call(
            Some(&alice),
            "write_file",
            json!({"path": "/a", "content": "x"}),
        )
        .await;
    assert_eq!(a.status, 200, "{a:?}");

    // User B's valid token on A's session: refused before A's session is reached.
    let b = a_session
        .call(
            Some(&bob),
            "write_file",
            json!({"path": "/b", "content": "x"}),
        )
        .await;
    assert_never_2xx(&b, "bob on alice's session");
    assert_eq!(b.status, 404, "{b:?}");
    assert_eq!(fx.stored("/b"), None);
    let b = a_session.list(Some(&bob)).await;
    assert_eq!(b.status, 404, "{b:?}");

    // No token on A's session: never served (the next test checks the 401 challenge).
    let n = a_session.call(None, "whoami", json!({})).await;
    assert_never_2xx(&n, "no token on alice's session");
    let n = a_session.list(None).await;
    assert_never_2xx(&n, "anonymous list on alice's session");

    // A 2026-07-28 request that names A's session is still routed into it by rmcp, so the
    // binding is checked there too: B is refused, and so is a request without a token.
    let stateless = Mcp::connect(&fx.server, Wire::Stateless, None).await;
    let sid = a_session.session.clone().unwrap();
    let b = stateless
        .send(
            Req::call("whoami", json!({}))
                .auth(&bob)
                .header("mcp-session-id", &sid),
        )
        .await;
    assert_eq!(b.status, 404, "{b:?}");
    let n = stateless
        .send(Req::call("whoami", json!({})).header("mcp-session-id", &sid))
        .await;
    assert_never_2xx(&n, "no token on alice's session, 2026-07-28 headers");
    // Without a session id B is served as B.
    let b = stateless
        .send(Req::call("whoami", json!({})).auth(&bob))
        .await;
    assert_eq!(b.status, 200, "{b:?}");
    assert!(b.tool_text().contains(r#""sub":"bob""#), "{b:?}");
}

/// Spec §4.43: "`Mcp-Session-Id` of user A presented with no token → 401": a session id is
/// not authentication, so the sign-in challenge answers, not the session.
#[tokio::test]
async fn s4_43_session_of_user_a_without_a_token_gives_401() {
    let fx = Fx::new().await;
    let alice = bearer(&fx.token("files:read"));
    let a_session = Mcp::connect(&fx.server, Wire::Legacy, Some(&alice)).await;
    let a = a_session.call(None, "whoami", json!({})).await;
    assert_no_credentials(&fx.server, &a, "no token on alice's session");
}

// 44: not applicable — the example server mints no 2026-07-28 state handles (see the header).
// 45: not applicable — the example server calls no upstream API (see the header).

/// Logs (every level, every target, server and client) captured while cases 7–33 are replayed
/// on both wires contain no token and no signature.
// One thread, so that the subscriber set for this test sees the server's tasks too.
#[tokio::test(flavor = "current_thread")]
async fn s4_46_logs_never_contain_a_token() {
    let logs = mcp_guard_tests::logs::CapturedLogs::start();

    let fx = Fx::new().await;
    let reader = fx.token("files:read");
    let admin = fx.token("files:admin");
    let mut expired = fx.claims("files:admin");
    expired["exp"] = json!(now() - 3600);
    let expired = fx.key.sign(&expired);
    let mut foreign = fx.claims("files:admin");
    foreign["aud"] = json!("https://other.example/mcp");
    let foreign = fx.key.sign(&foreign);
    let forged = keys::unsigned("none", &fx.claims("files:admin"), "");
    let opaque = "bG9nLWxlYWstY2FuYXJ5LXRva2Vu".to_owned();
    let secrets = [&reader, &admin, &expired, &foreign, &forged, &opaque];
    {
        let wires = fx.wires().await;
        for m in &wires {
            let _ = m
                .call(Some(&bearer(&reader)), "read_file", json!({"path": "/x"}))
                .await;
            let _ = m.call(Some(&bearer(&reader)), "write_file", pwn()).await;
            let _ = m
                .call(
                    Some(&bearer(&admin)),
                    "write_file",
                    json!({"path": "/l", "content": "x"}),
                )
                .await;
            for bad in [&expired, &foreign, &forged, &opaque] {
                let _ = m.call(Some(&bearer(bad)), "write_file", pwn()).await;
            }
            let _ = m
                .send(Req::list().auth(&bearer(&admin)).auth(&bearer(&reader)))
                .await;
            let url = format!("{}?access_token={admin}", fx.server.mcp_url);
            let _ = m.send(Req::list().url(url)).await;
            let _ = m
                .call(Some(&format!("Bearer {opaque} x")), "whoami", json!({}))
                .await;
        }
    }
    fx.server.stop().await;

    let log = logs.text();
    assert!(
        log.lines()
            .filter(|l| l.contains("mcp_guard::audit"))
            .count()
            >= 10,
        "the capture works: {log}"
    );
    for secret in secrets {
        assert!(
            !log.contains(secret.as_str()),
            "a token appeared in the logs"
        );
        for part in secret.split('.').filter(|p| p.len() >= 16) {
            assert!(!log.contains(part), "part of a token appeared in the logs");
        }
    }
}

// 47: not applicable — the example server has no stdio transport (see the header).
