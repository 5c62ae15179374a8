//! The tower layer in front of rmcp's `StreamableHttpService`: Origin check, bearer
//! extraction, authentication, session binding, classification, the 403 decision, audit.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use futures_util::FutureExt as _;
use http::header::ORIGIN;
use http::{Method, Request};
use http_body_util::BodyExt as _;

use crate::audit;
use crate::bearer::{self, BearerError, Scheme};
use crate::classify::{self, Operations};
use crate::edge::session;
use crate::guard::{AuthError, Guard};
use crate::policy::Target;
use crate::principal::Principal;
use crate::refusal::{BodyError, DPOP_NONCE, DpopContext, HttpContext, Refusal};
use crate::scope::ScopeSet;

/// Looked up by its parsed name: a `&str` key is parsed again on every look-up.
static SESSION_HEADER: http::HeaderName = http::HeaderName::from_static("mcp-session-id");

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
            template: Arc::new(inner),
            ready: None,
        }
    }
}

/// The service [`GuardLayer`] produces.
///
/// A router clones its service for every request. This one clones cheaply (reference
/// counts) and makes the copy of the inner service a request needs when it is polled ready,
/// so that the inner service (rmcp's, whose configuration holds strings and a cancellation
/// token) is copied once per request rather than twice.
#[derive(Debug)]
pub struct GuardService<S> {
    guard: Guard,
    /// What each request's copy of the inner service is made from.
    template: Arc<S>,
    /// The copy polled ready, for the next call.
    ready: Option<S>,
}

impl<S> Clone for GuardService<S> {
    fn clone(&self) -> Self {
        Self {
            guard: self.guard.clone(),
            template: self.template.clone(),
            ready: None,
        }
    }
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
        let template = &self.template;
        self.ready
            .get_or_insert_with(|| S::clone(template))
            .poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        // The copy `poll_ready` readied; a caller that skipped `poll_ready` gets a fresh one
        // (and calls the inner service unready, as it would have without the layer).
        let inner = self
            .ready
            .take()
            .unwrap_or_else(|| S::clone(&self.template));
        let guard = self.guard.clone();
        let (parts, body) = req.into_parts();
        Box::pin(handle(guard, inner, parts, body).map(Ok))
    }
}

