//! A token issuer the tests control: discovery metadata, a JWK Set, and a canary URL, served
//! on 127.0.0.1, with faults that can be staged (outage, slowness, garbage, empty sets,
//! rotation) and counters of what was fetched.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

/// How the JWKS endpoint answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksMode {
    /// The configured keys.
    Normal,
    /// This HTTP status, empty body.
    Status(u16),
    /// A body that is not JSON.
    Garbage,
    /// `{"keys": []}`.
    Empty,
    /// The keys, after this delay.
    Slow(Duration),
    /// A body larger than any sane key set.
    Huge,
    /// A redirect to this URL.
    Redirect(String),
}

/// Where the discovery document is published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Discovery {
    /// RFC 8414 `/.well-known/oauth-authorization-server{path}`.
    Rfc8414,
    /// OpenID Connect, path-inserted `/.well-known/openid-configuration{path}`.
    OidcInserted,
    /// OpenID Connect, path-appended `{path}/.well-known/openid-configuration`.
    OidcAppended,
}

/// The issuer's controllable state.
pub struct IssuerState {
    /// The issuer identifier.
    pub issuer: String,
    /// The `issuer` written in the discovery document (defaults to the real one).
    pub advertised_issuer: Mutex<String>,
    /// The JWKs served.
    pub keys: Mutex<Vec<Value>>,
    /// How the JWKS endpoint answers.
    pub mode: Mutex<JwksMode>,
    /// `Cache-Control` of the JWKS response.
    pub cache_control: Mutex<Option<String>>,
    /// JWKS fetches served.
    pub jwks_fetches: AtomicUsize,
    /// Discovery documents served.
    pub metadata_fetches: AtomicUsize,
    /// Requests to `/canary/...` (must stay zero).
    pub canary_hits: AtomicUsize,
    /// A `jwks_uri` the discovery document names instead of this issuer's own.
    pub jwks_uri_override: Mutex<Option<String>>,
    jwks_path: String,
}

