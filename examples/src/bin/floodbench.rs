//! Flood benchmark: the `files` example in the anonymous posture, flooded with anonymous
//! legacy sessions and slow connections, while one signed-in client works in its session.
//! Reports the server's resident memory (idle, peak, growth) and the signed-in client's
//! success rate during the flood. Loopback only, 30 s at most.
//!
//! ```sh
//! cargo build --release -p mcp-guard-examples --bin files --bin floodbench
//! target/release/floodbench --seconds 20
//! ```

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use mcp_guard::dev::DevAuthServer;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const LEGACY: &str = "2025-11-25";

#[derive(Parser, Debug)]
#[command(about = "Floods the files example with anonymous sessions and slow connections")]
struct Cli {
    /// Length of the flood, in seconds (1..=30).
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Concurrent anonymous session openers.
    #[arg(long, default_value_t = 8)]
    flooders: usize,
    /// Slow connections held open, trickling their headers or their body (0..=1000).
    #[arg(long, default_value_t = 200)]
    slow: usize,
    /// Another argument for the `files` server, e.g. `--server-arg=--max-anonymous-sessions=128`
    /// (repeatable).
    #[arg(long = "server-arg", allow_hyphen_values = true)]
    server_args: Vec<String>,
    /// The `files` binary (default: beside this one).
    #[arg(long)]
    files_bin: Option<std::path::PathBuf>,
}

fn free_port() -> Result<u16, BoxError> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

struct Server {
    child: Child,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn initialize() -> String {
    json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{
        "protocolVersion": LEGACY, "capabilities": {},
        "clientInfo": {"name": "floodbench", "version": "0"}}})
    .to_string()
}

fn post(http: &reqwest::Client, url: &str) -> reqwest::RequestBuilder {
    http.post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", LEGACY)
}

/// Opens a legacy session with `token`; its id.
async fn open_session(http: &reqwest::Client, url: &str, token: &str) -> Result<String, BoxError> {
    let resp = post(http, url)
        .bearer_auth(token)
        .body(initialize())
        .send()
        .await?;
    let sid = resp
        .headers()
        .get("mcp-session-id")
        .ok_or("no session id")?
        .to_str()?
        .to_owned();
    resp.bytes().await?;
    let note = json!({"jsonrpc":"2.0","method":"notifications/initialized"}).to_string();
    post(http, url)
        .bearer_auth(token)
        .header("mcp-session-id", &sid)
        .body(note)
        .send()
        .await?
        .bytes()
        .await?;
    Ok(sid)
}

/// One `whoami` in the signed-in session: whether it answered for `sub`.
async fn whoami(http: &reqwest::Client, url: &str, token: &str, sid: &str, sub: &str) -> bool {
    let body = json!({"jsonrpc":"2.0","id":1,"method":"tools/call",
        "params":{"name":"whoami","arguments":{}}})
    .to_string();
    let Ok(resp) = post(http, url)
        .bearer_auth(token)
        .header("mcp-session-id", sid)
        .body(body)
        .send()
        .await
    else {
        return false;
    };
    if resp.status() != 200 {
        return false;
    }
    let Ok(text) = resp.text().await else {
        return false;
    };
    // An SSE frame or plain JSON: find the JSON-RPC message.
    let json = text
        .lines()
        .filter_map(|l| l.strip_prefix("data:").map(str::trim))
        .find(|d| !d.is_empty())
        .unwrap_or(text.trim());
    let Ok(v) = serde_json::from_str::<Value>(json) else {
        return false;
    };
    v["result"]["content"][0]["text"]
        .as_str()
        .and_then(|t| serde_json::from_str::<Value>(t).ok())
        .is_some_and(|me| me["sub"] == sub)
}

#[derive(Default)]
struct Counts {
    opened: AtomicU64,
    refused: AtomicU64,
    failed: AtomicU64,
    signed_ok: AtomicU64,
    signed_failed: AtomicU64,
    slow_closed_by_server: AtomicU64,
    slow_opened: AtomicU64,
}

