//! Why the guard refuses a request, in one shape. Every refusal has exactly one HTTP answer
//! (status, `WWW-Authenticate` challenge, body), one in-process answer (the JSON-RPC error a
//! `#[protected]` guard returns when there is no HTTP layer in front) and one audit event;
//! all three are rendered here from the same value, so they cannot drift apart.
//!
//! | refusal | HTTP | in process |
//! |---|---|---|
//! | [`Refusal::NoToken`] | 401 `Bearer resource_metadata, scope=<baseline>`, no `error` (RFC 6750 §3.1) | -32001 |
//! | [`Refusal::MalformedCredentials`] | 400 `Bearer error="invalid_request"` | -32001 |
//! | [`Refusal::InvalidToken`] | 401 `Bearer error="invalid_token"` | -32001 |
//! | [`Refusal::InvalidDpopProof`] | 401 `DPoP error="invalid_dpop_proof"` | -32001 |
//! | [`Refusal::UseDpopNonce`] | 401 `DPoP error="use_dpop_nonce"` and a fresh `DPoP-Nonce` | -32001 |
//! | [`Refusal::ProofsSaturated`] | 503 with `Retry-After`: the DPoP replay cache is full | -32001 |
//! | [`Refusal::IssuerUnavailable`] | 503 with `Retry-After`, no challenge (the token may be fine) | -32001 |
//! | [`Refusal::InsufficientScope`] | 403 `Bearer error="insufficient_scope", scope=<needed + relevant held>` | -32003 with `required` and `missing` |
//! | [`Refusal::Forbidden`] | 403 without a challenge: a role, token kind or actor cannot be obtained by asking for scopes, and RFC 6750 reserves `insufficient_scope` for scopes that would help | -32003 |
//! | [`Refusal::Concealed`] | 200, the JSON-RPC "not found" error rmcp gives unknown operations | the same error |
//! | [`Refusal::InvalidArguments`] | 200, the answer rmcp gives arguments it cannot deserialize (a tool error result for tools, -32602 for prompts) | -32602 (rmcp turns it into the same tool error) |
//! | [`Refusal::BadOrigin`] | 403, JSON-RPC -32600 | — |
//! | [`Refusal::UnknownSession`] | 404, JSON-RPC -32600 | — |
//! | [`Refusal::SessionsFull`] | 503 with `Retry-After`: the session limits are reached and only signed-in sessions are held | — |
//! | [`Refusal::MalformedBody`] | 400 (413 when too large), JSON-RPC -32700 / -32600 / -32602 | — |
//!
//! With DPoP ([`crate::dpop`]), every challenge above is written in the scheme the request
//! used; a request that used none or `Bearer` gets the `Bearer` challenge and beside it
//! `DPoP algs="…"` (only the `DPoP` one, with the `error`, when DPoP is required), and a
//! 401 carries a fresh `DPoP-Nonce` when nonces are required.
//!
//! A `tools/call` refused with [`Refusal::NoToken`] or [`Refusal::InsufficientScope`] may be
//! answered instead with the tool-result challenge
//! ([`ToolCallChallenge`](crate::ToolCallChallenge)): `200`, a result with `isError: true`,
//! `_meta["mcp/www_authenticate"]` holding the challenge above, and the same
//! `WWW-Authenticate` header.

use axum::response::{IntoResponse, Response};
use http::header::{CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderValue, StatusCode};
use rmcp::ErrorData;
use rmcp::model::ErrorCode as RpcCode;
use serde_json::value::RawValue;
use serde_json::{Value, json};

use crate::challenge::{Challenge, ErrorCode};
use crate::policy::{ArgumentsError, Decision, Target};
use crate::principal::Principal;
use crate::scope::ScopeSet;

/// The JSON-RPC error code used when a call has no verified caller.
pub const UNAUTHENTICATED: i32 = -32001;

