//! End-to-end load benchmark: the same trivial tool served by a bare rmcp server and by the
//! guarded server, in one run, under the same load generator, on 127.0.0.1 only and bounded
//! in time.
//!
//! ```text
//! cargo run --release -p mcp-guard-examples --bin loadbench -- --seconds 5 --concurrency 16 --runs 3
//! ```
//!
//! Each server runs as its own child process (this binary with `serve`), so that its CPU time
//! (`/proc/<pid>/stat`) and peak RSS (`VmHWM`) are its own. Phases, in one run:
//! `bare` (no guard, no token), `guarded, tokens reused` (each connection presents one token:
//! cache hits), `guarded, every token new` (every request a token never seen: the signature is
//! verified each time). Tokens are ES256, minted in advance by the development authorization
//! server, which also serves the key set.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use mcp_guard::dev::DevAuthServer;
use mcp_guard::{Guard, Issuer, guarded, protected};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::transport::streamable_http_server::{
    StreamableHttpServerConfig, StreamableHttpService, session::never::NeverSessionManager,
};
use rmcp::{ServerHandler, tool, tool_handler, tool_router};

mcp_guard::scopes! {
    /// The benchmark's one scope.
    pub BenchScopes {
        /// Call the echo tool.
        #[baseline]
        BENCH = "bench:call",
    }
}

/// The trivial tool, unprotected.
#[derive(Clone)]
struct Bare {
    tool_router: ToolRouter<Self>,
}

#[tool_router]
impl Bare {
    /// Answers `pong`.
    #[tool]
    async fn ping(&self) -> String {
        "pong".to_owned()
    }
}

#[tool_handler(router = self.tool_router, name = "bench", version = "0.1.0")]
impl ServerHandler for Bare {}

/// The same tool, protected.
#[derive(Clone, mcp_guard::ProtectedResource)]
#[protected_resource(scopes = BenchScopes)]
struct Protected {
    tool_router: ToolRouter<Self>,
}

#[guarded]
#[tool_router]
impl Protected {
    /// Answers `pong`.
    #[protected(scopes = BENCH)]
    #[tool]
    async fn ping(&self) -> String {
        "pong".to_owned()
    }
}

#[guarded]
#[tool_handler(router = self.tool_router, name = "bench", version = "0.1.0")]
impl ServerHandler for Protected {}

#[derive(Debug, Parser)]
#[command(name = "loadbench", about = "Bare vs guarded rmcp server under the same load", long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Option<Cmd>,

    /// Seconds of load per phase.
    #[arg(long, default_value_t = 5)]
    seconds: u64,

    /// Concurrent connections.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,

    /// Runs (the report gives the median of each figure).
    #[arg(long, default_value_t = 3)]
    runs: usize,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Serve one server (used by the benchmark itself).
    Serve {
        /// `bare` or `guarded`.
        #[arg(long)]
        mode: String,
        /// Issuer (guarded mode).
        #[arg(long)]
        issuer: Option<String>,
    },
}

const MCP_BODY: &str = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"ping","arguments":{},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}"#;

fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let cli = Cli::parse();
    match cli.command {
        Some(Cmd::Serve { mode, issuer }) => {
            // One worker thread per core, as a production server would have.
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?
                .block_on(serve(&mode, issuer))
        }
        None => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?
            .block_on(bench(&cli)),
    }
}

async fn serve(
    mode: &str,
    issuer: Option<String>,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let resource = format!("http://{addr}/mcp");
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true);
    let app = match mode {
        "bare" => {
            let svc = StreamableHttpService::new(
                || {
                    Ok(Bare {
                        tool_router: Bare::tool_router(),
                    })
                },
                Arc::new(NeverSessionManager::default()),
                config,
            );
            axum::Router::new().route_service("/mcp", svc)
        }
        _ => {
            let server = Protected {
                tool_router: Protected::tool_router(),
            };
            let guard = Guard::builder()
                .server::<Protected>()
                .resource(&resource)
                .issuer(Issuer::discover(issuer.ok_or("--issuer is required")?))
                .build()?;
            let svc = StreamableHttpService::new(
                move || Ok(server.clone()),
                Arc::new(NeverSessionManager::default()),
                config,
            );
            guard.router(svc)
        }
    };
    println!("{resource}");
    axum::serve(listener, app).await?;
    Ok(())
}

