//! RFC 9728 protected resource metadata as served, and the guard's configuration checks.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Validation};
use mcp_guard::metadata::{MetadataSigningKey, ScopesSupported};
use mcp_guard::{ConfigError, Guard, Issuer, ScopeSet};
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
            serde_json::json!(["files:read", "files:write"]),
            "the baseline and the advertised scope, not the whole catalogue"
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
    let g = guard("HTTPS://MCP.Example.COM/mcp").unwrap();
    assert_eq!(g.resource(), "https://mcp.example.com/mcp");
    assert_eq!(
        g.metadata_url(),
        "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"
    );
    assert_eq!(g.mcp_path(), "/mcp");
    let root = guard("https://mcp.example.com").unwrap();
    assert_eq!(root.resource(), "https://mcp.example.com");
    assert_eq!(
        guard("https://mcp.example.com/").unwrap().resource(),
        "https://mcp.example.com"
    );
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

/// A resource URL ending with `/` is refused, not trimmed: clients given `…/mcp/` would find
/// nothing at `…/mcp/` while tokens and metadata named `…/mcp`.
#[test]
fn a_resource_url_ending_with_a_slash_is_refused_with_the_url_to_write() {
    for (typed, fix) in [
        (
            "https://mcp.example.com/mcp/",
            "https://mcp.example.com/mcp",
        ),
        (
            "HTTPS://MCP.Example.COM/a/b//",
            "https://mcp.example.com/a/b",
        ),
        ("http://127.0.0.1:8080/mcp/", "http://127.0.0.1:8080/mcp"),
    ] {
        let err = guard(typed).unwrap_err();
        assert!(matches!(err, ConfigError::InvalidResource(_)), "{err:?}");
        assert_eq!(
            err.to_string(),
            format!(
                "invalid resource URL: the resource URL `{typed}` ends with `/`: write it as `{fix}` (clients and tokens use exactly this URL)"
            )
        );
    }
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

/// The example server's metadata with `scopes_supported` configured by `which`.
async fn scopes_supported_with(which: ScopesSupported) -> Value {
    let issuer = TestIssuer::start(vec![TestKey::rsa1().jwk()]).await;
    let server = TestServer::start_configured(&issuer, |b| b.scopes_supported(which)).await;
    let doc: Value =
        serde_json::from_str(&server.get(&server.metadata_url).await.body).expect("metadata JSON");
    server.stop().await;
    doc["scopes_supported"].clone()
}

#[tokio::test]
async fn scopes_supported_lists_the_baseline_and_advertised_scopes_unless_configured() {
    use serde_json::json;
    assert_eq!(
        scopes_supported_with(ScopesSupported::Advertised).await,
        json!(["files:read", "files:write"])
    );
    assert_eq!(
        scopes_supported_with(ScopesSupported::Catalogue).await,
        json!(["files:admin", "files:read", "files:shared", "files:write"])
    );
    let only = ScopeSet::parse("files:shared").expect("scope");
    assert_eq!(
        scopes_supported_with(ScopesSupported::Only(only)).await,
        json!(["files:shared"])
    );
    // Nothing to list: the field is left out (RFC 9728 §2, parameters without values).
    assert_eq!(
        scopes_supported_with(ScopesSupported::Only(ScopeSet::new())).await,
        Value::Null
    );
}

#[test]
fn scopes_supported_names_only_scopes_of_the_catalogue_and_never_offline_access() {
    let build = |listed: &str| {
        let policy = mcp_guard::Policy::builder()
            .scope("files:read")
            .scope("offline_access")
            .baseline(["files:read"])
            .build()
            .expect("policy");
        Guard::builder()
            .resource("https://mcp.example.com/mcp")
            .issuer(Issuer::discover("https://auth.example.com"))
            .policy(policy)
            .scopes_supported(ScopesSupported::Only(
                ScopeSet::parse(listed).expect("scopes"),
            ))
            .build()
    };
    assert!(build("files:read").is_ok());
    for listed in ["files:write", "offline_access", "files:read offline_access"] {
        let err = build(listed).expect_err(listed);
        assert!(
            matches!(&err, ConfigError::UnknownAdvertisedScope(_)),
            "{listed}: {err}"
        );
        assert!(
            err.to_string()
                .contains("offline_access is never advertised")
        );
    }
    // Nor by default, even when the catalogue has it.
    let policy = mcp_guard::Policy::builder()
        .scope("files:read")
        .scope("offline_access")
        .baseline(["files:read"])
        .advertised(["offline_access"])
        .build()
        .expect("policy");
    assert_eq!(policy.scopes_supported().to_string(), "files:read");
}
