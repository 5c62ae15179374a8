//! Verification keys: one key with its one algorithm, and the key set a token's `kid`
//! chooses from.

use std::collections::HashMap;
use std::sync::{Arc, Once};

use aws_lc_rs::signature::{self as lc, ParsedPublicKey, VerificationAlgorithm};
use base64::Engine as _;
use jsonwebtoken::jwk::{
    AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm, PublicKeyUse,
};
use jsonwebtoken::{Algorithm, DecodingKey, DecodingKeyKind};

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

/// One verification key with the single algorithm it may be used with. The key material is
/// parsed (and, for EC keys, its point checked) once, when the key is loaded: a verification
/// is the signature check alone.
#[derive(Clone)]
pub struct VerifyingKey {
    kid: Option<Arc<str>>,
    alg: Algorithm,
    key: Arc<ParsedPublicKey>,
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
    /// A key for exactly one asymmetric algorithm. Key material that does not parse as a
    /// public key of the algorithm's type is refused here ([`KeyError::Material`]), not at
    /// the first token.
    pub fn new(kid: Option<&str>, alg: Algorithm, key: DecodingKey) -> Result<Self, KeyError> {
        ensure_crypto_provider();
        if !SUPPORTED_ALGORITHMS.contains(&alg) {
            return Err(KeyError::Symmetric);
        }
        if key.family() != alg.family() {
            return Err(KeyError::Type);
        }
        let key = parse_public_key(&key, alg)?;
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        Ok(Self {
            kid: kid.map(Arc::from),
            alg,
            key: Arc::new(key),
            fingerprint: NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        })
    }

    /// The `kid`, shared.
    pub(crate) fn shared_kid(&self) -> Option<Arc<str>> {
        self.kid.clone()
    }

    /// Identifies the key material (stable across refetches of the same JWK).
    pub(crate) fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    /// Whether `signature` (base64url) signs `message` under this key and its one algorithm.
    pub(super) fn signs(&self, message: &[u8], signature: &str) -> bool {
        // The largest signature verified is 512 bytes (RSA-4096); RSA keys up to 8192 bits
        // sign 1024. Decoding into the stack avoids an allocation per verification.
        let mut decoded = [0u8; 1024];
        match base64::engine::general_purpose::URL_SAFE_NO_PAD.decode_slice(signature, &mut decoded)
        {
            Ok(n) => self.key.verify_sig(message, &decoded[..n]).is_ok(),
            Err(_) => false,
        }
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

/// aws-lc-rs's verification algorithm for a JWS algorithm: the ones jsonwebtoken's aws-lc-rs
/// provider uses, so that the same keys and signatures are accepted (RSA moduli of 2048 to
/// 8192 bits).
fn verification_algorithm(alg: Algorithm) -> Result<&'static dyn VerificationAlgorithm, KeyError> {
    Ok(match alg {
        Algorithm::RS256 => &lc::RSA_PKCS1_2048_8192_SHA256,
        Algorithm::RS384 => &lc::RSA_PKCS1_2048_8192_SHA384,
        Algorithm::RS512 => &lc::RSA_PKCS1_2048_8192_SHA512,
        Algorithm::PS256 => &lc::RSA_PSS_2048_8192_SHA256,
        Algorithm::PS384 => &lc::RSA_PSS_2048_8192_SHA384,
        Algorithm::PS512 => &lc::RSA_PSS_2048_8192_SHA512,
        Algorithm::ES256 => &lc::ECDSA_P256_SHA256_FIXED,
        Algorithm::ES384 => &lc::ECDSA_P384_SHA384_FIXED,
        Algorithm::EdDSA => &lc::ED25519,
        other => return Err(KeyError::Algorithm(format!("{other:?}"))),
    })
}

/// Parses a decoding key's material once: RSA as PKCS#1 or SPKI DER or as (n, e); EC as an
/// uncompressed point or SPKI DER; Ed25519 as its 32 bytes or SPKI DER.
fn parse_public_key(key: &DecodingKey, alg: Algorithm) -> Result<ParsedPublicKey, KeyError> {
    let verification = verification_algorithm(alg)?;
    let refused = |e: aws_lc_rs::error::KeyRejected| KeyError::Material(e.to_string());
    match key.kind() {
        DecodingKeyKind::SecretOrDer(bytes) => {
            ParsedPublicKey::new(verification, bytes).map_err(refused)
        }
        DecodingKeyKind::RsaModulusExponent { n, e } => {
            use aws_lc_rs::encoding::AsDer as _;
            let der = aws_lc_rs::rsa::PublicKeyComponents {
                n: n.as_slice(),
                e: e.as_slice(),
            }
            .as_der()
            .map_err(|_| KeyError::Material("the RSA modulus or exponent is invalid".into()))?;
            ParsedPublicKey::new(verification, der.as_ref()).map_err(refused)
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};

    fn b64(bytes: &[u8]) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    /// A fresh P-256 key pair and its public JWK.
    fn ec_key() -> (EcdsaKeyPair, Jwk) {
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                .expect("key");
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref())
            .expect("pair");
        let point = pair.public_key().as_ref().to_vec();
        let (x, y) = point[1..].split_at(32);
        let jwk = serde_json::from_value(serde_json::json!({
            "kty": "EC", "crv": "P-256", "alg": "ES256", "kid": "k", "x": b64(x), "y": b64(y),
        }))
        .expect("jwk");
        (pair, jwk)
    }

    #[test]
    fn a_parsed_key_verifies_its_signatures_and_nothing_else() {
        let (pair, jwk) = ec_key();
        let key = VerifyingKey::from_jwk(&jwk).expect("usable");
        let message = b"header.payload";
        let signature = pair.sign(&SystemRandom::new(), message).expect("signature");
        let encoded = b64(signature.as_ref());
        assert!(key.signs(message, &encoded));
        assert!(!key.signs(b"header.payloaD", &encoded));
        // Padding, another alphabet, an oversized or empty signature: refused, no panic.
        assert!(!key.signs(message, &format!("{encoded}=")));
        let standard = encoded.replace('-', "+").replace('_', "/");
        if standard != encoded {
            assert!(!key.signs(message, &standard));
        }
        assert!(!key.signs(message, &format!("+{}", &encoded[1..])));
        assert!(!key.signs(message, &"A".repeat(4096)));
        assert!(!key.signs(message, ""));
    }

    #[test]
    fn a_point_off_the_curve_is_refused_when_the_key_loads() {
        let (_, good) = ec_key();
        // The same x with a y that no longer solves the curve equation.
        let mut off = good.clone();
        let AlgorithmParameters::EllipticCurve(ec) = &mut off.algorithm else {
            unreachable!("an EC key")
        };
        let mut y = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&ec.y)
            .expect("y");
        y[31] ^= 1;
        ec.y = b64(&y);
        assert!(matches!(
            VerifyingKey::from_jwk(&off),
            Err(KeyError::Material(_))
        ));
        let (set, skipped) = KeySet::from_jwks(
            &JwkSet {
                keys: vec![off, good],
            },
            &SUPPORTED_ALGORITHMS,
        );
        assert_eq!((set.len(), skipped.len()), (1, 1));
    }
}
