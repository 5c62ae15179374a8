//! The example file server started for a test, and a raw MCP-over-HTTP client for it.

use std::time::Duration;

use mcp_guard_examples::files::{self, FileServer};
use mcp_guard_examples::server::{self, RunningServer, ServerOptions};
use serde_json::{Value, json};

use crate::issuer::TestIssuer;

/// The protocol revision with sessions and `initialize`.
pub const LEGACY: &str = "2025-11-25";
/// The stateless protocol revision.
pub const STATELESS: &str = "2026-07-28";

/// The example server under test.
pub struct TestServer {
    /// The running server.
    pub running: RunningServer,
    /// `http://127.0.0.1:PORT/mcp`.
    pub mcp_url: String,
    /// The path-suffixed metadata URL.
    pub metadata_url: String,
    /// The shared file store.
    pub store: files::Store,
    /// An HTTP client.
    pub http: reqwest::Client,
}

/// An HTTP answer, read whole.
#[derive(Debug)]
pub struct Answer {
    /// Status.
    pub status: u16,
    /// Headers.
    pub headers: reqwest::header::HeaderMap,
    /// Body text.
    pub body: String,
}

impl Answer {
    /// The `WWW-Authenticate` header, parsed.
    pub fn challenge(&self) -> mcp_guard::challenge::ParsedChallenge {
        let values: Vec<_> = self.headers.get_all("www-authenticate").iter().collect();
        assert_eq!(
            values.len(),
            1,
            "exactly one WWW-Authenticate header expected, got {values:?}"
        );
        mcp_guard::challenge::parse(values[0].to_str().expect("ASCII header"))
            .expect("parsable challenge")
    }

    /// Every `WWW-Authenticate` header, parsed, in order.
    pub fn challenges(&self) -> Vec<mcp_guard::challenge::ParsedChallenge> {
        self.headers
            .get_all("www-authenticate")
            .iter()
            .map(|v| {
                mcp_guard::challenge::parse(v.to_str().expect("ASCII header"))
                    .expect("parsable challenge")
            })
            .collect()
    }

    /// The one challenge of this scheme (`Bearer`, `DPoP`).
    pub fn challenge_of(&self, scheme: &str) -> mcp_guard::challenge::ParsedChallenge {
        let mut of: Vec<_> = self
            .challenges()
            .into_iter()
            .filter(|c| c.scheme.eq_ignore_ascii_case(scheme))
            .collect();
        assert_eq!(of.len(), 1, "one {scheme} challenge expected: {self:?}");
        of.remove(0)
    }

    /// Asserts that neither the token nor a sizeable part of it appears in any header or the
    /// body of this answer.
    #[track_caller]
    pub fn assert_not_echoing(&self, token: &str, why: &str) {
        let mut pieces = vec![token];
        pieces.extend(token.split('.').filter(|p| p.len() >= 16));
        for (name, value) in &self.headers {
            let value = String::from_utf8_lossy(value.as_bytes());
            for p in &pieces {
                assert!(
                    !value.contains(p),
                    "{why}: header `{name}` echoes the token"
                );
            }
        }
        for p in &pieces {
            assert!(!self.body.contains(p), "{why}: the body echoes the token");
        }
    }

    /// The JSON-RPC message in the body (plain JSON or the last SSE `data:` event).
    pub fn json(&self) -> Value {
        if let Ok(v) = serde_json::from_str(&self.body) {
            return v;
        }
        self.body
            .lines()
            .rev()
            .filter_map(|l| l.strip_prefix("data:"))
            .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
            .find(|v| v.get("id").is_some())
            .unwrap_or_else(|| panic!("no JSON-RPC message in body: {}", self.body))
    }

    /// The text of the first content block of a `tools/call` result.
    pub fn tool_text(&self) -> String {
        let v = self.json();
        v["result"]["content"][0]["text"]
            .as_str()
            .unwrap_or_else(|| panic!("not a tool result: {v}"))
            .to_owned()
    }
}