/// A running server child.
struct ServerProcess {
    child: Child,
    url: String,
}

impl ServerProcess {
    fn start(
        mode: &str,
        issuer: Option<&str>,
    ) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        let mut cmd = Command::new(std::env::current_exe()?);
        cmd.args(["serve", "--mode", mode])
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        if let Some(i) = issuer {
            cmd.args(["--issuer", i]);
        }
        let mut child = cmd.spawn()?;
        let mut line = String::new();
        BufReader::new(child.stdout.take().ok_or("no stdout")?).read_line(&mut line)?;
        Ok(Self {
            child,
            url: line.trim().to_owned(),
        })
    }

    /// CPU seconds (user + system) so far.
    fn cpu_seconds(&self) -> f64 {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        let fields: Vec<&str> = stat
            .rsplit(')')
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .collect();
        let ticks: f64 = fields
            .get(11)
            .and_then(|u| u.parse::<f64>().ok())
            .unwrap_or(0.0)
            + fields
                .get(12)
                .and_then(|s| s.parse::<f64>().ok())
                .unwrap_or(0.0);
        ticks / 100.0
    }

    /// Peak resident set size, in MiB.
    fn peak_rss_mib(&self) -> f64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Phase {
    rps: f64,
    p50_us: f64,
    p99_us: f64,
    cpu_us_per_req: f64,
    peak_rss_mib: f64,
    errors: u64,
}

enum Tokens {
    None,
    Reused(Vec<String>),
    New(Arc<Vec<String>>),
}

async fn load(server: &ServerProcess, tokens: Tokens, seconds: u64, concurrency: usize) -> Phase {
    let deadline_warm = Instant::now() + Duration::from_millis(500);
    let start_cpu = std::cell::Cell::new(0.0);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let tokens = Arc::new(tokens);
    let measured_from = Arc::new(tokio::sync::OnceCell::<Instant>::new());
    let mut tasks = tokio::task::JoinSet::new();
    let end = deadline_warm + Duration::from_secs(seconds);
    for worker in 0..concurrency {
        let url = server.url.clone();
        let tokens = tokens.clone();
        let next = next.clone();
        tasks.spawn(async move {
            let http = reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .build()
                .expect("client");
            let mut latencies: Vec<u32> = Vec::with_capacity(100_000);
            let mut errors = 0u64;
            loop {
                let now = Instant::now();
                if now >= end {
                    break;
                }
                let token = match &*tokens {
                    Tokens::None => None,
                    Tokens::Reused(t) => Some(t[worker % t.len()].clone()),
                    Tokens::New(t) => {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        match t.get(i) {
                            Some(tok) => Some(tok.clone()),
                            None => break,
                        }
                    }
                };
                let mut req = http
                    .post(&url)
                    .header("content-type", "application/json")
                    .header("accept", "application/json, text/event-stream")
                    .header("mcp-protocol-version", "2026-07-28")
                    .header("mcp-method", "tools/call")
                    .header("mcp-name", "ping")
                    .body(MCP_BODY);
                if let Some(t) = token {
                    req = req.bearer_auth(t);
                }
                let sent = Instant::now();
                let ok = match req.send().await {
                    Ok(r) => {
                        r.status().is_success()
                            && r.bytes()
                                .await
                                .is_ok_and(|b| b.windows(4).any(|w| w == b"pong"))
                    }
                    Err(_) => false,
                };
                if sent >= deadline_warm {
                    if ok {
                        latencies.push(sent.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
                    } else {
                        errors += 1;
                    }
                }
            }
            (latencies, errors)
        });
    }
    tokio::time::sleep_until(deadline_warm.into()).await;
    start_cpu.set(server.cpu_seconds());
    let _ = measured_from.set(Instant::now());
    let mut all: Vec<u32> = Vec::new();
    let mut errors = 0;
    while let Some(r) = tasks.join_next().await {
        let (l, e) = r.expect("load task");
        all.extend(l);
        errors += e;
    }
    let elapsed = measured_from
        .get()
        .map_or(Duration::from_secs(seconds), |t| t.elapsed())
        .as_secs_f64();
    let cpu = server.cpu_seconds() - start_cpu.get();
    all.sort_unstable();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0) as f64
    };
    Phase {
        rps: all.len() as f64 / elapsed,
        p50_us: pct(0.50),
        p99_us: pct(0.99),
        cpu_us_per_req: if all.is_empty() {
            0.0
        } else {
            cpu * 1e6 / all.len() as f64
        },
        peak_rss_mib: server.peak_rss_mib(),
        errors,
    }
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values[values.len() / 2]
}

