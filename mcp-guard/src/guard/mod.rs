//! The guard: the configuration a server is protected with, and the authentication step
//! that turns a bearer token into a [`Principal`] (the issuer it belongs to, its keys, the
//! verified-token cache). Its [`GuardBuilder`] is in `builder`, the trusted issuers in
//! `issuer`, the error types in `error`.

mod builder;
mod check;
mod error;
mod issuer;
mod stdio;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use bytes::Bytes;
use http::Request;
use url::Url;

pub use builder::GuardBuilder;
pub use check::{CheckError, CheckFuture, PrincipalCheck};
pub use error::{AuthError, ConfigError, KeysUnavailable};
pub use issuer::Issuer;
use issuer::IssuerEntry;
pub use stdio::StdioError;

use crate::audit::{AuditSink, Enforcement};
use crate::challenge::{self, ToolCallChallenge};
use crate::edge::layer::GuardLayer;
use crate::edge::session::SessionBindings;
use crate::introspection::Introspector;
use crate::jwks::{KeySource, KeySourceError};
use crate::jwt::{self, TokenError, UnverifiedJwt, VerifiedJwt};
use crate::metadata::ResourceMetadata;
use crate::policy::Policy;
use crate::principal::Principal;
use crate::static_tokens::StaticTokens;
use crate::token_cache::{TokenCache, Verified};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What a built guard holds. Private to this module: the edge reads it through the methods
/// below.
struct Inner {
    resource: String,
    resource_url: Url,
    metadata_url: String,
    metadata_path: String,
    metadata: ResourceMetadata,
    metadata_json: Bytes,
    issuers: Vec<IssuerEntry>,
    /// The policy and the audit sink, as each request carries them to the in-process checks.
    enforcement: Arc<Enforcement>,
    allowed_origins: Vec<String>,
    max_body_bytes: usize,
    max_token_bytes: usize,
    sessions: Arc<SessionBindings>,
    introspector: Option<Arc<Introspector>>,
    token_cache: Option<TokenCache>,
    verifications: std::sync::atomic::AtomicU64,
    /// The server's check after verification.
    check: Option<Arc<dyn PrincipalCheck>>,
    /// How long the check may take before it counts as unavailable.
    check_timeout: Duration,
    anonymous: bool,
    tool_call_challenge: ToolCallChallenge,
    tool_result_clients: Vec<String>,
    static_tokens: Option<StaticTokens>,
    dpop: Option<crate::dpop::DpopVerifier>,
}

/// What the server plugs in: its check after verification, and where decisions go.
#[derive(Default, Clone)]
pub(crate) struct Hooks {
    pub(crate) check: Option<Arc<dyn PrincipalCheck>>,
    pub(crate) audit_sink: Option<Arc<dyn AuditSink>>,
}

impl std::fmt::Debug for Hooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hooks")
            .field("check", &self.check.is_some())
            .field("audit_sink", &self.audit_sink.is_some())
            .finish()
    }
}

