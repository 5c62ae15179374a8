//! DPoP (RFC 9449, MCP SEP-1932) through the real server: a DPoP-bound token with a valid
//! proof is accepted, every proof check refuses on its own with 401 and a `DPoP` challenge,
//! a fresh proof is needed on every request whatever the token cache holds, bound tokens are
//! never accepted as bearer tokens, `Dpop::required` refuses bearer tokens, server nonces are
//! stateless and shared by instances with one secret, and the development authorization
//! server binds the tokens it issues to the key of the proof sent with the token request.

use mcp_guard::dpop::Dpop;
use mcp_guard_tests::server::{STATELESS, bind, stateless_body};
use mcp_guard_tests::{Answer, TestIssuer, TestKey, TestServer, ath, claims, dpop_claims, now};
use serde_json::{Value, json};

/// The algorithms a default [`Dpop`] accepts, as the challenge writes them.
const ALGS: &str = "ES256 ES384 EdDSA PS256 RS256";

struct Setup {
    issuer: TestIssuer,
    server: TestServer,
    /// Signs access tokens.
    signer: TestKey,
    /// The client's DPoP key.
    client: TestKey,
}

async fn setup(dpop: Dpop) -> Setup {
    let signer = TestKey::rsa1();
    let issuer = TestIssuer::start(vec![signer.jwk()]).await;
    let server = TestServer::start_configured(&issuer, move |b| b.dpop(dpop)).await;
    Setup {
        issuer,
        server,
        signer,
        client: TestKey::ec256(),
    }
}

impl Setup {
    /// A token for `scope`, bound to `jkt` when given.
    fn token(&self, scope: &str, jkt: Option<&str>) -> String {
        let mut c = claims(&self.issuer.issuer, &self.server.mcp_url, scope);
        if let Some(jkt) = jkt {
            c["cnf"] = json!({ "jkt": jkt });
        }
        self.signer.sign(&c)
    }

    /// A token bound to the client's key.
    fn bound(&self, scope: &str) -> String {
        self.token(scope, Some(&self.client.jkt()))
    }

    /// A valid proof for a POST to the MCP endpoint with `token`.
    fn proof(&self, token: &str) -> String {
        self.client
            .dpop_proof("POST", &self.server.mcp_url, Some(token))
    }

    /// `tools/call` of `tool` with these credential headers.
    async fn call(&self, auth: &[(&str, &str)], tool: &str, args: Value) -> Answer {
        let body = stateless_body("tools/call", json!({"name": tool, "arguments": args}));
        let mut headers = vec![
            ("mcp-protocol-version", STATELESS),
            ("mcp-method", "tools/call"),
            ("mcp-name", tool),
        ];
        headers.extend_from_slice(auth);
        self.server.post(&headers, &body).await
    }

    /// `write_file` (which the tokens below may call) with `authorization` and `proof`.
    async fn write(&self, authorization: &str, proof: Option<&str>) -> Answer {
        let mut auth = vec![("authorization", authorization)];
        if let Some(p) = proof {
            auth.push(("dpop", p));
        }
        self.call(
            &auth,
            "write_file",
            json!({"path": "/notes/a", "content": "x"}),
        )
        .await
    }

    fn wrote(&self) -> bool {
        !self.server.store.lock().unwrap().is_empty()
    }
}

/// `a` is a 401 with the single `DPoP` challenge carrying `error` and a description that
/// mentions `reason`, nothing was written, and neither token nor proof is echoed.
#[track_caller]
fn assert_dpop_refusal(s: &Setup, a: &Answer, error: &str, reason: &str, why: &str) {
    assert_eq!(a.status, 401, "{why}: {a:?}");
    let c = a.challenge();
    assert_eq!(c.scheme, "DPoP", "{why}: the request used DPoP: {a:?}");
    assert_eq!(c.param("error"), Some(error), "{why}: {c:?}");
    assert_eq!(c.param("algs"), Some(ALGS), "{why}");
    assert_eq!(
        c.param("resource_metadata"),
        Some(s.server.metadata_url.as_str()),
        "{why}"
    );
    let d = c.param("error_description").unwrap_or_default();
    assert!(
        d.to_lowercase().contains(&reason.to_lowercase()),
        "{why}: description {d:?} should mention {reason:?}"
    );
    assert!(!s.wrote(), "{why}: no tool may run");
}

