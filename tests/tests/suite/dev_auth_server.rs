//! The embedded development authorization server (`mcp_guard::dev`) over real HTTP on
//! 127.0.0.1: discovery and JWKS, dynamic client registration (RFC 7591), the authorization
//! code flow with PKCE and consent, redirect URI rules, code and refresh token handling,
//! client credentials, resource indicators (RFC 8707), scopes, client ID metadata documents,
//! and the token builder for tests. Every token it issues must verify with a [`Guard`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::response::IntoResponse as _;
use base64::Engine as _;
use mcp_guard::TokenError;
use mcp_guard::dev::{DevAuthServer, DevAuthServerBuilder, RunningDevAuthServer};
use mcp_guard::{AuthError, Guard, Issuer};
use mcp_guard_tests::FloodServer;
use reqwest::{Response, StatusCode, Url};
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------
// Setup and helpers
// ---------------------------------------------------------------------------------------

/// RFC 7636 Appendix B: the verifier and its S256 challenge,
/// `BASE64URL(SHA256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"))`.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// The resource tokens are requested for (never contacted).
const RESOURCE: &str = "http://127.0.0.1:1/mcp";
/// The client's redirect URI (never contacted: redirects are not followed).
const REDIRECT: &str = "http://127.0.0.1:1/cb";

async fn start(builder: DevAuthServerBuilder) -> RunningDevAuthServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1");
    builder.start(listener).await.expect("dev server starts")
}

/// An HTTP client that does not follow redirects.
fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .expect("http client")
}

/// An `application/x-www-form-urlencoded` body.
fn form(pairs: &[(&str, &str)]) -> String {
    let mut url = Url::parse("http://form.invalid/").expect("url");
    url.query_pairs_mut().extend_pairs(pairs);
    url.query().unwrap_or_default().to_owned()
}

async fn post_form(
    http: &reqwest::Client,
    url: &str,
    pairs: &[(&str, &str)],
    basic: Option<(&str, &str)>,
) -> Response {
    let mut req = http
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(pairs));
    if let Some((id, secret)) = basic {
        req = req.basic_auth(id, Some(secret));
    }
    req.send().await.expect("POST")
}

/// POST /token.
async fn token_request(
    http: &reqwest::Client,
    dev: &DevAuthServer,
    pairs: &[(&str, &str)],
    basic: Option<(&str, &str)>,
) -> Response {
    post_form(http, &format!("{}/token", dev.issuer()), pairs, basic).await
}

/// POST /register with a JSON body.
async fn register_raw(http: &reqwest::Client, dev: &DevAuthServer, body: &Value) -> Response {
    http.post(format!("{}/register", dev.issuer()))
        .json(body)
        .send()
        .await
        .expect("POST /register")
}

/// Registers a client and returns the registration response (asserting 201).
async fn register(http: &reqwest::Client, dev: &DevAuthServer, body: Value) -> Value {
    let resp = register_raw(http, dev, &body).await;
    assert_eq!(resp.status(), StatusCode::CREATED, "registering {body}");
    resp.json().await.expect("registration JSON")
}

/// Registers a public client (no secret) with `redirect_uris` and returns its id.
async fn register_public(
    http: &reqwest::Client,
    dev: &DevAuthServer,
    redirects: &[&str],
) -> String {
    let reg = register(
        http,
        dev,
        json!({
            "client_name": "test client",
            "redirect_uris": redirects,
            "token_endpoint_auth_method": "none",
        }),
    )
    .await;
    reg["client_id"].as_str().expect("client_id").to_owned()
}

/// GET /authorize with these query parameters.
async fn authorize(
    http: &reqwest::Client,
    dev: &DevAuthServer,
    params: &[(&str, &str)],
) -> Response {
    let url = Url::parse_with_params(&format!("{}/authorize", dev.issuer()), params)
        .expect("authorize URL");
    http.get(url).send().await.expect("GET /authorize")
}

/// The standard parameters of an authorization request with PKCE.
fn authz_params<'a>(client_id: &'a str, redirect_uri: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", redirect_uri),
        ("state", "st-123"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ]
}

/// The `Location` of a redirect (asserting 302/303), as a URL.
fn location(resp: &Response) -> Url {
    assert!(
        matches!(resp.status().as_u16(), 302 | 303),
        "expected a redirect, got {}",
        resp.status()
    );
    let loc = resp
        .headers()
        .get("location")
        .expect("Location header")
        .to_str()
        .expect("ASCII Location");
    Url::parse(loc).expect("absolute Location")
}

fn query_map(url: &Url) -> HashMap<String, String> {
    let mut map = HashMap::new();
    for (k, v) in url.query_pairs() {
        assert!(
            map.insert(k.clone().into_owned(), v.into_owned()).is_none(),
            "parameter `{k}` repeated in {url}"
        );
    }
    map
}

/// The redirect back to `redirect_uri` carries `error` (with `state` and `iss`), and no code.
fn assert_redirect_error(dev: &DevAuthServer, resp: &Response, redirect_uri: &str, error: &str) {
    let url = location(resp);
    assert!(
        url.as_str().starts_with(&format!("{redirect_uri}?")),
        "redirected to {url}, not {redirect_uri}"
    );
    let q = query_map(&url);
    assert_eq!(q.get("error").map(String::as_str), Some(error), "{url}");
    assert!(q.contains_key("error_description"), "{url}");
    assert_eq!(q.get("state").map(String::as_str), Some("st-123"), "{url}");
    assert_eq!(
        q.get("iss").map(String::as_str),
        Some(dev.issuer()),
        "{url}"
    );
    assert!(!q.contains_key("code"), "{url}");
}

/// The code of a successful redirect back to `redirect_uri`, checking `state` and `iss`.
fn code_from(dev: &DevAuthServer, resp: &Response, redirect_uri: &str) -> String {
    let url = location(resp);
    assert!(
        url.as_str().starts_with(&format!("{redirect_uri}?")),
        "redirected to {url}, not {redirect_uri}"
    );
    let q = query_map(&url);
    assert!(!q.contains_key("error"), "{url}");
    assert_eq!(q.get("state").map(String::as_str), Some("st-123"), "{url}");
    assert_eq!(
        q.get("iss").map(String::as_str),
        Some(dev.issuer()),
        "{url}"
    );
    let code = q.get("code").expect("code").clone();
    assert!(code.len() >= 16, "code too short: {code}");
    code
}

/// Runs the auto-approved authorization request and returns the code.
async fn get_code(
    http: &reqwest::Client,
    dev: &DevAuthServer,
    client_id: &str,
    redirect_uri: &str,
    extra: &[(&str, &str)],
) -> String {
    let mut params = authz_params(client_id, redirect_uri);
    params.extend_from_slice(extra);
    let resp = authorize(http, dev, &params).await;
    code_from(dev, &resp, redirect_uri)
}

/// Exchanges a code (public client) and returns the response.
async fn exchange(
    http: &reqwest::Client,
    dev: &DevAuthServer,
    client_id: &str,
    code: &str,
    redirect_uri: &str,
    verifier: &str,
) -> Response {
    token_request(
        http,
        dev,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("code_verifier", verifier),
            ("redirect_uri", redirect_uri),
            ("client_id", client_id),
        ],
        None,
    )
    .await
}

/// A successful token response's JSON, checking status and caching headers.
async fn token_ok(resp: Response) -> Value {
    let status = resp.status();
    let headers = resp.headers().clone();
    let body: Value = resp.json().await.expect("token JSON");
    assert_eq!(status, StatusCode::OK, "token response: {body}");
    assert_eq!(
        headers.get("cache-control").map(|v| v.as_bytes()),
        Some(&b"no-store"[..]),
        "token response must not be cached"
    );
    assert_eq!(
        headers.get("pragma").map(|v| v.as_bytes()),
        Some(&b"no-cache"[..])
    );
    assert_eq!(body["token_type"], "Bearer", "{body}");
    assert!(
        body["access_token"].as_str().is_some_and(|t| !t.is_empty()),
        "{body}"
    );
    body
}

/// An RFC 6749 §5.2 error: status, `error` code, a description, `Cache-Control: no-store`.
async fn assert_oauth_error(resp: Response, status: u16, error: &str) -> Value {
    let got = resp.status();
    let headers = resp.headers().clone();
    let text = resp.text().await.expect("body");
    assert_eq!(
        got.as_u16(),
        status,
        "expected {status} {error}, got {got}: {text}"
    );
    let body: Value = serde_json::from_str(&text).expect("error body is JSON");
    assert_eq!(body["error"], error, "{body}");
    assert!(
        body["error_description"]
            .as_str()
            .is_some_and(|d| !d.is_empty()),
        "{body}"
    );
    assert_eq!(
        headers.get("cache-control").map(|v| v.as_bytes()),
        Some(&b"no-store"[..]),
        "error responses must not be cached: {body}"
    );
    body
}

/// The HTML error page of the authorization endpoint: 400, HTML, no redirect.
async fn assert_error_page(resp: Response) -> String {
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(
        resp.headers().get("location").is_none(),
        "an error about the client or redirect URI must not redirect"
    );
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(ct.starts_with("text/html"), "content-type {ct}");
    let body = resp.text().await.expect("body");
    assert!(body.contains("Authorization error"), "{body}");
    body
}

fn b64_json(part: &str) -> Value {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("JSON")
}

fn jwt_header(token: &str) -> Value {
    b64_json(token.split('.').next().expect("header"))
}

fn jwt_claims(token: &str) -> Value {
    b64_json(token.split('.').nth(1).expect("payload"))
}

/// A guard for `resource` trusting the dev server by discovery.
fn guard_for(dev: &DevAuthServer, resource: &str) -> Guard {
    Guard::builder()
        .resource(resource)
        .issuer(Issuer::discover(dev.issuer()))
        .build()
        .expect("guard builds")
}

fn scope_words(s: &str) -> Vec<&str> {
    let mut v: Vec<&str> = s.split(' ').filter(|w| !w.is_empty()).collect();
    v.sort_unstable();
    v
}