/// The guard's steps, then the inner service. A function returning an `async move` block
/// rather than an `async fn`: an `async fn` moves its arguments into locals and keeps both
/// (rust-lang/rust#62958), which would make the future, allocated for every request,
/// hundreds of bytes larger. Its size is tested: under 1 KiB, it stays in the allocator's
/// per-thread cache.
#[expect(
    clippy::manual_async_fn,
    reason = "an `async fn` would keep its arguments twice (rust-lang/rust#62958)"
)]
fn handle<S, B, ResBody>(
    guard: Guard,
    mut inner: S,
    mut parts: http::request::Parts,
    body: B,
) -> impl Future<Output = Response> + Send
where
    S: tower_service::Service<
            Request<Body>,
            Response = http::Response<ResBody>,
            Error = Infallible,
        > + Send,
    S::Future: Send,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    async move {
        if let Some(origin) = parts.headers.get(ORIGIN)
            && !guard.origin_allowed(origin.as_bytes())
        {
            return refuse(&guard, Refusal::BadOrigin, None, None);
        }

        // RFC 6750 §2.2 form-body tokens are not accepted; one there is a malformed request
        // (with a header token too: more than one method).
        let body = if is_form(&parts.headers) {
            let bytes = match read_body(&guard, body, None).await {
                Ok(bytes) => bytes,
                Err(resp) => return resp,
            };
            if url::form_urlencoded::parse(&bytes).any(|(k, _)| k == "access_token") {
                let description =
                    "access tokens are accepted only in the Authorization header, not in the body";
                return refuse(
                    &guard,
                    Refusal::MalformedCredentials(description.to_owned()),
                    None,
                    None,
                );
            }
            Body::from(bytes)
        } else {
            Body::new(body)
        };

        let (principal, next_nonce) = match authenticate(&guard, &parts).await {
            Ok(p) => p,
            Err(resp) => return resp,
        };

        let header_validated = classify::headers_are_validated(&parts.headers);
        let session = parts
            .headers
            .get(&SESSION_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        // Whatever the version header says: rmcp routes any request that names a session into
        // that session, so the binding is checked whenever one is named.
        if let Some(sid) = &session
            && !guard.sessions().check(sid, principal.as_ref())
        {
            // A session id is not authentication: without a token, a subject's session answers
            // with the sign-in challenge; an unknown or terminated session is "not found", as the
            // transport requires, and so is another subject's session.
            let refusal = if principal.is_none() && guard.sessions().is_bound(sid) {
                Refusal::NoToken
            } else {
                Refusal::UnknownSession
            };
            return refuse(&guard, refusal, principal.as_ref(), None);
        }

        let tool_result = guard.answers_with_tool_result(&parts.headers);
        // `decided`: the decision of a header-classified call whose argument rules the
        // `Mcp-Param-*` headers settled, the body unread. The operations borrow from the headers
        // or from `body_bytes`, the body read (shared with the body passed on, not copied).
        let mut body_bytes = Bytes::new();
        let (operations, mut decided, body) = if parts.method != Method::POST {
            (Operations::none(), None, body)
        } else {
            let from_headers = header_validated
                .then(|| classify::classify_headers(&parts.headers))
                .flatten()
                .and_then(|op| {
                    let decided = decide_from_headers(
                        &guard,
                        &op,
                        &parts.headers,
                        principal.as_ref(),
                        tool_result,
                    )?;
                    Some((op, decided))
                });
            match from_headers {
                Some((op, decided)) => (Operations::one(op), decided, body),
                None => match read_body(&guard, body, principal.as_ref()).await {
                    Ok(read) => {
                        body_bytes = read;
                        match classify(&body_bytes) {
                            Ok(ops) => (ops, None, Body::from(body_bytes.clone())),
                            Err(e) => {
                                let refusal = Refusal::MalformedBody(e);
                                return refuse(&guard, refusal, principal.as_ref(), None);
                            }
                        }
                    }
                    Err(resp) => return resp,
                },
            }
        };

        for op in &operations {
            let refusal = match decided.take() {
                Some(decision) => decision.refusal(),
                None => refusal_for(&guard, principal.as_ref(), op, header_validated),
            };
            if let Some(refusal) = refusal {
                let cx = Refused {
                    id: op.id,
                    target: op.policy_target(),
                    modern: header_validated,
                    // A result answers one request; a batch keeps the HTTP form.
                    tool_result: tool_result && operations.len() == 1,
                };
                return refuse(&guard, refusal, principal.as_ref(), Some(&cx));
            }
        }

        let opens_session = session.is_none()
            && operations
                .iter()
                .any(|o| o.method.as_deref() == Some("initialize"));
        // What can be refused before rmcp makes a session is refused before.
        if opens_session && let Err(why) = guard.sessions().precheck(principal.as_ref()) {
            return refuse(&guard, session_refusal(why), principal.as_ref(), None);
        }
        let closes_session = parts.method == Method::DELETE;
        let first = operations.first();
        audit::allowed(
            guard.audit_sink(),
            principal.as_ref(),
            first.and_then(|o| o.method.as_deref()),
            first.and_then(|o| o.target.as_deref()),
        );
        // The body now lives in `body` alone, consumed by rmcp: nothing here keeps it while the
        // tool runs.
        drop(operations);
        drop(body_bytes);
        if let Some(p) = &principal {
            parts.extensions.insert(p.clone());
        }
        parts.extensions.insert(guard.enforcement().clone());

        let Ok(resp) = inner.call(Request::from_parts(parts, body)).await;
        if opens_session
            && let Some(sid) = resp
                .headers()
                .get(&SESSION_HEADER)
                .and_then(|v| v.to_str().ok())
            && let Err(full) = guard.sessions().open(sid, principal.as_ref())
        {
            // The session rmcp opened is ended again; the caller is told why.
            return refuse(&guard, session_refusal(full), principal.as_ref(), None);
        }
        if closes_session
            && resp.status().is_success()
            && let Some(sid) = &session
        {
            guard.sessions().ended(sid);
        }
        let mut resp = resp.map(Body::new);
        if let Some(nonce) = next_nonce {
            resp.headers_mut().insert(DPOP_NONCE, nonce);
        }
        resp
    }
}

/// The answer to a session that cannot be opened.
fn session_refusal(why: session::Refused) -> Refusal {
    match why {
        session::Refused::NeedsToken => Refusal::NoToken,
        session::Refused::Full => Refusal::SessionsFull,
    }
}

