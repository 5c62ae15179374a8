//! Argument rules decided from SEP-2243 `Mcp-Param-*` headers: on 2026-07-28 requests a rule
//! on a top-level field the tool mirrors into a header (`x-mcp-header` in its input schema) is
//! decided from the header without reading the body, rmcp refusing a header that disagrees
//! with the body; every other case (a missing, duplicated, undecodable or mistyped header, a
//! field that is not mirrored or is mirrored under another name, older revisions) reads the
//! body. The guard's body limit is small here, so that an oversized body tells the two paths
//! apart: read, it is refused as too large; unread, it is decided by its headers.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use mcp_guard::{Guard, Issuer, Principal, ProtectedResource, guarded, protected};
use mcp_guard_tests::server::{LEGACY, STATELESS, bind, post_json, stateless_body};
use mcp_guard_tests::{Answer, TestIssuer, TestKey, TestServer, claims};
use rmcp::handler::server::{router::tool::ToolRouter, wrapper::Parameters};
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ServerHandler, tool, tool_handler, tool_router};
use serde::Deserialize;
use serde_json::{Value, json};

mcp_guard::scopes! {
    /// A publishing service's scopes.
    pub Scopes {
        /// Write documents.
        #[baseline]
        WRITE = "docs:write",
        /// Write under `/shared`.
        SHARED = "docs:shared",
        /// Make a repository public.
        PUBLISH = "docs:publish",
        /// Raise a repository's level to 3.
        ADMIN = "docs:admin",
    }
}

/// The guard's body limit in these tests.
const BODY_LIMIT: usize = 1024;

/// `publish`'s arguments: `path` is mirrored into `Mcp-Param-Path`, `content` is not.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct PublishArgs {
    /// Where to publish.
    #[schemars(extend("x-mcp-header" = "Path"))]
    pub path: String,
    /// What.
    pub content: String,
}

/// `configure`'s arguments: a boolean and an optional integer mirrored, `repo` not.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct ConfigureArgs {
    /// Which repository.
    pub repo: String,
    /// Make it public.
    #[schemars(extend("x-mcp-header" = "Public"))]
    pub public: bool,
    /// Its level.
    #[schemars(extend("x-mcp-header" = "Level"))]
    #[serde(default)]
    pub level: Option<u32>,
}

/// `note`'s arguments: the title is mirrored, the path the rule reads is not.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct NoteArgs {
    /// The title.
    #[schemars(extend("x-mcp-header" = "Title"))]
    pub title: String,
    /// Where.
    pub path: String,
}

/// `rename`'s arguments: the Rust field `path` is `target` on the wire, mirrored as `Target`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct RenamedArgs {
    /// Where.
    #[serde(rename = "target")]
    #[schemars(extend("x-mcp-header" = "Target"))]
    pub path: String,
}

/// `swap`'s arguments: the wire's `path` (mirrored) is the Rust field `dest`, and the Rust
/// field `path`, which the rule reads, is the wire's `dest`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct SwappedArgs {
    /// Mirrored as `Mcp-Param-Path`.
    #[serde(rename = "path")]
    #[schemars(extend("x-mcp-header" = "Path"))]
    pub dest: String,
    /// What the rule reads.
    #[serde(rename = "dest")]
    pub path: String,
}

/// `alias`'s arguments: `path` also reads the wire's `p`, which the schema does not list.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct AliasedArgs {
    /// Where.
    #[serde(alias = "p")]
    #[schemars(extend("x-mcp-header" = "Path"))]
    pub path: String,
}

/// `fold`'s arguments: the tool lower-cases `path` as it reads it.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct FoldedArgs {
    /// Where, in any case.
    #[serde(deserialize_with = "lower_case")]
    #[schemars(extend("x-mcp-header" = "Path"))]
    pub path: String,
}

fn lower_case<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    String::deserialize(d).map(|s| s.to_lowercase())
}

/// `label`'s arguments: a text field whose header may spell a number.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct LabelArgs {
    /// Text only.
    #[schemars(extend("x-mcp-header" = "Label"))]
    pub label: String,
}

/// `code`'s arguments: a field a lenient reader takes as text or as a number.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct CodeArgs {
    /// Text, or a number read as `#` and its digits.
    #[serde(default, deserialize_with = "text_or_number")]
    #[schemars(extend("x-mcp-header" = "Code"))]
    pub code: Option<String>,
}

