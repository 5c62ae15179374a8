//! Bad access tokens over real HTTP against the example server: every kind is refused with
//! 401 and `WWW-Authenticate: Bearer error="invalid_token", error_description=…,
//! resource_metadata=…`, the token is never echoed, and no tool runs. Valid tokens of every
//! supported algorithm, key publication style and tolerated variant are accepted.

use std::time::Duration;

use base64::Engine as _;
use jsonwebtoken::Algorithm;
use mcp_guard_tests::keys::{self, alg_name};
use mcp_guard_tests::{Answer, TestIssuer, TestKey, TestServer, claims, now};
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------
// Setup and assertions
// ---------------------------------------------------------------------------------------

async fn setup() -> (TestIssuer, TestServer, TestKey) {
    let key = TestKey::rsa1();
    let issuer = TestIssuer::start(vec![key.jwk()]).await;
    let server = TestServer::start(&issuer).await;
    (issuer, server, key)
}

/// Valid claims for this issuer and server, with a scope that would let `write_file` run.
fn good_claims(issuer: &TestIssuer, server: &TestServer) -> Value {
    claims(&issuer.issuer, &server.mcp_url, "files:admin")
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn b64_decode(text: &str) -> Vec<u8> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .expect("base64url")
}

/// The RFC 9068 header for `key`, to be edited by a test.
fn header_for(key: &TestKey) -> Value {
    json!({"alg": alg_name(key.alg), "typ": "at+jwt", "kid": key.kid})
}

/// `a` is the 401 `invalid_token` refusal of `token`, whose description mentions `reason`,
/// and no tool ran.
fn assert_invalid_token(server: &TestServer, a: &Answer, token: &str, reason: &str, why: &str) {
    assert_eq!(a.status, 401, "{why}: {a:?}");
    let c = a.challenge();
    assert_eq!(c.scheme, "Bearer", "{why}");
    assert_eq!(c.count("error"), 1, "{why}: {c:?}");
    assert_eq!(c.param("error"), Some("invalid_token"), "{why}: {c:?}");
    assert_eq!(
        c.param("resource_metadata"),
        Some(server.metadata_url.as_str()),
        "{why}: {c:?}"
    );
    assert_eq!(c.count("scope"), 0, "{why}: no scope hint on invalid_token");
    let description = c
        .param("error_description")
        .unwrap_or_else(|| panic!("{why}: error_description expected: {c:?}"));
    assert!(
        description.to_lowercase().contains(&reason.to_lowercase()),
        "{why}: description {description:?} should mention {reason:?}"
    );
    let body: Value = serde_json::from_str(&a.body)
        .unwrap_or_else(|e| panic!("{why}: JSON error body expected ({e}): {}", a.body));
    assert_eq!(body["error"], "invalid_token", "{why}: {body}");
    a.assert_not_echoing(token, why);
    assert!(
        server.store.lock().unwrap().is_empty(),
        "{why}: no tool may run"
    );
}

/// Presents `token` to `write_file` (which it would be allowed to call if it were valid) and
/// asserts the 401 `invalid_token` refusal.
async fn assert_refused(server: &TestServer, token: &str, reason: &str, why: &str) {
    let a = server
        .call(
            token,
            "write_file",
            json!({"path": "/pwned", "content": "x"}),
        )
        .await;
    assert_invalid_token(server, &a, token, reason, why);
}

/// `whoami` with `token` runs and sees alice.
async fn assert_accepted(server: &TestServer, token: &str, why: &str) {
    let a = server.call(token, "whoami", json!({})).await;
    assert_eq!(a.status, 200, "{why}: {a:?}");
    let me: Value = serde_json::from_str(&a.tool_text())
        .unwrap_or_else(|e| panic!("{why}: whoami answers JSON ({e}): {a:?}"));
    assert_eq!(me["sub"], "alice", "{why}: {me}");
}

/// `write_file` with `token` runs (the strongest evidence the token was accepted).
async fn assert_writes(server: &TestServer, token: &str, path: &str, why: &str) {
    let a = server
        .call(token, "write_file", json!({"path": path, "content": "ok"}))
        .await;
    assert_eq!(a.status, 200, "{why}: {a:?}");
    assert_eq!(
        a.tool_text(),
        format!("alice wrote 2 bytes to {path}"),
        "{why}"
    );
    assert_eq!(
        server.store.lock().unwrap().get(path).map(String::as_str),
        Some("ok"),
        "{why}"
    );
}

