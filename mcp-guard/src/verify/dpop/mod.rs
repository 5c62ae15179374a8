//! DPoP: sender-constrained access tokens (RFC 9449, MCP SEP-1932).
//!
//! A DPoP-bound token names the thumbprint of its client's key (`cnf.jkt`); the client
//! presents it as `Authorization: DPoP <token>` together with a `DPoP` header holding a
//! proof: a JWT signed with that key, naming the request's method and URI, its time, a unique
//! `jti` and the hash of the token. A stolen token is then useless without the key.
//!
//! With [`GuardBuilder::dpop`](crate::GuardBuilder::dpop) the guard checks, on every request
//! that presents a DPoP-bound token (RFC 9449 §4.3 and §7.1):
//!
//! - exactly one `DPoP` header, at most [`Dpop::max_proof_bytes`] long, holding a compact JWS;
//! - `typ` `dpop+jwt`, an `alg` from [`Dpop::algorithms`] (asymmetric only), no `crit`, a
//!   public `jwk` of that algorithm's type (a private or symmetric key is refused) under
//!   which the signature verifies;
//! - `htm` equal to the request method and `htu` to the request's URL at the resource's
//!   public origin (query and fragment ignored, RFC 3986 normalised), `iat` within [`Dpop::proof_window`] of now either way,
//!   `ath` equal to the base64url SHA-256 of the token;
//! - a `jti` this key has not used within the window (a bounded replay cache per process);
//! - with [`Dpop::nonces`], a `nonce` the server issued (stateless: an authenticated
//!   timestamp, valid on every instance that shares the secret) and not older than its
//!   lifetime; otherwise 401 `use_dpop_nonce` with a fresh `DPoP-Nonce`;
//! - and that the token's `cnf.jkt` is the RFC 7638 thumbprint of the proof's key.
//!
//! The verified-token cache holds the token's verification only: the proof is checked
//! afresh on every request, cached token or not.
//!
//! Whatever the configuration, a token bound to a key (any `cnf` claim) is never accepted
//! as a bearer token: without DPoP configured it is refused with 401 `invalid_token`. With
//! [`Dpop::required`], bearer tokens are refused too.
//!
//! Challenges: a 401 carries `WWW-Authenticate: Bearer …` (unless DPoP is required) and
//! `WWW-Authenticate: DPoP algs="…"`, the `error` on the scheme the request used; protected
//! resource metadata advertises `dpop_signing_alg_values_supported` and
//! `dpop_bound_access_tokens_required`.
//!
//! Limits: the replay cache is per process. Behind several instances a proof can be replayed
//! once per instance within the window; keep the window short, or route a client to one
//! instance, where that matters.
//!
//! ```
//! use std::time::Duration;
//! use mcp_guard::dpop::Dpop;
//! use jsonwebtoken::Algorithm;
//!
//! let dpop = Dpop::required()
//!     .algorithms([Algorithm::ES256, Algorithm::EdDSA])
//!     .proof_window(Duration::from_secs(60))
//!     .nonces(*b"a secret shared by every instance");
//! # let _ = dpop;
//! ```

mod nonce;
pub(crate) mod proof;
mod replay;

use std::time::Duration;

use jsonwebtoken::Algorithm;
use url::Url;

use nonce::{NonceCheck, Nonces};
pub(crate) use proof::Proof;
use replay::{NotRecorded, ReplayCache};

/// The algorithms accepted in proofs when none are configured.
pub const DEFAULT_ALGORITHMS: [Algorithm; 5] = [
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
    Algorithm::PS256,
    Algorithm::RS256,
];

/// How far a proof's `iat` may lie from now when nothing else is configured (SEP-1932's
/// ±5 minutes).
const DEFAULT_WINDOW: Duration = Duration::from_secs(300);
/// How long a nonce stays valid when nothing else is configured.
const DEFAULT_NONCE_LIFETIME: Duration = Duration::from_secs(300);
/// Proofs remembered at most, when nothing else is configured.
const DEFAULT_REPLAY_CAPACITY: usize = 1 << 20;
/// The longest `DPoP` header accepted when nothing else is configured: an RSA-4096 proof is
/// about 1.5 KiB.
const DEFAULT_MAX_PROOF_BYTES: usize = 8 * 1024;