fn text_or_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Number(n) => Some(format!("#{n}")),
        Value::String(s) => Some(s),
        _ => None,
    })
}

/// A repository's visibility.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Anyone.
    Public,
    /// Members.
    Private,
}

/// `visibility`'s arguments: an enum, mirrored.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct ModeArgs {
    /// The new visibility.
    #[schemars(extend("x-mcp-header" = "Mode"))]
    pub mode: Mode,
}

/// How many times a tool body ran.
#[derive(Debug, Default)]
pub struct Runs(AtomicUsize);

/// The service.
#[derive(Clone, ProtectedResource)]
#[protected_resource(scopes = Scopes, name = "docs")]
pub struct Docs {
    tool_router: ToolRouter<Self>,
    runs: Arc<Runs>,
}

impl Docs {
    fn new(runs: Arc<Runs>) -> Self {
        Self {
            tool_router: Self::tool_router(),
            runs,
        }
    }

    fn ran(&self, what: String) -> String {
        self.runs.0.fetch_add(1, Ordering::SeqCst);
        what
    }
}

#[guarded]
#[tool_router]
impl Docs {
    /// Publishes a document; under `/shared` it needs `docs:shared`.
    #[protected(scopes = WRITE, when(path.under("/shared"), scopes = SHARED))]
    #[tool]
    async fn publish(&self, Parameters(args): Parameters<PublishArgs>) -> String {
        self.ran(format!(
            "published {} bytes at {}",
            args.content.len(),
            args.path
        ))
    }

    /// Configures a repository; public needs `docs:publish`, level 3 `docs:admin`.
    #[protected(
        scopes = WRITE,
        when(public, scopes = PUBLISH),
        when(level == 3, scopes = ADMIN),
    )]
    #[tool]
    async fn configure(&self, Parameters(args): Parameters<ConfigureArgs>) -> String {
        self.ran(format!("configured {}", args.repo))
    }

    /// Writes a note; under `/shared` it needs `docs:shared`.
    #[protected(scopes = WRITE, when(path.under("/shared"), scopes = SHARED))]
    #[tool]
    async fn note(&self, Parameters(args): Parameters<NoteArgs>) -> String {
        self.ran(format!("noted {} at {}", args.title, args.path))
    }

    /// Moves to a target; under `/shared` it needs `docs:shared`.
    #[protected(scopes = WRITE, when(path.under("/shared"), scopes = SHARED))]
    #[tool]
    async fn rename(&self, Parameters(args): Parameters<RenamedArgs>) -> String {
        self.ran(format!("renamed to {}", args.path))
    }

    /// Copies; the rule reads the Rust field `path` (the wire's `dest`).
    #[protected(scopes = WRITE, when(path.under("/shared"), scopes = SHARED))]
    #[tool]
    async fn swap(&self, Parameters(args): Parameters<SwappedArgs>) -> String {
        self.ran(format!("copied {} to {}", args.dest, args.path))
    }

    /// Writes under an alias; under `/shared` it needs `docs:shared`.
    #[protected(scopes = WRITE, when(path.under("/shared"), scopes = SHARED))]
    #[tool]
    async fn alias(&self, Parameters(args): Parameters<AliasedArgs>) -> String {
        self.ran(format!("aliased {}", args.path))
    }

    /// Writes at a path read in lower case; under `/shared` it needs `docs:shared`.
    #[protected(scopes = WRITE, when(path.under("/shared"), scopes = SHARED))]
    #[tool]
    async fn fold(&self, Parameters(args): Parameters<FoldedArgs>) -> String {
        self.ran(format!("folded {}", args.path))
    }

    /// Labels; the label `5` needs `docs:admin`.
    #[protected(scopes = WRITE, when(label == "5", scopes = ADMIN))]
    #[tool]
    async fn label(&self, Parameters(args): Parameters<LabelArgs>) -> String {
        self.ran(format!("labelled {}", args.label))
    }

    /// Codes; the code `5` needs `docs:admin`.
    #[protected(scopes = WRITE, when(code == "5", scopes = ADMIN))]
    #[tool]
    async fn code(&self, Parameters(args): Parameters<CodeArgs>) -> String {
        self.ran(format!("coded {:?}", args.code))
    }

    /// Sets the visibility; public needs `docs:publish`.
    #[protected(scopes = WRITE, when(mode == Mode::Public, scopes = PUBLISH))]
    #[tool]
    async fn visibility(&self, Parameters(args): Parameters<ModeArgs>) -> String {
        self.ran(format!("visibility {:?}", args.mode))
    }
}

