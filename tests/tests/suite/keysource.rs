//! The issuer key source end to end: discovery (RFC 8414, OpenID Connect path-inserted and
//! path-appended), a fixed `jwks_uri`, outages before and after the first load (503 versus the
//! last good key set), the size cap, cross-host redirects, slowness and timeouts, unknown-`kid`
//! storms, key rotation, unusable keys skipped one by one, `Cache-Control` TTLs and their
//! clamps, several issuers at once, and the https rule for non-loopback URLs.
//!
//! Every issuer here is a `TestIssuer` on 127.0.0.1 whose faults the tests stage; no request
//! ever leaves the loopback interface.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use mcp_guard::__internals::cache_control_max_age;
use mcp_guard::TokenError;
use mcp_guard::jwks::{KeySourceConfig, KeySourceError};
use mcp_guard::{AuthError, ConfigError, Guard, Issuer};
use mcp_guard_examples::files;
use mcp_guard_examples::server::ServerOptions;
use mcp_guard_tests::keys::{key_file, sign_hmac};
use mcp_guard_tests::{Answer, Discovery, JwksMode, TestIssuer, TestKey, TestServer, claims};
use serde_json::{Value, json};

/// Sleep that outlasts a 1 s cooldown (the sleep starts after the failed attempt ended).
const PAST_ONE_SECOND: Duration = Duration::from_millis(1200);

/// The resource of guards built directly (no server; never contacted).
const DIRECT_RESOURCE: &str = "https://mcp.example.test/mcp";

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// A valid `files:read` token for `issuer`'s identifier and `server`'s audience.
fn token(issuer: &TestIssuer, server: &TestServer, key: &TestKey) -> String {
    key.sign(&claims(&issuer.issuer, &server.mcp_url, "files:read"))
}

/// A stateless `tools/list` with `token`.
async fn list(server: &TestServer, token: &str) -> Answer {
    server.list_with(&format!("Bearer {token}")).await
}

#[track_caller]
fn assert_ok(a: &Answer, what: &str) {
    assert_eq!(a.status, 200, "{what}: expected 200, got {a:?}");
}

#[track_caller]
fn assert_invalid_token(a: &Answer, what: &str) {
    assert!(
        !(200..300).contains(&a.status),
        "{what}: must never succeed, got {a:?}"
    );
    assert_eq!(a.status, 401, "{what}: expected 401, got {a:?}");
    assert_eq!(
        a.challenge().param("error"),
        Some("invalid_token"),
        "{what}: {a:?}"
    );
}

/// 503 for missing keys: no challenge (the token was not judged), a `Retry-After`, and the
/// JSON error body.
#[track_caller]
fn assert_unavailable(a: &Answer, what: &str) {
    assert!(
        !(200..300).contains(&a.status),
        "{what}: must never succeed, got {a:?}"
    );
    assert_eq!(a.status, 503, "{what}: expected 503, got {a:?}");
    assert!(
        a.headers.get("www-authenticate").is_none(),
        "{what}: a 503 carries no WWW-Authenticate challenge: {a:?}"
    );
    assert!(
        a.headers.get("retry-after").is_some(),
        "{what}: Retry-After expected: {a:?}"
    );
    let body: Value = serde_json::from_str(&a.body).expect("JSON error body");
    assert_eq!(body["error"], "temporarily_unavailable", "{what}: {a:?}");
}

/// A `kid` no issuer publishes, different on every call.
fn random_kid(i: usize) -> String {
    format!("unknown-{i}-{:016x}", RandomState::new().hash_one(i))
}

/// The port of a `http://127.0.0.1:PORT` origin.
fn port(issuer: &TestIssuer) -> &str {
    issuer.origin.rsplit(':').next().expect("origin has a port")
}

fn metadata_fetches(issuer: &TestIssuer) -> usize {
    issuer
        .state
        .metadata_fetches
        .load(std::sync::atomic::Ordering::SeqCst)
}

/// A guard built directly (not through the example server) trusting `issuer` by discovery.
fn direct_guard(issuer: &TestIssuer, config: KeySourceConfig) -> Guard {
    Guard::builder()
        .resource(DIRECT_RESOURCE)
        .issuer(Issuer::discover(&issuer.issuer).key_source_config(config))
        .build()
        .expect("guard builds")
}

fn direct_token(issuer: &TestIssuer, key: &TestKey) -> String {
    key.sign(&claims(&issuer.issuer, DIRECT_RESOURCE, "files:read"))
}

/// Fetches counted by the guard's own key source.
fn guard_fetches(server: &TestServer, issuer: &TestIssuer) -> u64 {
    server
        .running
        .guard
        .key_source(&issuer.issuer)
        .expect("issuer configured")
        .fetch_count()
}

// ---------------------------------------------------------------------------------------------
// Discovery
// ---------------------------------------------------------------------------------------------

async fn discovery_serves_valid_tokens(path: &str, discovery: Discovery) {
    let key = TestKey::rsa1();
    let issuer = TestIssuer::start_with(path, discovery, vec![key.jwk()]).await;
    assert!(issuer.issuer.ends_with(path));
    let server = TestServer::start(&issuer).await;

    let a = list(&server, &token(&issuer, &server, &key)).await;
    assert_ok(&a, &format!("{discovery:?} at {path:?}"));
    let a = server
        .call(
            &token(&issuer, &server, &key),
            "read_file",
            json!({"path": "/none"}),
        )
        .await;
    assert_ok(&a, "tools/call");
    assert_eq!(a.tool_text(), "no such file: /none");

    assert!(metadata_fetches(&issuer) >= 1, "keys were discovered");
    assert_eq!(issuer.jwks_fetches(), 1, "one fetch serves both requests");
    assert_eq!(guard_fetches(&server, &issuer), 1);

    if !path.is_empty() {
        // The issuer identifier includes its path: the bare origin is another issuer.
        let wrong = key.sign(&claims(&issuer.origin, &server.mcp_url, "files:read"));
        assert_invalid_token(&list(&server, &wrong).await, "iss without the path");
    }
}

