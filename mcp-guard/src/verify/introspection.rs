//! Opaque access tokens: RFC 7662 token introspection, with responses cached (by a SHA-256 of
//! the token, never the token) no longer than the token's `exp` and a configured TTL, and
//! read bounded (64 KiB) while they stream.
//!
//! Who the caller is: a response's `sub` when it has one. RFC 7662 makes `sub` optional; a
//! response without it is accepted only as the client acting for itself (app-only, client
//! credentials): it names a `client_id` and no `username`. Its principal's subject is that
//! client id, marked as such ([`Principal::subject_is_client`], token kind app-only), so a
//! client named `alice` and a user whose `sub` is `alice` never share a legacy session. A
//! response with a `username` but no `sub` is refused (`invalid_token`): a user name is a
//! display name that may be reassigned, never an identity.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Map, Value};
use url::Url;

use crate::jwks::{KeySourceError, require_secure};
use crate::jwt::{Audiences, TokenError};
use crate::principal::Principal;
use crate::profile::Profile;

/// The largest introspection response read (64 KiB); a larger one is refused while it streams.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// How the resource server authenticates to the introspection endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientAuth {
    /// HTTP Basic (`client_secret_basic`).
    #[default]
    Basic,
    /// Credentials in the form body (`client_secret_post`).
    Post,
}

/// An RFC 7662 introspection endpoint and the resource server's credentials for it.
///
/// ```
/// use mcp_guard::introspection::{ClientAuth, Introspection};
/// use std::time::Duration;
/// let i = Introspection::new("https://as.example.com/introspect", "mcp-server", "secret")
///     .unwrap()
///     .issuer("https://as.example.com")
///     .client_auth(ClientAuth::Post)
///     .cache_ttl(Duration::from_secs(30));
/// ```
#[derive(Clone)]
pub struct Introspection {
    endpoint: Url,
    client_id: String,
    client_secret: String,
    auth: ClientAuth,
    issuer: Option<String>,
    cache_ttl: Duration,
    cache_max: usize,
    timeout: Duration,
}

impl std::fmt::Debug for Introspection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Introspection")
            .field("endpoint", &self.endpoint.as_str())
            .field("client_id", &self.client_id)
            .field("auth", &self.auth)
            .finish_non_exhaustive()
    }
}

impl Introspection {
    /// The endpoint (https, or http on loopback) and the resource server's client credentials.
    pub fn new(
        endpoint: &str,
        client_id: &str,
        client_secret: &str,
    ) -> Result<Self, KeySourceError> {
        let endpoint =
            Url::parse(endpoint).map_err(|_| KeySourceError::InvalidUrl(endpoint.to_owned()))?;
        require_secure(&endpoint)?;
        Ok(Self {
            endpoint,
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            auth: ClientAuth::default(),
            issuer: None,
            cache_ttl: Duration::from_secs(60),
            cache_max: 10_000,
            timeout: Duration::from_secs(5),
        })
    }

    /// Client authentication method (default Basic).
    pub fn client_auth(mut self, auth: ClientAuth) -> Self {
        self.auth = auth;
        self
    }

    /// The issuer the responses must name when they carry `iss` (and the principal's issuer
    /// when they do not). Without it, the principal's issuer is the endpoint URL, whatever
    /// `iss` a response claims: an answer could otherwise name another verifier's issuer and
    /// pass for its subjects.
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// Longest time a response is reused (default 60 s; never beyond the token's `exp`). Zero
    /// disables the cache.
    pub fn cache_ttl(mut self, ttl: Duration) -> Self {
        self.cache_ttl = ttl;
        self
    }

    /// Most cached responses (default 10 000).
    pub fn cache_max(mut self, entries: usize) -> Self {
        self.cache_max = entries;
        self
    }

    pub(crate) fn issuer_identifier(&self) -> Option<&str> {
        self.issuer.as_deref()
    }

    /// Timeout of each introspection request (default 5 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

/// Why introspection could not answer. Leads to 503: the guard fails closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("token introspection at `{endpoint}` failed: {reason}")]
pub struct IntrospectionError {
    /// The endpoint.
    pub endpoint: String,
    /// What went wrong (never the token).
    pub reason: String,
}

#[derive(Clone)]
enum Cached {
    Active(Principal),
    Inactive(TokenError),
}

/// The introspection client with its cache.
pub(crate) struct Introspector {
    config: Introspection,
    audiences: Audiences,
    /// The resource's scope namespace, stripped from introspected scopes as from JWT ones.
    scope_prefix: Option<String>,
    /// The server's scope hierarchy, carried by the principals ([`Principal::has_scope`]).
    hierarchy: Arc<crate::scope::ScopeHierarchy>,
    http: reqwest::Client,
    cache: Mutex<HashMap<[u8; 32], (Instant, Cached)>>,
    requests: std::sync::atomic::AtomicU64,
}

impl Introspector {
    pub(crate) fn new(
        config: Introspection,
        audiences: Audiences,
        scope_prefix: Option<String>,
        hierarchy: Arc<crate::scope::ScopeHierarchy>,
    ) -> Arc<Self> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        Arc::new(Self {
            config,
            audiences,
            scope_prefix,
            hierarchy,
            http,
            cache: Mutex::new(HashMap::new()),
            requests: std::sync::atomic::AtomicU64::new(0),
        })
    }