#[tokio::test]
async fn a_bound_token_with_its_proof_is_accepted_and_every_request_needs_a_fresh_proof() {
    let s = setup(Dpop::allowed()).await;
    let token = s.bound("files:write");
    let auth = format!("DPoP {token}");
    let proof = s.proof(&token);

    let a = s.write(&auth, Some(&proof)).await;
    assert_eq!(a.status, 200, "{a:?}");
    assert!(s.wrote());
    let who = s
        .call(
            &[("authorization", &auth), ("dpop", &s.proof(&token))],
            "whoami",
            json!({}),
        )
        .await;
    assert_eq!(who.status, 200, "{who:?}");
    s.server.store.lock().unwrap().clear();

    // The token is cached now; the proof is still checked on every request.
    assert_eq!(
        s.server.running.guard.verification_count(),
        1,
        "the token verified once"
    );
    let a = s.write(&auth, Some(&proof)).await;
    assert_dpop_refusal(
        &s,
        &a,
        "invalid_dpop_proof",
        "already used",
        "the same proof again",
    );
    let a = s.write(&auth, None).await;
    assert_dpop_refusal(&s, &a, "invalid_dpop_proof", "no dpop proof", "no proof");
    // Another key's proof, with the right `ath`: the token is not bound to it.
    let thief = TestKey::ec384().dpop_proof("POST", &s.server.mcp_url, Some(&token));
    let a = s.write(&auth, Some(&thief)).await;
    assert_dpop_refusal(&s, &a, "invalid_token", "not bound", "a thief's proof");
    a.assert_not_echoing(&token, "thief");
    a.assert_not_echoing(&thief, "thief");
    s.server.stop().await;
}