// Descriptions of the refusal reasons (the `TokenError` messages), matched case-insensitively.
const MALFORMED: &str = "not a well-formed signed JWT";
const ALG_NOT_ALLOWED: &str = "signing algorithm is not accepted";
const UNKNOWN_KEY: &str = "unknown key";
const ALG_MISMATCH: &str = "algorithm does not match its key";
const BAD_SIGNATURE: &str = "signature is invalid";
const CRITICAL: &str = "critical header";
const WRONG_TYPE: &str = "token type";
const WRONG_ISSUER: &str = "unexpected issuer";
const WRONG_AUDIENCE: &str = "not issued for this resource";
const EXPIRED: &str = "expired";
const NOT_YET_VALID: &str = "not valid yet";
const IN_FUTURE: &str = "issued in the future";

// ---------------------------------------------------------------------------------------
// Structure
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn random_opaque_string_is_refused() {
    let (_issuer, server, _) = setup().await;
    let opaque = format!("mcp_at_8f3c1d2e9a7b4c6d5e0f1a2b3c4d5e6f{}", now());
    assert_refused(&server, &opaque, MALFORMED, "opaque token").await;
    // Also one that looks like base64 of random bytes, with a single dot.
    let dotted = format!("{}.{}", b64(b"0123456789abcdef"), b64(b"fedcba9876543210"));
    assert_refused(&server, &dotted, MALFORMED, "two-part token").await;
}

#[tokio::test]
async fn tampered_payload_with_original_signature_is_refused() {
    let (issuer, server, key) = setup().await;
    let original = claims(&issuer.issuer, &server.mcp_url, "files:read");
    let token = key.sign(&original);
    // The untouched token is fine for reading but may not write (403, not 401).
    let a = server
        .call(
            &token,
            "write_file",
            json!({"path": "/pwned", "content": "x"}),
        )
        .await;
    assert_eq!(a.status, 403, "{a:?}");

    let mut widened = original.clone();
    widened["scope"] = json!("files:admin");
    let parts: Vec<&str> = token.split('.').collect();
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        b64(widened.to_string().as_bytes()),
        parts[2]
    );
    assert_ne!(tampered, token);
    assert_refused(&server, &tampered, BAD_SIGNATURE, "widened scope").await;

    // Swapping the subject is caught the same way.
    let mut other = original;
    other["sub"] = json!("mallory");
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        b64(other.to_string().as_bytes()),
        parts[2]
    );
    assert_refused(&server, &tampered, BAD_SIGNATURE, "swapped subject").await;
}

#[tokio::test]
async fn jwe_like_five_part_token_is_refused() {
    let (_issuer, server, _) = setup().await;
    let header = json!({"alg": "RSA-OAEP-256", "enc": "A256GCM", "kid": "rsa1", "typ": "at+jwt"});
    let jwe = format!(
        "{}.{}.{}.{}.{}",
        b64(header.to_string().as_bytes()),
        b64(&[7u8; 256]),
        b64(&[1u8; 12]),
        b64(b"ciphertext-of-the-claims"),
        b64(&[9u8; 16]),
    );
    assert_refused(&server, &jwe, MALFORMED, "JWE").await;
    // A four-part token neither.
    let four = jwe.rsplit_once('.').expect("has dots").0.to_owned();
    assert_refused(&server, &four, MALFORMED, "four parts").await;
}

// ---------------------------------------------------------------------------------------
// Time claims
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn expired_token_is_refused() {
    let (issuer, server, key) = setup().await;
    let mut c = good_claims(&issuer, &server);
    c["iat"] = json!(now() - 1200);
    c["exp"] = json!(now() - 600);
    assert_refused(&server, &key.sign(&c), EXPIRED, "exp = now - 600").await;
}

#[tokio::test]
async fn recently_expired_token_is_accepted_within_the_default_leeway() {
    let (issuer, server, key) = setup().await;
    let mut c = good_claims(&issuer, &server);
    c["iat"] = json!(now() - 600);
    c["exp"] = json!(now() - 30);
    assert_writes(
        &server,
        &key.sign(&c),
        "/leeway",
        "exp = now - 30, 60 s leeway",
    )
    .await;
}