    pub(crate) fn request_count(&self) -> u64 {
        self.requests.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The principal of an opaque token: `Ok(Err(_))` for an inactive or unacceptable token
    /// (401), `Err(_)` when the endpoint cannot answer (503).
    pub(crate) async fn introspect(
        &self,
        token: &str,
        now: u64,
    ) -> Result<Result<Principal, TokenError>, IntrospectionError> {
        let key = crate::token_cache::TokenCache::key(token);
        if let Some((until, cached)) = self.lock().get(&key).cloned()
            && until > Instant::now()
        {
            return Ok(match cached {
                Cached::Active(p) if p.expires_at() > std::time::SystemTime::now() => Ok(p),
                Cached::Active(_) => Err(TokenError::Expired),
                Cached::Inactive(e) => Err(e),
            });
        }
        let started = Instant::now();
        let response = self.call(token).await;
        crate::metrics::introspection(started.elapsed(), response.is_ok());
        let response = response?;
        let (outcome, exp) = self.judge(response, now);
        let mut ttl = self.config.cache_ttl;
        if let Some(exp) = exp {
            ttl = ttl.min(Duration::from_secs(exp.saturating_sub(now)));
        }
        if !ttl.is_zero() {
            let mut cache = self.lock();
            if cache.len() >= self.config.cache_max {
                let now = Instant::now();
                cache.retain(|_, (until, _)| *until > now);
                if cache.len() >= self.config.cache_max
                    && let Some(k) = cache.keys().next().copied()
                {
                    cache.remove(&k);
                }
            }
            let cached = match &outcome {
                Ok(p) => Cached::Active(p.clone()),
                Err(e) => Cached::Inactive(e.clone()),
            };
            cache.insert(key, (Instant::now() + ttl, cached));
        }
        Ok(outcome)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], (Instant, Cached)>> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn call(&self, token: &str) -> Result<Map<String, Value>, IntrospectionError> {
        self.requests
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let fail = |reason: &str| IntrospectionError {
            endpoint: self.config.endpoint.to_string(),
            reason: reason.to_owned(),
        };
        let mut form = vec![("token", token), ("token_type_hint", "access_token")];
        let mut req = self
            .http
            .post(self.config.endpoint.clone())
            .header("accept", "application/json");
        match self.config.auth {
            ClientAuth::Basic => {
                let enc = |s: &str| {
                    url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>()
                };
                let creds = format!(
                    "{}:{}",
                    enc(&self.config.client_id),
                    enc(&self.config.client_secret)
                );
                req = req.header(
                    "authorization",
                    format!(
                        "Basic {}",
                        base64::engine::general_purpose::STANDARD.encode(creds)
                    ),
                );
            }
            ClientAuth::Post => {
                form.push(("client_id", &self.config.client_id));
                form.push(("client_secret", &self.config.client_secret));
            }
        }
        let body: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let resp = req
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .map_err(|e| {
                fail(if e.is_timeout() {
                    "timed out"
                } else {
                    "connection failed"
                })
            })?;
        if !resp.status().is_success() {
            return Err(fail(&format!("HTTP {}", resp.status().as_u16())));
        }
        let bytes = crate::verify::bounded::read_body(resp, MAX_RESPONSE_BYTES)
            .await
            .map_err(|e| fail(&e.to_string()))?;
        serde_json::from_slice(&bytes).map_err(|_| fail("the response is not a JSON object"))
    }

    /// RFC 7662 §2.2 plus the MCP rules: `active` true, not expired, `aud` naming this
    /// resource, `iss` the configured issuer when both are known.
    fn judge(
        &self,
        mut r: Map<String, Value>,
        now: u64,
    ) -> (Result<Principal, TokenError>, Option<u64>) {
        let read_exp = crate::jwt::numeric_date(&r, "exp");
        let exp = read_exp.clone().ok().flatten();
        if r.get("active") != Some(&Value::Bool(true)) {
            return (Err(TokenError::Inactive), exp);
        }
        let outcome = (|| {
            let exp = read_exp?.ok_or(TokenError::MissingClaim("exp"))?;
            if now >= exp {
                return Err(TokenError::Expired);
            }
            let aud_ok = match r.get("aud") {
                Some(Value::String(a)) => self.audiences.accepts(a),
                Some(Value::Array(list)) => list
                    .iter()
                    .filter_map(Value::as_str)
                    .any(|a| self.audiences.accepts(a)),
                _ => return Err(TokenError::MissingClaim("aud")),
            };
            if !aud_ok {
                return Err(TokenError::WrongAudience);
            }
            match (r.get("iss").and_then(Value::as_str), &self.config.issuer) {
                (Some(iss), Some(expected)) if iss != expected => {
                    return Err(TokenError::WrongIssuer);
                }
                (None, Some(expected)) => {
                    r.insert("iss".into(), expected.clone().into());
                }
                // Without a configured issuer the answer's own `iss` is not trusted: it could
                // name another verifier's issuer and so another verifier's subjects. The
                // endpoint is the issuer.
                (_, None) => {
                    r.insert("iss".into(), self.config.endpoint.to_string().into());
                }
                (Some(_), Some(_)) => {}
            }
            // `sub` is the identity. Without it (RFC 7662 makes it optional) only the client
            // acting for itself is accepted, as a client subject; a user name is never one.
            let client_subject = match r.get("sub") {
                Some(_) => false,
                None if r.contains_key("username") => {
                    return Err(TokenError::MissingClaim("sub"));
                }
                None => {
                    let client = r
                        .get("client_id")
                        .and_then(Value::as_str)
                        .filter(|c| !c.is_empty())
                        .ok_or(TokenError::MissingClaim("sub"))?
                        .to_owned();
                    r.insert("sub".into(), client.into());
                    true
                }
            };
            let p = Principal::from_profile(r, &Profile::generic(), self.scope_prefix.as_deref())?
                .with_hierarchy(&self.hierarchy);
            Ok(if client_subject {
                p.into_client_subject()
            } else {
                p
            })
        })();
        (outcome, exp)
    }
}
