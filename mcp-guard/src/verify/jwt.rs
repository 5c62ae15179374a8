//! JWT access-token verification against a key snapshot (RFC 9068, RFC 8725). Pure: no I/O.
//!
//! The rules, in the order they are applied:
//!
//! 1. the token is a compact JWS (three non-empty base64url parts); JWE and anything else are
//!    refused;
//! 2. the header parses; `alg: none` (any case) and unknown algorithms are refused; a `crit`
//!    header is refused (no extension is understood); `jku`, `x5u` and `jwk` are never used;
//! 3. the key is chosen by `kid` from the snapshot (a token without `kid` is accepted only
//!    when the snapshot holds exactly one key); the header `alg` must equal the one algorithm
//!    of that key, which comes from the key itself, never from the token, so a public key can
//!    never be used as an HMAC secret;
//! 4. the signature verifies;
//! 5. `typ` matches the [`TypPolicy`];
//! 6. `iss` equals the configured issuer exactly; `aud` (string or array) contains one of
//!    the accepted audiences, compared with scheme and host case-insensitive;
//! 7. `exp` is present and not past, `nbf` not in the future, `iat` not in the future, each
//!    with the configured leeway.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Once};
use std::time::Duration;

use base64::Engine as _;
use jsonwebtoken::jwk::{
    AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm, PublicKeyUse,
};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::{Map, Value};

/// Installs jsonwebtoken's aws-lc-rs crypto provider once per process, so that the first
/// verification never meets the "no provider" panic whatever features other crates enable.
pub(crate) fn ensure_crypto_provider() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        // `Err` means a provider is already installed, which is what we want.
        let _ = jsonwebtoken::crypto::CryptoProvider::install_default(
            &jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER,
        );
    });
}

/// The asymmetric algorithms mcp-guard verifies: RS256/384/512, PS256/384/512, ES256/384,
/// EdDSA. HMAC algorithms are never accepted.
pub const SUPPORTED_ALGORITHMS: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// Why a token was refused. Every variant leads to 401 `invalid_token`; none holds the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// Not a compact JWS, bad base64url or bad JSON.
    #[error("the token is not a well-formed signed JWT")]
    Malformed,
    /// `alg` is `none`, HMAC, unknown, or not on the allow-list.
    #[error("the token's signing algorithm is not accepted")]
    AlgorithmNotAllowed,
    /// No key in the current key set has the token's `kid`.
    #[error("the token was signed by an unknown key")]
    UnknownKey,
    /// The header `alg` differs from the algorithm of the key the `kid` names.
    #[error("the token's algorithm does not match its key")]
    AlgorithmMismatch,
    /// The signature does not verify.
    #[error("the token's signature is invalid")]
    BadSignature,
    /// The header has a `crit` parameter.
    #[error("the token uses critical header extensions that are not supported")]
    CriticalHeader,
    /// `typ` is not accepted.
    #[error("the token type is not an accepted access token type")]
    WrongType,
    /// `iss` differs from the configured issuer.
    #[error("the token was issued by an unexpected issuer")]
    WrongIssuer,
    /// `aud` does not name this resource.
    #[error("the token was not issued for this resource")]
    WrongAudience,
    /// `exp` is past.
    #[error("the token has expired")]
    Expired,
    /// `nbf` is in the future.
    #[error("the token is not valid yet")]
    NotYetValid,
    /// `iat` is in the future.
    #[error("the token was issued in the future")]
    IssuedInFuture,
    /// Introspection says the token is not active (revoked, expired, unknown).
    #[error("the token is not active")]
    Inactive,
    /// A required claim is absent.
    #[error("the token lacks the `{0}` claim")]
    MissingClaim(&'static str),
    /// A claim has the wrong type.
    #[error("the token's `{0}` claim is malformed")]
    InvalidClaim(&'static str),
    /// The client the token was issued to is not one this server accepts.
    #[error("the token was issued to a client this server does not accept")]
    UnknownClient,
}

/// One verification key with the single algorithm it may be used with.
#[derive(Clone)]
pub struct VerifyingKey {
    kid: Option<Arc<str>>,
    alg: Algorithm,
    key: DecodingKey,
    /// Identifies the key material: the same for the same JWK fetched again, different for
    /// a new key under a reused `kid`.
    fingerprint: u64,
}

impl std::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

/// Where a token names the resource it was issued for.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AudienceClaim {
    /// The `aud` claim (string or array) must contain an accepted audience.
    Aud,
    /// The token has no audience (AWS Cognito access tokens): its `client_id` must be one of
    /// these app clients instead.
    ClientIdAllowList(Vec<String>),
}