#[tokio::test]
async fn recently_expired_token_is_refused_without_leeway() {
    let key = TestKey::rsa1();
    let issuer = TestIssuer::start(vec![key.jwk()]).await;
    let server = TestServer::start_with(&issuer, |o| o.leeway_secs = 0).await;
    let mut c = good_claims(&issuer, &server);
    c["iat"] = json!(now() - 600);
    c["exp"] = json!(now() - 30);
    assert_refused(&server, &key.sign(&c), EXPIRED, "exp = now - 30, no leeway").await;
    // A current token still works on that server.
    assert_accepted(&server, &key.sign(&good_claims(&issuer, &server)), "fresh").await;
}

#[tokio::test]
async fn not_yet_valid_token_is_refused_and_small_nbf_skew_is_tolerated() {
    let (issuer, server, key) = setup().await;
    let mut c = good_claims(&issuer, &server);
    c["nbf"] = json!(now() + 600);
    c["exp"] = json!(now() + 1200);
    assert_refused(&server, &key.sign(&c), NOT_YET_VALID, "nbf = now + 600").await;

    let mut c = good_claims(&issuer, &server);
    c["nbf"] = json!(now() + 30);
    assert_writes(&server, &key.sign(&c), "/nbf", "nbf = now + 30").await;
}

#[tokio::test]
async fn token_issued_in_the_future_is_refused() {
    let (issuer, server, key) = setup().await;
    let mut c = good_claims(&issuer, &server);
    c["iat"] = json!(now() + 3600);
    c["exp"] = json!(now() + 7200);
    assert_refused(&server, &key.sign(&c), IN_FUTURE, "iat = now + 3600").await;
}

#[tokio::test]
async fn token_without_exp_is_refused() {
    let (issuer, server, key) = setup().await;
    let mut c = good_claims(&issuer, &server);
    c.as_object_mut().unwrap().remove("exp");
    assert_refused(&server, &key.sign(&c), "lacks the `exp` claim", "no exp").await;
}

#[tokio::test]
async fn exp_as_a_string_is_refused() {
    let (issuer, server, key) = setup().await;
    let mut c = good_claims(&issuer, &server);
    c["exp"] = json!((now() + 600).to_string());
    assert_refused(
        &server,
        &key.sign(&c),
        "`exp` claim is malformed",
        "exp as string",
    )
    .await;
}

#[tokio::test]
async fn times_beyond_the_numeric_date_range_are_refused_not_saturated() {
    let (issuer, server, key) = setup().await;
    // 1e30, the largest u64, a negative date and the first second after 9999-12-31: each is
    // refused as malformed (none is read as "far in the future").
    for (claim, value) in [
        ("exp", json!(1e30)),
        ("exp", json!(u64::MAX)),
        ("exp", json!(18_446_744_073_709_551_621.0)),
        ("exp", json!(253_402_300_800u64)),
        ("nbf", json!(-1)),
        ("iat", json!(1e300)),
    ] {
        let mut c = good_claims(&issuer, &server);
        c[claim] = value.clone();
        let why = format!("{claim} = {value}");
        assert_refused(
            &server,
            &key.sign(&c),
            &format!("`{claim}` claim is malformed"),
            &why,
        )
        .await;
    }
    // The end of the range itself is a valid date.
    let mut c = good_claims(&issuer, &server);
    c["exp"] = json!(253_402_300_799u64);
    assert_accepted(&server, &key.sign(&c), "exp = 9999-12-31T23:59:59Z").await;
}

#[tokio::test]
async fn an_oversized_token_is_refused_before_any_verification() {
    let (issuer, server, key) = setup().await;
    // A well-signed token of 267 KB (a padding claim), and one just over the 16 KiB default.
    for padding in [267_000, 16 * 1024] {
        let mut c = good_claims(&issuer, &server);
        c["padding"] = json!("x".repeat(padding));
        let token = key.sign(&c);
        assert!(token.len() > 16 * 1024);
        let before = server.running.guard.verification_count();
        assert_refused(
            &server,
            &token,
            "larger than this server accepts",
            "oversized",
        )
        .await;
        assert_eq!(
            server.running.guard.verification_count(),
            before,
            "an oversized token is refused before it is parsed or verified"
        );
    }
    // Well under the limit, a padded token still works.
    let mut c = good_claims(&issuer, &server);
    c["padding"] = json!("x".repeat(8 * 1024));
    assert_accepted(&server, &key.sign(&c), "8 KiB of padding").await;
}

