//! Test signing keys (committed under `tests/keys/`, test-only) and token minting.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Value, json};

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A private key with its `kid` and the one algorithm it signs with.
#[derive(Clone)]
pub struct TestKey {
    /// Key id.
    pub kid: String,
    /// Algorithm.
    pub alg: Algorithm,
    /// Private key.
    pub encoding: EncodingKey,
}

/// The bytes of a committed key file.
pub fn key_file(name: &str) -> Vec<u8> {
    let path = format!("{}/keys/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

impl TestKey {
    fn load(kid: &str, alg: Algorithm, file: &str) -> Self {
        mcp_guard_install_provider();
        let pem = key_file(file);
        let encoding = match alg {
            Algorithm::ES256 | Algorithm::ES384 => EncodingKey::from_ec_pem(&pem),
            Algorithm::EdDSA => EncodingKey::from_ed_pem(&pem),
            _ => EncodingKey::from_rsa_pem(&pem),
        }
        .expect("test key parses");
        Self {
            kid: kid.to_owned(),
            alg,
            encoding,
        }
    }

    /// RSA key 1, RS256.
    pub fn rsa1() -> Self {
        Self::load("rsa1", Algorithm::RS256, "rsa1.pem")
    }
    /// RSA key 2, RS256 (the "next" key in rotation tests, the attacker's elsewhere).
    pub fn rsa2() -> Self {
        Self::load("rsa2", Algorithm::RS256, "rsa2.pem")
    }
    /// RSA key 1 under another kid with algorithm `alg` (RS384/512, PS256/384/512).
    pub fn rsa1_with(alg: Algorithm) -> Self {
        Self::load(&format!("rsa1-{alg:?}").to_lowercase(), alg, "rsa1.pem")
    }
    /// P-256, ES256.
    pub fn ec256() -> Self {
        Self::load("ec256", Algorithm::ES256, "ec256.pem")
    }
    /// P-384, ES384.
    pub fn ec384() -> Self {
        Self::load("ec384", Algorithm::ES384, "ec384.pem")
    }
    /// Ed25519, EdDSA.
    pub fn ed25519() -> Self {
        Self::load("ed25519", Algorithm::EdDSA, "ed25519.pem")
    }

    /// The same key material under another `kid`.
    pub fn with_kid(mut self, kid: &str) -> Self {
        self.kid = kid.to_owned();
        self
    }

    /// The public JWK, with `kid`, `alg` and `use: sig`.
    pub fn jwk(&self) -> Value {
        let jwk = Jwk::from_encoding_key(&self.encoding, self.alg).expect("public JWK");
        let mut v = serde_json::to_value(jwk).expect("JWK serializes");
        v["kid"] = json!(self.kid);
        v["use"] = json!("sig");
        v
    }

    /// The public JWK without `alg` (as many providers publish it).
    pub fn jwk_without_alg(&self) -> Value {
        let mut v = self.jwk();
        v.as_object_mut().expect("object").remove("alg");
        v
    }

    /// Signs `claims` with an RFC 9068 header (`typ: at+jwt`, this key's `kid` and `alg`).
    pub fn sign(&self, claims: &Value) -> String {
        self.sign_with_header(
            &json!({"alg": alg_name(self.alg), "typ": "at+jwt", "kid": self.kid}),
            claims,
        )
    }

    /// Signs `claims` under an arbitrary header (the header's `alg` is not checked here).
    pub fn sign_with_header(&self, header: &Value, claims: &Value) -> String {
        let message = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let sig = jsonwebtoken::crypto::sign(message.as_bytes(), &self.encoding, self.alg)
            .expect("signing works");
        format!("{message}.{sig}")
    }
}

impl TestKey {
    /// The public JWK as a DPoP proof header carries it: key parameters only.
    pub fn dpop_jwk(&self) -> Value {
        let mut v = self.jwk();
        let o = v.as_object_mut().expect("object");
        for member in ["kid", "alg", "use"] {
            o.remove(member);
        }
        v
    }

    /// The RFC 7638 SHA-256 thumbprint of this key, as a DPoP-bound token's `cnf.jkt`.
    pub fn jkt(&self) -> String {
        let jwk: Jwk = serde_json::from_value(self.dpop_jwk()).expect("JWK");
        jwk.thumbprint(jsonwebtoken::jwk::ThumbprintHash::SHA256)
            .expect("thumbprint")
    }

    /// A DPoP proof (RFC 9449 §4.2) for `method` `htu`, bound to `token` (its `ath`) when
    /// given, with a random `jti` and `iat` now.
    pub fn dpop_proof(&self, method: &str, htu: &str, token: Option<&str>) -> String {
        self.dpop_proof_with(&dpop_claims(method, htu, token), |_| {})
    }

    /// A DPoP proof with these claims, its header (`typ`, `alg`, `jwk`) adjusted by `header`.
    pub fn dpop_proof_with(&self, claims: &Value, header: impl FnOnce(&mut Value)) -> String {
        let mut h = json!({"typ": "dpop+jwt", "alg": alg_name(self.alg), "jwk": self.dpop_jwk()});
        header(&mut h);
        self.sign_with_header(&h, claims)
    }
}

/// The claims of a DPoP proof for `method` `htu` (and `token`'s `ath`), `iat` now and a fresh
/// random `jti`.
pub fn dpop_claims(method: &str, htu: &str, token: Option<&str>) -> Value {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let jti = format!(
        "{}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        now()
    );
    let mut c = json!({"jti": jti, "htm": method, "htu": htu, "iat": now()});
    if let Some(t) = token {
        c["ath"] = json!(ath(t));
    }
    c
}

/// The `ath` of a token: base64url SHA-256.
pub fn ath(token: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
    b64(digest.as_ref())
}

/// Signs with an HMAC secret under an arbitrary header (key-confusion attacks).
pub fn sign_hmac(secret: &[u8], header: &Value, claims: &Value) -> String {
    mcp_guard_install_provider();
    let message = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let sig = jsonwebtoken::crypto::sign(
        message.as_bytes(),
        &EncodingKey::from_secret(secret).expect("a non-empty HMAC secret"),
        Algorithm::HS256,
    )
    .expect("HMAC signing works");
    format!("{message}.{sig}")
}

/// A token with no signature: `alg` as given, empty or fake signature.
pub fn unsigned(alg: &str, claims: &Value, signature: &str) -> String {
    let header = json!({"alg": alg, "typ": "at+jwt"});
    format!(
        "{}.{}.{signature}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    )
}

/// The JOSE name of an algorithm.
pub fn alg_name(alg: Algorithm) -> &'static str {
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

/// Valid RFC 9068 claims for `issuer` and `audience`, with `scope`.
pub fn claims(issuer: &str, audience: &str, scope: &str) -> Value {
    let now = now();
    json!({
        "iss": issuer,
        "sub": "alice",
        "aud": audience,
        "client_id": "test-client",
        "scope": scope,
        "iat": now,
        "exp": now + 600,
        "jti": format!("jti-{}", rand_suffix()),
    })
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed) ^ (now() as u64).rotate_left(20)
}

fn mcp_guard_install_provider() {
    let _ = jsonwebtoken::crypto::CryptoProvider::install_default(
        &jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER,
    );
}