// ---------------------------------------------------------------------------------------
// 1. Metadata and keys
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn metadata_documents_and_jwks() {
    let dev = start(DevAuthServer::builder()).await;
    let http = http();
    let issuer = dev.issuer().to_owned();
    assert!(issuer.starts_with("http://127.0.0.1:"), "{issuer}");
    assert!(!issuer.ends_with('/'), "{issuer}");

    for path in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
    ] {
        let resp = http
            .get(format!("{issuer}{path}"))
            .send()
            .await
            .expect("GET metadata");
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
        let ct = resp.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(ct.starts_with("application/json"), "{path}: {ct}");
        let doc: Value = resp.json().await.expect("JSON");
        assert_eq!(doc["issuer"], json!(issuer), "{path}");
        assert_eq!(
            doc["authorization_endpoint"],
            json!(format!("{issuer}/authorize"))
        );
        assert_eq!(doc["token_endpoint"], json!(format!("{issuer}/token")));
        assert_eq!(
            doc["registration_endpoint"],
            json!(format!("{issuer}/register"))
        );
        assert_eq!(doc["jwks_uri"], json!(format!("{issuer}/jwks")));
        assert_eq!(doc["jwks_uri"], json!(dev.jwks_uri()));
        assert_eq!(doc["code_challenge_methods_supported"], json!(["S256"]));
        assert_eq!(doc["response_types_supported"], json!(["code"]));
        assert_eq!(doc["client_id_metadata_document_supported"], json!(true));
        assert_eq!(
            doc["authorization_response_iss_parameter_supported"],
            json!(true)
        );
        let grants = doc["grant_types_supported"].as_array().expect("grants");
        for g in ["authorization_code", "refresh_token", "client_credentials"] {
            assert!(grants.contains(&json!(g)), "{path}: {g} missing");
        }
        let methods = doc["token_endpoint_auth_methods_supported"]
            .as_array()
            .expect("auth methods");
        for m in ["none", "client_secret_basic", "client_secret_post"] {
            assert!(methods.contains(&json!(m)), "{path}: {m} missing");
        }
        // No scopes configured: none advertised.
        assert!(doc.get("scopes_supported").is_none(), "{doc}");
    }

    let resp = http.get(dev.jwks_uri()).send().await.expect("GET /jwks");
    assert_eq!(resp.status(), StatusCode::OK);
    let jwks: Value = resp.json().await.expect("JSON");
    assert_eq!(jwks, dev.jwks(), "served JWKS equals DevAuthServer::jwks()");
    let keys = jwks["keys"].as_array().expect("keys");
    assert_eq!(keys.len(), 1, "{jwks}");
    let k = &keys[0];
    assert_eq!(k["kty"], "EC");
    assert_eq!(k["crv"], "P-256");
    assert_eq!(k["alg"], "ES256");
    assert_eq!(k["use"], "sig");
    assert!(k["kid"].as_str().is_some_and(|s| !s.is_empty()), "{k}");
    for coord in ["x", "y"] {
        let c = k[coord].as_str().expect("coordinate");
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(c)
            .expect("base64url coordinate");
        assert_eq!(bytes.len(), 32, "{coord}");
    }
    assert!(k.get("d").is_none(), "private key exposed: {k}");
    let obj = k.as_object().unwrap();
    for private in ["d", "p", "q", "dp", "dq", "qi", "k"] {
        assert!(!obj.contains_key(private), "{private} in {k}");
    }

    // Each server has its own key.
    let other = start(DevAuthServer::builder()).await;
    assert_ne!(other.jwks()["keys"][0]["kid"], k["kid"]);
    assert_ne!(other.jwks()["keys"][0]["x"], k["x"]);
}

// ---------------------------------------------------------------------------------------
// 2. Dynamic client registration
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn dynamic_client_registration() {
    let dev = start(DevAuthServer::builder()).await;
    let http = http();

    // Public client.
    let resp = register_raw(
        &http,
        &dev,
        &json!({
            "client_name": "Public app",
            "redirect_uris": [REDIRECT],
            "token_endpoint_auth_method": "none",
        }),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let public: Value = resp.json().await.expect("JSON");
    let public_id = public["client_id"].as_str().expect("client_id");
    assert!(!public_id.is_empty());
    assert!(public.get("client_secret").is_none(), "{public}");
    assert!(public.get("client_secret_expires_at").is_none(), "{public}");
    assert_eq!(public["token_endpoint_auth_method"], "none");
    assert_eq!(public["redirect_uris"], json!([REDIRECT]));
    assert_eq!(public["client_name"], "Public app");
    assert_eq!(
        public["grant_types"],
        json!(["authorization_code", "refresh_token"])
    );
    assert!(public["client_id_issued_at"].as_u64().is_some(), "{public}");

    // Confidential client (the default auth method).
    let conf = register(&http, &dev, json!({ "redirect_uris": [REDIRECT] })).await;
    let conf_id = conf["client_id"].as_str().expect("client_id");
    assert_ne!(conf_id, public_id, "client ids are unique");
    assert!(
        conf["client_secret"]
            .as_str()
            .is_some_and(|s| s.len() >= 16),
        "{conf}"
    );
    assert_eq!(conf["client_secret_expires_at"], 0);
    assert_eq!(conf["token_endpoint_auth_method"], "client_secret_basic");

    // client_secret_post is a confidential client too.
    let post = register(
        &http,
        &dev,
        json!({ "redirect_uris": [REDIRECT], "token_endpoint_auth_method": "client_secret_post" }),
    )
    .await;
    assert!(post["client_secret"].is_string(), "{post}");

    // Private-use scheme of a native app, https, and http://localhost are acceptable.
    register(
        &http,
        &dev,
        json!({
            "redirect_uris": ["com.example.app:/cb", "https://app.example/cb", "http://localhost:8080/cb", "http://[::1]/cb"],
            "token_endpoint_auth_method": "none",
        }),
    )
    .await;

    // A client-credentials-only client needs no redirect URI.
    let svc = register(
        &http,
        &dev,
        json!({ "grant_types": ["client_credentials"] }),
    )
    .await;
    assert_eq!(svc["grant_types"], json!(["client_credentials"]));

    // Invalid redirect URIs.
    for bad in [
        json!(["http://example.com/cb"]),
        json!(["https://app.example/cb#frag"]),
        json!(["http://127.0.0.1:1/cb#x"]),
        json!(["/relative/cb"]),
        json!(["javascript:alert(1)"]),
        json!([REDIRECT, "http://example.com/cb"]),
    ] {
        let resp = register_raw(
            &http,
            &dev,
            &json!({ "redirect_uris": bad, "token_endpoint_auth_method": "none" }),
        )
        .await;
        assert_oauth_error(resp, 400, "invalid_redirect_uri").await;
    }
    // The authorization code grant needs redirect URIs.
    let resp = register_raw(
        &http,
        &dev,
        &json!({ "token_endpoint_auth_method": "none" }),
    )
    .await;
    assert_oauth_error(resp, 400, "invalid_redirect_uri").await;

    // Unknown grant type / auth method.
    for body in [
        json!({ "redirect_uris": [REDIRECT], "grant_types": ["authorization_code", "password"] }),
        json!({ "redirect_uris": [REDIRECT], "grant_types": ["implicit"] }),
        json!({ "redirect_uris": [REDIRECT], "token_endpoint_auth_method": "private_key_jwt" }),
    ] {
        let resp = register_raw(&http, &dev, &body).await;
        assert_oauth_error(resp, 400, "invalid_client_metadata").await;
    }

    // Bodies that are not JSON client metadata.
    for body in [
        "not json",
        "",
        "[1,2]",
        r#"{"redirect_uris": "http://127.0.0.1/cb"}"#,
    ] {
        let resp = http
            .post(format!("{}/register", dev.issuer()))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("POST");
        assert_oauth_error(resp, 400, "invalid_client_metadata").await;
    }
}

// ---------------------------------------------------------------------------------------
// 3. The authorization code flow with PKCE
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn authorization_code_flow_with_pkce() {
    let dev = start(DevAuthServer::builder().auto_approve(true)).await;
    let http = http();
    let client_id = register_public(&http, &dev, &[REDIRECT]).await;

    let mut params = authz_params(&client_id, REDIRECT);
    params.push(("scope", "files:write files:read"));
    params.push(("resource", RESOURCE));
    let resp = authorize(&http, &dev, &params).await;
    let code = code_from(&dev, &resp, REDIRECT);

    let resp = token_request(
        &http,
        &dev,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("code_verifier", VERIFIER),
            ("redirect_uri", REDIRECT),
            ("client_id", &client_id),
            ("resource", RESOURCE),
        ],
        None,
    )
    .await;
    let body = token_ok(resp).await;
    assert_eq!(body["expires_in"], 3600, "{body}");
    assert!(
        body["refresh_token"]
            .as_str()
            .is_some_and(|t| t.len() >= 16),
        "{body}"
    );
    assert_eq!(
        scope_words(body["scope"].as_str().expect("scope")),
        ["files:read", "files:write"]
    );
    let token = body["access_token"].as_str().unwrap();

    let header = jwt_header(token);
    assert_eq!(header["typ"], "at+jwt", "{header}");
    assert_eq!(header["alg"], "ES256", "{header}");
    assert_eq!(header["kid"], dev.jwks()["keys"][0]["kid"], "{header}");

    let claims = jwt_claims(token);
    assert_eq!(claims["iss"], json!(dev.issuer()), "{claims}");
    assert_eq!(claims["sub"], "dev-user", "{claims}");
    assert_eq!(claims["aud"], RESOURCE, "{claims}");
    assert_eq!(claims["client_id"], json!(client_id), "{claims}");
    assert_eq!(
        scope_words(claims["scope"].as_str().expect("scope claim")),
        ["files:read", "files:write"]
    );
    let iat = claims["iat"].as_u64().expect("iat");
    let exp = claims["exp"].as_u64().expect("exp");
    assert_eq!(exp - iat, 3600, "{claims}");
    assert!(
        claims["jti"].as_str().is_some_and(|j| !j.is_empty()),
        "{claims}"
    );

    let guard = guard_for(&dev, RESOURCE);
    let principal = guard.authenticate(token).await.expect("token verifies");
    assert_eq!(principal.subject(), "dev-user");
    assert_eq!(principal.issuer(), dev.issuer());
    assert_eq!(principal.client_id(), Some(client_id.as_str()));
    assert!(principal.has_scope("files:read"));
    assert!(principal.has_scope("files:write"));
    assert_eq!(principal.scopes().len(), 2);
    assert_eq!(principal.token_id(), claims["jti"].as_str());

    // The same token is not for another resource.
    let other = guard_for(&dev, "http://127.0.0.1:2/mcp");
    assert_eq!(
        other.authenticate(token).await.unwrap_err(),
        AuthError::Invalid(TokenError::WrongAudience)
    );
}

#[tokio::test]
async fn configured_subject_and_confidential_client_code_flow() {
    let dev = start(DevAuthServer::builder().auto_approve(true).subject("carol")).await;
    let http = http();
    let (id, secret) = dev.register_confidential_client("web", &[REDIRECT]);
    let code = get_code(&http, &dev, &id, REDIRECT, &[("resource", RESOURCE)]).await;

    // A confidential client must authenticate: naming itself is not enough.
    let resp = exchange(&http, &dev, &id, &code, REDIRECT, VERIFIER).await;
    assert_oauth_error(resp, 401, "invalid_client").await;

    let code = get_code(&http, &dev, &id, REDIRECT, &[("resource", RESOURCE)]).await;
    let resp = token_request(
        &http,
        &dev,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("code_verifier", VERIFIER),
            ("redirect_uri", REDIRECT),
        ],
        Some((&id, &secret)),
    )
    .await;
    let body = token_ok(resp).await;
    // No scope requested: no scope granted.
    assert_eq!(body["scope"], "", "{body}");
    let principal = guard_for(&dev, RESOURCE)
        .authenticate(body["access_token"].as_str().unwrap())
        .await
        .expect("verifies");
    assert_eq!(principal.subject(), "carol");
    assert_eq!(principal.client_id(), Some(id.as_str()));
    assert!(principal.scopes().is_empty());
}

