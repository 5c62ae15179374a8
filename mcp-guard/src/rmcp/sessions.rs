//! rmcp's session manager, wrapped so the guard's session table and rmcp's sessions are one:
//! a session rmcp ends leaves the table, and a session the table lets go (to stay within
//! [`SessionLimits`](crate::SessionLimits)) is ended in rmcp, freeing its memory.

use std::sync::{Arc, Weak};
use std::time::Duration;

use futures_util::Stream;
use rmcp::model::{ClientJsonRpcMessage, ServerJsonRpcMessage};
use rmcp::transport::streamable_http_server::session::{
    EventStore, RestoreOutcome, ServerSseMessage, SessionId, SessionManager,
};

use crate::edge::session::SessionBindings;

/// A session manager whose sessions the guard bounds ([`Guard::session_manager`]).
///
/// Give it to rmcp's `StreamableHttpService` in place of the manager it wraps. Every call is
/// the wrapped manager's; in addition, a session that ends leaves the guard's table, and the
/// sessions the guard lets go to stay within its [`SessionLimits`](crate::SessionLimits) are
/// closed here.
///
/// [`Guard::session_manager`]: crate::Guard::session_manager
pub struct GuardedSessionManager<M> {
    inner: Arc<M>,
    table: Arc<SessionBindings>,
}

impl<M> std::fmt::Debug for GuardedSessionManager<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuardedSessionManager")
            .field("sessions", &self.table.counts())
            .finish_non_exhaustive()
    }
}

impl<M: SessionManager> GuardedSessionManager<M> {
    pub(crate) fn new(inner: M, table: Arc<SessionBindings>) -> Self {
        let inner = Arc::new(inner);
        let manager: Weak<M> = Arc::downgrade(&inner);
        table.add_closer(Arc::new(move |id: SessionId| {
            let Some(manager) = manager.upgrade() else {
                return;
            };
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move {
                    if let Err(e) = manager.close_session(&id).await {
                        tracing::debug!(error = %e, "mcp-guard: a session could not be ended");
                    }
                });
            }
        }));
        spawn_sweeper(&table);
        Self { inner, table }
    }

    /// The wrapped session manager.
    pub fn inner(&self) -> &M {
        &self.inner
    }
}

/// Ends idle sessions even when no new session asks for room, for as long as the table
/// exists: one sweeper per table, however many managers it bounds.
fn spawn_sweeper(table: &Arc<SessionBindings>) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    if !table.claim_sweeper() {
        return;
    }
    let every = (table.limits().anonymous_idle_life() / 4)
        .clamp(Duration::from_secs(1), Duration::from_secs(30));
    let table = Arc::downgrade(table);
    runtime.spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match table.upgrade() {
                Some(t) => t.sweep(),
                None => return,
            }
        }
    });
}

impl<M: SessionManager> SessionManager for GuardedSessionManager<M> {
    type Error = M::Error;
    type Transport = M::Transport;

    async fn create_session(&self) -> Result<(SessionId, Self::Transport), Self::Error> {
        self.inner.create_session().await
    }

    async fn initialize_session(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<ServerJsonRpcMessage, Self::Error> {
        self.inner.initialize_session(id, message).await
    }

    async fn has_session(&self, id: &SessionId) -> Result<bool, Self::Error> {
        self.inner.has_session(id).await
    }

    async fn close_session(&self, id: &SessionId) -> Result<(), Self::Error> {
        self.table.ended(id);
        self.inner.close_session(id).await
    }

    async fn create_stream(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.inner.create_stream(id, message).await
    }

    async fn accept_message(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<(), Self::Error> {
        self.inner.accept_message(id, message).await
    }

    async fn create_standalone_stream(
        &self,
        id: &SessionId,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.inner.create_standalone_stream(id).await
    }

    async fn resume(
        &self,
        id: &SessionId,
        last_event_id: String,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.inner.resume(id, last_event_id).await
    }

    async fn restore_session(
        &self,
        id: SessionId,
    ) -> Result<RestoreOutcome<Self::Transport>, Self::Error> {
        self.inner.restore_session(id).await
    }

    fn event_store(&self) -> Option<Arc<dyn EventStore>> {
        self.inner.event_store()
    }
}