/// Why a key was not used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// HMAC keys (`oct`, HS*) are never accepted: a resource server only verifies.
    #[error("symmetric (HMAC) keys are not accepted")]
    Symmetric,
    /// The key is marked for encryption (`use: enc`).
    #[error("the key is for encryption, not signatures")]
    Encryption,
    /// The key's algorithm is not supported or not allowed.
    #[error("the key's algorithm {0} is not allowed")]
    Algorithm(String),
    /// The key's type does not fit its algorithm, or its algorithm cannot be inferred.
    #[error("the key type does not fit an allowed algorithm")]
    Type,
    /// The key material is invalid.
    #[error("the key material is invalid: {0}")]
    Material(String),
}

impl VerifyingKey {
    /// A key for exactly one asymmetric algorithm.
    pub fn new(kid: Option<&str>, alg: Algorithm, key: DecodingKey) -> Result<Self, KeyError> {
        ensure_crypto_provider();
        if !SUPPORTED_ALGORITHMS.contains(&alg) {
            return Err(KeyError::Symmetric);
        }
        if key.family() != alg.family() {
            return Err(KeyError::Type);
        }
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        Ok(Self {
            kid: kid.map(Arc::from),
            alg,
            key,
            fingerprint: NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        })
    }

    /// Identifies the key material (stable across refetches of the same JWK).
    pub(crate) fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    /// A key from a JWK. The algorithm is the JWK's `alg`; when absent it is inferred from the
    /// key type: RSA → RS256, EC P-256 → ES256, EC P-384 → ES384, OKP Ed25519 → EdDSA.
    pub fn from_jwk(jwk: &Jwk) -> Result<Self, KeyError> {
        if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
            return Err(KeyError::Encryption);
        }
        let alg = match jwk.common.key_algorithm {
            Some(ka) => key_algorithm(ka)?,
            None => match &jwk.algorithm {
                AlgorithmParameters::RSA(_) => Algorithm::RS256,
                AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
                    EllipticCurve::P256 => Algorithm::ES256,
                    EllipticCurve::P384 => Algorithm::ES384,
                    _ => return Err(KeyError::Type),
                },
                AlgorithmParameters::OctetKeyPair(okp) if okp.curve == EllipticCurve::Ed25519 => {
                    Algorithm::EdDSA
                }
                AlgorithmParameters::OctetKey(_) => return Err(KeyError::Symmetric),
                _ => return Err(KeyError::Type),
            },
        };
        if matches!(jwk.algorithm, AlgorithmParameters::OctetKey(_)) {
            return Err(KeyError::Symmetric);
        }
        ensure_crypto_provider();
        let key = DecodingKey::from_jwk(jwk).map_err(|e| KeyError::Material(e.to_string()))?;
        let mut k = Self::new(jwk.common.key_id.as_deref(), alg, key)?;
        k.fingerprint = {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            serde_json::to_string(&jwk.algorithm)
                .unwrap_or_default()
                .hash(&mut h);
            format!("{alg:?}").hash(&mut h);
            h.finish()
        };
        Ok(k)
    }

    /// The key id.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The one algorithm this key verifies.
    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }
}

