//! The checks configured per issuer: issuer, audiences, `typ`, algorithms, leeway.

use std::borrow::Cow;
use std::time::Duration;

use jsonwebtoken::Algorithm;

use super::keys::SUPPORTED_ALGORITHMS;

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
pub(crate) fn canonical_audience(aud: &str) -> Cow<'_, str> {
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
    /// The longest accepted lifetime, `exp` after `iat` (after now without `iat`); `None`
    /// accepts any.
    pub max_lifetime: Option<Duration>,
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
            max_lifetime: None,
        }
    }
}
