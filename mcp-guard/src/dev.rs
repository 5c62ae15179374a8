//! An embedded development authorization server (feature `dev`, never for production): RFC
//! 8414 and OpenID Connect discovery, a JWKS, dynamic client registration (RFC 7591), client
//! ID metadata documents, authorization code with PKCE (S256) and a consent page, refresh
//! tokens that rotate, client credentials, and RFC 9068 JWT access tokens whose `aud` is the
//! requested resource (RFC 8707). It also mints tokens with chosen claims for tests.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use mcp_guard::dev::DevAuthServer;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let dev = DevAuthServer::builder().auto_approve(true).start(listener).await?;
//! // Real clients run the OAuth flow against dev.issuer(); tests can mint tokens directly:
//! let token = dev.token().subject("alice").scope("files:read").audience("http://127.0.0.1:8080/mcp").sign();
//! # let _ = token; Ok(()) }
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SecureRandom as _;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use url::Url;

use crate::scope::{ScopeSet, validate_scope_token};

const MAX_CLIENTS: usize = 10_000;
const MAX_PENDING: usize = 10_000;

/// Configures a [`DevAuthServer`].
#[derive(Debug, Clone)]
pub struct DevAuthServerBuilder {
    auto_approve: bool,
    subject: String,
    scopes_supported: Vec<String>,
    resources: Vec<String>,
    access_token_ttl: Duration,
    code_ttl: Duration,
    refresh_token_ttl: Duration,
    loopback_client_metadata: bool,
}

impl Default for DevAuthServerBuilder {
    fn default() -> Self {
        Self {
            auto_approve: false,
            subject: "dev-user".to_owned(),
            scopes_supported: Vec::new(),
            resources: Vec::new(),
            access_token_ttl: Duration::from_secs(3600),
            code_ttl: Duration::from_secs(60),
            refresh_token_ttl: Duration::from_secs(24 * 3600),
            loopback_client_metadata: true,
        }
    }
}

impl DevAuthServerBuilder {
    /// Approve every authorization request without showing the consent page (tests, headless
    /// runs). Default: show the page.
    pub fn auto_approve(mut self, yes: bool) -> Self {
        self.auto_approve = yes;
        self
    }

    /// The user every authorization code is issued for (default `dev-user`).
    pub fn subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = subject.into();
        self
    }

    /// Scopes advertised in the metadata; when set, requests for other scopes are refused with
    /// `invalid_scope`.
    pub fn scopes_supported<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scopes_supported = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// A resource tokens may be issued for. When any is set, a `resource` parameter must be one
    /// of them (`invalid_target` otherwise), and requests without one get the first.
    pub fn resource(mut self, resource: impl Into<String>) -> Self {
        self.resources.push(resource.into());
        self
    }

    /// Lifetime of access tokens (default 1 h).
    pub fn access_token_ttl(mut self, ttl: Duration) -> Self {
        self.access_token_ttl = ttl;
        self
    }

    /// Lifetime of authorization codes (default 60 s).
    pub fn code_ttl(mut self, ttl: Duration) -> Self {
        self.code_ttl = ttl;
        self
    }

    /// Whether client ID metadata documents may be served over plain http from loopback
    /// addresses (default true, for local clients and tests).
    pub fn loopback_client_metadata(mut self, yes: bool) -> Self {
        self.loopback_client_metadata = yes;
        self
    }

    /// A server whose issuer identifier is `issuer` (e.g. `http://127.0.0.1:9000`).
    pub fn build(self, issuer: &str) -> Result<DevAuthServer, DevError> {
        crate::jwt::ensure_crypto_provider();
        let issuer = issuer.trim_end_matches('/').to_owned();
        Url::parse(&issuer).map_err(|_| DevError(format!("`{issuer}` is not an absolute URL")))?;
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|_| DevError("generating the signing key failed".into()))?;
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref())
            .map_err(|_| DevError("loading the signing key failed".into()))?;
        let public = pair.public_key().as_ref();
        // Uncompressed point: 0x04 || X (32) || Y (32).
        let (x, y) = (&public[1..33], &public[33..65]);
        let kid = random_token(8);
        let jwk = json!({
            "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
            "x": b64(x), "y": b64(y),
        });
        let key = EncodingKey::from_ec_der(pkcs8.as_ref());
        Ok(DevAuthServer(Arc::new(Inner {
            issuer,
            config: self,
            key,
            kid,
            jwk,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap_or_default(),
            state: Mutex::new(Store::default()),
        })))
    }

    /// Binds the server to `listener` (its address becomes the issuer) and serves it until
    /// the returned handle is dropped or stopped.
    pub async fn start(
        self,
        listener: tokio::net::TcpListener,
    ) -> Result<RunningDevAuthServer, DevError> {
        let addr = listener.local_addr().map_err(|e| DevError(e.to_string()))?;
        let server = self.build(&format!("http://{addr}"))?;
        let app = server.router();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(RunningDevAuthServer { server, task })
    }
}

