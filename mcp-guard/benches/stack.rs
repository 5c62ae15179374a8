//! The whole server stack in process, without sockets: an axum router in front of rmcp's
//! `StreamableHttpService` (stateless, JSON responses) answering one `tools/call ping` at a
//! time, bare and behind the guard, so that what the guard adds to a request is measured
//! apart from the network, the load generator and the other processes of a load run.
//!
//! ```text
//! cargo bench -p mcp-guard --bench stack
//! ```
//!
//! Stacks (`tools/call ping`, the same bearer token for all; the bare server ignores it):
//! - `bare`: rmcp alone, one tool;
//! - `layer only`: the same unprotected server behind the guard's layer (authentication,
//!   classification, the decision, audit), without the in-process check;
//! - `guarded`: the protected twin (`#[protected]`, `#[guarded]`) behind the guard, as a
//!   server written from the README runs, token reused (a verified-token cache hit);
//! - `guarded, every token new`: the same, each request with a token never seen before
//!   (verified in full), beside one bare `jsonwebtoken::decode` of such a token, the unit of
//!   the new-token goal.
//!
//! Wall-clock figures on a shared machine drift; instruction counts do not. With
//! `MCP_GUARD_STACK_RUN=STACK:N` (`STACK` one of the names above, `/2026` appended for the
//! 2026-07-28 wire format, or `jsonwebtoken::decode`) the benchmark serves `N` requests of
//! that stack (or decodes `N` new tokens) and exits, for
//! `valgrind --tool=callgrind`; `benches/instructions.sh` prints the instructions per request
//! of each stack that way.

use std::convert::Infallible;
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Body;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use http_body_util::BodyExt as _;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use mcp_guard::jwks::{KeySet, VerifyingKey};
use mcp_guard::{Guard, GuardBuilder, Issuer};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::transport::streamable_http_server::{
    StreamableHttpServerConfig, StreamableHttpService, session::never::NeverSessionManager,
};
use serde_json::{Map, Value, json};
use tower_service::Service as _;

const ISSUER: &str = "https://as.example.com";
const RESOURCE: &str = "http://localhost/mcp";

mcp_guard::scopes! {
    /// The benchmark's one scope.
    pub StackScopes {
        /// Call the ping tool.
        #[baseline]
        CALL = "bench:call",
    }
}

/// One tool, unprotected.
#[derive(Clone)]
struct Bare {
    tool_router: Arc<ToolRouter<Self>>,
}

#[rmcp::tool_router]
impl Bare {
    /// Answers `pong`.
    #[rmcp::tool]
    async fn ping(&self) -> String {
        "pong".to_owned()
    }
}

#[rmcp::tool_handler(router = self.tool_router, name = "bench", version = "0.1.0")]
impl rmcp::ServerHandler for Bare {}

/// The same tool, protected.
#[derive(Clone, mcp_guard::ProtectedResource)]
#[protected_resource(scopes = StackScopes, resource = "http://localhost/mcp")]
struct Protected {
    tool_router: Arc<ToolRouter<Self>>,
}

#[mcp_guard::guarded]
#[rmcp::tool_router]
impl Protected {
    /// Answers `pong`.
    #[mcp_guard::protected(scopes = CALL)]
    #[rmcp::tool]
    async fn ping(&self) -> String {
        "pong".to_owned()
    }
}

#[mcp_guard::guarded]
#[rmcp::tool_handler(router = self.tool_router, name = "bench", version = "0.1.0")]
impl rmcp::ServerHandler for Protected {}