// ---------------------------------------------------------------------------------------
// 4. PKCE failures
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn pkce_is_required_and_checked() {
    let dev = start(DevAuthServer::builder().auto_approve(true)).await;
    let http = http();
    let client_id = register_public(&http, &dev, &[REDIRECT]).await;
    let base = [
        ("response_type", "code"),
        ("client_id", client_id.as_str()),
        ("redirect_uri", REDIRECT),
        ("state", "st-123"),
    ];

    // No code_challenge.
    let resp = authorize(&http, &dev, &base).await;
    assert_redirect_error(&dev, &resp, REDIRECT, "invalid_request");

    // plain is not supported.
    let mut p = base.to_vec();
    p.extend([
        ("code_challenge", VERIFIER),
        ("code_challenge_method", "plain"),
    ]);
    let resp = authorize(&http, &dev, &p).await;
    assert_redirect_error(&dev, &resp, REDIRECT, "invalid_request");

    // No method (defaults to plain in RFC 7636): refused.
    let mut p = base.to_vec();
    p.push(("code_challenge", CHALLENGE));
    let resp = authorize(&http, &dev, &p).await;
    assert_redirect_error(&dev, &resp, REDIRECT, "invalid_request");

    // An S256 challenge that cannot be a SHA-256 digest.
    for bad in [
        "short",
        // 42 characters: the value misprinted in some copies of RFC 7636 appendix B.
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGMSFw-cM",
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM=",
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw+cM",
    ] {
        let mut p = base.to_vec();
        p.extend([("code_challenge", bad), ("code_challenge_method", "S256")]);
        let resp = authorize(&http, &dev, &p).await;
        assert_redirect_error(&dev, &resp, REDIRECT, "invalid_request");
    }

    // Other response types.
    let mut p = authz_params(&client_id, REDIRECT);
    p[0] = ("response_type", "token");
    let resp = authorize(&http, &dev, &p).await;
    assert_redirect_error(&dev, &resp, REDIRECT, "unsupported_response_type");

    // Wrong verifier (well-formed, different).
    let code = get_code(&http, &dev, &client_id, REDIRECT, &[]).await;
    let wrong = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let resp = exchange(&http, &dev, &client_id, &code, REDIRECT, wrong).await;
    assert_oauth_error(resp, 400, "invalid_grant").await;

    // Verifier too short (the challenge itself, 43 chars, is fine length-wise; use 42).
    let code = get_code(&http, &dev, &client_id, REDIRECT, &[]).await;
    let resp = exchange(&http, &dev, &client_id, &code, REDIRECT, &VERIFIER[..42]).await;
    assert_oauth_error(resp, 400, "invalid_grant").await;

    // No verifier at all.
    let code = get_code(&http, &dev, &client_id, REDIRECT, &[]).await;
    let resp = token_request(
        &http,
        &dev,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("client_id", &client_id),
        ],
        None,
    )
    .await;
    assert_oauth_error(resp, 400, "invalid_request").await;
}

// ---------------------------------------------------------------------------------------
// 5. Redirect URI rules
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn redirect_uri_rules() {
    let dev = start(DevAuthServer::builder().auto_approve(true)).await;
    let http = http();
    let client_id = register_public(&http, &dev, &[REDIRECT]).await;

    // Not registered: an error page, never a redirect.
    for bad in [
        "https://evil.example/cb",
        "http://127.0.0.1:1/other",
        "http://127.0.0.1:1/cb/",
        "http://127.0.0.1:1/cb?x=1",
        "http://localhost:1/cb",
        "https://127.0.0.1:1/cb",
    ] {
        let resp = authorize(&http, &dev, &authz_params(&client_id, bad)).await;
        let page = assert_error_page(resp).await;
        assert!(page.contains("redirect_uri"), "{bad}: {page}");
    }

    // Missing redirect_uri, missing or unknown client: error pages.
    let p: Vec<_> = authz_params(&client_id, REDIRECT)
        .into_iter()
        .filter(|(k, _)| *k != "redirect_uri")
        .collect();
    assert_error_page(authorize(&http, &dev, &p).await).await;
    let p: Vec<_> = authz_params(&client_id, REDIRECT)
        .into_iter()
        .filter(|(k, _)| *k != "client_id")
        .collect();
    assert_error_page(authorize(&http, &dev, &p).await).await;
    assert_error_page(authorize(&http, &dev, &authz_params("dev-unknown", REDIRECT)).await).await;

    // Loopback: any port, same path.
    let other_port = "http://127.0.0.1:5555/cb";
    let code = get_code(
        &http,
        &dev,
        &client_id,
        other_port,
        &[("resource", RESOURCE)],
    )
    .await;
    let resp = exchange(&http, &dev, &client_id, &code, other_port, VERIFIER).await;
    let body = token_ok(resp).await;
    assert!(body["refresh_token"].is_string());

    // Exact match for non-loopback registrations.
    let https_client = register_public(&http, &dev, &["https://app.example/cb"]).await;
    let code = get_code(&http, &dev, &https_client, "https://app.example/cb", &[]).await;
    assert!(!code.is_empty());
    for bad in [
        "https://app.example:8443/cb",
        "https://app.example/cb/",
        "http://app.example/cb",
    ] {
        let resp = authorize(&http, &dev, &authz_params(&https_client, bad)).await;
        assert_error_page(resp).await;
    }
}

// ---------------------------------------------------------------------------------------
// 6. Authorization code misuse
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn authorization_code_is_single_use_and_bound() {
    let dev = start(DevAuthServer::builder().auto_approve(true)).await;
    let http = http();
    let client_a = register_public(&http, &dev, &[REDIRECT]).await;
    let client_b = register_public(&http, &dev, &[REDIRECT]).await;

    // Reuse.
    let code = get_code(&http, &dev, &client_a, REDIRECT, &[]).await;
    token_ok(exchange(&http, &dev, &client_a, &code, REDIRECT, VERIFIER).await).await;
    let resp = exchange(&http, &dev, &client_a, &code, REDIRECT, VERIFIER).await;
    assert_oauth_error(resp, 400, "invalid_grant").await;

    // Another client.
    let code = get_code(&http, &dev, &client_a, REDIRECT, &[]).await;
    let resp = exchange(&http, &dev, &client_b, &code, REDIRECT, VERIFIER).await;
    assert_oauth_error(resp, 400, "invalid_grant").await;

    // redirect_uri differs from the authorization request.
    let code = get_code(&http, &dev, &client_a, REDIRECT, &[]).await;
    let resp = exchange(
        &http,
        &dev,
        &client_a,
        &code,
        "http://127.0.0.1:2/cb",
        VERIFIER,
    )
    .await;
    assert_oauth_error(resp, 400, "invalid_grant").await;

    // redirect_uri missing at the token endpoint.
    let code = get_code(&http, &dev, &client_a, REDIRECT, &[]).await;
    let resp = token_request(
        &http,
        &dev,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("code_verifier", VERIFIER),
            ("client_id", &client_a),
        ],
        None,
    )
    .await;
    assert_oauth_error(resp, 400, "invalid_grant").await;

    // A code that was never issued.
    let resp = exchange(&http, &dev, &client_a, "not-a-code", REDIRECT, VERIFIER).await;
    assert_oauth_error(resp, 400, "invalid_grant").await;

    // A public client presenting a secret it does not have.
    let code = get_code(&http, &dev, &client_a, REDIRECT, &[]).await;
    let resp = token_request(
        &http,
        &dev,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("code_verifier", VERIFIER),
            ("redirect_uri", REDIRECT),
        ],
        Some((&client_a, "guess")),
    )
    .await;
    assert_oauth_error(resp, 401, "invalid_client").await;
}

#[tokio::test]
async fn expired_authorization_code_is_refused() {
    let dev = start(
        DevAuthServer::builder()
            .auto_approve(true)
            .code_ttl(Duration::from_millis(200)),
    )
    .await;
    let http = http();
    let client_id = register_public(&http, &dev, &[REDIRECT]).await;
    let code = get_code(&http, &dev, &client_id, REDIRECT, &[]).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let resp = exchange(&http, &dev, &client_id, &code, REDIRECT, VERIFIER).await;
    assert_oauth_error(resp, 400, "invalid_grant").await;
}

// ---------------------------------------------------------------------------------------
// 7. Refresh tokens
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn refresh_tokens_rotate_and_only_narrow() {
    let dev = start(DevAuthServer::builder().auto_approve(true)).await;
    let http = http();
    let client_id = register_public(&http, &dev, &[REDIRECT]).await;
    let other_client = register_public(&http, &dev, &[REDIRECT]).await;
    let guard = guard_for(&dev, RESOURCE);

    let code = get_code(
        &http,
        &dev,
        &client_id,
        REDIRECT,
        &[("scope", "files:read files:write"), ("resource", RESOURCE)],
    )
    .await;
    let first = token_ok(exchange(&http, &dev, &client_id, &code, REDIRECT, VERIFIER).await).await;
    let refresh1 = first["refresh_token"].as_str().unwrap().to_owned();

    let refresh = |token: String, scope: Option<&'static str>, client: String| {
        let http = http.clone();
        let dev = (*dev).clone();
        async move {
            let mut pairs = vec![
                ("grant_type", "refresh_token"),
                ("refresh_token", token.as_str()),
                ("client_id", client.as_str()),
            ];
            if let Some(s) = scope {
                pairs.push(("scope", s));
            }
            token_request(&http, &dev, &pairs, None).await
        }
    };

    // Rotation.
    let second = token_ok(refresh(refresh1.clone(), None, client_id.clone()).await).await;
    let refresh2 = second["refresh_token"]
        .as_str()
        .expect("new refresh token")
        .to_owned();
    assert_ne!(refresh2, refresh1);
    assert_ne!(second["access_token"], first["access_token"]);
    assert_eq!(
        scope_words(second["scope"].as_str().unwrap()),
        ["files:read", "files:write"]
    );
    let p = guard
        .authenticate(second["access_token"].as_str().unwrap())
        .await
        .expect("refreshed token verifies");
    assert_eq!(p.subject(), "dev-user");
    assert_eq!(p.client_id(), Some(client_id.as_str()));
    assert!(p.has_scope("files:write"));
    assert_eq!(
        jwt_claims(second["access_token"].as_str().unwrap())["aud"],
        RESOURCE
    );

    // Narrowing.
    let third =
        token_ok(refresh(refresh2.clone(), Some("files:read"), client_id.clone()).await).await;
    assert_eq!(third["scope"], "files:read");
    let refresh3 = third["refresh_token"].as_str().unwrap().to_owned();
    let p = guard
        .authenticate(third["access_token"].as_str().unwrap())
        .await
        .expect("narrowed token verifies");
    assert!(p.has_scope("files:read"));
    assert!(!p.has_scope("files:write"));

    // Another client cannot use it.
    let resp = refresh(refresh3.clone(), None, other_client.clone()).await;
    assert_oauth_error(resp, 400, "invalid_grant").await;

    // The rotated token is spent: presenting it again fails, and revokes its family.
    let resp = refresh(refresh1.clone(), None, client_id.clone()).await;
    assert_oauth_error(resp, 400, "invalid_grant").await;
    let resp = refresh(refresh3.clone(), None, client_id.clone()).await;
    assert_oauth_error(resp, 400, "invalid_grant").await;

    // Widening (back to what the narrowed grant no longer holds) is refused.
    let code = get_code(
        &http,
        &dev,
        &client_id,
        REDIRECT,
        &[("scope", "files:read")],
    )
    .await;
    let grant = token_ok(exchange(&http, &dev, &client_id, &code, REDIRECT, VERIFIER).await).await;
    let narrow_refresh = grant["refresh_token"].as_str().unwrap().to_owned();
    let resp = refresh(
        narrow_refresh,
        Some("files:read files:write"),
        client_id.clone(),
    )
    .await;
    assert_oauth_error(resp, 400, "invalid_scope").await;

    // A refresh request without the token.
    let resp = token_request(
        &http,
        &dev,
        &[("grant_type", "refresh_token"), ("client_id", &client_id)],
        None,
    )
    .await;
    assert_oauth_error(resp, 400, "invalid_request").await;
}

