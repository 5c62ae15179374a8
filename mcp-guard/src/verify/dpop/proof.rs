//! One DPoP proof (RFC 9449 §4.2), checked as §4.3 says: its header, its key, its signature
//! and its claims against the request it came with. Nothing here remembers anything: the
//! replay cache and the nonces are the caller's.

use base64::Engine as _;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::{Map, Value};
use url::Url;

use super::DpopError;

/// The JWK members that only a private (or symmetric) key has: a proof carrying any of them
/// leaked its key, and is refused.
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// The longest `jti` accepted: far above the 16+ random bytes clients send.
const MAX_JTI_BYTES: usize = 256;

/// The request a proof must match.
pub(crate) struct Expected<'a> {
    /// The request's method, exactly (`POST`).
    pub(crate) method: &'a str,
    /// The URI the request was sent to, without query or fragment.
    pub(crate) uri: &'a Url,
    /// The access token presented with the proof, whose hash `ath` must be; `None` at a
    /// token endpoint.
    pub(crate) access_token: Option<&'a str>,
    /// Unix seconds now.
    pub(crate) now: u64,
    /// How far `iat` may lie from `now`, either way, in seconds.
    pub(crate) window: u64,
}

/// What a valid proof establishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Proof {
    /// The RFC 7638 SHA-256 thumbprint of the proof's key (base64url).
    pub(crate) jkt: String,
    /// The proof's `jti`.
    pub(crate) jti: String,
    /// The proof's `iat`.
    pub(crate) iat: u64,
    /// The proof's `nonce`, if any (not checked here).
    pub(crate) nonce: Option<String>,
}

/// Checks a proof against the request and the allowed algorithms; every check of RFC 9449
/// §4.3 except the `jti` replay and the nonce, which need state.
pub(crate) fn check(
    proof: &str,
    allowed: &[Algorithm],
    expected: &Expected<'_>,
) -> Result<Proof, DpopError> {
    let (h, p, signature) = split(proof).ok_or(DpopError::Malformed)?;
    let header: Map<String, Value> = json_part(h)?;
    let claims: Map<String, Value> = json_part(p)?;

    // §4.3 items 4–6: the type, an allowed asymmetric algorithm, a public key.
    let typ = header.get("typ").and_then(Value::as_str);
    if !typ.is_some_and(|t| t.eq_ignore_ascii_case("dpop+jwt")) {
        return Err(DpopError::WrongType);
    }
    if header.contains_key("crit") {
        return Err(DpopError::CriticalHeader);
    }
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .and_then(|a| allowed.iter().copied().find(|x| alg_name(*x) == a))
        .ok_or(DpopError::AlgorithmNotAllowed)?;
    let jwk = match header.get("jwk") {
        Some(Value::Object(jwk)) => jwk,
        _ => return Err(DpopError::MissingKey),
    };
    if PRIVATE_MEMBERS.iter().any(|m| jwk.contains_key(*m)) {
        return Err(DpopError::PrivateKey);
    }
    let jwk: Jwk =
        serde_json::from_value(Value::Object(jwk.clone())).map_err(|_| DpopError::InvalidKey)?;
    if !key_fits(&jwk, alg) {
        return Err(DpopError::InvalidKey);
    }
    let key = DecodingKey::from_jwk(&jwk).map_err(|_| DpopError::InvalidKey)?;

    // §4.3 item 7: the signature, under the key in the header.
    crate::jwt::ensure_crypto_provider();
    let signing_input = &proof[..h.len() + 1 + p.len()];
    if !jsonwebtoken::crypto::verify(signature, signing_input.as_bytes(), &key, alg)
        .unwrap_or(false)
    {
        return Err(DpopError::BadSignature);
    }

    // §4.3 items 8–12: the claims.
    let text = |name: &'static str| match claims.get(name) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.as_str()),
        None => Err(DpopError::MissingClaim(name)),
        Some(_) => Err(DpopError::InvalidClaim(name)),
    };
    let jti = text("jti")?;
    if jti.len() > MAX_JTI_BYTES {
        return Err(DpopError::InvalidClaim("jti"));
    }
    if text("htm")? != expected.method {
        return Err(DpopError::WrongMethod);
    }
    let htu = Url::parse(text("htu")?).map_err(|_| DpopError::InvalidClaim("htu"))?;
    if !same_uri(&htu, expected.uri) {
        return Err(DpopError::WrongUri);
    }
    let iat = match claims.get("iat") {
        Some(Value::Number(n)) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
            .ok_or(DpopError::InvalidClaim("iat"))?,
        Some(_) => return Err(DpopError::InvalidClaim("iat")),
        None => return Err(DpopError::MissingClaim("iat")),
    };
    if iat.abs_diff(expected.now) > expected.window {
        return Err(DpopError::Stale);
    }
    match (expected.access_token, claims.get("ath")) {
        (Some(token), Some(Value::String(ath))) => {
            if *ath != token_hash(token) {
                return Err(DpopError::WrongTokenHash);
            }
        }
        (Some(_), None) => return Err(DpopError::MissingClaim("ath")),
        (Some(_), Some(_)) => return Err(DpopError::InvalidClaim("ath")),
        // At a token endpoint there is no token to hash; an `ath` there is not ours to judge.
        (None, _) => {}
    }
    let nonce = match claims.get("nonce") {
        None => None,
        Some(Value::String(n)) => Some(n.clone()),
        Some(_) => return Err(DpopError::InvalidClaim("nonce")),
    };
    let jkt = jwk
        .thumbprint(jsonwebtoken::jwk::ThumbprintHash::SHA256)
        .map_err(|_| DpopError::InvalidKey)?;
    Ok(Proof {
        jkt,
        jti: jti.to_owned(),
        iat,
        nonce,
    })
}

