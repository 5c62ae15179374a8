//! The verified-token cache: hits skip verification, and an entry never outlives what a fresh
//! verification would accept (expiry, key rotation); bounded; one verification for
//! concurrent misses; failures never cached; once full, admission on the second verification,
//! so that one-use and refused tokens evict nothing.

use std::sync::Arc;
use std::time::Duration;

use mcp_guard::jwks::KeySourceConfig;
use mcp_guard::{Guard, Issuer};
use mcp_guard_tests::{TestIssuer, TestKey, claims, now};
use serde_json::json;

const RESOURCE: &str = "http://127.0.0.1:9/mcp";

fn guard(
    issuer: &TestIssuer,
    configure: impl FnOnce(mcp_guard::GuardBuilder) -> mcp_guard::GuardBuilder,
) -> Guard {
    let mut keys = KeySourceConfig::default();
    keys.refetch_cooldown = Duration::ZERO;
    configure(Guard::builder().resource(RESOURCE).issuer(
        Issuer::with_jwks_uri(issuer.issuer.clone(), issuer.jwks_uri()).key_source_config(keys),
    ))
    .build()
    .expect("guard builds")
}

#[tokio::test]
async fn a_token_seen_again_is_not_verified_again() {
    let key = TestKey::rsa1();
    let issuer = TestIssuer::start(vec![key.jwk()]).await;
    let g = guard(&issuer, |b| b);
    let t1 = key.sign(&claims(&issuer.issuer, RESOURCE, "files:read"));
    let t2 = key.sign(&claims(&issuer.issuer, RESOURCE, "files:read"));
    for _ in 0..5 {
        assert_eq!(g.authenticate(&t1).await.unwrap().subject(), "alice");
    }
    assert_eq!(g.verification_count(), 1);
    g.authenticate(&t2).await.unwrap();
    assert_eq!(g.verification_count(), 2);
    assert_eq!(g.token_cache_len(), 2);
}

#[tokio::test]
async fn without_the_cache_every_request_verifies() {
    let key = TestKey::rsa1();
    let issuer = TestIssuer::start(vec![key.jwk()]).await;
    let g = guard(&issuer, |b| b.token_cache_capacity(0));
    let t = key.sign(&claims(&issuer.issuer, RESOURCE, ""));
    for _ in 0..3 {
        g.authenticate(&t).await.unwrap();
    }
    assert_eq!(g.verification_count(), 3);
    assert_eq!(g.token_cache_len(), 0);
}

#[tokio::test]
async fn a_cached_token_expires_when_a_fresh_verification_would_refuse_it() {
    let key = TestKey::rsa1();
    let issuer = TestIssuer::start(vec![key.jwk()]).await;
    let g = guard(&issuer, |b| b.leeway(Duration::ZERO));
    let mut c = claims(&issuer.issuer, RESOURCE, "");
    c["exp"] = json!(now() + 2);
    let t = key.sign(&c);
    g.authenticate(&t).await.expect("valid now");
    assert_eq!(g.token_cache_len(), 1);
    // Bounded wait past `exp` (leeway zero).
    tokio::time::sleep(Duration::from_millis(3200)).await;
    let err = g
        .authenticate(&t)
        .await
        .expect_err("expired: the cache must not serve it");
    assert!(err.to_string().contains("expired"), "{err}");
}

#[tokio::test]
async fn a_rotated_out_key_invalidates_the_tokens_it_verified() {
    let old = TestKey::rsa1();
    let new = TestKey::rsa2();
    let issuer = TestIssuer::start(vec![old.jwk()]).await;
    let g = guard(&issuer, |b| b);
    let t_old = old.sign(&claims(&issuer.issuer, RESOURCE, ""));
    g.authenticate(&t_old).await.unwrap();
    assert!(g.authenticate(&t_old).await.is_ok());
    assert_eq!(g.verification_count(), 1);

    // The issuer rotates: only the new key is published. A token with the new kid makes the
    // guard refetch (cooldown zero).
    issuer.set_keys(vec![new.jwk()]);
    let t_new = new.sign(&claims(&issuer.issuer, RESOURCE, ""));
    g.authenticate(&t_new)
        .await
        .expect("new key accepted after one refetch");
    let err = g
        .authenticate(&t_old)
        .await
        .expect_err("the old key is gone");
    assert!(err.to_string().contains("unknown key"), "{err}");
}