#[guarded]
#[tool_handler(router = self.tool_router, name = "docs", version = "0.1.0")]
impl ServerHandler for Docs {
    fn get_info(&self) -> rmcp::model::ServerConfig {
        rmcp::model::ServerConfig::new(
            rmcp::model::ServerCapabilities::builder()
                .enable_tools()
                .build(),
        )
    }
}

/// A server whose own `get_tool` gives rmcp no schema, so rmcp checks no `Mcp-Param-*` header.
#[derive(Clone, ProtectedResource)]
#[protected_resource(scopes = Scopes, name = "unchecked")]
pub struct Unchecked {
    tool_router: ToolRouter<Self>,
    runs: Arc<Runs>,
}

#[guarded]
#[tool_router]
impl Unchecked {
    /// Publishes a document; under `/shared` it needs `docs:shared`.
    #[protected(scopes = WRITE, when(path.under("/shared"), scopes = SHARED))]
    #[tool]
    async fn publish(&self, Parameters(args): Parameters<PublishArgs>) -> String {
        self.runs.0.fetch_add(1, Ordering::SeqCst);
        format!("published at {}", args.path)
    }
}

#[guarded]
#[tool_handler(router = self.tool_router, name = "unchecked", version = "0.1.0")]
impl ServerHandler for Unchecked {
    fn get_info(&self) -> rmcp::model::ServerConfig {
        rmcp::model::ServerConfig::new(
            rmcp::model::ServerCapabilities::builder()
                .enable_tools()
                .build(),
        )
    }

    fn get_tool(&self, _name: &str) -> Option<rmcp::model::Tool> {
        None
    }
}

struct Setup {
    server: TestServer,
    runs: Arc<Runs>,
    /// `docs:write` only.
    write: String,
    _issuer: TestIssuer,
}

async fn setup() -> Setup {
    setup_for::<Docs>(Docs::new).await
}

async fn setup_for<H>(make: fn(Arc<Runs>) -> H) -> Setup
where
    H: ProtectedResource + mcp_guard::DeclaredOperations + ServerHandler + Send + 'static,
{
    let key = TestKey::rsa1();
    let issuer = TestIssuer::start(vec![key.jwk()]).await;
    let runs = Arc::new(Runs::default());
    let (jwks, iss, r) = (issuer.jwks_uri(), issuer.issuer.clone(), runs.clone());
    let server = TestServer::serve(
        bind().await,
        &issuer.issuer,
        |_| {},
        move |options| {
            Guard::builder()
                .server::<H>()
                .resource(&options.resource)
                .issuer(Issuer::with_jwks_uri(&iss, jwks))
                .max_body_bytes(BODY_LIMIT)
                .build()
                .expect("guard builds")
        },
        move || make(r.clone()),
    );
    let write = key.sign(&claims(&issuer.issuer, &server.mcp_url, "docs:write"));
    Setup {
        server,
        runs,
        write,
        _issuer: issuer,
    }
}

/// More than the guard reads.
fn oversized() -> String {
    "x".repeat(4 * BODY_LIMIT)
}

/// A 2026-07-28 `tools/call` of `tool` with these extra headers.
async fn call(s: &Setup, tool: &str, headers: &[(&str, &str)], args: Value) -> Answer {
    let auth = format!("Bearer {}", s.write);
    let mut all = vec![
        ("authorization", auth.as_str()),
        ("mcp-protocol-version", STATELESS),
        ("mcp-method", "tools/call"),
        ("mcp-name", tool),
    ];
    all.extend_from_slice(headers);
    let body = stateless_body("tools/call", json!({"name": tool, "arguments": args}));
    s.server.post(&all, &body).await
}

/// A 2026-07-28 `tools/call` of `tool` with these extra headers and this body, as sent.
async fn call_raw(s: &Setup, tool: &str, headers: &[(&str, &str)], body: &str) -> Answer {
    let auth = format!("Bearer {}", s.write);
    let mut all = vec![
        ("authorization", auth.as_str()),
        ("mcp-protocol-version", STATELESS),
        ("mcp-method", "tools/call"),
        ("mcp-name", tool),
    ];
    all.extend_from_slice(headers);
    s.server.post(&all, body).await
}

