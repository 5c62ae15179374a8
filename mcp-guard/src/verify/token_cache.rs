//! The verified-token cache: a client presents the same token again and again, so the
//! signature is verified once and the principal reused.
//!
//! - keyed by the SHA-256 of the token, never the token;
//! - an entry is used only while the verifier itself would accept the token (`exp` plus the
//!   leeway, the same predicate as a fresh verification) and while the key that verified it
//!   is still in its issuer's current key set with the same material (rotation invalidates);
//! - bounded: a fixed number of entries spread over shards, expired entries dropped first;
//! - concurrent misses for one token verify it once (the others wait for that result);
//! - failures are not cached: an invalid token is verified (and refused) every time.
//!
//! The trade-off: a token revoked at its authorization server stays usable until it expires,
//! exactly as without the cache (JWT verification never asks the authorization server).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::principal::Principal;

const SHARDS: usize = 16;

/// What a cached verification remembers.
#[derive(Clone)]
pub(crate) struct Verified {
    pub(crate) principal: Principal,
    /// The token is acceptable while `now < valid_until` (unix seconds: `exp` + leeway).
    pub(crate) valid_until: u64,
    /// Which issuer verified it.
    pub(crate) issuer: usize,
    /// The key, by `kid` and fingerprint.
    pub(crate) kid: Option<Arc<str>>,
    pub(crate) fingerprint: u64,
}

type Slot = Arc<tokio::sync::OnceCell<Verified>>;

pub(crate) struct TokenCache {
    shards: Vec<RwLock<HashMap<[u8; 32], Slot>>>,
    per_shard: usize,
}

impl TokenCache {
    /// A cache of about `capacity` entries.
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| RwLock::new(HashMap::new())).collect(),
            per_shard: capacity.div_ceil(SHARDS).max(1),
        }
    }

    pub(crate) fn key(token: &str) -> [u8; 32] {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
        let mut key = [0u8; 32];
        key.copy_from_slice(digest.as_ref());
        key
    }

    fn shard(&self, key: &[u8; 32]) -> &RwLock<HashMap<[u8; 32], Slot>> {
        &self.shards[usize::from(key[0]) % SHARDS]
    }

    /// The slot of a token: the existing one, or a new empty one that the caller fills.
    pub(crate) fn slot(&self, key: &[u8; 32], now: u64) -> Slot {
        let shard = self.shard(key);
        if let Some(slot) = shard.read().unwrap_or_else(|p| p.into_inner()).get(key) {
            return slot.clone();
        }
        let mut map = shard.write().unwrap_or_else(|p| p.into_inner());
        if let Some(slot) = map.get(key) {
            return slot.clone();
        }
        if map.len() >= self.per_shard {
            // Expired and failed entries first; then any, down to three quarters.
            map.retain(|_, s| s.get().is_some_and(|v| now < v.valid_until));
            if map.len() >= self.per_shard {
                let excess = map.len() + 1 - self.per_shard * 3 / 4;
                let victims: Vec<[u8; 32]> = map.keys().take(excess).copied().collect();
                for k in victims {
                    map.remove(&k);
                }
            }
        }
        let slot = Slot::default();
        map.insert(*key, slot.clone());
        slot
    }

    /// Forgets a token (failed verification, expired entry, rotated key).
    pub(crate) fn remove(&self, key: &[u8; 32], slot: &Slot) {
        let mut map = self.shard(key).write().unwrap_or_else(|p| p.into_inner());
        if map.get(key).is_some_and(|s| Arc::ptr_eq(s, slot)) {
            map.remove(key);
        }
    }

    /// Number of entries (for tests and monitoring).
    pub(crate) fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.read().unwrap_or_else(|p| p.into_inner()).len())
            .sum()
    }
}
