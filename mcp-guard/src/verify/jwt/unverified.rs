//! A token read once, before anything about it is trusted: its parts, its decoded header and
//! payload, and (when routing needs it) its claims. Routing to an issuer, the cold-path
//! prechecks and the verification all share this one reading.

use base64::Engine as _;
use jsonwebtoken::Algorithm;
use serde::Deserialize as _;
use serde_json::{Map, Value};

use super::keys::{KeySet, SUPPORTED_ALGORITHMS, VerifyingKey};
use super::rules::JwtRules;
use crate::verify::TokenError;

/// The header fields a verifier reads; every other member is ignored (`jku`, `x5u` and `jwk`
/// are never used).
#[derive(serde::Deserialize)]
struct RawHeader {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    typ: Option<String>,
    /// Whether the header has a `crit` member at all (`null` included): none is understood.
    #[serde(default, deserialize_with = "present")]
    crit: bool,
}

fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    serde::de::IgnoredAny::deserialize(d).map(|_| true)
}

/// A compact JWS, split and decoded but not verified. Nothing read from it may be trusted
/// until [`UnverifiedJwt::check_signature`] succeeded.
pub(crate) struct UnverifiedJwt<'a> {
    /// `header.payload`, the signed bytes.
    signing_input: &'a str,
    signature: &'a str,
    header: RawHeader,
    payload: Vec<u8>,
    /// The payload as JSON, parsed on first need (routing, or after the signature).
    claims: Option<Map<String, Value>>,
}

impl<'a> UnverifiedJwt<'a> {
    /// Splits the token into three non-empty base64url parts and decodes the header (which
    /// must be JSON) and the payload.
    pub(crate) fn parse(token: &'a str) -> Result<Self, TokenError> {
        let (h, p, signature) = split(token)?;
        let header = serde_json::from_slice(&b64(h)?).map_err(|_| TokenError::Malformed)?;
        let payload = b64(p)?;
        Ok(Self {
            signing_input: &token[..h.len() + 1 + p.len()],
            signature,
            header,
            payload,
            claims: None,
        })
    }

    /// The header `kid`.
    pub(crate) fn kid(&self) -> Option<&str> {
        self.header.kid.as_deref()
    }

    /// The unverified `iss`, to route the token to its issuer's keys when several issuers
    /// are configured. Never to be trusted on its own.
    pub(crate) fn issuer(&mut self) -> Result<&str, TokenError> {
        match self.claims()?.get("iss") {
            Some(Value::String(iss)) => Ok(iss),
            Some(_) => Err(TokenError::Malformed),
            None => Err(TokenError::MissingClaim("iss")),
        }
    }

    fn claims(&mut self) -> Result<&Map<String, Value>, TokenError> {
        if self.claims.is_none() {
            let claims =
                serde_json::from_slice(&self.payload).map_err(|_| TokenError::Malformed)?;
            self.claims = Some(claims);
        }
        Ok(self.claims.get_or_insert_default())
    }

    /// The checks that need no key: an allowed algorithm, no `crit`.
    pub(crate) fn check_header(&self, rules: &JwtRules) -> Result<Algorithm, TokenError> {
        let alg = parse_alg(&self.header.alg).ok_or(TokenError::AlgorithmNotAllowed)?;
        if !rules.algorithms.contains(&alg) {
            return Err(TokenError::AlgorithmNotAllowed);
        }
        if self.header.crit {
            return Err(TokenError::CriticalHeader);
        }
        Ok(alg)
    }

    /// The header checks, the key chosen by `kid` (with the key's own algorithm equal to the
    /// header's), the signature, and `typ`. Returns the key that verified.
    pub(crate) fn check_signature<'k>(
        &self,
        keys: &'k KeySet,
        rules: &JwtRules,
    ) -> Result<&'k VerifyingKey, TokenError> {
        let alg = self.check_header(rules)?;
        let key = keys.find(self.kid()).ok_or(TokenError::UnknownKey)?;
        if key.algorithm() != alg {
            return Err(TokenError::AlgorithmMismatch);
        }
        if !key.signs(self.signing_input.as_bytes(), self.signature) {
            return Err(TokenError::BadSignature);
        }
        if !rules.typ.accepts(self.header.typ.as_deref()) {
            return Err(TokenError::WrongType);
        }
        Ok(key)
    }

    /// The decoded payload and the claims parsed from it, once the signature has been
    /// checked.
    pub(crate) fn into_claims(mut self) -> Result<(Vec<u8>, Map<String, Value>), TokenError> {
        self.claims()?;
        Ok((self.payload, self.claims.unwrap_or_default()))
    }
}

/// Whether a token is shaped like a compact JWS with a JSON header (else: opaque).
pub(crate) fn looks_like_jwt(token: &str) -> bool {
    split(token).is_ok_and(|(h, _, _)| b64(h).is_ok_and(|json| json.first() == Some(&b'{')))
}

/// Splits a compact JWS into its three parts.
fn split(token: &str) -> Result<(&str, &str, &str), TokenError> {
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

fn b64(part: &str) -> Result<Vec<u8>, TokenError> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| TokenError::Malformed)
}

/// The algorithm a header names: case-sensitive, and only the supported ones (never `none`
/// or HMAC).
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alg_names_are_case_sensitive_and_none_is_refused() {
        assert_eq!(parse_alg("RS256"), Some(Algorithm::RS256));
        for bad in ["none", "None", "NONE", "HS256", "rs256", ""] {
            assert_eq!(parse_alg(bad), None, "{bad}");
        }
    }

    #[test]
    fn any_crit_member_is_refused_null_included() {
        let rules = JwtRules::new("https://issuer", super::super::Audiences::new(["aud"]));
        for (header, refused) in [
            (r#"{"alg":"RS256"}"#, false),
            (r#"{"alg":"RS256","crit":null}"#, true),
            (r#"{"alg":"RS256","crit":[]}"#, true),
            (r#"{"alg":"RS256","crit":["exp"]}"#, true),
        ] {
            let h = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(header);
            let token = format!("{h}.e30.c2ln");
            let jwt = UnverifiedJwt::parse(&token).expect("parses");
            let answer = jwt.check_header(&rules);
            assert_eq!(
                answer.err() == Some(TokenError::CriticalHeader),
                refused,
                "{header}"
            );
        }
    }

    #[test]
    fn a_token_is_three_non_empty_parts() {
        for bad in ["", "a.b", "a.b.c.d", ".b.c", "a..c", "a.b."] {
            assert_eq!(split(bad).err(), Some(TokenError::Malformed), "{bad:?}");
        }
        assert_eq!(split("a.b.c"), Ok(("a", "b", "c")));
    }
}