/// Not a successful tool result: a JSON-RPC error, a tool error or an HTTP refusal.
fn assert_not_run(a: &Answer, why: &str) {
    if a.status != 200 {
        return;
    }
    let v = a.json();
    assert!(
        v.get("error").is_some() || v["result"]["isError"] == true,
        "{why}: {a:?}"
    );
}

/// The layer's 403 asking for `scope`.
fn assert_step_up(a: &Answer, scope: &str, why: &str) {
    assert_eq!(a.status, 403, "{why}: {a:?}");
    let c = a.challenge();
    assert_eq!(c.param("error"), Some("insufficient_scope"), "{why}");
    let asked = c.param("scope").unwrap_or_default();
    assert!(asked.split(' ').any(|s| s == scope), "{why}: {asked}");
}

/// The guard read the body and refused it as too large.
fn assert_body_read(a: &Answer, why: &str) {
    assert_eq!(a.status, 413, "{why}: the body was read: {a:?}");
}

fn ran(s: &Setup) -> usize {
    s.runs.0.load(Ordering::SeqCst)
}

#[tokio::test]
async fn mirrored_arguments_are_decided_from_the_headers_without_reading_the_body() {
    let s = setup().await;
    let big = oversized();

    // Refused from the header: a body the guard would refuse as too large is never read.
    let a = call(
        &s,
        "publish",
        &[("mcp-param-path", "/shared/a")],
        json!({"path": "/shared/a", "content": big}),
    )
    .await;
    assert_step_up(&a, "docs:shared", "header under /shared");
    // Normalised as the rule normalises, and in SEP-2243's Base64 form.
    let a = call(
        &s,
        "publish",
        &[("mcp-param-path", "=?base64?Ly9zaGFyZWQvLi9h?=")],
        json!({"path": "//shared/./a", "content": big}),
    )
    .await;
    assert_step_up(&a, "docs:shared", "base64 //shared/./a");
    // Header names are case-insensitive, for rmcp as for the guard.
    let a = call(
        &s,
        "publish",
        &[("MCP-PARAM-PATH", "/shared/a")],
        json!({"path": "/shared/a", "content": big}),
    )
    .await;
    assert_step_up(&a, "docs:shared", "upper-case header name");
    assert_eq!(ran(&s), 0);

    // Allowed from the header: rmcp (whose own limit is larger) reads the body and runs it.
    let a = call(
        &s,
        "publish",
        &[("mcp-param-path", "/notes/a")],
        json!({"path": "/notes/a", "content": big}),
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(
        a.tool_text(),
        format!("published {} bytes at /notes/a", big.len())
    );

    // Booleans and integers in their JSON spelling.
    let configure = |public: &'static str, level: Option<&'static str>, body: Value| {
        let mut h = vec![("mcp-param-public", public)];
        h.extend(level.map(|l| ("mcp-param-level", l)));
        let s = &s;
        async move { call(s, "configure", &h, body).await }
    };
    let a = configure(
        "true",
        Some("2"),
        json!({"repo": big, "public": true, "level": 2}),
    )
    .await;
    assert_step_up(&a, "docs:publish", "public");
    // A mirrored header left out (the body has no `level`) cannot be decided: the body is read.
    let a = configure("true", None, json!({"repo": big, "public": true})).await;
    assert_body_read(&a, "no Mcp-Param-Level");
    let a = configure(
        "false",
        Some("3"),
        json!({"repo": big, "public": false, "level": 3}),
    )
    .await;
    assert_step_up(&a, "docs:admin", "level 3");
    let a = configure(
        "false",
        Some("2"),
        json!({"repo": big, "public": false, "level": 2}),
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(ran(&s), 2);
    s.server.stop().await;
}

#[tokio::test]
async fn a_lying_header_gets_rmcps_400_and_never_reaches_the_tool() {
    let s = setup().await;
    // The header says what needs no more scope, the body what does: the layer lets it through
    // on the header's word, and rmcp refuses the disagreement.
    for (header, body) in [
        ("/notes/a", "/shared/a"),
        ("/notes/a", "//shared/../shared/a"),
        ("=?base64?L25vdGVzL2E=?=", "/shared/a"),
    ] {
        let a = call(
            &s,
            "publish",
            &[("mcp-param-path", header)],
            json!({"path": body, "content": "c"}),
        )
        .await;
        assert_eq!(a.status, 400, "{header} / {body}: {a:?}");
        assert_eq!(a.json()["error"]["code"], -32020, "HeaderMismatch: {a:?}");
    }
    let a = call(
        &s,
        "configure",
        &[("mcp-param-public", "false"), ("mcp-param-level", "2")],
        json!({"repo": "r", "public": true, "level": 2}),
    )
    .await;
    assert_eq!(a.status, 400, "{a:?}");
    assert_eq!(a.json()["error"]["code"], -32020, "{a:?}");
    // A header that claims more than the body is refused on its own word (never laxer).
    let a = call(
        &s,
        "publish",
        &[("mcp-param-path", "/shared/a")],
        json!({"path": "/notes/a", "content": "c"}),
    )
    .await;
    assert_step_up(&a, "docs:shared", "header claims /shared");
    assert_eq!(ran(&s), 0, "no lying request ran");
    s.server.stop().await;
}

#[tokio::test]
async fn the_in_process_check_refuses_a_lying_header_regardless() {
    // No layer decides: the policy and the caller are handed to rmcp, and the request is of
    // a revision whose headers rmcp does not check, so only the in-process guard is left.
    let runs = Arc::new(Runs::default());
    let listener = bind().await;
    let url = format!("http://{}/mcp", listener.local_addr().expect("addr"));
    let r = runs.clone();
    let service = StreamableHttpService::new(
        move || Ok(Docs::new(r.clone())),
        Arc::new(NeverSessionManager::default()),
        StreamableHttpServerConfig::default()
            .with_legacy_session_mode(false)
            .with_json_response(true),
    );
    let policy = Arc::new(mcp_guard::policy_builder::<Docs>().build().expect("policy"));
    let c = json!({"sub": "mallory", "iss": "i", "exp": 1, "scope": "docs:write"});
    let caller = Principal::from_claims(c.as_object().unwrap().clone()).unwrap();
    let app =
        axum::Router::new()
            .route_service("/mcp", service)
            .layer(axum::middleware::map_request(
                move |mut req: axum::extract::Request| {
                    let (policy, caller) = (policy.clone(), caller.clone());
                    async move {
                        mcp_guard::testing::leave_for_in_process_checks(
                            req.extensions_mut(),
                            policy,
                            Some(caller),
                        );
                        req
                    }
                },
            ));
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "publish", "arguments": {"path": "/shared/a", "content": "c"}}});
    let a = post_json(
        &url,
        &[
            ("mcp-protocol-version", LEGACY),
            ("mcp-method", "tools/call"),
            ("mcp-name", "publish"),
            ("mcp-param-path", "/notes/a"),
        ],
        &body.to_string(),
    )
    .await;
    assert_eq!(
        a.json()["error"]["code"],
        -32003,
        "refused in-process: {a:?}"
    );
    assert!(a.body.contains("docs:shared"), "{a:?}");
    assert_eq!(runs.0.load(Ordering::SeqCst), 0);
    task.abort();
}

