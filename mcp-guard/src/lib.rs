//! mcp-guard turns an [rmcp](https://docs.rs/rmcp) MCP server into an OAuth 2.1 protected
//! resource.
//!
//! A [`Guard`] knows the server's public URL (its resource identifier and token audience),
//! the trusted token issuers, and the [`Policy`] (which scopes each tool needs). Mounted in
//! front of rmcp's `StreamableHttpService`, it
//!
//! - publishes the RFC 9728 protected resource metadata at the path-suffixed well-known URL
//!   (and at the root);
//! - answers a request without a token with 401 `WWW-Authenticate: Bearer
//!   resource_metadata="…", scope="…"`, a malformed one with 400 `invalid_request`, an invalid
//!   token with 401 `invalid_token`, and a `tools/call` whose scopes the token lacks with 403
//!   `insufficient_scope` listing the scopes needed, before rmcp runs anything;
//! - verifies JWT access tokens (RFC 9068, RFC 8725) with keys found by discovery and kept
//!   fresh without blocking requests; answers 503 when no key is available;
//! - hands the verified [`Principal`] to tools as a parameter.
//!
//! ```no_run
//! use mcp_guard::{Guard, Issuer, Policy, Principal, Requirement};
//! use rmcp::{ServerHandler, tool, tool_handler, tool_router,
//!     handler::server::router::tool::ToolRouter,
//!     transport::streamable_http_server::{StreamableHttpService, StreamableHttpServerConfig}};
//!
//! #[derive(Clone)]
//! struct Files { tool_router: std::sync::Arc<ToolRouter<Self>> }
//!
//! #[tool_router]
//! impl Files {
//!     /// Who is calling?
//!     #[tool]
//!     async fn whoami(&self, principal: Principal) -> String {
//!         principal.subject().to_owned()
//!     }
//! }
//!
//! #[tool_handler(router = self.tool_router, name = "files", version = "0.1.0")]
//! impl ServerHandler for Files {}
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let guard = Guard::builder()
//!     .resource("https://mcp.example.com/mcp")
//!     .issuer(Issuer::discover("https://auth.example.com"))
//!     .policy(Policy::builder().scope("files:read").baseline(["files:read"]).build()?)
//!     .build()?;
//! // Built once; the factory's clone (per session, or per request when stateless) is cheap.
//! let files = Files { tool_router: std::sync::Arc::new(Files::tool_router()) };
//! let mcp = StreamableHttpService::new(
//!     move || Ok(files.clone()),
//!     guard.session_manager(),
//!     StreamableHttpServerConfig::default(),
//! );
//! let app = guard.router(mcp);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! // Read deadlines, a connection limit, and a drain on Ctrl-C: see `serve`.
//! let shutdown = async { let _ = tokio::signal::ctrl_c().await; };
//! mcp_guard::serve::serve(listener, app, mcp_guard::serve::ServeConfig::default(), shutdown).await?;
//! # Ok(()) }
//! ```
//!
//! # Install
//!
//! ```toml
//! [dependencies]
//! mcp-guard = "0.1.0"
//! rmcp = { version = "3.11", features = ["transport-streamable-http-server"] }
//! tokio = { version = "1", features = ["macros", "rt-multi-thread", "net", "signal"] }
//! serde = { version = "1", features = ["derive"] }  # tool arguments
//! schemars = "1"                                      # their JSON Schema
//! axum = "0.8"                                        # routes beside the MCP endpoint
//! ```
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `dev` | off | [`dev`], the embedded development authorization server (quickstart, tests); never for production |
//! | `metrics` | off | counters, gauges and histograms of decisions, authentications, key fetches and introspection through the [`metrics`](https://docs.rs/metrics) facade, for any exporter (the examples serve Prometheus' format at `--metrics-listen`); see `docs/operations.md` |
//! | `testing` | off | `testing`, a kit for testing protected servers as chosen callers (implies `dev`); for dev-dependencies |
//!
//! # The map
//!
//! The source folders follow a request through the guard:
//!
//! | folder | its job | public face |
//! |---|---|---|
//! | `edge/` | the HTTP edge: the `Origin` check and the bearer token, what a request asks for (classification), the tower layer that runs the steps, refusals in one table with their `WWW-Authenticate` challenges, audit events, the metadata document, legacy sessions bound to their subject within [`SessionLimits`], and the scope check for plain routes | [`GuardLayer`], [`challenge`], [`metadata`], [`audit`], [`Guard::require`] |
//! | `verify/` | token verification: the JWT verifier (a token read once into an unverified view, then keys, rules, claims), key sources kept fresh, introspection, identity-provider profiles, the verified-token cache | [`jwks`], [`introspection`], [`profile`], [`TokenError`] |
//! | `decide/` | the decision: scopes and their hierarchy, the policy (requirements, argument rules, URI templates), the verified caller, path normalisation | [`scope`], [`policy`], [`Principal`], [`path`] |
//! | `rmcp/` | the rmcp integration: the in-process checks `#[protected]` adds, the `Principal` extractor, per-caller lists, what `#[guarded]` collects, rmcp's session manager bounded by the guard | [`rmcp`], [`DeclaredOperations`], [`GuardedSessionManager`] |
//! | `guard/` | the configuration that ties them together: [`GuardBuilder`] in named steps, issuers, errors, the server's [`PrincipalCheck`] | [`Guard`] |
//! | `serve.rs` | serving over TCP before the edge: header and body read deadlines, a connection limit, a draining shutdown | [`serve`] |
//! | `dev/` | the development authorization server (feature `dev`) | [`dev`] |
//! | `testing.rs` | a kit for testing protected servers (feature `testing`) | [`testing`] |
//!
//! Arrows point down the request: the verifier knows nothing of policies or transports, the
//! decision nothing of HTTP; a test of the crate (`house_tests`) fails on any import cycle.
//!
//! # Names
//!
//! - [`Guard`]: the configured guard, built once, cloned cheaply.
//! - [`GuardLayer`]: its tower layer in front of rmcp's HTTP service ([`Guard::layer`],
//!   [`Guard::router`]).
//! - `#[guarded]`: the attribute on rmcp's router and handler impls that collects the
//!   declarations into [`DeclaredOperations`], the trait [`GuardBuilder::server`] reads.
//! - `#[protected]` / `#[public]`: the declaration of one operation; it adds an in-process
//!   check (`ToolCheck` / `PromptCheck`, not named by users) that decides the call again with
//!   the layer's policy.
//! - [`Decision`]: what the policy decides; [`TokenError`]: why a token was refused,
//!   whichever verifier refused it; [`AuthError`]: why authentication failed (a bad token,
//!   or an unreachable key source, introspection endpoint or check).
//!
//! # Extension points
//!
//! - [`GuardBuilder::check`]: a [`PrincipalCheck`] run on every verified caller (cached tokens
//!   included), for revocation lists or disabled accounts: refused → 401 `invalid_token`,
//!   unavailable → 503.
//! - [`GuardBuilder::audit_sink`]: an [`audit::AuditSink`] that receives every decision
//!   beside the `mcp_guard::audit` `tracing` event.
//! - [`Guard::require`]: the same verification, challenges and audit for a plain axum route,
//!   for one [`Requirement`].

