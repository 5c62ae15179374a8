//! The key source of one issuer: discovery (RFC 8414, then OpenID Connect), JWKS fetch, a
//! lock-free snapshot for readers, single-flight refresh, a cooldown on unknown `kid`s,
//! `Cache-Control` TTLs clamped to sane bounds, and the last good keys kept on every failure.
//! The HTTP side (discovery documents, the bounded JWKS read, redirects, URL rules) is in
//! `http.rs`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub use crate::verify::jwt::{KeyError, KeySet, SUPPORTED_ALGORITHMS, SkippedKey, VerifyingKey};

use arc_swap::ArcSwap;
use jsonwebtoken::Algorithm;
use url::Url;

use crate::jwt::ensure_crypto_provider;

pub(crate) mod http;

use http::{http_client, parse_url};
pub(crate) use http::{is_loopback, require_secure};

/// Why keys could not be fetched. Never holds a token; URLs are the configured ones.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeySourceError {
    /// The URL is not https (plain http is allowed only for loopback addresses).
    #[error("refusing to fetch `{0}`: https is required except for loopback addresses")]
    InsecureUrl(String),
    /// The URL could not be parsed.
    #[error("invalid URL `{0}`")]
    InvalidUrl(String),
    /// Connection failure or timeout.
    #[error("fetching `{url}` failed: {reason}")]
    Transport {
        /// The URL.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// A non-2xx status.
    #[error("fetching `{url}` returned HTTP {status}")]
    Status {
        /// The URL.
        url: String,
        /// The status code.
        status: u16,
    },
    /// The body exceeded the size cap.
    #[error("the response from `{url}` exceeds {limit} bytes")]
    TooLarge {
        /// The URL.
        url: String,
        /// The cap.
        limit: usize,
    },
    /// The body is not the expected JSON document.
    #[error("the response from `{url}` is not a valid {what}")]
    InvalidDocument {
        /// The URL.
        url: String,
        /// What was expected.
        what: &'static str,
    },
    /// Discovery found metadata for another issuer.
    #[error("authorization server metadata names issuer `{found}`, expected `{expected}`")]
    IssuerMismatch {
        /// The configured issuer.
        expected: String,
        /// The `issuer` of the document.
        found: String,
    },
    /// No discovery document was found at any well-known location.
    #[error("no authorization server metadata with a `jwks_uri` found for issuer `{0}`")]
    NotDiscovered(String),
    /// The key set holds no usable key.
    #[error("the key set at `{0}` holds no usable key")]
    NoUsableKeys(String),
    /// No key set has been loaded yet and the last attempt failed within the cooldown.
    #[error("no keys are available for issuer `{issuer}`: {last_error}")]
    Unavailable {
        /// The issuer.
        issuer: String,
        /// The last fetch error.
        last_error: String,
    },
}

/// Tuning of a key source. The defaults suit production.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct KeySourceConfig {
    /// At most one refetch per this window for unknown `kid`s and failed loads (default 30 s).
    pub refetch_cooldown: Duration,
    /// Lower clamp for `Cache-Control: max-age` (default 60 s).
    pub min_ttl: Duration,
    /// Upper clamp for `Cache-Control: max-age` (default 24 h).
    pub max_ttl: Duration,
    /// TTL when the response has no `max-age` (default 10 min).
    pub default_ttl: Duration,
    /// Timeout of each fetch (default 5 s).
    pub timeout: Duration,
    /// Response size cap (default 256 KiB).
    pub max_response_bytes: usize,
    /// Algorithms accepted from the key set.
    pub algorithms: Vec<Algorithm>,
}

impl Default for KeySourceConfig {
    fn default() -> Self {
        Self {
            refetch_cooldown: Duration::from_secs(30),
            min_ttl: Duration::from_secs(60),
            max_ttl: Duration::from_secs(24 * 3600),
            default_ttl: Duration::from_secs(600),
            timeout: Duration::from_secs(5),
            max_response_bytes: 256 * 1024,
            algorithms: SUPPORTED_ALGORITHMS.to_vec(),
        }
    }
}

