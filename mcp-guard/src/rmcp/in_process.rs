//! Serving without the HTTP layer (stdio, in-process tests): a service wrapper that gives
//! every request the guard's policy and one fixed caller, verified beforehand, so that the
//! `#[protected]` checks decide exactly as they do behind the layer.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::SystemTime;

use rmcp::model::ProtocolVersion;
use rmcp::service::{
    MaybeSendFuture, NotificationContext, RequestContext, RoleServer, Service, ServiceRole,
};

use crate::audit::Enforcement;
use crate::principal::Principal;

/// An rmcp service whose requests all carry the guard's policy and, if there is one, a fixed
/// [`Principal`]: what the guard layer leaves in an HTTP request, for transports without one.
/// Made by [`Guard::in_process`](crate::Guard::in_process); serve it like the service it
/// wraps (`.serve(rmcp::transport::stdio())`).
///
/// Fails closed: without a principal, or once the principal's token has expired, protected
/// operations are refused with the JSON-RPC error the guard gives callers without a token
/// ([`UNAUTHENTICATED`](crate::rmcp::UNAUTHENTICATED), -32001). Only the anonymous access
/// posture lets `#[public]` operations run without one.
#[derive(Clone)]
pub struct InProcess<S> {
    inner: S,
    enforcement: Arc<Enforcement>,
    principal: Option<Principal>,
}

impl<S> std::fmt::Debug for InProcess<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InProcess")
            .field("principal", &self.principal)
            .finish_non_exhaustive()
    }
}

impl<S> InProcess<S> {
    pub(crate) fn new(
        inner: S,
        enforcement: Arc<Enforcement>,
        principal: Option<Principal>,
    ) -> Self {
        Self {
            inner,
            enforcement,
            principal,
        }
    }

    /// The caller every request is made as, if any.
    pub fn principal(&self) -> Option<&Principal> {
        self.principal.as_ref()
    }

    /// The wrapped service.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// The principal, while its token is still valid.
    fn current_principal(&self) -> Option<Principal> {
        self.principal
            .as_ref()
            .filter(|p| p.expires_at() > SystemTime::now())
            .cloned()
    }
}

impl<S: Service<RoleServer>> Service<RoleServer> for InProcess<S> {
    fn handle_request(
        &self,
        request: <RoleServer as ServiceRole>::PeerReq,
        mut context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<<RoleServer as ServiceRole>::Resp, rmcp::ErrorData>>
    + MaybeSendFuture
    + '_ {
        let ext = &mut context.extensions;
        // Whatever a transport put there is replaced: the caller is the one verified here.
        ext.remove::<Principal>();
        if let Some(principal) = self.current_principal() {
            ext.insert(principal);
        }
        ext.insert(self.enforcement.clone());
        self.inner.handle_request(request, context)
    }

    fn handle_notification(
        &self,
        notification: <RoleServer as ServiceRole>::PeerNot,
        context: NotificationContext<RoleServer>,
    ) -> impl Future<Output = Result<(), rmcp::ErrorData>> + MaybeSendFuture + '_ {
        self.inner.handle_notification(notification, context)
    }

    fn get_info(&self) -> <RoleServer as ServiceRole>::Info {
        self.inner.get_info()
    }

    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        self.inner.supported_protocol_versions()
    }
}