#[tokio::test]
async fn the_token_size_limit_is_configurable() {
    let key = TestKey::rsa1();
    let issuer = TestIssuer::start(vec![key.jwk()]).await;
    let server = TestServer::start_configured(&issuer, |b| b.max_token_bytes(40 * 1024)).await;
    let mut c = good_claims(&issuer, &server);
    c["padding"] = json!("x".repeat(20 * 1024));
    assert_accepted(&server, &key.sign(&c), "20 KiB under a 40 KiB limit").await;
    c["padding"] = json!("x".repeat(40 * 1024));
    assert_refused(
        &server,
        &key.sign(&c),
        "larger than this server accepts",
        "40 KiB of padding over a 40 KiB limit",
    )
    .await;
}

#[tokio::test]
async fn a_maximum_token_lifetime_refuses_longer_lived_tokens() {
    let key = TestKey::rsa1();
    let issuer = TestIssuer::start(vec![key.jwk()]).await;
    let server =
        TestServer::start_configured(&issuer, |b| b.max_token_lifetime(Duration::from_secs(3600)))
            .await;
    let mut c = good_claims(&issuer, &server);
    c["iat"] = json!(now());
    c["exp"] = json!(now() + 1800);
    assert_accepted(&server, &key.sign(&c), "30 minutes").await;
    c["exp"] = json!(now() + 2 * 3600);
    assert_refused(&server, &key.sign(&c), "lifetime", "two hours from iat").await;
    // Without `iat`, the lifetime left from now counts.
    c.as_object_mut().unwrap().remove("iat");
    assert_refused(&server, &key.sign(&c), "lifetime", "two hours from now").await;
    c["exp"] = json!(now() + 600);
    assert_accepted(&server, &key.sign(&c), "ten minutes from now, no iat").await;
}

// ---------------------------------------------------------------------------------------
// Issuer and keys
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn wrong_issuer_is_refused() {
    let (issuer, server, key) = setup().await;
    for iss in [
        "https://evil.example".to_owned(),
        format!("{}/", issuer.issuer),
        issuer.issuer.replace("127.0.0.1", "localhost"),
    ] {
        let mut c = good_claims(&issuer, &server);
        c["iss"] = json!(iss);
        assert_refused(&server, &key.sign(&c), WRONG_ISSUER, &format!("iss {iss}")).await;
    }
}

#[tokio::test]
async fn missing_issuer_is_refused() {
    let (issuer, server, key) = setup().await;
    let mut c = good_claims(&issuer, &server);
    c.as_object_mut().unwrap().remove("iss");
    assert_refused(&server, &key.sign(&c), "lacks the `iss` claim", "no iss").await;
}

#[tokio::test]
async fn foreign_key_under_a_colliding_kid_is_refused() {
    let (issuer, server, _) = setup().await;
    let attacker = TestKey::rsa2().with_kid("rsa1");
    let token = attacker.sign(&good_claims(&issuer, &server));
    assert_refused(&server, &token, BAD_SIGNATURE, "rsa2 material, kid rsa1").await;
}

#[tokio::test]
async fn unknown_kid_is_refused() {
    let (issuer, server, key) = setup().await;
    // Signed by the trusted key, but naming a kid the JWKS does not have.
    let token = key
        .clone()
        .with_kid("no-such-kid")
        .sign(&good_claims(&issuer, &server));
    assert_refused(
        &server,
        &token,
        UNKNOWN_KEY,
        "unknown kid, trusted material",
    )
    .await;
    // And by a foreign key under a foreign kid.
    let token = TestKey::rsa2().sign(&good_claims(&issuer, &server));
    assert_refused(&server, &token, UNKNOWN_KEY, "kid rsa2").await;
    // The trusted kid still works.
    assert_accepted(&server, &key.sign(&good_claims(&issuer, &server)), "rsa1").await;
}

// ---------------------------------------------------------------------------------------
// Audience
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn wrong_audience_is_refused() {
    let (issuer, server, key) = setup().await;
    let other_port = server.mcp_url.replace(
        &format!(":{}/", server.running.addr.port()),
        &format!(":{}/", server.running.addr.port().wrapping_add(1)),
    );
    assert_ne!(other_port, server.mcp_url);
    for aud in [
        json!("https://other.example/mcp"),
        json!(other_port),
        json!(server.mcp_url.replace("/mcp", "/MCP")),
        json!(server.mcp_url.replace("/mcp", "")),
        json!(["https://other.example/mcp", "test-client"]),
        json!([]),
    ] {
        let mut c = good_claims(&issuer, &server);
        c["aud"] = aud.clone();
        assert_refused(
            &server,
            &key.sign(&c),
            WRONG_AUDIENCE,
            &format!("aud {aud}"),
        )
        .await;
    }
}