/// A configuration or start-up failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("development authorization server: {0}")]
pub struct DevError(String);

/// The development authorization server. Cheap to clone.
#[derive(Clone)]
pub struct DevAuthServer(Arc<Inner>);

struct Inner {
    issuer: String,
    config: DevAuthServerBuilder,
    key: EncodingKey,
    kid: String,
    jwk: Value,
    http: reqwest::Client,
    state: Mutex<Store>,
}

#[derive(Default)]
struct Store {
    clients: HashMap<String, Client>,
    pending: HashMap<String, (Instant, AuthorizeRequest, Client)>,
    codes: HashMap<String, CodeGrant>,
    refresh: HashMap<String, RefreshGrant>,
}

#[derive(Debug, Clone)]
struct Client {
    id: String,
    secret: Option<String>,
    name: Option<String>,
    redirect_uris: Vec<String>,
    grant_types: Vec<String>,
}

struct CodeGrant {
    client_id: String,
    redirect_uri: String,
    challenge: String,
    scope: ScopeSet,
    resource: Option<String>,
    expires: Instant,
    used: bool,
}

struct RefreshGrant {
    client_id: String,
    subject: String,
    scope: ScopeSet,
    resource: Option<String>,
    expires: Instant,
}

/// A running [`DevAuthServer`]; stops when dropped.
pub struct RunningDevAuthServer {
    server: DevAuthServer,
    task: tokio::task::JoinHandle<()>,
}

impl std::ops::Deref for RunningDevAuthServer {
    type Target = DevAuthServer;
    fn deref(&self) -> &DevAuthServer {
        &self.server
    }
}

impl Drop for RunningDevAuthServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl DevAuthServer {
    /// Starts a configuration.
    pub fn builder() -> DevAuthServerBuilder {
        DevAuthServerBuilder::default()
    }

    /// The issuer identifier.
    pub fn issuer(&self) -> &str {
        &self.0.issuer
    }

    /// The public JWK Set.
    pub fn jwks(&self) -> Value {
        json!({ "keys": [self.0.jwk] })
    }

    /// A token builder for tests: by default a valid RFC 9068 access token for the subject
    /// `dev-user`, the client `dev-client`, no scope, no audience, valid for the configured
    /// access-token lifetime.
    pub fn token(&self) -> TokenBuilder {
        TokenBuilder {
            server: self.clone(),
            claims: Map::new(),
            ttl: self.0.config.access_token_ttl,
            typ: Some("at+jwt".to_owned()),
        }
    }

    /// Registers a confidential client for `client_credentials` (and, with redirect URIs,
    /// the authorization code flow); returns its id and secret.
    pub fn register_confidential_client(
        &self,
        name: &str,
        redirect_uris: &[&str],
    ) -> (String, String) {
        let client = Client {
            id: format!("dev-{}", random_token(12)),
            secret: Some(random_token(24)),
            name: Some(name.to_owned()),
            redirect_uris: redirect_uris.iter().map(|s| (*s).to_owned()).collect(),
            grant_types: vec![
                "authorization_code".into(),
                "refresh_token".into(),
                "client_credentials".into(),
            ],
        };
        let ids = (client.id.clone(), client.secret.clone().unwrap_or_default());
        self.lock().clients.insert(client.id.clone(), client);
        ids
    }

