//! Server-issued DPoP nonces (RFC 9449 §9), kept by nobody: a nonce is the time it was
//! issued and a MAC over it, so any instance holding the same secret accepts it until it is
//! older than its lifetime, and nothing is stored per nonce.

use aws_lc_rs::hmac;
use base64::Engine as _;

const MAC_BYTES: usize = 16;
const DOMAIN: &[u8] = b"mcp-guard dpop nonce v1";

/// Issues and checks nonces.
pub(crate) struct Nonces {
    key: hmac::Key,
    /// Seconds a nonce stays valid.
    lifetime: u64,
}

impl std::fmt::Debug for Nonces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Nonces")
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

/// What a presented nonce is worth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NonceCheck {
    /// Issued by a holder of the secret, `age` seconds ago, within its lifetime.
    Valid { age: u64 },
    /// Not one of ours, expired, or from the future.
    Invalid,
}

impl Nonces {
    pub(crate) fn new(secret: &[u8], lifetime: u64) -> Self {
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
            lifetime: lifetime.max(1),
        }
    }

    pub(crate) fn lifetime(&self) -> u64 {
        self.lifetime
    }

    fn mac(&self, issued: u64) -> [u8; MAC_BYTES] {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(DOMAIN);
        ctx.update(&issued.to_be_bytes());
        let tag = ctx.sign();
        let mut out = [0u8; MAC_BYTES];
        out.copy_from_slice(&tag.as_ref()[..MAC_BYTES]);
        out
    }

    /// A fresh nonce, issued `now`.
    pub(crate) fn issue(&self, now: u64) -> String {
        let mut raw = [0u8; 8 + MAC_BYTES];
        raw[..8].copy_from_slice(&now.to_be_bytes());
        raw[8..].copy_from_slice(&self.mac(now));
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
    }

    /// Whether `nonce` is one of ours and still valid at `now`.
    pub(crate) fn check(&self, nonce: &str, now: u64) -> NonceCheck {
        let Ok(raw) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(nonce) else {
            return NonceCheck::Invalid;
        };
        if raw.len() != 8 + MAC_BYTES {
            return NonceCheck::Invalid;
        }
        let mut issued = [0u8; 8];
        issued.copy_from_slice(&raw[..8]);
        let issued = u64::from_be_bytes(issued);
        let expected = self.mac(issued);
        if aws_lc_rs::constant_time::verify_slices_are_equal(&expected, &raw[8..]).is_err() {
            return NonceCheck::Invalid;
        }
        // A nonce from the future was made with our secret but another clock: a second's
        // drift between instances is tolerated.
        match now.checked_sub(issued) {
            Some(age) if age < self.lifetime => NonceCheck::Valid { age },
            None if issued - now <= 1 => NonceCheck::Valid { age: 0 },
            _ => NonceCheck::Invalid,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nonce_is_valid_for_its_lifetime_and_only_with_the_secret() {
        let nonces = Nonces::new(&[7; 32], 60);
        let n = nonces.issue(1_000);
        assert_eq!(nonces.check(&n, 1_000), NonceCheck::Valid { age: 0 });
        assert_eq!(nonces.check(&n, 1_059), NonceCheck::Valid { age: 59 });
        assert_eq!(nonces.check(&n, 1_060), NonceCheck::Invalid);
        assert_eq!(nonces.check(&n, 998), NonceCheck::Invalid);
        assert_eq!(
            Nonces::new(&[8; 32], 60).check(&n, 1_000),
            NonceCheck::Invalid
        );
        // Another instance with the same secret accepts it.
        assert_eq!(
            Nonces::new(&[7; 32], 60).check(&n, 1_010),
            NonceCheck::Valid { age: 10 }
        );
    }

    #[test]
    fn tampered_or_malformed_nonces_are_invalid() {
        let nonces = Nonces::new(&[7; 32], 60);
        let n = nonces.issue(1_000);
        let mut raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&n)
            .unwrap();
        raw[7] ^= 1; // another issue time under the same MAC
        let forged = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&raw);
        for bad in [
            forged.as_str(),
            "",
            "not base64!",
            "AAAA",
            &n[..n.len() - 2],
        ] {
            assert_eq!(nonces.check(bad, 1_000), NonceCheck::Invalid, "{bad:?}");
        }
    }
}
