//! Trusted issuers: where an issuer's keys come from and how its tokens are read, and the
//! verification rules each issuer entry of a built guard holds.

use std::time::Duration;

use jsonwebtoken::Algorithm;

use super::ConfigError;
use crate::jwks::{KeySource, KeySourceConfig};
use crate::jwt::{Audiences, JwtRules, KeySet, SUPPORTED_ALGORITHMS, TypPolicy};
use crate::profile::Profile;

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

    /// The entry a built guard holds for this issuer: its key source and its verification
    /// rules, after checking the issuer is configured coherently.
    pub(super) fn entry(
        &self,
        audiences: &Audiences,
        leeway: Duration,
        max_lifetime: Option<Duration>,
    ) -> Result<IssuerEntry, ConfigError> {
        if self.algorithms.is_empty() {
            return Err(ConfigError::NoAlgorithms(self.issuer.clone()));
        }
        let template = self.is_template();
        if template == self.tenants.is_empty() {
            return Err(ConfigError::Tenants(self.issuer.clone()));
        }
        if template && matches!(self.keys, IssuerKeys::Discover) {
            return Err(ConfigError::TemplateDiscovery(self.issuer.clone()));
        }
        let mut key_config = self.key_config.clone();
        key_config.algorithms = self.algorithms.clone();
        let keys = match &self.keys {
            IssuerKeys::Discover => KeySource::discover(&self.issuer, key_config)?,
            IssuerKeys::JwksUri(u) => KeySource::jwks_uri(&self.issuer, u, key_config)?,
            IssuerKeys::Fixed(k) => KeySource::fixed(&self.issuer, k.clone()),
        };
        let mut rules = JwtRules::new(self.issuer.clone(), audiences.clone());
        rules.leeway = leeway;
        rules.max_lifetime = max_lifetime;
        rules.typ = self.typ.clone().unwrap_or_else(|| self.profile.typ.clone());
        rules.algorithms = self.algorithms.clone();
        rules.tenants = self.tenants.clone();
        rules.audience_claim = self.profile.audience.clone();
        Ok(IssuerEntry {
            rules,
            keys,
            profile: self.profile.clone(),
        })
    }

    /// The issuer identifiers clients discover: the issuer itself, or a `{tid}` template
    /// filled with each accepted tenant (clients never see the template).
    pub(super) fn advertised(&self) -> Vec<String> {
        match self.issuer.split_once("{tid}") {
            None => vec![self.issuer.clone()],
            Some((prefix, suffix)) => self
                .tenants
                .iter()
                .map(|t| format!("{prefix}{t}{suffix}"))
                .collect(),
        }
    }

    pub(super) fn identifier(&self) -> &str {
        &self.issuer
    }

    fn is_template(&self) -> bool {
        self.issuer.contains("{tid}")
    }
}

/// A trusted issuer as a built guard holds it.
pub(crate) struct IssuerEntry {
    pub(crate) rules: JwtRules,
    pub(crate) keys: KeySource,
    pub(crate) profile: Profile,
}