/// Why, the tool, the extra headers, the arguments.
type Fallback = (
    &'static str,
    &'static str,
    Vec<(&'static str, &'static str)>,
    Value,
);

/// Requests whose rule the headers cannot settle: each reads the body. `args` needs
/// `docs:shared` (or `docs:publish`, `docs:admin`); the headers say it does not, or cannot say.
fn fallbacks() -> Vec<Fallback> {
    let shared = |extra: Value| {
        let mut v = json!({"path": "/shared/a"});
        v.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        v
    };
    vec![
        (
            "missing header",
            "publish",
            vec![],
            shared(json!({"content": "c"})),
        ),
        (
            "duplicated header",
            "publish",
            vec![
                ("mcp-param-path", "/notes/a"),
                ("mcp-param-path", "/notes/a"),
            ],
            shared(json!({"content": "c"})),
        ),
        (
            "invalid base64",
            "publish",
            vec![("mcp-param-path", "=?base64?not base64?=")],
            shared(json!({"content": "c"})),
        ),
        (
            "boolean in another spelling",
            "configure",
            vec![("mcp-param-public", "True")],
            json!({"repo": "r", "public": true}),
        ),
        (
            "integer in another spelling",
            "configure",
            vec![("mcp-param-public", "true"), ("mcp-param-level", "03")],
            json!({"repo": "r", "public": true, "level": 3}),
        ),
        (
            "header for a field that is not mirrored",
            "note",
            vec![("mcp-param-title", "t"), ("mcp-param-path", "/notes/a")],
            shared(json!({"title": "t"})),
        ),
        (
            "field renamed on the wire",
            "rename",
            vec![("mcp-param-target", "/notes/a")],
            json!({"target": "/shared/a"}),
        ),
        (
            "another field renamed onto the mirrored name",
            "swap",
            vec![("mcp-param-path", "/notes/a")],
            json!({"path": "/notes/a", "dest": "/shared/a"}),
        ),
        (
            "field given under an alias the schema does not list",
            "alias",
            vec![],
            json!({"p": "/shared/a"}),
        ),
        (
            "field the tool converts as it reads it",
            "fold",
            vec![("mcp-param-path", "/SHARED/a")],
            json!({"path": "/SHARED/a"}),
        ),
        (
            "field a lenient reader takes as text or number",
            "code",
            vec![("mcp-param-code", "5")],
            json!({"code": "5"}),
        ),
        (
            "enum compared with a value of its type",
            "visibility",
            vec![("mcp-param-mode", "public")],
            json!({"mode": "public"}),
        ),
    ]
}

