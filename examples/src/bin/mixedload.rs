//! Mixed-load generator: good and bad requests, chosen at random with a fixed seed, against a
//! protected `files` server (or a load balancer in front of several), on 127.0.0.1 only and
//! bounded in time.
//!
//! ```text
//! # Start the development authorization server in-process and 3 stateless `files` replicas
//! # as child processes, all trusting it, then load the load balancer at --target:
//! cargo run --release -p mcp-guard-examples --bin mixedload -- \
//!     --target http://127.0.0.1:8080/mcp --replicas 3 --replica-ports 8081,8082,8083 \
//!     --kill-replica 1 --seconds 30 --concurrency 16
//!
//! # Or load servers started elsewhere: they must trust --issuer-url (printed at start).
//! cargo run --release -p mcp-guard-examples --bin mixedload -- \
//!     --target http://127.0.0.1:8080/mcp --issuer-url http://127.0.0.1:9400 --server-pid 1234
//! ```
//!
//! Every request is one of these categories; each has one expected outcome, and every
//! response is checked against it:
//!
//! | category | request | expected |
//! |---|---|---|
//! | `valid_whoami` | valid token, `whoami` | 200 and a result naming the token's subject |
//! | `valid_write` | valid token with `files:write`, `write_file` | 200 and "… wrote N bytes to …" |
//! | `expired` | expired token (`exp` an hour ago) | 401 `invalid_token` |
//! | `wrong_audience` | token for another resource | 401 `invalid_token` |
//! | `insufficient_scope` | `files:read` token, `write_file` | 403 `insufficient_scope` |
//! | `garbage` | a bearer value that is not a JWT | 401 `invalid_token` |
//! | `unknown_key` | token signed by another key of the same issuer (unknown `kid`) | 401 `invalid_token` |
//! | `no_token` | no `Authorization`, `whoami` | 401 challenge without `error` |
//!
//! Every 401 and 403 must also name, in `resource_metadata`, the metadata URL of the public
//! URL: the servers behind a load balancer must know the URL clients see.
//!
//! With `--sessions` the replicas also serve legacy (2025-11-25) sessions, with ids prefixed
//! by their index (`r1-…`) for the load balancer's routing, and each worker keeps one
//! session:
//!
//! | category | request | expected |
//! |---|---|---|
//! | `session_call` | the session owner's token, `whoami` in the session | 200 naming the owner; after a 404 (the session's replica is gone) one new session and the call again, 200 |
//! | `session_foreign` | another subject's valid token in the session | 404 (another's session is unknown to the caller) |
//! | `session_bad_token` | an expired token in the session | 401 `invalid_token` |
//!
//! A 2xx for a bad request is a false accept; anything but the expected 2xx for a good one
//! (another status or a transport error) is a false refusal, a lost good request. The run
//! passes (exit status 0) when there is no false accept and every response is the expected
//! one, a replica's kill included, and no session was lost before the kill. The development
//! authorization server counts, per replica process, the metadata and key set fetches it
//! serves (the connection's peer is traced to its process through `/proc/net/tcp` and
//! `/proc/<pid>/fd`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use clap::Parser;
use mcp_guard::dev::DevAuthServer;

#[derive(Debug, Parser)]
#[command(
    name = "mixedload",
    about = "Bounded mixed good/bad-token load against a protected files server (127.0.0.1 only)",
    long_about = None
)]
struct Cli {
    /// MCP URL to send requests to (a load balancer or one server); loopback only.
    #[arg(long)]
    target: String,

    /// Public MCP URL: the resource the servers are configured with and the audience of the
    /// tokens (default: --target).
    #[arg(long)]
    public_url: Option<String>,

    /// Where the in-process development authorization server listens; its issuer
    /// identifier. Port 0 picks a free port.
    #[arg(long, default_value = "http://127.0.0.1:0")]
    issuer_url: String,

    /// Seconds of load.
    #[arg(long, default_value_t = 20)]
    seconds: u64,

    /// Concurrent connections.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,

    /// Seed of the category choice.
    #[arg(long, default_value_t = 42)]
    seed: u64,

    /// Distinct tokens minted per token category (they are reused at random).
    #[arg(long, default_value_t = 64)]
    distinct_tokens: usize,

    /// Start this many `files` replicas as child processes (stateless, trusting the
    /// development authorization server, `--resource` the public URL).
    #[arg(long, default_value_t = 0)]
    replicas: usize,

    /// Ports of the replicas (127.0.0.1), comma-separated; free ports when not given.
    #[arg(long, value_delimiter = ',')]
    replica_ports: Vec<u16>,

    /// The `files` binary (default: next to this one).
    #[arg(long)]
    files_bin: Option<PathBuf>,

    /// Directory for the replicas' logs (default: a new temporary directory).
    #[arg(long)]
    log_dir: Option<PathBuf>,

    /// File to write the replicas' process ids to, one per line (for the caller's cleanup).
    #[arg(long)]
    pid_file: Option<PathBuf>,

    /// `--key-cooldown-secs` of the replicas.
    #[arg(long, default_value_t = 10)]
    key_cooldown_secs: u64,

    /// Send SIGTERM to this replica (0-based index) during the load.
    #[arg(long)]
    kill_replica: Option<usize>,

    /// When to kill it, seconds into the load (default: half of --seconds).
    #[arg(long)]
    kill_at_secs: Option<f64>,

    /// Process id of a server started elsewhere, for its memory figures (repeatable).
    #[arg(long = "server-pid")]
    server_pids: Vec<u32>,

    /// Bound on waiting for the servers to be ready, in seconds.
    #[arg(long, default_value_t = 30)]
    wait_secs: u64,