fn is_form(headers: &http::HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            const FORM: &str = "application/x-www-form-urlencoded";
            // Compared in place: no lowercased copy of the header per request.
            v.trim_start()
                .as_bytes()
                .get(..FORM.len())
                .is_some_and(|prefix| prefix.eq_ignore_ascii_case(FORM.as_bytes()))
        })
}

/// Steps 1–3: the access token (`Bearer`, or `DPoP` with its proof when the guard accepts
/// DPoP), verified and accepted by the server's check. `Ok(None)` is a request without a
/// token to a server in the anonymous posture; the policy decides it later. Beside the
/// caller: the `DPoP-Nonce` the response should carry, if any.
pub(crate) async fn authenticate(
    guard: &Guard,
    parts: &http::request::Parts,
) -> Result<(Option<Principal>, Option<http::HeaderValue>), Response> {
    let dpop = guard.dpop();
    let (scheme, token) = match bearer::extract_credentials(&parts.headers, &parts.uri) {
        // Without DPoP configured, `DPoP` is a scheme this server does not understand.
        Ok((Scheme::Dpop, _)) if dpop.is_none() => Err(BearerError::Missing),
        other => other,
    }
    .map_or_else(|e| (None, Err(e)), |(s, t)| (Some(s), Ok(t)));
    let used_dpop = scheme == Some(Scheme::Dpop);
    let fail = |refusal| refuse_as(guard, refusal, None, None, used_dpop);
    let token = match token {
        Ok(t) => t,
        Err(BearerError::Missing) if guard.allows_anonymous() => return Ok((None, None)),
        Err(BearerError::Missing) => return Err(fail(Refusal::NoToken)),
        Err(e) => return Err(fail(Refusal::MalformedCredentials(e.to_string()))),
    };
    let answer = if used_dpop {
        // On the heap: a DPoP request already pays for a proof's signature, and the bearer
        // requests' futures stay small.
        Box::pin(guard.authenticate_dpop(token, parts)).await
    } else if dpop.is_some_and(|d| d.required()) {
        Err(AuthError::Invalid(crate::TokenError::DpopRequired))
    } else {
        guard.authenticate(token).await.map(|p| (p, None))
    };
    match answer {
        Ok((p, nonce)) => Ok((
            Some(p),
            nonce.and_then(|n| http::HeaderValue::from_str(&n).ok()),
        )),
        Err(AuthError::Invalid(e)) => Err(fail(Refusal::InvalidToken(e.to_string()))),
        Err(AuthError::Dpop(e)) if e.wants_nonce() => {
            Err(fail(Refusal::UseDpopNonce(e.to_string())))
        }
        Err(AuthError::Dpop(crate::dpop::DpopError::ReplayCacheFull)) => {
            Err(fail(Refusal::ProofsSaturated))
        }
        Err(AuthError::Dpop(e)) => Err(fail(Refusal::InvalidDpopProof(e.to_string()))),
        Err(
            e @ (AuthError::Unavailable(_)
            | AuthError::IntrospectionUnavailable(_)
            | AuthError::CheckUnavailable(_)),
        ) => Err(fail(Refusal::IssuerUnavailable(e.to_string()))),
    }
}

/// The request a refusal answers, when it concerns one message.
pub(crate) struct Refused<'a> {
    id: Option<&'a serde_json::value::RawValue>,
    target: Option<Target<'a>>,
    modern: bool,
    tool_result: bool,
}

/// The one place a refusal becomes an answer: its audit event, then its HTTP rendering. A
/// caller with a DPoP-bound token used the `DPoP` scheme, and is challenged in it.
pub(crate) fn refuse(
    guard: &Guard,
    refusal: Refusal,
    principal: Option<&Principal>,
    request: Option<&Refused<'_>>,
) -> Response {
    let used_dpop = principal.is_some_and(|p| p.dpop_thumbprint().is_some());
    refuse_as(guard, refusal, principal, request, used_dpop)
}

/// [`refuse`], saying whether the request used the `DPoP` scheme.
fn refuse_as(
    guard: &Guard,
    refusal: Refusal,
    principal: Option<&Principal>,
    request: Option<&Refused<'_>>,
    used_dpop: bool,
) -> Response {
    let target = request.and_then(|r| r.target);
    refusal.audit(guard.audit_sink(), principal, target.map(|t| t.name()));
    let advertise = |s: &ScopeSet| guard.advertise(s);
    refusal.to_response(&HttpContext {
        metadata_url: guard.metadata_url(),
        baseline: guard.policy().baseline(),
        advertise: &advertise,
        retry_after: guard.retry_after().as_secs(),
        id: request.and_then(|r| r.id),
        target,
        modern: request.is_some_and(|r| r.modern),
        tool_result: request.is_some_and(|r| r.tool_result),
        dpop: guard.dpop().map(|d| DpopContext {
            algs: d.algs(),
            required: d.required(),
            used: used_dpop,
            nonce: d.fresh_nonce(crate::guard::unix_now()),
        }),
    })
}

