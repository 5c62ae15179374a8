//! rmcp integration: the [`Principal`] as a tool and prompt parameter, the in-process guard
//! that `#[protected]` puts in front of a tool or prompt, the security schemes advertised in
//! `_meta`, and per-caller `tools/list` filtering.

use std::sync::Arc;

pub(crate) mod declared;
mod in_process;
mod sessions;

pub use in_process::InProcess;
pub use sessions::GuardedSessionManager;

use rmcp::handler::server::common::{AsRequestContext, FromContextPart};
use rmcp::handler::server::prompt::PromptContext;
use rmcp::handler::server::tool::ToolCallContext;
use rmcp::model::{CacheScope, ListToolsResult, ProtocolVersion, ResultType, Tool};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer};
use serde_json::{Map, Value};

use crate::declared::DeclaredTools;
use crate::policy::{Decision, Policy, Target, Visibility};
use crate::principal::Principal;

use crate::audit::Enforcement;
use crate::declared::SECURITY_SCHEMES_META_KEY;

pub use crate::refusal::{FORBIDDEN, UNAUTHENTICATED};

/// The principal the guard verified for this request, if any.
///
/// Over Streamable HTTP, rmcp puts the request's `http::request::Parts` into the context's
/// extensions, and the guard layer put the principal into those parts. Without HTTP (stdio,
/// in-process), the [`InProcess`] wrapper puts it into the context's extensions; a request
/// that came over HTTP never reads those.
pub fn principal(ctx: &RequestContext<RoleServer>) -> Option<&Principal> {
    guard_extension(ctx)
}

/// The policy the guard enforces, as the layer (or [`InProcess`]) left it for the
/// in-process checks.
pub fn policy(ctx: &RequestContext<RoleServer>) -> Option<&Arc<Policy>> {
    guard_extension::<Arc<Enforcement>>(ctx).map(|e| &e.policy)
}

/// What the guard left for the in-process checks: in the HTTP request's parts when the
/// request came over HTTP, in the context's extensions otherwise.
fn guard_extension<T: Send + Sync + 'static>(ctx: &RequestContext<RoleServer>) -> Option<&T> {
    match ctx.extensions.get::<http::request::Parts>() {
        Some(parts) => parts.extensions.get::<T>(),
        None => ctx.extensions.get::<T>(),
    }
}

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
            .ok_or_else(crate::refusal::unauthenticated)
    }
}

/// Checks an operation against the policy in the context, as the `#[protected]` guards do.
/// Use it in hand-written handlers (`read_resource`, say). Fails closed: without the guard
/// layer's policy (another transport, no layer) everything but public operations is refused.
pub fn authorize(
    ctx: &RequestContext<RoleServer>,
    target: Target<'_>,
    args: Option<&Map<String, Value>>,
) -> Result<(), ErrorData> {
    let Some(policy) = policy(ctx) else {
        return into_result(ctx, Decision::Unauthenticated, target);
    };
    let caller = principal(ctx);
    into_result(ctx, policy.decide(caller, target, args), target)
}

/// Checks a `resources/read` (or a resource about to be listed): a URI that no declared
/// resource template matches is answered as not found, whatever the token holds, and a
/// declared one is decided as [`authorize`] decides it. Listing with the same check keeps
/// `resources/list` to what a `resources/read` would serve.
pub fn authorize_resource(ctx: &RequestContext<RoleServer>, uri: &str) -> Result<(), ErrorData> {
    let target = Target::Resource(uri);
    let Some(policy) = policy(ctx) else {
        return into_result(ctx, Decision::Unauthenticated, target);
    };
    let caller = principal(ctx);
    if !policy.declares_resource(uri) {
        return into_result(ctx, Decision::Conceal, target);
    }
    into_result(ctx, policy.decide(caller, target, None), target)
}

/// The declared resource templates this caller may read from, for
/// `resources/templates/list`: listed by the same rule as `resources/read` decides reads.
/// Without the guard layer's policy: none.
pub fn readable_resource_templates(ctx: &RequestContext<RoleServer>) -> Vec<String> {
    let Some(policy) = policy(ctx) else {
        return Vec::new();
    };
    let caller = principal(ctx);
    policy
        .resource_templates()
        .filter(|t| policy.may_read_template(caller, t.as_str()))
        .map(|t| t.as_str().to_owned())
        .collect()
}

