//! The guard's configuration and the authentication step: which issuers are trusted, which
//! audience is this resource, and turning a bearer token into a [`Principal`].

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use jsonwebtoken::Algorithm;
use url::Url;

use crate::jwks::{KeySource, KeySourceConfig, KeySourceError};
use crate::jwt::{self, Audiences, JwtError, JwtRules, KeySet, SUPPORTED_ALGORITHMS, TypPolicy};
use crate::metadata::{self, MetadataSigningKey, ResourceMetadata};
use crate::policy::{Policy, PolicyBuilder, PolicyError, Requirement};
use crate::principal::Principal;
use crate::profile::Profile;
use crate::server::{GuardedServer, ProtectedResource, ResourceDescriptor};
use crate::token_cache::{TokenCache, Verified};

/// A trusted authorization server (token issuer) and where its keys come from.
///
/// ```
/// use mcp_guard::{Issuer, TypPolicy};
/// let entra = Issuer::discover("https://login.microsoftonline.com/TENANT/v2.0")
///     .typ(TypPolicy::lenient());
/// let fixed = Issuer::with_jwks_uri("https://as.example.com", "https://as.example.com/jwks.json");
/// ```
#[derive(Debug, Clone)]
pub struct Issuer {
    issuer: String,
    keys: IssuerKeys,
    typ: Option<TypPolicy>,
    profile: Profile,
    tenants: Vec<String>,
    algorithms: Vec<Algorithm>,
    key_config: KeySourceConfig,
}

#[derive(Debug, Clone)]
enum IssuerKeys {
    Discover,
    JwksUri(String),
    Fixed(KeySet),
}

impl Issuer {
    /// Keys found through the issuer's RFC 8414 or OpenID Connect discovery document.
    pub fn discover(issuer: impl Into<String>) -> Self {
        Self::new(issuer.into(), IssuerKeys::Discover)
    }

    /// Keys from a fixed JWKS URL.
    pub fn with_jwks_uri(issuer: impl Into<String>, jwks_uri: impl Into<String>) -> Self {
        Self::new(issuer.into(), IssuerKeys::JwksUri(jwks_uri.into()))
    }

    /// Keys given directly, never fetched.
    pub fn with_keys(issuer: impl Into<String>, keys: KeySet) -> Self {
        Self::new(issuer.into(), IssuerKeys::Fixed(keys))
    }

    fn new(issuer: String, keys: IssuerKeys) -> Self {
        Self {
            issuer,
            keys,
            typ: None,
            profile: Profile::generic(),
            tenants: Vec::new(),
            algorithms: SUPPORTED_ALGORITHMS.to_vec(),
            key_config: KeySourceConfig::default(),
        }
    }

    /// The accepted `typ` values (default: the profile's; RFC 9068 `at+jwt` only for the
    /// generic profile).
    pub fn typ(mut self, typ: TypPolicy) -> Self {
        self.typ = Some(typ);
        self
    }

    /// How this issuer's tokens are read (default: [`Profile::generic`]).
    pub fn profile(mut self, profile: Profile) -> Self {
        self.profile = profile;
        self
    }

    /// For a multi-tenant issuer written as a template with `{tid}`
    /// (`https://login.microsoftonline.com/{tid}/v2.0`): the tenants accepted. A token's
    /// `iss` must be the template filled with its own `tid`, and that `tid` one of these.
    pub fn tenants<I, S>(mut self, tenants: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.tenants = tenants.into_iter().map(Into::into).collect();
        self
    }

    /// Restricts the accepted algorithms (default: every supported asymmetric algorithm).
    pub fn algorithms(mut self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        self.algorithms = algorithms
            .into_iter()
            .filter(|a| SUPPORTED_ALGORITHMS.contains(a))
            .collect();
        self
    }

    /// Tunes the key source (cooldown, TTL clamps, timeouts, size cap).
    pub fn key_source_config(mut self, config: KeySourceConfig) -> Self {
        self.key_config = config;
        self
    }
}