fn key_algorithm(ka: KeyAlgorithm) -> Result<Algorithm, KeyError> {
    let alg = Algorithm::try_from(ka).map_err(|_| KeyError::Algorithm(format!("{ka:?}")))?;
    if alg.family() == jsonwebtoken::AlgorithmFamily::Hmac {
        return Err(KeyError::Symmetric);
    }
    if !SUPPORTED_ALGORITHMS.contains(&alg) {
        return Err(KeyError::Algorithm(format!("{alg:?}")));
    }
    Ok(alg)
}

/// An immutable snapshot of an issuer's keys, indexed by `kid`.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    by_kid: HashMap<Arc<str>, VerifyingKey>,
    kidless: Vec<VerifyingKey>,
    generation: u64,
}

/// A JWK that was skipped while building a [`KeySet`], and why.
#[derive(Debug, Clone)]
pub struct SkippedKey {
    /// The JWK's `kid`, if it had one.
    pub kid: Option<String>,
    /// Why it was skipped.
    pub reason: KeyError,
}

impl KeySet {
    /// A key set from individual keys.
    pub fn from_keys(keys: impl IntoIterator<Item = VerifyingKey>) -> Self {
        let mut set = Self::default();
        for k in keys {
            set.add(k);
        }
        set
    }

    /// A key set from a JWK Set: unusable keys (HMAC, encryption keys, unsupported types or
    /// algorithms outside `allowed`, bad material) are skipped one by one and reported.
    pub fn from_jwks(jwks: &JwkSet, allowed: &[Algorithm]) -> (Self, Vec<SkippedKey>) {
        let mut set = Self::default();
        let mut skipped = Vec::new();
        for jwk in &jwks.keys {
            let kid = jwk.common.key_id.clone();
            match VerifyingKey::from_jwk(jwk) {
                Ok(k) if allowed.contains(&k.alg) => set.add(k),
                Ok(k) => skipped.push(SkippedKey {
                    kid,
                    reason: KeyError::Algorithm(format!("{:?}", k.alg)),
                }),
                Err(reason) => skipped.push(SkippedKey { kid, reason }),
            }
        }
        (set, skipped)
    }

    fn add(&mut self, key: VerifyingKey) {
        match key.kid.clone() {
            Some(kid) => {
                self.by_kid.insert(kid, key);
            }
            None => self.kidless.push(key),
        }
    }

    pub(crate) fn with_generation(mut self, generation: u64) -> Self {
        self.generation = generation;
        self
    }

    /// A counter that changes every time the key source installs a new snapshot.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Number of usable keys.
    pub fn len(&self) -> usize {
        self.by_kid.len() + self.kidless.len()
    }

    /// Whether the set has no usable key.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether a key with this `kid` is present.
    pub fn contains_kid(&self, kid: &str) -> bool {
        self.by_kid.contains_key(kid)
    }

    /// The key for a token's `kid`. Without a `kid`, the only key of a one-key set.
    pub fn find(&self, kid: Option<&str>) -> Option<&VerifyingKey> {
        match kid {
            Some(kid) => self.by_kid.get(kid),
            None if self.len() == 1 => self.by_kid.values().next().or(self.kidless.first()),
            None => None,
        }
    }
}

/// Which `typ` header values are accepted (RFC 8725 §3.11 explicit typing).
///
/// Values are compared case-insensitively with the `application/` prefix optional
/// (RFC 7515 §4.1.9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypPolicy {
    accepted: Vec<String>,
    allow_missing: bool,
}

impl TypPolicy {
    /// RFC 9068: only `at+jwt` / `application/at+jwt`. The default.
    pub fn access_token() -> Self {
        Self {
            accepted: vec!["at+jwt".into()],
            allow_missing: false,
        }
    }

    /// For issuers that label access tokens `JWT` or not at all (Keycloak, Entra ID, Auth0,
    /// Cognito): `at+jwt`, `JWT`, or no `typ`. Audience and issuer checks still keep ID tokens
    /// for other audiences out.
    pub fn lenient() -> Self {
        Self {
            accepted: vec!["at+jwt".into(), "jwt".into()],
            allow_missing: true,
        }
    }

