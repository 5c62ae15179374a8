//! Micro-benchmarks of the authentication path: our JWT verification against a bare
//! `jsonwebtoken::decode` with the same key and checks (RS256, ES256, EdDSA), a
//! verified-token cache hit, bearer extraction, challenge building, the policy decision, the
//! body classification, and the layer deciding a 2026-07-28 `tools/call` with an argument
//! rule from its `Mcp-Param-*` header against the same call whose rule needs the body read.
//!
//! ```text
//! cargo bench -p mcp-guard --bench auth
//! ```

use std::hint::black_box;
use std::time::{SystemTime, UNIX_EPOCH};

use criterion::{Criterion, criterion_group, criterion_main};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use mcp_guard::__internals::{Audiences, JwtRules};
use mcp_guard::challenge::{Challenge, ErrorCode};
use mcp_guard::jwks::{KeySet, VerifyingKey};
use mcp_guard::policy::Target;
use mcp_guard::{Guard, GuardBuilder, Issuer, Policy, Principal, Requirement, ScopeSet};
use serde_json::{Map, Value, json};

const ISSUER: &str = "https://as.example.com";
const RESOURCE: &str = "https://mcp.example.com/mcp";

fn key_file(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/../tests/keys/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("test key")
}

struct Case {
    name: &'static str,
    alg: Algorithm,
    encoding: EncodingKey,
}