/// Why a guard could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// No resource URL was given.
    #[error("the resource URL (the public URL of the MCP endpoint) is required")]
    MissingResource,
    /// The resource URL is not acceptable.
    #[error("invalid resource URL: {0}")]
    InvalidResource(String),
    /// No issuer was given.
    #[error("at least one trusted issuer is required")]
    MissingIssuer,
    /// An issuer is configured twice.
    #[error("issuer `{0}` is configured twice")]
    DuplicateIssuer(String),
    /// An issuer has no usable algorithm.
    #[error("issuer `{0}` allows no supported algorithm")]
    NoAlgorithms(String),
    /// An issuer or key URL is not acceptable.
    #[error(transparent)]
    KeySource(#[from] KeySourceError),
    /// An `Origin` value is not an origin.
    #[error("`{0}` is not an origin (scheme://host[:port])")]
    InvalidOrigin(String),
    /// The policy is inconsistent.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// A `{tid}` issuer template without tenants, or tenants without a template.
    #[error(
        "issuer `{0}`: a `{{tid}}` template needs `tenants`, and `tenants` need a `{{tid}}` template"
    )]
    Tenants(String),
    /// A `{tid}` issuer template cannot be discovered.
    #[error(
        "issuer `{0}` is a `{{tid}}` template: give its key set URL (jwks_uri), it cannot be discovered"
    )]
    TemplateDiscovery(String),
    /// Signing the metadata failed.
    #[error("signing the resource metadata failed: {0}")]
    Signing(String),
}

