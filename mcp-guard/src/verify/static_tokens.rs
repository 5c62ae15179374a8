//! Opaque tokens known in advance ([`StaticTokens`]): fixtures for tests and conformance
//! suites, and fixed service credentials, verified by lookup instead of by signature or
//! introspection.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

use crate::principal::Principal;
use crate::scope::{ScopeError, ScopeSet};
use crate::token_cache::TokenCache;

/// The `iss` of the principals static tokens stand for.
pub const STATIC_ISSUER: &str = "urn:mcp-guard:static-token";

/// A fixed set of opaque tokens, each standing for one caller with fixed scopes
/// ([`GuardBuilder::static_tokens`](crate::GuardBuilder::static_tokens)).
///
/// A token found here is accepted without asking anyone: there is no signature to check, no
/// expiry unless one is given, and no revocation but rebuilding the guard. Use it for test
/// and conformance fixtures (such as the MCP conformance suite's `mcp-conformance-scope-low`
/// and `mcp-conformance-scope-full`), or for a few long-lived service credentials kept as
/// secrets; users should sign in through the authorization server. Tokens not listed go on
/// to the configured issuers and introspection as usual. Only a SHA-256 digest of each token
/// is kept, and lookups compare digests, never the token text.
///
/// ```
/// use mcp_guard::StaticTokens;
/// let tokens = StaticTokens::new()
///     .token("mcp-conformance-scope-low", "conformance-low", "mcp:conformance:baseline")
///     .unwrap();
/// assert_eq!(tokens.len(), 1);
/// ```
#[derive(Clone, Default)]
pub struct StaticTokens {
    by_digest: HashMap<[u8; 32], Principal>,
}

impl std::fmt::Debug for StaticTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticTokens")
            .field("tokens", &self.by_digest.len())
            .finish()
    }
}

/// Why a static token could not be added.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StaticTokenError {
    /// The token is empty or not an RFC 6750 `b64token` (it could never arrive in an
    /// `Authorization: Bearer` header).
    #[error("a static token must be a non-empty RFC 6750 b64token")]
    InvalidToken,
    /// The subject is empty.
    #[error("a static token's subject must not be empty")]
    EmptySubject,
    /// A scope is not an RFC 6749 scope token.
    #[error(transparent)]
    Scope(#[from] ScopeError),
    /// The token is listed twice.
    #[error("the same static token is listed twice")]
    Duplicate,
}

/// The expiry of a static token given none: far in the future, within any clock's range.
const NO_EXPIRY: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

impl StaticTokens {
    /// No tokens.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `token`, standing for the subject `subject` holding the space-separated `scopes`.
    pub fn token(self, token: &str, subject: &str, scopes: &str) -> Result<Self, StaticTokenError> {
        self.token_expiring(token, subject, scopes, None)
    }

    /// Adds `token` as [`token`](Self::token) does, refused from `expires_at` on.
    pub fn token_expiring(
        mut self,
        token: &str,
        subject: &str,
        scopes: &str,
        expires_at: Option<SystemTime>,
    ) -> Result<Self, StaticTokenError> {
        if !crate::bearer::is_b64token(token) {
            return Err(StaticTokenError::InvalidToken);
        }
        if subject.is_empty() {
            return Err(StaticTokenError::EmptySubject);
        }
        let scopes = ScopeSet::parse(scopes)?;
        let exp = expires_at
            .unwrap_or_else(|| SystemTime::now() + NO_EXPIRY)
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
            .min(crate::jwt::MAX_NUMERIC_DATE);
        let mut claims = Map::new();
        claims.insert("iss".into(), json!(STATIC_ISSUER));
        claims.insert("sub".into(), json!(subject));
        claims.insert("exp".into(), json!(exp));
        claims.insert("scope".into(), Value::String(scopes.to_string()));
        let principal =
            Principal::from_claims(claims).expect("the claims are complete and well formed");
        if self
            .by_digest
            .insert(TokenCache::key(token), principal)
            .is_some()
        {
            return Err(StaticTokenError::Duplicate);
        }
        Ok(self)
    }

    /// How many tokens are listed.
    pub fn len(&self) -> usize {
        self.by_digest.len()
    }

    /// Whether none are.
    pub fn is_empty(&self) -> bool {
        self.by_digest.is_empty()
    }

    /// The tokens, their principals judged by the server's scope hierarchy.
    pub(crate) fn with_hierarchy(
        mut self,
        hierarchy: &std::sync::Arc<crate::scope::ScopeHierarchy>,
    ) -> Self {
        for p in self.by_digest.values_mut() {
            *p = p.clone().with_hierarchy(hierarchy);
        }
        self
    }

    /// The caller `token` stands for, if it is listed: `Some(Err(()))` once it has expired.
    pub(crate) fn lookup(&self, token: &str, now: u64) -> Option<Result<Principal, ()>> {
        let principal = self.by_digest.get(&TokenCache::key(token))?;
        let exp = principal
            .expires_at()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
            .min(crate::jwt::MAX_NUMERIC_DATE);
        Some(if now < exp {
            Ok(principal.clone())
        } else {
            Err(())
        })
    }
}