/// The JSON-RPC error code used when the caller lacks scopes, roles or the token kind.
pub const FORBIDDEN: i32 = -32003;

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) enum Refusal {
    /// No token where one is needed.
    NoToken,
    /// The credentials are malformed (RFC 6750 `invalid_request`); the description says how.
    MalformedCredentials(String),
    /// The token failed verification; the description says why (never the token).
    InvalidToken(String),
    /// The DPoP proof is invalid; the description says why.
    InvalidDpopProof(String),
    /// The DPoP proof lacks a valid server-issued nonce.
    UseDpopNonce(String),
    /// The DPoP replay cache is full of proofs still in their window: the guard fails
    /// closed until room is made.
    ProofsSaturated,
    /// The issuer's keys or introspection endpoint cannot be reached and nothing usable is
    /// cached: the guard fails closed.
    IssuerUnavailable(String),
    /// The token lacks scopes.
    InsufficientScope {
        /// What the operation requires (argument-dependent scopes included).
        required: ScopeSet,
        /// What the token lacks of it.
        missing: ScopeSet,
        /// The `scope` of the challenge: the required scopes plus the relevant held ones.
        challenge: ScopeSet,
    },
    /// The token lacks a role or is of the wrong kind; no scope can fix it.
    Forbidden(String),
    /// A hidden operation the caller may not use, or an unknown one: answered as not found.
    Concealed,
    /// The call's arguments do not deserialize as the operation's argument type.
    InvalidArguments(ArgumentsError),
    /// The `Origin` header is neither the resource's origin nor an allowed one.
    BadOrigin,
    /// The named session is unknown, ended, or another subject's.
    UnknownSession,
    /// No session can be opened: the limits are reached and every session held is a
    /// signed-in one, which a caller without a token never displaces.
    SessionsFull,
    /// The body cannot be read as the MCP request it claims to be.
    MalformedBody(BodyError),
}

/// What is wrong with a request body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) enum BodyError {
    /// Larger than the configured limit.
    TooLarge,
    /// The body could not be read.
    Unreadable,
    /// Not a JSON-RPC message.
    NotJsonRpc,
    /// `params` is present but not an object.
    ParamsNotObject,
}

impl Decision {
    /// The refusal this decision is, if any.
    pub(crate) fn refusal(self) -> Option<Refusal> {
        match self {
            Decision::Allow => None,
            Decision::Unauthenticated => Some(Refusal::NoToken),
            Decision::InsufficientScope {
                required,
                missing,
                challenge,
            } => Some(Refusal::InsufficientScope {
                required,
                missing,
                challenge,
            }),
            Decision::Forbidden { reason } => Some(Refusal::Forbidden(reason)),
            Decision::Conceal => Some(Refusal::Concealed),
            Decision::InvalidArguments(e) => Some(Refusal::InvalidArguments(e)),
        }
    }
}

/// What the HTTP rendering of a refusal needs to know about the request and the guard.
pub(crate) struct HttpContext<'a> {
    /// The protected resource metadata URL.
    pub metadata_url: &'a str,
    /// The baseline scopes, as this resource names them.
    pub baseline: &'a ScopeSet,
    /// Names scopes as the identity provider names them.
    pub advertise: &'a dyn Fn(&ScopeSet) -> ScopeSet,
    /// Seconds a client should wait when the issuer is unavailable.
    pub retry_after: u64,
    /// The JSON-RPC `id` of the refused message, if known.
    pub id: Option<&'a RawValue>,
    /// The refused operation, if known.
    pub target: Option<Target<'a>>,
    /// Whether the peer speaks the 2026-07-28 revision.
    pub modern: bool,
    /// Whether a refused tool call is answered with the tool-result challenge.
    pub tool_result: bool,
    /// The guard's DPoP configuration, when it accepts DPoP.
    pub dpop: Option<DpopContext<'a>>,
}