fn mcp<H>(handler: H) -> StreamableHttpService<H, NeverSessionManager>
where
    H: rmcp::ServerHandler + Clone + Send + Sync + 'static,
{
    StreamableHttpService::new(
        move || Ok(handler.clone()),
        Arc::new(NeverSessionManager::default()),
        StreamableHttpServerConfig::default()
            .with_legacy_session_mode(false)
            .with_json_response(true),
    )
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The signing key and its public half.
struct Keys {
    encoding: EncodingKey,
    jwk: Jwk,
}

impl Keys {
    fn new() -> Self {
        let _ = jsonwebtoken::crypto::CryptoProvider::install_default(
            &jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER,
        );
        let pem = std::fs::read(format!(
            "{}/../tests/keys/ec256.pem",
            env!("CARGO_MANIFEST_DIR")
        ))
        .expect("test key");
        let encoding = EncodingKey::from_ec_pem(&pem).unwrap();
        let mut jwk = Jwk::from_encoding_key(&encoding, Algorithm::ES256).unwrap();
        jwk.common.key_id = Some("k1".to_owned());
        Self { encoding, jwk }
    }

    /// An ES256 access token for the ping tool, unique by `jti`.
    fn token(&self, n: usize) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some("k1".to_owned());
        header.typ = Some("at+jwt".to_owned());
        let claims = json!({"iss": ISSUER, "sub": "alice", "aud": RESOURCE,
            "client_id": "bench", "scope": "bench:call", "iat": now(),
            "exp": now() + 3600, "jti": format!("t-{n}")});
        jsonwebtoken::encode(&header, &claims, &self.encoding).unwrap()
    }
}

/// The wire format of a request.
#[derive(Clone, Copy)]
enum Wire {
    /// 2025-11-25: the method and the tool in the body only (the guard reads the body).
    V2025,
    /// 2026-07-28: also in `Mcp-Method` and `Mcp-Name` (the guard reads the headers).
    V2026,
}

fn request(wire: Wire, token: &str) -> http::Request<Body> {
    let builder = http::Request::post("/mcp")
        .header("host", "localhost")
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream");
    let (builder, body): (_, &'static [u8]) = match wire {
        Wire::V2025 => (
            builder.header("mcp-protocol-version", "2025-11-25"),
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"ping","arguments":{}}}"#,
        ),
        Wire::V2026 => (
            builder
                .header("mcp-protocol-version", "2026-07-28")
                .header("mcp-method", "tools/call")
                .header("mcp-name", "ping"),
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"ping","arguments":{},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}"#,
        ),
    };
    builder.body(Body::from(body)).unwrap()
}

/// One request through a stack, its body read to the end.
async fn call(mut router: axum::Router, req: http::Request<Body>) -> bytes::Bytes {
    // A router is always ready.
    let resp: Result<_, Infallible> = router.call(req).await;
    resp.unwrap()
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
}

/// Serves `n` requests, the tokens taken in turn.
fn serve(
    rt: &tokio::runtime::Runtime,
    router: &axum::Router,
    wire: Wire,
    tokens: &[String],
    n: usize,
) {
    rt.block_on(async {
        for i in 0..n {
            black_box(call(router.clone(), request(wire, &tokens[i % tokens.len()])).await);
        }
    });
}

/// [`serve`], under its own name: what callgrind counts (`--toggle-collect=stack::measured*`).
#[inline(never)]
fn measured(
    rt: &tokio::runtime::Runtime,
    router: &axum::Router,
    wire: Wire,
    tokens: &[String],
    n: usize,
) {
    serve(rt, router, wire, tokens, n);
}

/// A bare `jsonwebtoken::decode` with the checks the guard makes: the same key, issuer,
/// audience, required `exp`/`iss`/`aud`, and `nbf`.
fn decoder(keys: &Keys) -> (DecodingKey, Validation) {
    let decoding = DecodingKey::from_jwk(&keys.jwk).unwrap();
    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_issuer(&[ISSUER]);
    validation.set_audience(&[RESOURCE]);
    validation.set_required_spec_claims(&["exp", "iss", "aud"]);
    validation.validate_nbf = true;
    (decoding, validation)
}

/// Decodes `n` tokens, taken in turn.
fn decode(tokens: &[String], decoding: &DecodingKey, validation: &Validation, n: usize) {
    for i in 0..n {
        let token = &tokens[i % tokens.len()];
        black_box(
            jsonwebtoken::decode::<Map<String, Value>>(black_box(token), decoding, validation)
                .unwrap(),
        );
    }
}

/// [`decode`], under the name callgrind counts.
#[inline(never)]
fn measured_decode(tokens: &[String], decoding: &DecodingKey, validation: &Validation, n: usize) {
    decode(tokens, decoding, validation, n);
}

