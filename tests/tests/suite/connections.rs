//! The serving loop under attack and at shutdown, over raw TCP against the example server:
//! trickled headers and bodies end at their deadlines, connections beyond the limit wait, a
//! normal client is served meanwhile, a shutdown drains kept-alive connections with
//! `Connection: close` instead of dropping their requests, and a body sent in chunks is
//! decided on and served whole, within the body limit.

use std::net::SocketAddr;
use std::time::Duration;

use mcp_guard_examples::server::ServerOptions;
use mcp_guard_tests::server::{STATELESS, stateless_body};
use mcp_guard_tests::{TestIssuer, TestKey, TestServer, claims};
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// Bound on anything a test waits for; never reached when the server behaves.
const GENEROUS: Duration = Duration::from_secs(20);

/// A deadline short enough for a test, long enough for a loaded machine to send a request.
const SHORT_MS: u64 = 300;

struct Setup {
    _issuer: TestIssuer,
    server: TestServer,
    token: String,
}

async fn setup(adjust: impl FnOnce(&mut ServerOptions)) -> Setup {
    let key = TestKey::rsa1();
    let issuer = TestIssuer::start(vec![key.jwk()]).await;
    let server = TestServer::start_with(&issuer, adjust).await;
    let token = key.sign(&claims(&issuer.issuer, &server.mcp_url, "files:read"));
    Setup {
        _issuer: issuer,
        server,
        token,
    }
}

impl Setup {
    fn addr(&self) -> SocketAddr {
        self.server.running.addr
    }

    /// The head of a stateless `whoami` call whose body is `len` bytes.
    fn head(&self, len: usize) -> String {
        format!(
            "POST /mcp HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\n\
             accept: application/json, text/event-stream\r\nmcp-protocol-version: {STATELESS}\r\n\
             mcp-method: tools/call\r\nmcp-name: whoami\r\nauthorization: Bearer {}\r\n\
             content-length: {len}\r\n\r\n",
            self.addr(),
            self.token
        )
    }

    fn body() -> String {
        stateless_body("tools/call", json!({"name": "whoami", "arguments": {}}))
    }

    /// A complete `whoami` request.
    fn request(&self) -> Vec<u8> {
        let body = Self::body();
        format!("{}{body}", self.head(body.len())).into_bytes()
    }
}

/// One HTTP/1.1 response read off a connection.
#[derive(Debug)]
struct RawResponse {
    status: u16,
    /// Lower-cased header names.
    headers: Vec<(String, String)>,
    body: String,
}

impl RawResponse {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn closes(&self) -> bool {
        self.header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }
}

