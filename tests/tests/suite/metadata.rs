//! RFC 9728 protected resource metadata as served, and the guard's configuration checks.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Validation};
use mcp_guard::metadata::MetadataSigningKey;
use mcp_guard::{ConfigError, Guard, Issuer};
use mcp_guard_tests::{TestIssuer, TestKey, TestServer};
use serde_json::Value;

#[tokio::test]
async fn metadata_is_served_at_the_path_suffixed_and_root_urls() {
    let issuer = TestIssuer::start(vec![TestKey::rsa1().jwk()]).await;
    let server = TestServer::start(&issuer).await;
    assert!(
        server
            .metadata_url
            .ends_with("/.well-known/oauth-protected-resource/mcp")
    );
    let root = server.metadata_url.trim_end_matches("/mcp").to_owned();
    for url in [server.metadata_url.clone(), root] {
        let a = server.get(&url).await;
        assert_eq!(a.status, 200, "{url}");
        assert_eq!(a.headers["content-type"], "application/json");
        let doc: Value = serde_json::from_str(&a.body).unwrap();
        assert_eq!(doc["resource"], server.mcp_url.as_str());
        assert_eq!(
            doc["authorization_servers"],
            serde_json::json!([issuer.issuer])
        );
        assert_eq!(
            doc["scopes_supported"],
            serde_json::json!(["files:admin", "files:read", "files:shared", "files:write"])
        );
        assert_eq!(
            doc["bearer_methods_supported"],
            serde_json::json!(["header"])
        );
        assert_eq!(doc["resource_name"], "mcp-guard example file store");
        assert!(doc.get("signed_metadata").is_none());
    }
}

fn guard(resource: &str) -> Result<Guard, ConfigError> {
    Guard::builder()
        .resource(resource)
        .issuer(Issuer::with_jwks_uri(
            "https://as.example.com",
            "https://as.example.com/jwks",
        ))
        .build()
}

#[test]
fn resource_urls_are_canonical_and_checked() {
    let g = guard("HTTPS://MCP.Example.COM/mcp/").unwrap();
    assert_eq!(g.resource(), "https://mcp.example.com/mcp");
    assert_eq!(
        g.metadata_url(),
        "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"
    );
    assert_eq!(g.mcp_path(), "/mcp");
    let root = guard("https://mcp.example.com").unwrap();
    assert_eq!(root.resource(), "https://mcp.example.com");
    assert_eq!(
        root.metadata_url(),
        "https://mcp.example.com/.well-known/oauth-protected-resource"
    );
    assert!(guard("http://127.0.0.1:8080/mcp").is_ok());
    for bad in [
        "http://mcp.example.com/mcp",
        "https://mcp.example.com/mcp#x",
        "https://mcp.example.com/mcp?a=b",
        "mcp.example.com/mcp",
        "ftp://mcp.example.com/",
    ] {
        assert!(
            matches!(guard(bad), Err(ConfigError::InvalidResource(_))),
            "{bad}"
        );
    }
    let none = Guard::builder()
        .resource("https://mcp.example.com/mcp")
        .build();
    assert_eq!(none.unwrap_err(), ConfigError::MissingIssuer);
}

#[test]
fn signed_metadata_is_a_jwt_with_iss_over_the_same_fields() {
    let key = TestKey::ec256();
    let signing = MetadataSigningKey {
        issuer: "https://mcp.example.com".into(),
        algorithm: Algorithm::ES256,
        kid: Some("meta-1".into()),
        key: EncodingKey::from_ec_pem(&mcp_guard_tests::keys::key_file("ec256.pem")).unwrap(),
    };
    let g = Guard::builder()
        .resource("https://mcp.example.com/mcp")
        .issuer(Issuer::with_jwks_uri(
            "https://as.example.com",
            "https://as.example.com/jwks",
        ))
        .resource_name("files")
        .sign_metadata(signing)
        .build()
        .unwrap();
    let doc = g.metadata();
    let jwt = doc
        .signed_metadata
        .clone()
        .expect("signed_metadata present");
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(key.jwk()).unwrap();
    let mut v = Validation::new(Algorithm::ES256);
    v.set_required_spec_claims(&["iss"]);
    v.validate_exp = false;
    v.set_issuer(&["https://mcp.example.com"]);
    let data = jsonwebtoken::decode::<Value>(&jwt, &DecodingKey::from_jwk(&jwk).unwrap(), &v)
        .expect("verifies");
    assert_eq!(data.header.kid.as_deref(), Some("meta-1"));
    assert_eq!(data.claims["resource"], "https://mcp.example.com/mcp");
    assert_eq!(data.claims["resource_name"], "files");
    assert!(data.claims.get("signed_metadata").is_none());
}
