//! The tower layer in front of rmcp's `StreamableHttpService`: Origin check, bearer
//! extraction, authentication, session binding, classification, the 403 decision, audit.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::header::{CONTENT_TYPE, ORIGIN, WWW_AUTHENTICATE};
use http::{HeaderValue, Method, Request, StatusCode};
use http_body_util::BodyExt as _;

use crate::audit::{self, Refusal};
use crate::bearer::{self, BearerError};
use crate::challenge::{Challenge, ErrorCode};
use crate::classify;
use crate::guard::{AuthError, Guard};
use crate::policy::{ArgumentsError, Decision, Target};
use crate::principal::Principal;

const SESSION_HEADER: &str = "mcp-session-id";

/// Wraps an MCP HTTP service (rmcp's `StreamableHttpService`) with the guard.
#[derive(Clone, Debug)]
pub struct GuardLayer {
    guard: Guard,
}

impl GuardLayer {
    /// A layer for this guard.
    pub fn new(guard: Guard) -> Self {
        Self { guard }
    }
}

impl<S> tower_layer::Layer<S> for GuardLayer {
    type Service = GuardService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GuardService {
            guard: self.guard.clone(),
            inner,
        }
    }
}

/// The service [`GuardLayer`] produces.
#[derive(Clone, Debug)]
pub struct GuardService<S> {
    guard: Guard,
    inner: S,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl<S, B, ResBody> tower_service::Service<Request<B>> for GuardService<S>
where
    S: tower_service::Service<
            Request<Body>,
            Response = http::Response<ResBody>,
            Error = Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let guard = self.guard.clone();
        Box::pin(async move { Ok(handle(guard, inner, req).await) })
    }
}

async fn handle<S, B, ResBody>(guard: Guard, mut inner: S, req: Request<B>) -> Response
where
    S: tower_service::Service<
            Request<Body>,
            Response = http::Response<ResBody>,
            Error = Infallible,
        >,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    let (mut parts, body) = req.into_parts();

    if let Some(origin) = parts.headers.get(ORIGIN)
        && !guard.origin_allowed(origin.as_bytes())
    {
        audit::refused(Refusal::Origin, "origin not allowed", None, None, None);
        return json_rpc_error(
            StatusCode::FORBIDDEN,
            None,
            -32600,
            "Forbidden: Origin is not allowed",
        );
    }

    // RFC 6750 §2.2 form-body tokens are not accepted; one there is a malformed request
    // (with a header token too: more than one method).
    let body = if is_form(&parts.headers) {
        let bytes = match http_body_util::Limited::new(body, guard.0.max_body_bytes)
            .collect()
            .await
        {
            Ok(c) => c.to_bytes(),
            Err(_) => {
                return json_rpc_error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    None,
                    -32600,
                    "Request body too large",
                );
            }
        };
        if url::form_urlencoded::parse(&bytes).any(|(k, _)| k == "access_token") {
            let description =
                "access tokens are accepted only in the Authorization header, not in the body";
            audit::refused(Refusal::MalformedRequest, description, None, None, None);
            return challenge_response(
                StatusCode::BAD_REQUEST,
                Challenge::new(guard.metadata_url())
                    .error(ErrorCode::InvalidRequest)
                    .description(description),
                description,
            );
        }
        Body::from(bytes)
    } else {
        Body::new(body)
    };

    let principal = match authenticate(&guard, &parts).await {
        Ok(p) => p,
        Err(resp) => return resp,
    };

    let header_validated = classify::headers_are_validated(&parts.headers);
    let session = parts
        .headers
        .get(SESSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    // Whatever the version header says: rmcp routes any request that names a session into
    // that session, so the binding is checked whenever one is named.
    if let Some(sid) = &session
        && !guard.0.sessions.check(sid, principal.as_ref())
    {
        audit::refused(
            Refusal::SessionMismatch,
            "session not bound to this caller",
            principal.as_ref(),
            None,
            None,
        );
        // A session id is not authentication: without a token, a subject's session answers
        // with the sign-in challenge; an unknown or terminated session is "not found", as the
        // transport requires, and so is another subject's session.
        return if principal.is_none() && guard.0.sessions.is_bound(sid) {
            unauthorized(&guard)
        } else {
            json_rpc_error(StatusCode::NOT_FOUND, None, -32600, "Session not found")
        };
    }

    let (operations, body) = if parts.method != Method::POST {
        (Vec::new(), body)
    } else {
        let from_headers = header_validated
            .then(|| classify::classify_headers(&parts.headers))
            .flatten()
            .filter(|op| !needs_body(&guard, op));
        match from_headers {
            Some(op) => (vec![op], body),
            None => match read_and_classify(&guard, body, principal.as_ref()).await {
                Ok((ops, bytes)) => (ops, Body::from(bytes)),
                Err(resp) => return resp,
            },
        }
    };

    for op in &operations {
        if let Some(resp) = decide(&guard, principal.as_ref(), op, header_validated) {
            return resp;
        }
    }

    let opens_session = session.is_none()
        && operations
            .iter()
            .any(|o| o.method.as_deref() == Some("initialize"));
    let closes_session = parts.method == Method::DELETE;
    match &principal {
        Some(p) => {
            let first = operations.first();
            audit::allowed(
                p,
                first.and_then(|o| o.method.as_deref()),
                first.and_then(|o| o.target.as_deref()),
            );
            parts.extensions.insert(p.clone());
        }
        None => audit::anonymous(operations.first().and_then(|o| o.method.as_deref())),
    }
    parts.extensions.insert(guard.0.policy.clone());

    let Ok(resp) = inner.call(Request::from_parts(parts, body)).await;
    if opens_session
        && let Some(sid) = resp
            .headers()
            .get(SESSION_HEADER)
            .and_then(|v| v.to_str().ok())
    {
        guard.0.sessions.bind(sid, principal.as_ref());
    }
    if closes_session
        && resp.status().is_success()
        && let Some(sid) = &session
    {
        guard.0.sessions.unbind(sid);
    }
    resp.map(Body::new)
}