#[tokio::test]
async fn every_proof_check_refuses_on_its_own() {
    let s = setup(Dpop::allowed()).await;
    let token = s.bound("files:write");
    let url = s.server.mcp_url.clone();
    let good = || dpop_claims("POST", &url, Some(&token));
    let with = |edit: &dyn Fn(&mut Value)| {
        let mut c = good();
        edit(&mut c);
        s.client.dpop_proof_with(&c, |_| {})
    };
    let header = |edit: &dyn Fn(&mut Value)| s.client.dpop_proof_with(&good(), |h| edit(h));
    let port = url
        .split(':')
        .nth(2)
        .and_then(|p| p.split('/').next())
        .unwrap()
        .to_owned();
    let mut private = s.client.dpop_jwk();
    private["d"] = json!("c2VjcmV0");
    let rsa = TestKey::rsa2();
    let cases: Vec<(&str, String, &str)> = vec![
        ("not a JWT", "not-a-jwt".to_owned(), "well-formed"),
        ("typ JWT", header(&|h| h["typ"] = json!("JWT")), "typ"),
        (
            "no typ",
            header(&|h| drop(h.as_object_mut().unwrap().remove("typ"))),
            "typ",
        ),
        (
            "alg none",
            header(&|h| h["alg"] = json!("none")),
            "algorithm",
        ),
        (
            "alg HS256",
            header(&|h| h["alg"] = json!("HS256")),
            "algorithm",
        ),
        ("crit", header(&|h| h["crit"] = json!(["exp"])), "critical"),
        (
            "no jwk",
            header(&|h| drop(h.as_object_mut().unwrap().remove("jwk"))),
            "jwk",
        ),
        (
            "a private jwk",
            header(&|h| h["jwk"] = private.clone()),
            "not a public key",
        ),
        (
            "an RSA jwk under ES256",
            header(&|h| h["jwk"] = rsa.dpop_jwk()),
            "not a valid key",
        ),
        (
            "a signature over other claims",
            {
                let a = s.client.dpop_proof_with(&good(), |_| {});
                let b = s.client.dpop_proof_with(&good(), |_| {});
                let (signed, _) = a.rsplit_once('.').unwrap();
                format!("{signed}.{}", b.rsplit_once('.').unwrap().1)
            },
            "signature",
        ),
        (
            "a P-256 jwk under ES384",
            {
                let other = TestKey::ec384();
                let h = json!({"typ": "dpop+jwt", "alg": "ES384", "jwk": s.client.dpop_jwk()});
                other.sign_with_header(&h, &good())
            },
            "not a valid key",
        ),
        ("htm GET", with(&|c| c["htm"] = json!("GET")), "method"),
        ("htm post", with(&|c| c["htm"] = json!("post")), "method"),
        (
            "htu another path",
            with(&|c| c["htu"] = json!(url.replace("/mcp", "/other"))),
            "uri",
        ),
        (
            "htu another host",
            with(&|c| c["htu"] = json!(url.replace("127.0.0.1", "localhost"))),
            "uri",
        ),
        (
            "htu another port",
            with(&|c| c["htu"] = json!(url.replace(&port, "1"))),
            "uri",
        ),
        (
            "htu https",
            with(&|c| c["htu"] = json!(url.replace("http:", "https:"))),
            "uri",
        ),
        ("htu not a URL", with(&|c| c["htu"] = json!("/mcp")), "htu"),
        (
            "iat too old",
            with(&|c| c["iat"] = json!(now() - 301)),
            "too old",
        ),
        (
            "iat in the future",
            with(&|c| c["iat"] = json!(now() + 301)),
            "future",
        ),
        (
            "iat a string",
            with(&|c| c["iat"] = json!(now().to_string())),
            "iat",
        ),
        (
            "no iat",
            with(&|c| drop(c.as_object_mut().unwrap().remove("iat"))),
            "iat",
        ),
        (
            "no jti",
            with(&|c| drop(c.as_object_mut().unwrap().remove("jti"))),
            "jti",
        ),
        ("empty jti", with(&|c| c["jti"] = json!("")), "jti"),
        (
            "huge jti",
            with(&|c| c["jti"] = json!("j".repeat(300))),
            "jti",
        ),
        (
            "no ath",
            with(&|c| drop(c.as_object_mut().unwrap().remove("ath"))),
            "ath",
        ),
        (
            "another token's ath",
            with(&|c| c["ath"] = json!(ath("another token"))),
            "another access token",
        ),
        ("nonce a number", with(&|c| c["nonce"] = json!(5)), "nonce"),
        ("oversized", "a".repeat(9_000), "larger"),
    ];
    for (why, proof, reason) in &cases {
        let a = s.write(&format!("DPoP {token}"), Some(proof)).await;
        assert_dpop_refusal(&s, &a, "invalid_dpop_proof", reason, why);
        a.assert_not_echoing(&token, why);
    }
    // Two proofs.
    let (p1, p2) = (s.proof(&token), s.proof(&token));
    let auth = format!("DPoP {token}");
    let a = s
        .call(
            &[("authorization", &auth), ("dpop", &p1), ("dpop", &p2)],
            "write_file",
            json!({"path": "/notes/a", "content": "x"}),
        )
        .await;
    assert_dpop_refusal(&s, &a, "invalid_dpop_proof", "more than one", "two proofs");
    // Tokens that are not bound to the proof's key, or not valid at all.
    for (why, t, reason) in [
        (
            "an unbound token",
            s.token("files:write", None),
            "not bound",
        ),
        (
            "bound to another key",
            s.token("files:write", Some(&TestKey::ec384().jkt())),
            "not bound",
        ),
        (
            "expired",
            {
                let mut c = claims(&s.issuer.issuer, &s.server.mcp_url, "files:write");
                c["cnf"] = json!({"jkt": s.client.jkt()});
                c["exp"] = json!(now() - 3600);
                s.signer.sign(&c)
            },
            "expired",
        ),
    ] {
        let a = s.write(&format!("DPoP {t}"), Some(&s.proof(&t))).await;
        assert_dpop_refusal(&s, &a, "invalid_token", reason, why);
    }
    // The right proof still works after all that.
    let a = s
        .write(&format!("DPoP {token}"), Some(&s.proof(&token)))
        .await;
    assert_eq!(a.status, 200, "{a:?}");
    s.server.stop().await;
}

