//! Session ids that name the replica that created them, so that a load balancer can route
//! each session back to its replica by a prefix of `Mcp-Session-Id` (see
//! `scale-out/README.md`).
//!
//! [`PrefixedSessions`] wraps any rmcp [`SessionManager`]: the ids it hands out are the inner
//! manager's ids with the replica's prefix in front, and an id without the prefix is a session
//! this replica never created (unknown: the transport answers 404).

use std::sync::Arc;

use futures_util::Stream;
use rmcp::model::{ClientJsonRpcMessage, ServerJsonRpcMessage};
use rmcp::transport::streamable_http_server::session::{
    EventStore, RestoreOutcome, ServerSseMessage, SessionId, SessionManager,
};

/// A [`SessionManager`] whose session ids start with a fixed prefix (`r1-`, …).
#[derive(Debug)]
pub struct PrefixedSessions<M> {
    prefix: Arc<str>,
    inner: M,
}

/// The error of a [`PrefixedSessions`]: the inner manager's, or an id without the prefix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PrefixedSessionsError<E: std::error::Error + 'static> {
    /// The inner manager's error.
    #[error(transparent)]
    Inner(E),
    /// The id does not carry this replica's prefix: another replica's session, or none.
    #[error("session `{0}` was not created by this replica")]
    Foreign(String),
}

impl<M: SessionManager> PrefixedSessions<M> {
    /// Ids of `inner`'s sessions, prefixed with `prefix`. The prefix must be visible ASCII
    /// without spaces, as session ids are (`[A-Za-z0-9._~-]` is the safe choice for proxies).
    pub fn new(prefix: impl Into<Arc<str>>, inner: M) -> Self {
        Self {
            prefix: prefix.into(),
            inner,
        }
    }

    /// The prefix of every id this manager hands out.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn inner_id(&self, id: &SessionId) -> Result<SessionId, PrefixedSessionsError<M::Error>> {
        id.strip_prefix(&*self.prefix)
            .map(SessionId::from)
            .ok_or_else(|| PrefixedSessionsError::Foreign(id.to_string()))
    }
}

/// The inner manager's stream, boxed: its type names the borrowed inner id, which this
/// manager's own future must not return.
type BoxedStream = std::pin::Pin<Box<dyn Stream<Item = ServerSseMessage> + Send + Sync + 'static>>;

fn boxed(stream: impl Stream<Item = ServerSseMessage> + Send + Sync + 'static) -> BoxedStream {
    Box::pin(stream)
}

impl<M: SessionManager> SessionManager for PrefixedSessions<M> {
    type Error = PrefixedSessionsError<M::Error>;
    type Transport = M::Transport;

    async fn create_session(&self) -> Result<(SessionId, Self::Transport), Self::Error> {
        let (id, transport) = self
            .inner
            .create_session()
            .await
            .map_err(PrefixedSessionsError::Inner)?;
        Ok((format!("{}{id}", self.prefix).into(), transport))
    }

    async fn initialize_session(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<ServerJsonRpcMessage, Self::Error> {
        let id = self.inner_id(id)?;
        self.inner
            .initialize_session(&id, message)
            .await
            .map_err(PrefixedSessionsError::Inner)
    }

    async fn has_session(&self, id: &SessionId) -> Result<bool, Self::Error> {
        let Ok(id) = self.inner_id(id) else {
            return Ok(false);
        };
        self.inner
            .has_session(&id)
            .await
            .map_err(PrefixedSessionsError::Inner)
    }

    async fn close_session(&self, id: &SessionId) -> Result<(), Self::Error> {
        let id = self.inner_id(id)?;
        self.inner
            .close_session(&id)
            .await
            .map_err(PrefixedSessionsError::Inner)
    }

    async fn create_stream(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        let id = self.inner_id(id)?;
        let stream = self
            .inner
            .create_stream(&id, message)
            .await
            .map_err(PrefixedSessionsError::Inner)?;
        Ok(boxed(stream))
    }

    async fn accept_message(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<(), Self::Error> {
        let id = self.inner_id(id)?;
        self.inner
            .accept_message(&id, message)
            .await
            .map_err(PrefixedSessionsError::Inner)
    }

    async fn create_standalone_stream(
        &self,
        id: &SessionId,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        let id = self.inner_id(id)?;
        let stream = self
            .inner
            .create_standalone_stream(&id)
            .await
            .map_err(PrefixedSessionsError::Inner)?;
        Ok(boxed(stream))
    }

    async fn resume(
        &self,
        id: &SessionId,
        last_event_id: String,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        let id = self.inner_id(id)?;
        let stream = self
            .inner
            .resume(&id, last_event_id)
            .await
            .map_err(PrefixedSessionsError::Inner)?;
        Ok(boxed(stream))
    }

    async fn restore_session(
        &self,
        id: SessionId,
    ) -> Result<RestoreOutcome<Self::Transport>, Self::Error> {
        match self.inner_id(&id) {
            Ok(id) => self
                .inner
                .restore_session(id)
                .await
                .map_err(PrefixedSessionsError::Inner),
            Err(_) => Ok(RestoreOutcome::NotSupported),
        }
    }

    fn event_store(&self) -> Option<Arc<dyn EventStore>> {
        self.inner.event_store()
    }
}