/// How a header-classified operation is decided without its body: `Some(None)` by the policy
/// as usual (its requirement does not depend on the arguments), `Some(Some(_))` already, from
/// the `Mcp-Param-*` headers its argument rules read; `None` when the body is needed: a rule
/// the headers cannot settle (see the `mirrored` module of the policy), or a refusal that
/// must be answered with the request's `id` (a concealed operation's "not found", a
/// tool-result challenge).
fn decide_from_headers(
    guard: &Guard,
    op: &classify::Operation<'_>,
    headers: &http::HeaderMap,
    principal: Option<&Principal>,
    tool_result: bool,
) -> Option<Option<crate::policy::Decision>> {
    let Some(target) = op.policy_target() else {
        return Some(None);
    };
    let policy = guard.policy();
    let req = policy.requirement(target);
    if policy.is_hidden(req)
        || policy.is_unknown(target)
        || (tool_result && matches!(target, Target::Tool(_)) && !req.public)
    {
        return None;
    }
    if req.when.is_empty() {
        return Some(None);
    }
    let header = |name: &str| classify::param_header(headers, name);
    policy
        .decide_from_headers(principal, target, &header)
        .map(Some)
}

/// The body, read up to the guard's limit.
async fn read_body<B>(
    guard: &Guard,
    body: B,
    principal: Option<&Principal>,
) -> Result<Bytes, Response>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let mut body = std::pin::pin!(http_body_util::Limited::new(body, guard.max_body_bytes()));
    // Most bodies arrive as one frame, kept as it is. The frames of any other are copied
    // as they come (holding on to each would keep its read buffer alive: a body of 1-byte
    // chunks would pin far more than the limit), and the copy is trimmed to its size at the
    // end. Trailers are not part of the message.
    let mut first = Bytes::new();
    let mut joined: Option<Vec<u8>> = None;
    while let Some(frame) = body.frame().await {
        let data = match frame {
            Ok(frame) => match frame.into_data() {
                Ok(data) => data,
                Err(_trailers) => continue,
            },
            Err(e) => {
                let error = if e
                    .downcast_ref::<http_body_util::LengthLimitError>()
                    .is_some()
                {
                    BodyError::TooLarge
                } else {
                    BodyError::Unreadable
                };
                return Err(refuse(
                    guard,
                    Refusal::MalformedBody(error),
                    principal,
                    None,
                ));
            }
        };
        match &mut joined {
            Some(all) => all.extend_from_slice(&data),
            None if first.is_empty() => first = data,
            None if data.is_empty() => {}
            None => joined = Some([&first[..], &data[..]].concat()),
        }
    }
    Ok(joined.map_or(first, |mut all| {
        all.shrink_to_fit();
        Bytes::from(all)
    }))
}

/// The messages of a body read in full; what is wrong with it, if it cannot be classified.
fn classify(bytes: &Bytes) -> Result<Operations<'_>, BodyError> {
    classify::classify_body(bytes).map_err(|e| match e {
        classify::ClassifyError::ParamsNotObject => BodyError::ParamsNotObject,
        _ => BodyError::NotJsonRpc,
    })
}