#[tokio::test]
async fn proofs_of_every_default_algorithm_are_accepted() {
    let s = setup(Dpop::allowed()).await;
    for key in [
        TestKey::ec256(),
        TestKey::ec384(),
        TestKey::ed25519(),
        TestKey::rsa1(),
        TestKey::rsa1_with(jsonwebtoken::Algorithm::PS256),
    ] {
        let token = s.token("files:read", Some(&key.jkt()));
        let proof = key.dpop_proof("POST", &s.server.mcp_url, Some(&token));
        let auth = format!("DPoP {token}");
        let a = s
            .call(
                &[("authorization", &auth), ("dpop", &proof)],
                "whoami",
                json!({}),
            )
            .await;
        assert_eq!(a.status, 200, "{:?}: {a:?}", key.alg);
    }
    // RS512 is a valid algorithm, but not on the default list.
    let key = TestKey::rsa1_with(jsonwebtoken::Algorithm::RS512);
    let token = s.token("files:write", Some(&key.jkt()));
    let proof = key.dpop_proof("POST", &s.server.mcp_url, Some(&token));
    let a = s.write(&format!("DPoP {token}"), Some(&proof)).await;
    assert_dpop_refusal(&s, &a, "invalid_dpop_proof", "algorithm", "RS512");
    s.server.stop().await;
}

#[tokio::test]
async fn bound_tokens_are_never_bearer_tokens() {
    // With DPoP accepted, and without it configured at all.
    for dpop in [Some(Dpop::allowed()), None] {
        let signer = TestKey::rsa1();
        let issuer = TestIssuer::start(vec![signer.jwk()]).await;
        let configured = dpop.is_some();
        let server = match dpop {
            Some(d) => TestServer::start_configured(&issuer, move |b| b.dpop(d)).await,
            None => TestServer::start(&issuer).await,
        };
        for cnf in [
            json!({"jkt": TestKey::ec256().jkt()}),
            json!({"x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"}),
        ] {
            let mut c = claims(&issuer.issuer, &server.mcp_url, "files:write");
            c["cnf"] = cnf.clone();
            let token = signer.sign(&c);
            let a = server
                .call(
                    &token,
                    "write_file",
                    json!({"path": "/notes/a", "content": "x"}),
                )
                .await;
            assert_eq!(
                a.status, 401,
                "{cnf} as Bearer (DPoP configured: {configured}): {a:?}"
            );
            let bearer = a.challenge_of("Bearer");
            assert_eq!(bearer.param("error"), Some("invalid_token"));
            assert!(
                bearer
                    .param("error_description")
                    .unwrap()
                    .contains("bound to a key")
            );
            assert_eq!(
                a.challenges().len(),
                if configured { 2 } else { 1 },
                "{a:?}"
            );
            assert!(server.store.lock().unwrap().is_empty());
        }
        // Malformed `cnf` claims are invalid tokens.
        for cnf in [
            json!("jkt"),
            json!({}),
            json!({"jkt": 5}),
            json!({"jkt": ""}),
        ] {
            let mut c = claims(&issuer.issuer, &server.mcp_url, "files:read");
            c["cnf"] = cnf.clone();
            let a = server.call(&signer.sign(&c), "whoami", json!({})).await;
            assert_eq!(a.status, 401, "{cnf}: {a:?}");
            assert!(
                a.challenge_of("Bearer")
                    .param("error_description")
                    .unwrap()
                    .contains("cnf")
            );
        }
        // Without DPoP configured, the DPoP scheme is one the server does not understand.
        if !configured {
            let key = TestKey::ec256();
            let mut c = claims(&issuer.issuer, &server.mcp_url, "files:read");
            c["cnf"] = json!({"jkt": key.jkt()});
            let token = signer.sign(&c);
            let proof = key.dpop_proof("POST", &server.mcp_url, Some(&token));
            let auth = format!("DPoP {token}");
            let body = stateless_body("tools/call", json!({"name": "whoami", "arguments": {}}));
            let a = server
                .post(
                    &[
                        ("authorization", &auth),
                        ("dpop", &proof),
                        ("mcp-protocol-version", STATELESS),
                        ("mcp-method", "tools/call"),
                        ("mcp-name", "whoami"),
                    ],
                    &body,
                )
                .await;
            assert_eq!(a.status, 401, "{a:?}");
            assert_eq!(a.challenge().scheme, "Bearer");
            assert_eq!(
                a.challenge().count("error"),
                0,
                "no credentials it understands"
            );
        }
        server.stop().await;
    }
}

