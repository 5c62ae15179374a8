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
//! use std::sync::Arc;
//! use mcp_guard::{Guard, Issuer, Policy, Principal, Requirement};
//! use rmcp::{ServerHandler, tool, tool_handler, tool_router,
//!     handler::server::router::tool::ToolRouter,
//!     transport::streamable_http_server::{StreamableHttpService, StreamableHttpServerConfig,
//!         session::local::LocalSessionManager}};
//!
//! #[derive(Clone)]
//! struct Files { tool_router: ToolRouter<Self> }
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
//! let mcp = StreamableHttpService::new(
//!     || Ok(Files { tool_router: Files::tool_router() }),
//!     Arc::new(LocalSessionManager::default()),
//!     StreamableHttpServerConfig::default(),
//! );
//! let app = guard.router(mcp);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, app).await?;
//! # Ok(()) }
//! ```

pub mod audit;
pub mod bearer;
pub mod challenge;
pub mod classify;
mod guard;
pub mod jwks;
pub mod jwt;
pub mod layer;
pub mod metadata;
pub mod policy;
pub mod principal;
pub mod rmcp;
pub mod scope;
mod server;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

pub use guard::{AuthError, ConfigError, Guard, GuardBuilder, Issuer};
pub use jwt::TypPolicy;
pub use layer::GuardLayer;
pub use mcp_guard_macros::{ProtectedResource, guarded, protected, public, scopes};
pub use policy::Visibility;
pub use policy::{Decision, Policy, Requirement};
pub use principal::Principal;
pub use principal::TokenKind;
pub use scope::{Scope, ScopeHierarchy, ScopeSet};
pub use server::{GuardedServer, ProtectedResource, ResourceDescriptor, manifest, policy_builder};

/// The README's examples, compiled as doctests.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
