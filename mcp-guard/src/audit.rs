//! One `tracing` event per authorization decision, on target `mcp_guard::audit`. The token is
//! never part of an event; its `jti` is.

use crate::principal::Principal;
use crate::scope::ScopeSet;

/// Why a request was refused, as written in the audit event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// No credentials.
    MissingToken,
    /// Malformed credentials.
    MalformedRequest,
    /// The token failed verification.
    InvalidToken,
    /// The key source could not provide keys.
    KeysUnavailable,
    /// The token lacks scopes.
    InsufficientScope,
    /// The `Origin` header is not allowed.
    Origin,
    /// The session belongs to another subject.
    SessionMismatch,
    /// The body could not be classified.
    UnreadableBody,
    /// The token lacks a role or is of the wrong kind.
    Forbidden,
    /// A hidden operation the caller may not use, answered as unknown.
    Concealed,
    /// The call's arguments do not deserialize as the operation's argument type.
    InvalidArguments,
}

impl Refusal {
    fn as_str(self) -> &'static str {
        match self {
            Refusal::MissingToken => "missing_token",
            Refusal::MalformedRequest => "invalid_request",
            Refusal::InvalidToken => "invalid_token",
            Refusal::KeysUnavailable => "keys_unavailable",
            Refusal::InsufficientScope => "insufficient_scope",
            Refusal::Origin => "origin_not_allowed",
            Refusal::SessionMismatch => "session_not_bound_to_subject",
            Refusal::UnreadableBody => "unreadable_body",
            Refusal::Forbidden => "forbidden",
            Refusal::Concealed => "concealed",
            Refusal::InvalidArguments => "invalid_arguments",
        }
    }
}

/// Records an allowed request.
pub(crate) fn allowed(principal: &Principal, method: Option<&str>, target: Option<&str>) {
    tracing::info!(
        target: "mcp_guard::audit",
        decision = "allowed",
        sub = principal.subject(),
        client_id = principal.client_id(),
        jti = principal.token_id(),
        method,
        target,
        held = %principal.scopes(),
    );
}

/// Records an allowed request without a token (servers with public operations).
pub(crate) fn anonymous(method: Option<&str>) {
    tracing::info!(target: "mcp_guard::audit", decision = "allowed", sub = "anonymous", method);
}

/// Records a refused request. `detail` is a fixed description, never a token.
pub(crate) fn refused(
    reason: Refusal,
    detail: &str,
    principal: Option<&Principal>,
    target: Option<&str>,
    required: Option<&ScopeSet>,
) {
    tracing::info!(
        target: "mcp_guard::audit",
        decision = "refused",
        reason = reason.as_str(),
        detail,
        sub = principal.map(Principal::subject),
        client_id = principal.and_then(Principal::client_id),
        jti = principal.and_then(Principal::token_id),
        target,
        required = required.map(tracing::field::display),
        held = principal.map(|p| tracing::field::display(p.scopes())),
    );
}