fn cases() -> Vec<Case> {
    let _ = jsonwebtoken::crypto::CryptoProvider::install_default(
        &jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER,
    );
    vec![
        Case {
            name: "RS256",
            alg: Algorithm::RS256,
            encoding: EncodingKey::from_rsa_pem(&key_file("rsa1.pem")).unwrap(),
        },
        Case {
            name: "ES256",
            alg: Algorithm::ES256,
            encoding: EncodingKey::from_ec_pem(&key_file("ec256.pem")).unwrap(),
        },
        Case {
            name: "EdDSA",
            alg: Algorithm::EdDSA,
            encoding: EncodingKey::from_ed_pem(&key_file("ed25519.pem")).unwrap(),
        },
    ]
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn token(case: &Case) -> String {
    token_n(case, 1)
}

/// A token unique by its `jti`, `bench-{n}`.
fn token_n(case: &Case, n: usize) -> String {
    let mut header = Header::new(case.alg);
    header.kid = Some(case.name.to_owned());
    header.typ = Some("at+jwt".to_owned());
    let claims = json!({
        "iss": ISSUER, "sub": "alice", "aud": RESOURCE, "client_id": "bench",
        "scope": "files:read files:write", "iat": now(), "exp": now() + 3600,
        "jti": format!("bench-{n}"),
    });
    jsonwebtoken::encode(&header, &claims, &case.encoding).unwrap()
}

fn verification(c: &mut Criterion) {
    for case in cases() {
        let mut jwk = Jwk::from_encoding_key(&case.encoding, case.alg).unwrap();
        jwk.common.key_id = Some(case.name.to_owned());
        let decoding = DecodingKey::from_jwk(&jwk).unwrap();
        let keys = KeySet::from_keys([VerifyingKey::from_jwk(&jwk).unwrap()]);
        let rules = JwtRules::new(ISSUER, Audiences::new([RESOURCE]));
        let token = token(&case);
        let mut validation = Validation::new(case.alg);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[RESOURCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.validate_nbf = true;
        let t = now();
        assert!(mcp_guard::__internals::verify(&token, &keys, &rules, t).is_ok());
        assert!(jsonwebtoken::decode::<Map<String, Value>>(&token, &decoding, &validation).is_ok());

        let mut group = c.benchmark_group(format!("verify/{}", case.name));
        group.bench_function("jsonwebtoken::decode", |b| {
            b.iter(|| {
                jsonwebtoken::decode::<Map<String, Value>>(
                    black_box(&token),
                    &decoding,
                    &validation,
                )
                .unwrap()
            })
        });
        group.bench_function("mcp_guard::__internals::verify", |b| {
            b.iter(|| mcp_guard::__internals::verify(black_box(&token), &keys, &rules, t).unwrap())
        });
        group.finish();
    }
}

fn cache_hit(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let case = cases().remove(1);
    let mut jwk = Jwk::from_encoding_key(&case.encoding, case.alg).unwrap();
    jwk.common.key_id = Some(case.name.to_owned());
    let keys = KeySet::from_keys([VerifyingKey::from_jwk(&jwk).unwrap()]);
    let guard = Guard::builder()
        .resource(RESOURCE)
        .issuer(Issuer::with_keys(ISSUER, keys))
        .build()
        .unwrap();
    let token = token(&case);
    rt.block_on(guard.authenticate(&token)).unwrap();
    c.bench_function("guard/authenticate (cache hit, ES256 token)", |b| {
        b.to_async(&rt)
            .iter(|| async { guard.authenticate(black_box(&token)).await.unwrap() })
    });
    let uncached = Guard::builder()
        .resource(RESOURCE)
        .issuer(Issuer::with_keys(
            ISSUER,
            KeySet::from_keys([VerifyingKey::from_jwk(&jwk).unwrap()]),
        ))
        .token_cache_capacity(0)
        .build()
        .unwrap();
    c.bench_function("guard/authenticate (no cache, ES256 token)", |b| {
        b.to_async(&rt)
            .iter(|| async { uncached.authenticate(black_box(&token)).await.unwrap() })
    });
    // Every token new (each iteration is given a token minted for it, outside the measured
    // time), without the cache and with it full (the default capacity, filled first with a
    // fifth more tokens than it holds, so that a new token is verified and only its
    // fingerprint remembered: admission on second use). The difference is what a full cache
    // costs a token that is never presented again.
    let full = Guard::builder()
        .resource(RESOURCE)
        .issuer(Issuer::with_keys(
            ISSUER,
            KeySet::from_keys([VerifyingKey::from_jwk(&jwk).unwrap()]),
        ))
        .build()
        .unwrap();
    let mut next = 2;
    rt.block_on(async {
        for _ in 0..GuardBuilder::DEFAULT_TOKEN_CACHE_CAPACITY * 6 / 5 {
            full.authenticate(&token_n(&case, next)).await.unwrap();
            next += 1;
        }
    });
    for (name, guard) in [
        (
            "guard/authenticate (every token new, no cache, ES256 token)",
            &uncached,
        ),
        (
            "guard/authenticate (every token new, cache full, ES256 token)",
            &full,
        ),
    ] {
        c.bench_function(name, |b| {
            b.to_async(&rt).iter_batched(
                || {
                    next += 1;
                    token_n(&case, next)
                },
                |token| async move { guard.authenticate(black_box(&token)).await.unwrap() },
                criterion::BatchSize::SmallInput,
            )
        });
    }
}

fn request_path(c: &mut Criterion) {
    let token = token(&cases().remove(1));
    let mut headers = http::HeaderMap::new();
    headers.insert("authorization", format!("Bearer {token}").parse().unwrap());
    let uri: http::Uri = "/mcp".parse().unwrap();
    c.bench_function("bearer::extract", |b| {
        b.iter(|| {
            mcp_guard::__internals::bearer::extract(black_box(&headers), &uri)
                .unwrap()
                .len()
        })
    });

    let scope = ScopeSet::parse("files:read files:write").unwrap();
    let metadata = "https://mcp.example.com/.well-known/oauth-protected-resource/mcp";
    c.bench_function("challenge (403 insufficient_scope)", |b| {
        b.iter(|| {
            Challenge::new(black_box(metadata))
                .error(ErrorCode::InsufficientScope)
                .scope(&scope)
                .description("`write_file` requires scope `files:write`")
                .to_header_value()
        })
    });

    let policy = Policy::builder()
        .scope("files:read")
        .scope("files:write")
        .scope_implying("files:admin", ["files:read", "files:write"])
        .tool("read_file", Requirement::scopes(["files:read"]).unwrap())
        .tool("write_file", Requirement::scopes(["files:write"]).unwrap())
        .build()
        .unwrap();
    let claims = json!({"sub": "alice", "iss": ISSUER, "exp": now() + 60, "scope": "files:admin"});
    let principal = Principal::from_claims(claims.as_object().unwrap().clone()).unwrap();
    c.bench_function("policy decision (tools/call, hierarchy)", |b| {
        b.iter(|| {
            policy.decide(
                Some(&principal),
                Target::Tool(black_box("write_file")),
                None,
            )
        })
    });

    let body = br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"write_file","arguments":{"path":"/notes/a.txt","content":"hello"}}}"#;
    c.bench_function("classify body (tools/call)", |b| {
        b.iter(|| mcp_guard::__internals::classify::classify_body(black_box(body)).unwrap())
    });
}

/// A 64 KiB argument beside the one an argument rule reads.
#[derive(serde::Deserialize, schemars::JsonSchema)]
pub struct PublishArgs {
    /// Mirrored into `Mcp-Param-Path`.
    #[schemars(extend("x-mcp-header" = "Path"))]
    pub path: String,
    /// What is published.
    pub content: String,
}

