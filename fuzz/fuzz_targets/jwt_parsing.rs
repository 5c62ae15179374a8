//! `jwt::verify` against a fixed one-key `KeySet` (the committed test key `rsa1`, RS256,
//! `kid: "rsa1"`) and fixed rules (issuer `https://auth.example.com`, audience
//! `https://mcp.example.com/mcp`, RFC 9068 `typ`, `now` = 2_000_000_000).
//!
//! The first input byte picks the mode:
//! - 0: the rest, as UTF-8 (lossy), is the token;
//! - 1: the rest is split at the first two `0xFF` bytes into header bytes, payload bytes and
//!   signature bytes, each base64url-encoded and joined with dots (raw JSON fuzzing behind a
//!   well-formed compact JWS);
//! - otherwise: a header and a payload are built as JSON from the input (`alg`, `kid`, `typ`,
//!   `crit`, `jku`/`jwk`…, and `iss`/`aud`/`exp`/`nbf`/`iat`/`scope` of various types),
//!   base64url-encoded, and given a garbage signature.
//!
//! Invariants: `verify` never panics and never returns `Ok` (the fuzzer cannot produce an
//! RSA signature; the signed seeds in the corpus all fail a claim check). In the structured
//! mode the error is also predicted exactly from the header alone, following the order of the
//! rules of the JWT verifier (`mcp_guard::__internals::verify`) (alg, crit, kid, alg/key match, signature).
#![no_main]

use std::sync::LazyLock;

use base64::Engine as _;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey};
use libfuzzer_sys::arbitrary::{self, Unstructured};
use libfuzzer_sys::fuzz_target;
use mcp_guard::TokenError;
use mcp_guard::__internals::{self as jwt, Audiences, JwtRules};
use mcp_guard::jwks::{KeySet, VerifyingKey};
use serde_json::{Map, Value, json};

const NOW: u64 = 2_000_000_000;
const ISSUER: &str = "https://auth.example.com";
const AUDIENCE: &str = "https://mcp.example.com/mcp";
const KID: &str = "rsa1";

static RSA1_PEM: &[u8] = include_bytes!("../../tests/keys/rsa1.pem");

struct Fixture {
    keys: KeySet,
    rules: JwtRules,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let _ = jsonwebtoken::crypto::CryptoProvider::install_default(
        &jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER,
    );
    let encoding = EncodingKey::from_rsa_pem(RSA1_PEM).expect("tests/keys/rsa1.pem parses");
    let mut jwk = Jwk::from_encoding_key(&encoding, Algorithm::RS256).expect("public JWK");
    jwk.common.key_id = Some(KID.to_owned());
    let key = VerifyingKey::from_jwk(&jwk).expect("usable verifying key");
    assert_eq!(key.algorithm(), Algorithm::RS256);
    Fixture {
        keys: KeySet::from_keys([key]),
        rules: JwtRules::new(ISSUER, Audiences::new([AUDIENCE])),
    }
});

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn verify(token: &str) -> Result<jwt::VerifiedJwt, TokenError> {
    let f = &*FIXTURE;
    let result = jwt::verify(token, &f.keys, &f.rules, NOW);
    if let Ok(v) = &result {
        panic!("verify accepted fuzzer input {token:?}: {:?}", v.claims);
    }
    result
}

/// A JSON value of any shape, small.
fn any_json(u: &mut Unstructured<'_>, depth: u8) -> arbitrary::Result<Value> {
    Ok(match u.int_in_range(0..=7u8)? {
        0 => Value::Null,
        1 => Value::Bool(u.arbitrary()?),
        2 => json!(u.arbitrary::<i64>()?),
        3 => json!(u.arbitrary::<u64>()?),
        4 => {
            let f: f64 = u.arbitrary()?;
            serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
        }
        5 => Value::String(u.arbitrary()?),
        6 if depth < 3 => {
            let n = u.int_in_range(0..=3u8)?;
            let mut items = Vec::new();
            for _ in 0..n {
                items.push(any_json(u, depth + 1)?);
            }
            Value::Array(items)
        }
        7 if depth < 3 => {
            let n = u.int_in_range(0..=3u8)?;
            let mut map = Map::new();
            for _ in 0..n {
                map.insert(u.arbitrary()?, any_json(u, depth + 1)?);
            }
            Value::Object(map)
        }
        _ => Value::String(String::new()),
    })
}

/// A string from a list of interesting values, or arbitrary.
fn pick(u: &mut Unstructured<'_>, list: &[&str]) -> arbitrary::Result<String> {
    let i = u.int_in_range(0..=list.len())?;
    Ok(match list.get(i) {
        Some(s) => (*s).to_owned(),
        None => u.arbitrary()?,
    })
}

/// An optional field: absent, a likely value, or a value of any type.
fn field(
    u: &mut Unstructured<'_>,
    map: &mut Map<String, Value>,
    name: &str,
    likely: &[&str],
) -> arbitrary::Result<()> {
    match u.int_in_range(0..=3u8)? {
        0 => {}
        1 | 2 => {
            map.insert(name.to_owned(), Value::String(pick(u, likely)?));
        }
        _ => {
            map.insert(name.to_owned(), any_json(u, 0)?);
        }
    }
    Ok(())
}

