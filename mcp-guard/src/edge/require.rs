//! The scope check for plain HTTP routes beside the MCP endpoint ([`RequireLayer`], made by
//! [`Guard::require`]): the same bearer rules, verification, check, challenges and audit as
//! the guard layer, for one requirement.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::response::Response;
use http::Request;

use crate::audit;
use crate::guard::{ConfigError, Guard};
use crate::layer::{authenticate, refuse};
use crate::policy::{PolicyError, Requirement};

impl Guard {
    /// A layer that admits a request to an axum route only when its bearer token verifies
    /// and meets `requirement` (scopes with the catalogue's hierarchy, alternatives, roles,
    /// token kind), and otherwise answers as the guard layer does: 401 with the
    /// `resource_metadata` challenge, 403 `insufficient_scope` naming the scopes, 503 when
    /// the keys are unavailable. The verified [`Principal`](crate::Principal) is in the
    /// request's extensions (`Extension<Principal>`). Every scope must be in the catalogue,
    /// and argument rules (`when`) are refused: a route has no MCP arguments to decide them
    /// on, and leaving them out would admit what they require.
    ///
    /// ```no_run
    /// # fn app(guard: mcp_guard::Guard) -> Result<(), Box<dyn std::error::Error>> {
    /// use axum::{Extension, Router, routing::get};
    /// use mcp_guard::{Principal, Requirement};
    ///
    /// async fn report(Extension(caller): Extension<Principal>) -> String {
    ///     format!("report for {}", caller.subject())
    /// }
    /// let admin: Router = Router::new()
    ///     .route("/admin/report", get(report))
    ///     .route_layer(guard.require(Requirement::scopes(["files:admin"])?)?);
    /// # Ok(()) }
    /// ```
    pub fn require(&self, requirement: Requirement) -> Result<RequireLayer, ConfigError> {
        if !requirement.when.is_empty() || !requirement.uri_scopes.is_empty() {
            return Err(ConfigError::RouteArgumentRules);
        }
        if let Some(scope) = self.policy().undeclared_scope(&requirement) {
            return Err(PolicyError::UndeclaredScope(scope.to_owned()).into());
        }
        Ok(RequireLayer {
            guard: self.clone(),
            requirement: Arc::new(requirement),
        })
    }
}

/// Admits requests that meet one requirement ([`Guard::require`]).
#[derive(Clone, Debug)]
pub struct RequireLayer {
    guard: Guard,
    requirement: Arc<Requirement>,
}

impl<S> tower_layer::Layer<S> for RequireLayer {
    type Service = RequireService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireService {
            layer: self.clone(),
            inner,
        }
    }
}

/// The service [`RequireLayer`] produces.
#[derive(Clone, Debug)]
pub struct RequireService<S> {
    layer: RequireLayer,
    inner: S,
}

impl<S> tower_service::Service<Request<Body>> for RequireService<S>
where
    S: tower_service::Service<Request<Body>, Response = Response, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let RequireLayer { guard, requirement } = self.layer.clone();
        Box::pin(async move {
            let (mut parts, body) = req.into_parts();
            let (principal, next_nonce) = match authenticate(&guard, &parts).await {
                Ok(p) => p,
                Err(resp) => return Ok(resp),
            };
            let decision = guard
                .policy()
                .decide_route(principal.as_ref(), &requirement);
            if let Some(refusal) = decision.refusal() {
                return Ok(refuse(&guard, refusal, principal.as_ref(), None));
            }
            let path = parts.uri.path().to_owned();
            audit::allowed(guard.audit_sink(), principal.as_ref(), None, Some(&path));
            if let Some(p) = principal {
                parts.extensions.insert(p);
            }
            let mut resp = inner.call(Request::from_parts(parts, body)).await?;
            if let Some(nonce) = next_nonce {
                resp.headers_mut().insert(crate::refusal::DPOP_NONCE, nonce);
            }
            Ok(resp)
        })
    }
}