/// A connection that sends its request one byte per 500 ms: the headers (odd `n`) or, after
/// complete headers, the body. Reconnects when the server closes it.
async fn slow_client(addr: SocketAddr, n: usize, stop: Arc<AtomicBool>, counts: Arc<Counts>) {
    let headers_only = n % 2 == 1;
    while !stop.load(Ordering::Relaxed) {
        let Ok(mut conn) = tokio::net::TcpStream::connect(addr).await else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        counts.slow_opened.fetch_add(1, Ordering::Relaxed);
        let head = format!(
            "POST /mcp HTTP/1.1\r\nHost: {addr}\r\ncontent-type: application/json\r\n\
             accept: application/json, text/event-stream\r\nmcp-protocol-version: {LEGACY}\r\n\
             content-length: 100000\r\n\r\n"
        );
        let (now, trickle) = if headers_only {
            (String::new(), head.into_bytes())
        } else {
            (head, b"{".repeat(100_000))
        };
        if conn.write_all(now.as_bytes()).await.is_err() {
            continue;
        }
        let mut closed = false;
        for byte in trickle {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            if conn.write_all(&[byte]).await.is_err() {
                closed = true;
                break;
            }
            // A server that answers (408) or closes ends this connection.
            let mut buf = [0u8; 512];
            match tokio::time::timeout(Duration::from_millis(500), conn.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) | Ok(Ok(_)) => {
                    closed = true;
                    break;
                }
                Err(_) => {}
            }
        }
        if closed {
            counts.slow_closed_by_server.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn main() -> Result<(), BoxError> {
    let cli = Cli::parse();
    if cli.seconds == 0 || cli.seconds > 30 || cli.slow > 1000 || cli.flooders > 64 {
        return Err("--seconds must be 1..=30, --slow at most 1000, --flooders at most 64".into());
    }
    let ok = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?
        .block_on(run(cli))?;
    if !ok {
        std::process::exit(1);
    }
    Ok(())
}

async fn run(cli: Cli) -> Result<bool, BoxError> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let auth = DevAuthServer::builder().start(listener).await?;
    let files_bin = mcp_guard_examples::bench::files_binary(cli.files_bin.as_ref())?;
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
    let url = format!("http://{addr}/mcp");
    let child = Command::new(&files_bin)
        .args([
            "--allow-anonymous",
            "--issuer",
            auth.issuer(),
            "--resource",
            &url,
        ])
        .args(["--listen", &addr.to_string()])
        .args(&cli.server_args)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()?;
    let server = Server { child };
    let pid = server.child.id();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let ready_by = Instant::now() + Duration::from_secs(30);
    let metadata = format!("http://{addr}/.well-known/oauth-protected-resource/mcp");
    loop {
        if http
            .get(&metadata)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            break;
        }
        if Instant::now() > ready_by {
            return Err("the server did not start".into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let token = auth
        .token()
        .subject("alice")
        .scope("files:read")
        .audience(&url)
        .sign();
    let sid = open_session(&http, &url, &token).await?;
    for _ in 0..20 {
        whoami(&http, &url, &token, &sid, "alice").await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle = mcp_guard_examples::bench::proc_status_kib(pid, "VmRSS:").ok_or("no RSS")?;

    let stop = Arc::new(AtomicBool::new(false));
    let counts = Arc::new(Counts::default());
    let mut tasks = Vec::new();
    for _ in 0..cli.flooders {
        let (stop, counts, url) = (stop.clone(), counts.clone(), url.clone());
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()?;
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                match post(&http, &url).body(initialize()).send().await {
                    Ok(r) if r.status() == 200 && r.headers().contains_key("mcp-session-id") => {
                        counts.opened.fetch_add(1, Ordering::Relaxed);
                        let _ = r.bytes().await;
                    }
                    Ok(r) if r.status() == 503 => {
                        counts.refused.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => {
                        counts.failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    for n in 0..cli.slow {
        tasks.push(tokio::spawn(slow_client(
            addr,
            n,
            stop.clone(),
            counts.clone(),
        )));
    }
    {
        let (stop, counts, url, token, sid, http) = (
            stop.clone(),
            counts.clone(),
            url.clone(),
            token.clone(),
            sid.clone(),
            http.clone(),
        );
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                if whoami(&http, &url, &token, &sid, "alice").await {
                    counts.signed_ok.fetch_add(1, Ordering::Relaxed);
                } else {
                    counts.signed_failed.fetch_add(1, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }));
    }

    let start = Instant::now();
    let mut peak = idle;
    let mut next_report = Duration::from_secs(5);
    while start.elapsed() < Duration::from_secs(cli.seconds) {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now = mcp_guard_examples::bench::proc_status_kib(pid, "VmRSS:").unwrap_or(0);
        peak = peak.max(now);
        if start.elapsed() >= next_report {
            println!(
                "  {:>2} s: RSS {:.1} MiB, {} anonymous sessions opened, signed-in {} ok / {} failed",
                next_report.as_secs(),
                now as f64 / 1024.0,
                counts.opened.load(Ordering::Relaxed),
                counts.signed_ok.load(Ordering::Relaxed),
                counts.signed_failed.load(Ordering::Relaxed),
            );
            next_report += Duration::from_secs(5);
        }
    }
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
    }
    let end = mcp_guard_examples::bench::proc_status_kib(pid, "VmRSS:").unwrap_or(0);
    drop(server);

    let mib = |k: u64| k as f64 / 1024.0;
    let c = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let (ok, failed) = (c(&counts.signed_ok), c(&counts.signed_failed));
    println!(
        "floodbench: {} s, {} anonymous session openers, {} slow connections",
        cli.seconds, cli.flooders, cli.slow
    );
    println!(
        "anonymous sessions: {} opened, {} refused (503), {} other answers",
        c(&counts.opened),
        c(&counts.refused),
        c(&counts.failed)
    );
    println!(
        "slow connections: {} opened, {} ended by the server",
        c(&counts.slow_opened),
        c(&counts.slow_closed_by_server)
    );
    println!(
        "signed-in client: {ok} of {} requests answered correctly ({:.2} %)",
        ok + failed,
        100.0 * ok as f64 / (ok + failed).max(1) as f64
    );
    let growth = mib(peak.saturating_sub(idle));
    println!(
        "server RSS: idle {:.1} MiB, peak {:.1} MiB, end {:.1} MiB, growth {:.1} MiB (target <= 64)",
        mib(idle),
        mib(peak),
        mib(end),
        growth
    );
    Ok(failed == 0 && ok > 0 && growth <= 64.0)
}