async fn bench(cli: &Cli) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let auth = DevAuthServer::builder().start(listener).await?;
    println!(
        "loadbench: {} s per phase, {} connections, {} runs, ES256 tokens; machine: {} cores",
        cli.seconds,
        cli.concurrency,
        cli.runs,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let names = ["bare", "guarded, tokens reused", "guarded, every token new"];
    let mut results: Vec<[Phase; 3]> = Vec::new();
    for run in 0..cli.runs {
        let bare = ServerProcess::start("bare", None)?;
        let guarded = ServerProcess::start("guarded", Some(auth.issuer()))?;
        let mint = |n: usize| -> Vec<String> {
            (0..n)
                .map(|i| {
                    auth.token()
                        .subject(&format!("user-{i}"))
                        .scope("bench:call")
                        .audience(&guarded.url)
                        .sign()
                })
                .collect()
        };
        let reused = mint(cli.concurrency);
        // More than the guarded server can verify in the phase at full speed on this class
        // of machine; a phase that runs out stops early and counts what it did.
        let fresh = Arc::new(mint(40_000 * cli.seconds as usize / 5));
        // Warm the guarded server's key cache.
        let _ = load(&guarded, Tokens::Reused(reused.clone()), 1, 1).await;
        let b = load(&bare, Tokens::None, cli.seconds, cli.concurrency).await;
        let r = load(
            &guarded,
            Tokens::Reused(reused),
            cli.seconds,
            cli.concurrency,
        )
        .await;
        let n = load(&guarded, Tokens::New(fresh), cli.seconds, cli.concurrency).await;
        println!(
            "run {}: {:?}",
            run + 1,
            [b.rps, r.rps, n.rps].map(|x| x.round())
        );
        results.push([b, r, n]);
    }
    let pick = |i: usize, f: fn(&Phase) -> f64| {
        median(&mut results.iter().map(|r| f(&r[i])).collect::<Vec<_>>())
    };
    let ratio = |i: usize, f: fn(&Phase) -> f64| {
        median(
            &mut results
                .iter()
                .map(|r| f(&r[i]) / f(&r[0]).max(f64::MIN_POSITIVE))
                .collect::<Vec<_>>(),
        )
    };
    println!();
    println!(
        "| phase | req/s | × bare | p50 µs | p99 µs | CPU µs/req | CPU/req − bare | peak RSS MiB | errors |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (i, name) in names.iter().enumerate() {
        let cpu_delta = median(
            &mut results
                .iter()
                .map(|r| r[i].cpu_us_per_req - r[0].cpu_us_per_req)
                .collect::<Vec<_>>(),
        );
        println!(
            "| {name} | {:.0} | {:.3} | {:.0} | {:.0} | {:.1} | {:+.1} | {:.1} | {} |",
            pick(i, |p| p.rps),
            ratio(i, |p| p.rps),
            pick(i, |p| p.p50_us),
            pick(i, |p| p.p99_us),
            pick(i, |p| p.cpu_us_per_req),
            cpu_delta,
            pick(i, |p| p.peak_rss_mib),
            results.iter().map(|r| r[i].errors).sum::<u64>(),
        );
    }
    Ok(())
}