    /// Exactly these values (and a missing `typ` when `allow_missing`).
    pub fn custom<I, S>(values: I, allow_missing: bool) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Self {
            accepted: values
                .into_iter()
                .map(|v| normalize_typ(v.as_ref()))
                .collect(),
            allow_missing,
        }
    }

    /// Whether a header `typ` is accepted.
    pub fn accepts(&self, typ: Option<&str>) -> bool {
        match typ {
            None => self.allow_missing,
            Some(t) => {
                let t = normalize_typ(t);
                self.accepted.contains(&t)
            }
        }
    }
}

impl Default for TypPolicy {
    fn default() -> Self {
        Self::access_token()
    }
}

fn normalize_typ(t: &str) -> String {
    let lower = t.to_ascii_lowercase();
    match lower.strip_prefix("application/") {
        Some(rest) if !rest.contains('/') => rest.to_owned(),
        _ => lower,
    }
}

/// The audience this resource accepts: its canonical resource URL plus any extra values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audiences(Vec<String>);

impl Audiences {
    /// Audiences from canonical identifiers (see [`canonical_audience`]).
    pub fn new<I, S>(values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Self(
            values
                .into_iter()
                .map(|v| canonical_audience(v.as_ref()).into_owned())
                .collect(),
        )
    }

    /// Whether one `aud` value names this resource.
    pub fn accepts(&self, aud: &str) -> bool {
        let aud = canonical_audience(aud);
        self.0.iter().any(|a| *a == aud)
    }

    /// The accepted values, canonical.
    pub fn values(&self) -> &[String] {
        &self.0
    }
}

/// The comparison form of an audience: for a URL, the scheme and authority lower-cased and a
/// lone `/` path dropped (`HTTPS://MCP.Example.com/` → `https://mcp.example.com`). Any other
/// path is compared exactly, so `…/mcp/` is a different resource from `…/mcp`. Values that are
/// not URLs (client ids, `api://` App ID URIs keep their scheme rule) are compared as written,
/// apart from the same scheme/authority folding when they have a `scheme://` prefix.
pub fn canonical_audience(aud: &str) -> Cow<'_, str> {
    let Some(sep) = aud.find("://") else {
        return Cow::Borrowed(aud);
    };
    let after = sep + 3;
    let end = aud[after..]
        .find(['/', '?', '#'])
        .map_or(aud.len(), |i| after + i);
    let rest = &aud[end..];
    let rest = if rest == "/" { "" } else { rest };
    let head = &aud[..end];
    if !head.bytes().any(|b| b.is_ascii_uppercase()) && rest.len() == aud.len() - end {
        return Cow::Borrowed(aud);
    }
    let mut out = head.to_ascii_lowercase();
    out.push_str(rest);
    Cow::Owned(out)
}

/// The checks applied to every token of one issuer.
#[derive(Debug, Clone)]
pub struct JwtRules {
    /// The exact `iss` value, or a template with `{tid}` for multi-tenant issuers.
    pub issuer: String,
    /// Tenants a `{tid}` issuer template accepts (the token's `tid` must be one of them and
    /// the issuer must be the template filled with it).
    pub tenants: Vec<String>,
    /// The accepted `aud` values.
    pub audiences: Audiences,
    /// Where the audience is (`aud`, or a `client_id` allow-list for tokens without one).
    pub audience_claim: AudienceClaim,
    /// Clock tolerance for `exp`, `nbf` and `iat`.
    pub leeway: Duration,
    /// Accepted `typ` values.
    pub typ: TypPolicy,
    /// Accepted algorithms (a subset of [`SUPPORTED_ALGORITHMS`]).
    pub algorithms: Vec<Algorithm>,
}

impl JwtRules {
    /// Rules with the defaults: 60 s leeway, RFC 9068 `typ`, every supported algorithm.
    pub fn new(issuer: impl Into<String>, audiences: Audiences) -> Self {
        Self {
            issuer: issuer.into(),
            tenants: Vec::new(),
            audiences,
            audience_claim: AudienceClaim::Aud,
            leeway: Duration::from_secs(60),
            typ: TypPolicy::default(),
            algorithms: SUPPORTED_ALGORITHMS.to_vec(),
        }
    }
}