    /// The routes, to serve on their own listener or inside another router (the issuer must
    /// then be the URL they are reachable at).
    pub fn router(&self) -> Router {
        Router::new()
            .route("/.well-known/oauth-authorization-server", get(metadata))
            .route("/.well-known/openid-configuration", get(metadata))
            .route("/jwks", get(jwks))
            .route("/register", post(register))
            .route("/authorize", get(authorize).post(decide))
            .route("/token", post(token))
            .with_state(self.clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Store> {
        self.0.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn metadata(&self) -> Value {
        let i = &self.0.issuer;
        let mut doc = json!({
            "issuer": i,
            "authorization_endpoint": format!("{i}/authorize"),
            "token_endpoint": format!("{i}/token"),
            "registration_endpoint": format!("{i}/register"),
            "jwks_uri": format!("{i}/jwks"),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["none", "client_secret_basic", "client_secret_post"],
            "client_id_metadata_document_supported": true,
            "authorization_response_iss_parameter_supported": true,
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["ES256"],
        });
        if !self.0.config.scopes_supported.is_empty() {
            doc["scopes_supported"] = json!(self.0.config.scopes_supported);
        }
        doc
    }

    fn sign(&self, claims: &Map<String, Value>, typ: Option<&str>) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.0.kid.clone());
        header.typ = typ.map(str::to_owned);
        jsonwebtoken::encode(&header, claims, &self.0.key)
            .expect("signing with the generated key works")
    }

    fn access_token(
        &self,
        subject: &str,
        client_id: &str,
        scope: &ScopeSet,
        resource: Option<&str>,
    ) -> (String, u64) {
        let ttl = self.0.config.access_token_ttl.as_secs();
        let mut t = self
            .token()
            .subject(subject)
            .client_id(client_id)
            .expires_in(self.0.config.access_token_ttl);
        if !scope.is_empty() {
            t = t.scope(&scope.to_string());
        }
        if let Some(r) = resource {
            t = t.audience(r);
        }
        (t.sign(), ttl)
    }
}

/// Builds a signed token with chosen claims (see [`DevAuthServer::token`]).
#[must_use]
pub struct TokenBuilder {
    server: DevAuthServer,
    claims: Map<String, Value>,
    ttl: Duration,
    typ: Option<String>,
}

impl TokenBuilder {
    /// `sub`.
    pub fn subject(self, sub: &str) -> Self {
        self.claim("sub", sub)
    }

    /// `client_id`.
    pub fn client_id(self, id: &str) -> Self {
        self.claim("client_id", id)
    }

    /// `scope` (space-separated).
    pub fn scope(self, scope: &str) -> Self {
        self.claim("scope", scope)
    }

    /// `aud`.
    pub fn audience(self, aud: &str) -> Self {
        self.claim("aud", aud)
    }

    /// Lifetime from now (`exp`). A zero lifetime expires at once but is still inside a
    /// verifier's leeway; for an expired token set `exp` in the past with
    /// [`TokenBuilder::claim`].
    pub fn expires_in(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// The `typ` header (`None` leaves it out). Default `at+jwt`.
    pub fn typ(mut self, typ: Option<&str>) -> Self {
        self.typ = typ.map(str::to_owned);
        self
    }

    /// Any claim (overrides the defaults, including `iss`, `exp`, `iat`, `jti`).
    pub fn claim(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.claims.insert(name.to_owned(), value.into());
        self
    }

    /// Removes a claim (to make one missing).
    pub fn without(mut self, name: &str) -> Self {
        self.claims.insert(name.to_owned(), Value::Null);
        self
    }

    /// The compact JWS.
    pub fn sign(self) -> String {
        let now = unix_now();
        let mut claims = Map::new();
        claims.insert("iss".into(), self.server.0.issuer.clone().into());
        claims.insert("sub".into(), "dev-user".into());
        claims.insert("client_id".into(), "dev-client".into());
        claims.insert("iat".into(), now.into());
        claims.insert("exp".into(), (now + self.ttl.as_secs()).into());
        claims.insert("jti".into(), random_token(12).into());
        for (k, v) in self.claims {
            if v.is_null() {
                claims.remove(&k);
            } else {
                claims.insert(k, v);
            }
        }
        self.server.sign(&claims, self.typ.as_deref())
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    aws_lc_rs::rand::SystemRandom::new()
        .fill(&mut buf)
        .expect("the system random source works");
    b64(&buf)
}

fn s256(verifier: &str) -> String {
    b64(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes()).as_ref())
}

/// An RFC 6749 §5.2 error response.
fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        [(header::CACHE_CONTROL, "no-store")],
        Json(json!({ "error": error, "error_description": description })),
    )
        .into_response()
}

async fn metadata(State(s): State<DevAuthServer>) -> Json<Value> {
    Json(s.metadata())
}

async fn jwks(State(s): State<DevAuthServer>) -> Json<Value> {
    Json(s.jwks())
}

