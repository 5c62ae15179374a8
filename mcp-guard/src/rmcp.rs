//! rmcp integration: the [`Principal`] as a tool and prompt parameter, and access to it from
//! any handler context.

use rmcp::ErrorData;
use rmcp::RoleServer;
use rmcp::handler::server::common::{AsRequestContext, FromContextPart};
use rmcp::service::RequestContext;

use crate::principal::Principal;

/// The principal the guard layer verified for this request, if any.
///
/// Over Streamable HTTP, rmcp puts the request's `http::request::Parts` into the context's
/// extensions; the layer put the principal into those parts. Over stdio there is none.
pub fn principal(ctx: &RequestContext<RoleServer>) -> Option<&Principal> {
    ctx.extensions
        .get::<http::request::Parts>()?
        .extensions
        .get::<Principal>()
}

/// The JSON-RPC error code used when a call has no verified principal.
pub const UNAUTHENTICATED: i32 = -32001;

/// A tool or prompt that takes a `Principal` parameter runs only for a verified caller: with no
/// principal (no guard layer, another transport) the call is refused with a JSON-RPC error
/// before its arguments are parsed.
///
/// ```no_run
/// use mcp_guard::Principal;
/// use rmcp::{tool, tool_router, handler::server::router::tool::ToolRouter};
///
/// #[derive(Clone)]
/// struct Server { tool_router: ToolRouter<Self> }
///
/// #[tool_router]
/// impl Server {
///     /// Who is calling?
///     #[tool]
///     async fn whoami(&self, principal: Principal) -> String {
///         principal.subject().to_owned()
///     }
/// }
/// ```
impl<C: AsRequestContext> FromContextPart<C> for Principal {
    fn from_context_part(context: &mut C) -> Result<Self, ErrorData> {
        principal(context.as_request_context())
            .cloned()
            .ok_or_else(|| {
                ErrorData::new(
                    rmcp::model::ErrorCode(UNAUTHENTICATED),
                    "unauthenticated: this operation needs a verified caller",
                    None,
                )
            })
    }
}
