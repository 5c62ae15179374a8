//! Faults under way: keys rotated while requests are in flight, issuer metadata that moves
//! the key set, and the clock-skew edges of the leeway. Never a 2xx for a bad token.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use mcp_guard_tests::{TestIssuer, TestKey, TestServer, claims, now};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_rotated_under_load_never_let_a_bad_token_through() {
    let old = TestKey::rsa1();
    let new = TestKey::ec256();
    let issuer = TestIssuer::start(vec![old.jwk()]).await;
    let server = Arc::new(TestServer::start_with(&issuer, |o| o.key_cooldown_secs = 0).await);
    let good_old = old.sign(&claims(&issuer.issuer, &server.mcp_url, "files:read"));
    let good_new = new.sign(&claims(&issuer.issuer, &server.mcp_url, "files:read"));
    let mut forged = claims(&issuer.issuer, &server.mcp_url, "files:admin");
    forged["sub"] = json!("mallory");
    let forged = TestKey::rsa2().with_kid("rsa1").sign(&forged);
    let mut expired = claims(&issuer.issuer, &server.mcp_url, "files:read");
    expired["exp"] = json!(now() - 600);
    let expired = new.sign(&expired);
    assert_eq!(
        server
            .call(&good_old, "read_file", json!({"path": "/x"}))
            .await
            .status,
        200
    );

    let rotated = Arc::new(AtomicBool::new(false));
    let (false_accepts, new_ok, new_refused) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
    );
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..8usize {
        let (server, rotated) = (server.clone(), rotated.clone());
        let (false_accepts, new_ok, new_refused) =
            (false_accepts.clone(), new_ok.clone(), new_refused.clone());
        let (good_old, good_new, forged, expired) = (
            good_old.clone(),
            good_new.clone(),
            forged.clone(),
            expired.clone(),
        );
        tasks.spawn(async move {
            for i in 0..40usize {
                let bad = if (worker + i) % 2 == 0 {
                    &forged
                } else {
                    &expired
                };
                let a = server.call(bad, "read_file", json!({"path": "/x"})).await;
                if (200..300).contains(&a.status) {
                    false_accepts.fetch_add(1, Ordering::SeqCst);
                }
                assert_eq!(a.status, 401, "a bad token gets 401: {a:?}");
                if rotated.load(Ordering::SeqCst) {
                    let a = server
                        .call(&good_new, "read_file", json!({"path": "/x"}))
                        .await;
                    if a.status == 200 {
                        new_ok.fetch_add(1, Ordering::SeqCst);
                    } else {
                        new_refused.fetch_add(1, Ordering::SeqCst);
                    }
                } else {
                    let a = server
                        .call(&good_old, "read_file", json!({"path": "/x"}))
                        .await;
                    // The flag was read before the call: a rotation while the call was in
                    // flight withdraws the old key, and only then may it be refused.
                    if a.status != 200 {
                        assert!(
                            rotated.load(Ordering::SeqCst) && a.status == 401,
                            "the old key serves until rotation: {a:?}"
                        );
                    }
                }
            }
        });
    }
    tokio::time::sleep(Duration::from_millis(150)).await;
    // Rotation: the new key is published and the old one withdrawn at once.
    issuer.set_keys(vec![new.jwk()]);
    rotated.store(true, Ordering::SeqCst);
    while let Some(r) = tasks.join_next().await {
        r.expect("worker");
    }
    assert_eq!(false_accepts.load(Ordering::SeqCst), 0);
    assert!(
        new_ok.load(Ordering::SeqCst) > 0,
        "tokens of the new key are accepted after rotation"
    );
    assert_eq!(
        new_refused.load(Ordering::SeqCst),
        0,
        "the first unknown kid triggers the refetch"
    );
    // The withdrawn key is refused once the new set is installed.
    let a = server
        .call(&good_old, "read_file", json!({"path": "/x"}))
        .await;
    assert_eq!(a.status, 401);
}

#[tokio::test]
async fn issuer_metadata_that_moves_the_key_set_is_followed() {
    let old = TestKey::rsa1();
    let new = TestKey::rsa2();
    let issuer = TestIssuer::start(vec![old.jwk()]).await;
    // A second key endpoint, where the issuer's metadata will point next.
    let elsewhere = TestIssuer::start(vec![new.jwk()]).await;
    let server = TestServer::start_with(&issuer, |o| o.key_cooldown_secs = 0).await;
    let t_old = old.sign(&claims(&issuer.issuer, &server.mcp_url, "files:read"));
    let t_new = new.sign(&claims(&issuer.issuer, &server.mcp_url, "files:read"));
    assert_eq!(
        server
            .call(&t_old, "read_file", json!({"path": "/x"}))
            .await
            .status,
        200
    );
    assert_eq!(elsewhere.jwks_fetches(), 0);

    issuer.advertise_jwks_uri(&elsewhere.jwks_uri());
    // The unknown kid makes the guard refresh, which discovers the new key set URL.
    assert_eq!(
        server
            .call(&t_new, "read_file", json!({"path": "/x"}))
            .await
            .status,
        200
    );
    assert_eq!(elsewhere.jwks_fetches(), 1);
    assert_eq!(
        server
            .call(&t_old, "read_file", json!({"path": "/x"}))
            .await
            .status,
        401
    );
}

#[tokio::test]
async fn clock_skew_at_the_edges_of_the_leeway() {
    let key = TestKey::rsa1();
    let issuer = TestIssuer::start(vec![key.jwk()]).await;
    let server = TestServer::start(&issuer).await;
    let with = |field: &str, offset: i64| {
        let mut c = claims(&issuer.issuer, &server.mcp_url, "files:read");
        c[field] = json!(now() + offset);
        key.sign(&c)
    };
    // Default leeway 60 s; a couple of seconds of margin for the time the request takes.
    for (field, offset, expected) in [
        ("exp", -57, 200),
        ("exp", -63, 401),
        ("nbf", 57, 200),
        ("nbf", 63, 401),
        ("iat", 57, 200),
        ("iat", 63, 401),
    ] {
        let a = server
            .call(&with(field, offset), "read_file", json!({"path": "/x"}))
            .await;
        assert_eq!(a.status, expected, "{field} at now{offset:+}: {a:?}");
        if expected == 401 {
            assert_eq!(a.challenge().param("error"), Some("invalid_token"));
        }
    }
}