/// Loopback redirect URIs may use any port (RFC 8252 §7.3, OAuth 2.1 §8.4.2); all others
/// match exactly.
fn redirect_matches(registered: &str, requested: &str) -> bool {
    if registered == requested {
        return true;
    }
    let (Ok(a), Ok(b)) = (Url::parse(registered), Url::parse(requested)) else {
        return false;
    };
    let loopback = |u: &Url| {
        u.scheme() == "http" && matches!(u.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"))
    };
    loopback(&a)
        && loopback(&b)
        && a.host_str() == b.host_str()
        && a.path() == b.path()
        && a.query() == b.query()
}

fn valid_redirect_uri(uri: &str) -> bool {
    match Url::parse(uri) {
        Ok(u) if u.fragment().is_none() => match u.scheme() {
            "https" => true,
            "http" => crate::jwks::is_loopback(&u),
            // Private-use schemes of native apps (RFC 8252 §7.1) contain a dot.
            s => s.contains('.'),
        },
        _ => false,
    }
}

#[derive(Deserialize)]
struct RegistrationRequest {
    #[serde(default)]
    redirect_uris: Vec<String>,
    #[serde(default)]
    client_name: Option<String>,
    #[serde(default)]
    grant_types: Option<Vec<String>>,
    #[serde(default)]
    token_endpoint_auth_method: Option<String>,
}

/// RFC 7591 dynamic client registration.
async fn register(State(s): State<DevAuthServer>, body: axum::body::Bytes) -> Response {
    let reg_error = |error: &str, d: &str| oauth_error(StatusCode::BAD_REQUEST, error, d);
    let Ok(req) = serde_json::from_slice::<RegistrationRequest>(&body) else {
        return reg_error(
            "invalid_client_metadata",
            "the registration request is not valid JSON client metadata",
        );
    };
    let grant_types = req
        .grant_types
        .unwrap_or_else(|| vec!["authorization_code".into(), "refresh_token".into()]);
    if let Some(g) = grant_types.iter().find(|g| {
        !matches!(
            g.as_str(),
            "authorization_code" | "refresh_token" | "client_credentials"
        )
    }) {
        return reg_error(
            "invalid_client_metadata",
            &format!("unsupported grant type `{g}`"),
        );
    }
    if grant_types.iter().any(|g| g == "authorization_code") && req.redirect_uris.is_empty() {
        return reg_error(
            "invalid_redirect_uri",
            "authorization_code clients must register redirect_uris",
        );
    }
    if let Some(bad) = req.redirect_uris.iter().find(|u| !valid_redirect_uri(u)) {
        return reg_error(
            "invalid_redirect_uri",
            &format!(
                "redirect URI `{bad}` must be https, http on a loopback address, or a private-use scheme"
            ),
        );
    }
    let method = req
        .token_endpoint_auth_method
        .unwrap_or_else(|| "client_secret_basic".into());
    let secret = match method.as_str() {
        "none" => None,
        "client_secret_basic" | "client_secret_post" => Some(random_token(24)),
        other => {
            return reg_error(
                "invalid_client_metadata",
                &format!("unsupported token_endpoint_auth_method `{other}`"),
            );
        }
    };
    let client = Client {
        id: format!("dev-{}", random_token(12)),
        secret,
        name: req.client_name,
        redirect_uris: req.redirect_uris,
        grant_types,
    };
    let mut body = json!({
        "client_id": client.id,
        "client_id_issued_at": unix_now(),
        "redirect_uris": client.redirect_uris,
        "grant_types": client.grant_types,
        "response_types": ["code"],
        "token_endpoint_auth_method": method,
    });
    if let Some(name) = &client.name {
        body["client_name"] = json!(name);
    }
    if let Some(secret) = &client.secret {
        body["client_secret"] = json!(secret);
        body["client_secret_expires_at"] = json!(0);
    }
    let mut store = s.lock();
    if store.clients.len() >= MAX_CLIENTS {
        return reg_error("invalid_client_metadata", "too many registered clients");
    }
    store.clients.insert(client.id.clone(), client);
    (
        StatusCode::CREATED,
        [(header::CACHE_CONTROL, "no-store")],
        Json(body),
    )
        .into_response()
}

#[derive(Debug, Clone, Deserialize)]
struct AuthorizeRequest {
    response_type: Option<String>,
    client_id: Option<String>,
    redirect_uri: Option<String>,
    scope: Option<String>,
    state: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
    resource: Option<String>,
}

impl DevAuthServer {
    /// The client: registered, or described by a client ID metadata document at its URL.
    async fn client(&self, client_id: &str) -> Result<Client, String> {
        if let Some(c) = self.lock().clients.get(client_id) {
            return Ok(c.clone());
        }
        let url = Url::parse(client_id).map_err(|_| format!("unknown client `{client_id}`"))?;
        let allowed = url.scheme() == "https"
            || (self.0.config.loopback_client_metadata
                && url.scheme() == "http"
                && crate::jwks::is_loopback(&url));
        if !allowed || url.path() == "/" {
            return Err(format!(
                "unknown client `{client_id}`; a client ID metadata document must be at an https URL with a path"
            ));
        }
        let resp =
            self.0.http.get(url.clone()).send().await.map_err(|_| {
                format!("fetching the client metadata document `{client_id}` failed")
            })?;
        if !resp.status().is_success() {
            return Err(format!(
                "the client metadata document `{client_id}` answered HTTP {}",
                resp.status().as_u16()
            ));
        }
        let bytes = resp
            .bytes()
            .await
            .map_err(|_| "reading the client metadata document failed".to_owned())?;
        if bytes.len() > 64 * 1024 {
            return Err("the client metadata document is larger than 64 KiB".to_owned());
        }
        let doc: Value = serde_json::from_slice(&bytes)
            .map_err(|_| "the client metadata document is not JSON".to_owned())?;
        if doc.get("client_id").and_then(Value::as_str) != Some(client_id) {
            return Err(
                "the client metadata document's `client_id` differs from its URL".to_owned(),
            );
        }
        let redirect_uris: Vec<String> = doc
            .get("redirect_uris")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        Ok(Client {
            id: client_id.to_owned(),
            secret: None,
            name: doc
                .get("client_name")
                .and_then(Value::as_str)
                .map(str::to_owned),
            redirect_uris,
            grant_types: vec!["authorization_code".into(), "refresh_token".into()],
        })
    }

    /// Redirects back to the client with `params`, the `state` and the RFC 9207 `iss`.
    fn redirect_back(
        &self,
        redirect_uri: &str,
        state: Option<&str>,
        params: &[(&str, &str)],
    ) -> Response {
        let mut url = match Url::parse(redirect_uri) {
            Ok(u) => u,
            Err(_) => {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "invalid redirect_uri",
                );
            }
        };
        {
            let mut q = url.query_pairs_mut();
            for (k, v) in params {
                q.append_pair(k, v);
            }
            if let Some(state) = state {
                q.append_pair("state", state);
            }
            q.append_pair("iss", &self.0.issuer);
        }
        Redirect::to(url.as_str()).into_response()
    }

    fn scopes_allowed(&self, scope: &ScopeSet) -> Result<(), String> {
        let supported = &self.0.config.scopes_supported;
        match scope
            .iter()
            .find(|s| !supported.is_empty() && !supported.iter().any(|x| x == s))
        {
            Some(s) => Err(format!("scope `{s}` is not supported")),
            None => Ok(()),
        }
    }

    fn resource_for(&self, requested: Option<&str>) -> Result<Option<String>, String> {
        let known = &self.0.config.resources;
        match requested {
            Some(r) => {
                let url =
                    Url::parse(r).map_err(|_| format!("resource `{r}` is not an absolute URI"))?;
                if url.fragment().is_some() {
                    return Err(format!("resource `{r}` must not have a fragment"));
                }
                if !known.is_empty() && !known.iter().any(|k| k == r) {
                    return Err(format!("this server issues no tokens for resource `{r}`"));
                }
                Ok(Some(r.to_owned()))
            }
            None => Ok(known.first().cloned()),
        }
    }

    fn issue_code(&self, req: &AuthorizeRequest, client: &Client) -> Response {
        let code = random_token(24);
        let redirect_uri = req.redirect_uri.clone().unwrap_or_default();
        let scope = ScopeSet::parse(req.scope.as_deref().unwrap_or_default()).unwrap_or_default();
        let mut store = self.lock();
        store.codes.retain(|_, c| c.expires > Instant::now());
        store.codes.insert(
            code.clone(),
            CodeGrant {
                client_id: client.id.clone(),
                redirect_uri: redirect_uri.clone(),
                challenge: req.code_challenge.clone().unwrap_or_default(),
                scope,
                resource: req.resource.clone(),
                expires: Instant::now() + self.0.config.code_ttl,
                used: false,
            },
        );
        drop(store);
        self.redirect_back(&redirect_uri, req.state.as_deref(), &[("code", &code)])
    }
}