    /// The kill window, reported (not tolerated: every outcome must be the expected one):
    /// from the SIGTERM to this many seconds after the replica exited.
    #[arg(long, default_value_t = 1.0)]
    kill_window_secs: f64,

    /// Session mode: the replicas serve legacy (2025-11-25) sessions besides stateless
    /// requests, each creating session ids prefixed `r<index>-` (the load balancer routes a
    /// session to its replica by that prefix), and the mix adds session clients.
    #[arg(long)]
    sessions: bool,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Category {
    ValidWhoami,
    ValidWrite,
    Expired,
    WrongAudience,
    InsufficientScope,
    Garbage,
    UnknownKey,
    NoToken,
    SessionCall,
    SessionForeign,
    SessionBadToken,
}

impl Category {
    /// The mix; the session categories only in session mode (they come last, so the
    /// stateless mix draws the same sequence in both modes' first eight).
    const ALL: [(Category, u64); 11] = [
        (Category::ValidWhoami, 30),
        (Category::ValidWrite, 20),
        (Category::Expired, 9),
        (Category::WrongAudience, 9),
        (Category::InsufficientScope, 9),
        (Category::Garbage, 8),
        (Category::UnknownKey, 8),
        (Category::NoToken, 7),
        (Category::SessionCall, 25),
        (Category::SessionForeign, 4),
        (Category::SessionBadToken, 4),
    ];

    fn session(self) -> bool {
        matches!(
            self,
            Category::SessionCall | Category::SessionForeign | Category::SessionBadToken
        )
    }

    fn name(self) -> &'static str {
        match self {
            Category::ValidWhoami => "valid_whoami",
            Category::ValidWrite => "valid_write",
            Category::Expired => "expired",
            Category::WrongAudience => "wrong_audience",
            Category::InsufficientScope => "insufficient_scope",
            Category::Garbage => "garbage",
            Category::UnknownKey => "unknown_key",
            Category::NoToken => "no_token",
            Category::SessionCall => "session_call",
            Category::SessionForeign => "session_foreign",
            Category::SessionBadToken => "session_bad_token",
        }
    }

    fn expect(self) -> &'static str {
        match self {
            Category::ValidWhoami | Category::ValidWrite => "200 + tool result",
            Category::InsufficientScope => "403 insufficient_scope",
            Category::NoToken => "401 (no error)",
            Category::SessionCall => "200 + tool result in its session",
            Category::SessionForeign => "404 (another's session)",
            _ => "401 invalid_token",
        }
    }

    fn good(self) -> bool {
        matches!(
            self,
            Category::ValidWhoami | Category::ValidWrite | Category::SessionCall
        )
    }

    fn tool(self) -> &'static str {
        match self {
            Category::ValidWrite | Category::InsufficientScope => "write_file",
            _ => "whoami",
        }
    }
}

/// splitmix64: a small, seedable generator (the choice of categories is reproducible).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn category(&mut self, sessions: bool) -> Category {
        let mix = Category::ALL
            .iter()
            .filter(|(c, _)| sessions || !c.session());
        let total: u64 = mix.clone().map(|(_, w)| w).sum();
        let mut x = self.next() % total;
        for &(c, w) in mix {
            if x < w {
                return c;
            }
            x -= w;
        }
        Category::ValidWhoami
    }
}

/// Tokens minted in advance, per category, with the subject of each valid one.
struct Tokens {
    whoami: Vec<(String, String)>,
    write: Vec<(String, String)>,
    expired: Vec<String>,
    wrong_audience: Vec<String>,
    read_only: Vec<String>,
    garbage: Vec<String>,
    unknown_key: Vec<String>,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn mint(dev: &DevAuthServer, forger: &DevAuthServer, audience: &str, n: usize) -> Tokens {
    let now = unix_now();
    let ttl = Duration::from_secs(3600);
    let valid = |prefix: &str, scope: &str| -> Vec<(String, String)> {
        (0..n)
            .map(|i| {
                let sub = format!("{prefix}-{i}");
                let t = dev
                    .token()
                    .subject(&sub)
                    .client_id("mixedload")
                    .scope(scope)
                    .audience(audience)
                    .expires_in(ttl)
                    .sign();
                (t, sub)
            })
            .collect()
    };
    let mut garbage: Vec<String> = (0..n)
        .map(|i| format!("garbage{i:04}-not-a-jwt-{}", now.wrapping_mul(i as u64 + 7)))
        .collect();
    // JWT-shaped but not JSON inside.
    garbage.extend((0..n).map(|i| format!("eyJub3Q.anNvbi{i}.c2lnbmF0dXJl")));
    Tokens {
        whoami: valid("reader", "files:read"),
        write: valid("writer", "files:read files:write"),
        expired: (0..n)
            .map(|i| {
                dev.token()
                    .subject(&format!("expired-{i}"))
                    .scope("files:read files:write")
                    .audience(audience)
                    .claim("iat", now - 7200)
                    .claim("exp", now - 3600)
                    .sign()
            })
            .collect(),
        wrong_audience: (0..n)
            .map(|i| {
                dev.token()
                    .subject(&format!("elsewhere-{i}"))
                    .scope("files:read files:write")
                    .audience("http://127.0.0.1:9/another-resource/mcp")
                    .expires_in(ttl)
                    .sign()
            })
            .collect(),
        read_only: valid("readonly", "files:read")
            .into_iter()
            .map(|(t, _)| t)
            .collect(),
        garbage,
        unknown_key: (0..n)
            .map(|i| {
                forger
                    .token()
                    .subject(&format!("forged-{i}"))
                    .scope("files:read files:write")
                    .audience(audience)
                    .expires_in(ttl)
                    .sign()
            })
            .collect(),
    }
}

fn require_loopback(what: &str, url: &str) -> Result<url::Url, BoxError> {
    let u = url::Url::parse(url).map_err(|e| format!("{what} `{url}`: {e}"))?;
    let ok = u.scheme() == "http"
        && match u.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            None => false,
        };
    if !ok {
        return Err(format!(
            "{what} `{url}` is not an http URL on a loopback address; mixedload only loads 127.0.0.1"
        )
        .into());
    }
    Ok(u)
}