/// How a resource treats DPoP (RFC 9449): given to
/// [`GuardBuilder::dpop`](crate::GuardBuilder::dpop). See the [module](self) docs for
/// every check made.
#[derive(Clone)]
pub struct Dpop {
    pub(crate) required: bool,
    pub(crate) algorithms: Vec<Algorithm>,
    pub(crate) window: Duration,
    pub(crate) nonce_secret: Option<Vec<u8>>,
    pub(crate) nonce_lifetime: Duration,
    pub(crate) replay_capacity: usize,
    pub(crate) max_proof_bytes: usize,
}

impl std::fmt::Debug for Dpop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dpop")
            .field("required", &self.required)
            .field("algorithms", &self.algorithms)
            .field("window", &self.window)
            .field("nonces", &self.nonce_secret.is_some())
            .field("nonce_lifetime", &self.nonce_lifetime)
            .field("replay_capacity", &self.replay_capacity)
            .field("max_proof_bytes", &self.max_proof_bytes)
            .finish()
    }
}

impl Dpop {
    /// DPoP-bound tokens are accepted (with a valid proof), and so are bearer tokens.
    pub fn allowed() -> Self {
        Self {
            required: false,
            algorithms: DEFAULT_ALGORITHMS.to_vec(),
            window: DEFAULT_WINDOW,
            nonce_secret: None,
            nonce_lifetime: DEFAULT_NONCE_LIFETIME,
            replay_capacity: DEFAULT_REPLAY_CAPACITY,
            max_proof_bytes: DEFAULT_MAX_PROOF_BYTES,
        }
    }

    /// Only DPoP-bound tokens are accepted: a bearer token is refused with 401 and a `DPoP`
    /// challenge, and the metadata says `dpop_bound_access_tokens_required: true`.
    pub fn required() -> Self {
        Self {
            required: true,
            ..Self::allowed()
        }
    }

    /// The proof algorithms accepted (default [`DEFAULT_ALGORITHMS`]); HMAC algorithms are
    /// refused when the guard is built.
    pub fn algorithms(mut self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        self.algorithms = algorithms.into_iter().collect();
        self
    }

    /// How far a proof's `iat` may lie from the server's clock, either way (default five
    /// minutes). It also bounds how long a proof is remembered against replay.
    pub fn proof_window(mut self, window: Duration) -> Self {
        self.window = window;
        self
    }

    /// Requires server-issued nonces (RFC 9449 §9): a proof without a valid one is refused
    /// with 401 `use_dpop_nonce` and a fresh nonce in `DPoP-Nonce`. Nonces are stateless,
    /// MACed with `secret` (at least 32 bytes; the same on every instance behind one
    /// resource URL), and valid for [`Dpop::nonce_lifetime`]; a response to a request whose
    /// nonce is past half its lifetime carries the next one.
    pub fn nonces(mut self, secret: impl AsRef<[u8]>) -> Self {
        self.nonce_secret = Some(secret.as_ref().to_vec());
        self
    }

    /// How long a nonce is valid (default five minutes).
    pub fn nonce_lifetime(mut self, lifetime: Duration) -> Self {
        self.nonce_lifetime = lifetime;
        self
    }

    /// How many proofs are remembered against replay (default 2^20, about 40 MiB when full).
    /// When every remembered proof is still within its window, new proofs are refused with
    /// 503 until room is made: size it above the DPoP request rate times twice the window.
    pub fn replay_capacity(mut self, proofs: usize) -> Self {
        self.replay_capacity = proofs;
        self
    }

    /// The longest `DPoP` header accepted (default 8 KiB).
    pub fn max_proof_bytes(mut self, bytes: usize) -> Self {
        self.max_proof_bytes = bytes;
        self
    }

    /// Whether only DPoP-bound tokens are accepted.
    pub fn is_required(&self) -> bool {
        self.required
    }