/// A token that passed every check: its header `kid` and its claims.
#[derive(Debug, Clone)]
pub struct VerifiedJwt {
    /// The `kid` of the key that verified it.
    pub kid: Option<String>,
    /// The material of the key that verified it.
    pub(crate) fingerprint: u64,
    /// The claims, as sent.
    pub claims: Map<String, Value>,
}

#[derive(serde::Deserialize)]
struct RawHeader<'a> {
    alg: Cow<'a, str>,
    #[serde(default, borrow)]
    kid: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    typ: Option<Cow<'a, str>>,
    #[serde(default)]
    crit: Option<serde::de::IgnoredAny>,
}

fn parse_alg(alg: &str) -> Option<Algorithm> {
    SUPPORTED_ALGORITHMS.iter().copied().find(|a| {
        let name = match a {
            Algorithm::RS256 => "RS256",
            Algorithm::RS384 => "RS384",
            Algorithm::RS512 => "RS512",
            Algorithm::PS256 => "PS256",
            Algorithm::PS384 => "PS384",
            Algorithm::PS512 => "PS512",
            Algorithm::ES256 => "ES256",
            Algorithm::ES384 => "ES384",
            Algorithm::EdDSA => "EdDSA",
            _ => "",
        };
        name == alg
    })
}

/// Whether a token is shaped like a compact JWS with a JSON header (else: opaque).
pub(crate) fn looks_like_jwt(token: &str) -> bool {
    split(token).is_ok_and(|(h, _, _)| b64(h).is_ok_and(|json| json.first() == Some(&b'{')))
}

/// Splits a compact JWS into its three parts.
pub(crate) fn split(token: &str) -> Result<(&str, &str, &str), TokenError> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed);
    };
    if h.is_empty() || p.is_empty() || s.is_empty() {
        return Err(TokenError::Malformed);
    }
    Ok((h, p, s))
}

pub(crate) fn b64(part: &str) -> Result<Vec<u8>, TokenError> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| TokenError::Malformed)
}

/// Reads the `iss` claim without verifying anything, to route a token to its issuer's keys
/// when several issuers are configured. The result must never be trusted on its own.
pub(crate) fn unverified_issuer(token: &str) -> Result<String, TokenError> {
    #[derive(serde::Deserialize)]
    struct Iss {
        iss: Option<String>,
    }
    let (_, p, _) = split(token)?;
    let iss: Iss = serde_json::from_slice(&b64(p)?).map_err(|_| TokenError::Malformed)?;
    iss.iss.ok_or(TokenError::MissingClaim("iss"))
}

/// The header, parsed and checked: an allowed algorithm, no `crit`.
fn checked_header<'a>(
    header_json: &'a [u8],
    rules: &JwtRules,
) -> Result<(RawHeader<'a>, Algorithm), TokenError> {
    let header: RawHeader<'_> =
        serde_json::from_slice(header_json).map_err(|_| TokenError::Malformed)?;
    let alg = parse_alg(&header.alg).ok_or(TokenError::AlgorithmNotAllowed)?;
    if !rules.algorithms.contains(&alg) {
        return Err(TokenError::AlgorithmNotAllowed);
    }
    if header.crit.is_some() {
        return Err(TokenError::CriticalHeader);
    }
    Ok((header, alg))
}

/// The checks that need no key: structure, header, algorithm, `crit`.
pub(crate) fn precheck(token: &str, rules: &JwtRules) -> Result<(), TokenError> {
    let (h, p, _) = split(token)?;
    checked_header(&b64(h)?, rules)?;
    b64(p).map(drop)
}