#[tokio::test]
async fn missing_audience_is_refused() {
    let (issuer, server, key) = setup().await;
    let mut c = good_claims(&issuer, &server);
    c.as_object_mut().unwrap().remove("aud");
    assert_refused(&server, &key.sign(&c), "lacks the `aud` claim", "no aud").await;
}

#[tokio::test]
async fn audience_array_containing_the_resource_is_accepted() {
    let (issuer, server, key) = setup().await;
    let mut c = good_claims(&issuer, &server);
    c["aud"] = json!(["https://other.example/api", server.mcp_url, "account"]);
    assert_writes(&server, &key.sign(&c), "/aud-array", "aud array").await;
}

#[tokio::test]
async fn audience_scheme_and_host_compare_case_insensitively() {
    let (issuer, server, key) = setup().await;
    let upper = server.mcp_url.replacen("http://", "HTTP://", 1);
    assert_ne!(upper, server.mcp_url);
    let mut c = good_claims(&issuer, &server);
    c["aud"] = json!(upper);
    assert_writes(&server, &key.sign(&c), "/aud-case", "upper-case scheme").await;
}

#[tokio::test]
async fn audience_with_a_trailing_slash_is_another_resource() {
    let (issuer, server, key) = setup().await;
    let mut c = good_claims(&issuer, &server);
    c["aud"] = json!(format!("{}/", server.mcp_url));
    assert_refused(&server, &key.sign(&c), WRONG_AUDIENCE, "aud …/mcp/").await;
}

#[tokio::test]
async fn configured_extra_audience_is_accepted() {
    let key = TestKey::rsa1();
    let issuer = TestIssuer::start(vec![key.jwk()]).await;
    let server = TestServer::start_with(&issuer, |o| {
        o.audiences = vec!["api://mcp-files".to_owned()];
    })
    .await;
    let mut c = good_claims(&issuer, &server);
    c["aud"] = json!("api://mcp-files");
    let token = key.sign(&c);
    assert_writes(&server, &token, "/extra-aud", "extra audience").await;
    // The resource URL itself is still accepted there.
    assert_accepted(
        &server,
        &key.sign(&good_claims(&issuer, &server)),
        "resource",
    )
    .await;

    // Without the option, the same kind of token is refused.
    let plain = TestServer::start(&issuer).await;
    let mut c = good_claims(&issuer, &plain);
    c["aud"] = json!("api://mcp-files");
    assert_refused(&plain, &key.sign(&c), WRONG_AUDIENCE, "not configured").await;
}

// ---------------------------------------------------------------------------------------
// Algorithms and headers
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn alg_none_in_any_case_is_refused() {
    let (issuer, server, _) = setup().await;
    let c = good_claims(&issuer, &server);
    for alg in ["none", "None", "NONE", "nOnE"] {
        // Empty signature: not even a well-formed JWS.
        let empty = keys::unsigned(alg, &c, "");
        assert_refused(&server, &empty, MALFORMED, &format!("{alg}, empty sig")).await;
        // A fake signature: refused for the algorithm.
        let fake = keys::unsigned(alg, &c, &b64(b"definitely-a-signature"));
        assert_refused(&server, &fake, ALG_NOT_ALLOWED, &format!("{alg}, fake sig")).await;
    }
}

#[tokio::test]
async fn hmac_keyed_with_the_rsa_public_key_is_refused() {
    let (issuer, server, key) = setup().await;
    let c = good_claims(&issuer, &server);
    let n = key.jwk()["n"].as_str().expect("RSA JWK has n").to_owned();
    let secrets: [(&str, Vec<u8>); 4] = [
        ("PEM", keys::key_file("rsa1.pub.pem")),
        ("DER", keys::key_file("rsa1.pub.der")),
        ("JWK n bytes", b64_decode(&n)),
        ("JWK n text", n.into_bytes()),
    ];
    for (what, secret) in secrets {
        for alg in ["HS256", "hs256"] {
            let header = json!({"alg": alg, "typ": "at+jwt", "kid": "rsa1"});
            let token = keys::sign_hmac(&secret, &header, &c);
            assert_refused(
                &server,
                &token,
                ALG_NOT_ALLOWED,
                &format!("{alg} keyed with {what}"),
            )
            .await;
        }
        // Without a kid (the set has exactly one key).
        let header = json!({"alg": "HS256", "typ": "at+jwt"});
        let token = keys::sign_hmac(&secret, &header, &c);
        assert_refused(
            &server,
            &token,
            ALG_NOT_ALLOWED,
            &format!("kid-less HS256 keyed with {what}"),
        )
        .await;
    }
}