#[tokio::test]
async fn challenges_and_metadata_name_dpop_as_configured() {
    let s = setup(Dpop::allowed()).await;
    // No token: Bearer with the baseline scope, and DPoP with the algorithms.
    let a = s.call(&[], "whoami", json!({})).await;
    assert_eq!(a.status, 401, "{a:?}");
    let schemes: Vec<String> = a.challenges().into_iter().map(|c| c.scheme).collect();
    assert_eq!(schemes, ["Bearer", "DPoP"], "Bearer first");
    let dpop = a.challenge_of("DPoP");
    assert_eq!(dpop.param("algs"), Some(ALGS));
    assert_eq!(dpop.count("error"), 0);
    assert_eq!(dpop.param("scope"), a.challenge_of("Bearer").param("scope"));
    assert_eq!(
        dpop.param("resource_metadata"),
        Some(s.server.metadata_url.as_str())
    );
    // A bearer token's error is on the Bearer challenge.
    let a = s.write("Bearer not-a-token", None).await;
    assert_eq!(
        a.challenge_of("Bearer").param("error"),
        Some("invalid_token")
    );
    assert_eq!(a.challenge_of("DPoP").count("error"), 0);
    // A DPoP caller lacking scope gets the step-up in the DPoP scheme.
    let token = s.bound("files:read");
    let a = s
        .write(&format!("DPoP {token}"), Some(&s.proof(&token)))
        .await;
    assert_eq!(a.status, 403, "{a:?}");
    let c = a.challenge();
    assert_eq!(c.scheme, "DPoP");
    assert_eq!(c.param("error"), Some("insufficient_scope"));
    assert!(
        c.param("scope")
            .unwrap()
            .split(' ')
            .any(|x| x == "files:write")
    );
    // The metadata.
    let doc: Value =
        serde_json::from_str(&s.server.get(&s.server.metadata_url).await.body).unwrap();
    assert_eq!(
        doc["dpop_signing_alg_values_supported"],
        json!(ALGS.split(' ').collect::<Vec<_>>())
    );
    assert!(
        doc.get("dpop_bound_access_tokens_required").is_none(),
        "{doc}"
    );
    s.server.stop().await;

    // Required: bearer tokens are refused with the DPoP challenge alone.
    let s = setup(Dpop::required().algorithms([jsonwebtoken::Algorithm::ES256])).await;
    let bearer = s.token("files:write", None);
    let a = s.write(&format!("Bearer {bearer}"), None).await;
    assert_eq!(a.status, 401, "{a:?}");
    let c = a.challenge();
    assert_eq!(c.scheme, "DPoP");
    assert_eq!(c.param("algs"), Some("ES256"));
    assert_eq!(c.param("error"), Some("invalid_token"));
    assert!(
        c.param("error_description")
            .unwrap()
            .contains("only DPoP-bound")
    );
    assert!(!s.wrote());
    let a = s.call(&[], "whoami", json!({})).await;
    assert_eq!(a.challenges().len(), 1, "{a:?}");
    assert_eq!(a.challenge().scheme, "DPoP");
    let doc: Value =
        serde_json::from_str(&s.server.get(&s.server.metadata_url).await.body).unwrap();
    assert_eq!(doc["dpop_bound_access_tokens_required"], true);
    assert_eq!(doc["dpop_signing_alg_values_supported"], json!(["ES256"]));
    let token = s.bound("files:write");
    assert_eq!(
        s.write(&format!("DPoP {token}"), Some(&s.proof(&token)))
            .await
            .status,
        200
    );
    s.server.stop().await;
}