fn is_form(headers: &http::HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        })
}

/// Steps 1–3: the bearer token, verified. `Ok(None)` is an anonymous request to a server with
/// public operations; the policy decides it later.
async fn authenticate(
    guard: &Guard,
    parts: &http::request::Parts,
) -> Result<Option<Principal>, Response> {
    let token = match bearer::extract(&parts.headers, &parts.uri) {
        Ok(t) => t,
        Err(BearerError::Missing) if guard.policy().has_public_operations() => return Ok(None),
        Err(BearerError::Missing) => {
            audit::refused(
                Refusal::MissingToken,
                "no bearer credentials",
                None,
                None,
                None,
            );
            return Err(unauthorized(guard));
        }
        Err(e) => {
            let description = e.to_string();
            audit::refused(Refusal::MalformedRequest, &description, None, None, None);
            return Err(challenge_response(
                StatusCode::BAD_REQUEST,
                Challenge::new(guard.metadata_url())
                    .error(ErrorCode::InvalidRequest)
                    .description(&description),
                &description,
            ));
        }
    };
    match guard.authenticate(token).await {
        Ok(p) => Ok(Some(p)),
        Err(AuthError::Invalid(e)) => {
            let description = e.to_string();
            audit::refused(Refusal::InvalidToken, &description, None, None, None);
            Err(challenge_response(
                StatusCode::UNAUTHORIZED,
                Challenge::new(guard.metadata_url())
                    .error(ErrorCode::InvalidToken)
                    .description(&description),
                &description,
            ))
        }
        Err(e @ (AuthError::Unavailable(_) | AuthError::IntrospectionUnavailable(_))) => {
            audit::refused(Refusal::KeysUnavailable, &e.to_string(), None, None, None);
            let mut resp = json_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "the authorization server cannot be reached to check the token; try again later",
            );
            let retry = guard.retry_after().as_secs().max(1);
            if let Ok(v) = HeaderValue::from_str(&retry.to_string()) {
                resp.headers_mut().insert(http::header::RETRY_AFTER, v);
            }
            Err(resp)
        }
    }
}

fn unauthorized(guard: &Guard) -> Response {
    challenge_response(
        StatusCode::UNAUTHORIZED,
        Challenge::new(guard.metadata_url()).scope(&guard.advertise(guard.policy().baseline())),
        "authorization required",
    )
}

