//! Serving a guarded router over TCP with the bounds an exposed server needs: read deadlines,
//! a connection limit, and a shutdown that drains instead of dropping requests.
//!
//! [`axum::serve()`] reads headers and bodies for as long as a client cares to send them, accepts
//! every connection, and on shutdown closes idle keep-alive connections at once, racing any
//! proxy that is about to reuse one. [`serve`] is the same loop with:
//!
//! - a **header read deadline** ([`ServeConfig::header_read_timeout`], default 10 s): a
//!   connection whose request head (request line and headers) is not complete in time is
//!   closed without an answer. The same deadline bounds an idle connection: a keep-alive
//!   connection with no request in flight for that long, or a new one that never sends a
//!   complete request, is closed;
//! - a **body read deadline** ([`ServeConfig::body_read_timeout`], default 30 s), counted from
//!   the end of the headers for the whole body (a trickle of one byte a second does not extend
//!   it): a body not received in time is answered `408 Request Timeout` with
//!   `Connection: close`;
//! - a **connection limit** ([`ServeConfig::max_connections`], default 1024): at the limit no
//!   connection is accepted until one ends; the others wait in the kernel's listen backlog;
//! - a **drain** on shutdown ([`ServeConfig::drain`], default 5 s, then
//!   [`ServeConfig::grace`], default 10 s): see [`serve`].
//!
//! ```no_run
//! # async fn run(app: axum::Router) -> std::io::Result<()> {
//! use std::time::Duration;
//! use mcp_guard::serve::{ServeConfig, serve};
//!
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! let config = ServeConfig::default().header_read_timeout(Duration::from_secs(5));
//! serve(listener, app, config, async {
//!     let _ = tokio::signal::ctrl_c().await;
//! })
//! .await
//! # }
//! ```

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, Version, header};
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::{Instant, Sleep};
use tower_service::Service;

/// Concurrent requests one HTTP/2 connection may carry.
const MAX_CONCURRENT_STREAMS: u32 = 32;

/// The bounds [`serve`] applies. `ServeConfig::default()` is meant for a server exposed to
/// the internet behind a proxy or not; each setter changes one bound.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServeConfig {
    header_read_timeout: Duration,
    body_read_timeout: Duration,
    max_connections: usize,
    drain: Duration,
    grace: Duration,
}

impl Default for ServeConfig {
    /// Headers 10 s, body 30 s, 1024 connections, drain 5 s, grace 10 s.
    ///
    /// - 10 s for the request head: a client that is not sending in bulk sends its head in
    ///   one round trip; 10 s leaves room for a very slow link and frees a slot a silent or
    ///   trickling client holds within seconds. It is also the idle time after which a
    ///   keep-alive connection is closed, so a proxy's upstream idle timeout must be shorter
    ///   (nginx `keepalive_timeout` in the `upstream` block).
    /// - 30 s for the body: MCP request bodies are JSON-RPC messages of a few KiB (rmcp refuses
    ///   bodies above 4 MiB by default), which even a 1 Mbit/s link sends in well under 30 s.
    /// - 1024 connections: the common default file-descriptor limit; each connection costs a
    ///   few KiB of buffers, so the limit bounds memory while leaving room for proxies that
    ///   keep hundreds of connections open.
    /// - 5 s of drain: more than a proxy's retry and health-check intervals, so it stops
    ///   reusing the connections (every response says `Connection: close`); below
    ///   Kubernetes' default termination grace period of 30 s together with the grace.
    /// - 10 s of grace for requests still running when the drain ends.
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            max_connections: 1024,
            drain: Duration::from_secs(5),
            grace: Duration::from_secs(10),
        }
    }
}

impl ServeConfig {
    /// How long a client may take to send a complete request head (request line and
    /// headers), from the moment the server starts waiting for it: when the connection is
    /// accepted, and when the previous response on it has been sent. A connection that misses
    /// it is closed without an answer (HTTP/1.1 has no way to answer a request that was never
    /// read; RFC 9110 §15.5.9 allows closing). It also bounds how long a connection may stay
    /// idle, with no request in flight, for HTTP/1.1 and HTTP/2 alike.
    pub fn header_read_timeout(mut self, timeout: Duration) -> Self {
        self.header_read_timeout = timeout;
        self
    }

    /// How long a client may take to send a whole request body, counted from the end of the
    /// request head. It is one deadline for the body, not a limit on each read: a body that
    /// keeps arriving a byte at a time still ends at it. The request is then answered
    /// `408 Request Timeout` with `Connection: close`, whatever the handler made of the
    /// truncated body.
    pub fn body_read_timeout(mut self, timeout: Duration) -> Self {
        self.body_read_timeout = timeout;
        self
    }

    /// The most connections served at once (at least 1). At the limit the server accepts no
    /// connection until one ends: new clients wait in the listen backlog (a client that
    /// gives up first sees a connect timeout), and those already connected are not slowed.
    pub fn max_connections(mut self, limit: usize) -> Self {
        self.max_connections = limit.clamp(1, Semaphore::MAX_PERMITS.min(u32::MAX as usize));
        self
    }

