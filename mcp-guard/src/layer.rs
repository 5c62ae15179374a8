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
use crate::policy::Decision;

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
            -32600,
            "Forbidden: Origin is not allowed",
        );
    }

    let principal = {
        let token = match bearer::extract(&parts.headers, &parts.uri) {
            Ok(t) => t,
            Err(BearerError::Missing) => {
                audit::refused(
                    Refusal::MissingToken,
                    "no bearer credentials",
                    None,
                    None,
                    None,
                );
                return challenge_response(
                    StatusCode::UNAUTHORIZED,
                    Challenge::new(guard.metadata_url()).scope(guard.policy().baseline()),
                    "authorization required",
                );
            }
            Err(e) => {
                let description = e.to_string();
                audit::refused(Refusal::MalformedRequest, &description, None, None, None);
                return challenge_response(
                    StatusCode::BAD_REQUEST,
                    Challenge::new(guard.metadata_url())
                        .error(ErrorCode::InvalidRequest)
                        .description(&description),
                    &description,
                );
            }
        };
        match guard.authenticate(token).await {
            Ok(p) => p,
            Err(AuthError::Invalid(e)) => {
                let description = e.to_string();
                audit::refused(Refusal::InvalidToken, &description, None, None, None);
                return challenge_response(
                    StatusCode::UNAUTHORIZED,
                    Challenge::new(guard.metadata_url())
                        .error(ErrorCode::InvalidToken)
                        .description(&description),
                    &description,
                );
            }
            Err(AuthError::Unavailable(e)) => {
                audit::refused(Refusal::KeysUnavailable, &e.to_string(), None, None, None);
                let mut resp = json_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "temporarily_unavailable",
                    "the token issuer's keys are unavailable; try again later",
                );
                let retry = guard.retry_after().as_secs().max(1);
                if let Ok(v) = HeaderValue::from_str(&retry.to_string()) {
                    resp.headers_mut().insert(http::header::RETRY_AFTER, v);
                }
                return resp;
            }
        }
    };

    let header_validated = classify::headers_are_validated(&parts.headers);
    let session = parts
        .headers
        .get(SESSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if let Some(sid) = &session
        && !header_validated
        && !guard.0.sessions.check(sid, &principal)
    {
        audit::refused(
            Refusal::SessionMismatch,
            "session not bound to this subject",
            Some(&principal),
            None,
            None,
        );
        return json_rpc_error(StatusCode::NOT_FOUND, -32600, "Session not found");
    }

    let (operations, body) = if parts.method != Method::POST {
        (Vec::new(), Body::new(body))
    } else if header_validated {
        (
            classify::classify_headers(&parts.headers)
                .into_iter()
                .collect(),
            Body::new(body),
        )
    } else {
        let limit = guard.0.max_body_bytes;
        let bytes = match http_body_util::Limited::new(body, limit).collect().await {
            Ok(c) => c.to_bytes(),
            Err(e) => {
                let too_large = e
                    .downcast_ref::<http_body_util::LengthLimitError>()
                    .is_some();
                audit::refused(
                    Refusal::UnreadableBody,
                    "body unreadable or too large",
                    Some(&principal),
                    None,
                    None,
                );
                return if too_large {
                    json_rpc_error(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        -32600,
                        "Request body too large",
                    )
                } else {
                    json_rpc_error(
                        StatusCode::BAD_REQUEST,
                        -32700,
                        "Request body could not be read",
                    )
                };
            }
        };
        match classify::classify_body(&bytes) {
            Ok(ops) => (ops, Body::from(bytes)),
            Err(_) => {
                audit::refused(
                    Refusal::UnreadableBody,
                    "not a JSON-RPC message",
                    Some(&principal),
                    None,
                    None,
                );
                return json_rpc_error(
                    StatusCode::BAD_REQUEST,
                    -32700,
                    "Parse error: the body is not a valid JSON-RPC message",
                );
            }
        }
    };

    for op in &operations {
        if let Some(tool) = op.tool()
            && let Decision::InsufficientScope {
                required,
                challenge,
                ..
            } = guard.policy().decide_tool(&principal, tool)
        {
            audit::refused(
                Refusal::InsufficientScope,
                "token lacks required scope",
                Some(&principal),
                Some(tool),
                Some(&required),
            );
            let description = format!("the tool `{}` requires scope `{required}`", printable(tool));
            return challenge_response(
                StatusCode::FORBIDDEN,
                Challenge::new(guard.metadata_url())
                    .error(ErrorCode::InsufficientScope)
                    .scope(&challenge)
                    .description(&description),
                &description,
            );
        }
    }

    let opens_session = session.is_none()
        && operations
            .iter()
            .any(|o| o.method.as_deref() == Some("initialize"));
    let closes_session = parts.method == Method::DELETE;
    for op in operations.iter().take(1) {
        audit::allowed(&principal, op.method.as_deref(), op.target.as_deref());
    }
    if operations.is_empty() {
        audit::allowed(&principal, None, None);
    }
    parts.extensions.insert(principal.clone());

    let Ok(resp) = inner.call(Request::from_parts(parts, body)).await;
    if opens_session
        && let Some(sid) = resp
            .headers()
            .get(SESSION_HEADER)
            .and_then(|v| v.to_str().ok())
    {
        guard.0.sessions.bind(sid, &principal);
    }
    if closes_session
        && resp.status().is_success()
        && let Some(sid) = &session
    {
        guard.0.sessions.unbind(sid);
    }
    resp.map(Body::new)
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

/// A JSON-RPC error response without `id`, as the MCP transport allows for refusals.
fn json_rpc_error(status: StatusCode, code: i32, message: &str) -> Response {
    let body = serde_json::json!({
        "jsonrpc": "2.0",
        "id": null,
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