// ---------------------------------------------------------------------------------------
// 8. Client credentials and token endpoint errors
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn client_credentials_grant() {
    let dev = start(DevAuthServer::builder()).await;
    let http = http();
    let (id, secret) = dev.register_confidential_client("svc", &[]);

    // HTTP Basic.
    let resp = token_request(
        &http,
        &dev,
        &[
            ("grant_type", "client_credentials"),
            ("scope", "jobs:run"),
            ("resource", RESOURCE),
        ],
        Some((&id, &secret)),
    )
    .await;
    let body = token_ok(resp).await;
    assert!(body.get("refresh_token").is_none(), "{body}");
    assert_eq!(body["scope"], "jobs:run");
    let token = body["access_token"].as_str().unwrap();
    let claims = jwt_claims(token);
    assert_eq!(claims["sub"], json!(id), "{claims}");
    assert_eq!(claims["client_id"], json!(id), "{claims}");
    assert_eq!(claims["aud"], RESOURCE, "{claims}");
    let p = guard_for(&dev, RESOURCE)
        .authenticate(token)
        .await
        .expect("client token verifies");
    assert_eq!(p.subject(), id);
    assert!(p.has_scope("jobs:run"));

    // client_secret_post.
    let resp = token_request(
        &http,
        &dev,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &id),
            ("client_secret", &secret),
        ],
        None,
    )
    .await;
    let body = token_ok(resp).await;
    // No resource requested, none configured: no audience.
    assert!(
        jwt_claims(body["access_token"].as_str().unwrap())
            .get("aud")
            .is_none()
    );

    // Wrong secret, unknown client, no authentication: 401 with a Basic challenge.
    for basic in [Some((id.as_str(), "wrong")), Some(("dev-nobody", "x"))] {
        let resp = token_request(&http, &dev, &[("grant_type", "client_credentials")], basic).await;
        let challenge = resp.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(challenge.starts_with("Basic "), "{challenge}");
        assert_oauth_error(resp, 401, "invalid_client").await;
    }
    let resp = token_request(
        &http,
        &dev,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &id),
            ("client_secret", "wrong"),
        ],
        None,
    )
    .await;
    assert!(
        resp.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic ")
    );
    assert_oauth_error(resp, 401, "invalid_client").await;
    let resp = token_request(&http, &dev, &[("grant_type", "client_credentials")], None).await;
    assert!(
        resp.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic ")
    );
    assert_oauth_error(resp, 401, "invalid_client").await;

    // Two authentication methods at once.
    let resp = token_request(
        &http,
        &dev,
        &[
            ("grant_type", "client_credentials"),
            ("client_secret", &secret),
        ],
        Some((&id, &secret)),
    )
    .await;
    assert_oauth_error(resp, 400, "invalid_request").await;

    // Public clients may not use client_credentials, whether or not they registered it.
    let reg = register(
        &http,
        &dev,
        json!({ "grant_types": ["client_credentials"], "token_endpoint_auth_method": "none" }),
    )
    .await;
    assert!(reg.get("client_secret").is_none());
    let public_cc = reg["client_id"].as_str().unwrap();
    let resp = token_request(
        &http,
        &dev,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", public_cc),
        ],
        None,
    )
    .await;
    assert_oauth_error(resp, 400, "unauthorized_client").await;
    let public = register_public(&http, &dev, &[REDIRECT]).await;
    let resp = token_request(
        &http,
        &dev,
        &[("grant_type", "client_credentials"), ("client_id", &public)],
        None,
    )
    .await;
    assert_oauth_error(resp, 400, "unauthorized_client").await;

    // A confidential client registered for client_credentials only may not redeem codes.
    let reg = register(
        &http,
        &dev,
        json!({ "grant_types": ["client_credentials"] }),
    )
    .await;
    let (cc_id, cc_secret) = (
        reg["client_id"].as_str().unwrap(),
        reg["client_secret"].as_str().unwrap(),
    );
    let resp = token_request(
        &http,
        &dev,
        &[
            ("grant_type", "authorization_code"),
            ("code", "x"),
            ("code_verifier", VERIFIER),
            ("redirect_uri", REDIRECT),
        ],
        Some((cc_id, cc_secret)),
    )
    .await;
    assert_oauth_error(resp, 400, "unauthorized_client").await;

    // Missing and unknown grant types.
    let resp = token_request(&http, &dev, &[("scope", "a")], Some((&id, &secret))).await;
    assert_oauth_error(resp, 400, "invalid_request").await;
    for grant in [
        "password",
        "urn:ietf:params:oauth:grant-type:device_code",
        "implicit",
    ] {
        let resp = token_request(&http, &dev, &[("grant_type", grant)], Some((&id, &secret))).await;
        assert_oauth_error(resp, 400, "unsupported_grant_type").await;
    }
}

// ---------------------------------------------------------------------------------------
// 9. Resource indicators
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn resource_indicators() {
    let dev = start(
        DevAuthServer::builder()
            .auto_approve(true)
            .resource(RESOURCE),
    )
    .await;
    let http = http();
    let client_id = register_public(&http, &dev, &[REDIRECT]).await;

    // Another resource, a fragment, a relative reference: invalid_target.
    for bad in ["http://127.0.0.1:2/mcp", "http://127.0.0.1:1/mcp#x", "mcp"] {
        let mut p = authz_params(&client_id, REDIRECT);
        p.push(("resource", bad));
        let resp = authorize(&http, &dev, &p).await;
        assert_redirect_error(&dev, &resp, REDIRECT, "invalid_target");
    }

    // No resource: the configured one.
    let code = get_code(
        &http,
        &dev,
        &client_id,
        REDIRECT,
        &[("scope", "files:read")],
    )
    .await;
    let body = token_ok(exchange(&http, &dev, &client_id, &code, REDIRECT, VERIFIER).await).await;
    let token = body["access_token"].as_str().unwrap();
    assert_eq!(jwt_claims(token)["aud"], RESOURCE);
    let p = guard_for(&dev, RESOURCE)
        .authenticate(token)
        .await
        .expect("verifies");
    assert!(p.has_scope("files:read"));

    // A token request naming another resource than the authorization request.
    let code = get_code(&http, &dev, &client_id, REDIRECT, &[]).await;
    let resp = token_request(
        &http,
        &dev,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("code_verifier", VERIFIER),
            ("redirect_uri", REDIRECT),
            ("client_id", &client_id),
            ("resource", "http://127.0.0.1:2/mcp"),
        ],
        None,
    )
    .await;
    assert_oauth_error(resp, 400, "invalid_target").await;

    // Refresh with another resource.
    let refresh = body["refresh_token"].as_str().unwrap();
    let resp = token_request(
        &http,
        &dev,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh),
            ("client_id", &client_id),
            ("resource", "http://127.0.0.1:2/mcp"),
        ],
        None,
    )
    .await;
    assert_oauth_error(resp, 400, "invalid_target").await;

    // Client credentials too.
    let (id, secret) = dev.register_confidential_client("svc", &[]);
    let resp = token_request(
        &http,
        &dev,
        &[
            ("grant_type", "client_credentials"),
            ("resource", "http://127.0.0.1:2/mcp"),
        ],
        Some((&id, &secret)),
    )
    .await;
    assert_oauth_error(resp, 400, "invalid_target").await;
    let resp = token_request(
        &http,
        &dev,
        &[("grant_type", "client_credentials")],
        Some((&id, &secret)),
    )
    .await;
    let body = token_ok(resp).await;
    assert_eq!(
        jwt_claims(body["access_token"].as_str().unwrap())["aud"],
        RESOURCE
    );
}

// ---------------------------------------------------------------------------------------
// 10. Supported scopes
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn scopes_supported_are_enforced() {
    let dev = start(
        DevAuthServer::builder()
            .auto_approve(true)
            .scopes_supported(["files:read", "files:write"]),
    )
    .await;
    let http = http();
    let doc: Value = http
        .get(format!(
            "{}/.well-known/oauth-authorization-server",
            dev.issuer()
        ))
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("JSON");
    assert_eq!(
        doc["scopes_supported"],
        json!(["files:read", "files:write"])
    );

    let client_id = register_public(&http, &dev, &[REDIRECT]).await;
    for bad in ["files:admin", "files:read files:admin"] {
        let mut p = authz_params(&client_id, REDIRECT);
        p.push(("scope", bad));
        let resp = authorize(&http, &dev, &p).await;
        assert_redirect_error(&dev, &resp, REDIRECT, "invalid_scope");
    }
    // Malformed scope (a character outside RFC 6749 §3.3).
    let mut p = authz_params(&client_id, REDIRECT);
    p.push(("scope", "files\"read"));
    let resp = authorize(&http, &dev, &p).await;
    assert_redirect_error(&dev, &resp, REDIRECT, "invalid_scope");

    let code = get_code(
        &http,
        &dev,
        &client_id,
        REDIRECT,
        &[("scope", "files:read")],
    )
    .await;
    let body = token_ok(exchange(&http, &dev, &client_id, &code, REDIRECT, VERIFIER).await).await;
    assert_eq!(body["scope"], "files:read");

    let (id, secret) = dev.register_confidential_client("svc", &[]);
    let resp = token_request(
        &http,
        &dev,
        &[
            ("grant_type", "client_credentials"),
            ("scope", "files:admin"),
        ],
        Some((&id, &secret)),
    )
    .await;
    assert_oauth_error(resp, 400, "invalid_scope").await;
}

// ---------------------------------------------------------------------------------------
// 11. The consent page
// ---------------------------------------------------------------------------------------

/// The value of a consent page's hidden input `name`.
fn hidden_input(page: &str, name: &str) -> String {
    let marker = format!(r#"name="{name}" value=""#);
    let start = page.find(&marker).expect("hidden input") + marker.len();
    let len = page[start..].find('"').expect("end of value");
    page[start..start + len].to_owned()
}

/// The `request_id` hidden input of a consent page.
fn request_id(page: &str) -> String {
    hidden_input(page, "request_id")
}

async fn consent_page(
    http: &reqwest::Client,
    dev: &DevAuthServer,
    params: &[(&str, &str)],
) -> String {
    let resp = authorize(http, dev, params).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers().get("location").is_none());
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let ct = resp.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(ct.starts_with("text/html"), "{ct}");
    resp.text().await.expect("page")
}