/// The same arguments, nothing mirrored.
#[derive(serde::Deserialize, schemars::JsonSchema)]
pub struct UnmirroredArgs {
    /// Where.
    pub path: String,
    /// What is published.
    pub content: String,
}

mcp_guard::scopes! {
    /// The bench server's scopes.
    pub BenchScopes {
        /// Write.
        #[baseline]
        WRITE = "files:write",
        /// Write under `/shared`.
        SHARED = "files:shared",
    }
}

/// A server with the same rule on a mirrored and on an unmirrored field.
#[derive(Clone, mcp_guard::ProtectedResource)]
#[protected_resource(scopes = BenchScopes, resource = "https://mcp.example.com/mcp")]
pub struct Docs {
    tool_router: rmcp::handler::server::router::tool::ToolRouter<Self>,
}

#[mcp_guard::guarded]
#[rmcp::tool_router]
impl Docs {
    /// Decided from `Mcp-Param-Path`.
    #[mcp_guard::protected(scopes = WRITE, when(path.under("/shared"), scopes = SHARED))]
    #[rmcp::tool]
    async fn publish(
        &self,
        rmcp::handler::server::wrapper::Parameters(args): rmcp::handler::server::wrapper::Parameters<
            PublishArgs,
        >,
    ) -> String {
        args.path
    }

    /// Decided on the body.
    #[mcp_guard::protected(scopes = WRITE, when(path.under("/shared"), scopes = SHARED))]
    #[rmcp::tool]
    async fn publish_unmirrored(
        &self,
        rmcp::handler::server::wrapper::Parameters(args): rmcp::handler::server::wrapper::Parameters<
            UnmirroredArgs,
        >,
    ) -> String {
        args.path
    }
}

#[mcp_guard::guarded]
#[rmcp::tool_handler(router = self.tool_router)]
impl rmcp::ServerHandler for Docs {}

/// What the layer hands the request to: answers at once, the body unread, so that only the
/// layer's own work is measured.
#[derive(Clone)]
struct Answer;

impl tower_service::Service<http::Request<axum::body::Body>> for Answer {
    type Response = http::Response<axum::body::Body>;
    type Error = std::convert::Infallible;
    type Future = std::future::Ready<Result<Self::Response, Self::Error>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: http::Request<axum::body::Body>) -> Self::Future {
        std::future::ready(Ok(http::Response::new(axum::body::Body::empty())))
    }
}

fn header_args(c: &mut Criterion) {
    use tower_layer::Layer as _;
    use tower_service::Service as _;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let case = cases().remove(1);
    let mut jwk = Jwk::from_encoding_key(&case.encoding, case.alg).unwrap();
    jwk.common.key_id = Some(case.name.to_owned());
    let guard = Guard::builder()
        .server::<Docs>()
        .issuer(Issuer::with_keys(
            ISSUER,
            KeySet::from_keys([VerifyingKey::from_jwk(&jwk).unwrap()]),
        ))
        .build()
        .unwrap();
    let service = mcp_guard::GuardLayer::new(guard).layer(Answer);
    let auth = format!("Bearer {}", token(&case));
    let content = "x".repeat(64 * 1024);
    let request = |tool: &str| {
        let body = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
            "params": {"name": tool, "arguments": {"path": "/notes/a", "content": content}}});
        let body = bytes::Bytes::from(body.to_string());
        let auth = auth.clone();
        let tool = tool.to_owned();
        move || {
            http::Request::post("/mcp")
                .header("authorization", &auth)
                .header("content-type", "application/json")
                .header("accept", "application/json, text/event-stream")
                .header("mcp-protocol-version", "2026-07-28")
                .header("mcp-method", "tools/call")
                .header("mcp-name", &tool)
                .header("mcp-param-path", "/notes/a")
                .body(axum::body::Body::from(body.clone()))
                .unwrap()
        }
    };
    let mut group = c.benchmark_group("layer/tools_call with an argument rule, 64 KiB body");
    for (name, tool) in [
        ("decided from Mcp-Param-Path", "publish"),
        ("decided on the body read", "publish_unmirrored"),
    ] {
        let make = request(tool);
        let first = rt.block_on(service.clone().call(make())).unwrap();
        assert_eq!(first.status(), 200, "{name}");
        group.bench_function(name, |b| {
            b.to_async(&rt).iter(|| {
                let mut service = service.clone();
                let req = make();
                async move { service.call(black_box(req)).await.unwrap().status() }
            })
        });
    }
    group.finish();
}

