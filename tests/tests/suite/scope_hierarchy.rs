//! `Principal::has_scope` follows the server's scope hierarchy (`files:admin` implies
//! `files:read` and `files:write` in the example's catalogue) for every principal a guard
//! verifies, JWT, static token or through a tool; `holds_scope` is what the token lists.

use mcp_guard::{Guard, Issuer, StaticTokens};
use mcp_guard_examples::files;
use mcp_guard_tests::{TestIssuer, TestKey, claims};

const RESOURCE: &str = "http://127.0.0.1:9/mcp";

#[tokio::test]
async fn a_verified_jwt_has_the_scopes_its_scopes_imply() {
    let key = TestKey::rsa1();
    let issuer = TestIssuer::start(vec![key.jwk()]).await;
    let guard = files::configure(Guard::builder().resource(RESOURCE).issuer(
        Issuer::with_jwks_uri(issuer.issuer.clone(), issuer.jwks_uri()),
    ))
    .build()
    .unwrap();
    let admin = guard
        .authenticate(&key.sign(&claims(&issuer.issuer, RESOURCE, "files:admin")))
        .await
        .unwrap();
    for implied in ["files:read", "files:write"] {
        assert!(admin.has_scope(implied), "{implied}");
        assert!(!admin.holds_scope(implied), "{implied}");
    }
    assert!(admin.has_scope("files:admin") && admin.holds_scope("files:admin"));
    assert!(!admin.has_scope("files:shared"));
    let reader = guard
        .authenticate(&key.sign(&claims(&issuer.issuer, RESOURCE, "files:read")))
        .await
        .unwrap();
    assert!(reader.has_scope("files:read"));
    assert!(!reader.has_scope("files:write") && !reader.has_scope("files:admin"));
    // A cached verification carries it too.
    let again = guard
        .authenticate(&key.sign(&claims(&issuer.issuer, RESOURCE, "files:admin")))
        .await
        .unwrap();
    assert!(again.has_scope("files:write"));
}

#[tokio::test]
async fn a_static_token_has_the_scopes_its_scopes_imply() {
    let guard = files::configure(
        Guard::builder()
            .resource(RESOURCE)
            .issuer(Issuer::with_jwks_uri(
                "https://as.example.com",
                "https://as.example.com/jwks",
            ))
            .static_tokens(
                StaticTokens::new()
                    .token("admin-token", "ops", "files:admin")
                    .unwrap(),
            ),
    )
    .build()
    .unwrap();
    let p = guard.authenticate("admin-token").await.unwrap();
    assert!(p.has_scope("files:write") && !p.holds_scope("files:write"));
}
