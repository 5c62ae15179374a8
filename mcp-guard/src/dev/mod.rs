//! An embedded development authorization server (feature `dev`, never for production): RFC
//! 8414 and OpenID Connect discovery, a JWKS, dynamic client registration (RFC 7591), client
//! ID metadata documents, authorization code with PKCE (S256) and a consent page, refresh
//! tokens that rotate, client credentials, and RFC 9068 JWT access tokens whose `aud` is the
//! requested resource (RFC 8707). It also mints tokens with chosen claims for tests.
//!
//! It cannot be turned against the machine it runs on:
//!
//! - **Host allow-list.** Every endpoint answers only requests whose `Host` (or HTTP/2
//!   authority) is the issuer's host, one of the loopback names on the issuer's port when the
//!   issuer is on loopback (`127.0.0.1`, `localhost`, `[::1]`), or a name added with
//!   [`DevAuthServerBuilder::allowed_host`]. Others get **421 Misdirected Request**: a web page
//!   that rebinds its own DNS name to 127.0.0.1 cannot reach the server.
//! - **Client ID metadata documents** are fetched only from `https` URLs with a path, never
//!   from a host that is (or resolves to) a private, link-local or unspecified address, and
//!   from loopback only when [`DevAuthServerBuilder::loopback_client_metadata`] allows it
//!   (then by the loopback redirect URI rules: `127.0.0.1`, `localhost` or `[::1]`; no other
//!   name that resolves to loopback). They are fetched directly, never through a proxy the
//!   environment configures, at most 8 at a time, read bounded (64 KiB) within a 5 s
//!   timeout, without following redirects, and kept in a small cache (64 documents, 5 min);
//!   a URL that failed is not fetched again for a minute. The browser only ever sees one
//!   generic error for a document that cannot be used; the reason is logged at debug level.
//!   Their redirect URIs obey the same rules as dynamic registration's.
//! - **Bounded state.** Registered clients (10 000, the least recently used forgotten
//!   first; 10 redirect URIs of 2 KiB, names of 200 characters), pending consent pages,
//!   authorization codes and refresh tokens (10 000 each) are capped, and so is the length of
//!   the parameters an authorization request keeps.
//! - **The consent page** cannot be framed (`X-Frame-Options: DENY`,
//!   `Content-Security-Policy: frame-ancestors 'none'`, on every response) and its form
//!   carries an anti-CSRF token bound to the pending authorization request: a decision
//!   without it is refused with 403.
//! - **Refresh tokens** rotate, and presenting one that was already rotated revokes its whole
//!   family (OAuth 2.1 §4.3.1): the token issued from it stops working too, as do the tokens
//!   of an authorization code presented twice, even when the copies are presented at the same
//!   time. Access tokens are self-contained JWTs and
//!   stay valid until they expire (keep [`DevAuthServerBuilder::access_token_ttl`] short
//!   where that matters).
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

mod authorize;
mod discovery;
mod documents;
mod hosts;
mod mint;
mod register;
mod token;

use authorize::*;
use discovery::*;
use documents::{DocumentResolver, MAX_FETCHES};
use hosts::*;
pub use mint::TokenBuilder;
use register::*;
use token::*;

/// The scope that asks for a refresh token; the server issues one anyway.
const OFFLINE_ACCESS: &str = "offline_access";
const MAX_PENDING: usize = 10_000;
/// Client ID metadata documents kept, and for how long.
const MAX_DOCUMENTS: usize = 64;
const DOCUMENT_TTL: Duration = Duration::from_secs(300);
/// Timeout of one client ID metadata document fetch.
const CLIENT_DOCUMENT_TIMEOUT: Duration = Duration::from_secs(5);
/// The path of the public JWK Set under the issuer.
const JWKS_PATH: &str = "/jwks";

/// Configures a [`DevAuthServer`].
#[derive(Debug, Clone)]
pub struct DevAuthServerBuilder {
    auto_approve: bool,
    subject: String,
    /// Listed in the metadata's `scopes_supported`.
    scopes_supported: Vec<String>,
    /// Accepted in requests; empty: any well-formed scope.
    scopes_accepted: Vec<String>,
    resources: Vec<String>,
    access_token_ttl: Duration,
    code_ttl: Duration,
    refresh_token_ttl: Duration,
    loopback_client_metadata: bool,
    allowed_hosts: Vec<String>,
}

