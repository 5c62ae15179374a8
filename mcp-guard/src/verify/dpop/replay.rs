//! The proofs already used (RFC 9449 §11.1): each `jti`, per key, remembered until its proof
//! could no longer be accepted anyway (`iat` + the window). Bounded: when the cache is full
//! of proofs still acceptable, new proofs are refused (the server fails closed) rather than
//! forgetting one that could then be replayed.

use std::collections::HashMap;
use std::sync::Mutex;

const SHARDS: usize = 16;

pub(crate) struct ReplayCache {
    shards: Vec<Mutex<HashMap<[u8; 16], u64>>>,
    per_shard: usize,
}

impl std::fmt::Debug for ReplayCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplayCache")
            .field("capacity", &(self.per_shard * SHARDS))
            .finish_non_exhaustive()
    }
}

/// Why a proof cannot be recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NotRecorded {
    /// This key already used this `jti`.
    Replayed,
    /// Every entry is a proof that could still be replayed.
    Full,
}

impl ReplayCache {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            per_shard: capacity.div_ceil(SHARDS).max(1),
        }
    }

    /// Records that the key `jkt` used `jti`, remembered while `now < until`.
    pub(crate) fn record(
        &self,
        jkt: &str,
        jti: &str,
        until: u64,
        now: u64,
    ) -> Result<(), NotRecorded> {
        let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
        ctx.update(jkt.as_bytes());
        ctx.update(&[0]);
        ctx.update(jti.as_bytes());
        let digest = ctx.finish();
        let mut key = [0u8; 16];
        key.copy_from_slice(&digest.as_ref()[..16]);
        let mut map = self.shards[usize::from(key[0]) % SHARDS]
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(&expires) = map.get(&key) {
            if now < expires {
                return Err(NotRecorded::Replayed);
            }
            map.remove(&key);
        }
        if map.len() >= self.per_shard {
            map.retain(|_, expires| now < *expires);
            if map.len() >= self.per_shard {
                return Err(NotRecorded::Full);
            }
        }
        map.insert(key, until);
        Ok(())
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).len())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jti_is_refused_again_for_the_same_key_until_it_expires() {
        let c = ReplayCache::new(1_000);
        assert_eq!(c.record("k1", "a", 100, 10), Ok(()));
        assert_eq!(c.record("k1", "a", 100, 50), Err(NotRecorded::Replayed));
        // Another key's `a` is another proof.
        assert_eq!(c.record("k2", "a", 100, 50), Ok(()));
        // Past its window the proof would be refused as stale anyway.
        assert_eq!(c.record("k1", "a", 200, 100), Ok(()));
    }

    #[test]
    fn a_full_cache_fails_closed_until_entries_expire() {
        let c = ReplayCache::new(16);
        let mut refused = 0;
        for i in 0..200 {
            if c.record("k", &i.to_string(), 100, 10) == Err(NotRecorded::Full) {
                refused += 1;
            }
        }
        assert!(refused > 0, "a bounded cache refuses once full");
        assert!(c.len() <= 16 + SHARDS);
        // Once the recorded proofs are stale, room is made again.
        assert_eq!(c.record("k", "new", 300, 100), Ok(()));
    }
}