    /// The configuration's problems, as the guard builder reports them.
    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.algorithms.is_empty() {
            return Err("DPoP needs at least one proof algorithm".into());
        }
        if let Some(a) = self
            .algorithms
            .iter()
            .find(|a| matches!(a, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512))
        {
            return Err(format!(
                "{} is symmetric: a DPoP proof must be signed with an asymmetric key",
                proof::alg_name(*a)
            ));
        }
        if self.nonce_secret.as_ref().is_some_and(|s| s.len() < 32) {
            return Err("the DPoP nonce secret must be at least 32 bytes".into());
        }
        if self.window.is_zero() || self.nonce_lifetime.is_zero() || self.replay_capacity == 0 {
            return Err(
                "the DPoP proof window, nonce lifetime and replay capacity must be positive".into(),
            );
        }
        Ok(())
    }
}

/// Why a DPoP proof was refused: 401 `WWW-Authenticate: DPoP error="invalid_dpop_proof"`,
/// except the nonce errors (`use_dpop_nonce`, with a fresh `DPoP-Nonce`) and
/// [`DpopError::ReplayCacheFull`] (503).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DpopError {
    /// No `DPoP` header with a DPoP-bound token.
    #[error("the request has no DPoP proof")]
    Missing,
    /// More than one `DPoP` header.
    #[error("the request has more than one DPoP proof")]
    Multiple,
    /// The `DPoP` header is longer than the server accepts.
    #[error("the DPoP proof is larger than this server accepts")]
    TooLarge,
    /// Not a compact JWS with JSON header and claims.
    #[error("the DPoP proof is not a well-formed JWT")]
    Malformed,
    /// `typ` is not `dpop+jwt`.
    #[error("the DPoP proof's typ is not dpop+jwt")]
    WrongType,
    /// The proof's `alg` is not one this server accepts.
    #[error("the DPoP proof's algorithm is not accepted")]
    AlgorithmNotAllowed,
    /// The header has a `crit` parameter.
    #[error("the DPoP proof uses critical header extensions that are not supported")]
    CriticalHeader,
    /// No `jwk` in the header.
    #[error("the DPoP proof has no jwk header")]
    MissingKey,
    /// The `jwk` holds private or symmetric key material.
    #[error("the DPoP proof's jwk is not a public key")]
    PrivateKey,
    /// The `jwk` is not a usable public key of the proof's algorithm.
    #[error("the DPoP proof's jwk is not a valid key for its algorithm")]
    InvalidKey,
    /// The signature does not verify under the `jwk`.
    #[error("the DPoP proof's signature is invalid")]
    BadSignature,
    /// A required claim is absent.
    #[error("the DPoP proof lacks the `{0}` claim")]
    MissingClaim(&'static str),
    /// A claim has the wrong type or shape.
    #[error("the DPoP proof's `{0}` claim is malformed")]
    InvalidClaim(&'static str),
    /// `htm` is not the request's method.
    #[error("the DPoP proof was made for another HTTP method")]
    WrongMethod,
    /// `htu` is not the request's URI.
    #[error("the DPoP proof was made for another URI")]
    WrongUri,
    /// `iat` is outside the accepted window.
    #[error("the DPoP proof is too old or from the future")]
    Stale,
    /// `ath` is not the hash of the presented token.
    #[error("the DPoP proof was made for another access token")]
    WrongTokenHash,
    /// The key already used this `jti`.
    #[error("the DPoP proof was already used")]
    Replayed,
    /// The server requires a nonce and the proof has none.
    #[error("this resource requires a DPoP nonce")]
    NonceRequired,
    /// The proof's nonce is not one the server issued, or it expired.
    #[error("the DPoP nonce is invalid or expired")]
    NonceInvalid,
    /// The replay cache is full of proofs still within their window.
    #[error("the server cannot record more DPoP proofs now")]
    ReplayCacheFull,
}

impl DpopError {
    /// Whether the answer is `use_dpop_nonce` with a fresh nonce.
    pub fn wants_nonce(&self) -> bool {
        matches!(self, DpopError::NonceRequired | DpopError::NonceInvalid)
    }
}

/// A checked proof, and whether its nonce should be renewed in the response.
#[derive(Debug, Clone)]
pub(crate) struct Checked {
    pub(crate) proof: Proof,
    /// A nonce to send back (the proof's is past half its lifetime).
    pub(crate) next_nonce: Option<String>,
}

/// The resource's DPoP checks, built from a [`Dpop`] for one origin.
pub(crate) struct DpopVerifier {
    config: Dpop,
    /// The public origin requests arrive at (the resource URL's scheme, host and port).
    origin: Url,
    nonces: Option<Nonces>,
    replay: ReplayCache,
    /// `algs="…"` as the challenge writes it.
    algs: String,
}

impl std::fmt::Debug for DpopVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DpopVerifier")
            .field("config", &self.config)
            .field("origin", &self.origin.as_str())
            .finish_non_exhaustive()
    }
}

