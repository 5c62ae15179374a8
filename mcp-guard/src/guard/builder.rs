//! [`GuardBuilder`]: the configuration, validated and assembled into a [`Guard`] in named
//! steps (the policy, the issuer entries, the advertised authorization servers, the metadata
//! document, the caches).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use url::Url;

use super::issuer::IssuerEntry;
use super::{ConfigError, Guard, Hooks, Inner, Issuer, PrincipalCheck};
use crate::audit::{AuditSink, Enforcement};
use crate::challenge::ToolCallChallenge;
use crate::declared::{DeclaredOperations, ProtectedResource, ResourceDescriptor};
use crate::edge::session::{SessionBindings, SessionLimits};
use crate::introspection::{Introspection, Introspector};
use crate::jwt::{self, Audiences};
use crate::metadata::{self, MetadataSigningKey, ResourceMetadata, ScopesSupported};
use crate::policy::{Policy, PolicyBuilder, Requirement};
use crate::static_tokens::StaticTokens;
use crate::token_cache::TokenCache;

/// The body cap when none is configured: rmcp's own limit.
const DEFAULT_MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
/// How long a `PrincipalCheck` may take when no timeout is configured.
const DEFAULT_CHECK_TIMEOUT: Duration = Duration::from_secs(5);
/// The clients [`ToolCallChallenge::Auto`] answers with a tool result when none are
/// configured: ChatGPT's `User-Agent` product.
const DEFAULT_TOOL_RESULT_CLIENTS: &[&str] = &["openai-mcp"];
/// The longest bearer token accepted when no limit is configured: far above any real access
/// token (a few KiB with many groups or roles), far below what costs to parse.
const DEFAULT_MAX_TOKEN_BYTES: usize = 16 * 1024;
/// The clock tolerance when none is configured.
const DEFAULT_LEEWAY: Duration = Duration::from_secs(60);

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
    max_token_bytes: Option<usize>,
    max_token_lifetime: Option<Duration>,
    session_limits: SessionLimits,
    max_sessions: Option<usize>,
    scope_prefix: Option<String>,
    introspection: Option<Introspection>,
    token_cache: Option<usize>,
    descriptor: Option<ResourceDescriptor>,
    server_policy: Option<PolicyBuilder>,
    resources: Vec<(String, Requirement)>,
    hooks: Hooks,
    check_timeout: Option<Duration>,
    anonymous: Option<bool>,
    tool_call_challenge: ToolCallChallenge,
    tool_result_clients: Option<Vec<String>>,
    scopes_supported: ScopesSupported,
    static_tokens: Option<StaticTokens>,
    dpop: Option<crate::dpop::Dpop>,
}

impl GuardBuilder {
    /// The capacity of the verified-token cache when
    /// [`token_cache_capacity`](Self::token_cache_capacity) is not set: 10 000 tokens.
    pub const DEFAULT_TOKEN_CACHE_CAPACITY: usize = 10_000;