#[tokio::test]
async fn the_same_kid_with_new_material_invalidates_too() {
    let old = TestKey::rsa1();
    let issuer = TestIssuer::start(vec![old.jwk()]).await;
    let g = guard(&issuer, |b| b);
    let t_old = old.sign(&claims(&issuer.issuer, RESOURCE, ""));
    g.authenticate(&t_old).await.unwrap();
    // Same kid "rsa1", other key material; then a refetch.
    issuer.set_keys(vec![
        TestKey::rsa2().with_kid("rsa1").jwk(),
        TestKey::ec256().jwk(),
    ]);
    let t_ec = TestKey::ec256().sign(&claims(&issuer.issuer, RESOURCE, ""));
    g.authenticate(&t_ec)
        .await
        .expect("refetch brought the EC key");
    assert!(
        g.authenticate(&t_old).await.is_err(),
        "signed by material no longer published"
    );
}

#[tokio::test]
async fn the_cache_is_bounded() {
    let key = TestKey::ec256();
    let issuer = TestIssuer::start(vec![key.jwk()]).await;
    let g = guard(&issuer, |b| b.token_cache_capacity(32));
    for i in 0..200 {
        let mut c = claims(&issuer.issuer, RESOURCE, "");
        c["jti"] = json!(format!("bound-{i}"));
        g.authenticate(&key.sign(&c)).await.unwrap();
        assert!(
            g.token_cache_len() <= 32,
            "after {i}: {}",
            g.token_cache_len()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_misses_for_one_token_verify_it_once() {
    let key = TestKey::rsa1();
    let issuer = TestIssuer::start(vec![key.jwk()]).await;
    let g = Arc::new(guard(&issuer, |b| b));
    // Load the keys first so that all calls race on the verification itself.
    g.authenticate(&key.sign(&claims(&issuer.issuer, RESOURCE, "")))
        .await
        .unwrap();
    let before = g.verification_count();
    let t = Arc::new(key.sign(&claims(&issuer.issuer, RESOURCE, "files:read")));
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..64 {
        let (g, t) = (g.clone(), t.clone());
        set.spawn(async move { g.authenticate(&t).await.map(|p| p.subject().to_owned()) });
    }
    while let Some(r) = set.join_next().await {
        assert_eq!(r.unwrap().unwrap(), "alice");
    }
    assert_eq!(g.verification_count() - before, 1);
}

#[tokio::test]
async fn refused_tokens_are_never_cached() {
    let key = TestKey::rsa1();
    let issuer = TestIssuer::start(vec![key.jwk()]).await;
    let g = guard(&issuer, |b| b);
    let wrong_aud = key.sign(&claims(&issuer.issuer, "http://127.0.0.1:9/other", ""));
    for _ in 0..3 {
        assert!(g.authenticate(&wrong_aud).await.is_err());
    }
    assert_eq!(
        g.verification_count(),
        3,
        "each attempt is verified and refused"
    );
    assert_eq!(g.token_cache_len(), 0);
}

/// The example servers' `--token-cache-capacity`: unset, the guard's default cache; 0
/// verifies every request's token.
#[tokio::test]
async fn the_example_servers_cache_size_is_an_option() {
    use mcp_guard_examples::{files, server::ServerOptions};
    let key = TestKey::ec256();
    let issuer = TestIssuer::start(vec![key.jwk()]).await;
    let options = |capacity: Option<usize>| {
        let mut o = ServerOptions::new(&issuer.issuer, RESOURCE, "127.0.0.1:9".parse().unwrap());
        o.jwks_uris = vec![issuer.jwks_uri()];
        o.token_cache_capacity = capacity;
        o
    };
    let token = key.sign(&claims(&issuer.issuer, RESOURCE, "files:read"));
    for (capacity, verifications) in [(None, 1), (Some(0), 3)] {
        let g = files::guard(&options(capacity)).expect("guard builds");
        for _ in 0..3 {
            g.authenticate(&token).await.unwrap();
        }
        assert_eq!(g.verification_count(), verifications, "{capacity:?}");
    }
}

/// A guard whose 16-entry verified-token cache (16 shards, one entry each) is full: new
/// tokens, each used once, until every shard holds one; `cached` are the 16 it holds.
struct Full {
    key: TestKey,
    issuer: TestIssuer,
    g: Guard,
    cached: Vec<String>,
}

impl Full {
    async fn new() -> Self {
        let key = TestKey::ec256();
        let issuer = TestIssuer::start(vec![key.jwk()]).await;
        let g = guard(&issuer, |b| b.token_cache_capacity(16));
        let mut full = Self {
            key,
            issuer,
            g,
            cached: Vec::new(),
        };
        for i in 0..2000 {
            let t = full.token(RESOURCE, &format!("fill-{i}"));
            let len = full.g.token_cache_len();
            full.g.authenticate(&t).await.unwrap();
            if full.g.token_cache_len() > len {
                full.cached.push(t);
            }
            if full.cached.len() == 16 {
                assert_eq!(full.g.token_cache_len(), 16);
                return full;
            }
        }
        panic!(
            "2000 tokens did not fill 16 shards: {}",
            full.g.token_cache_len()
        );
    }

    /// A new token for `audience`, told apart by its `jti`.
    fn token(&self, audience: &str, jti: &str) -> String {
        let mut c = claims(&self.issuer.issuer, audience, "files:read");
        c["jti"] = json!(jti);
        self.key.sign(&c)
    }

    /// Asserts that every token cached at the start still is.
    async fn assert_still_cached(&self, why: &str) {
        let before = self.g.verification_count();
        for t in &self.cached {
            self.g.authenticate(t).await.unwrap();
        }
        assert_eq!(self.g.verification_count(), before, "{why}");
        assert_eq!(self.g.token_cache_len(), 16, "bounded");
    }
}

#[tokio::test]
async fn a_full_cache_admits_a_token_on_its_second_verification() {
    let full = Full::new().await;
    let g = &full.g;
    let t = full.token(RESOURCE, "reused");
    let before = g.verification_count();
    g.authenticate(&t).await.unwrap();
    assert_eq!(g.verification_count() - before, 1);
    assert_eq!(g.token_cache_len(), 16, "not admitted on first use");
    g.authenticate(&t).await.unwrap();
    assert_eq!(g.verification_count() - before, 2, "verified again");
    for _ in 0..3 {
        assert_eq!(g.authenticate(&t).await.unwrap().subject(), "alice");
    }
    assert_eq!(
        g.verification_count() - before,
        2,
        "admitted on its second verification"
    );
    assert_eq!(g.token_cache_len(), 16, "bounded");
}

#[tokio::test]
async fn one_use_tokens_never_evict_the_tokens_in_use() {
    let full = Full::new().await;
    let before = full.g.verification_count();
    // A client that mints a token per call.
    for i in 0..300 {
        let t = full.token(RESOURCE, &format!("once-{i}"));
        full.g.authenticate(&t).await.unwrap();
    }
    assert_eq!(full.g.verification_count() - before, 300);
    full.assert_still_cached("every token cached before the flood still is")
        .await;
}

#[tokio::test]
async fn refused_tokens_never_evict_anything() {
    let full = Full::new().await;
    let refused_before = full.g.verification_count();
    // Each twice: a second sighting admits only a token that verified.
    for i in 0..50 {
        let wrong_audience = full.token("http://127.0.0.1:9/other", &format!("other-{i}"));
        // A cached token's header and signature over another valid token's payload.
        let other = full.token(RESOURCE, &format!("forged-{i}"));
        let [header, _, signature] = parts(&full.cached[0]);
        let [_, payload, _] = parts(&other);
        let forged = format!("{header}.{payload}.{signature}");
        let garbage = format!("{header}.{payload}.{i}");
        for t in [&wrong_audience, &forged, &garbage] {
            for _ in 0..2 {
                assert!(full.g.authenticate(t).await.is_err());
            }
        }
    }
    assert!(full.g.verification_count() - refused_before >= 200);
    full.assert_still_cached("the cached tokens are all still cached")
        .await;
}

fn parts(token: &str) -> [&str; 3] {
    let mut parts = token.split('.');
    [(); 3].map(|()| parts.next().expect("three parts"))
}