/// Step 5: the policy's decision for one message; `Some` is the refusal.
fn refusal_for(
    guard: &Guard,
    principal: Option<&Principal>,
    op: &classify::Operation<'_>,
    modern: bool,
) -> Option<Refusal> {
    let Some(target) = op.policy_target() else {
        // Discovery needs only what the authentication step established; without a token
        // (the anonymous posture) what reaches protected data is challenged.
        return (principal.is_none() && op.reaches_protected_data(modern))
            .then_some(Refusal::NoToken);
    };
    let policy = guard.policy();
    let decision = if policy.requirement(target).when.is_empty() {
        policy.decide(principal, target, None)
    } else {
        match op.arguments_object() {
            Ok(args) => policy.decide(principal, target, args.as_ref()),
            // Not an object: rmcp does not read such a request at all and refuses it before
            // any tool runs, so it gets rmcp's own answer once the caller may use the
            // operation (the in-process guard would decide it on `{}`, as the tool would
            // read it, should rmcp ever accept it).
            Err(_) => policy.decide_ignoring_arguments(principal, target),
        }
    };
    decision.refusal()
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tower_layer::Layer as _;
    use tower_service::Service as _;

    use super::*;
    use crate::{Issuer, StaticTokens, jwks::KeySet};

    /// An inner service that counts its copies and its calls.
    struct Counted {
        copies: Arc<AtomicUsize>,
        calls: Arc<AtomicUsize>,
    }

    impl Clone for Counted {
        fn clone(&self) -> Self {
            self.copies.fetch_add(1, Ordering::Relaxed);
            Self {
                copies: self.copies.clone(),
                calls: self.calls.clone(),
            }
        }
    }

    impl tower_service::Service<Request<Body>> for Counted {
        type Response = Response;
        type Error = Infallible;
        type Future = std::future::Ready<Result<Response, Infallible>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, _: Request<Body>) -> Self::Future {
            self.calls.fetch_add(1, Ordering::Relaxed);
            std::future::ready(Ok(Response::new(Body::from("called"))))
        }
    }

    fn request() -> Request<Body> {
        Request::post("/mcp")
            .header("authorization", "Bearer static-token")
            .header("content-type", "application/json")
            .body(Body::from(
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
            ))
            .unwrap()
    }

    async fn ready(service: &mut GuardService<Counted>) {
        std::future::poll_fn(|cx| tower_service::Service::<Request<Body>>::poll_ready(service, cx))
            .await
            .unwrap();
    }

    /// The future allocated for every request stays small (the verification's state, the
    /// DPoP path and the key fetches live behind pointers, taken only when a token is not in
    /// the verified-token cache): under 1 KiB with a small inner service, so that allocating
    /// it is the allocator's per-thread fast path.
    #[test]
    fn the_per_request_future_stays_small() {
        let guard = Guard::builder()
            .resource("https://mcp.example.com/mcp")
            .issuer(Issuer::with_keys(
                "https://as.example.com",
                KeySet::default(),
            ))
            .build()
            .unwrap();
        let inner = Counted {
            copies: Arc::default(),
            calls: Arc::default(),
        };
        let mut service = GuardLayer::new(guard).layer(inner);
        let future = service.call(request());
        let size = std::mem::size_of_val(&*future);
        assert!(size < 1024, "{size} bytes");
    }

    /// A router clones the layer's service for every request: the inner service is copied
    /// once per request (when polled ready), never for the clone itself, and a caller that
    /// calls without `poll_ready`, or calls one service again, still reaches a copy.
    #[tokio::test]
    async fn the_inner_service_is_copied_once_per_request() {
        let guard = Guard::builder()
            .resource("https://mcp.example.com/mcp")
            .issuer(Issuer::with_keys(
                "https://as.example.com",
                KeySet::default(),
            ))
            .static_tokens(
                StaticTokens::new()
                    .token("static-token", "alice", "files:read")
                    .unwrap(),
            )
            .build()
            .unwrap();
        let (copies, calls) = (Arc::default(), Arc::default());
        let inner = Counted {
            copies: Arc::clone(&copies),
            calls: Arc::clone(&calls),
        };
        let service = GuardLayer::new(guard).layer(inner);
        let copied = || copies.load(Ordering::Relaxed);
        let called = || calls.load(Ordering::Relaxed);

        // As a router does: clone, poll ready, call.
        for n in 1..=3 {
            let mut per_request = service.clone();
            assert_eq!(
                copied(),
                n - 1,
                "cloning the layer's service copies nothing"
            );
            ready(&mut per_request).await;
            let resp = per_request.call(request()).await.unwrap();
            assert_eq!(resp.status(), 200);
            assert_eq!((copied(), called()), (n, n));
        }

        // Called without `poll_ready`, and called twice.
        let mut twice = service.clone();
        twice.call(request()).await.unwrap();
        ready(&mut twice).await;
        twice.call(request()).await.unwrap();
        assert_eq!((copied(), called()), (5, 5));

        // A refused request never reaches the inner service.
        let mut refused = service.clone();
        ready(&mut refused).await;
        let no_token = Request::post("/mcp").body(Body::empty()).unwrap();
        let resp = refused.call(no_token).await.unwrap();
        assert_eq!(resp.status(), 401);
        assert_eq!(called(), 5);
    }
}