/// The in-process answer to a decision: its refusal's JSON-RPC error, audited as the layer
/// audits its own (to the server's audit sink too, which the layer left in the request).
fn into_result(
    ctx: &RequestContext<RoleServer>,
    decision: Decision,
    target: Target<'_>,
) -> Result<(), ErrorData> {
    match decision.refusal() {
        None => Ok(()),
        Some(refusal) => {
            let sink = guard_extension::<Arc<Enforcement>>(ctx).and_then(|e| e.sink.as_deref());
            refusal.audit(sink, principal(ctx), Some(target.name()));
            Err(refusal.to_error_data(target))
        }
    }
}

/// The in-process guard `#[protected]` adds as a tool's first parameter: it decides the call
/// with the layer's policy, the verified caller and the raw arguments, before the arguments
/// are parsed. Not meant to be named by users.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub struct ToolCheck;

impl<S> FromContextPart<ToolCallContext<'_, S>> for ToolCheck {
    fn from_context_part(ctx: &mut ToolCallContext<'_, S>) -> Result<Self, ErrorData> {
        let target = Target::Tool(&ctx.name);
        let caller = principal(&ctx.request_context);
        let decision = match policy(&ctx.request_context) {
            Some(policy) => policy.decide(caller, target, ctx.arguments.as_ref()),
            None => Decision::Unauthenticated,
        };
        into_result(&ctx.request_context, decision, target).map(|()| ToolCheck)
    }
}

/// The in-process guard `#[protected]` adds as a prompt's first parameter.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub struct PromptCheck;

impl<S> FromContextPart<PromptContext<'_, S>> for PromptCheck {
    fn from_context_part(ctx: &mut PromptContext<'_, S>) -> Result<Self, ErrorData> {
        let target = Target::Prompt(&ctx.name);
        let caller = principal(&ctx.context);
        let decision = match policy(&ctx.context) {
            Some(policy) => policy.decide(caller, target, ctx.arguments.as_ref()),
            None => Decision::Unauthenticated,
        };
        into_result(&ctx.context, decision, target).map(|()| PromptCheck)
    }
}

/// Advertised security schemes as the guard enforces them: scopes in the identity provider's
/// namespace, and `noauth` only where a token is not needed, i.e. in the anonymous access
/// posture; in the sign-in posture a `#[public]` operation needs a token and no scope.
fn advertise(policy: &Policy, schemes: &mut [Value]) {
    for scheme in schemes {
        crate::declared::scheme_in_posture(scheme, policy.allows_anonymous());
        if let Some(Value::Array(scopes)) = scheme.get_mut("scopes") {
            for s in scopes {
                if let Value::String(name) = s {
                    *name = policy.advertised_scope(name);
                }
            }
        }
    }
}

/// `tools/list` for this caller: tools the policy hides from them are left out, and for
/// 2026-07-28 peers the result is marked `cacheScope: "private"` whenever it depends on the
/// caller.
///
/// Without the guard layer's policy only tools whose declaration does not hide them are
/// listed (calling them is refused all the same). What `#[guarded]` generates calls it.
#[doc(hidden)]
pub fn list_tools<S: DeclaredTools>(
    tools: Vec<Tool>,
    ctx: &RequestContext<RoleServer>,
) -> ListToolsResult {
    let policy = policy(ctx);
    let caller = principal(ctx);
    let tools: Vec<Tool> = match policy {
        Some(p) => tools
            .into_iter()
            .filter(|t| {
                p.decide_ignoring_arguments(caller, Target::Tool(&t.name)) != Decision::Conceal
            })
            .map(|mut t| {
                if let Some(Value::Array(schemes)) = t
                    .meta
                    .as_mut()
                    .and_then(|m| m.get_mut(SECURITY_SCHEMES_META_KEY))
                {
                    advertise(p, schemes);
                }
                t
            })
            .collect(),
        None => {
            let hidden: Vec<_> = S::TOOLS
                .iter()
                .filter(|d| {
                    d.requirement
                        .is_some_and(|r| !r.public && r.visibility == Some(Visibility::Hidden))
                })
                .map(|d| (d.attr)().name)
                .collect();
            tools
                .into_iter()
                .filter(|t| !hidden.contains(&t.name))
                .collect()
        }
    };
    let modern = ctx
        .protocol_version()
        .is_some_and(|v| v >= ProtocolVersion::V_2026_07_28);
    let private = policy.is_none_or(|p| p.lists_depend_on_caller());
    ListToolsResult {
        result_type: Some(ResultType::COMPLETE),
        tools,
        meta: None,
        next_cursor: None,
        ttl_ms: modern.then_some(0),
        cache_scope: modern.then_some(if private {
            CacheScope::Private
        } else {
            CacheScope::Public
        }),
    }
}