/// Submits the consent form of `page` with `decision`.
async fn decide(
    http: &reqwest::Client,
    dev: &DevAuthServer,
    page: &str,
    decision: &str,
) -> Response {
    let (id, csrf) = (request_id(page), hidden_input(page, "csrf_token"));
    decide_with(
        http,
        dev,
        &[("request_id", &id), ("csrf_token", &csrf)],
        decision,
    )
    .await
}

/// Submits a consent form with these fields and `decision`.
async fn decide_with(
    http: &reqwest::Client,
    dev: &DevAuthServer,
    fields: &[(&str, &str)],
    decision: &str,
) -> Response {
    let mut pairs = fields.to_vec();
    pairs.push(("decision", decision));
    post_form(http, &format!("{}/authorize", dev.issuer()), &pairs, None).await
}

#[tokio::test]
async fn consent_page_approve_deny_and_replay() {
    let dev = start(DevAuthServer::builder()).await;
    let http = http();
    let reg = register(
        &http,
        &dev,
        json!({
            "client_name": "Evil <b>Bold</b> & \"Co\"",
            "redirect_uris": [REDIRECT],
            "token_endpoint_auth_method": "none",
        }),
    )
    .await;
    let client_id = reg["client_id"].as_str().unwrap().to_owned();
    let mut params = authz_params(&client_id, REDIRECT);
    params.push(("scope", "files:read x<y>&z"));
    params.push(("resource", RESOURCE));

    let page = consent_page(&http, &dev, &params).await;
    assert!(page.contains("<code>files:read</code>"), "{page}");
    assert!(page.contains("<code>x&lt;y&gt;&amp;z</code>"), "{page}");
    assert!(!page.contains("x<y>"), "scope not escaped: {page}");
    assert!(
        page.contains("Evil &lt;b&gt;Bold&lt;/b&gt; &amp; &quot;Co&quot;"),
        "{page}"
    );
    assert!(!page.contains("<b>"), "client name not escaped: {page}");
    assert!(page.contains(RESOURCE), "{page}");
    assert!(page.contains("dev-user"), "{page}");
    assert!(page.contains(r#"<form method="post" action="">"#), "{page}");
    let id = request_id(&page);
    assert!(id.len() >= 16, "{id}");

    // Approve: a code that exchanges.
    let resp = decide(&http, &dev, &page, "approve").await;
    let code = code_from(&dev, &resp, REDIRECT);
    let body = token_ok(exchange(&http, &dev, &client_id, &code, REDIRECT, VERIFIER).await).await;
    assert_eq!(
        scope_words(body["scope"].as_str().unwrap()),
        ["files:read", "x<y>&z"]
    );
    let p = guard_for(&dev, RESOURCE)
        .authenticate(body["access_token"].as_str().unwrap())
        .await
        .expect("verifies");
    assert!(p.has_scope("x<y>&z"));

    // The request cannot be decided twice.
    let resp = decide(&http, &dev, &page, "approve").await;
    assert_error_page(resp).await;
    let resp = decide(&http, &dev, &page, "deny").await;
    assert_error_page(resp).await;
    // Nor can an unknown one.
    let unknown = [("request_id", "made-up"), ("csrf_token", "x")];
    assert_error_page(decide_with(&http, &dev, &unknown, "approve").await).await;

    // Deny.
    let page = consent_page(&http, &dev, &params).await;
    let id2 = request_id(&page);
    assert_ne!(id2, id);
    let resp = decide(&http, &dev, &page, "deny").await;
    assert_redirect_error(&dev, &resp, REDIRECT, "access_denied");
    assert_error_page(decide(&http, &dev, &page, "approve").await).await;

    // Errors in the request are reported before any consent page.
    let mut p = authz_params(&client_id, REDIRECT);
    p.retain(|(k, _)| *k != "code_challenge");
    let resp = authorize(&http, &dev, &p).await;
    assert_redirect_error(&dev, &resp, REDIRECT, "invalid_request");

    // Without a client name the page names the client id; without scopes it says so.
    let reg_anon = register(
        &http,
        &dev,
        json!({ "redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none" }),
    )
    .await;
    let anon_id = reg_anon["client_id"].as_str().unwrap();
    let page = consent_page(&http, &dev, &authz_params(anon_id, REDIRECT)).await;
    assert!(page.contains(anon_id), "{page}");
    assert!(page.contains("no scopes"), "{page}");
}

// ---------------------------------------------------------------------------------------
// 12. Client ID metadata documents
// ---------------------------------------------------------------------------------------

struct DocServer {
    origin: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for DocServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves `/client.json` (a correct document) and `/wrong.json` (whose `client_id` is not
/// its URL) on 127.0.0.1.
async fn doc_server(redirect_uris: &[&str]) -> DocServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let origin = format!("http://{}", listener.local_addr().expect("addr"));
    let good = json!({
        "client_id": format!("{origin}/client.json"),
        "client_name": "Metadata <Client>",
        "redirect_uris": redirect_uris,
        "token_endpoint_auth_method": "none",
    });
    let wrong = json!({
        "client_id": format!("{origin}/client.json"),
        "client_name": "Impostor",
        "redirect_uris": redirect_uris,
    });
    let app = axum::Router::new()
        .route(
            "/client.json",
            axum::routing::get(move || {
                let good = good.clone();
                async move { axum::Json(good) }
            }),
        )
        .route(
            "/wrong.json",
            axum::routing::get(move || {
                let wrong = wrong.clone();
                async move { axum::Json(wrong) }
            }),
        )
        .route("/notjson", axum::routing::get(|| async { "hello" }));
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    DocServer { origin, task }
}

#[tokio::test]
async fn client_id_metadata_documents() {
    let docs = doc_server(&[REDIRECT]).await;
    let client_id = format!("{}/client.json", docs.origin);
    let dev = start(
        DevAuthServer::builder()
            .auto_approve(true)
            .loopback_client_metadata(true),
    )
    .await;
    let http = http();

    let code = get_code(
        &http,
        &dev,
        &client_id,
        REDIRECT,
        &[("resource", RESOURCE), ("scope", "files:read")],
    )
    .await;
    let body = token_ok(exchange(&http, &dev, &client_id, &code, REDIRECT, VERIFIER).await).await;
    let p = guard_for(&dev, RESOURCE)
        .authenticate(body["access_token"].as_str().unwrap())
        .await
        .expect("verifies");
    assert_eq!(p.client_id(), Some(client_id.as_str()));
    assert!(p.has_scope("files:read"));

    // The refresh token works for the metadata-document client too.
    let resp = token_request(
        &http,
        &dev,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", body["refresh_token"].as_str().unwrap()),
            ("client_id", &client_id),
        ],
        None,
    )
    .await;
    token_ok(resp).await;

    // A redirect URI the document does not list.
    let resp = authorize(
        &http,
        &dev,
        &authz_params(&client_id, "https://evil.example/cb"),
    )
    .await;
    assert_error_page(resp).await;

    // A document whose client_id is not its URL; one that is not JSON; one that is missing.
    for path in ["/wrong.json", "/notjson", "/missing.json"] {
        let id = format!("{}{path}", docs.origin);
        let resp = authorize(&http, &dev, &authz_params(&id, REDIRECT)).await;
        assert_error_page(resp).await;
    }
    // The wrong document cannot get tokens either.
    let resp = exchange(
        &http,
        &dev,
        &format!("{}/wrong.json", docs.origin),
        "x",
        REDIRECT,
        VERIFIER,
    )
    .await;
    assert_oauth_error(resp, 401, "invalid_client").await;

    // A URL without a path is not a metadata document.
    let resp = authorize(
        &http,
        &dev,
        &authz_params(&format!("{}/", docs.origin), REDIRECT),
    )
    .await;
    assert_error_page(resp).await;

    // The consent page shows the document's name, escaped.
    let consent = start(DevAuthServer::builder().loopback_client_metadata(true)).await;
    let page = consent_page(&http, &consent, &authz_params(&client_id, REDIRECT)).await;
    assert!(page.contains("Metadata &lt;Client&gt;"), "{page}");

    // Loopback documents are disabled by default: the loopback document is refused.
    let strict = start(DevAuthServer::builder().auto_approve(true)).await;
    let resp = authorize(&http, &strict, &authz_params(&client_id, REDIRECT)).await;
    assert_error_page(resp).await;
}

/// Serves documents whose `client_id` is their own URL, counting requests per path:
/// `/client.json` (a good one), `/javascript.json` and `/plainhttp.json` (listing a
/// `javascript:` and a plain-http non-loopback redirect URI), and `/status500` (an error
/// whose body must never reach the browser).
struct HostileDocs {
    origin: String,
    hits: Arc<Mutex<HashMap<String, usize>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for HostileDocs {
    fn drop(&mut self) {
        self.task.abort();
    }
}

const UPSTREAM_SECRET: &str = "upstream-secret-body-7d1e";

impl HostileDocs {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let origin = format!("http://{}", listener.local_addr().expect("addr"));
        let hits: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
        let (o, h) = (origin.clone(), hits.clone());
        let app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
            let (origin, hits) = (o.clone(), h.clone());
            async move {
                let path = uri.path().to_owned();
                *hits.lock().unwrap().entry(path.clone()).or_default() += 1;
                let redirects = match path.as_str() {
                    "/client.json" => json!([REDIRECT]),
                    "/javascript.json" => json!(["javascript:alert(document.cookie)"]),
                    "/plainhttp.json" => json!(["http://evil.example/cb"]),
                    _ => {
                        return (
                            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                            UPSTREAM_SECRET,
                        )
                            .into_response();
                    }
                };
                axum::Json(json!({
                    "client_id": format!("{origin}{path}"),
                    "client_name": "Hostile",
                    "redirect_uris": redirects,
                }))
                .into_response()
            }
        });
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { origin, hits, task }
    }

    fn hits(&self, path: &str) -> usize {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }

    fn total_hits(&self) -> usize {
        self.hits.lock().unwrap().values().sum()
    }
}