/// How a refusal's challenges are written when the guard accepts DPoP.
pub(crate) struct DpopContext<'a> {
    /// The accepted proof algorithms, space-separated.
    pub algs: &'a str,
    /// Only DPoP-bound tokens are accepted: no `Bearer` challenge.
    pub required: bool,
    /// The request used the `DPoP` scheme: the `error` goes on the `DPoP` challenge.
    pub used: bool,
    /// A fresh nonce for a 401, when nonces are required.
    pub nonce: Option<String>,
}

impl Refusal {
    /// The reason as written in the audit event.
    pub(crate) fn reason(&self) -> &'static str {
        match self {
            Refusal::NoToken => "missing_token",
            Refusal::MalformedCredentials(_) => "invalid_request",
            Refusal::InvalidToken(_) => "invalid_token",
            Refusal::InvalidDpopProof(_) => "invalid_dpop_proof",
            Refusal::UseDpopNonce(_) => "use_dpop_nonce",
            Refusal::ProofsSaturated => "dpop_replay_cache_full",
            Refusal::IssuerUnavailable(_) => "keys_unavailable",
            Refusal::InsufficientScope { .. } => "insufficient_scope",
            Refusal::Forbidden(_) => "forbidden",
            Refusal::Concealed => "concealed",
            Refusal::InvalidArguments(_) => "invalid_arguments",
            Refusal::BadOrigin => "origin_not_allowed",
            Refusal::UnknownSession => "session_not_bound_to_subject",
            Refusal::SessionsFull => "sessions_full",
            Refusal::MalformedBody(_) => "unreadable_body",
        }
    }

    /// A fixed description, never a token.
    fn detail(&self) -> String {
        match self {
            Refusal::NoToken => "no bearer credentials".to_owned(),
            Refusal::MalformedCredentials(d)
            | Refusal::InvalidToken(d)
            | Refusal::InvalidDpopProof(d)
            | Refusal::UseDpopNonce(d)
            | Refusal::IssuerUnavailable(d)
            | Refusal::Forbidden(d) => d.clone(),
            Refusal::InsufficientScope { .. } => "token lacks required scope".to_owned(),
            Refusal::ProofsSaturated => "the DPoP replay cache is full".to_owned(),
            Refusal::Concealed => "hidden operation".to_owned(),
            Refusal::InvalidArguments(e) => e.to_string(),
            Refusal::BadOrigin => "origin not allowed".to_owned(),
            Refusal::UnknownSession => "session not bound to this caller".to_owned(),
            Refusal::SessionsFull => "the session limits are reached".to_owned(),
            Refusal::MalformedBody(e) => body_message(*e).1.to_owned(),
        }
    }

    /// Writes the audit event of this refusal.
    pub(crate) fn audit(
        &self,
        sink: Option<&dyn crate::audit::AuditSink>,
        principal: Option<&Principal>,
        target: Option<&str>,
    ) {
        let required = match self {
            Refusal::InsufficientScope { required, .. } => Some(required),
            _ => None,
        };
        let detail = self.detail();
        crate::audit::refused(sink, self.reason(), &detail, principal, target, required);
    }

    /// The HTTP answer.
    pub(crate) fn to_response(&self, cx: &HttpContext<'_>) -> Response {
        let http = self.to_http_response(cx);
        match cx.target {
            Some(Target::Tool(_))
                if cx.tool_result
                    && matches!(self, Refusal::NoToken | Refusal::InsufficientScope { .. }) =>
            {
                self.to_tool_result(cx, http)
            }
            _ => http,
        }
    }

    /// The tool-result challenge: the HTTP answer's challenge and description in a `200`
    /// tool error result.
    fn to_tool_result(&self, cx: &HttpContext<'_>, http: Response) -> Response {
        let values: Vec<HeaderValue> = http
            .headers()
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .cloned()
            .collect();
        if values.is_empty() {
            return http;
        }
        let name = cx.target.map_or_else(String::new, |t| printable(t.name()));
        let text = match self {
            Refusal::InsufficientScope { required, .. } => {
                format!("`{name}` requires scope `{required}`; sign in again to grant it")
            }
            _ => format!("`{name}` requires sign-in"),
        };
        let mut result = json!({
            "content": [{ "type": "text", "text": text }],
            "isError": true,
            "_meta": { crate::challenge::TOOL_RESULT_META_KEY:
                values.iter().map(|v| v.to_str().unwrap_or_default()).collect::<Vec<_>>() },
        });
        if cx.modern {
            result["resultType"] = "complete".into();
        }
        let mut resp = json_rpc_result(cx.id, result);
        for v in values {
            resp.headers_mut().append(WWW_AUTHENTICATE, v);
        }
        if let Some(n) = http.headers().get(DPOP_NONCE) {
            resp.headers_mut().insert(DPOP_NONCE, n.clone());
        }
        resp
    }

    fn to_http_response(&self, cx: &HttpContext<'_>) -> Response {
        let name = cx.target.map(|t| printable(t.name()));
        match self {
            Refusal::NoToken => challenge(
                cx,
                StatusCode::UNAUTHORIZED,
                Challenge::new(cx.metadata_url).scope(&(cx.advertise)(cx.baseline)),
                "unauthorized",
                "authorization required",
            ),
            Refusal::MalformedCredentials(d) => challenge(
                cx,
                StatusCode::BAD_REQUEST,
                Challenge::new(cx.metadata_url)
                    .error(ErrorCode::InvalidRequest)
                    .description(d),
                "invalid_request",
                d,
            ),
            Refusal::InvalidToken(d) => challenge(
                cx,
                StatusCode::UNAUTHORIZED,
                Challenge::new(cx.metadata_url)
                    .error(ErrorCode::InvalidToken)
                    .description(d),
                "invalid_token",
                d,
            ),
            Refusal::InvalidDpopProof(d) => challenge(
                cx,
                StatusCode::UNAUTHORIZED,
                Challenge::new(cx.metadata_url)
                    .error(ErrorCode::InvalidDpopProof)
                    .description(d),
                "invalid_dpop_proof",
                d,
            ),
            Refusal::UseDpopNonce(d) => challenge(
                cx,
                StatusCode::UNAUTHORIZED,
                Challenge::new(cx.metadata_url)
                    .error(ErrorCode::UseDpopNonce)
                    .description(d),
                "use_dpop_nonce",
                d,
            ),
            Refusal::ProofsSaturated => {
                let mut resp = json_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "temporarily_unavailable",
                    "the server cannot check more DPoP proofs now; try again later",
                );
                if let Ok(v) = HeaderValue::from_str(&cx.retry_after.max(1).to_string()) {
                    resp.headers_mut().insert(RETRY_AFTER, v);
                }
                resp
            }
            Refusal::IssuerUnavailable(_) => {
                let mut resp = json_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "temporarily_unavailable",
                    "the authorization server cannot be reached to check the token; try again later",
                );
                if let Ok(v) = HeaderValue::from_str(&cx.retry_after.max(1).to_string()) {
                    resp.headers_mut().insert(RETRY_AFTER, v);
                }
                resp
            }
            Refusal::InsufficientScope {
                required,
                challenge: scope,
                ..
            } => {
                let description = match &name {
                    Some(n) => format!("`{n}` requires scope `{required}`"),
                    None => format!("this operation requires scope `{required}`"),
                };
                let scope = (cx.advertise)(scope);
                challenge(
                    cx,
                    StatusCode::FORBIDDEN,
                    Challenge::new(cx.metadata_url)
                        .error(ErrorCode::InsufficientScope)
                        .scope(&scope)
                        .description(&description),
                    "insufficient_scope",
                    &description,
                )
            }
            Refusal::Forbidden(reason) => {
                let description = match &name {
                    Some(n) => format!("`{n}` {reason}"),
                    None => format!("this operation {reason}"),
                };
                json_error(StatusCode::FORBIDDEN, "forbidden", &description)
            }
            Refusal::Concealed => {
                let (code, message) = not_found(cx.target, cx.modern);
                json_rpc(StatusCode::OK, cx.id, error_body(code, &message))
            }
            Refusal::InvalidArguments(e) => match cx.target {
                Some(Target::Tool(_)) => {
                    let mut result = json!({
                        "content": [{ "type": "text", "text": e.to_string() }],
                        "isError": true,
                    });
                    if cx.modern {
                        result["resultType"] = "complete".into();
                    }
                    json_rpc_result(cx.id, result)
                }
                _ => json_rpc(
                    StatusCode::OK,
                    cx.id,
                    error_body(-32602, &prompt_message(e)),
                ),
            },
            Refusal::BadOrigin => json_rpc(
                StatusCode::FORBIDDEN,
                None,
                error_body(-32600, "Forbidden: Origin is not allowed"),
            ),
            Refusal::UnknownSession => json_rpc(
                StatusCode::NOT_FOUND,
                None,
                error_body(-32600, "Session not found"),
            ),
            Refusal::SessionsFull => {
                let mut resp = json_rpc(
                    StatusCode::SERVICE_UNAVAILABLE,
                    cx.id,
                    error_body(
                        -32000,
                        "the server holds as many sessions as it can; try again later",
                    ),
                );
                if let Ok(v) = HeaderValue::from_str(&cx.retry_after.max(1).to_string()) {
                    resp.headers_mut().insert(RETRY_AFTER, v);
                }
                resp
            }
            Refusal::MalformedBody(e) => {
                let (status, message, code) = body_message(*e);
                json_rpc(status, None, error_body(code, message))
            }
        }
    }

    /// The in-process answer: the JSON-RPC error a `#[protected]` guard returns.
    pub(crate) fn to_error_data(&self, target: Target<'_>) -> ErrorData {
        match self {
            Refusal::InsufficientScope {
                required, missing, ..
            } => ErrorData::new(
                RpcCode(FORBIDDEN),
                format!("insufficient_scope: this operation requires scope `{required}`"),
                Some(json!({ "required": required, "missing": missing })),
            ),
            Refusal::Forbidden(reason) => ErrorData::new(
                RpcCode(FORBIDDEN),
                format!("forbidden: this operation {reason}"),
                None,
            ),
            Refusal::Concealed => match target {
                Target::Tool(_) => ErrorData::invalid_params("tool not found", None),
                Target::Prompt(name) => {
                    ErrorData::invalid_params(format!("prompt '{name}' not found"), None)
                }
                Target::Resource(uri) => {
                    ErrorData::resource_not_found(format!("resource not found: {uri}"), None)
                }
            },
            Refusal::InvalidArguments(e) => match target {
                // rmcp turns a tool's into a tool error result by this message's prefix.
                Target::Tool(_) => ErrorData::invalid_params(e.to_string(), None),
                _ => ErrorData::invalid_params(prompt_message(e), None),
            },
            Refusal::NoToken
            | Refusal::MalformedCredentials(_)
            | Refusal::InvalidToken(_)
            | Refusal::InvalidDpopProof(_)
            | Refusal::UseDpopNonce(_)
            | Refusal::ProofsSaturated
            | Refusal::IssuerUnavailable(_) => unauthenticated(),
            Refusal::BadOrigin
            | Refusal::UnknownSession
            | Refusal::SessionsFull
            | Refusal::MalformedBody(_) => ErrorData::invalid_request(self.detail(), None),
        }
    }
}