/// `http://host:port/.well-known/oauth-protected-resource/path` of an MCP URL.
fn metadata_url(mcp: &url::Url) -> String {
    let path = mcp.path().trim_end_matches('/');
    format!(
        "{}/.well-known/oauth-protected-resource{}",
        mcp.origin().ascii_serialization(),
        path
    )
}

// ---------------------------------------------------------------------------------------
// Key-fetch accounting at the development authorization server.

#[derive(Default)]
struct FetchLog {
    /// (replica label, pid) of the processes to attribute fetches to.
    processes: Mutex<Vec<(String, u32)>>,
    /// (seconds since start, path, process label).
    fetches: Mutex<Vec<(f64, String, String)>>,
    start: Mutex<Option<Instant>>,
}

async fn count_fetches(
    State((log, server)): State<(Arc<FetchLog>, SocketAddr)>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
    next: Next,
) -> Response {
    let path = req.uri().path().to_owned();
    let processes = log
        .processes
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let who = owner_of(peer, server, &processes).unwrap_or_else(|| format!("other ({peer})"));
    let at = log
        .start
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .map_or(0.0, |s| s.elapsed().as_secs_f64());
    log.fetches
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push((at, path, who));
    next.run(req).await
}

/// The process (among `processes`) owning the client end of the TCP connection from `peer`
/// to `server`.
fn owner_of(peer: SocketAddr, server: SocketAddr, processes: &[(String, u32)]) -> Option<String> {
    let hex = |a: SocketAddr| match a {
        SocketAddr::V4(v4) => format!(
            "{:08X}:{:04X}",
            u32::from_le_bytes(v4.ip().octets()),
            v4.port()
        ),
        SocketAddr::V6(_) => String::new(),
    };
    let (local, remote) = (hex(peer), hex(server));
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    let inode = table.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        (f.len() > 9 && f[1] == local && f[2] == remote).then(|| f[9].to_owned())
    })?;
    let target = format!("socket:[{inode}]");
    processes.iter().find_map(|(label, pid)| {
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .ok()?
            .flatten()
            .any(|e| std::fs::read_link(e.path()).is_ok_and(|l| l.to_string_lossy() == target))
            .then(|| label.clone())
    })
}

// ---------------------------------------------------------------------------------------
// Server processes.

struct Replica {
    label: String,
    port: u16,
    child: Child,
    log: PathBuf,
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit(')').next()?.split_whitespace().collect();
    let u: f64 = fields.get(11)?.parse().ok()?;
    let s: f64 = fields.get(12)?.parse().ok()?;
    Some((u + s) / 100.0)
}

fn free_port() -> Result<u16, BoxError> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