// docs.rs (nightly) labels feature-gated items, such as `dev`, with their feature.
#![cfg_attr(docsrs, feature(doc_cfg))]

// The modules keep their public paths at the crate root; the folders are private.
mod decide;
#[cfg(feature = "dev")]
pub mod dev;
mod edge;
mod guard;
mod metrics;
pub mod rmcp;
pub mod serve;
#[cfg(feature = "testing")]
pub mod testing;
mod verify;

pub(crate) use decide::principal;
pub use decide::{path, policy, scope};
pub use edge::{audit, challenge, metadata};
pub(crate) use edge::{bearer, classify, layer, refusal};
pub(crate) use rmcp::declared;
pub use verify::static_tokens::StaticTokens;
pub use verify::{dpop, introspection, jwks, profile, static_tokens};
pub(crate) use verify::{jwt, token_cache};

#[cfg(test)]
mod house_tests;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

#[doc(hidden)]
pub mod __internals;

pub use edge::require::{RequireLayer, RequireService};
pub use guard::{
    AuthError, CheckError, CheckFuture, ConfigError, Guard, GuardBuilder, Issuer, KeysUnavailable,
    PrincipalCheck, StdioError,
};
pub use layer::{GuardLayer, GuardService};
/// Declares the server's scope catalogue, once: each scope's constant name, string, doc text,
/// the scopes it implies, and `#[baseline]` for the scopes asked for in 401 challenges.
///
/// It declares a type (here `Scopes`) with a typed constant per scope
/// (`Scopes::FILES_READ: mcp_guard::Scope`) and an implementation of
/// [`scope::ScopeCatalogue`], from which the policy takes `scopes_supported`, the hierarchy
/// and the baseline. It also declares the callback through which [`macro@protected`] checks
/// every scope at compile time, so `scopes!` must come before the tools in the module (or be
/// imported with `use path::to::module::*;`).
///
/// Compile errors: a scope string outside RFC 6749's grammar, a string or name declared twice,
/// an implied name that is not declared (with a suggestion), a cycle of implications.
///
/// ```
/// mcp_guard::scopes! {
///     /// The file store's scopes.
///     pub Scopes {
///         /// Read and list files.
///         #[baseline]
///         FILES_READ = "files:read",
///         /// Create and replace files.
///         FILES_WRITE = "files:write",
///         /// Administer the store; implies reading and writing.
///         FILES_ADMIN = "files:admin" => [FILES_READ, FILES_WRITE],
///     }
/// }
/// use mcp_guard::scope::ScopeCatalogue;
/// assert_eq!(Scopes::FILES_ADMIN.as_str(), "files:admin");
/// assert_eq!(Scopes::ENTRIES[2].implies, ["files:read", "files:write"]);
/// ```
pub use mcp_guard_macros::scopes;
pub use verify::TokenError;
pub use verify::jwt::TypPolicy;