/// Verifies one token against a key snapshot and the rules; `now` is seconds since the Unix
/// epoch.
pub fn verify(
    token: &str,
    keys: &KeySet,
    rules: &JwtRules,
    now: u64,
) -> Result<VerifiedJwt, TokenError> {
    ensure_crypto_provider();
    let (h, p, s) = split(token)?;
    let header_json = b64(h)?;
    let (header, alg) = checked_header(&header_json, rules)?;
    let key = keys
        .find(header.kid.as_deref())
        .ok_or(TokenError::UnknownKey)?;
    if key.alg != alg {
        return Err(TokenError::AlgorithmMismatch);
    }
    let message = &token[..h.len() + 1 + p.len()];
    let valid = jsonwebtoken::crypto::verify(s, message.as_bytes(), &key.key, key.alg)
        .map_err(|_| TokenError::BadSignature)?;
    if !valid {
        return Err(TokenError::BadSignature);
    }
    if !rules.typ.accepts(header.typ.as_deref()) {
        return Err(TokenError::WrongType);
    }
    let claims: Map<String, Value> =
        serde_json::from_slice(&b64(p)?).map_err(|_| TokenError::Malformed)?;
    check_claims(&claims, rules, now)?;
    Ok(VerifiedJwt {
        kid: header.kid.map(Cow::into_owned),
        fingerprint: key.fingerprint,
        claims,
    })
}

/// The registered-claim checks (issuer, audience, times) on already verified claims.
pub(crate) fn check_claims(
    claims: &Map<String, Value>,
    rules: &JwtRules,
    now: u64,
) -> Result<(), TokenError> {
    match claims.get("iss") {
        None => return Err(TokenError::MissingClaim("iss")),
        Some(Value::String(iss)) if issuer_matches(rules, iss, claims) => {}
        Some(Value::String(_)) => return Err(TokenError::WrongIssuer),
        Some(_) => return Err(TokenError::InvalidClaim("iss")),
    }
    if let AudienceClaim::ClientIdAllowList(clients) = &rules.audience_claim {
        return match claims.get("client_id").and_then(Value::as_str) {
            Some(c) if clients.iter().any(|a| a == c) => check_times(claims, rules.leeway, now),
            Some(_) => Err(TokenError::WrongAudience),
            None => Err(TokenError::MissingClaim("client_id")),
        };
    }
    let aud_ok = match claims.get("aud") {
        None => return Err(TokenError::MissingClaim("aud")),
        Some(Value::String(a)) => rules.audiences.accepts(a),
        Some(Value::Array(list)) => {
            let mut ok = false;
            for a in list {
                let a = a.as_str().ok_or(TokenError::InvalidClaim("aud"))?;
                ok |= rules.audiences.accepts(a);
            }
            ok
        }
        Some(_) => return Err(TokenError::InvalidClaim("aud")),
    };
    if !aud_ok {
        return Err(TokenError::WrongAudience);
    }
    check_times(claims, rules.leeway, now)
}

/// The exact issuer, or a `{tid}` template filled with the token's own allowed `tid`.
pub(crate) fn issuer_matches(rules: &JwtRules, iss: &str, claims: &Map<String, Value>) -> bool {
    match rules.issuer.split_once("{tid}") {
        None => iss == rules.issuer,
        Some((prefix, suffix)) => {
            let Some(tid) = claims.get("tid").and_then(Value::as_str) else {
                return false;
            };
            rules.tenants.iter().any(|t| t == tid)
                && iss.len() == prefix.len() + tid.len() + suffix.len()
                && iss.starts_with(prefix)
                && iss.ends_with(suffix)
                && &iss[prefix.len()..iss.len() - suffix.len()] == tid
        }
    }
}

/// Whether a token's `iss` routes to these rules (the template without the `tid` check).
pub(crate) fn issuer_routes(rules: &JwtRules, iss: &str) -> bool {
    match rules.issuer.split_once("{tid}") {
        None => iss == rules.issuer,
        Some((prefix, suffix)) => {
            iss.len() > prefix.len() + suffix.len()
                && iss.starts_with(prefix)
                && iss.ends_with(suffix)
        }
    }
}