/// What rmcp says of a prompt's undeserializable arguments.
fn prompt_message(e: &ArgumentsError) -> String {
    format!("Failed to parse parameters: {}", e.0)
}

/// The in-process answer when there is no verified caller.
pub(crate) fn unauthenticated() -> ErrorData {
    ErrorData::new(
        RpcCode(UNAUTHENTICATED),
        "unauthenticated: this operation needs a verified caller",
        None,
    )
}

/// The JSON-RPC code and message rmcp gives an unknown operation.
fn not_found(target: Option<Target<'_>>, modern: bool) -> (i32, String) {
    match target {
        Some(Target::Prompt(p)) => (-32602, format!("prompt '{}' not found", printable(p))),
        // rmcp reports a missing resource as -32602 to 2026-07-28 peers, -32002 to older ones.
        Some(Target::Resource(_)) => (
            if modern { -32602 } else { -32002 },
            "resource not found".to_owned(),
        ),
        Some(Target::Tool(_)) | None => (-32602, "tool not found".to_owned()),
    }
}

fn body_message(e: BodyError) -> (StatusCode, &'static str, i32) {
    match e {
        BodyError::TooLarge => (
            StatusCode::PAYLOAD_TOO_LARGE,
            "Request body too large",
            -32600,
        ),
        BodyError::Unreadable => (
            StatusCode::BAD_REQUEST,
            "Request body could not be read",
            -32700,
        ),
        BodyError::NotJsonRpc => (
            StatusCode::BAD_REQUEST,
            "Parse error: the body is not a valid JSON-RPC message",
            -32700,
        ),
        BodyError::ParamsNotObject => (
            StatusCode::BAD_REQUEST,
            "Invalid params: `params` must be a JSON object",
            -32602,
        ),
    }
}