/// A token for the DPoP benchmark: unique by `jti`, bound to `jkt` when given.
fn dpop_bench_token(case: &Case, n: u64, jkt: Option<&str>) -> String {
    let mut header = Header::new(case.alg);
    header.kid = Some(case.name.to_owned());
    header.typ = Some("at+jwt".to_owned());
    let mut claims = json!({
        "iss": ISSUER, "sub": "alice", "aud": RESOURCE, "client_id": "bench",
        "scope": "files:read", "iat": now(), "exp": now() + 3600, "jti": format!("t-{n}"),
    });
    if let Some(jkt) = jkt {
        claims["cnf"] = json!({ "jkt": jkt });
    }
    jsonwebtoken::encode(&header, &claims, &case.encoding).unwrap()
}

/// The layer deciding one small `tools/call` with a bearer token against the same call with
/// a DPoP-bound token and its proof (ES256 token, ES256 proof): a token seen before (cache
/// hit) and a new token on every request. Tokens and proofs are signed outside the measured
/// part.
fn dpop(c: &mut Criterion) {
    use tower_layer::Layer as _;
    use tower_service::Service as _;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let case = cases().remove(1);
    let mut jwk = Jwk::from_encoding_key(&case.encoding, case.alg).unwrap();
    jwk.common.key_id = Some(case.name.to_owned());
    let guard = Guard::builder()
        .resource(RESOURCE)
        .issuer(Issuer::with_keys(
            ISSUER,
            KeySet::from_keys([VerifyingKey::from_jwk(&jwk).unwrap()]),
        ))
        .dpop(mcp_guard::dpop::Dpop::allowed())
        .build()
        .unwrap();
    let service = mcp_guard::GuardLayer::new(guard).layer(Answer);
    // The client's key: another P-256 key would do; the test one is at hand.
    let client = EncodingKey::from_ec_pem(&key_file("ec256.pem")).unwrap();
    let client_jwk = Jwk::from_encoding_key(&client, Algorithm::ES256).unwrap();
    let jkt = client_jwk
        .thumbprint(jsonwebtoken::jwk::ThumbprintHash::SHA256)
        .unwrap();
    let next = std::sync::atomic::AtomicU64::new(0);
    let proof = |token: &str| {
        let mut h = Header::new(Algorithm::ES256);
        h.typ = Some("dpop+jwt".to_owned());
        h.jwk = Some(client_jwk.clone());
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
        let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let claims = json!({"jti": format!("p-{n}"), "htm": "POST", "htu": RESOURCE, "iat": now(),
            "ath": base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, digest)});
        jsonwebtoken::encode(&h, &claims, &client).unwrap()
    };
    let body = bytes::Bytes::from(
        json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
            "params": {"name": "whoami", "arguments": {}}})
        .to_string(),
    );
    let request = |authorization: String, proof: Option<String>| {
        let mut r = http::Request::post("/mcp")
            .header("authorization", authorization)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", "tools/call")
            .header("mcp-name", "whoami");
        if let Some(p) = proof {
            r = r.header("dpop", p);
        }
        r.body(axum::body::Body::from(body.clone())).unwrap()
    };
    let bearer = dpop_bench_token(&case, 0, None);
    let bound = dpop_bench_token(&case, 1, Some(&jkt));
    let tokens = std::sync::atomic::AtomicU64::new(10);
    let fresh = || tokens.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    type Make<'a> = Box<dyn Fn() -> http::Request<axum::body::Body> + 'a>;
    let rows: [(&str, Make<'_>); 4] = [
        (
            "bearer, token seen before",
            Box::new(|| request(format!("Bearer {bearer}"), None)),
        ),
        (
            "DPoP, token seen before, fresh proof",
            Box::new(|| request(format!("DPoP {bound}"), Some(proof(&bound)))),
        ),
        (
            "bearer, new token",
            Box::new(|| {
                request(
                    format!("Bearer {}", dpop_bench_token(&case, fresh(), None)),
                    None,
                )
            }),
        ),
        (
            "DPoP, new token, fresh proof",
            Box::new(|| {
                let t = dpop_bench_token(&case, fresh(), Some(&jkt));
                let p = proof(&t);
                request(format!("DPoP {t}"), Some(p))
            }),
        ),
    ];
    let mut group = c.benchmark_group("layer/tools_call, bearer vs DPoP");
    for (name, make) in &rows {
        let first = rt.block_on(service.clone().call(make())).unwrap();
        assert_eq!(first.status(), 200, "{name}");
        group.bench_function(*name, |b| {
            b.to_async(&rt).iter_batched(
                make,
                |req| {
                    let mut service = service.clone();
                    async move { service.call(black_box(req)).await.unwrap().status() }
                },
                criterion::BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

criterion_group!(
    benches,
    verification,
    cache_hit,
    request_path,
    header_args,
    dpop
);
criterion_main!(benches);