#[tokio::test]
async fn discovery_via_rfc8414_at_the_root() {
    discovery_serves_valid_tokens("", Discovery::Rfc8414).await;
}

#[tokio::test]
async fn discovery_falls_back_to_openid_configuration_at_the_root() {
    discovery_serves_valid_tokens("", Discovery::OidcInserted).await;
}

#[tokio::test]
async fn discovery_for_issuer_with_path_via_rfc8414_path_inserted() {
    discovery_serves_valid_tokens("/tenant1", Discovery::Rfc8414).await;
}

#[tokio::test]
async fn discovery_for_issuer_with_path_via_oidc_path_inserted() {
    discovery_serves_valid_tokens("/tenant1", Discovery::OidcInserted).await;
}

#[tokio::test]
async fn discovery_for_issuer_with_path_via_oidc_path_appended() {
    discovery_serves_valid_tokens("/tenant1", Discovery::OidcAppended).await;
}

#[tokio::test]
async fn explicit_jwks_uri_is_used_without_discovery() {
    let key = TestKey::rsa1();
    let issuer = TestIssuer::start(vec![key.jwk()]).await;
    // Discovery would fail (the metadata names another issuer): only the fixed URL is used.
    issuer.advertise_issuer("http://127.0.0.1:1/someone-else");
    let jwks_uri = issuer.jwks_uri();
    let server = TestServer::start_with(&issuer, |o| o.jwks_uris = vec![jwks_uri]).await;

    assert_ok(
        &list(&server, &token(&issuer, &server, &key)).await,
        "fixed jwks_uri",
    );
    assert_eq!(metadata_fetches(&issuer), 0, "no discovery with a jwks_uri");
    assert_eq!(issuer.jwks_fetches(), 1);
}

#[tokio::test]
async fn each_issuer_gets_its_own_fixed_key_set_url() {
    // Entra ID's v1 and v2 multi-tenant templates each publish their own key set; the example
    // takes `--jwks-uri ISSUER=URL` once per issuer. Two issuers here, each with its own keys
    // and with discovery broken, so only the fixed URLs can serve.
    let (key_a, key_b) = (TestKey::rsa1(), TestKey::rsa2());
    let a = TestIssuer::start_with("/v1", Discovery::OidcAppended, vec![key_a.jwk()]).await;
    let b = TestIssuer::start_with("/v2.0", Discovery::OidcAppended, vec![key_b.jwk()]).await;
    a.advertise_issuer("http://127.0.0.1:1/someone-else");
    b.advertise_issuer("http://127.0.0.1:1/someone-else");
    let (iss_a, iss_b) = (a.issuer.clone(), b.issuer.clone());
    let entries = vec![
        format!("{iss_b}={}", b.jwks_uri()),
        format!("{iss_a}={}", a.jwks_uri()),
    ];
    let server = TestServer::start_with(&a, move |o| {
        o.issuers = vec![iss_a, iss_b];
        o.jwks_uris = entries;
    })
    .await;
    let signed = |key: &TestKey, iss: &str| key.sign(&claims(iss, &server.mcp_url, "files:read"));
    assert_ok(&list(&server, &signed(&key_a, &a.issuer)).await, "issuer A");
    assert_ok(&list(&server, &signed(&key_b, &b.issuer)).await, "issuer B");
    // Keys are never crossed: A's key does not vouch for B's tokens.
    let crossed = list(&server, &signed(&key_a, &b.issuer)).await;
    assert_eq!(crossed.status, 401, "{crossed:?}");
    assert_eq!(metadata_fetches(&a) + metadata_fetches(&b), 0);

    // Ambiguous or repeated entries are configuration errors.
    let listen = "127.0.0.1:0".parse().expect("address");
    let mut opts = ServerOptions::new(&a.issuer, "http://127.0.0.1:9/mcp", listen);
    opts.issuers.push(b.issuer.clone());
    opts.jwks_uris = vec![a.jwks_uri()];
    let e = files::guard(&opts).expect_err("unpaired URL with two issuers");
    assert!(e.to_string().contains("ISSUER=URL"), "{e}");
    opts.jwks_uris = vec![
        format!("{}={}", a.issuer, a.jwks_uri()),
        format!("{}={}", a.issuer, b.jwks_uri()),
    ];
    let e = files::guard(&opts).expect_err("two URLs for one issuer");
    assert!(e.to_string().contains("given twice"), "{e}");
}

async fn foreign_metadata_is_refused(path: &str, advertised: impl FnOnce(&TestIssuer) -> String) {
    let key = TestKey::rsa1();
    let issuer = TestIssuer::start_with(path, Discovery::Rfc8414, vec![key.jwk()]).await;
    let foreign = advertised(&issuer);
    assert_ne!(foreign, issuer.issuer);
    issuer.advertise_issuer(&foreign);
    let server = TestServer::start_with(&issuer, |o| o.key_cooldown_secs = 1).await;
    let t = token(&issuer, &server, &key);

    assert_unavailable(&list(&server, &t).await, "metadata of another issuer");
    assert_unavailable(&list(&server, &t).await, "still refused");
    // Still refused once the cooldown allows another attempt: the mismatch is persistent.
    tokio::time::sleep(PAST_ONE_SECOND).await;
    assert_unavailable(&list(&server, &t).await, "refused after the cooldown");
    let a = server.call(&t, "read_file", json!({"path": "/x"})).await;
    assert_unavailable(&a, "tools/call");

    assert!(metadata_fetches(&issuer) >= 1, "discovery was attempted");
    assert_eq!(
        issuer.jwks_fetches(),
        0,
        "the jwks_uri of mismatched metadata is never fetched"
    );
}