/// it with [`Guard::router`] (or [`Guard::layer`] and [`Guard::metadata_router`]).
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use mcp_guard::{Guard, Issuer, Policy, Requirement};
/// let policy = Policy::builder()
///     .scope("files:read")
///     .baseline(["files:read"])
///     .tool("read_file", Requirement::scopes(["files:read"])?)
///     .build()?;
/// let guard = Guard::builder()
///     .resource("https://mcp.example.com/mcp")
///     .issuer(Issuer::discover("https://auth.example.com"))
///     .policy(policy)
///     .build()?;
/// assert_eq!(
///     guard.metadata_url(),
///     "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"
/// );
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Guard(Arc<Inner>);

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard")
            .field("resource", &self.0.resource)
            .field(
                "issuers",
                &self
                    .0
                    .issuers
                    .iter()
                    .map(|i| &i.rules.issuer)
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl Guard {
    /// Starts a configuration.
    pub fn builder() -> GuardBuilder {
        GuardBuilder::default()
    }

    /// The layer that protects an MCP service.
    pub fn layer(&self) -> GuardLayer {
        GuardLayer::new(self.clone())
    }

    /// A router serving `mcp` behind the guard at the resource URL's path, plus the metadata
    /// routes ([`Guard::metadata_router`]).
    pub fn router<S, ResBody>(&self, mcp: S) -> axum::Router
    where
        S: tower_service::Service<
                Request<Body>,
                Response = http::Response<ResBody>,
                Error = Infallible,
            > + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
        ResBody: http_body::Body<Data = Bytes> + Send + 'static,
        ResBody::Error: Into<BoxError>,
    {
        let path = match self.mcp_path() {
            "" => "/",
            p => p,
        };
        let service = tower_layer::Layer::layer(&self.layer(), mcp);
        self.metadata_router().route_service(path, service)
    }

    /// The routes of the metadata document: the path-suffixed well-known URL of the MCP
    /// endpoint and the root well-known URL. Both serve the same document, whose `resource`
    /// is the MCP endpoint URL: the one identifier tokens are issued for, whichever URL a
    /// client discovered it at.
    pub fn metadata_router<S: Clone + Send + Sync + 'static>(&self) -> axum::Router<S> {
        crate::metadata::routes(&self.0.metadata_path, self.0.metadata_json.clone())
    }

    /// What the requests it lets through carry to the in-process checks.
    pub(crate) fn enforcement(&self) -> &Arc<Enforcement> {
        &self.0.enforcement
    }

    /// Cap on the body read to classify a request.
    pub(crate) fn max_body_bytes(&self) -> usize {
        self.0.max_body_bytes
    }

    /// Which legacy session belongs to which subject.
    pub(crate) fn sessions(&self) -> &SessionBindings {
        &self.0.sessions
    }

    /// rmcp's local session manager, bounded by this guard's
    /// [`SessionLimits`](crate::SessionLimits) and given their idle life as its keep-alive.
    /// Hand it to `StreamableHttpService::new`: the sessions the guard lets go to stay within
    /// its limits are then ended in rmcp too, freeing their memory. With a manager not made
    /// here, those sessions are refused (404) but live on in rmcp until its own keep-alive
    /// ends them.
    ///
    /// ```no_run
    /// # use mcp_guard::Guard;
    /// # fn demo<H: rmcp::ServerHandler + Clone + Send + Sync + 'static>(guard: Guard, handler: H) {
    /// use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
    ///
    /// let mcp = StreamableHttpService::new(
    ///     move || Ok(handler.clone()),
    ///     guard.session_manager(),
    ///     StreamableHttpServerConfig::default(),
    /// );
    /// let app = guard.router(mcp);
    /// # let _ = app;
    /// # }
    /// ```
    pub fn session_manager(
        &self,
    ) -> Arc<
        crate::rmcp::GuardedSessionManager<
            rmcp::transport::streamable_http_server::session::local::LocalSessionManager,
        >,
    > {
        let mut manager =
            rmcp::transport::streamable_http_server::session::local::LocalSessionManager::default();
        manager.session_config.keep_alive = Some(self.0.sessions.limits().idle_life());
        self.wrap_session_manager(manager)
    }

    /// Another session manager, bounded by this guard as [`Guard::session_manager`] bounds
    /// rmcp's local one. Its own keep-alive is left as configured: set it to
    /// [`SessionLimits::idle_life`](crate::SessionLimits::idle_life).
    pub fn wrap_session_manager<M>(&self, manager: M) -> Arc<crate::rmcp::GuardedSessionManager<M>>
    where
        M: rmcp::transport::streamable_http_server::SessionManager,
    {
        Arc::new(crate::rmcp::GuardedSessionManager::new(
            manager,
            self.0.sessions.clone(),
        ))
    }

    /// The bounds on legacy sessions ([`GuardBuilder::session_limits`]).
    pub fn session_limits(&self) -> &crate::SessionLimits {
        self.0.sessions.limits()
    }

    /// How many legacy sessions the guard holds now.
    pub fn session_counts(&self) -> crate::SessionCounts {
        self.0.sessions.counts()
    }

    /// The canonical resource URL (the audience tokens must carry).
    pub fn resource(&self) -> &str {
        &self.0.resource
    }

    /// The path of the MCP endpoint.
    pub fn mcp_path(&self) -> &str {
        self.0.resource_url.path()
    }

    /// The absolute protected resource metadata URL used in challenges.
    pub fn metadata_url(&self) -> &str {
        &self.0.metadata_url
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.0.enforcement.policy
    }

    /// Loads every trusted issuer's key set now (discovery first, where configured), instead
    /// of at the first token: for a start-up check that fails fast, or reports, when an
    /// issuer cannot be reached. Issuers are loaded concurrently; one whose keys are already
    /// loaded is not fetched again, and one that failed within its refetch cooldown is not
    /// retried before the cooldown ends. Keys loaded here serve requests as any others.
    ///
    /// ```no_run
    /// # async fn f(guard: mcp_guard::Guard) {
    /// if let Err(e) = guard.preload_keys().await {
    ///     eprintln!("warning: {e}; tokens are refused with 503 until the keys load");
    /// }
    /// # }
    /// ```
    pub async fn preload_keys(&self) -> Result<(), KeysUnavailable> {
        let mut loads = tokio::task::JoinSet::new();
        for (index, i) in self.0.issuers.iter().enumerate() {
            let keys = i.keys.clone();
            loads.spawn(async move { (index, keys.ready().await.err()) });
        }
        let mut errors: Vec<Option<KeySourceError>> = vec![None; self.0.issuers.len()];
        while let Some(joined) = loads.join_next().await {
            match joined {
                Ok((index, e)) => errors[index] = e,
                Err(e) => {
                    if let Ok(panic) = e.try_into_panic() {
                        std::panic::resume_unwind(panic);
                    }
                }
            }
        }
        // Judged by the state, so that a load cancelled (the runtime shutting down) counts as
        // not loaded.
        let failures: Vec<_> = self
            .0
            .issuers
            .iter()
            .zip(errors)
            .filter(|(i, _)| i.keys.loaded().is_none())
            .map(|(i, e)| {
                let issuer = i.rules.issuer.clone();
                let e = e.unwrap_or_else(|| KeySourceError::Unavailable {
                    issuer: issuer.clone(),
                    last_error: "the load did not finish".into(),
                });
                (issuer, e)
            })
            .collect();
        if failures.is_empty() {
            Ok(())
        } else {
            Err(KeysUnavailable { failures })
        }
    }

    /// The trusted issuers whose key set was never loaded, in configuration order: empty when
    /// every issuer can verify tokens (a loaded key set stays in use through later fetch
    /// errors). Reads state only, for readiness probes; [`Guard::preload_keys`] loads them.
    /// Introspection and static tokens need no keys and are not listed.
    pub fn issuers_without_keys(&self) -> Vec<&str> {
        self.0
            .issuers
            .iter()
            .filter(|i| i.keys.loaded().is_none())
            .map(|i| i.rules.issuer.as_str())
            .collect()
    }

    /// The key source of a configured issuer.
    pub fn key_source(&self, issuer: &str) -> Option<&KeySource> {
        self.0
            .issuers
            .iter()
            .find(|i| i.rules.issuer == issuer)
            .map(|i| &i.keys)
    }

    /// The metadata document as served.
    pub fn metadata(&self) -> &ResourceMetadata {
        &self.0.metadata
    }

    /// Verifies a bearer token and returns the caller, once the server's
    /// [`PrincipalCheck`] (if any) accepted it. Keys are loaded on first use; a `kid` missing
    /// from the snapshot triggers at most one rate-limited refetch. A token bound to a key
    /// (`cnf`, such as a DPoP-bound token) is refused: it is not a bearer token.
    pub async fn authenticate(&self, token: &str) -> Result<Principal, AuthError> {
        self.authenticate_presented(token, None).await
    }

    /// Verifies a token presented as `Authorization: DPoP` with the proof in the request's
    /// headers ([`crate::dpop`]): the proof's checks, the token's, the binding between them,
    /// the replay cache, then the server's check. Also returns the nonce to send back, if
    /// any.
    pub(crate) async fn authenticate_dpop(
        &self,
        token: &str,
        parts: &http::request::Parts,
    ) -> Result<(Principal, Option<String>), AuthError> {
        let dpop = self.0.dpop.as_ref().ok_or(TokenError::SenderConstrained)?;
        let now = unix_now();
        let checked = dpop.check(
            &parts.headers,
            parts.method.as_str(),
            parts.uri.path(),
            Some(token),
            now,
        )?;
        let principal = self
            .authenticate_presented(token, Some((dpop, &checked.proof, now)))
            .await?;
        Ok((principal, checked.next_nonce))
    }

    /// The token verified; bound to the proof when one is given (and then the proof
    /// recorded against replay), a bearer token otherwise; then the server's check.
    async fn authenticate_presented(
        &self,
        token: &str,
        proof: Option<(&crate::dpop::DpopVerifier, &crate::dpop::Proof, u64)>,
    ) -> Result<Principal, AuthError> {
        crate::metrics::authentication();
        if token.len() > self.0.max_token_bytes {
            return Err(TokenError::TooLarge.into());
        }
        let principal = self.verify_token(token).await?;
        match proof {
            None if principal.is_sender_constrained() => {
                return Err(TokenError::SenderConstrained.into());
            }
            None => {}
            Some((dpop, proof, now)) => {
                if principal.dpop_thumbprint() != Some(proof.jkt.as_str()) {
                    return Err(TokenError::NotBoundToProof.into());
                }
                dpop.record(proof, now)?;
            }
        }
        if let Some(check) = &self.0.check {
            let answer = tokio::time::timeout(self.0.check_timeout, check.check(&principal))
                .await
                .unwrap_or_else(|_| Err(CheckError::Unavailable("the check timed out".into())));
            answer.map_err(|e| match e {
                CheckError::Refused(why) => AuthError::Invalid(TokenError::Refused(why)),
                CheckError::Unavailable(why) => AuthError::CheckUnavailable(why),
            })?;
        }
        Ok(principal)
    }

    /// The DPoP checks, when the guard accepts DPoP.
    pub(crate) fn dpop(&self) -> Option<&crate::dpop::DpopVerifier> {
        self.0.dpop.as_ref()
    }

    /// The form of a refused tool call's challenge ([`GuardBuilder::tool_call_challenge`]).
    pub fn tool_call_challenge(&self) -> ToolCallChallenge {
        self.0.tool_call_challenge
    }

    /// Whether a tool call with these headers, refused for want of a token or of scopes, is
    /// answered with the tool-result challenge.
    pub(crate) fn answers_with_tool_result(&self, headers: &http::HeaderMap) -> bool {
        match self.0.tool_call_challenge {
            ToolCallChallenge::Http => false,
            ToolCallChallenge::ToolResult => true,
            ToolCallChallenge::Auto => headers.get(http::header::USER_AGENT).is_some_and(|ua| {
                challenge::user_agent_is_one_of(ua.as_bytes(), &self.0.tool_result_clients)
            }),
        }
    }

    /// The server-level authentication declaration for this guard's posture, the `auth` block
    /// SEP-2742 (a draft) proposes for `server.json` and server cards:
    /// `{"posture":"required"|"optional","methods":[{"type":"oauth"}]}`. Per operation, the
    /// posture shows in each tool's `_meta.securitySchemes`.
    pub fn auth_declaration(&self) -> serde_json::Value {
        crate::declared::auth_declaration(self.0.anonymous)
    }

    /// Whether requests without a token may go on ([`GuardBuilder::anonymous`]).
    pub fn allows_anonymous(&self) -> bool {
        self.0.anonymous
    }

    /// Where decisions go beside `tracing`.
    pub(crate) fn audit_sink(&self) -> Option<&dyn AuditSink> {
        self.0.enforcement.sink.as_deref()
    }

    /// The token verified (JWT or introspection, through the verified-token cache).
    async fn verify_token(&self, token: &str) -> Result<Principal, AuthError> {
        if let Some(found) = self
            .0
            .static_tokens
            .as_ref()
            .and_then(|t| t.lookup(token, unix_now()))
        {
            return found.map_err(|()| TokenError::Expired.into());
        }
        if let Some(introspector) = &self.0.introspector
            && (self.0.issuers.is_empty() || !jwt::looks_like_jwt(token))
        {
            return Ok(Box::pin(introspector.introspect(token, unix_now())).await??);
        }
        let Some(cache) = &self.0.token_cache else {
            return Ok(Box::pin(self.verify_jwt(token)).await?.principal);
        };
        let key = TokenCache::key(token);
        let now = unix_now();
        // A token verified before and still acceptable is answered here, without waiting.
        if let Some(principal) = cache.get(&key, |v| self.still_valid(v, now)) {
            return Ok(principal);
        }
        // The rest on the heap: a request answered from the cache (most) then carries a
        // pointer where the verification's state (key fetches included) would be, and its
        // future, allocated per request, stays small.
        Box::pin(self.verify_through_cache(cache, token, &key, now)).await
    }

    /// A token the cache could not answer for: verified once for all concurrent callers
    /// while its shard has room, else verified and offered to the cache.
    async fn verify_through_cache(
        &self,
        cache: &TokenCache,
        token: &str,
        key: &[u8; 32],
        now: u64,
    ) -> Result<Principal, AuthError> {
        // At most two rounds: a stale entry (expired, key rotated) is dropped and the token
        // verified afresh.
        for _ in 0..2 {
            let Some(slot) = cache.slot(key) else {
                let verified = self.verify_jwt(token).await?;
                cache.offer(key, &verified, now);
                return Ok(verified.principal);
            };
            match slot.get_or_try_init(|| self.verify_jwt(token)).await {
                Ok(v) if self.still_valid(v, now) => return Ok(v.principal.clone()),
                Ok(_) => cache.remove(key, &slot),
                Err(e) => {
                    cache.remove(key, &slot);
                    return Err(e);
                }
            }
        }
        Ok(self.verify_jwt(token).await?.principal)
    }

    /// Whether a cached verification still holds: the verifier would still accept the token
    /// and the key that verified it is still in its issuer's key set.
    fn still_valid(&self, v: &Verified, now: u64) -> bool {
        now < v.valid_until
            && self.0.issuers[v.issuer]
                .keys
                .current()
                .find(v.kid.as_deref())
                .is_some_and(|k| k.fingerprint() == v.fingerprint)
    }

    /// Number of tokens in the verified-token cache.
    pub fn token_cache_len(&self) -> usize {
        self.0.token_cache.as_ref().map_or(0, TokenCache::len)
    }

    /// How many JWTs were verified (signature checked), cache hits not counted.
    pub fn verification_count(&self) -> u64 {
        self.0
            .verifications
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Verifies a JWT against its issuer's keys (no cache). The token is read once; routing,
    /// the cold-path precheck and both verification attempts share that reading.
    async fn verify_jwt(&self, token: &str) -> Result<Verified, AuthError> {
        self.0
            .verifications
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        crate::metrics::jwt_verification();
        let mut jwt = UnverifiedJwt::parse(token)?;
        let (index, entry) = self.issuer_for(&mut jwt)?;
        let keys = match entry.keys.loaded() {
            Some(keys) => keys,
            None => {
                // Cold path: refuse what can never verify before going to fetch keys for it.
                jwt.check_header(&entry.rules)?;
                entry.keys.ready().await?
            }
        };
        let fresh;
        let signed_by = match jwt.check_signature(&keys, &entry.rules) {
            Err(TokenError::UnknownKey) => {
                fresh = entry.keys.refresh_for_unknown_kid(&keys).await;
                if fresh.generation() == keys.generation() {
                    return Err(TokenError::UnknownKey.into());
                }
                jwt.check_signature(&fresh, &entry.rules)?
            }
            other => other?,
        };
        let verified = VerifiedJwt::from_checked(jwt, signed_by, &entry.rules, unix_now())?;
        let exp = jwt::numeric_date(&verified.claims, "exp")?.unwrap_or(0);
        let fingerprint = verified.fingerprint;
        let principal = Principal::from_payload(
            verified.payload,
            &verified.claims,
            &entry.profile,
            self.0.enforcement.policy.scope_prefix(),
        )?
        .with_hierarchy(self.0.enforcement.policy.shared_hierarchy());
        Ok(Verified {
            principal,
            valid_until: exp.saturating_add(entry.rules.leeway.as_secs()),
            issuer: index,
            kid: verified.kid,
            fingerprint,
        })
    }

    /// The issuer whose keys verify this token: the only one, or the one its unverified `iss`
    /// routes to.
    fn issuer_for(&self, jwt: &mut UnverifiedJwt<'_>) -> Result<(usize, &IssuerEntry), TokenError> {
        match self.0.issuers.as_slice() {
            [] => Err(TokenError::WrongIssuer),
            [only] => Ok((0, only)),
            many => {
                let iss = jwt.issuer()?;
                many.iter()
                    .enumerate()
                    .find(|(_, e)| jwt::issuer_routes(&e.rules, iss))
                    .ok_or(TokenError::WrongIssuer)
            }
        }
    }

    /// How many introspection requests were sent (for monitoring and tests).
    pub fn introspection_count(&self) -> u64 {
        self.0
            .introspector
            .as_ref()
            .map_or(0, |i| i.request_count())
    }

    /// Scopes as advertised (metadata, challenges): with the configured scope prefix.
    pub(crate) fn advertise(&self, scopes: &crate::scope::ScopeSet) -> crate::scope::ScopeSet {
        self.0.enforcement.policy.advertise(scopes)
    }

    /// How long a client should wait after a 503: the longest key refetch cooldown.
    pub(crate) fn retry_after(&self) -> Duration {
        self.0
            .issuers
            .iter()
            .map(|i| i.keys.refetch_cooldown())
            .max()
            .unwrap_or(Duration::from_secs(30))
    }

    pub(crate) fn origin_allowed(&self, origin: &[u8]) -> bool {
        std::str::from_utf8(origin).is_ok_and(|o| {
            let o = o.trim_end_matches('/');
            self.0
                .allowed_origins
                .iter()
                .any(|a| a.eq_ignore_ascii_case(o))
        })
    }
}

pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