async fn wait_ok(http: &reqwest::Client, url: &str, until: Instant) -> Result<(), BoxError> {
    loop {
        if let Ok(r) = http.get(url).send().await
            && r.status().is_success()
        {
            return Ok(());
        }
        if Instant::now() >= until {
            return Err(format!("{url} did not answer 200 in time").into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// ---------------------------------------------------------------------------------------
// Load.

#[derive(Debug, Default, Clone)]
struct CategoryStats {
    requests: u64,
    expected: u64,
    unexpected: u64,
    /// Status code (0 = transport error) → count.
    statuses: BTreeMap<u16, u64>,
    /// 2xx for a bad request.
    false_accepts: u64,
    /// Non-2xx or transport error for a good request.
    false_refusals: u64,
    /// Good requests, before and after the kill: (requests, as expected).
    before_kill: (u64, u64),
    after_kill: (u64, u64),
}

#[derive(Debug, Default)]
struct WorkerStats {
    categories: BTreeMap<Category, CategoryStats>,
    /// X-Upstream header value → count.
    upstreams: BTreeMap<String, u64>,
    /// (seconds into the load, category, status, detail) of unexpected outcomes.
    unexpected: Vec<(f64, Category, u16, String)>,
    /// Seconds into the load of every unexpected outcome, and whether it was a false refusal.
    unexpected_times: Vec<(f64, bool)>,
    /// Sessions initialized (first ones and re-initializations).
    sessions_opened: u64,
    /// Seconds into the load of each re-initialization after a 404, and whether it came
    /// before the kill (a session lost while every replica was up: a routing fault).
    reinitialized: Vec<(f64, bool)>,
}

struct Shared {
    target: String,
    tokens: Tokens,
    metadata: String,
    start: Instant,
    end: Instant,
    kill_at: Option<Instant>,
    sessions: bool,
}

/// A worker's legacy session: opened with its own token, re-opened after a 404.
struct Session {
    /// (token, subject) of the session's owner.
    own: (String, String),
    /// A valid token of another subject.
    foreign: String,
    /// An expired token of the same issuer.
    expired: String,
    /// The session id, once initialized.
    id: Option<String>,
    next_request: u64,
}

/// The legacy protocol revision, with `initialize` and `Mcp-Session-Id`.
const LEGACY: &str = "2025-11-25";

/// One POST in a session; (status, WWW-Authenticate, X-Upstream, session id header, body).
async fn session_post(
    http: &reqwest::Client,
    target: &str,
    token: &str,
    session: Option<&str>,
    body: String,
) -> (u16, String, String, String, String) {
    let mut req = http
        .post(target)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", LEGACY)
        .bearer_auth(token)
        .body(body);
    if let Some(id) = session {
        req = req.header("mcp-session-id", id);
    }
    match req.send().await {
        Ok(r) => {
            let h = |name: &str| {
                r.headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned()
            };
            let (challenge, upstream, id) =
                (h("www-authenticate"), h("x-upstream"), h("mcp-session-id"));
            let status = r.status().as_u16();
            let text = r.text().await.unwrap_or_default();
            (status, challenge, upstream, id, text)
        }
        Err(e) => (
            0,
            String::new(),
            String::new(),
            String::new(),
            format!("transport error: {e}"),
        ),
    }
}

/// Opens the worker's session (`initialize`, then `notifications/initialized`); the failing
/// step's status and body on failure.
async fn open_session(
    http: &reqwest::Client,
    shared: &Shared,
    session: &mut Session,
    stats: &mut WorkerStats,
) -> Result<(), (u16, String)> {
    let init = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"mixedload","version":"0"}}}"#;
    let (status, _, upstream, id, text) =
        session_post(http, &shared.target, &session.own.0, None, init.to_owned()).await;
    if !upstream.is_empty() {
        *stats.upstreams.entry(upstream).or_default() += 1;
    }
    if status != 200 || id.is_empty() || !text.contains("\"result\"") {
        return Err((status, format!("initialize: {text}")));
    }
    let note = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
    let (status, _, upstream, _, text) = session_post(
        http,
        &shared.target,
        &session.own.0,
        Some(&id),
        note.to_owned(),
    )
    .await;
    if !upstream.is_empty() {
        *stats.upstreams.entry(upstream).or_default() += 1;
    }
    if status != 202 {
        return Err((status, format!("notifications/initialized: {text}")));
    }
    stats.sessions_opened += 1;
    session.id = Some(id);
    session.next_request = 1;
    Ok(())
}

/// A session category's request: `whoami` in the worker's session with its own token
/// (re-initializing once after a 404, the transport's answer for a session its replica no
/// longer has), with another subject's token, or with an expired one. Returns (status, as
/// expected, WWW-Authenticate, body, X-Upstream).
async fn session_request(
    http: &reqwest::Client,
    shared: &Shared,
    category: Category,
    session: &mut Session,
    stats: &mut WorkerStats,
) -> (u16, bool, String, String, String) {
    if session.id.is_none()
        && let Err((status, text)) = open_session(http, shared, session, stats).await
    {
        return (status, false, String::new(), text, String::new());
    }
    let token = match category {
        Category::SessionForeign => session.foreign.clone(),
        Category::SessionBadToken => session.expired.clone(),
        _ => session.own.0.clone(),
    };
    let mut reopened = false;
    loop {
        let n = session.next_request;
        session.next_request += 1;
        let call = format!(
            r#"{{"jsonrpc":"2.0","id":{n},"method":"tools/call","params":{{"name":"whoami","arguments":{{}}}}}}"#
        );
        let (status, challenge, upstream, _, text) =
            session_post(http, &shared.target, &token, session.id.as_deref(), call).await;
        if category == Category::SessionCall && status == 404 && !reopened {
            // The session's replica is gone: the specified recovery is a new session.
            let at = shared.start.elapsed().as_secs_f64();
            let before_kill = shared.kill_at.is_none_or(|k| Instant::now() < k);
            stats.reinitialized.push((at, before_kill));
            session.id = None;
            reopened = true;
            if let Err((status, text)) = open_session(http, shared, session, stats).await {
                return (status, false, challenge, text, upstream);
            }
            continue;
        }
        let has_metadata =
            challenge.contains(&format!("resource_metadata=\"{}\"", shared.metadata));
        let ok = match category {
            Category::SessionCall => {
                let sub = &session.own.1;
                status == 200
                    && text.contains("\"result\"")
                    && !text.contains("\"isError\":true")
                    && text.contains(&format!("\\\"sub\\\":\\\"{sub}\\\""))
            }
            Category::SessionForeign => status == 404,
            _ => status == 401 && challenge.contains("error=\"invalid_token\"") && has_metadata,
        };
        return (status, ok, challenge, text, upstream);
    }
}

fn body(tool: &str, args: &str) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"{tool}","arguments":{args},"_meta":{{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{{}}}}}}}}"#
    )
}