    /// Configures the guard from a server type: the policy is collected from its
    /// `#[protected]` / `#[public]` operations and its `scopes!` catalogue, and the metadata
    /// from its `#[derive(ProtectedResource)]`. Anything also set on this builder (before or
    /// after) wins; the authorization servers named by the derive are trusted by discovery
    /// when no issuer is configured. Only the type is needed: `.server::<MyServer>()`.
    pub fn server<S: ProtectedResource + DeclaredOperations>(mut self) -> Self {
        self.server_policy = Some(crate::declared::policy_builder::<S>());
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
    pub fn introspection(mut self, introspection: Introspection) -> Self {
        self.introspection = Some(introspection);
        self
    }

    /// Capacity of the verified-token cache (default
    /// [`DEFAULT_TOKEN_CACHE_CAPACITY`](Self::DEFAULT_TOKEN_CACHE_CAPACITY); 0 turns it off). A token
    /// seen again is not verified again while the verifier would still accept it and the key
    /// that verified it is still published; revocation at the authorization server is not
    /// seen either way, since JWTs are verified locally. Once the cache is full, a new token
    /// is cached on its second successful verification only, so tokens used once (a client
    /// minting one per call, a flood) never evict the tokens in use, and a refused token
    /// never evicts anything.
    pub fn token_cache_capacity(mut self, tokens: usize) -> Self {
        self.token_cache = Some(tokens);
        self
    }

    /// Cap on the body read to classify a request and decide its argument rules (default
    /// 4 MiB, rmcp's own limit).
    pub fn max_body_bytes(mut self, bytes: usize) -> Self {
        self.max_body_bytes = Some(bytes);
        self
    }

    /// The longest bearer token accepted, in bytes (default 16 KiB). A longer one is refused
    /// with 401 `invalid_token` before any decoding, parsing or signature work, whichever
    /// verifier (JWT, introspection, static tokens) would have handled it.
    pub fn max_token_bytes(mut self, bytes: usize) -> Self {
        self.max_token_bytes = Some(bytes);
        self
    }

    /// The longest JWT lifetime accepted: a token whose `exp` lies further after its `iat`
    /// (after now, for a token without `iat`) is refused with 401 `invalid_token`. Unset by
    /// default: the authorization server decides lifetimes. Set it to bound what a leaked
    /// token is worth when an issuer mints long-lived access tokens.
    pub fn max_token_lifetime(mut self, lifetime: Duration) -> Self {
        self.max_token_lifetime = Some(lifetime);
        self
    }

    /// How many legacy (2025-11-25) sessions the server holds, per subject and never signed
    /// in to, and for how long ([`SessionLimits`]; 10 000 in all, 32 per subject, 256
    /// anonymous by default). Give rmcp [`Guard::session_manager`] so the sessions let go are
    /// ended in rmcp too.
    pub fn session_limits(mut self, limits: SessionLimits) -> Self {
        self.session_limits = limits;
        self
    }

    /// The most legacy sessions held at once: [`SessionLimits::total`], over whatever
    /// [`GuardBuilder::session_limits`] says, in either order.
    pub fn max_sessions(mut self, sessions: usize) -> Self {
        self.max_sessions = Some(sessions);
        self
    }

    /// The posture towards callers without a token. `false` (the default), the *sign-in*
    /// posture: every request without a token, `initialize` and lists included, answers 401
    /// with the `resource_metadata` challenge, so every client starts OAuth at its first
    /// request; `#[public]` operations need no scope, but a token. `true`, the *anonymous
    /// access* posture: discovery and `#[public]` operations work without a token, and a
    /// protected operation called without one answers with the challenge. Clients that decide
    /// at connect time whether to sign in treat a 200 first answer as "no sign-in needed", so
    /// choose it only for servers whose public operations are the point. Wins over
    /// `#[protected_resource(anonymous)]`.
    pub fn anonymous(mut self, allow: bool) -> Self {
        self.anonymous = Some(allow);
        self
    }

    /// Accepts DPoP-bound tokens (RFC 9449, MCP SEP-1932) with the checks [`crate::dpop`]
    /// lists: [`Dpop::allowed`](crate::dpop::Dpop::allowed) beside bearer tokens, or
    /// [`Dpop::required`](crate::dpop::Dpop::required) instead of them. Without it, a token
    /// bound to a key is refused (never accepted as a bearer token).
    ///
    /// ```
    /// use mcp_guard::{Guard, Issuer, dpop::Dpop};
    /// let guard = Guard::builder()
    ///     .resource("https://mcp.example.com/mcp")
    ///     .issuer(Issuer::discover("https://auth.example.com"))
    ///     .dpop(Dpop::allowed())
    ///     .build()?;
    /// assert_eq!(
    ///     guard.metadata().dpop_signing_alg_values_supported,
    ///     ["ES256", "ES384", "EdDSA", "PS256", "RS256"]
    /// );
    /// # Ok::<(), mcp_guard::ConfigError>(())
    /// ```
    pub fn dpop(mut self, dpop: crate::dpop::Dpop) -> Self {
        self.dpop = Some(dpop);
        self
    }

    /// Opaque tokens accepted by lookup, before the issuers and introspection are asked
    /// ([`StaticTokens`]): for test and conformance fixtures, or a few service credentials.
    /// They come beside a trusted issuer, never instead of one: MCP clients need an
    /// authorization server to sign in with. Setting it again replaces the set.
    pub fn static_tokens(mut self, tokens: StaticTokens) -> Self {
        self.static_tokens = Some(tokens);
        self
    }

    /// Which scopes the metadata's `scopes_supported` lists ([`ScopesSupported`]): by default
    /// the baseline and the `#[advertised]` ones, never the whole catalogue.
    pub fn scopes_supported(mut self, which: ScopesSupported) -> Self {
        self.scopes_supported = which;
        self
    }

    /// The form of the challenge for a `tools/call` refused for want of a token or of
    /// scopes ([`ToolCallChallenge`]; HTTP by default).
    pub fn tool_call_challenge(mut self, form: ToolCallChallenge) -> Self {
        self.tool_call_challenge = form;
        self
    }

    /// The clients [`ToolCallChallenge::Auto`] answers with a tool result: the product names
    /// their `User-Agent` starts with (`openai-mcp`, ChatGPT's, by default). Replaces the
    /// default list.
    pub fn tool_result_clients<I, S>(mut self, products: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.tool_result_clients = Some(products.into_iter().map(Into::into).collect());
        self
    }

    /// A check run on every verified caller before any decision ([`PrincipalCheck`]): a
    /// revocation lookup, a disabled-account list. A refusal answers 401 `invalid_token`; a
    /// check that cannot be made answers 503. Setting it again replaces it.
    pub fn check(mut self, check: impl PrincipalCheck) -> Self {
        self.hooks.check = Some(Arc::new(check));
        self
    }

    /// How long the [`PrincipalCheck`] may take (default 5 s); a check that takes longer
    /// counts as unavailable: 503, and the request is refused.
    pub fn check_timeout(mut self, limit: Duration) -> Self {
        self.check_timeout = Some(limit);
        self
    }

    /// Receives every decision beside the `tracing` event ([`AuditSink`]). Setting it again
    /// replaces it.
    pub fn audit_sink(mut self, sink: impl AuditSink) -> Self {
        self.hooks.audit_sink = Some(Arc::new(sink));
        self
    }

    /// Validates the configuration and builds the guard.
    pub fn build(mut self) -> Result<Guard, ConfigError> {
        jwt::ensure_crypto_provider();
        let mut policy = self.collect_policy()?;
        self.apply_descriptor();
        let raw = self.resource.take().ok_or(ConfigError::MissingResource)?;
        let resource_url =
            metadata::canonical_resource(&raw).map_err(ConfigError::InvalidResource)?;
        let resource = metadata::resource_string(&resource_url);
        // Static tokens alone would leave clients no authorization server to sign in with.
        if self.issuers.is_empty() && self.introspection.is_none() {
            return Err(ConfigError::MissingIssuer);
        }
        let mut audience_values = vec![resource.clone()];
        audience_values.extend(self.extra_audiences.iter().cloned());
        let audiences = Audiences::new(&audience_values);
        let issuers = self.issuer_entries(&audiences)?;
        let allowed_origins = self.allowed_origins(&resource_url)?;
        let authorization_servers = self.authorization_servers()?;
        // The policy is the one home of the scope prefix; the introspector strips it too.
        policy.scope_prefix = self.scope_prefix.take();
        policy.anonymous = self.anonymous.unwrap_or(false);
        let introspector = self.introspection.take().map(|i| {
            Introspector::new(
                i,
                audiences,
                policy.scope_prefix().map(str::to_owned),
                policy.shared_hierarchy().clone(),
            )
        });
        let dpop = match self.dpop.take() {
            Some(d) => {
                d.validate().map_err(ConfigError::Dpop)?;
                Some(crate::dpop::DpopVerifier::new(d, &resource_url))
            }
            None => None,
        };
        let metadata =
            self.metadata_document(&resource, authorization_servers, &policy, dpop.as_ref())?;
        let metadata_json =
            Bytes::from(serde_json::to_vec(&metadata).expect("metadata serializes"));
        let (sessions, token_cache) = self.caches();
        let policy = Arc::new(policy);
        Ok(Guard(Arc::new(Inner {
            metadata_url: metadata::metadata_url(&resource_url),
            metadata_path: metadata::metadata_path(&resource_url),
            resource,
            resource_url,
            metadata,
            metadata_json,
            issuers,
            enforcement: Arc::new(Enforcement {
                policy: Arc::clone(&policy),
                sink: self.hooks.audit_sink,
            }),
            allowed_origins,
            max_body_bytes: self.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY_BYTES),
            max_token_bytes: self.max_token_bytes.unwrap_or(DEFAULT_MAX_TOKEN_BYTES),
            sessions,
            introspector,
            token_cache,
            verifications: std::sync::atomic::AtomicU64::new(0),
            check: self.hooks.check,
            check_timeout: self.check_timeout.unwrap_or(DEFAULT_CHECK_TIMEOUT),
            anonymous: self.anonymous.unwrap_or(false),
            dpop,
            tool_call_challenge: self.tool_call_challenge,
            static_tokens: self
                .static_tokens
                .take()
                .map(|t| t.with_hierarchy(policy.shared_hierarchy())),
            tool_result_clients: self.tool_result_clients.take().unwrap_or_else(|| {
                DEFAULT_TOOL_RESULT_CLIENTS
                    .iter()
                    .map(|c| (*c).to_owned())
                    .collect()
            }),
        })))
    }