#[tokio::test]
async fn client_metadata_documents_only_from_allowed_urls_and_cached() {
    let docs = HostileDocs::start().await;
    let http = http();
    let good = format!("{}/client.json", docs.origin);

    // By default nothing is fetched from loopback, nor from internal or insecure URLs.
    let strict = start(DevAuthServer::builder().auto_approve(true)).await;
    let port = docs.origin.rsplit(':').next().unwrap().to_owned();
    for client_id in [
        good.clone(),
        format!("https://127.0.0.1:{port}/client.json"),
        format!("http://localhost:{port}/client.json"),
        "http://as.example/client.json".to_owned(),
        "https://10.0.0.1/client.json".to_owned(),
        "https://169.254.169.254/latest/meta-data".to_owned(),
        "https://[fd00::1]/client.json".to_owned(),
        "https://0.0.0.0/client.json".to_owned(),
        "https://user:pw@as.example/client.json".to_owned(),
        "https://as.example/a/../client.json".to_owned(),
        "https://as.example/client.json#x".to_owned(),
    ] {
        let resp = authorize(&http, &strict, &authz_params(&client_id, REDIRECT)).await;
        let page = assert_error_page(resp).await;
        assert!(page.contains("unknown client"), "{client_id}: {page}");
    }
    assert_eq!(docs.total_hits(), 0, "a refused URL was fetched");

    // Loopback documents when enabled, fetched once for repeated requests.
    let dev = start(
        DevAuthServer::builder()
            .auto_approve(true)
            .loopback_client_metadata(true),
    )
    .await;
    for _ in 0..3 {
        get_code(&http, &dev, &good, REDIRECT, &[]).await;
    }
    assert_eq!(docs.hits("/client.json"), 1, "the document is cached");

    // The upstream's status and body never reach the browser: one generic message.
    let failing = format!("{}/status500", docs.origin);
    let page =
        assert_error_page(authorize(&http, &dev, &authz_params(&failing, REDIRECT)).await).await;
    assert!(!page.contains(UPSTREAM_SECRET), "{page}");
    assert!(!page.contains("500"), "{page}");
    assert!(
        page.contains("could not be fetched or is not valid"),
        "{page}"
    );
    assert_eq!(docs.hits("/status500"), 1);

    // Redirect URIs of documents obey the registration rules, even when requested as listed.
    for (path, redirect) in [
        ("/javascript.json", "javascript:alert(document.cookie)"),
        ("/plainhttp.json", "http://evil.example/cb"),
    ] {
        let client_id = format!("{}{path}", docs.origin);
        let resp = authorize(&http, &dev, &authz_params(&client_id, redirect)).await;
        assert!(
            resp.headers().get("location").is_none(),
            "{path}: redirected"
        );
        assert_error_page(resp).await;
        assert_eq!(docs.hits(path), 1, "{path}");
        // The same URIs are refused at registration.
        let resp = register_raw(
            &http,
            &dev,
            &json!({"redirect_uris": [redirect], "token_endpoint_auth_method": "none"}),
        )
        .await;
        assert_oauth_error(resp, 400, "invalid_redirect_uri").await;
    }
}

/// GET `path` on the dev server with this `Host` header.
async fn get_with_host(
    http: &reqwest::Client,
    dev: &DevAuthServer,
    path: &str,
    host: &str,
) -> Response {
    http.get(format!("{}{path}", dev.issuer()))
        .header("host", host)
        .send()
        .await
        .expect("GET")
}

#[tokio::test]
async fn other_hosts_get_421_on_every_endpoint() {
    // A page that rebinds its own name to 127.0.0.1 sends its own name as Host.
    let dev = start(DevAuthServer::builder().allowed_host("auth.dev.test")).await;
    let http = http();
    let port = Url::parse(dev.issuer()).unwrap().port().unwrap();
    for path in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
        "/jwks",
        "/authorize?client_id=x",
    ] {
        for host in [
            format!("rebind.attacker.example:{port}"),
            "rebind.attacker.example".to_owned(),
            format!("127.0.0.1:{}", port.wrapping_add(1)),
            format!("127.0.0.2:{port}"),
        ] {
            let resp = get_with_host(&http, &dev, path, &host).await;
            assert_eq!(
                resp.status(),
                StatusCode::MISDIRECTED_REQUEST,
                "{path} {host}"
            );
            assert!(
                !resp.text().await.unwrap().contains("issuer"),
                "{path} {host}"
            );
        }
        for host in [
            format!("127.0.0.1:{port}"),
            format!("localhost:{port}"),
            format!("[::1]:{port}"),
            format!("auth.dev.test:{port}"),
        ] {
            let resp = get_with_host(&http, &dev, path, &host).await;
            assert_ne!(
                resp.status(),
                StatusCode::MISDIRECTED_REQUEST,
                "{path} {host}"
            );
        }
    }
    for path in ["/token", "/register", "/authorize"] {
        let resp = http
            .post(format!("{}{path}", dev.issuer()))
            .header("host", "rebind.attacker.example")
            .header("content-type", "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials")
            .send()
            .await
            .expect("POST");
        assert_eq!(resp.status(), StatusCode::MISDIRECTED_REQUEST, "{path}");
    }
}

#[tokio::test]
async fn the_consent_page_cannot_be_framed_nor_its_form_forged() {
    let dev = start(DevAuthServer::builder()).await;
    let http = http();
    let client_id = register_public(&http, &dev, &[REDIRECT]).await;
    let params = authz_params(&client_id, REDIRECT);
    let resp = authorize(&http, &dev, &params).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["x-frame-options"], "DENY");
    let csp = resp.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    let page = resp.text().await.unwrap();
    let (id, csrf) = (request_id(&page), hidden_input(&page, "csrf_token"));
    assert!(csrf.len() >= 16, "{csrf}");

    // Another page's token, a made-up one, none: refused, and the request stays pending.
    let other = consent_page(&http, &dev, &params).await;
    let other_csrf = hidden_input(&other, "csrf_token");
    assert_ne!(other_csrf, csrf);
    for fields in [
        vec![
            ("request_id", id.as_str()),
            ("csrf_token", other_csrf.as_str()),
        ],
        vec![("request_id", id.as_str()), ("csrf_token", "forged")],
        vec![("request_id", id.as_str())],
    ] {
        let resp = decide_with(&http, &dev, &fields, "approve").await;
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{fields:?}");
        assert!(resp.headers().get("location").is_none());
        assert_eq!(resp.headers()["x-frame-options"], "DENY");
    }
    // The form as served goes through.
    let resp = decide(&http, &dev, &page, "approve").await;
    let code = code_from(&dev, &resp, REDIRECT);
    token_ok(exchange(&http, &dev, &client_id, &code, REDIRECT, VERIFIER).await).await;
    // Error pages are not frameable either.
    let resp = decide(&http, &dev, &page, "approve").await;
    assert_eq!(resp.headers()["x-frame-options"], "DENY");
    assert_error_page(resp).await;
}

#[tokio::test]
async fn reusing_a_rotated_refresh_token_revokes_its_family() {
    let dev = start(DevAuthServer::builder().auto_approve(true)).await;
    let http = http();
    let client_id = register_public(&http, &dev, &[REDIRECT]).await;
    let refresh = |token: String| {
        let (http, dev, client_id) = (http.clone(), (*dev).clone(), client_id.clone());
        async move {
            token_request(
                &http,
                &dev,
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", &token),
                    ("client_id", &client_id),
                ],
                None,
            )
            .await
        }
    };
    let grant = |_: ()| {
        let (http, dev, client_id) = (http.clone(), (*dev).clone(), client_id.clone());
        async move {
            let code = get_code(&http, &dev, &client_id, REDIRECT, &[]).await;
            let body =
                token_ok(exchange(&http, &dev, &client_id, &code, REDIRECT, VERIFIER).await).await;
            (code, body["refresh_token"].as_str().unwrap().to_owned())
        }
    };
    let (_, r1) = grant(()).await;
    let (_, unrelated) = grant(()).await;
    let r2 = token_ok(refresh(r1.clone()).await).await["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let r3 = token_ok(refresh(r2.clone()).await).await["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();

    // An attacker replays r1: refused, and the holder's newest token r3 dies with it.
    let body = assert_oauth_error(refresh(r1.clone()).await, 400, "invalid_grant").await;
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("revoked"),
        "{body}"
    );
    assert_oauth_error(refresh(r3.clone()).await, 400, "invalid_grant").await;
    assert_oauth_error(refresh(r2.clone()).await, 400, "invalid_grant").await;
    // Another grant of the same client is untouched.
    token_ok(refresh(unrelated).await).await;

    // An authorization code exchanged twice revokes what it gave.
    let (code, from_code) = grant(()).await;
    let resp = exchange(&http, &dev, &client_id, &code, REDIRECT, VERIFIER).await;
    assert_oauth_error(resp, 400, "invalid_grant").await;
    assert_oauth_error(refresh(from_code).await, 400, "invalid_grant").await;
}

#[tokio::test]
async fn an_endless_client_metadata_document_is_cut_off() {
    // A document URL that streams hundreds of MiB: the server stops reading past 64 KiB,
    // shows its error page, and the document's server only got to send what the socket
    // buffers hold.
    let dev = start(
        DevAuthServer::builder()
            .auto_approve(true)
            .loopback_client_metadata(true),
    )
    .await;
    let http = http();
    for (n, declare_length) in [false, true].into_iter().enumerate() {
        let flood = FloodServer::start(declare_length).await;
        let client_id = format!("{}/client.json", flood.origin);
        let resp = authorize(&http, &dev, &authz_params(&client_id, REDIRECT)).await;
        assert_error_page(resp).await;
        let sent = flood.sent_once_ended(1).await;
        assert!(
            sent < mcp_guard_tests::flood::BOUNDED_BY,
            "case {n}: the server read on: {sent} bytes sent"
        );
    }
}