/// A running test issuer.
pub struct TestIssuer {
    /// The issuer identifier (`http://127.0.0.1:PORT{path}`).
    pub issuer: String,
    /// `http://127.0.0.1:PORT`.
    pub origin: String,
    /// Its state.
    pub state: Arc<IssuerState>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestIssuer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestIssuer {
    /// An issuer at the root path publishing RFC 8414 metadata and `keys`.
    pub async fn start(keys: Vec<Value>) -> Self {
        Self::start_with("", Discovery::Rfc8414, keys).await
    }

    /// An issuer with a path (e.g. `/tenant1`), publishing its discovery document the given way.
    pub async fn start_with(path: &str, discovery: Discovery, keys: Vec<Value>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1");
        let origin = format!("http://{}", listener.local_addr().expect("local addr"));
        let issuer = format!("{origin}{path}");
        let state = Arc::new(IssuerState {
            issuer: issuer.clone(),
            advertised_issuer: Mutex::new(issuer.clone()),
            keys: Mutex::new(keys),
            mode: Mutex::new(JwksMode::Normal),
            cache_control: Mutex::new(None),
            jwks_fetches: AtomicUsize::new(0),
            metadata_fetches: AtomicUsize::new(0),
            canary_hits: AtomicUsize::new(0),
            jwks_uri_override: Mutex::new(None),
            jwks_path: format!("{path}/jwks"),
        });
        let metadata_path = match discovery {
            Discovery::Rfc8414 => format!("/.well-known/oauth-authorization-server{path}"),
            Discovery::OidcInserted => format!("/.well-known/openid-configuration{path}"),
            Discovery::OidcAppended => format!("{path}/.well-known/openid-configuration"),
        };
        let app = Router::new()
            .route(&metadata_path, get(metadata))
            .route(&state.jwks_path.clone(), get(jwks))
            .route("/canary/{*rest}", get(canary))
            .with_state(state.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            issuer,
            origin,
            state,
            task,
        }
    }

    /// The JWKS URL.
    pub fn jwks_uri(&self) -> String {
        format!("{}{}", self.origin, self.state.jwks_path)
    }

    /// A URL that must never be contacted.
    pub fn canary_url(&self) -> String {
        format!("{}/canary/keys", self.origin)
    }

    /// Replaces the published keys.
    pub fn set_keys(&self, keys: Vec<Value>) {
        *self.state.keys.lock().expect("lock") = keys;
    }

    /// Changes how the JWKS endpoint answers.
    pub fn set_mode(&self, mode: JwksMode) {
        *self.state.mode.lock().expect("lock") = mode;
    }

    /// Sets `Cache-Control` on JWKS responses.
    pub fn set_cache_control(&self, value: &str) {
        *self.state.cache_control.lock().expect("lock") = Some(value.to_owned());
    }

    /// Makes the discovery document claim another issuer.
    pub fn advertise_issuer(&self, issuer: &str) {
        *self.state.advertised_issuer.lock().expect("lock") = issuer.to_owned();
    }

    /// Makes the discovery document name another key set URL.
    pub fn advertise_jwks_uri(&self, url: &str) {
        *self.state.jwks_uri_override.lock().expect("lock") = Some(url.to_owned());
    }

    /// JWKS fetches so far.
    pub fn jwks_fetches(&self) -> usize {
        self.state.jwks_fetches.load(Ordering::SeqCst)
    }

    /// Requests to the canary so far.
    pub fn canary_hits(&self) -> usize {
        self.state.canary_hits.load(Ordering::SeqCst)
    }
}

async fn metadata(State(state): State<Arc<IssuerState>>, headers: HeaderMap) -> Response {
    state.metadata_fetches.fetch_add(1, Ordering::SeqCst);
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let advertised = state.advertised_issuer.lock().expect("lock").clone();
    let jwks_uri = state
        .jwks_uri_override
        .lock()
        .expect("lock")
        .clone()
        .unwrap_or_else(|| format!("http://{host}{}", state.jwks_path));
    axum::Json(json!({
        "issuer": advertised,
        "jwks_uri": jwks_uri,
        "authorization_endpoint": format!("{}/authorize", state.issuer),
        "token_endpoint": format!("{}/token", state.issuer),
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
    }))
    .into_response()
}

async fn jwks(State(state): State<Arc<IssuerState>>) -> Response {
    state.jwks_fetches.fetch_add(1, Ordering::SeqCst);
    let mode = state.mode.lock().expect("lock").clone();
    let keys = state.keys.lock().expect("lock").clone();
    let cache_control = state.cache_control.lock().expect("lock").clone();
    let mut resp = match mode {
        JwksMode::Normal => axum::Json(json!({ "keys": keys })).into_response(),
        JwksMode::Status(code) => StatusCode::from_u16(code)
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            .into_response(),
        JwksMode::Garbage => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            "<html>oops",
        )
            .into_response(),
        JwksMode::Empty => axum::Json(json!({ "keys": [] })).into_response(),
        JwksMode::Slow(delay) => {
            tokio::time::sleep(delay).await;
            axum::Json(json!({ "keys": keys })).into_response()
        }
        JwksMode::Huge => {
            let filler = "x".repeat(2 * 1024 * 1024);
            axum::Json(json!({ "keys": keys, "filler": filler })).into_response()
        }
        JwksMode::Redirect(to) => (StatusCode::FOUND, [(header::LOCATION, to)]).into_response(),
    };
    if let Some(cc) = cache_control
        && let Ok(v) = cc.parse()
    {
        resp.headers_mut().insert(header::CACHE_CONTROL, v);
    }
    resp
}

async fn canary(State(state): State<Arc<IssuerState>>) -> Response {
    state.canary_hits.fetch_add(1, Ordering::SeqCst);
    axum::Json(json!({ "keys": [] })).into_response()
}