#[tokio::test]
async fn server_nonces_are_required_stateless_and_shared_by_instances() {
    const SECRET: &[u8; 32] = b"nonce secret shared by instances";
    let s = setup(Dpop::allowed().nonces(SECRET)).await;
    let token = s.bound("files:write");
    let auth = format!("DPoP {token}");
    let url = s.server.mcp_url.clone();

    // No nonce: use_dpop_nonce, with one to use.
    let a = s.write(&auth, Some(&s.proof(&token))).await;
    assert_dpop_refusal(
        &s,
        &a,
        "use_dpop_nonce",
        "requires a dpop nonce",
        "no nonce",
    );
    let nonce = a.headers["dpop-nonce"].to_str().unwrap().to_owned();
    // A made-up nonce, or one altered, is refused the same way with a fresh one.
    let last = if nonce.ends_with('A') { "B" } else { "A" };
    for bad in ["made-up", &format!("{}{last}", &nonce[..nonce.len() - 1])] {
        let mut c = dpop_claims("POST", &url, Some(&token));
        c["nonce"] = json!(bad);
        let a = s
            .write(&auth, Some(&s.client.dpop_proof_with(&c, |_| {})))
            .await;
        assert_dpop_refusal(&s, &a, "use_dpop_nonce", "invalid or expired", bad);
        assert!(a.headers.contains_key("dpop-nonce"));
    }
    // With the nonce: accepted.
    let mut c = dpop_claims("POST", &url, Some(&token));
    c["nonce"] = json!(nonce);
    let a = s
        .write(&auth, Some(&s.client.dpop_proof_with(&c, |_| {})))
        .await;
    assert_eq!(a.status, 200, "{a:?}");

    // Another instance with the same secret accepts it; one with another secret does not.
    for (secret, accepted) in [(&SECRET[..], true), (&[9u8; 32][..], false)] {
        let secret = secret.to_vec();
        let other = TestServer::start_configured(&s.issuer, move |b| {
            b.dpop(Dpop::allowed().nonces(secret))
        })
        .await;
        let mut c = claims(&s.issuer.issuer, &other.mcp_url, "files:read");
        c["cnf"] = json!({"jkt": s.client.jkt()});
        let t = s.signer.sign(&c);
        let mut pc = dpop_claims("POST", &other.mcp_url, Some(&t));
        pc["nonce"] = json!(nonce);
        let proof = s.client.dpop_proof_with(&pc, |_| {});
        let auth = format!("DPoP {t}");
        let body = stateless_body("tools/call", json!({"name": "whoami", "arguments": {}}));
        let a = other
            .post(
                &[
                    ("authorization", &auth),
                    ("dpop", &proof),
                    ("mcp-protocol-version", STATELESS),
                    ("mcp-method", "tools/call"),
                    ("mcp-name", "whoami"),
                ],
                &body,
            )
            .await;
        assert_eq!(a.status == 200, accepted, "same secret: {accepted}: {a:?}");
        other.stop().await;
    }
    s.server.stop().await;
}

#[tokio::test]
async fn unusable_dpop_configurations_are_refused_when_the_guard_is_built() {
    let issuer = TestIssuer::start(vec![TestKey::rsa1().jwk()]).await;
    for (why, dpop) in [
        ("no algorithm", Dpop::allowed().algorithms([])),
        (
            "HMAC",
            Dpop::allowed().algorithms([jsonwebtoken::Algorithm::HS256]),
        ),
        ("short secret", Dpop::allowed().nonces(b"short")),
        (
            "no window",
            Dpop::allowed().proof_window(std::time::Duration::ZERO),
        ),
    ] {
        let e = mcp_guard::Guard::builder()
            .resource("http://127.0.0.1:1/mcp")
            .issuer(mcp_guard::Issuer::with_jwks_uri(
                &issuer.issuer,
                issuer.jwks_uri(),
            ))
            .dpop(dpop)
            .build()
            .expect_err(why);
        assert!(matches!(e, mcp_guard::ConfigError::Dpop(_)), "{why}: {e}");
    }
}

