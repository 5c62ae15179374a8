//! One event per authorization decision: a `tracing` event on target `mcp_guard::audit`, and
//! the same decision handed to the server's [`AuditSink`], if it set one
//! ([`GuardBuilder::audit_sink`](crate::GuardBuilder::audit_sink)). The token is never part
//! of an event; its `jti` is. A delegated call (RFC 8693 `act`) names its actors too: the
//! field `actors` holds their subjects, current actor first, as a JSON array.

use crate::principal::Principal;
use crate::scope::ScopeSet;

/// One authorization decision of the guard layer (or of a [`crate::Guard::require`] route).
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct AuditEvent<'a> {
    /// Whether the request went on to the server.
    pub allowed: bool,
    /// For a refusal, its reason code, as in the `tracing` event: `missing_token`,
    /// `invalid_request`, `invalid_token`, `keys_unavailable`, `insufficient_scope`,
    /// `forbidden`, `concealed`, `invalid_arguments`, `origin_not_allowed`,
    /// `session_not_bound_to_subject`, `unreadable_body`.
    pub reason: Option<&'a str>,
    /// For a refusal, a fixed description (never a token).
    pub detail: Option<&'a str>,
    /// The verified caller, when the token verified (its actor chain is
    /// [`Principal::actors`]).
    pub principal: Option<&'a Principal>,
    /// The JSON-RPC method, when known.
    pub method: Option<&'a str>,
    /// The tool, prompt or resource concerned, when known.
    pub target: Option<&'a str>,
    /// For an `insufficient_scope` refusal, the scopes the operation requires.
    pub required: Option<&'a ScopeSet>,
}

/// Receives every decision, beside the `tracing` event: for an audit store, metrics, or a
/// security pipeline. Called on the request's task: keep it quick and never block (hand the
/// event to a channel for slow work).
pub trait AuditSink: Send + Sync + 'static {
    /// One decision.
    fn record(&self, event: &AuditEvent<'_>);
}

impl<F> AuditSink for F
where
    F: Fn(&AuditEvent<'_>) + Send + Sync + 'static,
{
    fn record(&self, event: &AuditEvent<'_>) {
        self(event)
    }
}

/// What the guard leaves in every request it lets through, for the in-process checks: the
/// policy it enforces and the server's audit sink. One extension, shared by all requests.
pub(crate) struct Enforcement {
    pub(crate) policy: std::sync::Arc<crate::policy::Policy>,
    pub(crate) sink: Option<std::sync::Arc<dyn AuditSink>>,
}

/// The actor subjects of a principal's `act` chain, current actor first, as a JSON array of
/// strings (so that no subject can forge a boundary).
struct ActorChain<'a>(&'a Principal);

impl std::fmt::Display for ActorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[")?;
        for (i, actor) in self.0.actors().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            let quoted = serde_json::to_string(actor.subject()).map_err(|_| std::fmt::Error)?;
            f.write_str(&quoted)?;
        }
        f.write_str("]")
    }
}

/// The `actors` field of an event: `None` (no field) without an actor.
fn actors(principal: Option<&Principal>) -> Option<tracing::field::DisplayValue<ActorChain<'_>>> {
    principal
        .filter(|p| p.has_actor())
        .map(|p| tracing::field::display(ActorChain(p)))
}

/// Records an allowed request (`principal`: `None` for an anonymous call of a public
/// operation).
pub(crate) fn allowed(
    sink: Option<&dyn AuditSink>,
    principal: Option<&Principal>,
    method: Option<&str>,
    target: Option<&str>,
) {
    match principal {
        Some(principal) => tracing::debug!(
            target: "mcp_guard::audit",
            decision = "allowed",
            sub = principal.subject(),
            client_id = principal.client_id(),
            jti = principal.token_id(),
            actors = actors(Some(principal)),
            method,
            target,
            held = %principal.scopes(),
        ),
        None => tracing::debug!(
            target: "mcp_guard::audit",
            decision = "allowed",
            sub = "anonymous",
            method
        ),
    }
    crate::metrics::allowed();
    if let Some(sink) = sink {
        sink.record(&AuditEvent {
            allowed: true,
            reason: None,
            detail: None,
            principal,
            method,
            target,
            required: None,
        });
    }
}

/// Records a refused request (what `Refusal::audit` writes). `detail` is a fixed
/// description, never a token.
pub(crate) fn refused(
    sink: Option<&dyn AuditSink>,
    reason: &'static str,
    detail: &str,
    principal: Option<&Principal>,
    target: Option<&str>,
    required: Option<&ScopeSet>,
) {
    tracing::info!(
        target: "mcp_guard::audit",
        decision = "refused",
        reason,
        detail,
        sub = principal.map(Principal::subject),
        client_id = principal.and_then(Principal::client_id),
        jti = principal.and_then(Principal::token_id),
        actors = actors(principal),
        target,
        required = required.map(tracing::field::display),
        held = principal.map(|p| tracing::field::display(p.scopes())),
    );
    crate::metrics::refused(reason);
    if let Some(sink) = sink {
        sink.record(&AuditEvent {
            allowed: false,
            reason: Some(reason),
            detail: Some(detail),
            principal,
            method: None,
            target,
            required,
        });
    }
}