    /// The policy: the one given, or the one collected from the server type with the resource
    /// requirements added; without either, any authenticated caller may do anything.
    fn collect_policy(&mut self) -> Result<Policy, ConfigError> {
        let collected = self.server_policy.take();
        if let Some(policy) = self.policy.take() {
            if !self.resources.is_empty() {
                return Err(ConfigError::ResourceRequirementWithPolicy);
            }
            return Ok(policy);
        }
        let Some(mut builder) = collected else {
            if !self.resources.is_empty() {
                let mut builder = Policy::builder();
                for (template, requirement) in self.resources.drain(..) {
                    builder = builder.resource(&template, requirement);
                }
                return Ok(builder.build()?);
            }
            return Ok(Policy::default());
        };
        for (template, requirement) in self.resources.drain(..) {
            builder = builder.resource(&template, requirement);
        }
        Ok(builder.build()?)
    }

    /// Fills what the builder left unset from the server's `#[derive(ProtectedResource)]`.
    fn apply_descriptor(&mut self) {
        let Some(d) = self.descriptor.take() else {
            return;
        };
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
        self.anonymous = self.anonymous.or(Some(d.anonymous));
        if self.issuers.is_empty() {
            self.issuers = d
                .authorization_servers
                .iter()
                .map(|i| Issuer::discover(*i))
                .collect();
        }
    }

