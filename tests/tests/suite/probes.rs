//! The example servers' probes, over real HTTP without a token: `/healthz` is 200 while
//! serving; `/readyz` is 503 with a JSON reason until every issuer's key set is loaded, and
//! 200 once it is. `Guard::preload_keys` loads keys eagerly and says which issuer failed.

use mcp_guard_tests::issuer::JwksMode;
use mcp_guard_tests::{TestIssuer, TestKey, TestServer};
use serde_json::Value;

fn base(server: &TestServer) -> String {
    format!("http://{}", server.running.addr)
}

#[tokio::test]
async fn readyz_is_503_while_the_issuer_is_down_and_200_once_its_keys_load() {
    let key = TestKey::rsa1();
    let issuer = TestIssuer::start(vec![key.jwk()]).await;
    issuer.set_mode(JwksMode::Status(503));
    // No refetch cooldown, so that each probe may try again.
    let server = TestServer::start_with(&issuer, |o| o.key_cooldown_secs = 0).await;

    let health = server.get(&format!("{}/healthz", base(&server))).await;
    assert_eq!((health.status, health.body.as_str()), (200, "ok"));
    let not_ready = server.get(&format!("{}/readyz", base(&server))).await;
    assert_eq!(not_ready.status, 503, "{}", not_ready.body);
    let reason: Value = serde_json::from_str(&not_ready.body).expect("JSON reason");
    assert_eq!(reason["status"], "not ready");
    assert_eq!(reason["issuers"], serde_json::json!([issuer.issuer]));
    assert!(
        reason["reason"]
            .as_str()
            .is_some_and(|r| r.contains("key set"))
    );
    let failed = server.running.guard.preload_keys().await.unwrap_err();
    assert_eq!(failed.failures.len(), 1);
    assert_eq!(failed.failures[0].0, issuer.issuer);
    assert!(failed.to_string().contains("HTTP 503"), "{failed}");

    issuer.set_mode(JwksMode::Normal);
    let ready = server.get(&format!("{}/readyz", base(&server))).await;
    assert_eq!(ready.status, 200, "{}", ready.body);
    assert_eq!(
        serde_json::from_str::<Value>(&ready.body).unwrap()["status"],
        "ready"
    );
    assert!(server.running.guard.issuers_without_keys().is_empty());
    assert!(server.running.guard.preload_keys().await.is_ok());
    // Down again: the loaded keys stay in use, and so the server stays ready.
    issuer.set_mode(JwksMode::Status(503));
    let still = server.get(&format!("{}/readyz", base(&server))).await;
    assert_eq!(still.status, 200, "{}", still.body);
    let health = server.get(&format!("{}/healthz", base(&server))).await;
    assert_eq!(health.status, 200);
    server.stop().await;
}

#[tokio::test]
async fn preloaded_keys_make_readyz_200_at_once_and_serve_tokens_without_a_fetch() {
    let key = TestKey::rsa1();
    let issuer = TestIssuer::start(vec![key.jwk()]).await;
    let server = TestServer::start(&issuer).await;
    server
        .running
        .guard
        .preload_keys()
        .await
        .expect("keys load");
    let fetched = issuer.jwks_fetches();
    assert_eq!(fetched, 1);
    let ready = server.get(&format!("{}/readyz", base(&server))).await;
    assert_eq!(ready.status, 200, "{}", ready.body);
    let token = key.sign(&mcp_guard_tests::claims(
        &issuer.issuer,
        &server.mcp_url,
        "files:read",
    ));
    let listed = server.list_with(&format!("Bearer {token}")).await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert_eq!(issuer.jwks_fetches(), fetched);
    server.stop().await;
}

#[tokio::test]
async fn the_probes_need_no_token_in_the_sign_in_posture() {
    let issuer = TestIssuer::start(vec![TestKey::rsa1().jwk()]).await;
    let server = TestServer::start(&issuer).await;
    assert!(!server.running.guard.allows_anonymous());
    for path in ["/healthz", "/readyz"] {
        let answer = server.get(&format!("{}{path}", base(&server))).await;
        assert_eq!(answer.status, 200, "{path}: {}", answer.body);
        assert!(answer.headers.get("www-authenticate").is_none(), "{path}");
    }
    // The MCP endpoint beside them is still guarded.
    let mcp = server.list_with("").await;
    assert_eq!(mcp.status, 401);
    server.stop().await;
}