impl DpopVerifier {
    /// Checks for proofs sent to `public_url`'s origin (its path, query and fragment are
    /// not used: each request's own path is).
    pub(crate) fn new(config: Dpop, public_url: &Url) -> Self {
        let mut origin = public_url.clone();
        origin.set_path("/");
        origin.set_query(None);
        origin.set_fragment(None);
        let nonces = config
            .nonce_secret
            .as_ref()
            .map(|s| Nonces::new(s, config.nonce_lifetime.as_secs()));
        let algs = config
            .algorithms
            .iter()
            .map(|a| proof::alg_name(*a))
            .collect::<Vec<_>>()
            .join(" ");
        Self {
            replay: ReplayCache::new(config.replay_capacity),
            config,
            origin,
            nonces,
            algs,
        }
    }

    pub(crate) fn required(&self) -> bool {
        self.config.required
    }

    /// The accepted algorithms, space-separated.
    pub(crate) fn algs(&self) -> &str {
        &self.algs
    }

    /// The accepted algorithms' names, for the metadata document.
    pub(crate) fn algorithm_names(&self) -> Vec<String> {
        self.config
            .algorithms
            .iter()
            .map(|a| proof::alg_name(*a).to_owned())
            .collect()
    }

    /// A fresh nonce, when nonces are required.
    pub(crate) fn fresh_nonce(&self, now: u64) -> Option<String> {
        self.nonces.as_ref().map(|n| n.issue(now))
    }

    /// The proof in `headers` (the request's `DPoP` headers), checked against the request
    /// (`method`, the `path` it was sent to at the public origin, the access token if any)
    /// and the nonce; not yet recorded against replay.
    pub(crate) fn check(
        &self,
        headers: &http::HeaderMap,
        method: &str,
        path: &str,
        access_token: Option<&str>,
        now: u64,
    ) -> Result<Checked, DpopError> {
        let mut values = headers.get_all("dpop").iter();
        let value = values.next().ok_or(DpopError::Missing)?;
        if values.next().is_some() {
            return Err(DpopError::Multiple);
        }
        if value.len() > self.config.max_proof_bytes {
            return Err(DpopError::TooLarge);
        }
        let text = value.to_str().map_err(|_| DpopError::Malformed)?.trim();
        let mut uri = self.origin.clone();
        uri.set_path(path);
        let expected = proof::Expected {
            method,
            uri: &uri,
            access_token,
            now,
            window: self.config.window.as_secs(),
        };
        let proof = proof::check(text, &self.config.algorithms, &expected)?;
        let next_nonce = match &self.nonces {
            None => None,
            Some(nonces) => {
                let presented = proof.nonce.as_deref().ok_or(DpopError::NonceRequired)?;
                match nonces.check(presented, now) {
                    NonceCheck::Valid { age } if age * 2 >= nonces.lifetime() => {
                        Some(nonces.issue(now))
                    }
                    NonceCheck::Valid { .. } => None,
                    NonceCheck::Invalid => return Err(DpopError::NonceInvalid),
                }
            }
        };
        Ok(Checked { proof, next_nonce })
    }

    /// Records the proof's `jti`: the last check, made once everything else passed so that
    /// only proofs that would have been accepted take room.
    pub(crate) fn record(&self, proof: &Proof, now: u64) -> Result<(), DpopError> {
        let until = proof
            .iat
            .saturating_add(self.config.window.as_secs())
            .saturating_add(1);
        self.replay
            .record(&proof.jkt, &proof.jti, until, now)
            .map_err(|e| match e {
                NotRecorded::Replayed => DpopError::Replayed,
                NotRecorded::Full => DpopError::ReplayCacheFull,
            })
    }
}