/// Where the keys are.
#[derive(Debug, Clone)]
enum Location {
    /// Discover `jwks_uri` from the issuer's metadata.
    Discover,
    /// A fixed JWKS URL.
    Fixed(Url),
}

/// The keys of one issuer, kept fresh.
///
/// Readers call [`KeySource::current`], which never blocks. Refreshes are single-flight: a
/// token with an unknown `kid` triggers at most one refetch per cooldown window however many
/// requests carry it, and a failed refresh keeps the last good key set.
#[derive(Clone)]
pub struct KeySource(Arc<Inner>);

struct Inner {
    issuer: String,
    location: Location,
    config: KeySourceConfig,
    http: reqwest::Client,
    snapshot: ArcSwap<KeySet>,
    loaded: AtomicBool,
    refresh: tokio::sync::Mutex<RefreshState>,
    /// Milliseconds since `epoch` after which a background refresh is due.
    refresh_due_ms: AtomicU64,
    refreshing: AtomicBool,
    epoch: Instant,
    fetches: AtomicU64,
}

#[derive(Default)]
struct RefreshState {
    last_attempt: Option<Instant>,
    last_error: Option<KeySourceError>,
    jwks_uri: Option<Url>,
    generation: u64,
}

impl std::fmt::Debug for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeySource")
            .field("issuer", &self.0.issuer)
            .field("location", &self.0.location)
            .finish_non_exhaustive()
    }
}

impl KeySource {
    /// Keys found by discovery from the issuer identifier: RFC 8414
    /// `/.well-known/oauth-authorization-server`, then OpenID Connect
    /// `/.well-known/openid-configuration` (path-inserted, then path-appended). The
    /// document's `issuer` must equal `issuer`.
    pub fn discover(issuer: &str, config: KeySourceConfig) -> Result<Self, KeySourceError> {
        let url = parse_url(issuer)?;
        require_secure(&url)?;
        Ok(Self::new(issuer, Location::Discover, config))
    }

    /// Keys from a fixed JWKS URL.
    pub fn jwks_uri(
        issuer: &str,
        jwks_uri: &str,
        config: KeySourceConfig,
    ) -> Result<Self, KeySourceError> {
        let url = parse_url(jwks_uri)?;
        require_secure(&url)?;
        Ok(Self::new(issuer, Location::Fixed(url), config))
    }

    /// A fixed key set that is never fetched (for keys distributed out of band, and tests).
    pub fn fixed(issuer: &str, keys: KeySet) -> Self {
        let source = Self::new(
            issuer,
            Location::Fixed(Url::parse("https://invalid.invalid/").expect("static URL")),
            KeySourceConfig::default(),
        );
        source.0.snapshot.store(Arc::new(keys.with_generation(1)));
        source.0.loaded.store(true, Ordering::Release);
        source.0.refresh_due_ms.store(u64::MAX, Ordering::Release);
        source
    }

    fn new(issuer: &str, location: Location, config: KeySourceConfig) -> Self {
        ensure_crypto_provider();
        let http = http_client(config.timeout);
        Self(Arc::new(Inner {
            issuer: issuer.to_owned(),
            location,
            config,
            http,
            snapshot: ArcSwap::from_pointee(KeySet::default()),
            loaded: AtomicBool::new(false),
            refresh: tokio::sync::Mutex::new(RefreshState::default()),
            refresh_due_ms: AtomicU64::new(0),
            refreshing: AtomicBool::new(false),
            epoch: Instant::now(),
            fetches: AtomicU64::new(0),
        }))
    }

    /// The configured refetch cooldown: how long a failed load is remembered.
    pub fn refetch_cooldown(&self) -> Duration {
        self.0.config.refetch_cooldown
    }

    /// The issuer these keys belong to.
    pub fn issuer(&self) -> &str {
        &self.0.issuer
    }

    /// How many key-set fetches were attempted (for monitoring and tests).
    pub fn fetch_count(&self) -> u64 {
        self.0.fetches.load(Ordering::Relaxed)
    }