fn error_page(status: StatusCode, message: &str) -> Response {
    (status, Html(format!("<!doctype html><title>Authorization error</title><h1>Authorization error</h1><p>{}</p>", html_escape(message)))).into_response()
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// The authorization endpoint: validates the request, then shows the consent page (or
/// approves at once with `auto_approve`).
async fn authorize(
    State(s): State<DevAuthServer>,
    Query(mut req): Query<AuthorizeRequest>,
) -> Response {
    // Errors about the client or the redirect URI are shown, never redirected (RFC 6749 §4.1.2.1).
    let Some(client_id) = req.client_id.clone() else {
        return error_page(StatusCode::BAD_REQUEST, "the request has no client_id");
    };
    let client = match s.client(&client_id).await {
        Ok(c) => c,
        Err(e) => return error_page(StatusCode::BAD_REQUEST, &e),
    };
    let Some(redirect_uri) = req.redirect_uri.clone() else {
        return error_page(StatusCode::BAD_REQUEST, "the request has no redirect_uri");
    };
    if !client
        .redirect_uris
        .iter()
        .any(|r| redirect_matches(r, &redirect_uri))
    {
        return error_page(
            StatusCode::BAD_REQUEST,
            "the redirect_uri is not registered for this client",
        );
    }
    let back = |error: &str, d: &str| {
        s.redirect_back(
            &redirect_uri,
            req.state.as_deref(),
            &[("error", error), ("error_description", d)],
        )
    };
    if req.response_type.as_deref() != Some("code") {
        return back(
            "unsupported_response_type",
            "only response_type=code is supported",
        );
    }
    if !client.grant_types.iter().any(|g| g == "authorization_code") {
        return back(
            "unauthorized_client",
            "this client may not use the authorization code grant",
        );
    }
    match (
        req.code_challenge.as_deref(),
        req.code_challenge_method.as_deref(),
    ) {
        (Some(c), Some("S256"))
            if c.len() == 43
                && c.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') => {}
        (Some(_), Some("S256")) => {
            return back(
                "invalid_request",
                "code_challenge must be a base64url SHA-256 digest",
            );
        }
        (Some(_), _) => return back("invalid_request", "code_challenge_method must be S256"),
        (None, _) => {
            return back(
                "invalid_request",
                "PKCE is required: send code_challenge with code_challenge_method=S256",
            );
        }
    }
    let scope = match ScopeSet::parse(req.scope.as_deref().unwrap_or_default()) {
        Ok(s) => s,
        Err(_) => return back("invalid_scope", "the scope parameter is malformed"),
    };
    if let Err(e) = s.scopes_allowed(&scope) {
        return back("invalid_scope", &e);
    }
    match s.resource_for(req.resource.as_deref()) {
        Ok(r) => req.resource = r,
        Err(e) => return back("invalid_target", &e),
    }
    if s.0.config.auto_approve {
        return s.issue_code(&req, &client);
    }
    let id = random_token(18);
    {
        let mut store = s.lock();
        store
            .pending
            .retain(|_, (at, ..)| at.elapsed() < Duration::from_secs(600));
        if store.pending.len() >= MAX_PENDING {
            return error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "too many pending authorization requests",
            );
        }
        store
            .pending
            .insert(id.clone(), (Instant::now(), req.clone(), client.clone()));
    }
    consent_page(&s, &id, &client, &scope, req.resource.as_deref())
}