/// A name as it may appear in a description: visible ASCII only, bounded.
fn printable(s: &str) -> String {
    s.chars()
        .take(64)
        .map(|c| if c.is_ascii_graphic() { c } else { '?' })
        .collect()
}

/// A refusal with its challenges: `c` as is without DPoP. With DPoP, `c` in the `DPoP`
/// scheme alone when the request used it or DPoP is required; otherwise `c` (`Bearer`) and
/// beside it the `DPoP` challenge without the error.
fn challenge(
    cx: &HttpContext<'_>,
    status: StatusCode,
    c: Challenge<'_>,
    error: &str,
    description: &str,
) -> Response {
    let mut resp = json_error(status, error, description);
    let headers = resp.headers_mut();
    let Some(d) = &cx.dpop else {
        headers.insert(WWW_AUTHENTICATE, c.to_header_value());
        return resp;
    };
    if d.used || d.required {
        headers.append(WWW_AUTHENTICATE, c.dpop(d.algs).to_header_value());
    } else {
        headers.append(WWW_AUTHENTICATE, c.to_header_value());
        headers.append(
            WWW_AUTHENTICATE,
            c.without_error().dpop(d.algs).to_header_value(),
        );
    }
    if status == StatusCode::UNAUTHORIZED
        && let Some(nonce) = d
            .nonce
            .as_deref()
            .and_then(|n| HeaderValue::from_str(n).ok())
    {
        headers.insert(DPOP_NONCE, nonce);
    }
    resp
}

/// The header a server's DPoP nonce travels in (RFC 9449 §8.1).
pub(crate) const DPOP_NONCE: &str = "dpop-nonce";

fn json_error(status: StatusCode, error: &str, description: &str) -> Response {
    let body = json!({ "error": error, "error_description": description });
    (
        status,
        [(CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn error_body(code: i32, message: &str) -> Value {
    json!({ "code": code, "message": message })
}

/// A JSON-RPC error response; without a request `id` the MCP transport allows `null`.
fn json_rpc(status: StatusCode, id: Option<&RawValue>, error: Value) -> Response {
    let body = json!({ "jsonrpc": "2.0", "id": id, "error": error });
    (
        status,
        [(CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn json_rpc_result(id: Option<&RawValue>, result: Value) -> Response {
    let body = json!({ "jsonrpc": "2.0", "id": id, "result": result });
    (
        StatusCode::OK,
        [(CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}