#[tokio::test]
async fn every_case_the_headers_cannot_settle_reads_the_body() {
    let s = setup().await;
    for (why, tool, headers, args) in fallbacks() {
        // Read and decided on the body: the 403 names what the body needs.
        let a = call(&s, tool, &headers, args.clone()).await;
        assert_eq!(a.status, 403, "{why}: decided on the body: {a:?}");
        assert_eq!(
            a.challenge().param("error"),
            Some("insufficient_scope"),
            "{why}"
        );
        // And an oversized body is read too (refused as too large).
        let mut big = args.clone();
        big["padding"] = Value::String(oversized());
        let a = call(&s, tool, &headers, big).await;
        assert_body_read(&a, why);
    }
    assert_eq!(ran(&s), 0);
    s.server.stop().await;
}

#[tokio::test]
async fn older_revisions_ignore_the_headers_and_read_the_body() {
    let s = setup().await;
    let sid = s.server.open_session(&s.write).await;
    let auth = format!("Bearer {}", s.write);
    let post = |args: Value| {
        let body = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
            "params": {"name": "publish", "arguments": args}});
        let (auth, sid, s) = (auth.clone(), sid.clone(), &s);
        async move {
            s.server
                .post(
                    &[
                        ("authorization", auth.as_str()),
                        ("mcp-protocol-version", LEGACY),
                        ("mcp-session-id", sid.as_str()),
                        ("mcp-method", "tools/call"),
                        ("mcp-name", "publish"),
                        ("mcp-param-path", "/notes/a"),
                    ],
                    &body.to_string(),
                )
                .await
        }
    };
    let a = post(json!({"path": "/shared/a", "content": "c"})).await;
    assert_step_up(&a, "docs:shared", "2025-11-25 with a harmless header");
    let a = post(json!({"path": "/notes/a", "content": oversized()})).await;
    assert_body_read(&a, "2025-11-25");
    assert_eq!(ran(&s), 0);
    s.server.stop().await;
}