impl Default for DevAuthServerBuilder {
    fn default() -> Self {
        Self {
            auto_approve: false,
            subject: "dev-user".to_owned(),
            scopes_supported: Vec::new(),
            scopes_accepted: Vec::new(),
            resources: Vec::new(),
            access_token_ttl: Duration::from_secs(3600),
            code_ttl: Duration::from_secs(60),
            refresh_token_ttl: Duration::from_secs(24 * 3600),
            loopback_client_metadata: false,
            allowed_hosts: Vec::new(),
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

    /// The scopes of a server's catalogue, the one its guard is built from
    /// ([`GuardBuilder::server`](crate::GuardBuilder::server)): any scope of it (and
    /// `offline_access`) may be requested, others are refused with `invalid_scope`, and the
    /// metadata's `scopes_supported` lists what the guard advertises by default (the
    /// `#[baseline]` and `#[advertised]` scopes). Only the type is needed.
    ///
    /// ```no_run
    /// # mcp_guard::scopes! { pub Scopes { #[baseline] TICKETS_READ = "tickets:read", TICKETS_WRITE = "tickets:write" } }
    /// # #[derive(mcp_guard::ProtectedResource)]
    /// # #[protected_resource(scopes = Scopes)]
    /// # struct Tickets;
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let listener = tokio::net::TcpListener::bind("127.0.0.1:9090").await?;
    /// let dev = mcp_guard::dev::DevAuthServer::builder()
    ///     .server::<Tickets>()
    ///     .start(listener)
    ///     .await?;
    /// # let _ = dev; Ok(()) }
    /// ```
    pub fn server<S: crate::ProtectedResource>(self) -> Self {
        self.catalogue(S::DESCRIPTOR.catalogue)
    }

    /// The scopes of a [`scopes!`](crate::scopes) catalogue (`Scopes::ENTRIES`), as
    /// [`DevAuthServerBuilder::server`] takes them from a server type.
    pub fn catalogue(mut self, entries: &[crate::scope::CatalogueEntry]) -> Self {
        self.scopes_supported = entries
            .iter()
            .filter(|e| e.baseline || e.advertised)
            .map(|e| e.scope.to_owned())
            .collect();
        self.scopes_accepted = entries.iter().map(|e| e.scope.to_owned()).collect();
        self.scopes_accepted.push(OFFLINE_ACCESS.to_owned());
        self
    }

    /// Exactly these scopes, advertised in the metadata and accepted in requests (others are
    /// refused with `invalid_scope`). Prefer [`DevAuthServerBuilder::server`], which takes
    /// them from the declaration the guard reads.
    pub fn scopes_supported<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scopes_supported = scopes.into_iter().map(Into::into).collect();
        self.scopes_accepted = self.scopes_supported.clone();
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

    /// Whether client ID metadata documents may be fetched from loopback addresses (http or
    /// https on `127.0.0.1`, `localhost` or `[::1]`, any port), for local clients and tests.
    /// Default false: a `client_id` URL must not make the server fetch from its own host.
    pub fn loopback_client_metadata(mut self, yes: bool) -> Self {
        self.loopback_client_metadata = yes;
        self
    }

    /// Another name the server answers for, beside its issuer's host (and the loopback names
    /// on the issuer's port when the issuer is on loopback): `name` for any port, or
    /// `name:port`. Requests for any other `Host` get 421 Misdirected Request.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let listener = tokio::net::TcpListener::bind("127.0.0.1:9090").await?;
    /// // Also reachable as http://auth.dev.test:9090 (an /etc/hosts entry).
    /// let dev = mcp_guard::dev::DevAuthServer::builder()
    ///     .allowed_host("auth.dev.test")
    ///     .start(listener)
    ///     .await?;
    /// # let _ = dev; Ok(()) }
    /// ```
    pub fn allowed_host(mut self, host: impl Into<String>) -> Self {
        self.allowed_hosts.push(host.into());
        self
    }

    /// A server whose issuer identifier is `issuer` (e.g. `http://127.0.0.1:9000`).
    pub fn build(self, issuer: &str) -> Result<DevAuthServer, DevError> {
        crate::jwt::ensure_crypto_provider();
        let issuer = issuer.trim_end_matches('/').to_owned();
        let issuer_url = Url::parse(&issuer)
            .map_err(|_| DevError(format!("`{issuer}` is not an absolute URL")))?;
        let hosts = AllowedHosts::new(&issuer_url, &self.allowed_hosts)?;
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
        // No proxy: through one, the resolver below would only vet the proxy's address.
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(CLIENT_DOCUMENT_TIMEOUT)
            .connect_timeout(CLIENT_DOCUMENT_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(DocumentResolver {
                loopback: self.loopback_client_metadata,
            })
            .build()
            .map_err(|_| DevError("building the HTTP client failed".into()))?;
        let token_path = Url::parse(&format!("{issuer}/token"))
            .map_err(|_| DevError(format!("`{issuer}` is not an absolute URL")))?
            .path()
            .to_owned();
        let dpop = crate::dpop::DpopVerifier::new(crate::dpop::Dpop::allowed(), &issuer_url);
        Ok(DevAuthServer(Arc::new(Inner {
            dpop,
            token_path,
            issuer,
            config: self,
            key,
            kid,
            jwk,
            hosts,
            http,
            fetches: tokio::sync::Semaphore::new(MAX_FETCHES),
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
            let config = crate::serve::ServeConfig::default();
            let _ = crate::serve::serve(listener, app, config, std::future::pending()).await;
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
    /// The checks of DPoP proofs sent to the token endpoint (RFC 9449 §5).
    dpop: crate::dpop::DpopVerifier,
    /// The token endpoint's path, which a proof's `htu` names.
    token_path: String,
    config: DevAuthServerBuilder,
    key: EncodingKey,
    kid: String,
    jwk: Value,
    hosts: AllowedHosts,
    http: reqwest::Client,
    /// Client ID metadata document fetches in flight.
    fetches: tokio::sync::Semaphore,
    state: Mutex<Store>,
}

#[derive(Default)]
struct Store {
    clients: Clients,
    pending: HashMap<String, Pending>,
    codes: HashMap<String, CodeGrant>,
    refresh: RefreshTokens,
    /// Client ID metadata documents already fetched, until when they are reused.
    documents: HashMap<String, (Instant, Arc<Client>)>,
    /// Client ID metadata document URLs that failed, until when they are not fetched again.
    failed_documents: HashMap<String, Instant>,
}

/// An authorization request waiting for the user's decision on the consent page.
struct Pending {
    at: Instant,
    req: AuthorizeRequest,
    client: Arc<Client>,
    /// The anti-CSRF token of its consent form.
    csrf: String,
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
    /// The refresh token family created when the code was exchanged.
    family: Option<String>,
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

    /// Where the public JWK Set is served: the metadata's `jwks_uri`.
    pub fn jwks_uri(&self) -> String {
        format!("{}{JWKS_PATH}", self.0.issuer)
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
        self.lock().clients.insert(client);
        ids
    }

    /// The routes, to serve on their own listener or inside another router (the issuer must
    /// then be the URL they are reachable at).
    pub fn router(&self) -> Router {
        Router::new()
            .route("/.well-known/oauth-authorization-server", get(metadata))
            .route("/.well-known/openid-configuration", get(metadata))
            .route(JWKS_PATH, get(jwks))
            .route("/register", post(register))
            .route("/authorize", get(authorize).post(consent))
            .route("/token", post(token))
            .layer(axum::middleware::from_fn_with_state(
                self.clone(),
                host_and_frame_guard,
            ))
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
            "jwks_uri": self.jwks_uri(),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["none", "client_secret_basic", "client_secret_post"],
            "client_id_metadata_document_supported": true,
            "authorization_response_iss_parameter_supported": true,
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["ES256"],
            "dpop_signing_alg_values_supported": self.0.dpop.algorithm_names(),
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
        dpop_jkt: Option<&str>,
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
        if let Some(jkt) = dpop_jkt {
            t = t.claim("cnf", json!({ "jkt": jkt }));
        }
        (t.sign(), ttl)
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