fn consent_page(
    s: &DevAuthServer,
    id: &str,
    client: &Client,
    scope: &ScopeSet,
    resource: Option<&str>,
) -> Response {
    let name = client.name.clone().unwrap_or_else(|| client.id.clone());
    let scopes = if scope.is_empty() {
        "<li><em>no scopes</em></li>".to_owned()
    } else {
        scope
            .iter()
            .map(|s| format!("<li><code>{}</code></li>", html_escape(s)))
            .collect()
    };
    let page = format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Authorize {name}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:34rem;margin:3rem auto;padding:0 1rem}}button{{font-size:1rem;padding:.5rem 1.2rem;margin-right:.5rem}}</style></head>
<body><h1>Authorize <em>{name}</em>?</h1>
<p>The development authorization server at <code>{issuer}</code> will let <strong>{name}</strong> act as <strong>{subject}</strong>{resource}.</p>
<p>Requested scopes:</p><ul>{scopes}</ul>
<form method="post" action="">
<input type="hidden" name="request_id" value="{id}">
<button type="submit" name="decision" value="approve">Approve</button>
<button type="submit" name="decision" value="deny">Deny</button>
</form></body></html>"#,
        name = html_escape(&name),
        issuer = html_escape(&s.0.issuer),
        subject = html_escape(&s.0.config.subject),
        resource = resource
            .map(|r| format!(" at <code>{}</code>", html_escape(r)))
            .unwrap_or_default(),
    );
    ([(header::CACHE_CONTROL, "no-store")], Html(page)).into_response()
}