#[tokio::test]
async fn the_development_server_binds_tokens_to_the_proof_key() {
    let dev = mcp_guard::dev::DevAuthServer::builder()
        .start(bind().await)
        .await
        .expect("dev server");
    let listener = bind().await;
    let mcp_url = format!("http://{}/mcp", listener.local_addr().unwrap());
    let dev_issuer = dev.issuer().to_owned();
    let server = TestServer::on_listener(
        listener,
        &dev_issuer,
        |_| {},
        |o| {
            mcp_guard_examples::files::configure(o.guard_builder().expect("options"))
                .dpop(Dpop::allowed())
                .build()
                .expect("guard")
        },
    );
    let (id, secret) = dev.register_confidential_client("svc", &[]);
    let key = TestKey::ec256();
    let token_url = format!("{dev_issuer}/token");
    let http = reqwest::Client::new();
    let request = |proof: Option<String>| {
        let mut r = http
            .post(&token_url)
            .basic_auth(&id, Some(&secret))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!(
                "grant_type=client_credentials&scope=files%3Aread&resource={}",
                url::form_urlencoded::byte_serialize(mcp_url.as_bytes()).collect::<String>()
            ));
        if let Some(p) = proof {
            r = r.header("dpop", p);
        }
        async move {
            let resp = r.send().await.expect("token request");
            (
                resp.status().as_u16(),
                resp.json::<Value>().await.expect("JSON"),
            )
        }
    };
    // With a proof: a DPoP token bound to the key.
    let (status, body) = request(Some(key.dpop_proof("POST", &token_url, None))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "DPoP");
    let token = body["access_token"].as_str().unwrap().to_owned();
    let payload = token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["cnf"]["jkt"], key.jkt());
    let proof = key.dpop_proof("POST", &mcp_url, Some(&token));
    let auth = format!("DPoP {token}");
    let call = |auth: String, proof: Option<String>| {
        let body = stateless_body("tools/call", json!({"name": "whoami", "arguments": {}}));
        let server = &server;
        async move {
            let mut h = vec![
                ("authorization", auth.as_str()),
                ("mcp-protocol-version", STATELESS),
                ("mcp-method", "tools/call"),
                ("mcp-name", "whoami"),
            ];
            if let Some(p) = &proof {
                h.push(("dpop", p.as_str()));
            }
            server.post(&h, &body).await
        }
    };
    let a = call(auth.clone(), Some(proof)).await;
    assert_eq!(a.status, 200, "{a:?}");
    let a = call(format!("Bearer {token}"), None).await;
    assert_eq!(a.status, 401, "the bound token as Bearer: {a:?}");
    // A bad proof at the token endpoint is refused, and nothing is issued.
    for (why, proof) in [
        ("for another URI", key.dpop_proof("POST", &mcp_url, None)),
        ("for GET", key.dpop_proof("GET", &token_url, None)),
        ("malformed", "x.y.z".to_owned()),
    ] {
        let (status, body) = request(Some(proof)).await;
        assert_eq!(status, 400, "{why}: {body}");
        assert_eq!(body["error"], "invalid_dpop_proof", "{why}: {body}");
    }
    // A replayed token-endpoint proof is refused too.
    let p = key.dpop_proof("POST", &token_url, None);
    assert_eq!(request(Some(p.clone())).await.0, 200);
    assert_eq!(request(Some(p)).await.1["error"], "invalid_dpop_proof");
    // Without a proof: a bearer token, as before.
    let (status, body) = request(None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    server.stop().await;
}