impl TestServer {
    /// Starts the example server trusting `issuer` by discovery.
    pub async fn start(issuer: &TestIssuer) -> Self {
        Self::start_with(issuer, |_| {}).await
    }

    /// Starts the example server with adjusted options.
    pub async fn start_with(issuer: &TestIssuer, adjust: impl FnOnce(&mut ServerOptions)) -> Self {
        let listener = bind().await;
        Self::on_listener(listener, &issuer.issuer, adjust, |options| {
            files::guard(options).expect("valid options")
        })
    }

    /// Starts the example server with its guard configured as the example configures it and
    /// then by `more` (a check, an audit sink, ...).
    pub async fn start_configured(
        issuer: &TestIssuer,
        more: impl FnOnce(mcp_guard::GuardBuilder) -> mcp_guard::GuardBuilder,
    ) -> Self {
        let listener = bind().await;
        Self::on_listener(
            listener,
            &issuer.issuer,
            |_| {},
            |options| {
                more(files::configure(
                    options.guard_builder().expect("valid options"),
                ))
                .build()
                .expect("valid guard")
            },
        )
    }

    /// Serves the example server on `listener` behind the guard `guard` builds from the
    /// options (`resource` is the listener's MCP URL).
    pub fn on_listener(
        listener: tokio::net::TcpListener,
        issuer: &str,
        adjust: impl FnOnce(&mut ServerOptions),
        guard: impl FnOnce(&ServerOptions) -> mcp_guard::Guard,
    ) -> Self {
        let store = files::Store::default();
        let shared = store.clone();
        let mut server = Self::serve(listener, issuer, adjust, guard, move || {
            FileServer::new(shared.clone())
        });
        server.store = store;
        server
    }

    /// Serves any rmcp server on `listener`, composed as the example binaries compose theirs,
    /// behind the guard `guard` builds from the options.
    pub fn serve<H, F>(
        listener: tokio::net::TcpListener,
        issuer: &str,
        adjust: impl FnOnce(&mut ServerOptions),
        guard: impl FnOnce(&ServerOptions) -> mcp_guard::Guard,
        factory: F,
    ) -> Self
    where
        H: rmcp::ServerHandler + Send + 'static,
        F: Fn() -> H + Send + Sync + 'static,
    {
        let addr = listener.local_addr().expect("local addr");
        let mcp_url = format!("http://{addr}/mcp");
        let mut options = ServerOptions::new(issuer, &mcp_url, addr);
        adjust(&mut options);
        let store = files::Store::default();
        let guard = guard(&options);
        let running = server::spawn(listener, &options, guard, factory).expect("server starts");
        let metadata_url = running.guard.metadata_url().to_owned();
        Self {
            running,
            mcp_url,
            metadata_url,
            store,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .build()
                .expect("client"),
        }
    }

    /// POSTs `body` to the MCP endpoint with the MCP content negotiation headers plus `headers`.
    pub async fn post(&self, headers: &[(&str, &str)], body: &str) -> Answer {
        self.post_to(&self.mcp_url, headers, body).await
    }