#[tokio::test]
async fn header_alg_other_than_the_keys_alg_is_refused() {
    let (issuer, server, key) = setup().await;
    assert_eq!(key.jwk()["alg"], "RS256");
    // Same RSA material, valid PS256 signature, but the kid's key is RS256-only.
    let ps = TestKey::rsa1_with(Algorithm::PS256).with_kid("rsa1");
    let token = ps.sign(&good_claims(&issuer, &server));
    assert_refused(&server, &token, ALG_MISMATCH, "PS256 under an RS256 kid").await;
    let rs512 = TestKey::rsa1_with(Algorithm::RS512).with_kid("rsa1");
    let token = rs512.sign(&good_claims(&issuer, &server));
    assert_refused(&server, &token, ALG_MISMATCH, "RS512 under an RS256 kid").await;
    // The RS256 token from the same material is fine.
    assert_accepted(&server, &key.sign(&good_claims(&issuer, &server)), "RS256").await;
}

#[tokio::test]
async fn jku_x5u_and_embedded_jwk_headers_are_never_used() {
    let (issuer, server, key) = setup().await;
    let attacker = TestKey::rsa2().with_kid("attacker");
    let canary = issuer.canary_url();
    let c = good_claims(&issuer, &server);
    let base = header_for(&attacker);
    let mut cases = Vec::new();
    for param in ["jku", "x5u"] {
        let mut h = base.clone();
        h[param] = json!(canary);
        cases.push((format!("{param}, unknown kid"), h, UNKNOWN_KEY));
        // Under the trusted kid: the signature is checked with the trusted key.
        let mut h = header_for(&key);
        h[param] = json!(canary);
        cases.push((format!("{param}, kid rsa1"), h, BAD_SIGNATURE));
    }
    let mut h = base.clone();
    h["jwk"] = attacker.jwk();
    cases.push(("embedded jwk, unknown kid".to_owned(), h, UNKNOWN_KEY));
    let mut h = header_for(&key);
    h["jwk"] = attacker.clone().with_kid("rsa1").jwk();
    cases.push(("embedded jwk, kid rsa1".to_owned(), h, BAD_SIGNATURE));
    let mut h = base.clone();
    h["x5c"] = json!([b64(&keys::key_file("rsa1.pub.der"))]);
    cases.push(("x5c, unknown kid".to_owned(), h, UNKNOWN_KEY));

    for (why, header, reason) in cases {
        let token = attacker.sign_with_header(&header, &c);
        assert_refused(&server, &token, reason, &why).await;
    }
    // Give any stray background fetch a chance to show up.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(issuer.canary_hits(), 0, "the canary URL was contacted");
    // The same headers do not break a genuine token either: they are simply ignored.
    let mut h = header_for(&key);
    h["jku"] = json!(canary);
    assert_accepted(&server, &key.sign_with_header(&h, &c), "rsa1 with jku").await;
    assert_eq!(issuer.canary_hits(), 0, "the canary URL was contacted");
}

#[tokio::test]
async fn crit_header_is_refused() {
    let (issuer, server, key) = setup().await;
    let mut h = header_for(&key);
    h["crit"] = json!(["exp-ext"]);
    h["exp-ext"] = json!(now() + 600);
    let token = key.sign_with_header(&h, &good_claims(&issuer, &server));
    assert_refused(&server, &token, CRITICAL, "crit exp-ext").await;
    // Even an empty crit list is refused (RFC 7515 forbids it).
    let mut h = header_for(&key);
    h["crit"] = json!([]);
    let token = key.sign_with_header(&h, &good_claims(&issuer, &server));
    assert_refused(&server, &token, CRITICAL, "crit []").await;
}

