//! Serving without the HTTP layer: the caller of a stdio server, verified once at start-up,
//! and the wrapper that hands it (with the policy) to every request.

use super::{AuthError, Guard};
use crate::principal::Principal;
use crate::rmcp::InProcess;

/// Why a stdio server has no caller and must not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StdioError {
    /// The environment variable is not set (or empty).
    #[error("no access token: set `{0}` to a bearer token for this server")]
    Missing(String),
    /// The environment variable is not valid Unicode.
    #[error("the access token in `{0}` is not valid Unicode")]
    NotUnicode(String),
    /// The token was refused (the message never contains the token).
    #[error("the access token in `{var}` was refused: {source}")]
    Refused {
        /// The environment variable.
        var: String,
        /// Why.
        source: AuthError,
    },
}

impl Guard {
    /// The caller of a server run over stdio: the bearer token in the environment variable
    /// `var`, verified as the HTTP layer verifies one (issuer, signature, audience = this
    /// guard's resource, lifetime, the server's [`PrincipalCheck`](crate::PrincipalCheck)).
    /// Call it at start-up and refuse to start on an error; hand the principal to
    /// [`Guard::in_process`].
    ///
    /// ```no_run
    /// # async fn run(guard: mcp_guard::Guard) -> Result<(), Box<dyn std::error::Error>> {
    /// let caller = guard.stdio_principal_from_env("MCP_GUARD_TOKEN").await?;
    /// eprintln!("serving {} over stdio", caller.subject());
    /// # Ok(()) }
    /// ```
    pub async fn stdio_principal_from_env(&self, var: &str) -> Result<Principal, StdioError> {
        let token = match std::env::var(var) {
            Ok(t) if !t.trim().is_empty() => t,
            Ok(_) | Err(std::env::VarError::NotPresent) => {
                return Err(StdioError::Missing(var.to_owned()));
            }
            Err(std::env::VarError::NotUnicode(_)) => {
                return Err(StdioError::NotUnicode(var.to_owned()));
            }
        };
        self.authenticate(token.trim())
            .await
            .map_err(|source| StdioError::Refused {
                var: var.to_owned(),
                source,
            })
    }

    /// `service` with this guard's policy, and `principal` as the caller, in every request:
    /// what the guard layer gives an HTTP request, for stdio (or any transport without the
    /// layer). The `#[protected]` checks, the filtered `tools/list` and
    /// [`crate::rmcp::authorize`] then decide as they do over HTTP. Without a principal (or
    /// once its token has expired) protected operations are refused with JSON-RPC error
    /// -32001, as for an HTTP caller without a token.
    ///
    /// ```no_run
    /// # mcp_guard::scopes! { pub Scopes { #[baseline] TICKETS_READ = "tickets:read" } }
    /// use rmcp::{ServerHandler, ServiceExt as _, tool, tool_handler, tool_router,
    ///     handler::server::router::tool::ToolRouter};
    ///
    /// #[derive(Clone, mcp_guard::ProtectedResource)]
    /// #[protected_resource(scopes = Scopes)]
    /// struct Tickets { tool_router: ToolRouter<Self> }
    ///
    /// #[mcp_guard::guarded]
    /// #[tool_router]
    /// impl Tickets {
    ///     /// Lists the open tickets.
    ///     #[mcp_guard::protected(scopes = TICKETS_READ)]
    ///     #[tool]
    ///     async fn list_tickets(&self) -> String { "none".into() }
    /// }
    ///
    /// #[mcp_guard::guarded]
    /// #[tool_handler(router = self.tool_router, name = "tickets", version = "0.1.0")]
    /// impl ServerHandler for Tickets {}
    ///
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let guard = mcp_guard::Guard::builder()
    ///     .server::<Tickets>()
    ///     .resource("https://tickets.example.com/mcp")
    ///     .issuer(mcp_guard::Issuer::discover("https://auth.example.com"))
    ///     .build()?;
    /// let caller = guard.stdio_principal_from_env("MCP_GUARD_TOKEN").await?;
    /// let server = Tickets { tool_router: Tickets::tool_router() };
    /// let running = guard
    ///     .in_process(server, Some(caller))
    ///     .serve((tokio::io::stdin(), tokio::io::stdout()))
    ///     .await?;
    /// running.waiting().await?;
    /// # Ok(()) }
    /// ```
    pub fn in_process<S>(&self, service: S, principal: Option<Principal>) -> InProcess<S> {
        InProcess::new(service, self.0.enforcement.clone(), principal)
    }
}