// ---------------------------------------------------------------------------------------
// 13. The token builder for tests
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn token_builder_for_tests() {
    let dev = start(DevAuthServer::builder()).await;
    let url = "http://127.0.0.1:8080/mcp";
    let guard = guard_for(&dev, url);

    let token = dev
        .token()
        .subject("alice")
        .scope("files:read")
        .audience(url)
        .sign();
    assert_eq!(jwt_header(&token)["typ"], "at+jwt");
    let p = guard.authenticate(&token).await.expect("verifies");
    assert_eq!(p.subject(), "alice");
    assert_eq!(p.issuer(), dev.issuer());
    assert_eq!(p.client_id(), Some("dev-client"));
    assert!(p.has_scope("files:read"));
    assert_eq!(p.scopes().len(), 1);
    assert!(p.roles().is_empty());
    let claims = jwt_claims(&token);
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
        3600,
        "{claims}"
    );
    assert!(claims["jti"].is_string());

    // Two tokens have different ids.
    let again = dev.token().audience(url).sign();
    assert_ne!(jwt_claims(&again)["jti"], claims["jti"]);

    // Another audience.
    let other = dev.token().audience("http://127.0.0.1:9/mcp").sign();
    assert_eq!(
        guard.authenticate(&other).await.unwrap_err(),
        AuthError::Invalid(TokenError::WrongAudience)
    );

    // Expired: exp = now. With the default 60 s leeway it is still within tolerance, so the
    // check uses a guard without leeway; a token expired an hour ago fails the default guard.
    let zero = dev.token().audience(url).expires_in(Duration::ZERO).sign();
    let zero_claims = jwt_claims(&zero);
    assert_eq!(zero_claims["exp"], zero_claims["iat"]);
    let strict_time = Guard::builder()
        .resource(url)
        .issuer(Issuer::discover(dev.issuer()))
        .leeway(Duration::ZERO)
        .build()
        .expect("guard");
    assert_eq!(
        strict_time.authenticate(&zero).await.unwrap_err(),
        AuthError::Invalid(TokenError::Expired)
    );
    let iat = zero_claims["iat"].as_u64().unwrap();
    let old = dev
        .token()
        .audience(url)
        .claim("iat", iat - 7200)
        .claim("exp", iat - 3600)
        .sign();
    assert_eq!(
        guard.authenticate(&old).await.unwrap_err(),
        AuthError::Invalid(TokenError::Expired)
    );

    // No typ: refused by the default (RFC 9068) guard, accepted by a lenient one.
    let untyped = dev.token().audience(url).typ(None).sign();
    assert!(jwt_header(&untyped).get("typ").is_none());
    assert_eq!(
        guard.authenticate(&untyped).await.unwrap_err(),
        AuthError::Invalid(TokenError::WrongType)
    );
    let lenient = Guard::builder()
        .resource(url)
        .issuer(Issuer::discover(dev.issuer()).typ(mcp_guard::TypPolicy::lenient()))
        .build()
        .expect("guard");
    lenient
        .authenticate(&untyped)
        .await
        .expect("lenient accepts");
    let jwt_typ = dev.token().audience(url).typ(Some("JWT")).sign();
    assert_eq!(
        guard.authenticate(&jwt_typ).await.unwrap_err(),
        AuthError::Invalid(TokenError::WrongType)
    );

    // Missing claims.
    let no_aud = dev.token().audience(url).without("aud").sign();
    assert!(jwt_claims(&no_aud).get("aud").is_none());
    assert_eq!(
        guard.authenticate(&no_aud).await.unwrap_err(),
        AuthError::Invalid(TokenError::MissingClaim("aud"))
    );
    let no_exp = dev.token().audience(url).without("exp").sign();
    assert_eq!(
        guard.authenticate(&no_exp).await.unwrap_err(),
        AuthError::Invalid(TokenError::MissingClaim("exp"))
    );
    let no_sub = dev.token().audience(url).without("sub").sign();
    assert_eq!(
        guard.authenticate(&no_sub).await.unwrap_err(),
        AuthError::Invalid(TokenError::MissingClaim("sub"))
    );
    let wrong_iss = dev
        .token()
        .audience(url)
        .claim("iss", "http://127.0.0.1:9")
        .sign();
    assert_eq!(
        guard.authenticate(&wrong_iss).await.unwrap_err(),
        AuthError::Invalid(TokenError::WrongIssuer)
    );

    // Extra claims.
    let admin = dev
        .token()
        .audience(url)
        .client_id("cli-7")
        .claim("roles", json!(["admin", "auditor"]))
        .claim("tenant", "t1")
        .sign();
    let p = guard.authenticate(&admin).await.expect("verifies");
    assert_eq!(p.roles(), ["admin", "auditor"]);
    assert_eq!(p.client_id(), Some("cli-7"));
    assert_eq!(p.claim::<String>("tenant").as_deref(), Some("t1"));
    // Every claim as sent, on the first verification and on a cache hit alike.
    let sent = mcp_guard::testing::claims_of(&admin).expect("a JWT");
    assert_eq!(p.claims(), &sent);
    let again = guard.authenticate(&admin).await.expect("a cache hit");
    assert_eq!(again.claims(), &sent);
    assert_eq!(
        again.claim::<Vec<String>>("roles").unwrap(),
        ["admin", "auditor"]
    );

    // A token from another dev server (another key) is refused.
    let stranger = start(DevAuthServer::builder()).await;
    let foreign = stranger
        .token()
        .audience(url)
        .claim("iss", dev.issuer())
        .sign();
    assert_eq!(
        guard.authenticate(&foreign).await.unwrap_err(),
        AuthError::Invalid(TokenError::UnknownKey)
    );
}

// ---------------------------------------------------------------------------------------
// 14. Embedded in a server with its own scopes
// ---------------------------------------------------------------------------------------

/// The ticket tracker with the development server embedded (`--dev-auth`), both on loopback.
async fn tickets_with_dev_auth() -> mcp_guard_examples::tickets::RunningTickets {
    use mcp_guard_examples::tickets::{self, TicketOptions};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1");
    let auth = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1");
    let options = TicketOptions {
        listen: listener.local_addr().expect("address"),
        resource: None,
        issuer: None,
        dev_auth: true,
        auth_listen: auth.local_addr().expect("address"),
        auto_approve: true,
    };
    tickets::start(&options, listener, Some(auth))
        .await
        .expect("the ticket tracker starts")
}

/// A token from the code flow with PKCE (public client, auto-approved) for `scope`.
async fn code_flow_token(
    http: &reqwest::Client,
    dev: &DevAuthServer,
    scope: &str,
    resource: &str,
) -> String {
    let client_id = register_public(http, dev, &[REDIRECT]).await;
    let code = get_code(
        http,
        dev,
        &client_id,
        REDIRECT,
        &[("scope", scope), ("resource", resource)],
    )
    .await;
    let body = token_ok(exchange(http, dev, &client_id, &code, REDIRECT, VERIFIER).await).await;
    body["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned()
}

#[tokio::test]
async fn an_embedded_dev_server_issues_the_servers_own_scopes_and_the_guard_accepts_them() {
    use rmcp::ServiceExt as _;
    use rmcp::model::CallToolRequestParams;
    use rmcp::transport::StreamableHttpClientTransport;
    use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;

    let tickets = tickets_with_dev_auth().await;
    let dev = tickets
        .dev
        .as_ref()
        .expect("the embedded development server");
    let http = http();

    // Its metadata lists what the guard advertises: the baseline and `#[advertised]` scopes.
    let doc: Value = http
        .get(format!(
            "{}/.well-known/oauth-authorization-server",
            dev.issuer()
        ))
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("JSON");
    assert_eq!(
        doc["scopes_supported"],
        json!(["tickets:read", "tickets:write"])
    );
    assert_eq!(
        doc["scopes_supported"],
        json!(tickets.guard.metadata().scopes_supported)
    );

    // Without a token, the guard's challenge names the baseline scope.
    let unsigned = http
        .post(&tickets.mcp_url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#)
        .send()
        .await
        .expect("POST");
    assert_eq!(unsigned.status(), StatusCode::UNAUTHORIZED);
    let challenge = mcp_guard::testing::challenge(unsigned.headers()).expect("one challenge");
    assert_eq!(challenge.param("scope"), Some("tickets:read"));

    // A token for `tickets:write` from the code flow with PKCE.
    let token = code_flow_token(&http, dev, "tickets:write", &tickets.mcp_url).await;
    let claims = jwt_claims(&token);
    assert_eq!(claims["scope"], "tickets:write");
    assert_eq!(claims["aud"], tickets.mcp_url.as_str());

    // The guard accepts it for the `tickets:write` tool, and for nothing it does not grant.
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(tickets.mcp_url.clone()).auth_header(token),
    );
    let client = ().serve(transport).await.expect("the client connects");
    let opened = client
        .call_tool(
            CallToolRequestParams::new("open_ticket").with_arguments(
                json!({"title": "printer on fire"})
                    .as_object()
                    .expect("object")
                    .clone(),
            ),
        )
        .await
        .expect("open_ticket with tickets:write");
    assert_eq!(opened.content[0].as_text().expect("text").text, "opened #1");
    let refused = client
        .call_tool(CallToolRequestParams::new("list_tickets"))
        .await;
    assert!(
        refused.is_err(),
        "list_tickets needs tickets:read: {refused:?}"
    );
    client.cancel().await.expect("the client closes");

    // A scope of the catalogue that is not advertised may still be requested.
    let admin = code_flow_token(&http, dev, "tickets:admin", &tickets.mcp_url).await;
    assert_eq!(
        tickets
            .guard
            .authenticate(&admin)
            .await
            .expect("the guard accepts it")
            .scopes()
            .to_string(),
        "tickets:admin"
    );

    // A scope outside the catalogue is `invalid_scope`, at the authorization endpoint and at
    // the token endpoint.
    let client_id = register_public(&http, dev, &[REDIRECT]).await;
    for bad in ["files:read", "tickets:read files:read"] {
        let mut p = authz_params(&client_id, REDIRECT);
        p.push(("scope", bad));
        let resp = authorize(&http, dev, &p).await;
        assert_redirect_error(dev, &resp, REDIRECT, "invalid_scope");
    }
    let (id, secret) = dev.register_confidential_client("tickets bot", &[]);
    let resp = token_request(
        &http,
        dev,
        &[
            ("grant_type", "client_credentials"),
            ("scope", "files:read"),
        ],
        Some((&id, &secret)),
    )
    .await;
    assert_oauth_error(resp, 400, "invalid_scope").await;

    tickets.stop().await.expect("the tracker stops");
}

// ---------------------------------------------------------------------------------------
// 14. Races, bounds and outbound fetches
// ---------------------------------------------------------------------------------------

/// POSTs `pairs` to /token `n` times at once and returns the responses.
async fn concurrent_token_requests(
    http: &reqwest::Client,
    dev: &DevAuthServer,
    pairs: &[(&str, &str)],
    n: usize,
) -> Vec<Response> {
    futures_util::future::join_all((0..n).map(|_| token_request(http, dev, pairs, None))).await
}

/// Splits responses into the refresh tokens of the successful ones, checking that every
/// other one is `invalid_grant`.
async fn refresh_tokens_of(responses: Vec<Response>) -> Vec<String> {
    let mut issued = Vec::new();
    for resp in responses {
        if resp.status() == StatusCode::OK {
            let body = token_ok(resp).await;
            issued.push(
                body["refresh_token"]
                    .as_str()
                    .expect("refresh_token")
                    .to_owned(),
            );
        } else {
            assert_oauth_error(resp, 400, "invalid_grant").await;
        }
    }
    issued
}

#[tokio::test]
async fn concurrent_refreshes_of_one_token_leave_no_token_of_its_family_working() {
    let dev = start(DevAuthServer::builder().auto_approve(true)).await;
    let http = http();
    let client_id = register_public(&http, &dev, &[REDIRECT]).await;
    let refresh_pairs = |token: &str| {
        vec![
            ("grant_type".to_owned(), "refresh_token".to_owned()),
            ("refresh_token".to_owned(), token.to_owned()),
            ("client_id".to_owned(), client_id.clone()),
        ]
    };
    let refresh = |token: String| {
        let (http, dev, pairs) = (http.clone(), (*dev).clone(), refresh_pairs(&token));
        async move {
            let pairs: Vec<(&str, &str)> = pairs
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            token_request(&http, &dev, &pairs, None).await
        }
    };
    for round in 0..3 {
        let code = get_code(&http, &dev, &client_id, REDIRECT, &[]).await;
        let body =
            token_ok(exchange(&http, &dev, &client_id, &code, REDIRECT, VERIFIER).await).await;
        let stolen = body["refresh_token"].as_str().unwrap().to_owned();
        let pairs = refresh_pairs(&stolen);
        let pairs: Vec<(&str, &str)> = pairs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();

        // The owner and the thief refresh the same token at once, eight times over.
        let issued =
            refresh_tokens_of(concurrent_token_requests(&http, &dev, &pairs, 8).await).await;
        assert!(
            issued.len() <= 1,
            "round {round}: {} tokens issued",
            issued.len()
        );
        // The token was presented again after its rotation: the whole family is revoked,
        // the one token issued from it included, and it stays so.
        for token in issued.iter().chain([&stolen]) {
            assert_oauth_error(refresh(token.clone()).await, 400, "invalid_grant").await;
        }
        for token in issued {
            assert_oauth_error(refresh(token).await, 400, "invalid_grant").await;
        }
    }
}

#[tokio::test]
async fn concurrent_exchanges_of_one_code_leave_no_refresh_token_working() {
    let dev = start(DevAuthServer::builder().auto_approve(true)).await;
    let http = http();
    let client_id = register_public(&http, &dev, &[REDIRECT]).await;
    for round in 0..3 {
        let code = get_code(&http, &dev, &client_id, REDIRECT, &[]).await;
        let pairs = [
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("code_verifier", VERIFIER),
            ("redirect_uri", REDIRECT),
            ("client_id", client_id.as_str()),
        ];
        let issued =
            refresh_tokens_of(concurrent_token_requests(&http, &dev, &pairs, 8).await).await;
        assert!(issued.len() <= 1, "round {round}: {} grants", issued.len());
        for token in issued {
            let resp = token_request(
                &http,
                &dev,
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", &token),
                    ("client_id", &client_id),
                ],
                None,
            )
            .await;
            assert_oauth_error(resp, 400, "invalid_grant").await;
        }
    }
}