    /// The current snapshot, without waiting. If the snapshot's TTL has run out, one
    /// background refresh is started (the old keys are served meanwhile).
    pub fn current(&self) -> Arc<KeySet> {
        let snap = self.0.snapshot.load_full();
        if self.elapsed_ms() >= self.0.refresh_due_ms.load(Ordering::Acquire)
            && self.0.loaded.load(Ordering::Acquire)
            && !self.0.refreshing.swap(true, Ordering::AcqRel)
        {
            let this = self.clone();
            match tokio::runtime::Handle::try_current() {
                Ok(handle) => {
                    handle.spawn(async move {
                        let mut state = this.0.refresh.lock().await;
                        if this.elapsed_ms() >= this.0.refresh_due_ms.load(Ordering::Acquire) {
                            let _ = this.refresh_locked(&mut state).await;
                        }
                        this.0.refreshing.store(false, Ordering::Release);
                    });
                }
                Err(_) => self.0.refreshing.store(false, Ordering::Release),
            }
        }
        snap
    }

    /// The current snapshot if a key set was ever loaded.
    pub fn loaded(&self) -> Option<Arc<KeySet>> {
        self.0
            .loaded
            .load(Ordering::Acquire)
            .then(|| self.current())
    }

    /// The keys, loading them first if nothing was ever loaded. Fails only when no key set
    /// was ever loaded and loading fails (or failed within the cooldown).
    pub async fn ready(&self) -> Result<Arc<KeySet>, KeySourceError> {
        if self.0.loaded.load(Ordering::Acquire) {
            return Ok(self.current());
        }
        let mut state = self.0.refresh.lock().await;
        if self.0.loaded.load(Ordering::Acquire) {
            return Ok(self.0.snapshot.load_full());
        }
        if let (Some(at), Some(err)) = (state.last_attempt, &state.last_error)
            && at.elapsed() < self.0.config.refetch_cooldown
        {
            return Err(KeySourceError::Unavailable {
                issuer: self.0.issuer.clone(),
                last_error: err.to_string(),
            });
        }
        self.refresh_locked(&mut state).await?;
        Ok(self.0.snapshot.load_full())
    }

    /// Called when a token names a `kid` the snapshot `seen` lacks: refetches at most once
    /// per cooldown window (concurrent callers wait for the same fetch) and returns the
    /// snapshot to retry with.
    pub async fn refresh_for_unknown_kid(&self, seen: &KeySet) -> Arc<KeySet> {
        let mut state = self.0.refresh.lock().await;
        let now = self.0.snapshot.load_full();
        if now.generation() != seen.generation() {
            return now;
        }
        if state
            .last_attempt
            .is_some_and(|at| at.elapsed() < self.0.config.refetch_cooldown)
        {
            return now;
        }
        let _ = self.refresh_locked(&mut state).await;
        self.0.snapshot.load_full()
    }

    fn elapsed_ms(&self) -> u64 {
        self.0.epoch.elapsed().as_millis() as u64
    }

    async fn refresh_locked(&self, state: &mut RefreshState) -> Result<(), KeySourceError> {
        state.last_attempt = Some(Instant::now());
        match self.fetch(state).await {
            Ok((keys, ttl)) => {
                state.generation += 1;
                state.last_error = None;
                self.0
                    .snapshot
                    .store(Arc::new(keys.with_generation(state.generation)));
                self.0.loaded.store(true, Ordering::Release);
                self.schedule(ttl);
                crate::metrics::key_fetch(&self.0.issuer, true);
                Ok(())
            }
            Err(e) => {
                tracing::warn!(target: "mcp_guard::jwks", issuer = %self.0.issuer, error = %e,
                    "key refresh failed; keeping the last good key set");
                state.last_error = Some(e.clone());
                crate::metrics::key_fetch(&self.0.issuer, false);
                // Retry no sooner than the cooldown.
                self.schedule(self.0.config.refetch_cooldown);
                Err(e)
            }
        }
    }

    fn schedule(&self, ttl: Duration) {
        // Refresh when 90% of the TTL has passed, so keys are renewed before they expire.
        let due = self.elapsed_ms() + (ttl.as_millis() as u64) * 9 / 10;
        self.0.refresh_due_ms.store(due, Ordering::Release);
    }
}