// ---------------------------------------------------------------------------------------
// Token type
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn typ_jwt_and_missing_typ_are_refused_by_default() {
    let (issuer, server, key) = setup().await;
    let c = good_claims(&issuer, &server);
    for typ in [json!("JWT"), json!("jwt"), json!("id_token+jwt")] {
        let mut h = header_for(&key);
        h["typ"] = typ.clone();
        let token = key.sign_with_header(&h, &c);
        assert_refused(&server, &token, WRONG_TYPE, &format!("typ {typ}")).await;
    }
    let mut h = header_for(&key);
    h.as_object_mut().unwrap().remove("typ");
    let token = key.sign_with_header(&h, &c);
    assert_refused(&server, &token, WRONG_TYPE, "no typ").await;
}

#[tokio::test]
async fn typ_jwt_and_missing_typ_are_accepted_with_lenient_typ() {
    let key = TestKey::rsa1();
    let issuer = TestIssuer::start(vec![key.jwk()]).await;
    let server = TestServer::start_with(&issuer, |o| o.lenient_typ = true).await;
    let c = good_claims(&issuer, &server);
    let mut h = header_for(&key);
    h["typ"] = json!("JWT");
    assert_writes(&server, &key.sign_with_header(&h, &c), "/jwt", "typ JWT").await;
    h.as_object_mut().unwrap().remove("typ");
    assert_writes(&server, &key.sign_with_header(&h, &c), "/untyped", "no typ").await;
    assert_accepted(&server, &key.sign(&c), "typ at+jwt").await;
    // Lenient is not anything-goes.
    let mut h = header_for(&key);
    h["typ"] = json!("id_token+jwt");
    server.store.lock().unwrap().clear();
    assert_refused(
        &server,
        &key.sign_with_header(&h, &c),
        WRONG_TYPE,
        "typ id_token+jwt",
    )
    .await;
}

#[tokio::test]
async fn typ_application_at_jwt_is_accepted_by_default() {
    let (issuer, server, key) = setup().await;
    let c = good_claims(&issuer, &server);
    for typ in ["application/at+jwt", "AT+JWT", "Application/AT+JWT"] {
        let mut h = header_for(&key);
        h["typ"] = json!(typ);
        assert_accepted(&server, &key.sign_with_header(&h, &c), typ).await;
    }
}

#[tokio::test]
async fn id_token_presented_as_access_token_is_refused() {
    let key = TestKey::rsa1();
    let issuer = TestIssuer::start(vec![key.jwk()]).await;
    let strict = TestServer::start(&issuer).await;
    let lenient = TestServer::start_with(&issuer, |o| o.lenient_typ = true).await;
    let now = now();
    let id_token_claims = json!({
        "iss": issuer.issuer,
        "sub": "alice",
        "aud": "test-client",
        "iat": now,
        "exp": now + 600,
        "auth_time": now - 5,
        "nonce": "n-0S6_WzA2Mj",
        "email": "alice@example.com",
    });
    let mut h = header_for(&key);
    h["typ"] = json!("JWT");
    let id_token = key.sign_with_header(&h, &id_token_claims);
    assert_refused(&strict, &id_token, WRONG_TYPE, "ID token, strict").await;
    assert_refused(&lenient, &id_token, WRONG_AUDIENCE, "ID token, lenient").await;
    // Untyped, as some providers issue them.
    h.as_object_mut().unwrap().remove("typ");
    let id_token = key.sign_with_header(&h, &id_token_claims);
    assert_refused(&lenient, &id_token, WRONG_AUDIENCE, "untyped ID token").await;
    // whoami is refused too, not only tools needing a scope.
    let a = lenient.call(&id_token, "whoami", json!({})).await;
    assert_invalid_token(&lenient, &a, &id_token, WRONG_AUDIENCE, "ID token, whoami");
}