#[tokio::test]
async fn discovered_metadata_naming_another_issuer_gives_503() {
    foreign_metadata_is_refused("", |_| "https://evil.example".to_owned()).await;
}

#[tokio::test]
async fn discovered_metadata_naming_the_parent_issuer_gives_503() {
    // A tenant issuer whose metadata claims the root issuer of the same host.
    foreign_metadata_is_refused("/tenant1", |i| i.origin.clone()).await;
}

// ---------------------------------------------------------------------------------------------
// Key endpoint down before any key was loaded: 503, then recovery after the cooldown
// ---------------------------------------------------------------------------------------------

async fn down_before_first_load_then_recovers(issuer: TestIssuer, mode: JwksMode) {
    let key = TestKey::rsa1();
    issuer.set_mode(mode.clone());
    let server = TestServer::start_with(&issuer, |o| o.key_cooldown_secs = 1).await;
    let what = format!("{mode:?}");

    let a = list(&server, &token(&issuer, &server, &key)).await;
    assert_unavailable(&a, &what);
    let fetches = issuer.jwks_fetches();
    assert!(fetches >= 1, "{what}: the key endpoint was tried");
    // Still down: still 503, whether or not the cooldown let another attempt through.
    let a = server
        .call(
            &token(&issuer, &server, &key),
            "read_file",
            json!({"path": "/x"}),
        )
        .await;
    assert_unavailable(&a, &what);

    issuer.set_mode(JwksMode::Normal);
    tokio::time::sleep(PAST_ONE_SECOND).await;
    let a = list(&server, &token(&issuer, &server, &key)).await;
    assert_ok(&a, &format!("{what}: after recovery"));
    assert!(issuer.jwks_fetches() > fetches);
    assert_eq!(issuer.canary_hits(), 0);
}

#[tokio::test]
async fn jwks_status_500_before_first_load_gives_503_then_recovers() {
    let issuer = TestIssuer::start(vec![TestKey::rsa1().jwk()]).await;
    down_before_first_load_then_recovers(issuer, JwksMode::Status(500)).await;
}

#[tokio::test]
async fn jwks_status_404_before_first_load_gives_503_then_recovers() {
    let issuer = TestIssuer::start(vec![TestKey::rsa1().jwk()]).await;
    down_before_first_load_then_recovers(issuer, JwksMode::Status(404)).await;
}

#[tokio::test]
async fn jwks_garbage_before_first_load_gives_503_then_recovers() {
    let issuer = TestIssuer::start(vec![TestKey::rsa1().jwk()]).await;
    down_before_first_load_then_recovers(issuer, JwksMode::Garbage).await;
}

#[tokio::test]
async fn jwks_empty_set_before_first_load_gives_503_then_recovers() {
    let issuer = TestIssuer::start(vec![TestKey::rsa1().jwk()]).await;
    down_before_first_load_then_recovers(issuer, JwksMode::Empty).await;
}

#[tokio::test]
async fn jwks_over_size_cap_before_first_load_gives_503_then_recovers() {
    let issuer = TestIssuer::start(vec![TestKey::rsa1().jwk()]).await;
    down_before_first_load_then_recovers(issuer, JwksMode::Huge).await;
}

#[tokio::test]
async fn jwks_redirect_to_another_host_is_refused_then_recovers() {
    let issuer = TestIssuer::start(vec![TestKey::rsa1().jwk()]).await;
    // Same port, other host name: a redirect off 127.0.0.1 must not be followed.
    let to = format!("http://localhost:{}/canary/keys", port(&issuer));
    down_before_first_load_then_recovers(issuer, JwksMode::Redirect(to)).await;
}

#[tokio::test]
async fn jwks_redirect_to_another_host_never_reaches_it() {
    let key = TestKey::rsa1();
    let issuer = TestIssuer::start(vec![key.jwk()]).await;
    issuer.set_mode(JwksMode::Redirect(format!(
        "http://localhost:{}/canary/keys",
        port(&issuer)
    )));
    let server = TestServer::start(&issuer).await;
    assert_unavailable(
        &list(&server, &token(&issuer, &server, &key)).await,
        "cross-host redirect",
    );
    assert_eq!(issuer.jwks_fetches(), 1);
    assert_eq!(issuer.canary_hits(), 0, "the redirect target was contacted");
}

#[tokio::test]
async fn jwks_redirect_within_the_same_host_is_followed() {
    // The contrast to the test above: the policy is about the host, not redirects as such.
    // The target serves an empty set, hence 503, but it was reached.
    let key = TestKey::rsa1();
    let issuer = TestIssuer::start(vec![key.jwk()]).await;
    issuer.set_mode(JwksMode::Redirect(issuer.canary_url()));
    let server = TestServer::start(&issuer).await;
    assert_unavailable(
        &list(&server, &token(&issuer, &server, &key)).await,
        "same-host redirect to an empty set",
    );
    assert_eq!(
        issuer.canary_hits(),
        1,
        "the same-host redirect was followed"
    );
}