/// The `ath` of a token: the base64url SHA-256 of its ASCII bytes (RFC 9449 §4.2).
pub(crate) fn token_hash(token: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.as_ref())
}

/// The name a JOSE header gives an algorithm.
pub(crate) fn alg_name(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::RS256 => "RS256",
        Algorithm::RS384 => "RS384",
        Algorithm::RS512 => "RS512",
        Algorithm::PS256 => "PS256",
        Algorithm::PS384 => "PS384",
        Algorithm::PS512 => "PS512",
        Algorithm::ES256 => "ES256",
        Algorithm::ES384 => "ES384",
        Algorithm::EdDSA => "EdDSA",
        Algorithm::HS256 => "HS256",
        Algorithm::HS384 => "HS384",
        Algorithm::HS512 => "HS512",
        _ => "unknown",
    }
}

/// Whether the key is of the algorithm's type and curve (and an RSA key of at least 2048
/// bits), so that a proof cannot name one algorithm and carry a key of another.
fn key_fits(jwk: &Jwk, alg: Algorithm) -> bool {
    match (&jwk.algorithm, alg) {
        (AlgorithmParameters::EllipticCurve(ec), Algorithm::ES256) => {
            ec.curve == EllipticCurve::P256
        }
        (AlgorithmParameters::EllipticCurve(ec), Algorithm::ES384) => {
            ec.curve == EllipticCurve::P384
        }
        (AlgorithmParameters::OctetKeyPair(okp), Algorithm::EdDSA) => {
            okp.curve == EllipticCurve::Ed25519
        }
        (
            AlgorithmParameters::RSA(rsa),
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512,
        ) => base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&rsa.n)
            .is_ok_and(|n| n.len() >= 256),
        _ => false,
    }
}

/// Whether a proof's `htu` names the request's URI (RFC 9449 §4.3 item 9): query and
/// fragment ignored, compared after RFC 3986 syntax- and scheme-based normalisation (the
/// parser lowercases scheme and host, drops a default port and resolves dot segments; the
/// path's percent-encoding is normalised here).
pub(crate) fn same_uri(htu: &Url, expected: &Url) -> bool {
    htu.scheme() == expected.scheme()
        && htu.host_str() == expected.host_str()
        && htu.port_or_known_default() == expected.port_or_known_default()
        && htu.username().is_empty()
        && htu.password().is_none()
        && normalise_path(htu.path()) == normalise_path(expected.path())
}

/// Percent-encodings with upper-case hex digits, and unreserved characters decoded
/// (RFC 3986 §6.2.2.1–6.2.2.2).
fn normalise_path(path: &str) -> String {
    let b = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(hex) = path.get(i + 1..i + 3)
            && let Ok(byte) = u8::from_str_radix(hex, 16)
        {
            if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
                out.push(char::from(byte));
            } else {
                out.push('%');
                out.push_str(&hex.to_ascii_uppercase());
            }
            i += 3;
            continue;
        }
        // `path` is a `Url`'s path: ASCII only.
        out.push(char::from(b[i]));
        i += 1;
    }
    out
}

fn split(proof: &str) -> Option<(&str, &str, &str)> {
    let mut parts = proof.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    (!h.is_empty() && !p.is_empty() && !s.is_empty()).then_some((h, p, s))
}

fn json_part(part: &str) -> Result<Map<String, Value>, DpopError> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| DpopError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| DpopError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_uri_is_compared_normalised_without_query_or_fragment() {
        let expected = Url::parse("https://mcp.example.com/mcp").unwrap();
        for same in [
            "https://mcp.example.com/mcp",
            "HTTPS://MCP.Example.COM/mcp",
            "https://mcp.example.com:443/mcp",
            "https://mcp.example.com/a/../mcp",
            "https://mcp.example.com/%6Dcp",
            "https://mcp.example.com/mcp?x=1",
            "https://mcp.example.com/mcp#f",
        ] {
            assert!(same_uri(&Url::parse(same).unwrap(), &expected), "{same}");
        }
        for other in [
            "http://mcp.example.com/mcp",
            "https://mcp.example.com:8443/mcp",
            "https://evil.example.com/mcp",
            "https://mcp.example.com/mcp/",
            "https://mcp.example.com/MCP",
            "https://mcp.example.com/other",
            "https://user@mcp.example.com/mcp",
        ] {
            assert!(!same_uri(&Url::parse(other).unwrap(), &expected), "{other}");
        }
    }

    #[test]
    fn reserved_percent_encodings_stay_encoded() {
        assert_eq!(normalise_path("/a%2fb"), "/a%2Fb");
        assert_eq!(normalise_path("/%7euser"), "/~user");
        assert_eq!(normalise_path("/%zz"), "/%zz");
    }

    #[test]
    fn the_token_hash_is_rfc_9449s_example() {
        // RFC 9449 §7.1: the access token and its `ath`.
        assert_eq!(
            token_hash("Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"),
            "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"
        );
    }
}