async fn worker(shared: Arc<Shared>, seed: u64, index: usize) -> WorkerStats {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    let mut rng = Rng(seed);
    let mut stats = WorkerStats::default();
    let t = &shared.tokens;
    let mut session = Session {
        own: t.whoami[index % t.whoami.len()].clone(),
        foreign: t.write[index % t.write.len()].0.clone(),
        expired: t.expired[index % t.expired.len()].clone(),
        id: None,
        next_request: 1,
    };
    loop {
        let sent = Instant::now();
        if sent >= shared.end {
            break;
        }
        let category = rng.category(shared.sessions);
        let (status, ok, challenge, text) = if category.session() {
            let (status, ok, challenge, text, upstream) =
                session_request(&http, &shared, category, &mut session, &mut stats).await;
            if !upstream.is_empty() {
                *stats.upstreams.entry(upstream).or_default() += 1;
            }
            (status, ok, challenge, text)
        } else {
            let (token, subject): (Option<&str>, Option<&str>) = match category {
                Category::ValidWhoami => {
                    let (tok, sub) = &t.whoami[rng.below(t.whoami.len())];
                    (Some(tok), Some(sub))
                }
                Category::ValidWrite => {
                    let (tok, sub) = &t.write[rng.below(t.write.len())];
                    (Some(tok), Some(sub))
                }
                Category::Expired => (Some(&t.expired[rng.below(t.expired.len())]), None),
                Category::WrongAudience => (
                    Some(&t.wrong_audience[rng.below(t.wrong_audience.len())]),
                    None,
                ),
                Category::InsufficientScope => {
                    (Some(&t.read_only[rng.below(t.read_only.len())]), None)
                }
                Category::Garbage => (Some(&t.garbage[rng.below(t.garbage.len())]), None),
                Category::UnknownKey => {
                    (Some(&t.unknown_key[rng.below(t.unknown_key.len())]), None)
                }
                Category::NoToken
                | Category::SessionCall
                | Category::SessionForeign
                | Category::SessionBadToken => (None, None),
            };
            let tool = category.tool();
            // One file per subject: the store stays bounded, so memory figures show the guard's.
            let path = format!("/notes/{}.txt", subject.unwrap_or("none"));
            let args = if tool == "write_file" {
                format!(r#"{{"path":"{path}","content":"hello from mixedload"}}"#)
            } else {
                "{}".to_owned()
            };
            let mut req = http
                .post(&shared.target)
                .header("content-type", "application/json")
                .header("accept", "application/json, text/event-stream")
                .header("mcp-protocol-version", "2026-07-28")
                .header("mcp-method", "tools/call")
                .header("mcp-name", tool)
                .body(body(tool, &args));
            if let Some(tok) = token {
                req = req.bearer_auth(tok);
            }
            let (status, challenge, upstream, text) = match req.send().await {
                Ok(r) => {
                    let status = r.status().as_u16();
                    let h = |name: &str| {
                        r.headers()
                            .get(name)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_owned()
                    };
                    let (challenge, upstream) = (h("www-authenticate"), h("x-upstream"));
                    let text = r.text().await.unwrap_or_default();
                    (status, challenge, upstream, text)
                }
                Err(e) => (
                    0,
                    String::new(),
                    String::new(),
                    format!("transport error: {e}"),
                ),
            };
            if !upstream.is_empty() {
                *stats.upstreams.entry(upstream).or_default() += 1;
            }
            let has_metadata =
                challenge.contains(&format!("resource_metadata=\"{}\"", shared.metadata));
            let ok = match category {
                Category::ValidWhoami => {
                    status == 200
                        && text.contains("\"result\"")
                        && !text.contains("\"isError\":true")
                        && subject
                            .is_some_and(|s| text.contains(&format!("\\\"sub\\\":\\\"{s}\\\"")))
                }
                Category::ValidWrite => {
                    status == 200
                        && !text.contains("\"isError\":true")
                        && subject.is_some_and(|s| {
                            text.contains(&format!("{s} wrote 20 bytes to {path}"))
                        })
                }
                Category::InsufficientScope => {
                    status == 403
                        && challenge.contains("error=\"insufficient_scope\"")
                        && challenge.contains("files:write")
                        && has_metadata
                }
                Category::NoToken => {
                    status == 401
                        && challenge.starts_with("Bearer ")
                        && !challenge.contains("error=")
                        && has_metadata
                }
                _ => status == 401 && challenge.contains("error=\"invalid_token\"") && has_metadata,
            };
            (status, ok, challenge, text)
        };
        let s = stats.categories.entry(category).or_default();
        s.requests += 1;
        *s.statuses.entry(status).or_default() += 1;
        let success = (200..300).contains(&status);
        if ok {
            s.expected += 1;
        } else {
            s.unexpected += 1;
            let false_refusal = category.good() && !success;
            if false_refusal {
                s.false_refusals += 1;
            }
            stats.unexpected_times.push((
                sent.duration_since(shared.start).as_secs_f64(),
                false_refusal,
            ));
            if !category.good() && success {
                s.false_accepts += 1;
            }
            if stats.unexpected.len() < 50 {
                let detail = if challenge.is_empty() {
                    // One line: nginx's HTML error pages span several.
                    text.split_whitespace()
                        .collect::<Vec<_>>()
                        .join(" ")
                        .chars()
                        .take(160)
                        .collect()
                } else {
                    format!("WWW-Authenticate: {challenge}")
                };
                stats.unexpected.push((
                    sent.duration_since(shared.start).as_secs_f64(),
                    category,
                    status,
                    detail,
                ));
            }
        }
        if category.good() {
            let after = shared.kill_at.is_some_and(|k| sent >= k);
            let slot = if after {
                &mut s.after_kill
            } else {
                &mut s.before_kill
            };
            slot.0 += 1;
            slot.1 += u64::from(ok);
        }
    }
    stats
}

// ---------------------------------------------------------------------------------------

fn main() -> Result<(), BoxError> {
    let cli = Cli::parse();
    // Two threads: the load and the in-process authorization server share them with the
    // servers under test on small machines.
    let failed = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(run(cli))?;
    if failed {
        std::process::exit(1);
    }
    Ok(())
}

async fn run(cli: Cli) -> Result<bool, BoxError> {
    let target = require_loopback("--target", &cli.target)?;
    let public = require_loopback(
        "--public-url",
        cli.public_url.as_deref().unwrap_or(&cli.target),
    )?;
    let issuer_listen = require_loopback("--issuer-url", &cli.issuer_url)?;
    if cli.seconds == 0 || cli.seconds > 3600 || cli.concurrency == 0 || cli.concurrency > 1024 {
        return Err("--seconds must be 1..=3600 and --concurrency 1..=1024".into());
    }
    let setup_started = Instant::now();
    let setup_deadline = setup_started + Duration::from_secs(cli.wait_secs);
    let public_s = public.as_str().trim_end_matches('/').to_owned();

    // The development authorization server, in-process, with fetch accounting.
    let host = issuer_listen.host_str().unwrap_or("127.0.0.1");
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let listener = tokio::net::TcpListener::bind((host, issuer_listen.port().unwrap_or(0))).await?;
    let as_addr = listener.local_addr()?;
    let issuer = format!("http://{as_addr}");
    let dev = DevAuthServer::builder().build(&issuer)?;
    let forger = DevAuthServer::builder().build(&issuer)?;
    let log = Arc::new(FetchLog::default());
    let app = dev
        .router()
        .layer(axum::middleware::from_fn_with_state(
            (log.clone(), as_addr),
            count_fetches,
        ))
        .into_make_service_with_connect_info::<SocketAddr>();
    let as_task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    println!("mixedload: development authorization server (issuer) {issuer}");

    // Replicas.
    let mut replicas: Vec<Replica> = Vec::new();
    let mut processes: Vec<(String, u32)> = cli
        .server_pids
        .iter()
        .map(|p| (format!("pid {p}"), *p))
        .collect();
    if cli.replicas > 0 {
        let files_bin = mcp_guard_examples::bench::files_binary(cli.files_bin.as_ref())?;
        let log_dir = match &cli.log_dir {
            Some(d) => d.clone(),
            None => std::env::temp_dir().join(format!("mixedload-{}", std::process::id())),
        };
        std::fs::create_dir_all(&log_dir)?;
        for i in 0..cli.replicas {
            let port = match cli.replica_ports.get(i) {
                Some(p) => *p,
                None => free_port()?,
            };
            let log_path = log_dir.join(format!("replica-{i}.log"));
            let out = std::fs::File::create(&log_path)?;
            let mode = if cli.sessions {
                vec!["--session-id-prefix".to_owned(), format!("r{i}-")]
            } else {
                vec!["--stateless".to_owned()]
            };
            let child = Command::new(&files_bin)
                .args(&mode)
                .args(["--issuer", &issuer, "--resource", &public_s])
                .args(["--listen", &format!("127.0.0.1:{port}")])
                .args(["--key-cooldown-secs", &cli.key_cooldown_secs.to_string()])
                // Per-request audit lines and rmcp's per-request info lines are off: at
                // thousands of requests per second they would cost more than the requests.
                .env("RUST_LOG", "info,mcp_guard::audit=off,rmcp=warn")
                .stdin(Stdio::null())
                .stdout(Stdio::from(out.try_clone()?))
                .stderr(Stdio::from(out))
                .spawn()?;
            let label = format!("replica {i} (127.0.0.1:{port})");
            processes.push((label.clone(), child.id()));
            replicas.push(Replica {
                label,
                port,
                child,
                log: log_path,
            });
        }
        if let Some(pf) = &cli.pid_file {
            let pids: String = replicas
                .iter()
                .map(|r| format!("{}\n", r.child.id()))
                .collect();
            std::fs::write(pf, pids)?;
        }
        println!(
            "mixedload: started {} files replicas ({} --issuer {issuer} --resource {public_s}), logs in {}",
            replicas.len(),
            if cli.sessions {
                "--session-id-prefix r<index>-"
            } else {
                "--stateless"
            },
            log_dir.display()
        );
    }
    *log.processes.lock().unwrap_or_else(|p| p.into_inner()) = processes.clone();

    // Wait for every replica, then for the target.
    let probe = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()?;
    for r in &mut replicas {
        let url = format!(
            "http://127.0.0.1:{}/.well-known/oauth-protected-resource{}",
            r.port,
            public.path().trim_end_matches('/')
        );
        if let Some(status) = r.child.try_wait()? {
            return Err(format!(
                "{} exited at start ({status}); see {}",
                r.label,
                r.log.display()
            )
            .into());
        }
        wait_ok(&probe, &url, setup_deadline).await?;
    }
    let metadata = metadata_url(&public);
    let target_metadata = metadata_url(&target);
    wait_ok(&probe, &target_metadata, setup_deadline).await?;
    println!(
        "mixedload: servers ready after {:.1} s; minting tokens",
        setup_started.elapsed().as_secs_f64()
    );

    let tokens = mint(&dev, &forger, &public_s, cli.distinct_tokens.max(1));

    // The load.
    let rss = |pid: u32| mcp_guard_examples::bench::proc_status_kib(pid, "VmRSS:");
    let sample = || -> Vec<Option<u64>> { processes.iter().map(|(_, p)| rss(*p)).collect() };
    let rss_ready = sample();
    let cpu_before: Vec<Option<f64>> = processes.iter().map(|(_, p)| cpu_seconds(*p)).collect();
    let start = Instant::now();
    *log.start.lock().unwrap_or_else(|p| p.into_inner()) = Some(start);
    let end = start + Duration::from_secs(cli.seconds);
    let kill_after = Duration::from_secs_f64(
        cli.kill_at_secs
            .unwrap_or(cli.seconds as f64 / 2.0)
            .clamp(0.0, cli.seconds as f64),
    );
    let kill = cli.kill_replica.filter(|i| *i < replicas.len());
    let shared = Arc::new(Shared {
        target: target.as_str().to_owned(),
        tokens,
        metadata: metadata.clone(),
        start,
        end,
        kill_at: kill.map(|_| start + kill_after),
        sessions: cli.sessions,
    });
    println!(
        "mixedload: {} s, {} connections, seed {}, target {}{}",
        cli.seconds,
        cli.concurrency,
        cli.seed,
        shared.target,
        kill.map_or(String::new(), |i| format!(
            "; SIGTERM to {} at {:.1} s",
            replicas[i].label,
            kill_after.as_secs_f64()
        ))
    );
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..cli.concurrency {
        let shared = shared.clone();
        let seed = cli.seed.wrapping_mul(1_000_003).wrapping_add(w as u64);
        tasks.spawn(worker(shared, seed, w));
    }
    // RSS of every server every 500 ms, for the maximum after warm-up and the ¾ point.
    let sampler = {
        let pids: Vec<u32> = processes.iter().map(|(_, p)| *p).collect();
        tokio::spawn(async move {
            let mut series: Vec<(f64, Vec<Option<u64>>)> = Vec::new();
            while Instant::now() < end {
                series.push((
                    start.elapsed().as_secs_f64(),
                    pids.iter()
                        .map(|p| mcp_guard_examples::bench::proc_status_kib(*p, "VmRSS:"))
                        .collect(),
                ));
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            series
        })
    };

    // Memory samples: 1 s in, at the middle (just before the kill), at the end.
    tokio::time::sleep_until((start + Duration::from_secs(1)).into()).await;
    let rss_1s = sample();
    let middle = start
        + kill_after
            .min(Duration::from_secs(cli.seconds) / 2)
            .max(Duration::from_secs(1));
    tokio::time::sleep_until(middle.into()).await;
    let rss_middle = sample();
    let mut killed: Option<(usize, f64, Option<f64>, String)> = None;
    if let Some(i) = kill {
        tokio::time::sleep_until((start + kill_after).into()).await;
        let pid = replicas[i].child.id();
        let at = start.elapsed().as_secs_f64();
        let status = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()?;
        if !status.success() {
            return Err(format!("kill -TERM {pid} failed").into());
        }
        println!(
            "mixedload: SIGTERM sent to {} (pid {pid}) at {at:.2} s",
            replicas[i].label
        );
        // Wait for it to exit (bounded by the end of the load).
        let mut exited = None;
        let mut how = String::from("still running at the end of the load");
        while Instant::now() < end {
            if let Some(st) = replicas[i].child.try_wait()? {
                exited = Some(start.elapsed().as_secs_f64());
                how = st.to_string();
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        killed = Some((i, at, exited, how));
    }
    let mut all = WorkerStats::default();
    while let Some(r) = tasks.join_next().await {
        let w = r?;
        for (c, s) in w.categories {
            let a = all.categories.entry(c).or_default();
            a.requests += s.requests;
            a.expected += s.expected;
            a.unexpected += s.unexpected;
            a.false_accepts += s.false_accepts;
            a.false_refusals += s.false_refusals;
            a.before_kill.0 += s.before_kill.0;
            a.before_kill.1 += s.before_kill.1;
            a.after_kill.0 += s.after_kill.0;
            a.after_kill.1 += s.after_kill.1;
            for (st, n) in s.statuses {
                *a.statuses.entry(st).or_default() += n;
            }
        }
        for (u, n) in w.upstreams {
            *all.upstreams.entry(u).or_default() += n;
        }
        all.unexpected.extend(w.unexpected);
        all.unexpected_times.extend(w.unexpected_times);
        all.sessions_opened += w.sessions_opened;
        all.reinitialized.extend(w.reinitialized);
    }
    let elapsed = start.elapsed().as_secs_f64();
    let rss_end = sample();
    let series = sampler.await.unwrap_or_default();
    let at = |t: f64, k: usize| series.iter().find(|(s, _)| *s >= t).and_then(|(_, v)| v[k]);
    let max_after_1s = |k: usize| {
        series
            .iter()
            .filter(|(s, _)| *s >= 1.0)
            .filter_map(|(_, v)| v[k])
            .max()
    };
    let cpu_after: Vec<Option<f64>> = processes.iter().map(|(_, p)| cpu_seconds(*p)).collect();
    let peaks: Vec<Option<u64>> = processes
        .iter()
        .map(|(_, p)| mcp_guard_examples::bench::proc_status_kib(*p, "VmHWM:"))
        .collect();
    all.unexpected.sort_by(|a, b| a.0.total_cmp(&b.0));

    // Report.
    let total: u64 = all.categories.values().map(|s| s.requests).sum();
    let false_accepts: u64 = all.categories.values().map(|s| s.false_accepts).sum();
    let false_refusals: u64 = all.categories.values().map(|s| s.false_refusals).sum();
    let unexpected: u64 = all.categories.values().map(|s| s.unexpected).sum();
    println!();
    println!("=== mixedload report ===");
    println!(
        "target {} (public resource {public_s}), issuer {issuer}, seed {}, {} connections",
        shared.target, cli.seed, cli.concurrency
    );
    println!(
        "{total} requests in {elapsed:.1} s ({:.0} req/s), every response checked",
        total as f64 / elapsed
    );
    if !all.upstreams.is_empty() {
        println!();
        println!(
            "responses by upstream (nginx X-Upstream; \"a, b\" = retried on the next replica):"
        );
        for (u, n) in &all.upstreams {
            println!("  {u:<40} {n}");
        }
    }
    let fetches = log
        .fetches
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    println!();
    println!("requests served by the development authorization server, per process:");
    println!("| process | discovery metadata | JWKS | JWKS fetch times (s into the load) |");
    println!("|---|---:|---:|---|");
    let mut labels: Vec<String> = processes.iter().map(|(l, _)| l.clone()).collect();
    for (_, _, who) in &fetches {
        if !labels.contains(who) {
            labels.push(who.clone());
        }
    }
    for l in &labels {
        let mine: Vec<&(f64, String, String)> = fetches.iter().filter(|f| &f.2 == l).collect();
        let meta = mine
            .iter()
            .filter(|f| f.1.starts_with("/.well-known/"))
            .count();
        let jwks: Vec<String> = mine
            .iter()
            .filter(|f| f.1 == "/jwks")
            .map(|f| format!("{:.2}", f.0))
            .collect();
        println!("| {l} | {meta} | {} | {} |", jwks.len(), jwks.join(", "));
    }
    if !processes.is_empty() {
        let mib =
            |v: &Option<u64>| v.map_or("—".to_owned(), |k| format!("{:.1}", k as f64 / 1024.0));
        println!();
        println!("server memory (RSS MiB) and CPU:");
        println!(
            "| process | ready | 1 s | middle | ¾ | end | max from 1 s on | peak (VmHWM) | CPU s during load |"
        );
        println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        for (k, (l, _)) in processes.iter().enumerate() {
            let cpu = match (cpu_before[k], cpu_after[k]) {
                (Some(a), Some(b)) => format!("{:.2}", b - a),
                _ => "—".to_owned(),
            };
            println!(
                "| {l} | {} | {} | {} | {} | {} | {} | {} | {cpu} |",
                mib(&rss_ready[k]),
                mib(&rss_1s[k]),
                mib(&rss_middle[k]),
                mib(&at(cli.seconds as f64 * 0.75, k)),
                mib(&rss_end[k]),
                mib(&max_after_1s(k)),
                mib(&peaks[k]),
            );
        }
    }
    if !all.unexpected.is_empty() {
        println!();
        println!(
            "unexpected outcomes (the first {} of {unexpected}, by time):",
            all.unexpected.len().min(30)
        );
        for (at, c, st, detail) in all.unexpected.iter().take(30) {
            println!("  {at:7.3} s  {:<18} status {st}  {detail}", c.name());
        }
    }
    println!();
    println!("| category | expected | requests | as expected | unexpected | statuses |");
    println!("|---|---|---:|---:|---:|---|");
    for (c, s) in &all.categories {
        let statuses: Vec<String> = s
            .statuses
            .iter()
            .map(|(st, n)| {
                if *st == 0 {
                    format!("transport error ×{n}")
                } else {
                    format!("{st} ×{n}")
                }
            })
            .collect();
        println!(
            "| {} | {} | {} | {} | {} | {} |",
            c.name(),
            c.expect(),
            s.requests,
            s.expected,
            s.unexpected,
            statuses.join(", ")
        );
    }
    println!();
    println!("false accepts (2xx for a bad or missing token): {false_accepts}");
    println!("false refusals (anything but the expected 2xx for a good request): {false_refusals}");
    println!("unexpected outcomes in all: {unexpected}");
    if let Some((i, at, exited, how)) = &killed {
        let good = |f: fn(&CategoryStats) -> (u64, u64)| {
            all.categories
                .iter()
                .filter(|(c, _)| c.good())
                .fold((0, 0), |acc, (_, s)| (acc.0 + f(s).0, acc.1 + f(s).1))
        };
        let (b, bo) = good(|s| s.before_kill);
        let (a, ao) = good(|s| s.after_kill);
        println!(
            "{} killed (SIGTERM) at {at:.2} s; exited at {}; {how}",
            replicas[*i].label,
            exited.map_or("—".to_owned(), |e| format!("{e:.2} s"))
        );
        println!(
            "good requests before the kill: {bo}/{b} succeeded; after the kill: {ao}/{a} succeeded"
        );
    }
    // Every outcome must be the expected one, the kill included: a good request lost at
    // the kill is a failure like any other. The kill window is reported to place them.
    let window = killed
        .as_ref()
        .map(|(_, at, exited, _)| (*at, exited.unwrap_or(elapsed) + cli.kill_window_secs));
    let inside = |t: f64| window.is_some_and(|(a, b)| t >= a && t <= b);
    let refusals_in = all
        .unexpected_times
        .iter()
        .filter(|(t, r)| *r && inside(*t))
        .count() as u64;
    let unexpected_in = all
        .unexpected_times
        .iter()
        .filter(|(t, _)| inside(*t))
        .count() as u64;
    let unexpected_out = unexpected - unexpected_in;
    let reinit_before_kill = all.reinitialized.iter().filter(|(_, b)| *b).count();
    if cli.sessions {
        let times: Vec<f64> = all.reinitialized.iter().map(|(t, _)| *t).collect();
        let span = match (
            times.iter().copied().reduce(f64::min),
            times.iter().copied().reduce(f64::max),
        ) {
            (Some(a), Some(b)) => format!(", from {a:.2} s to {b:.2} s"),
            _ => String::new(),
        };
        println!(
            "sessions: {} initialized; {} re-initialized after a 404 for a session its replica no longer had{span}; {reinit_before_kill} of them before the kill (must be 0)",
            all.sessions_opened,
            all.reinitialized.len(),
        );
    }
    let failed = false_accepts > 0 || unexpected > 0 || reinit_before_kill > 0 || total == 0;
    println!();
    if let Some((a, b)) = window {
        println!(
            "kill window {a:.2} s to {b:.2} s (SIGTERM to exit + {:.1} s): {unexpected_in} unexpected outcomes in it, of which {refusals_in} false refusals; outside it: {unexpected_out}",
            cli.kill_window_secs
        );
    }
    let verdict = if failed { "FAIL" } else { "PASS" };
    println!(
        "result: {verdict} (false accepts {false_accepts}, must be 0; unexpected outcomes {unexpected}, must be 0, lost good requests {false_refusals} among them{})",
        if cli.sessions {
            format!("; sessions lost before the kill {reinit_before_kill}, must be 0")
        } else {
            String::new()
        }
    );
    drop(replicas);
    as_task.abort();
    Ok(failed)
}