fn stack(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let keys = Keys::new();
    let guard = Guard::builder()
        .server::<Protected>()
        .issuer(Issuer::with_keys(
            ISSUER,
            KeySet::from_keys([VerifyingKey::from_jwk(&keys.jwk).unwrap()]),
        ))
        .build()
        .unwrap();
    let bare = Bare {
        tool_router: Arc::new(Bare::tool_router()),
    };
    let protected = Protected {
        tool_router: Arc::new(Protected::tool_router()),
    };
    let bare_stack = axum::Router::new().route_service("/mcp", mcp(bare.clone()));
    let layer_only = guard.router(mcp(bare));
    let guarded = guard.router(mcp(protected));
    let reused = keys.token(0);

    let stacks = [
        ("bare", &bare_stack),
        ("layer only", &layer_only),
        ("guarded", &guarded),
    ];
    for (name, router) in stacks {
        for wire in [Wire::V2025, Wire::V2026] {
            let answer = rt.block_on(call(router.clone(), request(wire, &reused)));
            assert!(
                answer.windows(4).any(|w| w == b"pong"),
                "{name}: {}",
                String::from_utf8_lossy(&answer)
            );
        }
    }

    if let Ok(spec) = std::env::var("MCP_GUARD_STACK_RUN") {
        let (which, n) = spec.rsplit_once(':').expect("MCP_GUARD_STACK_RUN=STACK:N");
        let n: usize = n.parse().expect("a number of requests");
        let (which, wire) = match which.strip_suffix("/2026") {
            Some(w) => (w, Wire::V2026),
            None => (which, Wire::V2025),
        };
        let tokens: Vec<String> = match which {
            "jsonwebtoken::decode" => {
                let (decoding, validation) = decoder(&keys);
                let tokens: Vec<String> = (0..=n).map(|i| keys.token(i + 1)).collect();
                decode(&tokens[..1], &decoding, &validation, 100);
                measured_decode(&tokens[1..], &decoding, &validation, n);
                std::process::exit(0);
            }
            "guarded, every token new" => (0..=n).map(|i| keys.token(i + 1)).collect(),
            _ => vec![reused.clone()],
        };
        let router = match which {
            "guarded, every token new" => &guarded,
            w => stacks.iter().find(|(s, _)| *s == w).expect("a stack").1,
        };
        // The first requests pay for what is set up once (lazy statics, the first
        // verification of the reused token); the counted ones follow.
        serve(&rt, router, wire, &tokens[..1.min(tokens.len())], 100);
        let tokens = if tokens.len() > 1 {
            &tokens[1..]
        } else {
            &tokens[..]
        };
        measured(&rt, router, wire, tokens, n);
        std::process::exit(0);
    }

    for (group, wire) in [
        ("stack/tools_call ping (2025-11-25)", Wire::V2025),
        ("stack/tools_call ping (2026-07-28)", Wire::V2026),
    ] {
        let mut group = c.benchmark_group(group);
        for (name, router) in stacks {
            group.bench_function(format!("{name}, token reused"), |b| {
                b.to_async(&rt)
                    .iter(|| call(router.clone(), black_box(request(wire, &reused))))
            });
        }
        group.finish();
    }

    // Each iteration is given a token minted for it, outside the measured time: no token is
    // ever seen twice, however many iterations criterion runs. The verified-token cache
    // (the guard's default capacity) is filled first with a fifth more tokens than it holds,
    // so the figure is that of a full cache: a new token is verified and only its fingerprint
    // remembered (admission on second use).
    let next = AtomicUsize::new(1);
    let fresh = || keys.token(next.fetch_add(1, Ordering::Relaxed));
    rt.block_on(async {
        for _ in 0..GuardBuilder::DEFAULT_TOKEN_CACHE_CAPACITY * 6 / 5 {
            call(guarded.clone(), request(Wire::V2025, &fresh())).await;
        }
    });
    let mut group = c.benchmark_group("stack/tools_call ping (2025-11-25), every token new");
    group.bench_function("guarded, every token new", |b| {
        b.to_async(&rt).iter_batched(
            || request(Wire::V2025, &fresh()),
            |req| call(guarded.clone(), req),
            BatchSize::SmallInput,
        )
    });
    let (decoding, validation) = decoder(&keys);
    group.bench_function("jsonwebtoken::decode (the unit)", |b| {
        b.iter_batched(
            fresh,
            |token| {
                jsonwebtoken::decode::<Map<String, Value>>(&token, &decoding, &validation).unwrap()
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, stack);
criterion_main!(benches);