fn time_claim(
    u: &mut Unstructured<'_>,
    map: &mut Map<String, Value>,
    name: &str,
) -> arbitrary::Result<()> {
    match u.int_in_range(0..=4u8)? {
        0 => {}
        1 => {
            let delta = u.int_in_range(-200i64..=200)?;
            map.insert(name.to_owned(), json!(NOW as i64 + delta));
        }
        2 => {
            map.insert(name.to_owned(), json!(u.arbitrary::<u64>()?));
        }
        3 => {
            let f: f64 = u.arbitrary()?;
            if let Some(n) = serde_json::Number::from_f64(f) {
                map.insert(name.to_owned(), Value::Number(n));
            }
        }
        _ => {
            map.insert(name.to_owned(), any_json(u, 0)?);
        }
    }
    Ok(())
}

/// What `verify` must answer for this header, given that the signature is garbage.
fn expected_error(header: &Map<String, Value>) -> TokenError {
    let string_or_null = |name: &str| match header.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(_) => Err(TokenError::Malformed),
    };
    let alg = match header.get("alg") {
        Some(Value::String(s)) => s.as_str(),
        _ => return TokenError::Malformed,
    };
    let (kid, _typ) = match (string_or_null("kid"), string_or_null("typ")) {
        (Ok(k), Ok(t)) => (k, t),
        _ => return TokenError::Malformed,
    };
    const SUPPORTED: [&str; 9] = [
        "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
    ];
    if !SUPPORTED.contains(&alg) {
        return TokenError::AlgorithmNotAllowed;
    }
    // Any `crit` member, `null` included.
    if header.contains_key("crit") {
        return TokenError::CriticalHeader;
    }
    if kid.is_some_and(|k| k != KID) {
        return TokenError::UnknownKey;
    }
    if alg != "RS256" {
        return TokenError::AlgorithmMismatch;
    }
    TokenError::BadSignature
}

fn structured(u: &mut Unstructured<'_>) -> arbitrary::Result<()> {
    let mut header = Map::new();
    field(
        u,
        &mut header,
        "alg",
        &[
            "RS256", "RS384", "PS256", "ES256", "ES384", "EdDSA", "HS256", "none", "None", "NONE",
            "rs256", "",
        ],
    )?;
    field(u, &mut header, "kid", &[KID, "rsa2", "", "RSA1"])?;
    field(
        u,
        &mut header,
        "typ",
        &["at+jwt", "application/at+jwt", "JWT", "AT+JWT"],
    )?;
    if u.ratio(1, 8)? {
        header.insert("crit".into(), any_json(u, 0)?);
    }
    for name in ["jku", "x5u", "jwk", "cty", "x5c"] {
        if u.ratio(1, 16)? {
            header.insert(name.into(), any_json(u, 0)?);
        }
    }
    let extra = u.int_in_range(0..=2u8)?;
    for _ in 0..extra {
        let name: String = u.arbitrary()?;
        let value = any_json(u, 0)?;
        header.insert(name, value);
    }

    let mut claims = Map::new();
    field(
        u,
        &mut claims,
        "iss",
        &[ISSUER, "https://auth.example.com/", "https://evil.example"],
    )?;
    match u.int_in_range(0..=3u8)? {
        0 => {}
        1 => {
            claims.insert(
                "aud".into(),
                json!(pick(
                    u,
                    &[
                        AUDIENCE,
                        "HTTPS://MCP.EXAMPLE.COM/mcp",
                        "https://mcp.example.com/mcp/"
                    ]
                )?),
            );
        }
        2 => {
            claims.insert("aud".into(), json!([AUDIENCE, any_json(u, 0)?]));
        }
        _ => {
            claims.insert("aud".into(), any_json(u, 0)?);
        }
    }
    for name in ["exp", "nbf", "iat"] {
        time_claim(u, &mut claims, name)?;
    }
    field(
        u,
        &mut claims,
        "scope",
        &["files:read", "files:read files:write", ""],
    )?;
    field(u, &mut claims, "sub", &["alice"])?;
    field(u, &mut claims, "client_id", &["client-1"])?;

    let sig_len = u.int_in_range(0..=300usize)?;
    let sig_bytes = u.bytes(sig_len.min(u.len()))?;
    let mut signature = b64(sig_bytes);
    if signature.is_empty() {
        signature.push_str("AA");
    }
    // Sometimes a signature that is not even base64url.
    if u.ratio(1, 16)? {
        signature.push('!');
    }

    let header_json = Value::Object(header.clone()).to_string();
    let payload_json = Value::Object(claims).to_string();
    let token = format!(
        "{}.{}.{signature}",
        b64(header_json.as_bytes()),
        b64(payload_json.as_bytes())
    );
    let err = verify(&token).unwrap_err();
    let expected = expected_error(&header);
    assert_eq!(err, expected, "header {header_json}");
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode {
        0 => {
            let token = String::from_utf8_lossy(rest);
            let _ = verify(&token);
        }
        1 => {
            let mut parts = rest.splitn(3, |&b| b == 0xFF);
            let h = parts.next().unwrap_or_default();
            let p = parts.next().unwrap_or_default();
            let s = parts.next().unwrap_or_default();
            let token = format!("{}.{}.{}", b64(h), b64(p), b64(s));
            let _ = verify(&token);
        }
        _ => {
            let _ = structured(&mut Unstructured::new(rest));
        }
    }
});