    /// One entry per trusted issuer, each checked on its own and against the others.
    fn issuer_entries(&self, audiences: &Audiences) -> Result<Vec<IssuerEntry>, ConfigError> {
        let leeway = self.leeway.unwrap_or(DEFAULT_LEEWAY);
        let mut entries: Vec<IssuerEntry> = Vec::with_capacity(self.issuers.len());
        for issuer in &self.issuers {
            if entries
                .iter()
                .any(|e| e.rules.issuer == issuer.identifier())
            {
                return Err(ConfigError::DuplicateIssuer(issuer.identifier().to_owned()));
            }
            entries.push(issuer.entry(audiences, leeway, self.max_token_lifetime)?);
        }
        Ok(entries)
    }

    /// The origins whose browser requests are accepted: the resource's own and those
    /// configured.
    fn allowed_origins(&self, resource_url: &Url) -> Result<Vec<String>, ConfigError> {
        let mut allowed = vec![resource_url.origin().ascii_serialization()];
        for o in &self.allowed_origins {
            let parsed = Url::parse(o).map_err(|_| ConfigError::InvalidOrigin(o.clone()))?;
            if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
                return Err(ConfigError::InvalidOrigin(o.clone()));
            }
            allowed.push(parsed.origin().ascii_serialization());
        }
        Ok(allowed)
    }

    /// The `authorization_servers` of the metadata: every trusted issuer as clients discover
    /// it, and the introspection endpoint's issuer when it names one.
    fn authorization_servers(&self) -> Result<Vec<String>, ConfigError> {
        let mut servers: Vec<String> = self.issuers.iter().flat_map(Issuer::advertised).collect();
        if let Some(iss) = self
            .introspection
            .as_ref()
            .and_then(|i| i.issuer_identifier())
            && !servers.iter().any(|a| a == iss)
        {
            servers.push(iss.to_owned());
        }
        if servers.is_empty() {
            return Err(ConfigError::MissingIssuer);
        }
        Ok(servers)
    }

    /// The protected resource metadata document (RFC 9728), signed when a key is configured.
    fn metadata_document(
        &mut self,
        resource: &str,
        authorization_servers: Vec<String>,
        policy: &Policy,
        dpop: Option<&crate::dpop::DpopVerifier>,
    ) -> Result<ResourceMetadata, ConfigError> {
        let mut doc = ResourceMetadata::new(resource, authorization_servers);
        let listed = match &self.scopes_supported {
            ScopesSupported::Advertised => policy.scopes_supported(),
            ScopesSupported::Catalogue => policy.known_scopes(),
            ScopesSupported::Only(scopes) => {
                let known = policy.known_scopes();
                if let Some(s) = scopes.iter().find(|s| !known.contains(s)) {
                    return Err(ConfigError::UnknownAdvertisedScope(s.to_owned()));
                }
                scopes.clone()
            }
        };
        doc.scopes_supported = policy.advertise(&listed).to_vec();
        doc.resource_name = self.resource_name.take();
        doc.resource_documentation = self.resource_documentation.take();
        doc.resource_policy_uri = self.resource_policy_uri.take();
        doc.resource_tos_uri = self.resource_tos_uri.take();
        doc.jwks_uri = self.jwks_uri.take();
        if let Some(d) = dpop {
            doc.dpop_signing_alg_values_supported = d.algorithm_names();
            doc.dpop_bound_access_tokens_required = d.required();
        }
        if let Some(key) = &self.signing_key {
            doc.sign(key)
                .map_err(|e| ConfigError::Signing(e.to_string()))?;
        }
        Ok(doc)
    }

    /// The session bindings and the verified-token cache, at their configured sizes.
    fn caches(&self) -> (Arc<SessionBindings>, Option<TokenCache>) {
        let mut limits = self.session_limits.clone();
        if let Some(total) = self.max_sessions {
            limits = limits.total(total);
        }
        let sessions = Arc::new(SessionBindings::new(limits));
        let tokens = match self
            .token_cache
            .unwrap_or(Self::DEFAULT_TOKEN_CACHE_CAPACITY)
        {
            0 => None,
            n => Some(TokenCache::new(n)),
        };
        (sessions, tokens)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwt::KeySet;

    fn builder() -> GuardBuilder {
        Guard::builder()
            .resource("https://mcp.example.com/mcp")
            .issuer(Issuer::with_keys(
                "https://as.example.com",
                KeySet::from_keys([]),
            ))
    }

    #[test]
    fn a_resource_requirement_beside_a_ready_policy_is_refused_not_dropped() {
        let err = builder()
            .policy(Policy::default())
            .resource_requirement("file:///{+path}", Requirement::default())
            .build()
            .unwrap_err();
        assert_eq!(err, ConfigError::ResourceRequirementWithPolicy);
    }

    #[test]
    fn a_resource_requirement_alone_is_checked_against_the_catalogue() {
        let requirement = Requirement::scopes(["files:read"]).unwrap();
        let err = builder()
            .resource_requirement("file:///{+path}", requirement)
            .build()
            .unwrap_err();
        assert_eq!(
            err,
            ConfigError::Policy(crate::policy::PolicyError::UndeclaredScope(
                "files:read".into()
            ))
        );
    }
}