#[tokio::test]
async fn a_body_value_the_header_agrees_with_only_as_text_is_never_laxer() {
    let s = setup().await;
    // rmcp compares text: the header `5` agrees with the body's number 5 and its string "5".
    // The label is text, so the rule is decided on "5", and a number never reaches the tool.
    for body in [json!({"label": "5"}), json!({"label": 5})] {
        let a = call(&s, "label", &[("mcp-param-label", "5")], body.clone()).await;
        assert_step_up(&a, "docs:admin", &format!("label {body}"));
    }
    let mut big = json!({"label": 5});
    big["padding"] = Value::String(oversized());
    let a = call(&s, "label", &[("mcp-param-label", "5")], big).await;
    assert_step_up(&a, "docs:admin", "decided from the header");
    let a = call(
        &s,
        "label",
        &[("mcp-param-label", "6")],
        json!({"label": 6}),
    )
    .await;
    assert_not_run(&a, "a number for a text field");
    // And the other way: "3" for an integer needs what 3 needs; "2" is not read by the tool.
    let public = ("mcp-param-public", "false");
    let body = json!({"repo": "r", "public": false, "level": "3"});
    let a = call(&s, "configure", &[public, ("mcp-param-level", "3")], body).await;
    assert_step_up(&a, "docs:admin", "level \"3\"");
    let body = json!({"repo": "r", "public": false, "level": "2"});
    let a = call(&s, "configure", &[public, ("mcp-param-level", "2")], body).await;
    assert_not_run(&a, "a string for an integer field");
    // A number in a spelling no integer prints as: the body is read.
    let body = json!({"repo": oversized(), "public": false, "level": 3.0});
    let a = call(&s, "configure", &[public, ("mcp-param-level", "3.0")], body).await;
    assert_body_read(&a, "level 3.0");
    assert_eq!(ran(&s), 0);
    s.server.stop().await;
}

#[tokio::test]
async fn a_field_given_twice_is_decided_on_the_value_the_tool_reads() {
    let s = setup().await;
    let body = |first: &str, second: &str| {
        let args = format!(r#"{{"path":"{first}","content":"c","path":"{second}"}}"#);
        stateless_body("tools/call", json!({"name": "publish", "arguments": {}}))
            .replace(r#""arguments":{}"#, &format!(r#""arguments":{args}"#))
    };
    // rmcp keeps the last value, checks the header against it and hands it to the tool.
    let a = call_raw(
        &s,
        "publish",
        &[("mcp-param-path", "/notes/a")],
        &body("/notes/a", "/shared/a"),
    )
    .await;
    assert_eq!(a.status, 400, "{a:?}");
    assert_eq!(a.json()["error"]["code"], -32020, "{a:?}");
    let a = call_raw(
        &s,
        "publish",
        &[("mcp-param-path", "/shared/a")],
        &body("/notes/a", "/shared/a"),
    )
    .await;
    assert_step_up(&a, "docs:shared", "the last value is under /shared");
    let a = call_raw(
        &s,
        "publish",
        &[("mcp-param-path", "/notes/a")],
        &body("/shared/a", "/notes/a"),
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.tool_text(), "published 1 bytes at /notes/a");
    // A field given under its name and an alias is refused by the type (serde's duplicate
    // field), whatever the header says.
    let a = call(
        &s,
        "alias",
        &[("mcp-param-path", "/notes/a")],
        json!({"path": "/notes/a", "p": "/shared/a"}),
    )
    .await;
    assert_not_run(&a, "name and alias");
    assert_eq!(ran(&s), 1);
    s.server.stop().await;
}

#[tokio::test]
async fn a_batch_behind_harmless_headers_never_runs() {
    let s = setup().await;
    let one = stateless_body(
        "tools/call",
        json!({"name": "publish", "arguments": {"path": "/shared/a", "content": "c"}}),
    );
    let a = call_raw(
        &s,
        "publish",
        &[("mcp-param-path", "/notes/a")],
        &format!("[{one}]"),
    )
    .await;
    assert!(
        a.status >= 400,
        "rmcp reads one message, never a batch: {a:?}"
    );
    assert_eq!(ran(&s), 0);
    s.server.stop().await;
}

#[tokio::test]
async fn a_server_whose_get_tool_rmcp_cannot_check_against_reads_the_body() {
    let s = setup_for::<Unchecked>(|runs| Unchecked {
        tool_router: Unchecked::tool_router(),
        runs,
    })
    .await;
    // rmcp would let this lying header through: the guard reads the body instead.
    let a = call(
        &s,
        "publish",
        &[("mcp-param-path", "/notes/a")],
        json!({"path": "/shared/a", "content": "c"}),
    )
    .await;
    assert_step_up(&a, "docs:shared", "decided on the body");
    let a = call(
        &s,
        "publish",
        &[("mcp-param-path", "/notes/a")],
        json!({"path": "/notes/a", "content": oversized()}),
    )
    .await;
    assert_body_read(&a, "own get_tool");
    assert_eq!(ran(&s), 0);
    s.server.stop().await;
}