#[tokio::test]
async fn a_wrong_verifier_or_client_does_not_spend_the_code() {
    let dev = start(DevAuthServer::builder().auto_approve(true)).await;
    let http = http();
    let client_id = register_public(&http, &dev, &[REDIRECT]).await;
    let other = register_public(&http, &dev, &[REDIRECT]).await;
    let code = get_code(&http, &dev, &client_id, REDIRECT, &[]).await;
    let wrong = "x".repeat(43);
    let resp = exchange(&http, &dev, &client_id, &code, REDIRECT, &wrong).await;
    assert_oauth_error(resp, 400, "invalid_grant").await;
    let resp = exchange(&http, &dev, &other, &code, REDIRECT, VERIFIER).await;
    assert_oauth_error(resp, 400, "invalid_grant").await;
    let resp = exchange(
        &http,
        &dev,
        &client_id,
        &code,
        "http://127.0.0.1:2/cb",
        VERIFIER,
    )
    .await;
    assert_oauth_error(resp, 400, "invalid_grant").await;
    // The holder of the verifier still gets its tokens, once.
    let body = token_ok(exchange(&http, &dev, &client_id, &code, REDIRECT, VERIFIER).await).await;
    assert!(body["refresh_token"].is_string(), "{body}");
    let resp = exchange(&http, &dev, &client_id, &code, REDIRECT, VERIFIER).await;
    assert_oauth_error(resp, 400, "invalid_grant").await;
}

#[tokio::test]
async fn registration_is_bounded() {
    let dev = start(DevAuthServer::builder()).await;
    let http = http();
    let uri = |n: usize, len: usize| {
        let head = format!("https://app.example/{n}/");
        format!("{head}{}", "a".repeat(len - head.len()))
    };
    let at_limit: Vec<String> = (0..10).map(|n| uri(n, 2048)).collect();
    let reg = register(
        &http,
        &dev,
        json!({ "client_name": "n".repeat(200), "redirect_uris": at_limit }),
    )
    .await;
    assert_eq!(reg["redirect_uris"].as_array().unwrap().len(), 10);
    let eleven: Vec<String> = (0..11).map(|n| uri(n, 40)).collect();
    for body in [
        json!({ "redirect_uris": eleven }),
        json!({ "redirect_uris": [uri(0, 2049)] }),
        json!({ "client_name": "n".repeat(201), "redirect_uris": [REDIRECT] }),
    ] {
        let resp = register_raw(&http, &dev, &body).await;
        let err = assert_oauth_error(resp, 400, "invalid_client_metadata").await;
        assert!(
            err["error_description"]
                .as_str()
                .unwrap()
                .contains("at most"),
            "{err}"
        );
    }
    // Repeated grant types are kept once.
    let reg = register(
        &http,
        &dev,
        json!({
            "redirect_uris": [REDIRECT],
            "grant_types": ["authorization_code", "authorization_code", "refresh_token"],
        }),
    )
    .await;
    assert_eq!(
        reg["grant_types"],
        json!(["authorization_code", "refresh_token"])
    );
}

#[tokio::test]
async fn oversized_authorization_requests_are_refused() {
    let docs = HostileDocs::start().await;
    let dev = start(
        DevAuthServer::builder()
            .auto_approve(true)
            .loopback_client_metadata(true),
    )
    .await;
    let http = http();
    let client_id = register_public(&http, &dev, &[REDIRECT]).await;
    let long = "s".repeat(3000);
    let mut params = authz_params(&client_id, REDIRECT);
    params.push(("scope", &long));
    let resp = authorize(&http, &dev, &params).await;
    assert_redirect_error(&dev, &resp, REDIRECT, "invalid_request");
    // A client ID metadata document URL that long is not even fetched.
    let long_id = format!("{}/{}", docs.origin, "p".repeat(3000));
    assert_error_page(authorize(&http, &dev, &authz_params(&long_id, REDIRECT)).await).await;
    assert_eq!(docs.total_hits(), 0);
}

#[tokio::test]
async fn a_failing_client_metadata_document_is_not_fetched_again_at_once() {
    let docs = HostileDocs::start().await;
    let dev = start(
        DevAuthServer::builder()
            .auto_approve(true)
            .loopback_client_metadata(true),
    )
    .await;
    let http = http();
    let failing = format!("{}/status500", docs.origin);
    for _ in 0..3 {
        let resp = authorize(&http, &dev, &authz_params(&failing, REDIRECT)).await;
        let page = assert_error_page(resp).await;
        assert!(
            page.contains("could not be fetched or is not valid"),
            "{page}"
        );
        // The token endpoint reads documents too.
        let resp = exchange(&http, &dev, &failing, "x", REDIRECT, VERIFIER).await;
        assert_oauth_error(resp, 401, "invalid_client").await;
    }
    assert_eq!(docs.hits("/status500"), 1, "fetched once within a minute");
    // Other URLs are not affected.
    get_code(
        &http,
        &dev,
        &format!("{}/client.json", docs.origin),
        REDIRECT,
        &[],
    )
    .await;
    assert_eq!(docs.hits("/client.json"), 1);
}

#[tokio::test]
async fn client_metadata_document_fetches_are_bounded() {
    // A document server that never answers: the fetches that got a turn hold it until their
    // timeout, and the requests beyond the bound give up waiting for one.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let origin = format!("http://{}", listener.local_addr().expect("addr"));
    let hits = Arc::new(Mutex::new(0usize));
    let h = hits.clone();
    let app = axum::Router::new().fallback(move || {
        let hits = h.clone();
        async move {
            *hits.lock().unwrap() += 1;
            std::future::pending::<()>().await;
        }
    });
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let dev = start(
        DevAuthServer::builder()
            .auto_approve(true)
            .loopback_client_metadata(true),
    )
    .await;
    let http = http();
    let ids: Vec<String> = (0..12).map(|n| format!("{origin}/hang/{n}")).collect();
    let params: Vec<_> = ids.iter().map(|id| authz_params(id, REDIRECT)).collect();
    let pages =
        futures_util::future::join_all(params.iter().map(|p| authorize(&http, &dev, p))).await;
    for resp in pages {
        assert_error_page(resp).await;
    }
    let fetched = *hits.lock().unwrap();
    assert!(fetched <= 8, "{fetched} fetches ran at once");
    server.abort();
}

#[tokio::test]
async fn a_repeated_host_header_gets_421() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let dev = start(DevAuthServer::builder()).await;
    let issuer = Url::parse(dev.issuer()).unwrap();
    let authority = format!("{}:{}", issuer.host_str().unwrap(), issuer.port().unwrap());
    for (first, second) in [
        (authority.as_str(), "rebind.attacker.example"),
        ("rebind.attacker.example", authority.as_str()),
        (authority.as_str(), authority.as_str()),
    ] {
        let mut conn = tokio::net::TcpStream::connect(&authority)
            .await
            .expect("connect");
        let request = format!(
            "GET /jwks HTTP/1.1\r\nHost: {first}\r\nHost: {second}\r\nConnection: close\r\n\r\n"
        );
        conn.write_all(request.as_bytes()).await.expect("write");
        let mut response = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), conn.read_to_end(&mut response))
            .await
            .expect("answered")
            .expect("read");
        let response = String::from_utf8_lossy(&response);
        assert!(
            response.starts_with("HTTP/1.1 421"),
            "{first}, {second}: {response}"
        );
        assert!(!response.contains("\"keys\""), "{response}");
    }
    // One Host header is still answered.
    let resp = get_with_host(&http(), &dev, "/jwks", &authority).await;
    assert_eq!(resp.status(), StatusCode::OK);
}

/// Set for the child process of
/// [`client_metadata_documents_are_fetched_without_the_environments_proxy`].
const PROXY_CHILD: &str = "MCP_GUARD_TEST_PROXY_CHILD";

#[tokio::test]
async fn client_metadata_documents_are_fetched_without_the_environments_proxy() {
    // A proxy that counts its connections. The proxy settings are given to a child process
    // (this test binary, running the test below), so that no other test sees them.
    let proxy = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let proxy_url = format!("http://{}", proxy.local_addr().expect("addr"));
    let connections = Arc::new(Mutex::new(0usize));
    let c = connections.clone();
    let proxy_task = tokio::spawn(async move {
        while let Ok((conn, _)) = proxy.accept().await {
            *c.lock().unwrap() += 1;
            drop(conn);
        }
    });
    let mut child = std::process::Command::new(std::env::current_exe().expect("test binary"));
    child
        .args([
            "--exact",
            "dev_auth_server::client_metadata_documents_under_a_proxy_child",
            "--ignored",
            "--test-threads=1",
        ])
        .env(PROXY_CHILD, "1");
    for var in [
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
    ] {
        child.env(var, &proxy_url);
    }
    for var in ["NO_PROXY", "no_proxy", "REQUEST_METHOD"] {
        child.env_remove(var);
    }
    let output = tokio::task::spawn_blocking(move || child.output())
        .await
        .expect("joined")
        .expect("the child runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "child: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        *connections.lock().unwrap(),
        0,
        "a fetch went through the proxy"
    );
    proxy_task.abort();
}

#[tokio::test]
#[ignore = "run by client_metadata_documents_are_fetched_without_the_environments_proxy"]
async fn client_metadata_documents_under_a_proxy_child() {
    assert!(
        std::env::var_os(PROXY_CHILD).is_some(),
        "run by its parent test"
    );
    let docs = doc_server(&[REDIRECT]).await;
    let client_id = format!("{}/client.json", docs.origin);
    let dev = start(
        DevAuthServer::builder()
            .auto_approve(true)
            .loopback_client_metadata(true),
    )
    .await;
    // The test's own client must not use the proxy either.
    let http = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .expect("http client");
    get_code(&http, &dev, &client_id, REDIRECT, &[]).await;
}