/// Whether deciding this header-classified operation needs the body: its requirement depends
/// on the arguments, or a refusal must be answered with the request's `id`.
fn needs_body(guard: &Guard, op: &classify::Operation) -> bool {
    op.policy_target().is_some_and(|t| {
        let policy = guard.policy();
        let req = policy.requirement(t);
        !req.when.is_empty() || policy.is_hidden(req) || policy.is_unknown(t)
    })
}

async fn read_and_classify<B>(
    guard: &Guard,
    body: B,
    principal: Option<&Principal>,
) -> Result<(Vec<classify::Operation>, Bytes), Response>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let bytes = match http_body_util::Limited::new(body, guard.0.max_body_bytes)
        .collect()
        .await
    {
        Ok(c) => c.to_bytes(),
        Err(e) => {
            let too_large = e
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some();
            audit::refused(
                Refusal::UnreadableBody,
                "body unreadable or too large",
                principal,
                None,
                None,
            );
            return Err(if too_large {
                json_rpc_error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    None,
                    -32600,
                    "Request body too large",
                )
            } else {
                json_rpc_error(
                    StatusCode::BAD_REQUEST,
                    None,
                    -32700,
                    "Request body could not be read",
                )
            });
        }
    };
    match classify::classify_body(&bytes) {
        Ok(ops) => Ok((ops, bytes)),
        Err(e @ classify::ClassifyError::ParamsNotObject) => {
            let message = format!("Invalid params: {e}");
            audit::refused(Refusal::UnreadableBody, &message, principal, None, None);
            Err(json_rpc_error(
                StatusCode::BAD_REQUEST,
                None,
                -32602,
                &message,
            ))
        }
        Err(_) => {
            audit::refused(
                Refusal::UnreadableBody,
                "not a JSON-RPC message",
                principal,
                None,
                None,
            );
            Err(json_rpc_error(
                StatusCode::BAD_REQUEST,
                None,
                -32700,
                "Parse error: the body is not a valid JSON-RPC message",
            ))
        }
    }
}

/// Step 5: the policy's decision for one message; `Some` is the refusal to send.
fn decide(
    guard: &Guard,
    principal: Option<&Principal>,
    op: &classify::Operation,
    modern: bool,
) -> Option<Response> {
    let Some(target) = op.policy_target() else {
        // Methods without a target (initialize, lists, notifications) need only what the
        // authentication step already established.
        return None;
    };
    let name = op.target.as_deref().unwrap_or_default();
    let decision = if guard.policy().requirement(target).when.is_empty() {
        guard.policy().decide(principal, target, None)
    } else {
        match op.arguments.as_deref().map(|raw| raw.get()) {
            None | Some("null") => guard.policy().decide(principal, target, None),
            Some(raw) => match serde_json::from_str(raw.trim()) {
                Ok(args) => guard.policy().decide(principal, target, Some(&args)),
                Err(_) => match guard.policy().decide_ignoring_arguments(principal, target) {
                    Decision::Allow => Decision::InvalidArguments(ArgumentsError(
                        "`arguments` must be a JSON object".to_owned(),
                    )),
                    other => other,
                },
            },
        }
    };
    match decision {
        Decision::Allow => None,
        Decision::InvalidArguments(e) => {
            let message = e.to_string();
            audit::refused(
                Refusal::InvalidArguments,
                &message,
                principal,
                Some(name),
                None,
            );
            // rmcp answers a tool's undeserializable arguments as a tool error the model can
            // correct, and a prompt's as invalid params; the layer answers as it would.
            Some(match target {
                Target::Tool(_) => {
                    let mut result = serde_json::json!({
                        "content": [{ "type": "text", "text": message }],
                        "isError": true,
                    });
                    if modern {
                        result["resultType"] = "complete".into();
                    }
                    let body = serde_json::json!({
                        "jsonrpc": "2.0",
                        "id": op.id.as_deref(),
                        "result": result,
                    });
                    (
                        StatusCode::OK,
                        [(CONTENT_TYPE, "application/json")],
                        body.to_string(),
                    )
                        .into_response()
                }
                _ => json_rpc_error(StatusCode::OK, op.id.as_deref(), -32602, &message),
            })
        }
        Decision::Unauthenticated => {
            audit::refused(
                Refusal::MissingToken,
                "no bearer credentials",
                None,
                Some(name),
                None,
            );
            Some(unauthorized(guard))
        }
        Decision::InsufficientScope {
            required,
            challenge,
            ..
        } => {
            audit::refused(
                Refusal::InsufficientScope,
                "token lacks required scope",
                principal,
                Some(name),
                Some(&required),
            );
            let description = format!("`{}` requires scope `{required}`", printable(name));
            Some(challenge_response(
                StatusCode::FORBIDDEN,
                Challenge::new(guard.metadata_url())
                    .error(ErrorCode::InsufficientScope)
                    .scope(&guard.advertise(&challenge))
                    .description(&description),
                &description,
            ))
        }
        Decision::Forbidden { reason } => {
            audit::refused(Refusal::Forbidden, &reason, principal, Some(name), None);
            let description = format!("`{}` {reason}", printable(name));
            Some(challenge_response(
                StatusCode::FORBIDDEN,
                Challenge::new(guard.metadata_url())
                    .error(ErrorCode::InsufficientScope)
                    .description(&description),
                &description,
            ))
        }
        Decision::Conceal => {
            audit::refused(
                Refusal::Concealed,
                "hidden operation",
                principal,
                Some(name),
                None,
            );
            let (code, message) = match target {
                Target::Tool(_) => (-32602, "tool not found".to_owned()),
                Target::Prompt(p) => (-32602, format!("prompt '{}' not found", printable(p))),
                // rmcp reports a missing resource as -32602 to 2026-07-28 peers, -32002 to older ones.
                Target::Resource(_) => (
                    if modern { -32602 } else { -32002 },
                    "resource not found".to_owned(),
                ),
            };
            Some(json_rpc_error(
                StatusCode::OK,
                op.id.as_deref(),
                code,
                &message,
            ))
        }
    }
}