#[derive(Deserialize)]
struct Decision {
    request_id: String,
    decision: String,
}

/// The consent form's submission.
async fn decide(State(s): State<DevAuthServer>, Form(d): Form<Decision>) -> Response {
    let Some((_, req, client)) = s.lock().pending.remove(&d.request_id) else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "this authorization request is unknown or has expired",
        );
    };
    if d.decision == "approve" {
        s.issue_code(&req, &client)
    } else {
        let redirect_uri = req.redirect_uri.clone().unwrap_or_default();
        s.redirect_back(
            &redirect_uri,
            req.state.as_deref(),
            &[
                ("error", "access_denied"),
                ("error_description", "the user denied the request"),
            ],
        )
    }
}

#[derive(Deserialize)]
struct TokenRequest {
    grant_type: Option<String>,
    code: Option<String>,
    redirect_uri: Option<String>,
    code_verifier: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    refresh_token: Option<String>,
    scope: Option<String>,
    resource: Option<String>,
}

/// The authenticated client of a token request: HTTP Basic, `client_secret_post`, or a public
/// client that only names itself.
async fn token_client(
    s: &DevAuthServer,
    headers: &HeaderMap,
    req: &TokenRequest,
) -> Result<Client, Response> {
    let invalid = |d: &str| {
        let mut r = oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", d);
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Basic realm=\"token\""),
        );
        r
    };
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Basic ")
                .or_else(|| v.strip_prefix("basic "))
        })
        .and_then(|b| {
            base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .ok()
        })
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|pair| {
            let (id, secret) = pair.split_once(':')?;
            let decode = |s: &str| {
                url::form_urlencoded::parse(format!("x={s}").as_bytes())
                    .next()
                    .map(|(_, v)| v.into_owned())
            };
            Some((decode(id)?, decode(secret)?))
        });
    let (id, secret) = match (&basic, &req.client_id, &req.client_secret) {
        (Some((id, secret)), _, None) => (id.clone(), Some(secret.clone())),
        (Some(_), _, Some(_)) => {
            return Err(oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "use one client authentication method",
            ));
        }
        (None, Some(id), secret) => (id.clone(), secret.clone()),
        (None, None, _) => return Err(invalid("client authentication is required")),
    };
    let client = s.client(&id).await.map_err(|e| invalid(&e))?;
    match (&client.secret, secret) {
        (None, None) => Ok(client),
        (Some(expected), Some(given))
            if constant_time_eq(expected.as_bytes(), given.as_bytes()) =>
        {
            Ok(client)
        }
        (None, Some(_)) => Err(invalid("this public client has no secret")),
        _ => Err(invalid("client authentication failed")),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The token endpoint.
async fn token(
    State(s): State<DevAuthServer>,
    headers: HeaderMap,
    Form(req): Form<TokenRequest>,
) -> Response {
    let client = match token_client(&s, &headers, &req).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let bad = |error: &str, d: &str| oauth_error(StatusCode::BAD_REQUEST, error, d);
    let grant = req.grant_type.as_deref().unwrap_or_default();
    if !client.grant_types.iter().any(|g| g == grant)
        && matches!(
            grant,
            "authorization_code" | "refresh_token" | "client_credentials"
        )
    {
        return bad(
            "unauthorized_client",
            &format!("this client may not use the `{grant}` grant"),
        );
    }
    let (subject, scope, resource) = match grant {
        "authorization_code" => {
            let (Some(code), Some(verifier)) = (req.code.as_deref(), req.code_verifier.as_deref())
            else {
                return bad("invalid_request", "code and code_verifier are required");
            };
            let mut store = s.lock();
            let Some(grant) = store.codes.get_mut(code) else {
                return bad("invalid_grant", "the authorization code is unknown");
            };
            if grant.used {
                return bad("invalid_grant", "the authorization code was already used");
            }
            grant.used = true;
            if grant.expires <= Instant::now() {
                return bad("invalid_grant", "the authorization code has expired");
            }
            if grant.client_id != client.id {
                return bad(
                    "invalid_grant",
                    "the authorization code was issued to another client",
                );
            }
            if req.redirect_uri.as_deref() != Some(grant.redirect_uri.as_str()) {
                return bad(
                    "invalid_grant",
                    "redirect_uri differs from the authorization request",
                );
            }
            let verifier_ok = (43..=128).contains(&verifier.len())
                && verifier
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
            if !verifier_ok
                || !constant_time_eq(s256(verifier).as_bytes(), grant.challenge.as_bytes())
            {
                return bad(
                    "invalid_grant",
                    "the code_verifier does not match the code_challenge",
                );
            }
            if let Some(r) = req.resource.as_deref()
                && grant.resource.as_deref() != Some(r)
            {
                return bad(
                    "invalid_target",
                    "resource differs from the authorization request",
                );
            }
            (
                s.0.config.subject.clone(),
                grant.scope.clone(),
                grant.resource.clone(),
            )
        }
        "refresh_token" => {
            let Some(presented) = req.refresh_token.as_deref() else {
                return bad("invalid_request", "refresh_token is required");
            };
            let mut store = s.lock();
            let Some(old) = store.refresh.get(presented) else {
                return bad(
                    "invalid_grant",
                    "the refresh token is unknown, used or revoked",
                );
            };
            if old.expires <= Instant::now() || old.client_id != client.id {
                return bad(
                    "invalid_grant",
                    "the refresh token is expired or was issued to another client",
                );
            }
            let scope = match req.scope.as_deref().map(ScopeSet::parse) {
                None => old.scope.clone(),
                Some(Ok(narrow)) if narrow.iter().all(|x| old.scope.contains(x)) => narrow,
                Some(_) => {
                    return bad(
                        "invalid_scope",
                        "a refresh may only narrow the granted scope",
                    );
                }
            };
            if let Some(r) = req.resource.as_deref()
                && old.resource.as_deref() != Some(r)
            {
                return bad("invalid_target", "resource differs from the original grant");
            }
            // Only a request that succeeds spends the refresh token (rotation).
            let old = store
                .refresh
                .remove(presented)
                .expect("present: checked above");
            drop(store);
            (old.subject, scope, old.resource)
        }
        "client_credentials" => {
            if client.secret.is_none() {
                return bad(
                    "unauthorized_client",
                    "client_credentials needs a confidential client",
                );
            }
            let scope = match ScopeSet::parse(req.scope.as_deref().unwrap_or_default()) {
                Ok(s) => s,
                Err(_) => return bad("invalid_scope", "the scope parameter is malformed"),
            };
            if let Err(e) = s.scopes_allowed(&scope) {
                return bad("invalid_scope", &e);
            }
            let resource = match s.resource_for(req.resource.as_deref()) {
                Ok(r) => r,
                Err(e) => return bad("invalid_target", &e),
            };
            (client.id.clone(), scope, resource)
        }
        "" => return bad("invalid_request", "grant_type is required"),
        other => {
            return bad(
                "unsupported_grant_type",
                &format!("grant type `{other}` is not supported"),
            );
        }
    };
    for sc in scope.iter() {
        if validate_scope_token(sc).is_err() {
            return bad("invalid_scope", "the scope parameter is malformed");
        }
    }
    let (access_token, expires_in) =
        s.access_token(&subject, &client.id, &scope, resource.as_deref());
    let mut body = json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": expires_in,
        "scope": scope.to_string(),
    });
    if grant != "client_credentials" {
        let refresh = random_token(32);
        let mut store = s.lock();
        store.refresh.retain(|_, r| r.expires > Instant::now());
        store.refresh.insert(
            refresh.clone(),
            RefreshGrant {
                client_id: client.id.clone(),
                subject,
                scope,
                resource,
                expires: Instant::now() + s.0.config.refresh_token_ttl,
            },
        );
        body["refresh_token"] = json!(refresh);
    }
    (
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::PRAGMA, "no-cache"),
        ],
        Json(body),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_redirects_may_change_port_only() {
        assert!(redirect_matches(
            "http://127.0.0.1:1/cb",
            "http://127.0.0.1:5555/cb"
        ));
        assert!(!redirect_matches(
            "http://127.0.0.1:1/cb",
            "http://127.0.0.1:5555/other"
        ));
        assert!(!redirect_matches(
            "https://app.example/cb",
            "https://app.example/cb/"
        ));
        assert!(!redirect_matches(
            "http://127.0.0.1/cb",
            "http://localhost/cb"
        ));
    }

    #[test]
    fn pkce_s256() {
        // RFC 7636 appendix B.
        assert_eq!(
            s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }
}