/// Protects an rmcp tool or prompt. Written **above** `#[tool]` / `#[prompt]`.
///
/// | argument | meaning |
/// |---|---|
/// | *(none)* | any authenticated caller |
/// | `scopes = "a b"`, `scopes = [A, "b"]` | all of these scopes (strings or catalogue names) |
/// | `any_of = ["a", B, "c d"]` | at least one alternative (each a scope or a space-separated set) |
/// | `roles = "r"`, `roles = ["r", "s"]` | all of these roles (`roles` claim) |
/// | `token = "user"` / `token = "app"` | a delegated token / an app-only token |
/// | `actor = "required"` / `actor = "forbidden"` | a token that names an actor (RFC 8693 `act`: an agent or service calls on behalf of the subject) / one that names none |
/// | `actor = ["agent-a", "agent-b"]` | a token whose current actor (the outermost `act`) has one of these `sub`s; prior actors are not considered (RFC 8693 §4.1) |
/// | `when(cond, scopes = ...)` | extra scopes when the call's arguments meet `cond`; repeatable (see below) |
/// | `hidden` / `listed` | hide the operation from callers who may not use it (absent from `tools/list`, calls answered as unknown), or list it (calls answered with the 403 challenge); default: the server's |
///
/// A `when` condition is evaluated on the arguments **as the tool deserializes them**: the
/// macro writes a test over the method's `Parameters<T>` type, and the guard runs it on the
/// `T` that serde produces from the call's arguments, with `T`'s own renames, aliases,
/// `flatten`, defaults and enums. The field names in `cond` are the Rust fields of `T`,
/// type-checked by rustc. Arguments that do not deserialize as `T` are refused as invalid
/// params (JSON-RPC -32602) and never reach the tool. The conditions:
/// - `field`: `true`, `Some(..)` of a truthy value, non-empty text, a non-zero number, a
///   non-empty collection;
/// - `field == "text"`, `field == 3`, `field == true`: exact equality (no case folding, no
///   trimming), also through an `Option`; `field == Mode::Overwrite` or any other expression
///   of the field's type: Rust's `==`;
/// - `path.under("/dir")`: the path normalised by [`path::normalize`] is `/dir` or below it;
///   paths that cannot be normalised (or read as UTF-8) count as under it;
/// - `field.starts_with("prefix")`: the text as deserialized, byte for byte, no
///   normalisation: never use it for paths;
/// - fields may be nested (`options.force`) through structs.
///
/// The layer decides a rule on the request body, read up to
/// [`GuardBuilder::max_body_bytes`], except on 2026-07-28 requests when the rule reads a
/// field the tool mirrors into a SEP-2243 `Mcp-Param-*` header
/// (`#[schemars(extend("x-mcp-header" = "Path"))]` on the field): then the header decides,
/// the body unread, because rmcp refuses a header that disagrees with the body (HTTP 400,
/// JSON-RPC -32020) before any tool runs. Only a top-level field that keeps its Rust name on
/// the wire, of type string, integer or boolean, tested by `under`, `starts_with`,
/// truthiness or `==` a literal, and only when the value the header gives is provably the one
/// `T` reads; anything else (a renamed, aliased or converted field, a missing or repeated
/// header, older revisions, a server with its own `get_tool`) reads the body. The in-process
/// check always decides on the arguments themselves.
///
/// What it generates, from that one declaration:
/// - a constant requirement beside the method, which `#[guarded]` (above `#[tool_router]`)
///   collects into the server's table; the guard's policy is built from that table
///   ([`GuardBuilder::server`]), so the layer's HTTP 403 step-up, the list filtering and the
///   in-process check all run the same requirement and the same argument tests;
/// - the SEP-1488 advertisement `securitySchemes: [{"type":"oauth2","scopes":[...]}]` in the
///   operation's `_meta`;
/// - a guard as the method's first extractor: it refuses the call when there is no verified
///   caller (no guard layer, another transport), when scopes are missing, when the caller
///   lacks a role, the token kind or the actor, or when the arguments do not deserialize.
///
/// Every scope is checked at compile time against the [`scopes!`] catalogue: a misspelled
/// scope is an error on the literal, listing the declared scopes and the closest one.
/// Arguments are checked too (unknown or repeated ones, `hidden` with `listed`, an unknown
/// `actor` mode, an empty or repeated actor subject, a `when`
/// field the parameters do not have, a method that is not `async` or not an rmcp tool).
///
/// Tools without `#[protected]` require the baseline scopes of the catalogue (in the router
/// `#[guarded]` marks, checked in-process too); tools that need no scope are marked
/// [`macro@public`].
///
/// ```
/// use mcp_guard::{Principal, protected};
/// use rmcp::{tool, tool_router, handler::server::{router::tool::ToolRouter, wrapper::Parameters}};
///
/// mcp_guard::scopes! {
///     pub Scopes {
///         #[baseline]
///         FILES_READ = "files:read",
///         FILES_WRITE = "files:write",
///         FILES_SHARED = "files:shared",
///     }
/// }
///
/// #[derive(serde::Deserialize, schemars::JsonSchema)]
/// pub struct WriteArgs { path: String, content: String }
///
/// #[derive(Clone)]
/// pub struct Files { tool_router: ToolRouter<Self> }
///
/// #[mcp_guard::guarded]
/// #[tool_router]
/// impl Files {
///     /// Writes a file; under `/shared` it needs `files:shared` too.
///     #[protected(scopes = FILES_WRITE, when(path.under("/shared"), scopes = FILES_SHARED))]
///     #[tool]
///     async fn write_file(&self, caller: Principal, Parameters(args): Parameters<WriteArgs>) -> Result<String, String> {
///         // Normalise exactly as the rule does, so both name the same file.
///         let path = mcp_guard::path::normalize(&args.path).map_err(|e| e.to_string())?;
///         Ok(format!("{} wrote {path}", caller.subject()))
///     }
/// }
/// # fn main() {}
/// ```
pub use mcp_guard_macros::protected;

