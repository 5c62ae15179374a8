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
//!
//! jsonwebtoken is used for the signature only (`crypto::verify`), never for `decode`: the
//! header and claims checks jsonwebtoken 12 added to `decode` (unknown `crit` refused, the
//! types of `sub`, `iss` and `aud`) do not run on this path, so these rules keep their own
//! `crit` refusal and claim-type checks, applied to the one reading of the token.
//!
//! The token is read once ([`UnverifiedJwt`](unverified::UnverifiedJwt)): routing to an
//! issuer, the prechecks that need no key and the verification all use that reading.

mod claims;
mod keys;
mod rules;
mod unverified;

use std::sync::Arc;

use serde_json::{Map, Value};

pub(crate) use claims::{MAX_NUMERIC_DATE, issuer_routes, numeric_date};
pub(crate) use keys::ensure_crypto_provider;
pub use keys::{KeyError, KeySet, SUPPORTED_ALGORITHMS, SkippedKey, VerifyingKey};
pub use rules::{AudienceClaim, Audiences, JwtRules, TypPolicy};
pub(crate) use unverified::{UnverifiedJwt, looks_like_jwt};

pub(crate) use crate::verify::TokenError;

/// A token that passed every check: its header `kid` and its claims.
#[derive(Clone)]
pub struct VerifiedJwt {
    /// The `kid` of the key that verified it (as the token's header names it).
    pub kid: Option<Arc<str>>,
    /// The material of the key that verified it.
    pub(crate) fingerprint: u64,
    /// The claims, as sent.
    pub claims: Map<String, Value>,
    /// The decoded payload the claims were parsed from.
    pub(crate) payload: Vec<u8>,
}

impl std::fmt::Debug for VerifiedJwt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifiedJwt")
            .field("kid", &self.kid)
            .field("claims", &self.claims)
            .finish_non_exhaustive()
    }
}

/// Verifies one token against a key snapshot and the rules; `now` is seconds since the Unix
/// epoch.
pub fn verify(
    token: &str,
    keys: &KeySet,
    rules: &JwtRules,
    now: u64,
) -> Result<VerifiedJwt, TokenError> {
    let jwt = UnverifiedJwt::parse(token)?;
    let key = jwt.check_signature(keys, rules)?;
    VerifiedJwt::from_checked(jwt, key, rules, now)
}

impl VerifiedJwt {
    /// The claims of a token whose signature `check_signature` accepted under `key`,
    /// checked.
    pub(crate) fn from_checked(
        jwt: UnverifiedJwt<'_>,
        key: &VerifyingKey,
        rules: &JwtRules,
        now: u64,
    ) -> Result<Self, TokenError> {
        // The key was found by the header's `kid` when there is one, so its `kid` is that
        // one; a token without `kid` names none, whatever the key's.
        let kid = jwt.kid().and(key.shared_kid());
        let fingerprint = key.fingerprint();
        let (payload, claims) = jwt.into_claims()?;
        claims::check_claims(&claims, rules, now)?;
        Ok(Self {
            kid,
            fingerprint,
            claims,
            payload,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::Map;

    use super::claims::check_times;
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
    fn times() {
        let rules_leeway = Duration::from_secs(60);
        let mut c = Map::new();
        assert_eq!(
            check_times(&c, rules_leeway, None, 1000),
            Err(TokenError::MissingClaim("exp"))
        );
        c.insert("exp".into(), 970.into());
        assert!(check_times(&c, rules_leeway, None, 1000).is_ok());
        c.insert("exp".into(), 940.into());
        assert_eq!(
            check_times(&c, rules_leeway, None, 1000),
            Err(TokenError::Expired)
        );
        c.insert("exp".into(), 2000.into());
        c.insert("nbf".into(), 1061.into());
        assert_eq!(
            check_times(&c, rules_leeway, None, 1000),
            Err(TokenError::NotYetValid)
        );
        c.insert("nbf".into(), "soon".into());
        assert_eq!(
            check_times(&c, rules_leeway, None, 1000),
            Err(TokenError::InvalidClaim("nbf"))
        );
    }

    #[test]
    fn numeric_dates_outside_the_representable_range_are_refused() {
        let leeway = Duration::from_secs(60);
        for exp in [
            r#"1e30"#,
            r#"18446744073709551621"#,
            r#"-1"#,
            r#"253402300800"#,
            r#"253402300800.5"#,
        ] {
            let mut c = Map::new();
            c.insert("exp".into(), serde_json::from_str(exp).unwrap());
            assert_eq!(
                check_times(&c, leeway, None, 1000),
                Err(TokenError::InvalidClaim("exp")),
                "exp {exp}"
            );
        }
        let mut c = Map::new();
        c.insert("exp".into(), 253_402_300_799u64.into());
        assert!(check_times(&c, leeway, None, 1000).is_ok());
        c.insert("iat".into(), serde_json::from_str("1e300").unwrap());
        assert_eq!(
            check_times(&c, leeway, None, 1000),
            Err(TokenError::InvalidClaim("iat"))
        );
    }

    #[test]
    fn lifetime_is_measured_from_iat_or_now() {
        let leeway = Duration::from_secs(60);
        let hour = Some(Duration::from_secs(3600));
        let mut c = Map::new();
        c.insert("exp".into(), 4600.into());
        assert!(check_times(&c, leeway, hour, 1000).is_ok());
        c.insert("exp".into(), 4601.into());
        assert_eq!(
            check_times(&c, leeway, hour, 1000),
            Err(TokenError::LifetimeTooLong)
        );
        c.insert("iat".into(), 990.into());
        assert!(check_times(&c, leeway, hour, 1000).is_err());
        c.insert("iat".into(), 1001.into());
        assert!(check_times(&c, leeway, hour, 1000).is_ok());
    }
}