/// `exp` required and `nbf`/`iat` checked, with leeway.
pub(crate) fn check_times(
    claims: &Map<String, Value>,
    leeway: Duration,
    now: u64,
) -> Result<(), TokenError> {
    let leeway = leeway.as_secs();
    let exp = numeric_date(claims, "exp")?.ok_or(TokenError::MissingClaim("exp"))?;
    if now >= exp.saturating_add(leeway) {
        return Err(TokenError::Expired);
    }
    if let Some(nbf) = numeric_date(claims, "nbf")?
        && nbf > now.saturating_add(leeway)
    {
        return Err(TokenError::NotYetValid);
    }
    if let Some(iat) = numeric_date(claims, "iat")?
        && iat > now.saturating_add(leeway)
    {
        return Err(TokenError::IssuedInFuture);
    }
    Ok(())
}

/// A NumericDate claim (RFC 7519 §2): integer or fractional seconds, rounded down.
pub(crate) fn numeric_date(
    claims: &Map<String, Value>,
    name: &'static str,
) -> Result<Option<u64>, TokenError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => {
            if let Some(u) = n.as_u64() {
                Ok(Some(u))
            } else if let Some(f) = n.as_f64().filter(|f| f.is_finite() && *f >= 0.0) {
                Ok(Some(f as u64))
            } else {
                Err(TokenError::InvalidClaim(name))
            }
        }
        Some(_) => Err(TokenError::InvalidClaim(name)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audience_canonical_form() {
        let a = Audiences::new(["https://mcp.example.com/mcp"]);
        assert!(a.accepts("https://mcp.example.com/mcp"));
        assert!(a.accepts("HTTPS://MCP.EXAMPLE.COM/mcp"));
        assert!(!a.accepts("https://mcp.example.com/MCP"));
        assert!(!a.accepts("https://mcp.example.com/mcp/"));
        assert!(!a.accepts("https://other.example/mcp"));
        let root = Audiences::new(["https://mcp.example.com"]);
        assert!(root.accepts("https://mcp.example.com/"));
        let id = Audiences::new(["6f2a0e3c-client"]);
        assert!(id.accepts("6f2a0e3c-client"));
        assert!(!id.accepts("6F2A0E3C-CLIENT"));
    }

    #[test]
    fn typ_policy() {
        let strict = TypPolicy::access_token();
        assert!(strict.accepts(Some("at+jwt")));
        assert!(strict.accepts(Some("application/AT+JWT")));
        assert!(!strict.accepts(Some("JWT")));
        assert!(!strict.accepts(None));
        let lenient = TypPolicy::lenient();
        assert!(lenient.accepts(Some("JWT")));
        assert!(lenient.accepts(None));
        assert!(!lenient.accepts(Some("id_token+jwt")));
    }

    #[test]
    fn alg_names_are_case_sensitive_and_none_is_refused() {
        assert_eq!(parse_alg("RS256"), Some(Algorithm::RS256));
        for bad in ["none", "None", "NONE", "HS256", "rs256", ""] {
            assert_eq!(parse_alg(bad), None, "{bad}");
        }
    }

    #[test]
    fn times() {
        let rules_leeway = Duration::from_secs(60);
        let mut c = Map::new();
        assert_eq!(
            check_times(&c, rules_leeway, 1000),
            Err(TokenError::MissingClaim("exp"))
        );
        c.insert("exp".into(), 970.into());
        assert!(check_times(&c, rules_leeway, 1000).is_ok());
        c.insert("exp".into(), 940.into());
        assert_eq!(
            check_times(&c, rules_leeway, 1000),
            Err(TokenError::Expired)
        );
        c.insert("exp".into(), 2000.into());
        c.insert("nbf".into(), 1061.into());
        assert_eq!(
            check_times(&c, rules_leeway, 1000),
            Err(TokenError::NotYetValid)
        );
        c.insert("nbf".into(), "soon".into());
        assert_eq!(
            check_times(&c, rules_leeway, 1000),
            Err(TokenError::InvalidClaim("nbf"))
        );
    }
}