// ---------------------------------------------------------------------------------------
// Valid tokens of every algorithm
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn every_supported_algorithm_is_accepted() {
    let mut signers: Vec<TestKey> = [
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::PS256,
        Algorithm::PS384,
        Algorithm::PS512,
    ]
    .into_iter()
    .map(TestKey::rsa1_with)
    .collect();
    signers.push(TestKey::ec256());
    signers.push(TestKey::ec384());
    signers.push(TestKey::ed25519());
    let kids: std::collections::HashSet<_> = signers.iter().map(|k| k.kid.clone()).collect();
    assert_eq!(kids.len(), signers.len(), "each key has its own kid");

    let issuer = TestIssuer::start(signers.iter().map(TestKey::jwk).collect()).await;
    let server = TestServer::start(&issuer).await;
    for key in &signers {
        let why = format!("{:?} kid {}", key.alg, key.kid);
        let a = server
            .call(
                &key.sign(&claims(&issuer.issuer, &server.mcp_url, "files:read")),
                "whoami",
                json!({}),
            )
            .await;
        assert_eq!(a.status, 200, "{why}: {a:?}");
        let me: Value = serde_json::from_str(&a.tool_text()).expect("whoami JSON");
        assert_eq!(me["sub"], "alice", "{why}");
        assert_eq!(me["client_id"], "test-client", "{why}");
        assert_eq!(me["scopes"], json!(["files:read"]), "{why}");
    }
    // A signature by one key under another key's kid is refused, even for the same material.
    let rs384 = signers[1].clone().with_kid(&signers[0].kid);
    assert_refused(
        &server,
        &rs384.sign(&claims(&issuer.issuer, &server.mcp_url, "files:admin")),
        ALG_MISMATCH,
        "RS384 under the RS256 kid",
    )
    .await;
    let ec = TestKey::ec256().with_kid("ec384");
    assert_refused(
        &server,
        &ec.sign(&claims(&issuer.issuer, &server.mcp_url, "files:admin")),
        ALG_MISMATCH,
        "ES256 under the ES384 kid",
    )
    .await;
}

#[tokio::test]
async fn jwks_without_alg_infer_the_algorithm_from_the_key() {
    let rsa = TestKey::rsa1();
    let ec256 = TestKey::ec256();
    let ec384 = TestKey::ec384();
    let ed = TestKey::ed25519();
    let published: Vec<Value> = [&rsa, &ec256, &ec384, &ed]
        .iter()
        .map(|k| k.jwk_without_alg())
        .collect();
    assert!(published.iter().all(|j| j.get("alg").is_none()));
    let issuer = TestIssuer::start(published).await;
    let server = TestServer::start(&issuer).await;
    for key in [&rsa, &ec256, &ec384, &ed] {
        let token = key.sign(&good_claims(&issuer, &server));
        assert_accepted(&server, &token, &format!("{:?} without alg", key.alg)).await;
    }
    // RSA is inferred as RS256 only: PS256 under the same kid is refused.
    let ps = TestKey::rsa1_with(Algorithm::PS256).with_kid("rsa1");
    assert_refused(
        &server,
        &ps.sign(&good_claims(&issuer, &server)),
        ALG_MISMATCH,
        "PS256 under an alg-less RSA JWK",
    )
    .await;
}

// ---------------------------------------------------------------------------------------
// Subject, and no cached authorization
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn token_without_subject_is_refused() {
    let (issuer, server, key) = setup().await;
    let mut c = good_claims(&issuer, &server);
    c.as_object_mut().unwrap().remove("sub");
    assert_refused(&server, &key.sign(&c), "lacks the `sub` claim", "no sub").await;
    c["sub"] = json!("");
    assert_refused(&server, &key.sign(&c), "lacks the `sub` claim", "empty sub").await;
    c["sub"] = json!(42);
    assert_refused(
        &server,
        &key.sign(&c),
        "`sub` claim is malformed",
        "numeric sub",
    )
    .await;
}

#[tokio::test]
async fn every_request_is_authenticated_afresh() {
    let (issuer, server, key) = setup().await;
    let valid = key.sign(&good_claims(&issuer, &server));
    let mut c = good_claims(&issuer, &server);
    c["iat"] = json!(now() - 1200);
    c["exp"] = json!(now() - 600);
    let expired = key.sign(&c);

    // Stateless: the same client (same connection pool), one request after the other.
    assert_writes(&server, &valid, "/first", "valid token").await;
    server.store.lock().unwrap().clear();
    assert_refused(&server, &expired, EXPIRED, "expired token next").await;
    assert_accepted(&server, &valid, "valid token again").await;

    // Legacy session opened with the valid token: the session does not carry authorization.
    let sid = server.open_session(&valid).await;
    let a = server
        .call_in_session(
            &expired,
            &sid,
            "write_file",
            json!({"path": "/s", "content": "x"}),
        )
        .await;
    assert_invalid_token(&server, &a, &expired, EXPIRED, "expired token in session");
    let a = server
        .call_in_session(&valid, &sid, "whoami", json!({}))
        .await;
    assert_eq!(a.status, 200, "{a:?}");
    let me: Value = serde_json::from_str(&a.tool_text()).expect("whoami JSON");
    assert_eq!(me["sub"], "alice");
}