/// Reads one response (Content-Length or chunked body); `None` when the connection closed
/// before a complete one.
async fn read_response(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> Option<RawResponse> {
    async fn fill(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> bool {
        let mut chunk = [0u8; 4096];
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                buffer.extend_from_slice(&chunk[..n]);
                true
            }
        }
    }
    let head_end = loop {
        if let Some(i) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buffer.len() > 64 * 1024 || !fill(stream, buffer).await {
            return None;
        }
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    buffer.drain(..head_end);
    let find = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    let body = if let Some(len) = find("content-length") {
        let len: usize = len.parse().ok()?;
        while buffer.len() < len {
            if !fill(stream, buffer).await {
                return None;
            }
        }
        buffer.drain(..len).collect::<Vec<u8>>()
    } else if find("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        let mut body = Vec::new();
        loop {
            let line_end = loop {
                if let Some(i) = buffer.windows(2).position(|w| w == b"\r\n") {
                    break i;
                }
                if !fill(stream, buffer).await {
                    return None;
                }
            };
            let size = usize::from_str_radix(
                String::from_utf8_lossy(&buffer[..line_end])
                    .split(';')
                    .next()?
                    .trim(),
                16,
            )
            .ok()?;
            buffer.drain(..line_end + 2);
            while buffer.len() < size + 2 {
                if !fill(stream, buffer).await {
                    return None;
                }
            }
            body.extend(buffer.drain(..size));
            buffer.drain(..2);
            if size == 0 {
                break body;
            }
        }
    } else {
        Vec::new()
    };
    Some(RawResponse {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// Sends `request` and reads its response, within the generous bound.
async fn exchange(stream: &mut TcpStream, buffer: &mut Vec<u8>, request: &[u8]) -> RawResponse {
    tokio::time::timeout(GENEROUS, async {
        stream.write_all(request).await.expect("request written");
        read_response(stream, buffer).await
    })
    .await
    .expect("answered in time")
    .expect("a complete response")
}

/// How a trickle ended.
#[derive(Debug, PartialEq)]
enum Ended {
    /// The server closed the connection (EOF, reset or a failed write) without answering.
    Closed,
    /// The server answered; the status line's code.
    Answered(u16),
    /// The trickle ran out of bytes before the server did anything.
    Exhausted,
}

/// Writes `bytes` one at a time, `gap` apart, watching for an answer or a close.
async fn trickle(stream: &mut TcpStream, bytes: &[u8], gap: Duration) -> Ended {
    let mut received = Vec::new();
    for b in bytes {
        if stream.write_all(std::slice::from_ref(b)).await.is_err() {
            return Ended::Closed;
        }
        let mut chunk = [0u8; 1024];
        match tokio::time::timeout(gap, stream.read(&mut chunk)).await {
            Err(_) => {}
            Ok(Ok(0)) | Ok(Err(_)) => {
                return if received.is_empty() {
                    Ended::Closed
                } else {
                    status_of(&received)
                };
            }
            Ok(Ok(n)) => {
                received.extend_from_slice(&chunk[..n]);
                if received.windows(2).any(|w| w == b"\r\n") {
                    return status_of(&received);
                }
            }
        }
    }
    Ended::Exhausted
}

fn status_of(received: &[u8]) -> Ended {
    String::from_utf8_lossy(received)
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .map_or(Ended::Closed, Ended::Answered)
}

fn short_deadlines(o: &mut ServerOptions) {
    o.stateless = true;
    o.header_read_timeout_ms = SHORT_MS;
    o.body_read_timeout_ms = SHORT_MS;
}

#[tokio::test]
async fn trickled_headers_are_closed_without_an_answer() {
    let s = setup(short_deadlines).await;
    let mut stream = TcpStream::connect(s.addr()).await.expect("connect");
    // A request head that would take 100 ms × its length (over a minute) to arrive.
    let head = s.head(Setup::body().len());
    let ended = trickle(&mut stream, head.as_bytes(), Duration::from_millis(100)).await;
    assert_eq!(
        ended,
        Ended::Closed,
        "a head trickled past the header deadline ends the connection unanswered"
    );
}

#[tokio::test]
async fn a_silent_connection_is_closed() {
    let s = setup(short_deadlines).await;
    let mut stream = TcpStream::connect(s.addr()).await.expect("connect");
    let mut chunk = [0u8; 64];
    let read = tokio::time::timeout(GENEROUS, stream.read(&mut chunk))
        .await
        .expect("the server closes a connection that never sends a request");
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "closed without an answer: {read:?}"
    );
}

#[tokio::test]
async fn a_trickled_body_is_answered_408_at_the_body_deadline() {
    let s = setup(short_deadlines).await;
    let mut stream = TcpStream::connect(s.addr()).await.expect("connect");
    let body = Setup::body();
    stream
        .write_all(s.head(body.len()).as_bytes())
        .await
        .expect("head written");
    // One byte every 50 ms: every read gets data well within any per-read timeout, so only a
    // deadline for the whole body ends it (the body would take over 10 s).
    let ended = trickle(&mut stream, body.as_bytes(), Duration::from_millis(50)).await;
    assert_eq!(ended, Ended::Answered(408), "408 Request Timeout");
}

#[tokio::test]
async fn the_408_says_connection_close() {
    let s = setup(short_deadlines).await;
    let mut stream = TcpStream::connect(s.addr()).await.expect("connect");
    let body = Setup::body();
    let head = s.head(body.len());
    // Half the body, then nothing.
    stream
        .write_all(format!("{head}{}", &body[..body.len() / 2]).as_bytes())
        .await
        .expect("written");
    let mut buffer = Vec::new();
    let response = tokio::time::timeout(GENEROUS, read_response(&mut stream, &mut buffer))
        .await
        .expect("answered in time")
        .expect("a response");
    assert_eq!(response.status, 408);
    assert!(response.closes(), "{response:?}");
    let mut rest = [0u8; 16];
    let after = tokio::time::timeout(GENEROUS, stream.read(&mut rest))
        .await
        .expect("closed in time");
    assert!(matches!(after, Ok(0) | Err(_)), "closed after the 408");
}

#[tokio::test]
async fn a_normal_request_is_served_while_trickling_clients_are_held() {
    let s = setup(|o| {
        o.stateless = true;
        // Long enough that the tricklers are still held while the normal client is served.
        o.header_read_timeout_ms = 5_000;
        o.body_read_timeout_ms = 5_000;
    })
    .await;
    let addr = s.addr();
    let head = s.head(Setup::body().len());
    let mut tricklers = tokio::task::JoinSet::new();
    for i in 0..16 {
        let bytes = if i % 2 == 0 {
            head.clone().into_bytes()
        } else {
            format!("{head}{}", Setup::body()).into_bytes()
        };
        tricklers.spawn(async move {
            let mut stream = TcpStream::connect(addr).await.expect("connect");
            if i % 2 == 1 {
                // The head at once, the body trickled.
                stream
                    .write_all(&bytes[..head_len(&bytes)])
                    .await
                    .expect("head");
                trickle(
                    &mut stream,
                    &bytes[head_len(&bytes)..],
                    Duration::from_millis(100),
                )
                .await
            } else {
                trickle(&mut stream, &bytes, Duration::from_millis(100)).await
            }
        });
    }
    // Every trickler is connected and sending: the server holds 16 slow connections.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let mut buffer = Vec::new();
    let response = exchange(&mut stream, &mut buffer, &s.request()).await;
    assert_eq!(response.status, 200, "{response:?}");
    assert!(response.body.contains("\"result\""), "{response:?}");
    assert_eq!(tricklers.len(), 16, "the tricklers were still held");
    // They all end at their deadlines.
    let all = tokio::time::timeout(GENEROUS, tricklers.join_all())
        .await
        .expect("every trickler ended in time");
    for ended in all {
        assert!(
            matches!(ended, Ended::Closed | Ended::Answered(408)),
            "{ended:?}"
        );
    }
}

fn head_len(bytes: &[u8]) -> usize {
    bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(bytes.len(), |i| i + 4)
}

#[tokio::test]
async fn connections_beyond_the_limit_wait_until_one_ends() {
    let s = setup(|o| {
        o.stateless = true;
        o.max_connections = 2;
        // The held connections must outlive the test's checks.
        o.header_read_timeout_ms = 60_000;
    })
    .await;
    let request = s.request();
    // Two kept-alive connections, each proven served (so accepted) by one exchange.
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut stream = TcpStream::connect(s.addr()).await.expect("connect");
        let mut buffer = Vec::new();
        let r = exchange(&mut stream, &mut buffer, &request).await;
        assert_eq!(r.status, 200, "{r:?}");
        assert!(!r.closes(), "kept alive: {r:?}");
        held.push(stream);
    }
    // A third connects (the kernel completes it) but is not served while both are held.
    let mut third = TcpStream::connect(s.addr()).await.expect("connect");
    third.write_all(&request).await.expect("written");
    let mut buffer = Vec::new();
    let early = tokio::time::timeout(
        Duration::from_millis(500),
        read_response(&mut third, &mut buffer),
    )
    .await;
    assert!(early.is_err(), "not served at the limit: {early:?}");
    // One held connection ends: the third is accepted and answered.
    drop(held.pop());
    let r = tokio::time::timeout(GENEROUS, read_response(&mut third, &mut buffer))
        .await
        .expect("served once a slot is free")
        .expect("a response");
    assert_eq!(r.status, 200, "{r:?}");
}

/// Waits until the server refuses new connections (its listener is closed: the shutdown
/// has started), bounded.
async fn until_refused(addr: SocketAddr) {
    for _ in 0..200 {
        if TcpStream::connect(addr).await.is_err() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the server still accepts connections after its shutdown started");
}

fn with_drain(o: &mut ServerOptions) {
    o.stateless = true;
    // Longer than the test needs: the drain ends early once every connection closed.
    o.drain_ms = 15_000;
}

#[tokio::test]
async fn a_request_mid_stream_when_shutdown_starts_is_answered() {
    let s = setup(with_drain).await;
    let addr = s.addr();
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let mut buffer = Vec::new();
    let first = exchange(&mut stream, &mut buffer, &s.request()).await;
    assert_eq!(first.status, 200, "{first:?}");
    assert!(!first.closes(), "kept alive before the shutdown: {first:?}");
    // The second request: its head and half its body, then the shutdown, then the rest.
    let body = Setup::body();
    let (a, b) = body.split_at(body.len() / 2);
    stream
        .write_all(format!("{}{a}", s.head(body.len())).as_bytes())
        .await
        .expect("first half");
    let Setup {
        server, _issuer, ..
    } = s;
    let stopping = tokio::spawn(server.running.stop());
    until_refused(addr).await;
    let rest = tokio::time::timeout(GENEROUS, async {
        stream.write_all(b.as_bytes()).await.expect("second half");
        read_response(&mut stream, &mut buffer).await
    })
    .await
    .expect("answered in time")
    .expect("the request in flight is answered, not dropped");
    assert_eq!(rest.status, 200, "{rest:?}");
    assert!(rest.body.contains("\"result\""), "{rest:?}");
    assert!(rest.closes(), "answered with Connection: close: {rest:?}");
    tokio::time::timeout(GENEROUS, stopping)
        .await
        .expect("the server stops once its connections closed")
        .expect("task")
        .expect("clean stop");
}

#[tokio::test]
async fn a_request_on_a_kept_alive_connection_during_the_drain_gets_connection_close() {
    let s = setup(with_drain).await;
    let addr = s.addr();
    let request = s.request();
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let mut buffer = Vec::new();
    let first = exchange(&mut stream, &mut buffer, &request).await;
    assert_eq!(first.status, 200, "{first:?}");
    assert!(!first.closes(), "kept alive before the shutdown: {first:?}");
    let Setup {
        server, _issuer, ..
    } = s;
    let stopping = tokio::spawn(server.running.stop());
    // The shutdown has begun (new connections are refused); the idle kept-alive connection
    // is still open, as a proxy's pooled connection would be.
    until_refused(addr).await;
    let during = exchange(&mut stream, &mut buffer, &request).await;
    assert_eq!(during.status, 200, "answered during the drain: {during:?}");
    assert!(during.body.contains("\"result\""), "{during:?}");
    assert!(during.closes(), "with Connection: close: {during:?}");
    let mut rest = [0u8; 16];
    let after = tokio::time::timeout(GENEROUS, stream.read(&mut rest))
        .await
        .expect("closed after that response");
    assert!(matches!(after, Ok(0) | Err(_)), "{after:?}");
    tokio::time::timeout(GENEROUS, stopping)
        .await
        .expect("the drain ends early once every connection closed")
        .expect("task")
        .expect("clean stop");
}

/// Sends a stateless 2025-11-25 `tools/call` (the layer reads and classifies the body) with
/// its body in chunks of `chunk` bytes, a pause between them so that each arrives on its
/// own; the response. A write the server cut short (it answered early) is not an error.
async fn call_in_chunks(
    s: &Setup,
    tool: &str,
    arguments: serde_json::Value,
    chunk: usize,
) -> RawResponse {
    let body = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
        "params": {"name": tool, "arguments": arguments}})
    .to_string();
    chunks(s, body.as_bytes(), chunk, Duration::from_millis(5), "").await
}

/// `trailers`: trailer fields sent after the last chunk, each line ending in CRLF.
async fn chunks(
    s: &Setup,
    body: &[u8],
    chunk: usize,
    pause: Duration,
    trailers: &str,
) -> RawResponse {
    let mut stream = TcpStream::connect(s.addr()).await.expect("connect");
    let head = format!(
        "POST /mcp HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\n\
         accept: application/json, text/event-stream\r\nmcp-protocol-version: 2025-11-25\r\n\
         authorization: Bearer {}\r\ntransfer-encoding: chunked\r\n\r\n",
        s.addr(),
        s.token
    );
    tokio::time::timeout(GENEROUS, async {
        let mut sent = stream.write_all(head.as_bytes()).await;
        for piece in body.chunks(chunk) {
            if sent.is_err() {
                break;
            }
            let mut framed = format!("{:x}\r\n", piece.len()).into_bytes();
            framed.extend_from_slice(piece);
            framed.extend_from_slice(b"\r\n");
            sent = stream.write_all(&framed).await;
            if !pause.is_zero() {
                tokio::time::sleep(pause).await;
            }
        }
        if sent.is_ok() {
            let _ = stream
                .write_all(format!("0\r\n{trailers}\r\n").as_bytes())
                .await;
        }
        read_response(&mut stream, &mut Vec::new()).await
    })
    .await
    .expect("answered in time")
    .expect("a complete response")
}

fn stateless(o: &mut ServerOptions) {
    o.stateless = true;
}

#[tokio::test]
async fn a_body_in_chunks_is_decided_on_and_served_whole() {
    let s = setup(stateless).await;
    // Each chunk alone is no JSON; the decision and the tool see the whole body.
    let allowed = call_in_chunks(&s, "whoami", json!({}), 7).await;
    assert_eq!(allowed.status, 200, "{allowed:?}");
    assert!(allowed.body.contains("alice"), "{allowed:?}");
    let refused = call_in_chunks(
        &s,
        "write_file",
        json!({"path": "/notes/x", "content": "x"}),
        7,
    )
    .await;
    assert_eq!(refused.status, 403, "{refused:?}");
    let challenge = refused.header("www-authenticate").unwrap_or_default();
    assert!(challenge.contains("insufficient_scope"), "{challenge}");
    assert!(challenge.contains("files:write"), "{challenge}");
}

#[tokio::test]
async fn an_oversized_body_in_chunks_gets_413() {
    let s = setup(stateless).await;
    // 5 MiB in 64 KiB chunks, over the guard's 4 MiB limit.
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{{"pad":"{}"}}}}"#,
        "x".repeat(5 * 1024 * 1024)
    );
    let answer = chunks(&s, body.as_bytes(), 64 * 1024, Duration::ZERO, "").await;
    assert_eq!(answer.status, 413, "{answer:?}");
}

#[tokio::test]
async fn trailers_after_a_chunked_body_are_not_part_of_it() {
    let s = setup(stateless).await;
    let body = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
        "params": {"name": "whoami", "arguments": {}}})
    .to_string();
    let answer = chunks(
        &s,
        body.as_bytes(),
        9,
        Duration::from_millis(5),
        "x-checksum: 1234\r\n",
    )
    .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert!(answer.body.contains("alice"), "{answer:?}");
}