    /// POSTs to any URL of the server.
    pub async fn post_to(&self, url: &str, headers: &[(&str, &str)], body: &str) -> Answer {
        let mut req = self
            .http
            .post(url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(body.to_owned());
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        read(req.send().await.expect("request sent")).await
    }

    /// GETs a URL.
    pub async fn get(&self, url: &str) -> Answer {
        read(self.http.get(url).send().await.expect("request sent")).await
    }

    /// A stateless `tools/list` with this `Authorization` value: the simplest authenticated
    /// request.
    pub async fn list_with(&self, authorization: &str) -> Answer {
        self.post(
            &[
                ("authorization", authorization),
                ("mcp-protocol-version", STATELESS),
                ("mcp-method", "tools/list"),
            ],
            &stateless_body("tools/list", json!({})),
        )
        .await
    }

    /// Opens a legacy session with `token`; returns its id.
    pub async fn open_session(&self, token: &str) -> String {
        let auth = format!("Bearer {token}");
        let init = json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{
            "protocolVersion": LEGACY, "capabilities": {},
            "clientInfo": {"name": "mcp-guard-tests", "version": "0"}}});
        let a = self
            .post(
                &[("authorization", &auth), ("mcp-protocol-version", LEGACY)],
                &init.to_string(),
            )
            .await;
        assert_eq!(a.status, 200, "initialize: {a:?}");
        let sid = a
            .headers
            .get("mcp-session-id")
            .expect("session id")
            .to_str()
            .expect("ascii")
            .to_owned();
        let note = json!({"jsonrpc":"2.0","method":"notifications/initialized"});
        let n = self
            .post(
                &[
                    ("authorization", &auth),
                    ("mcp-protocol-version", LEGACY),
                    ("mcp-session-id", &sid),
                ],
                &note.to_string(),
            )
            .await;
        assert_eq!(n.status, 202, "initialized: {n:?}");
        sid
    }

    /// `tools/call` in a legacy session.
    pub async fn call_in_session(
        &self,
        token: &str,
        session: &str,
        tool: &str,
        args: Value,
    ) -> Answer {
        let auth = format!("Bearer {token}");
        let body = json!({"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":tool,"arguments":args}});
        self.post(
            &[
                ("authorization", &auth),
                ("mcp-protocol-version", LEGACY),
                ("mcp-session-id", session),
            ],
            &body.to_string(),
        )
        .await
    }

    /// `tools/call` as a stateless 2026-07-28 request (headers `Mcp-Method`/`Mcp-Name`).
    pub async fn call_stateless(
        &self,
        authorization: Option<&str>,
        tool: &str,
        header_name: &str,
        args: Value,
    ) -> Answer {
        let body = stateless_body("tools/call", json!({"name": tool, "arguments": args}));
        let mut headers = vec![
            ("mcp-protocol-version", STATELESS),
            ("mcp-method", "tools/call"),
            ("mcp-name", header_name),
        ];
        if let Some(a) = authorization {
            headers.push(("authorization", a));
        }
        self.post(&headers, &body).await
    }

    /// `tools/call` as a stateless legacy request (no session, body only).
    pub async fn call(&self, token: &str, tool: &str, args: Value) -> Answer {
        self.call_stateless(Some(&format!("Bearer {token}")), tool, tool, args)
            .await
    }

    /// Stops the server.
    pub async fn stop(self) {
        self.running.stop().await.expect("server stops cleanly");
    }
}

/// A listener on a free 127.0.0.1 port.
pub async fn bind() -> tokio::net::TcpListener {
    tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1")
}

/// A 2026-07-28 request, with its `Mcp-Method` / `Mcp-Name` headers, POSTed to any MCP URL
/// without a token (for servers reached without the guard layer).
pub async fn post_stateless(url: &str, method: &str, name: &str, params: Value) -> Answer {
    let resp = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client")
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", STATELESS)
        .header("mcp-method", method)
        .header("mcp-name", name)
        .body(stateless_body(method, params))
        .send()
        .await
        .expect("request sent");
    read(resp).await
}

/// A JSON POST with extra headers to any URL, as an MCP client sends it.
pub async fn post_json(url: &str, headers: &[(&str, &str)], body: &str) -> Answer {
    let mut req = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client")
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(body.to_owned());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    read(req.send().await.expect("request sent")).await
}

/// A 2026-07-28 request body: `params` plus the per-request `_meta`.
pub fn stateless_body(method: &str, mut params: Value) -> String {
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": STATELESS,
        "io.modelcontextprotocol/clientCapabilities": {},
    });
    json!({"jsonrpc": "2.0", "id": 9, "method": method, "params": params}).to_string()
}

async fn read(resp: reqwest::Response) -> Answer {
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.text().await.unwrap_or_default();
    Answer {
        status,
        headers,
        body,
    }
}