// ---------------------------------------------------------------------------------------------
// Slowness and timeouts
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn slow_key_endpoint_within_the_timeout_still_serves() {
    let key = TestKey::rsa1();
    let issuer = TestIssuer::start(vec![key.jwk()]).await;
    issuer.set_mode(JwksMode::Slow(Duration::from_millis(300)));
    let server = TestServer::start(&issuer).await;
    assert_ok(
        &list(&server, &token(&issuer, &server, &key)).await,
        "slow but within the 5 s default timeout",
    );
    assert_eq!(issuer.jwks_fetches(), 1);
}

#[tokio::test]
async fn key_endpoint_slower_than_the_timeout_is_unavailable_then_recovers() {
    let key = TestKey::rsa1();
    let issuer = TestIssuer::start(vec![key.jwk()]).await;
    issuer.set_mode(JwksMode::Slow(Duration::from_secs(3)));
    let mut config = KeySourceConfig::default();
    config.timeout = Duration::from_millis(300);
    config.refetch_cooldown = Duration::from_millis(200);
    let guard = direct_guard(&issuer, config);

    match guard.authenticate(&direct_token(&issuer, &key)).await {
        Err(AuthError::Unavailable(KeySourceError::Transport { reason, .. })) => {
            assert_eq!(reason, "timed out");
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    // Still slow: unavailable again (from the cooldown or another timed-out attempt).
    let again = guard.authenticate(&direct_token(&issuer, &key)).await;
    assert!(
        matches!(again, Err(AuthError::Unavailable(_))),
        "expected Unavailable, got {again:?}"
    );

    issuer.set_mode(JwksMode::Normal);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let ok = guard.authenticate(&direct_token(&issuer, &key)).await;
    assert!(ok.is_ok(), "after recovery: {ok:?}");
}

// ---------------------------------------------------------------------------------------------
// Keys loaded, then the endpoint fails: the last good key set is kept
// ---------------------------------------------------------------------------------------------

async fn cached_keys_survive_failure(mode: JwksMode) {
    let rsa1 = TestKey::rsa1();
    let rsa2 = TestKey::rsa2();
    let issuer = TestIssuer::start(vec![rsa1.jwk()]).await;
    // No cooldown: every unknown kid really goes to the failing endpoint.
    let server = TestServer::start_with(&issuer, |o| o.key_cooldown_secs = 0).await;
    let what = format!("{mode:?}");

    assert_ok(
        &list(&server, &token(&issuer, &server, &rsa1)).await,
        "load",
    );
    let before = issuer.jwks_fetches();
    assert_eq!(before, 1);

    issuer.set_mode(mode);
    for i in 0..3 {
        let unknown = rsa1.clone().with_kid(&random_kid(i));
        let a = list(&server, &token(&issuer, &server, &unknown)).await;
        assert_invalid_token(&a, &format!("{what}: unknown kid"));
    }
    assert!(
        issuer.jwks_fetches() > before,
        "{what}: the unknown kids made the guard refetch from the failing endpoint"
    );
    assert_invalid_token(
        &list(&server, &token(&issuer, &server, &rsa2)).await,
        &format!("{what}: unpublished key"),
    );
    for _ in 0..3 {
        let a = list(&server, &token(&issuer, &server, &rsa1)).await;
        assert_ok(&a, &format!("{what}: the cached key still verifies"));
    }
    let a = server
        .call(
            &token(&issuer, &server, &rsa1),
            "read_file",
            json!({"path": "/none"}),
        )
        .await;
    assert_ok(&a, &format!("{what}: tools/call with the cached key"));

    // The endpoint recovers with a new key: the next unknown kid loads it.
    issuer.set_keys(vec![rsa1.jwk(), rsa2.jwk()]);
    issuer.set_mode(JwksMode::Normal);
    assert_ok(
        &list(&server, &token(&issuer, &server, &rsa2)).await,
        &format!("{what}: after recovery"),
    );
}

#[tokio::test]
async fn cached_keys_survive_jwks_status_500() {
    cached_keys_survive_failure(JwksMode::Status(500)).await;
}

#[tokio::test]
async fn cached_keys_survive_jwks_garbage() {
    cached_keys_survive_failure(JwksMode::Garbage).await;
}

#[tokio::test]
async fn cached_keys_survive_jwks_empty_set() {
    cached_keys_survive_failure(JwksMode::Empty).await;
}

#[tokio::test]
async fn cached_keys_survive_jwks_over_size_cap() {
    cached_keys_survive_failure(JwksMode::Huge).await;
}

#[tokio::test]
async fn cached_keys_survive_jwks_redirect_to_another_host() {
    // Refused before any connection: the target is never contacted.
    cached_keys_survive_failure(JwksMode::Redirect("http://localhost:1/jwks".to_owned())).await;
}

// ---------------------------------------------------------------------------------------------
// Unknown-kid storms
// ---------------------------------------------------------------------------------------------

async fn storm(server: &Arc<TestServer>, issuer: &TestIssuer, n: usize) -> Vec<Answer> {
    let key = TestKey::rsa1();
    let mut set = tokio::task::JoinSet::new();
    for i in 0..n {
        let server = server.clone();
        let unknown = key.clone().with_kid(&random_kid(i));
        let t = token(issuer, &server, &unknown);
        set.spawn(async move { list(&server, &t).await });
    }
    tokio::time::timeout(Duration::from_secs(120), async {
        let mut answers = Vec::with_capacity(n);
        while let Some(a) = set.join_next().await {
            answers.push(a.expect("request task"));
        }
        answers
    })
    .await
    .expect("the storm finishes")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_kid_storm_after_load_refetches_at_most_once() {
    let key = TestKey::rsa1();
    let issuer = TestIssuer::start(vec![key.jwk()]).await;
    let server = Arc::new(TestServer::start(&issuer).await);
    assert_ok(&list(&server, &token(&issuer, &server, &key)).await, "load");

    let before = issuer.jwks_fetches();
    let guard_before = guard_fetches(&server, &issuer);
    let answers = storm(&server, &issuer, 200).await;
    assert_eq!(answers.len(), 200);
    for a in &answers {
        assert_invalid_token(a, "unknown kid in the storm");
    }
    let after = issuer.jwks_fetches();
    assert!(
        after <= before + 1,
        "200 unknown kids caused {} fetches",
        after - before
    );
    assert!(guard_fetches(&server, &issuer) <= guard_before + 1);
    // The known key is unaffected.
    assert_ok(
        &list(&server, &token(&issuer, &server, &key)).await,
        "after the storm",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_kid_storm_on_a_cold_server_loads_keys_once() {
    let key = TestKey::rsa1();
    let issuer = TestIssuer::start(vec![key.jwk()]).await;
    let server = Arc::new(TestServer::start(&issuer).await);
    assert_eq!(issuer.jwks_fetches(), 0);

    let answers = storm(&server, &issuer, 200).await;
    for a in &answers {
        assert_invalid_token(a, "unknown kid on a cold server");
    }
    assert!(
        issuer.jwks_fetches() <= 1,
        "concurrent first loads are single-flight: {} fetches",
        issuer.jwks_fetches()
    );
    assert_ok(
        &list(&server, &token(&issuer, &server, &key)).await,
        "after the storm",
    );
    assert_eq!(issuer.jwks_fetches(), 1);
}

// ---------------------------------------------------------------------------------------------
// Rotation
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn rotation_new_key_accepted_after_one_refetch_and_removed_key_refused_later() {
    let rsa1 = TestKey::rsa1();
    let rsa2 = TestKey::rsa2();
    let ec = TestKey::ec256();
    let issuer = TestIssuer::start(vec![rsa1.jwk()]).await;
    let server = TestServer::start_with(&issuer, |o| o.key_cooldown_secs = 1).await;
    assert_ok(
        &list(&server, &token(&issuer, &server, &rsa1)).await,
        "rsa1",
    );
    assert_eq!(issuer.jwks_fetches(), 1);

    // The issuer adds rsa2 next to rsa1.
    issuer.set_keys(vec![rsa1.jwk(), rsa2.jwk()]);
    tokio::time::sleep(PAST_ONE_SECOND).await;
    assert_ok(
        &list(&server, &token(&issuer, &server, &rsa2)).await,
        "rsa2 after one refetch",
    );
    assert_eq!(issuer.jwks_fetches(), 2, "exactly one refetch");
    assert_ok(
        &list(&server, &token(&issuer, &server, &rsa1)).await,
        "rsa1",
    );
    assert_ok(
        &list(&server, &token(&issuer, &server, &rsa2)).await,
        "rsa2",
    );
    assert_eq!(issuer.jwks_fetches(), 2, "known kids cause no fetch");

    // The issuer retires rsa1 and introduces ec256. Known kids cause no fetch, so the removal
    // is not seen yet: rsa1 still verifies from the snapshot.
    issuer.set_keys(vec![rsa2.jwk(), ec.jwk()]);
    assert_ok(
        &list(&server, &token(&issuer, &server, &rsa1)).await,
        "rsa1 before the next refresh",
    );
    assert_eq!(issuer.jwks_fetches(), 2);

    // The first token with the new kid refreshes the set, and with it the removal.
    tokio::time::sleep(PAST_ONE_SECOND).await;
    assert_ok(
        &list(&server, &token(&issuer, &server, &ec)).await,
        "ec256 after a refetch",
    );
    assert_eq!(issuer.jwks_fetches(), 3);
    assert_invalid_token(
        &list(&server, &token(&issuer, &server, &rsa1)).await,
        "rsa1 after its removal was seen",
    );
    assert_ok(
        &list(&server, &token(&issuer, &server, &rsa2)).await,
        "rsa2",
    );
}

#[tokio::test]
async fn rotation_replacing_the_only_key() {
    let rsa1 = TestKey::rsa1();
    let rsa2 = TestKey::rsa2();
    let issuer = TestIssuer::start(vec![rsa1.jwk()]).await;
    let server = TestServer::start_with(&issuer, |o| o.key_cooldown_secs = 1).await;
    assert_ok(
        &list(&server, &token(&issuer, &server, &rsa1)).await,
        "rsa1",
    );

    issuer.set_keys(vec![rsa2.jwk()]);
    tokio::time::sleep(PAST_ONE_SECOND).await;
    assert_ok(
        &list(&server, &token(&issuer, &server, &rsa2)).await,
        "rsa2 after one refetch",
    );
    assert_eq!(issuer.jwks_fetches(), 2);
    // The refetch replaced the set: rsa1 is gone, whether or not the cooldown allows another
    // refetch for it.
    assert_invalid_token(
        &list(&server, &token(&issuer, &server, &rsa1)).await,
        "removed rsa1",
    );
    // A token claiming rsa2's kid but signed by rsa1 does not verify either.
    let forged = rsa1.clone().with_kid("rsa2");
    assert_invalid_token(
        &list(&server, &token(&issuer, &server, &forged)).await,
        "rsa1 under rsa2's kid",
    );
}

// ---------------------------------------------------------------------------------------------
// Unusable keys, HMAC keys
// ---------------------------------------------------------------------------------------------

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

const HMAC_SECRET: &[u8] = b"an HMAC secret published in a JWKS by mistake";

fn oct_jwk(kid: &str) -> Value {
    json!({"kty": "oct", "kid": kid, "alg": "HS256", "use": "sig", "k": b64url(HMAC_SECRET)})
}

#[tokio::test]
async fn unusable_keys_are_skipped_one_by_one() {
    let rsa1 = TestKey::rsa1();
    let rsa2 = TestKey::rsa2();
    let ec = TestKey::ec256();

    // rsa2 material published for encryption and for RSA-OAEP: never for signatures.
    let mut enc = rsa2.clone().with_kid("enc").jwk();
    enc["use"] = json!("enc");
    let mut oaep = rsa2.clone().with_kid("oaep").jwk_without_alg();
    oaep["alg"] = json!("RSA-OAEP");
    oaep.as_object_mut().expect("object").remove("use");
    let keys = vec![
        oct_jwk("hmac"),
        enc,
        json!({"kty": "XYZ", "kid": "weird", "crv": "Nope", "x": "AAAA"}),
        oaep,
        ec.jwk(),
        json!({"kty": "RSA", "kid": "broken", "alg": "RS256", "n": "!!!", "e": "AQAB"}),
        rsa1.jwk(),
    ];
    let issuer = TestIssuer::start(keys).await;
    let server = TestServer::start(&issuer).await;

    assert_ok(
        &list(&server, &token(&issuer, &server, &rsa1)).await,
        "rsa1 after the unusable keys",
    );
    assert_ok(
        &list(&server, &token(&issuer, &server, &ec)).await,
        "ec256 among the unusable keys",
    );
    for kid in ["enc", "oaep"] {
        let signer = rsa2.clone().with_kid(kid);
        assert_invalid_token(
            &list(&server, &token(&issuer, &server, &signer)).await,
            &format!("signed by the skipped `{kid}` key"),
        );
    }
    let hs = sign_hmac(
        HMAC_SECRET,
        &json!({"alg": "HS256", "typ": "at+jwt", "kid": "hmac"}),
        &claims(&issuer.issuer, &server.mcp_url, "files:read"),
    );
    assert_invalid_token(&list(&server, &hs).await, "HS256 with the oct key");
    assert_eq!(issuer.jwks_fetches(), 1);
}

#[tokio::test]
async fn key_set_of_only_unusable_keys_gives_503() {
    let rsa2 = TestKey::rsa2();
    let mut enc = rsa2.jwk();
    enc["use"] = json!("enc");
    let issuer = TestIssuer::start(vec![oct_jwk("hmac"), enc]).await;
    let server = TestServer::start(&issuer).await;
    assert_unavailable(
        &list(&server, &token(&issuer, &server, &rsa2)).await,
        "no usable key",
    );
}

#[tokio::test]
async fn hs256_oct_jwk_in_the_set_never_lets_an_hs256_token_in() {
    let rsa1 = TestKey::rsa1();
    let issuer = TestIssuer::start(vec![oct_jwk("hmac"), rsa1.jwk()]).await;
    let server = TestServer::start(&issuer).await;
    let c = || claims(&issuer.issuer, &server.mcp_url, "files:admin");

    // Cold: an HS256 token is refused before any key is fetched for it.
    let hs = sign_hmac(
        HMAC_SECRET,
        &json!({"alg": "HS256", "typ": "at+jwt", "kid": "hmac"}),
        &c(),
    );
    assert_invalid_token(&list(&server, &hs).await, "HS256, cold");
    assert_eq!(issuer.jwks_fetches(), 0, "no fetch for an HS256 token");

    // Warm: the set (with its oct key) is loaded.
    assert_ok(
        &list(&server, &token(&issuer, &server, &rsa1)).await,
        "load",
    );
    let pem = key_file("rsa1.pub.pem");
    let der = key_file("rsa1.pub.der");
    let attempts = [
        (
            HMAC_SECRET,
            json!({"alg": "HS256", "typ": "at+jwt", "kid": "hmac"}),
        ),
        (HMAC_SECRET, json!({"alg": "HS256", "typ": "at+jwt"})),
        (
            HMAC_SECRET,
            json!({"alg": "RS256", "typ": "at+jwt", "kid": "hmac"}),
        ),
        // Key confusion: the RSA public key as an HMAC secret.
        (
            &pem[..],
            json!({"alg": "HS256", "typ": "at+jwt", "kid": "rsa1"}),
        ),
        (
            &der[..],
            json!({"alg": "HS256", "typ": "at+jwt", "kid": "rsa1"}),
        ),
    ];
    for (secret, header) in attempts {
        let t = sign_hmac(secret, &header, &c());
        assert_invalid_token(&list(&server, &t).await, &format!("HMAC token {header}"));
        let a = server
            .call(&t, "write_file", json!({"path": "/p", "content": "x"}))
            .await;
        assert_invalid_token(&a, &format!("HMAC tools/call {header}"));
    }
    assert!(
        server.store.lock().unwrap().is_empty(),
        "nothing was written"
    );
}

// ---------------------------------------------------------------------------------------------
// Cache-Control
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn cache_control_max_age_is_parsed() {
    let secs = |s: u64| Some(Duration::from_secs(s));
    assert_eq!(cache_control_max_age("max-age=300"), secs(300));
    assert_eq!(cache_control_max_age("public, max-age=300"), secs(300));
    assert_eq!(
        cache_control_max_age("MAX-AGE=120, must-revalidate"),
        secs(120)
    );
    assert_eq!(cache_control_max_age("max-age=\"45\""), secs(45));
    assert_eq!(cache_control_max_age(" max-age = 7 "), secs(7));
    assert_eq!(cache_control_max_age("max-age=0"), secs(0));
    assert_eq!(cache_control_max_age("max-age=31536000"), secs(31_536_000));
    assert_eq!(cache_control_max_age("no-store"), secs(0));
    assert_eq!(
        cache_control_max_age("public, no-cache, max-age=600"),
        secs(0)
    );
    assert_eq!(cache_control_max_age("max-age=600, No-Store"), secs(0));
    for none in [
        "",
        "public",
        "private",
        "max-age",
        "max-age=",
        "max-age=-1",
        "max-age=1.5",
        "max-age=abc",
        "max-age=99999999999999999999999",
        "s-maxage=60",
    ] {
        assert_eq!(cache_control_max_age(none), None, "{none:?}");
    }
}

#[tokio::test]
async fn cache_control_zero_is_clamped_to_the_minimum_ttl() {
    let key = TestKey::rsa1();
    let issuer = TestIssuer::start(vec![key.jwk()]).await;
    issuer.set_cache_control("no-store");
    let server = TestServer::start(&issuer).await;
    assert_ok(&list(&server, &token(&issuer, &server, &key)).await, "load");

    // An unclamped zero TTL would start a background refresh on every request.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for _ in 0..5 {
        assert_ok(&list(&server, &token(&issuer, &server, &key)).await, "warm");
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        issuer.jwks_fetches(),
        1,
        "no-store is clamped to min_ttl (60 s)"
    );
    assert_eq!(guard_fetches(&server, &issuer), 1);
}

/// Loads rsa1, swaps the published set to rsa2 only, waits 1.2 s, and expects the TTL (as
/// configured and clamped) to have run out: a background refresh installs rsa2 without any
/// unknown-kid refetch (the default 30 s cooldown forbids those).
async fn background_refresh_after_ttl(config: KeySourceConfig, cache_control: Option<&str>) {
    let rsa1 = TestKey::rsa1();
    let rsa2 = TestKey::rsa2();
    let issuer = TestIssuer::start(vec![rsa1.jwk()]).await;
    if let Some(cc) = cache_control {
        issuer.set_cache_control(cc);
    }
    let guard = direct_guard(&issuer, config);
    let source = guard.key_source(&issuer.issuer).expect("configured");

    let first = guard.authenticate(&direct_token(&issuer, &rsa1)).await;
    assert!(first.is_ok(), "load: {first:?}");
    assert_eq!(source.fetch_count(), 1);
    // Within the cooldown, an unknown kid does not refetch.
    let early = guard.authenticate(&direct_token(&issuer, &rsa2)).await;
    assert_eq!(
        early.unwrap_err(),
        AuthError::Invalid(TokenError::UnknownKey)
    );

    issuer.set_keys(vec![rsa2.jwk()]);
    tokio::time::sleep(PAST_ONE_SECOND).await;
    // The old keys keep serving while the background refresh runs.
    let stale = guard.authenticate(&direct_token(&issuer, &rsa1)).await;
    assert!(stale.is_ok(), "old snapshot served meanwhile: {stale:?}");

    let mut accepted = false;
    for _ in 0..60 {
        if guard
            .authenticate(&direct_token(&issuer, &rsa2))
            .await
            .is_ok()
        {
            accepted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(accepted, "the background refresh installed rsa2");
    assert!(source.fetch_count() >= 2);
    assert_eq!(
        guard
            .authenticate(&direct_token(&issuer, &rsa1))
            .await
            .unwrap_err(),
        AuthError::Invalid(TokenError::UnknownKey),
        "rsa1's removal is seen with the refresh"
    );
}

#[tokio::test]
async fn cache_control_max_age_sets_the_refresh_time() {
    let mut config = KeySourceConfig::default();
    config.min_ttl = Duration::ZERO;
    config.default_ttl = Duration::from_secs(3600);
    background_refresh_after_ttl(config, Some("public, max-age=1")).await;
}

#[tokio::test]
async fn cache_control_max_age_is_clamped_to_the_maximum_ttl() {
    let mut config = KeySourceConfig::default();
    config.min_ttl = Duration::ZERO;
    config.max_ttl = Duration::from_secs(1);
    config.default_ttl = Duration::from_secs(1);
    background_refresh_after_ttl(config, Some("max-age=86400")).await;
}

#[tokio::test]
async fn default_ttl_applies_without_cache_control() {
    let mut config = KeySourceConfig::default();
    config.min_ttl = Duration::ZERO;
    config.default_ttl = Duration::from_secs(1);
    background_refresh_after_ttl(config, None).await;
}

// ---------------------------------------------------------------------------------------------
// Several issuers
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn multiple_issuers_each_verified_only_with_their_own_keys() {
    let rsa1 = TestKey::rsa1();
    let rsa2 = TestKey::rsa2();
    let a = TestIssuer::start(vec![rsa1.jwk()]).await;
    let b = TestIssuer::start(vec![rsa2.jwk()]).await;
    let issuers = vec![a.issuer.clone(), b.issuer.clone()];
    let server = TestServer::start_with(&a, |o| o.issuers = issuers).await;
    let signed = |iss: &TestIssuer, key: &TestKey| {
        key.sign(&claims(&iss.issuer, &server.mcp_url, "files:read"))
    };

    assert_ok(&list(&server, &signed(&a, &rsa1)).await, "A's token");
    assert_eq!(
        (a.jwks_fetches(), b.jwks_fetches()),
        (1, 0),
        "routed by iss"
    );
    assert_ok(&list(&server, &signed(&b, &rsa2)).await, "B's token");
    assert_eq!((a.jwks_fetches(), b.jwks_fetches()), (1, 1));

    // iss=A signed with B's key (B's kid, or A's kid): A's keys only.
    assert_invalid_token(&list(&server, &signed(&a, &rsa2)).await, "iss=A, B's key");
    let forged = rsa2.clone().with_kid("rsa1");
    assert_invalid_token(
        &list(&server, &signed(&a, &forged)).await,
        "iss=A, B's key under A's kid",
    );
    assert_invalid_token(&list(&server, &signed(&b, &rsa1)).await, "iss=B, A's key");

    // An issuer that is not configured.
    let other = "http://127.0.0.1:1/unconfigured";
    let t = rsa1.sign(&claims(other, &server.mcp_url, "files:read"));
    assert_invalid_token(&list(&server, &t).await, "unconfigured issuer");
    let mut c = claims(&a.issuer, &server.mcp_url, "files:read");
    c.as_object_mut().expect("object").remove("iss");
    assert_invalid_token(&list(&server, &rsa1.sign(&c)).await, "no iss");

    assert_ok(&list(&server, &signed(&a, &rsa1)).await, "A again");
    assert_ok(&list(&server, &signed(&b, &rsa2)).await, "B again");
}

#[tokio::test]
async fn one_issuer_down_does_not_affect_the_other() {
    let rsa1 = TestKey::rsa1();
    let rsa2 = TestKey::rsa2();
    let a = TestIssuer::start(vec![rsa1.jwk()]).await;
    let b = TestIssuer::start(vec![rsa2.jwk()]).await;
    b.set_mode(JwksMode::Status(503));
    let issuers = vec![a.issuer.clone(), b.issuer.clone()];
    let server = TestServer::start_with(&a, |o| o.issuers = issuers).await;
    let signed = |iss: &TestIssuer, key: &TestKey| {
        key.sign(&claims(&iss.issuer, &server.mcp_url, "files:read"))
    };
    assert_unavailable(&list(&server, &signed(&b, &rsa2)).await, "B down");
    assert_ok(&list(&server, &signed(&a, &rsa1)).await, "A unaffected");
}

// ---------------------------------------------------------------------------------------------
// https for non-loopback URLs
// ---------------------------------------------------------------------------------------------

fn build(issuer: Issuer) -> Result<Guard, ConfigError> {
    Guard::builder()
        .resource(DIRECT_RESOURCE)
        .issuer(issuer)
        .build()
}

#[tokio::test]
async fn https_is_required_for_non_loopback_issuers_and_key_urls() {
    for bad in [
        "http://example.com",
        "http://10.0.0.1",
        "http://169.254.169.254/latest",
        "http://localhost.example.com",
        "http://127.0.0.1.example.com",
        "ftp://127.0.0.1/",
    ] {
        let r = build(Issuer::discover(bad));
        assert!(
            matches!(
                r,
                Err(ConfigError::KeySource(KeySourceError::InsecureUrl(_)))
            ),
            "discover({bad}): {r:?}"
        );
    }
    for bad in [
        "http://10.0.0.1/jwks",
        "http://example.com/jwks",
        "http://[2001:db8::1]/jwks",
    ] {
        for issuer in ["https://as.example.com", "http://127.0.0.1:9"] {
            let r = build(Issuer::with_jwks_uri(issuer, bad));
            assert!(
                matches!(
                    r,
                    Err(ConfigError::KeySource(KeySourceError::InsecureUrl(_)))
                ),
                "with_jwks_uri({issuer}, {bad}): {r:?}"
            );
        }
    }
    let r = build(Issuer::discover("not a url"));
    assert!(matches!(r, Err(ConfigError::KeySource(_))), "{r:?}");

    // The example server refuses the same configuration.
    let listen = "127.0.0.1:0".parse().expect("address");
    let opts = ServerOptions::new("http://example.com", "http://127.0.0.1:9/mcp", listen);
    assert!(files::guard(&opts).is_err());
    let mut opts = ServerOptions::new("https://as.example.com", "http://127.0.0.1:9/mcp", listen);
    opts.jwks_uris = vec!["http://10.0.0.1/jwks".to_owned()];
    assert!(files::guard(&opts).is_err());
}

#[tokio::test]
async fn plain_http_is_fine_for_loopback_and_https_anywhere() {
    // Building makes no request, so none of these hosts is contacted.
    for ok in [
        "http://127.0.0.1:9",
        "http://127.0.0.1:9/tenant1",
        "http://localhost:9",
        "http://LOCALHOST:9/x",
        "http://[::1]:9",
        "https://as.example.com",
        "https://10.0.0.1/tenant",
    ] {
        let r = build(Issuer::discover(ok));
        assert!(r.is_ok(), "discover({ok}): {r:?}");
    }
    for ok in [
        "http://127.0.0.1:9/jwks",
        "http://localhost:9/jwks",
        "http://[::1]:9/jwks",
        "https://as.example.com/jwks",
    ] {
        let r = build(Issuer::with_jwks_uri("https://as.example.com", ok));
        assert!(r.is_ok(), "with_jwks_uri({ok}): {r:?}");
    }
}