/// Marks an rmcp tool or prompt as needing no scope (advertised as
/// `securitySchemes: [{"type":"noauth"}]`). Written above `#[tool]` / `#[prompt]`. In the
/// sign-in posture (the default) it still needs a token, as every request does; in the
/// anonymous access posture ([`GuardBuilder::anonymous`]) it needs none, and the policy
/// refuses what needs one with the 401 challenge.
pub use mcp_guard_macros::public;

/// Written in two places, always above rmcp's attribute:
/// - above `#[tool_router]` (and `#[prompt_router]`): collects every operation of the router
///   with its [`macro@protected`] or [`macro@public`] declaration into a constant table, and
///   guards the operations that declare neither in-process (they require the policy's
///   default, the baseline scopes), so that no operation of the router runs unchecked, with
///   or without the HTTP layer;
/// - above `#[tool_handler]` on the `impl ServerHandler` block: adds a `tools/list` filtered
///   per caller (hidden tools appear only to callers who may use them; `cacheScope:
///   "private"` for 2026-07-28 peers when lists depend on the caller) and implements
///   [`DeclaredOperations`], through which [`GuardBuilder::server`] builds the policy from the
///   table. The server *type* is enough: `.server::<Demo>()`.
///
/// One guarded tool router (and one guarded prompt router) per server type.
///
/// ```
/// # mcp_guard::scopes! { pub Scopes { #[baseline] READ = "read" } }
/// use rmcp::{ServerHandler, tool, tool_handler, tool_router, handler::server::router::tool::ToolRouter};
///
/// #[derive(Clone, mcp_guard::ProtectedResource)]
/// #[protected_resource(scopes = Scopes, name = "Demo")]
/// pub struct Demo { tool_router: ToolRouter<Self> }
///
/// #[mcp_guard::guarded]
/// #[tool_router]
/// impl Demo {
///     /// Ping.
///     #[mcp_guard::protected(scopes = READ)]
///     #[tool]
///     async fn ping(&self) -> String { "pong".into() }
/// }
///
/// #[mcp_guard::guarded]
/// #[tool_handler(router = self.tool_router, name = "demo", version = "0.1.0")]
/// impl ServerHandler for Demo {}
///
/// let guard = mcp_guard::Guard::builder()
///     .server::<Demo>()
///     .resource("https://demo.example.com/mcp")
///     .issuer(mcp_guard::Issuer::with_jwks_uri("https://as.example.com", "https://as.example.com/jwks"))
///     .build()
///     .unwrap();
/// assert_eq!(guard.policy().tool_requirement("ping").scopes.to_string(), "read");
/// ```
pub use mcp_guard_macros::guarded;

