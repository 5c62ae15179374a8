//! One `tracing` event per authorization decision, on target `mcp_guard::audit`. The token is
//! never part of an event; its `jti` is.

use crate::principal::Principal;
use crate::scope::ScopeSet;

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

/// Records a refused request (what `Refusal::audit` writes). `detail` is a fixed
/// description, never a token.
pub(crate) fn refused(
    reason: &str,
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
        target,
        required = required.map(tracing::field::display),
        held = principal.map(|p| tracing::field::display(p.scopes())),
    );
}
