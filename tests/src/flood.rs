//! A server on 127.0.0.1 that answers every request with a huge JSON-looking body streamed in
//! chunks (hundreds of MiB, no `Content-Length` unless asked), counting the bytes it managed
//! to hand to the connection: the proof that a client reading bounded stopped early.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Size of each streamed chunk.
pub const CHUNK: usize = 64 * 1024;
/// Chunks in one body: 512 MiB in all, far beyond any limit of the guard.
pub const CHUNKS: u64 = 8 * 1024;

/// The flooding server. Stops when dropped.
pub struct FloodServer {
    /// `http://127.0.0.1:PORT`.
    pub origin: String,
    sent: Arc<AtomicU64>,
    bodies_dropped: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FloodServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Counts the body's end, read to the last byte or abandoned by the client.
struct DropCount(Arc<AtomicU64>);

impl Drop for DropCount {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

impl FloodServer {
    /// Starts the server; with `declare_length`, each answer also carries the full body's
    /// `Content-Length`.
    pub async fn start(declare_length: bool) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1");
        let origin = format!("http://{}", listener.local_addr().expect("addr"));
        let sent = Arc::new(AtomicU64::new(0));
        let bodies_dropped = Arc::new(AtomicU64::new(0));
        let (s, d) = (sent.clone(), bodies_dropped.clone());
        let app = axum::Router::new().fallback(move || {
            let (sent, dropped) = (s.clone(), d.clone());
            async move {
                let end = DropCount(dropped);
                let head = axum::body::Bytes::from_static(br#"{"active":true,"pad":""#);
                let pad = axum::body::Bytes::from(vec![b'x'; CHUNK]);
                let chunks = std::iter::once(head)
                    .chain((0..CHUNKS).map(move |_| pad.clone()))
                    .map(move |chunk| {
                        let _ = &end;
                        sent.fetch_add(chunk.len() as u64, Ordering::SeqCst);
                        Ok::<_, std::convert::Infallible>(chunk)
                    });
                let body = axum::body::Body::from_stream(futures_util::stream::iter(chunks));
                let mut resp = axum::response::Response::new(body);
                resp.headers_mut().insert(
                    axum::http::header::CONTENT_TYPE,
                    axum::http::HeaderValue::from_static("application/json"),
                );
                if declare_length {
                    let total = 22 + CHUNK as u64 * CHUNKS;
                    resp.headers_mut()
                        .insert(axum::http::header::CONTENT_LENGTH, total.into());
                }
                resp
            }
        });
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            origin,
            sent,
            bodies_dropped,
            task,
        }
    }

    /// Bytes handed to connections so far (including what sits in socket buffers).
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::SeqCst)
    }

    /// Waits (at most 10 s, polling) until `n` bodies have ended, then returns the bytes
    /// sent. A body ends when the client hangs up on it.
    pub async fn sent_once_ended(&self, n: u64) -> u64 {
        for _ in 0..500 {
            if self.bodies_dropped.load(Ordering::SeqCst) >= n {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(
            self.bodies_dropped.load(Ordering::SeqCst) >= n,
            "the client kept reading: {} bytes sent so far",
            self.sent()
        );
        self.sent()
    }
}

/// Far more than a bounded reader plus the kernel's socket buffers may take, far less than a
/// body: 32 MiB.
pub const BOUNDED_BY: u64 = 32 * 1024 * 1024;