pub use challenge::ToolCallChallenge;
pub use declared::{
    DeclaredOperations, ProtectedResource, ResourceDescriptor, manifest, policy_builder,
};
pub use edge::session::{SessionCounts, SessionLimits};
/// Derives [`ProtectedResource`]: the server's scope catalogue and the RFC 9728 metadata known
/// at compile time, in `#[protected_resource(...)]`:
///
/// | argument | meaning |
/// |---|---|
/// | `scopes = Type` | the catalogue declared with [`scopes!`] (required) |
/// | `resource = "https://…/mcp"` | the public MCP endpoint URL |
/// | `authorization_servers = ["https://…"]` | trusted issuers (discovered when no issuer is configured on the builder) |
/// | `name`, `documentation`, `policy_uri`, `tos_uri` | `resource_name`, `resource_documentation`, `resource_policy_uri`, `resource_tos_uri` |
/// | `hidden` | hide operations from callers who may not use them, unless an operation says `listed` |
/// | `anonymous` | the anonymous access posture: discovery and `#[public]` operations work without a token ([`GuardBuilder::anonymous`]; default: every request needs a token) |
///
/// URL literals are checked at compile time: absolute, `https` (or `http` on a loopback
/// host), no fragment. Values known only at run time override them through
/// [`GuardBuilder`].
pub use mcp_guard_macros::ProtectedResource;
pub use policy::Visibility;
pub use policy::{Decision, Policy, Requirement};
pub use principal::TokenKind;
pub use principal::{Actor, Principal};
pub use rmcp::GuardedSessionManager;
pub use scope::{Scope, ScopeHierarchy, ScopeSet};

/// The README's examples, compiled as doctests (with the `dev` feature, as in the workspace).
#[doc = include_str!("../../README.md")]
#[cfg(all(doctest, feature = "dev"))]
pub struct ReadmeDoctests;