/// Why authentication failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The token is invalid: 401 `invalid_token`.
    #[error(transparent)]
    Invalid(#[from] JwtError),
    /// No keys could be obtained: 503.
    #[error(transparent)]
    Unavailable(#[from] KeySourceError),
    /// The introspection endpoint could not answer: 503.
    #[error(transparent)]
    IntrospectionUnavailable(#[from] crate::introspection::IntrospectionError),
}

pub(crate) struct IssuerEntry {
    pub(crate) rules: JwtRules,
    pub(crate) keys: KeySource,
    pub(crate) profile: Profile,
}

pub(crate) struct Inner {
    pub(crate) resource: String,
    pub(crate) resource_url: Url,
    pub(crate) metadata_url: String,
    pub(crate) metadata_path: String,
    pub(crate) metadata_json: Bytes,
    pub(crate) issuers: Vec<IssuerEntry>,
    pub(crate) policy: Arc<Policy>,
    pub(crate) allowed_origins: Vec<String>,
    pub(crate) max_body_bytes: usize,
    pub(crate) sessions: crate::edge::session::SessionBindings,
    pub(crate) introspector: Option<Arc<crate::introspection::Introspector>>,
    pub(crate) token_cache: Option<TokenCache>,
    pub(crate) verifications: std::sync::atomic::AtomicU64,
}

/// A configured guard: shared, cheap to clone. Build one with [`Guard::builder`], then mount
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
pub struct Guard(pub(crate) Arc<Inner>);

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
        &self.0.policy
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
    pub fn metadata(&self) -> ResourceMetadata {
        serde_json::from_slice(&self.0.metadata_json)
            .expect("the guard serialized this document itself")
    }

    /// Verifies a bearer token and returns the caller. Keys are loaded on first use; a `kid`
    /// missing from the snapshot triggers at most one rate-limited refetch.
    pub async fn authenticate(&self, token: &str) -> Result<Principal, AuthError> {
        if let Some(introspector) = &self.0.introspector
            && (self.0.issuers.is_empty() || !jwt::looks_like_jwt(token))
        {
            return Ok(introspector.introspect(token, unix_now()).await??);
        }
        let Some(cache) = &self.0.token_cache else {
            return Ok(self.verify_jwt(token).await?.principal);
        };
        let key = TokenCache::key(token);
        let now = unix_now();
        // At most two rounds: a stale entry (expired, key rotated) is dropped and the token
        // verified afresh.
        for _ in 0..2 {
            let slot = cache.slot(&key, now);
            match slot.get_or_try_init(|| self.verify_jwt(token)).await {
                Ok(v) if self.still_valid(v, now) => return Ok(v.principal.clone()),
                Ok(_) => cache.remove(&key, &slot),
                Err(e) => {
                    cache.remove(&key, &slot);
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

    /// Verifies a JWT against its issuer's keys (no cache).
    async fn verify_jwt(&self, token: &str) -> Result<Verified, AuthError> {
        self.0
            .verifications
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (index, entry) = self.issuer_for(token)?;
        let keys = match entry.keys.loaded() {
            Some(keys) => keys,
            None => {
                // Cold path: refuse what can never verify before going to fetch keys for it.
                jwt::precheck(token, &entry.rules)?;
                entry.keys.ready().await?
            }
        };
        let now = unix_now();
        let verified = match jwt::verify(token, &keys, &entry.rules, now) {
            Err(JwtError::UnknownKey) => {
                let fresh = entry.keys.refresh_for_unknown_kid(&keys).await;
                if fresh.generation() == keys.generation() {
                    return Err(JwtError::UnknownKey.into());
                }
                jwt::verify(token, &fresh, &entry.rules, now)?
            }
            other => other?,
        };
        let exp = jwt::numeric_date(&verified.claims, "exp")?.unwrap_or(0);
        let kid = verified.kid.as_deref().map(Arc::from);
        let fingerprint = verified.fingerprint;
        let principal = Principal::from_profile(
            verified.claims,
            &entry.profile,
            self.0.policy.scope_prefix(),
        )?;
        Ok(Verified {
            principal,
            valid_until: exp.saturating_add(entry.rules.leeway.as_secs()),
            issuer: index,
            kid,
            fingerprint,
        })
    }

    fn issuer_for(&self, token: &str) -> Result<(usize, &IssuerEntry), JwtError> {
        match self.0.issuers.as_slice() {
            [] => Err(JwtError::WrongIssuer),
            [only] => Ok((0, only)),
            many => {
                let iss = jwt::unverified_issuer(token)?;
                many.iter()
                    .enumerate()
                    .find(|(_, e)| jwt::issuer_routes(&e.rules, &iss))
                    .ok_or(JwtError::WrongIssuer)
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
        self.0.policy.advertise(scopes)
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

/// Builds a [`Guard`].
#[derive(Debug, Default)]
pub struct GuardBuilder {
    resource: Option<String>,
    issuers: Vec<Issuer>,
    policy: Option<Policy>,
    leeway: Option<Duration>,
    extra_audiences: Vec<String>,
    allowed_origins: Vec<String>,
    resource_name: Option<String>,
    resource_documentation: Option<String>,
    resource_policy_uri: Option<String>,
    resource_tos_uri: Option<String>,
    jwks_uri: Option<String>,
    signing_key: Option<MetadataSigningKey>,
    max_body_bytes: Option<usize>,
    max_sessions: Option<usize>,
    scope_prefix: Option<String>,
    introspection: Option<crate::introspection::Introspection>,
    token_cache: Option<usize>,
    descriptor: Option<ResourceDescriptor>,
    server_policy: Option<PolicyBuilder>,
    resources: Vec<(String, Requirement)>,
}

impl GuardBuilder {
    /// Configures the guard from a server type: the policy is collected from its
    /// `#[protected]` / `#[public]` operations and its `scopes!` catalogue, and the metadata
    /// from its `#[derive(ProtectedResource)]`. Anything also set on this builder (before or
    /// after) wins; the authorization servers named by the derive are trusted by discovery
    /// when no issuer is configured. Only the type is needed: `.server::<MyServer>()`.
    pub fn server<S: ProtectedResource + GuardedServer>(mut self) -> Self {
        self.server_policy = Some(crate::server::policy_builder::<S>());
        self.descriptor = Some(S::DESCRIPTOR);
        self
    }

    /// The requirement of the resources matching a URI or URI template (`file:///{+path}`),
    /// added to the policy collected by [`GuardBuilder::server`]. Enforced in `resources/read`
    /// by the layer and by [`crate::rmcp::authorize`].
    pub fn resource_requirement(mut self, uri_template: &str, requirement: Requirement) -> Self {
        self.resources.push((uri_template.to_owned(), requirement));
        self
    }

    /// The public URL of the MCP endpoint, e.g. `https://mcp.example.com/mcp`. It is the
    /// `resource` of the metadata and the audience tokens must carry.
    pub fn resource(mut self, url: impl Into<String>) -> Self {
        self.resource = Some(url.into());
        self
    }

    /// Trusts an issuer. Several issuers may be trusted at once (multi-tenant); tokens are
    /// routed by their `iss` and verified only with that issuer's keys.
    pub fn issuer(mut self, issuer: Issuer) -> Self {
        self.issuers.push(issuer);
        self
    }

    /// The authorization policy (default: any authenticated caller may do anything).
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = Some(policy);
        self
    }

    /// Clock tolerance for `exp`, `nbf`, `iat` (default 60 s).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = Some(leeway);
        self
    }

    /// Another accepted `aud` value besides the resource URL (an Entra App ID URI, a client
    /// id).
    pub fn extra_audience(mut self, audience: impl Into<String>) -> Self {
        self.extra_audiences.push(audience.into());
        self
    }

    /// An allowed `Origin` besides the resource's own. Requests with any other `Origin`
    /// header are refused with 403 (MCP transport rule against DNS rebinding); requests
    /// without `Origin` (non-browser clients) are not affected.
    pub fn allowed_origin(mut self, origin: impl Into<String>) -> Self {
        self.allowed_origins.push(origin.into());
        self
    }

    /// `resource_name` of the metadata.
    pub fn resource_name(mut self, name: impl Into<String>) -> Self {
        self.resource_name = Some(name.into());
        self
    }

    /// `resource_documentation` of the metadata.
    pub fn resource_documentation(mut self, url: impl Into<String>) -> Self {
        self.resource_documentation = Some(url.into());
        self
    }

    /// `resource_policy_uri` of the metadata.
    pub fn resource_policy_uri(mut self, url: impl Into<String>) -> Self {
        self.resource_policy_uri = Some(url.into());
        self
    }

    /// `resource_tos_uri` of the metadata.
    pub fn resource_tos_uri(mut self, url: impl Into<String>) -> Self {
        self.resource_tos_uri = Some(url.into());
        self
    }

    /// `jwks_uri` of the metadata: where the resource's own keys (for signed metadata) are.
    pub fn jwks_uri(mut self, url: impl Into<String>) -> Self {
        self.jwks_uri = Some(url.into());
        self
    }

    /// Publishes `signed_metadata`, signed with this key.
    pub fn sign_metadata(mut self, key: MetadataSigningKey) -> Self {
        self.signing_key = Some(key);
        self
    }

    /// The namespace of this resource's scopes at the identity provider, e.g. Entra ID's App
    /// ID URI (`api://…/`) or a Cognito resource server identifier (`https://…/`). Scopes
    /// are advertised with it (`scopes_supported`, challenges) and held without it: a token's
    /// `api://…/files.read` or `files.read` both grant `files.read`.
    pub fn scope_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.scope_prefix = Some(prefix.into()).filter(|p| !p.is_empty());
        self
    }

    /// Accepts opaque access tokens through RFC 7662 introspection. With issuers configured
    /// too, tokens shaped like a JWT are verified locally and all others introspected;
    /// without, every token is introspected.
    pub fn introspection(mut self, introspection: crate::introspection::Introspection) -> Self {
        self.introspection = Some(introspection);
        self
    }

    /// Capacity of the verified-token cache (default 10 000 tokens; 0 turns it off). A token
    /// seen again is not verified again while the verifier would still accept it and the key
    /// that verified it is still published; revocation at the authorization server is not
    /// seen either way, since JWTs are verified locally.
    pub fn token_cache_capacity(mut self, tokens: usize) -> Self {
        self.token_cache = Some(tokens);
        self
    }

    /// Cap on the body read to classify a request (default 4 MiB, rmcp's own limit).
    pub fn max_body_bytes(mut self, bytes: usize) -> Self {
        self.max_body_bytes = Some(bytes);
        self
    }

    /// Cap on remembered legacy-session bindings (default 100 000; the oldest binding is
    /// dropped first, and its session is then refused).
    pub fn max_sessions(mut self, sessions: usize) -> Self {
        self.max_sessions = Some(sessions);
        self
    }

    /// Validates the configuration and builds the guard.
    pub fn build(mut self) -> Result<Guard, ConfigError> {
        jwt::ensure_crypto_provider();
        if let Some(server_policy) = self.server_policy.take()
            && self.policy.is_none()
        {
            let mut builder = server_policy;
            for (template, requirement) in self.resources.drain(..) {
                builder = builder.resource(&template, requirement);
            }
            self.policy = Some(builder.build()?);
        }
        if let Some(d) = self.descriptor.take() {
            let fill = |slot: &mut Option<String>, value: Option<&str>| {
                if slot.is_none() {
                    *slot = value.map(str::to_owned);
                }
            };
            fill(&mut self.resource, d.resource);
            fill(&mut self.resource_name, d.name);
            fill(&mut self.resource_documentation, d.documentation);
            fill(&mut self.resource_policy_uri, d.policy_uri);
            fill(&mut self.resource_tos_uri, d.tos_uri);
            if self.issuers.is_empty() {
                self.issuers = d
                    .authorization_servers
                    .iter()
                    .map(|i| Issuer::discover(*i))
                    .collect();
            }
        }
        let raw = self.resource.ok_or(ConfigError::MissingResource)?;
        let resource_url =
            metadata::canonical_resource(&raw).map_err(ConfigError::InvalidResource)?;
        let resource = metadata::resource_string(&resource_url);
        if self.issuers.is_empty() && self.introspection.is_none() {
            return Err(ConfigError::MissingIssuer);
        }
        let mut audience_values = vec![resource.clone()];
        audience_values.extend(self.extra_audiences.iter().cloned());
        let audiences = Audiences::new(&audience_values);
        let leeway = self.leeway.unwrap_or(Duration::from_secs(60));
        let mut issuers: Vec<IssuerEntry> = Vec::new();
        for i in &self.issuers {
            if issuers.iter().any(|e| e.rules.issuer == i.issuer) {
                return Err(ConfigError::DuplicateIssuer(i.issuer.clone()));
            }
            if i.algorithms.is_empty() {
                return Err(ConfigError::NoAlgorithms(i.issuer.clone()));
            }
            let template = i.issuer.contains("{tid}");
            if template == i.tenants.is_empty() {
                return Err(ConfigError::Tenants(i.issuer.clone()));
            }
            if template && matches!(i.keys, IssuerKeys::Discover) {
                return Err(ConfigError::TemplateDiscovery(i.issuer.clone()));
            }
            let mut key_config = i.key_config.clone();
            key_config.algorithms = i.algorithms.clone();
            let keys = match &i.keys {
                IssuerKeys::Discover => KeySource::discover(&i.issuer, key_config)?,
                IssuerKeys::JwksUri(u) => KeySource::jwks_uri(&i.issuer, u, key_config)?,
                IssuerKeys::Fixed(k) => KeySource::fixed(&i.issuer, k.clone()),
            };
            let mut rules = JwtRules::new(i.issuer.clone(), audiences.clone());
            rules.leeway = leeway;
            rules.typ = i.typ.clone().unwrap_or_else(|| i.profile.typ.clone());
            rules.algorithms = i.algorithms.clone();
            rules.tenants = i.tenants.clone();
            rules.audience_claim = i.profile.audience.clone();
            issuers.push(IssuerEntry {
                rules,
                keys,
                profile: i.profile.clone(),
            });
        }
        let policy = self.policy.unwrap_or_default();
        let mut allowed_origins = vec![resource_url.origin().ascii_serialization()];
        for o in &self.allowed_origins {
            let parsed = Url::parse(o).map_err(|_| ConfigError::InvalidOrigin(o.clone()))?;
            if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
                return Err(ConfigError::InvalidOrigin(o.clone()));
            }
            allowed_origins.push(parsed.origin().ascii_serialization());
        }
        // A `{tid}` template is advertised as one issuer per accepted tenant: clients discover
        // real issuers, never the template.
        let mut authorization_servers: Vec<String> = Vec::new();
        for i in &self.issuers {
            match i.issuer.split_once("{tid}") {
                None => authorization_servers.push(i.issuer.clone()),
                Some((prefix, suffix)) => authorization_servers
                    .extend(i.tenants.iter().map(|t| format!("{prefix}{t}{suffix}"))),
            }
        }
        if let Some(iss) = self
            .introspection
            .as_ref()
            .and_then(|i| i.issuer_identifier())
            && !authorization_servers.iter().any(|a| a == iss)
        {
            authorization_servers.push(iss.to_owned());
        }
        if authorization_servers.is_empty() {
            return Err(ConfigError::MissingIssuer);
        }
        // The policy is the one home of the scope prefix; the introspector strips it too.
        let mut policy = policy;
        policy.scope_prefix = self.scope_prefix.take();
        let introspector = self.introspection.take().map(|i| {
            crate::introspection::Introspector::new(
                i,
                audiences.clone(),
                policy.scope_prefix().map(str::to_owned),
            )
        });
        let mut doc = ResourceMetadata::new(&resource, authorization_servers);
        doc.scopes_supported = policy.advertise(&policy.scopes_supported()).to_vec();
        doc.resource_name = self.resource_name;
        doc.resource_documentation = self.resource_documentation;
        doc.resource_policy_uri = self.resource_policy_uri;
        doc.resource_tos_uri = self.resource_tos_uri;
        doc.jwks_uri = self.jwks_uri;
        if let Some(key) = &self.signing_key {
            doc.sign(key)
                .map_err(|e| ConfigError::Signing(e.to_string()))?;
        }
        let metadata_json = Bytes::from(serde_json::to_vec(&doc).expect("metadata serializes"));
        Ok(Guard(Arc::new(Inner {
            metadata_url: metadata::metadata_url(&resource_url),
            metadata_path: metadata::metadata_path(&resource_url),
            resource,
            resource_url,
            metadata_json,
            issuers,
            policy: Arc::new(policy),
            allowed_origins,
            max_body_bytes: self.max_body_bytes.unwrap_or(4 * 1024 * 1024),
            sessions: crate::edge::session::SessionBindings::new(
                self.max_sessions.unwrap_or(100_000),
            ),
            introspector,
            token_cache: match self.token_cache.unwrap_or(10_000) {
                0 => None,
                n => Some(TokenCache::new(n)),
            },
            verifications: std::sync::atomic::AtomicU64::new(0),
        })))
    }
}
