//! The verified-token cache: a client presents the same token again and again, so the
//! signature is verified once and the principal reused.
//!
//! - keyed by the SHA-256 of the token, never the token;
//! - an entry is used only while the verifier itself would accept the token (`exp` plus the
//!   leeway, the same predicate as a fresh verification) and while the key that verified it
//!   is still in its issuer's current key set with the same material (rotation invalidates);
//! - bounded: a fixed number of entries spread over shards, expired entries dropped first;
//! - admission on second use once full: while a shard has room, a token takes a slot before
//!   it is verified; once the shard is full, a token is verified first and then only
//!   remembered in the shard's doorkeeper (a small table of fingerprints), and admitted,
//!   evicting older entries, when it is verified a second time. A client minting a token per
//!   call, or a flood of one-use tokens, never evicts the tokens clients reuse, and only a
//!   token that verified can evict anything. A fingerprint overwritten before its token
//!   returns (another token at the same place) only delays that token's admission, at worst
//!   to what a server without the cache pays; a full shard's expired entries are cleared
//!   when a token is next admitted there;
//! - concurrent misses for one token verify it once (the others wait for that result) while
//!   its shard has room;
//! - failures are not cached: an invalid token is verified (and refused) every time, and never
//!   takes a slot of a full shard or a place in its doorkeeper.
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
    shards: Vec<RwLock<Shard>>,
    per_shard: usize,
}

#[derive(Default)]
struct Shard {
    entries: HashMap<[u8; 32], Slot>,
    /// Fingerprints of tokens verified while the shard was full, not yet admitted:
    /// direct-mapped (a newer token overwrites an older one at the same place), allocated
    /// when the shard first fills, `0` for an empty place.
    doorkeeper: Vec<u32>,
}

/// Doorkeeper places per entry of a shard.
const DOORKEEPER_PER_ENTRY: usize = 4;

impl Shard {
    /// Whether the token was verified before while the shard was full; if not, it is
    /// remembered now.
    fn seen_before(&mut self, key: &[u8; 32], per_shard: usize) -> bool {
        if self.doorkeeper.is_empty() {
            self.doorkeeper = vec![0; (per_shard * DOORKEEPER_PER_ENTRY).next_power_of_two()];
        }
        // Bytes the shard's index (`key[0]`) does not use; the key is a SHA-256, so they are
        // uniform. A fingerprint is never 0, the empty place.
        let place = u32::from_le_bytes([key[8], key[9], key[10], key[11]]) as usize
            & (self.doorkeeper.len() - 1);
        let print = u32::from_le_bytes([key[12], key[13], key[14], key[15]]) | 1;
        let known = self.doorkeeper[place] == print;
        self.doorkeeper[place] = if known { 0 } else { print };
        known
    }

    /// Makes room for one entry: expired and failed entries first; then any, down to three
    /// quarters of the shard.
    fn make_room(&mut self, per_shard: usize, now: u64) {
        self.entries
            .retain(|_, s| s.get().is_some_and(|v| now < v.valid_until));
        if self.entries.len() >= per_shard {
            let excess = self.entries.len() + 1 - per_shard * 3 / 4;
            let victims: Vec<[u8; 32]> = self.entries.keys().take(excess).copied().collect();
            for k in victims {
                self.entries.remove(&k);
            }
        }
    }
}

impl TokenCache {
    /// A cache of about `capacity` entries.
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| RwLock::default()).collect(),
            per_shard: capacity.div_ceil(SHARDS).max(1),
        }
    }

    pub(crate) fn key(token: &str) -> [u8; 32] {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
        let mut key = [0u8; 32];
        key.copy_from_slice(digest.as_ref());
        key
    }

    fn shard(&self, key: &[u8; 32]) -> &RwLock<Shard> {
        &self.shards[usize::from(key[0]) % SHARDS]
    }

    /// The principal of a token verified before, if `accept` still accepts its
    /// verification; looked up under the shard's read lock.
    pub(crate) fn get(
        &self,
        key: &[u8; 32],
        accept: impl FnOnce(&Verified) -> bool,
    ) -> Option<Principal> {
        let shard = self.shard(key).read().unwrap_or_else(|p| p.into_inner());
        let verified = shard.entries.get(key)?.get()?;
        accept(verified).then(|| verified.principal.clone())
    }

    /// The slot of a token: the existing one, or a new empty one that the caller fills; `None`
    /// when the token has no slot and its shard is full: the caller verifies the token and
    /// then [`offer`](Self::offer)s the result.
    pub(crate) fn slot(&self, key: &[u8; 32]) -> Option<Slot> {
        let shard = self.shard(key);
        if let Some(slot) = shard
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .entries
            .get(key)
        {
            return Some(slot.clone());
        }
        let mut shard = shard.write().unwrap_or_else(|p| p.into_inner());
        if let Some(slot) = shard.entries.get(key) {
            return Some(slot.clone());
        }
        if shard.entries.len() >= self.per_shard {
            return None;
        }
        let slot = Slot::default();
        shard.entries.insert(*key, slot.clone());
        Some(slot)
    }

    /// A verification made without a slot (the shard was full): kept if the shard has room
    /// again or if the token was verified before while it was full, else only remembered.
    pub(crate) fn offer(&self, key: &[u8; 32], verified: &Verified, now: u64) {
        let mut shard = self.shard(key).write().unwrap_or_else(|p| p.into_inner());
        if shard.entries.contains_key(key) {
            return;
        }
        if shard.entries.len() >= self.per_shard {
            if !shard.seen_before(key, self.per_shard) {
                return;
            }
            shard.make_room(self.per_shard, now);
        }
        let slot = Slot::new(tokio::sync::OnceCell::new_with(Some(verified.clone())));
        shard.entries.insert(*key, slot);
    }

    /// Forgets a token (failed verification, expired entry, rotated key).
    pub(crate) fn remove(&self, key: &[u8; 32], slot: &Slot) {
        let mut shard = self.shard(key).write().unwrap_or_else(|p| p.into_inner());
        if shard.entries.get(key).is_some_and(|s| Arc::ptr_eq(s, slot)) {
            shard.entries.remove(key);
        }
    }

    /// Number of entries (for tests and monitoring).
    pub(crate) fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.read().unwrap_or_else(|p| p.into_inner()).entries.len())
            .sum()
    }
}