    /// How long connections stay open after the shutdown signal, answering the requests
    /// that arrive on them with `Connection: close`, so that a proxy stops reusing them
    /// instead of racing their close. The drain ends early when every connection has closed.
    pub fn drain(mut self, drain: Duration) -> Self {
        self.drain = drain;
        self
    }

    /// How long requests still in flight when the drain ends may run before their
    /// connections are dropped.
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }
}

/// Where the server is in its life; each connection watches it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    Serving,
    /// Not accepting; open connections answer with `Connection: close`.
    Draining,
    /// Every connection shuts down gracefully: idle ones close, busy ones finish.
    Closing,
    /// Connections still open are dropped.
    Forced,
}

/// Serves `router` on `listener` with the bounds of `config` until `shutdown` resolves, then
/// drains.
///
/// HTTP/1.1 and HTTP/2 (prior knowledge, as [`axum::serve()`]) are served on the same port.
/// On shutdown:
///
/// 1. the listener stops accepting (connections already queued are taken first, the listen
///    socket is then closed, so new connections are refused: a proxy moves on to another
///    upstream without having sent anything);
/// 2. during [`ServeConfig::drain`], open connections stay up: requests in flight finish, and
///    every response, including those to requests that arrive on a kept-alive connection
///    meanwhile, carries `Connection: close` and ends its connection (HTTP/2 connections get
///    a `GOAWAY` at once instead);
/// 3. then every connection shuts down gracefully: idle ones close, busy ones close after
///    their response; after [`ServeConfig::grace`] the remaining ones are dropped.
///
/// It returns when every connection has ended. Accept errors (a full file-descriptor table)
/// pause accepting for a moment instead of ending the server.
pub async fn serve<F>(
    listener: TcpListener,
    router: Router,
    config: ServeConfig,
    shutdown: F,
) -> std::io::Result<()>
where
    F: Future<Output = ()> + Send,
{
    let limit = config.max_connections;
    let permits = Arc::new(Semaphore::new(limit));
    let (phase, _) = watch::channel(Phase::Serving);
    let draining = Arc::new(AtomicBool::new(false));
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_read_timeout);
    // One HTTP/2 connection may not hold more requests (and buffered bodies) than a few
    // HTTP/1 connections would: the connection limit has to mean something for both.
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(MAX_CONCURRENT_STREAMS);
    let shared = Arc::new(Shared {
        builder,
        router,
        config: config.clone(),
        draining: draining.clone(),
    });
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            biased;
            () = &mut shutdown => break,
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let accepted = tokio::select! {
            biased;
            () = &mut shutdown => break,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((stream, _)) => spawn_connection(stream, permit, &shared, phase.subscribe()),
            Err(e) if is_connection_error(&e) => {}
            Err(e) => {
                tracing::error!(error = %e, "accept failed; pausing for a second");
                tokio::select! {
                    () = &mut shutdown => break,
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    }
    // Take the connections the kernel already completed, then close the listen socket: a
    // connection left in the backlog would be reset after its client sent a request.
    let queued = std::future::poll_fn(|cx| {
        let mut queued = Vec::new();
        while let Poll::Ready(Ok((stream, _))) = listener.poll_accept(cx) {
            queued.push(stream);
        }
        Poll::Ready(queued)
    })
    .await;
    drop(listener);
    for stream in queued {
        if let Ok(permit) = permits.clone().try_acquire_owned() {
            spawn_connection(stream, permit, &shared, phase.subscribe());
        }
    }
    draining.store(true, Ordering::Release);
    phase.send_replace(Phase::Draining);
    let all_closed = || {
        let permits = permits.clone();
        async move {
            let _ = permits.acquire_many(limit as u32).await;
        }
    };
    for (next, wait) in [
        (Phase::Closing, config.drain),
        (Phase::Forced, config.grace),
    ] {
        tokio::select! {
            () = all_closed() => return Ok(()),
            () = tokio::time::sleep(wait) => {}
        }
        phase.send_replace(next);
    }
    all_closed().await;
    Ok(())
}

/// What every connection of one server shares.
struct Shared {
    builder: auto::Builder<TokioExecutor>,
    router: Router,
    config: ServeConfig,
    draining: Arc<AtomicBool>,
}

/// Errors of one accepted connection (the peer gave up), not of the listener.
fn is_connection_error(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}

fn spawn_connection(
    stream: TcpStream,
    permit: OwnedSemaphorePermit,
    shared: &Arc<Shared>,
    mut phase: watch::Receiver<Phase>,
) {
    let _ = stream.set_nodelay(true);
    let shared = shared.clone();
    tokio::spawn(async move {
        let _permit = permit;
        let (in_flight, mut in_flight_rx) = watch::channel(0usize);
        let state = Arc::new(ConnectionState {
            in_flight,
            http2: AtomicBool::new(false),
        });
        let service = RequestService {
            shared: shared.clone(),
            connection: state.clone(),
        };
        let conn = shared
            .builder
            // No upgrades: MCP needs none, and an upgraded connection would leave the limit
            // and the drain.
            .serve_connection(TokioIo::new(stream), service);
        tokio::pin!(conn);
        let idle_for = shared.config.header_read_timeout;
        let mut idle_since = Instant::now();
        // Serving and draining: until the connection ends, stays idle too long, or the server
        // closes its connections.
        loop {
            let idle = *in_flight_rx.borrow_and_update() == 0;
            let now = *phase.borrow_and_update();
            if now >= Phase::Closing {
                break;
            }
            if now == Phase::Draining && state.http2.load(Ordering::Acquire) {
                break;
            }
            tokio::select! {
                _ = conn.as_mut() => return,
                changed = in_flight_rx.changed() => {
                    if changed.is_ok() && *in_flight_rx.borrow() == 0 {
                        idle_since = Instant::now();
                    }
                }
                changed = phase.changed() => {
                    if changed.is_err() {
                        break;
                    }
                }
                () = tokio::time::sleep_until(idle_since + idle_for), if idle => break,
            }
        }
        // Closing: idle connections end now, busy ones after their response; bounded by the
        // grace period, and by the server's own end.
        conn.as_mut().graceful_shutdown();
        let bound = tokio::time::sleep(shared.config.grace);
        tokio::pin!(bound);
        loop {
            if *phase.borrow_and_update() >= Phase::Forced {
                return;
            }
            tokio::select! {
                _ = conn.as_mut() => return,
                () = &mut bound => return,
                changed = phase.changed() => {
                    if changed.is_err() {
                        return;
                    }
                }
            }
        }
    });
}

/// One connection's requests in flight (to tell idle from busy) and its protocol.
struct ConnectionState {
    in_flight: watch::Sender<usize>,
    http2: AtomicBool,
}

/// Decrements the connection's in-flight count when the response body ends or is dropped.
struct InFlight(Arc<ConnectionState>);

impl InFlight {
    fn start(connection: &Arc<ConnectionState>) -> Self {
        connection.in_flight.send_modify(|n| *n += 1);
        Self(connection.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// The per-connection service: deadline on the body, the router, `Connection: close` while
/// draining, 408 for a body that missed its deadline.
#[derive(Clone)]
struct RequestService {
    shared: Arc<Shared>,
    connection: Arc<ConnectionState>,
}

type ResponseFuture =
    Pin<Box<dyn Future<Output = Result<Response<TrackedBody>, Infallible>> + Send>>;

impl hyper::service::Service<Request<Incoming>> for RequestService {
    type Response = Response<TrackedBody>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        let in_flight = InFlight::start(&self.connection);
        let version = request.version();
        if version == Version::HTTP_2 {
            self.connection.http2.store(true, Ordering::Release);
        }
        let timed_out = Arc::new(AtomicBool::new(false));
        let deadline = Instant::now() + self.shared.config.body_read_timeout;
        let request = request.map(|body| {
            Body::new(DeadlineBody {
                inner: body,
                deadline,
                sleep: None,
                timed_out: timed_out.clone(),
            })
        });
        let mut router = self.shared.router.clone();
        let shared = self.shared.clone();
        Box::pin(async move {
            let response = match router.call(request).await {
                Ok(r) => r,
                Err(never) => match never {},
            };
            let mut response = if timed_out.load(Ordering::Acquire) {
                tracing::debug!("request body not received before its deadline: 408");
                let mut r = Response::new(Body::from("request body not received in time\n"));
                *r.status_mut() = StatusCode::REQUEST_TIMEOUT;
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; charset=utf-8"),
                );
                r
            } else {
                response
            };
            let close =
                timed_out.load(Ordering::Acquire) || shared.draining.load(Ordering::Acquire);
            if close && version <= Version::HTTP_11 {
                response
                    .headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            Ok(response.map(|body| TrackedBody {
                inner: body,
                _in_flight: in_flight,
            }))
        })
    }
}

/// The response body, which keeps its request counted as in flight until it ends.
struct TrackedBody {
    inner: Body,
    _in_flight: InFlight,
}

impl HttpBody for TrackedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The error a request body yields when its deadline passed before it was complete.
#[derive(Debug, thiserror::Error)]
#[error("request body not received before its deadline")]
struct BodyDeadlineElapsed;

/// A request body with one deadline for all of it. The timer is only created when a read
/// has to wait, so a body that arrived with its headers costs nothing. (tower-http's
/// `TimeoutBody` restarts its timer at every frame: a body trickled a byte at a time never
/// trips it.)
struct DeadlineBody {
    inner: Incoming,
    deadline: Instant,
    sleep: Option<Pin<Box<Sleep>>>,
    timed_out: Arc<AtomicBool>,
}

impl HttpBody for DeadlineBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        if this.timed_out.load(Ordering::Relaxed) {
            return Poll::Ready(Some(Err(Box::new(BodyDeadlineElapsed))));
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
            }
            Poll::Pending => {}
        }
        let deadline = this.deadline;
        let sleep = this
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => {
                this.timed_out.store(true, Ordering::Release);
                Poll::Ready(Some(Err(Box::new(BodyDeadlineElapsed))))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