/// A tool name as it may appear in a description: visible ASCII only, bounded.
fn printable(s: &str) -> String {
    s.chars()
        .take(64)
        .map(|c| if c.is_ascii_graphic() { c } else { '?' })
        .collect()
}

fn challenge_response(status: StatusCode, challenge: Challenge<'_>, description: &str) -> Response {
    let code = match status {
        StatusCode::BAD_REQUEST => "invalid_request",
        StatusCode::FORBIDDEN => "insufficient_scope",
        _ if description == "authorization required" => "unauthorized",
        _ => "invalid_token",
    };
    let mut resp = json_error(status, code, description);
    resp.headers_mut()
        .insert(WWW_AUTHENTICATE, challenge.to_header_value());
    resp
}

fn json_error(status: StatusCode, error: &str, description: &str) -> Response {
    let body = serde_json::json!({ "error": error, "error_description": description });
    (
        status,
        [(CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// A JSON-RPC error response; without a request `id` the MCP transport allows `null`.
fn json_rpc_error(
    status: StatusCode,
    id: Option<&serde_json::value::RawValue>,
    code: i32,
    message: &str,
) -> Response {
    let body = serde_json::json!({
        "jsonrpc": "2.0",
        "id": id,
        "error": { "code": code, "message": message },
    });
    (
        status,
        [(CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

impl Guard {
    /// The layer that protects an MCP service.
    pub fn layer(&self) -> GuardLayer {
        GuardLayer::new(self.clone())
    }

    /// A router serving `mcp` behind the guard at the resource URL's path, plus the metadata
    /// routes ([`Guard::metadata_router`]).
    pub fn router<S, ResBody>(&self, mcp: S) -> axum::Router
    where
        S: tower_service::Service<
                Request<Body>,
                Response = http::Response<ResBody>,
                Error = Infallible,
            > + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
        ResBody: http_body::Body<Data = Bytes> + Send + 'static,
        ResBody::Error: Into<BoxError>,
    {
        let path = match self.mcp_path() {
            "" => "/",
            p => p,
        };
        let service = tower_layer::Layer::layer(&self.layer(), mcp);
        self.metadata_router().route_service(path, service)
    }
}
