//! Real MCP clients through the whole OAuth journey against the quickstart server, in both of its
//! postures. Four stacks:
//!
//! - the official Python SDK (`mcp` on PyPI), its `OAuthClientProvider`;
//! - the official TypeScript SDK v1 (`@modelcontextprotocol/sdk` on npm);
//! - the official TypeScript SDK v2 (`@modelcontextprotocol/client` on npm), which negotiates
//!   the 2026-07-28 protocol and steps up by itself;
//! - the MCP Inspector in CLI mode (`@modelcontextprotocol/inspector` on npm), one CLI run per
//!   MCP call, doing discovery, registration, authorization, its own loopback callback, the token
//!   exchange and the step-up itself (Linux only: elsewhere it would open a real browser). Left
//!   to itself it asks for all of `scopes_supported`, not the challenged scope, and so never
//!   meets the 403; its server entry therefore asks for `files:read`, as a user sets it.
//!
//! Two postures: sign-in (every request needs a token, so the first request is challenged) and
//! anonymous access (`QuickstartOptions::allow_anonymous`: the client first calls the `#[public]`
//! tool `about` without a token, and the first challenge answers the call of a protected tool).
//!
//! Each journey: the 401, protected resource metadata, authorization server metadata, dynamic
//! client registration, authorization code with PKCE and a resource indicator for the challenged
//! scope, an allowed call, the 403 `insufficient_scope` of a tool needing more, the step-up to
//! the union of the scopes, the retried call, and reading back. Every scope a client asks for is
//! checked against what the metadata advertises: none asks for `files:admin`, `files:shared` or
//! `offline_access`. One more run records what the Inspector asks for when it is not told.
//!
//! One more client: `requests-oauth2client` (PyPI), a third-party OAuth client with DPoP
//! (RFC 9449), against the quickstart with `--dpop`, with and without server nonces: it
//! registers, gets a DPoP-bound token with its own key and proof, and calls a tool with a fresh
//! proof each time (answering the `use_dpop_nonce` challenge by itself); a replayed proof and
//! the token presented as Bearer are refused.
//!
//! The clients are the scripts under `tests/sdk/`; each prints one `step: detail` line per step.
//! The SDKs are installed on first use at the versions pinned there, into `target/sdk/` (a
//! Python venv, one `npm ci` directory per npm stack); this needs `python3` (with venv and pip)
//! and `node` with `npm` on the PATH, and the package registries once. The journeys themselves
//! contact only 127.0.0.1.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use mcp_guard_examples::quickstart::{self, Quickstart, QuickstartOptions};
use serde_json::Value;

const INSTALL_TIMEOUT: Duration = Duration::from_secs(300);
const JOURNEY_TIMEOUT: Duration = Duration::from_secs(120);

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate is inside the workspace")
        .to_path_buf()
}

fn sdk_sources() -> PathBuf {
    workspace().join("tests").join("sdk")
}

/// `target/sdk` (or `$CARGO_TARGET_DIR/sdk`).
fn sdk_work_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|t| {
            if t.is_absolute() {
                t
            } else {
                workspace().join(t)
            }
        })
        .unwrap_or_else(|| workspace().join("target"));
    target.join("sdk")
}

/// What a finished (or killed) child process left.
struct Finished {
    success: bool,
    timed_out: bool,
    status: String,
    stdout: String,
    stderr: String,
}

impl Finished {
    fn describe(&self) -> String {
        format!(
            "status: {}{}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status,
            if self.timed_out {
                " (killed: timed out)"
            } else {
                ""
            },
            self.stdout,
            self.stderr
        )
    }
}

/// Runs `cmd` to completion, killing it after `timeout`.
fn run(mut cmd: Command, timeout: Duration) -> Finished {
    let shown = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {shown}: {e}"));
    let drain = |mut pipe: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = pipe.read_to_end(&mut buf);
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let out = drain(Box::new(child.stdout.take().expect("piped stdout")));
    let err = drain(Box::new(child.stderr.take().expect("piped stderr")));
    let deadline = Instant::now() + timeout;
    let mut timed_out = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                timed_out = true;
                let _ = child.kill();
                break child.wait().expect("waiting for the killed child");
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => panic!("waiting for {shown}: {e}"),
        }
    };
    Finished {
        success: status.success() && !timed_out,
        timed_out,
        status: status.to_string(),
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}

fn run_ok(what: &str, cmd: Command, timeout: Duration) {
    let shown = format!("{cmd:?}");
    let done = run(cmd, timeout);
    assert!(done.success, "{what} failed: {shown}\n{}", done.describe());
}

/// A lock between processes (several `cargo test` runs sharing `target/`): a directory that
/// exists while held. One left behind by a killed process is taken over after fifteen minutes
/// (longer than an install may take).
struct DirLock(PathBuf);

impl DirLock {
    fn acquire(path: PathBuf) -> Self {
        let deadline = Instant::now() + 2 * INSTALL_TIMEOUT + Duration::from_secs(60);
        loop {
            match std::fs::create_dir(&path) {
                Ok(()) => return Self(path),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let stale = std::fs::metadata(&path)
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|t| SystemTime::now().duration_since(t).ok())
                        .is_some_and(|age| age > 3 * INSTALL_TIMEOUT);
                    if stale {
                        let _ = std::fs::remove_dir(&path);
                        continue;
                    }
                    assert!(
                        Instant::now() < deadline,
                        "{} is still held by another process; remove it if no test is running",
                        path.display()
                    );
                    std::thread::sleep(Duration::from_millis(250));
                }
                Err(e) => panic!("cannot create the lock {}: {e}", path.display()),
            }
        }
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// Runs `install` unless `marker` already records `wanted` (the pinned manifest's content).
fn install_once(name: &str, marker: &Path, wanted: &str, install: impl FnOnce()) {
    let work = sdk_work_dir();
    std::fs::create_dir_all(&work).expect("create target/sdk");
    let _lock = DirLock::acquire(work.join(format!("{name}.lock")));
    if std::fs::read_to_string(marker).is_ok_and(|m| m == wanted) {
        return;
    }
    let _ = std::fs::remove_file(marker);
    install();
    std::fs::write(marker, wanted).expect("write the install marker");
}

fn venv_python(venv: &Path) -> PathBuf {
    if cfg!(windows) {
        venv.join("Scripts").join("python.exe")
    } else {
        venv.join("bin").join("python")
    }
}

/// The venv with the pinned Python SDK; its interpreter.
fn python_sdk() -> PathBuf {
    python_venv("python")
}

/// A venv (`target/sdk/{folder}-venv`) with `tests/sdk/{folder}/requirements.txt` installed;
/// its interpreter.
fn python_venv(folder: &'static str) -> PathBuf {
    static READY: Mutex<BTreeMap<&'static str, PathBuf>> = Mutex::new(BTreeMap::new());
    let mut ready = READY.lock().unwrap_or_else(|e| e.into_inner());
    ready
        .entry(folder)
        .or_insert_with(|| {
            let requirements = sdk_sources().join(folder).join("requirements.txt");
            let wanted = std::fs::read_to_string(&requirements).expect("read requirements.txt");
            let venv = sdk_work_dir().join(format!("{folder}-venv"));
            let python = venv_python(&venv);
            install_once(folder, &venv.join(".mcp-guard-installed"), &wanted, || {
                if !python.exists() {
                    let _ = std::fs::remove_dir_all(&venv);
                    let base = std::env::var_os("PYTHON").unwrap_or_else(|| "python3".into());
                    let mut cmd = Command::new(base);
                    cmd.arg("-m").arg("venv").arg(&venv);
                    run_ok("creating the Python venv", cmd, INSTALL_TIMEOUT);
                }
                let mut cmd = Command::new(&python);
                cmd.args([
                    "-m",
                    "pip",
                    "install",
                    "--disable-pip-version-check",
                    "-q",
                    "-r",
                ])
                .arg(&requirements);
                run_ok(
                    &format!("installing tests/sdk/{folder}"),
                    cmd,
                    INSTALL_TIMEOUT,
                );
            });
            python
        })
        .clone()
}

fn npm() -> Command {
    if cfg!(windows) {
        let mut c = Command::new("cmd");
        c.args(["/C", "npm"]);
        c
    } else {
        Command::new("npm")
    }
}

/// The directory with the npm packages pinned in `tests/sdk/{folder}` installed by `npm ci`,
/// and that folder's scripts (`*.mjs`) copied beside its `node_modules`.
fn node_sdk(folder: &'static str) -> PathBuf {
    static READY: Mutex<BTreeMap<&'static str, PathBuf>> = Mutex::new(BTreeMap::new());
    let sources = sdk_sources().join(folder);
    let dir = {
        // Held while installing: one npm install at a time in this process.
        let mut ready = READY.lock().unwrap_or_else(|e| e.into_inner());
        ready
            .entry(folder)
            .or_insert_with(|| {
                let lock = std::fs::read_to_string(sources.join("package-lock.json"))
                    .expect("read package-lock.json");
                let manifest = std::fs::read_to_string(sources.join("package.json"))
                    .expect("read package.json");
                let dir = sdk_work_dir().join(folder);
                let wanted = format!("{manifest}\n{lock}");
                install_once(folder, &dir.join(".mcp-guard-installed"), &wanted, || {
                    std::fs::create_dir_all(&dir).expect("create the npm directory in target/sdk");
                    for f in ["package.json", "package-lock.json"] {
                        std::fs::copy(sources.join(f), dir.join(f))
                            .expect("copy the npm manifests");
                    }
                    let mut cmd = npm();
                    cmd.args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
                        // The Inspector's postinstall only installs its clients in a source
                        // checkout; say so rather than rely on its detection.
                        .env("INSPECTOR_SKIP_CLIENT_INSTALL", "1")
                        .current_dir(&dir);
                    run_ok(
                        &format!("installing tests/sdk/{folder} (npm ci)"),
                        cmd,
                        INSTALL_TIMEOUT,
                    );
                });
                dir
            })
            .clone()
    };
    // The scripts are copied on every run so edits take effect; Node resolves their imports
    // from the directory they are in.
    for entry in std::fs::read_dir(&sources).expect("list the npm stack's sources") {
        let path = entry.expect("a directory entry").path();
        if path.extension().is_some_and(|e| e == "mjs") {
            std::fs::copy(&path, dir.join(path.file_name().expect("a file name")))
                .unwrap_or_else(|e| panic!("copy {}: {e}", path.display()));
        }
    }
    dir
}

/// The quickstart's two postures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Posture {
    /// Every request needs a token.
    SignIn,
    /// Discovery and the `#[public]` tool without a token; the rest is challenged.
    Anonymous,
}

impl Posture {
    /// The journey scripts' MODE argument.
    fn mode(self) -> &'static str {
        match self {
            Self::SignIn => "sign-in",
            Self::Anonymous => "anonymous",
        }
    }
}

async fn start_quickstart(posture: Posture) -> Quickstart {
    let mcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let auth = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut options = QuickstartOptions::new(mcp.local_addr().unwrap(), auth.local_addr().unwrap());
    options.auto_approve = true;
    options.allow_anonymous = posture == Posture::Anonymous;
    quickstart::start(&options, mcp, auth)
        .await
        .expect("quickstart starts")
}

/// Runs a journey script against the running quickstart, off the runtime's workers.
async fn run_journey(mut cmd: Command) -> Finished {
    // Only 127.0.0.1 is contacted: no proxy may be in the way.
    for var in [
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost")
        .env("PYTHONUNBUFFERED", "1")
        .env("PYTHONDONTWRITEBYTECODE", "1");
    tokio::task::spawn_blocking(move || run(cmd, JOURNEY_TIMEOUT))
        .await
        .expect("the journey runner")
}

/// The client stacks, each a script under `tests/sdk/`.
#[derive(Clone, Copy, Debug)]
enum Stack {
    Python,
    TypeScript,
    TypeScriptV2,
    Inspector,
}

impl Stack {
    fn title(self) -> &'static str {
        match self {
            Self::Python => "MCP Python SDK",
            Self::TypeScript => "MCP TypeScript SDK",
            Self::TypeScriptV2 => "MCP TypeScript SDK v2",
            Self::Inspector => "MCP Inspector CLI",
        }
    }

    /// Where the journey writes once stepped up.
    fn write_path(self) -> &'static str {
        match self {
            Self::Python => "/notes/python-sdk.txt",
            Self::TypeScript => "/notes/typescript-sdk.txt",
            Self::TypeScriptV2 => "/notes/typescript-sdk-v2.txt",
            Self::Inspector => "/notes/mcp-inspector.txt",
        }
    }

    /// The command running the journey script, once the stack is installed (blocking).
    fn command(self) -> Command {
        let node = |folder: &'static str| {
            let dir = node_sdk(folder);
            let mut cmd = Command::new("node");
            cmd.arg(dir.join("journey.mjs")).current_dir(&dir);
            cmd
        };
        match self {
            Self::Python => {
                let mut cmd = Command::new(python_sdk());
                cmd.arg(sdk_sources().join("python").join("journey.py"))
                    .current_dir(sdk_work_dir());
                cmd
            }
            Self::TypeScript => node("node"),
            Self::TypeScriptV2 => node("node-v2"),
            Self::Inspector => node("inspector"),
        }
    }
}

/// Installs the stack if needed, runs its script with `mode` against `qs` and prints the
/// transcript.
async fn run_stack(stack: Stack, mode: &str, qs: &Quickstart, content: &str) -> Finished {
    let mut cmd = tokio::task::spawn_blocking(move || stack.command())
        .await
        .unwrap_or_else(|e| panic!("installing the {}: {e}", stack.title()));
    cmd.arg(mode).arg(&qs.mcp_url).arg(content);
    let done = run_journey(cmd).await;
    println!(
        "--- {} journey ({mode}) ---\n{}{}",
        stack.title(),
        done.stdout,
        if done.success {
            String::new()
        } else {
            done.describe()
        }
    );
    done
}

/// One whole journey: a quickstart in `posture`, the stack's script, the transcript checked.
async fn journey(stack: Stack, posture: Posture) {
    let qs = start_quickstart(posture).await;
    let advertised = advertised_scopes(&qs).await;
    let content = format!("written by the {} to {}", stack.title(), qs.mcp_url);
    let done = run_stack(stack, posture.mode(), &qs, &content).await;
    check_journey(&qs, &done, posture, stack.write_path(), &content);
    check_requested_scopes(&done, &advertised);
    qs.stop().await.unwrap();
}

/// The transcript's lines, as `(step, detail)`.
struct Transcript {
    lines: Vec<(String, String)>,
    at: usize,
}

impl Transcript {
    fn parse(stdout: &str) -> Self {
        let lines = stdout
            .lines()
            .map(|l| match l.split_once(": ") {
                Some((s, d)) => (s.to_owned(), d.to_owned()),
                None => (l.to_owned(), String::new()),
            })
            .collect();
        Self { lines, at: 0 }
    }

    /// The detail of the next `step` line after the previous match that satisfies `ok`.
    fn next(&mut self, step: &str, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let found = self.lines[self.at..]
            .iter()
            .position(|(s, d)| s == step && ok(d));
        match found {
            Some(i) => {
                self.at += i + 1;
                self.lines[self.at - 1].1.clone()
            }
            None => panic!(
                "no `{step}:` line {what} after line {} of the transcript",
                self.at
            ),
        }
    }

    fn count(&self, step: &str) -> usize {
        self.lines.iter().filter(|(s, _)| s == step).count()
    }

    /// The index of the first `step` line.
    fn first(&self, step: &str) -> Option<usize> {
        self.lines.iter().position(|(s, _)| s == step)
    }

    /// The details of every `step` line.
    fn all(&self, step: &str) -> impl Iterator<Item = &str> {
        self.lines
            .iter()
            .filter(move |(s, _)| s == step)
            .map(|(_, d)| d.as_str())
    }
}

fn field<'a>(detail: &'a str, name: &str) -> Option<&'a str> {
    detail
        .split(' ')
        .find_map(|part| part.strip_prefix(name)?.strip_prefix('='))
}

/// The value of `scope="…"` in a transcript line.
fn quoted_scope(detail: &str) -> Option<&str> {
    let rest = &detail[detail.find(r#"scope=""#)? + r#"scope=""#.len()..];
    rest.split_once('"').map(|(scope, _)| scope)
}

/// The quickstart's `scopes_supported`, from its protected resource metadata.
async fn advertised_scopes(qs: &Quickstart) -> Vec<String> {
    let url = qs.server.guard.metadata_url().to_string();
    let metadata: Value = reqwest::get(&url)
        .await
        .and_then(reqwest::Response::error_for_status)
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
        .json()
        .await
        .unwrap_or_else(|e| panic!("the metadata at {url}: {e}"));
    let scopes: Vec<String> = serde_json::from_value(metadata["scopes_supported"].clone())
        .unwrap_or_else(|e| panic!("scopes_supported in {metadata}: {e}"));
    assert_eq!(
        scopes,
        ["files:read", "files:write"],
        "the journeys expect the quickstart to advertise the baseline and files:write only"
    );
    scopes
}

/// What no client may ask for when the metadata advertises only `files:read files:write`.
const NEVER_REQUESTED: [&str; 3] = ["files:admin", "files:shared", "offline_access"];

/// Every scope the client asked for, at each authorization request and each token request
/// that names one, is one the metadata advertises, and none of [`NEVER_REQUESTED`].
fn check_requested_scopes(done: &Finished, advertised: &[String]) {
    let t = Transcript::parse(&done.stdout);
    let authorize: Vec<&str> = t.all("authorize").collect();
    assert!(!authorize.is_empty(), "no authorization request recorded");
    let token_requests = t.all("token-request").filter(|d| d.contains(r#"scope=""#));
    for detail in authorize.iter().copied().chain(token_requests) {
        let scope =
            quoted_scope(detail).unwrap_or_else(|| panic!("no scope recorded in {detail:?}"));
        for s in scope.split(' ') {
            assert!(
                !NEVER_REQUESTED.contains(&s),
                "a client asked for `{s}`, which nothing challenged for: {detail}"
            );
            assert!(
                advertised.iter().any(|a| a == s),
                "a client asked for `{s}`, which the metadata does not advertise \
                 ({advertised:?}): {detail}"
            );
        }
    }
}

/// The first challenge: the 401 with the metadata and the baseline scope. In the sign-in
/// posture it answers the connection's first request; in the anonymous posture the call of a
/// protected tool.
fn check_challenge(t: &mut Transcript, posture: Posture, metadata_url: &str) {
    let challenge = t.next("unauthorized", "with the 401 challenge", |d| {
        d.contains("401 WWW-Authenticate: Bearer ")
            && d.contains(r#"scope="files:read""#)
            && d.contains(&format!(r#"resource_metadata="{metadata_url}""#))
    });
    let rpc = field(&challenge, "rpc");
    match posture {
        Posture::SignIn => assert!(
            matches!(rpc, Some("initialize" | "server/discover")),
            "the sign-in posture challenges the first request, not {rpc:?}: {challenge}"
        ),
        Posture::Anonymous => {
            assert_eq!(
                rpc,
                Some("tools/call"),
                "the anonymous posture challenges a tool call, not connecting: {challenge}"
            );
            assert_ne!(
                field(&challenge, "tool"),
                Some("about"),
                "the public tool was challenged: {challenge}"
            );
        }
    }
}

/// The registration, once for the whole journey; the client id.
fn check_discovery_and_registration(t: &mut Transcript, qs: &Quickstart) -> String {
    let metadata_url = qs.server.guard.metadata_url().to_string();
    let issuer = qs.auth.issuer().to_owned();
    // Protected resource metadata, then authorization server metadata.
    t.next("resource-metadata", "fetching the metadata", |d| {
        d == format!("GET {metadata_url} -> 200")
    });
    t.next(
        "auth-server-metadata",
        "fetching the issuer's metadata",
        |d| {
            d == format!("GET {issuer}/.well-known/oauth-authorization-server -> 200")
                || d == format!("GET {issuer}/.well-known/openid-configuration -> 200")
        },
    );
    // Dynamic client registration, once for the whole journey.
    t.next("registration", "at the registration endpoint", |d| {
        d == format!("POST {issuer}/register -> 201")
    });
    let registered = t.next("registered", "with a client id", |d| {
        d.starts_with("client_id=dev-")
    });
    assert_eq!(
        t.count("registered"),
        1,
        "the client registered more than once"
    );
    field(&registered, "client_id").unwrap().to_owned()
}

/// An authorization request: PKCE, the resource indicator, state, the registered client.
fn authorize_for(qs: &Quickstart, client_id: &str) -> impl Fn(&str) -> bool + use<> {
    let (resource, client_id) = (qs.mcp_url.clone(), client_id.to_owned());
    move |d: &str| {
        field(d, "resource") == Some(resource.as_str())
            && field(d, "code_challenge_method") == Some("S256")
            && field(d, "state") == Some("yes")
            && field(d, "client_id") == Some(client_id.as_str())
    }
}

/// The user agent followed the authorization server's redirect back to the client.
fn browser(d: &str) -> bool {
    (d.starts_with("302 ") || d.starts_with("303 ") || d.starts_with("307 "))
        && d.contains("to the redirect_uri with code, state, iss")
}

/// Checks every step of a journey's transcript against the server it ran against.
fn check_journey(qs: &Quickstart, done: &Finished, posture: Posture, path: &str, content: &str) {
    assert!(done.success, "the journey failed\n{}", done.describe());
    let metadata_url = qs.server.guard.metadata_url().to_string();
    let mut t = Transcript::parse(&done.stdout);

    // 0. Anonymous access: the public tool answers before any token exists.
    if posture == Posture::Anonymous {
        let about = t.next("about", "with the public tool's answer", |_| true);
        assert_eq!(about, "200 without a token: mcp-guard example file store");
        let at = t.first("about").unwrap();
        for later in ["unauthorized", "registered", "token"] {
            assert!(
                t.first(later).is_some_and(|i| i > at),
                "`about` was not called before the first `{later}:` line"
            );
        }
    }
    // 1. The 401 without a token, naming the metadata and the baseline scope.
    check_challenge(&mut t, posture, &metadata_url);
    // 2.-4. Metadata, authorization server metadata, registration.
    let client_id = check_discovery_and_registration(&mut t, qs);
    // 5. Authorization code with PKCE and the resource indicator, for the challenged scope.
    let authorize = authorize_for(qs, &client_id);
    t.next(
        "authorize",
        "for files:read with PKCE and the resource",
        |d| d.starts_with(r#"scope="files:read" "#) && authorize(d),
    );
    t.next("browser", "with the redirect", browser);
    t.next("token", "granting files:read", |d| {
        d.starts_with(r#"granted scope="files:read" token_type=Bearer"#)
    });
    // 6. The allowed call, made with that token.
    let who = t.next("whoami", "with the caller", |_| true);
    let who: Value = serde_json::from_str(&who).unwrap_or_else(|e| panic!("whoami: {e}: {who}"));
    assert_eq!(who["sub"], "dev-user", "{who}");
    assert_eq!(who["client_id"], client_id.as_str(), "{who}");
    assert_eq!(who["scopes"], serde_json::json!(["files:read"]), "{who}");
    // 7. The 403 of a tool needing more, naming the union of the scopes.
    t.next("forbidden", "with the insufficient_scope challenge", |d| {
        d.contains("403 WWW-Authenticate: Bearer ")
            && d.contains(r#"error="insufficient_scope""#)
            && d.contains(r#"scope="files:read files:write""#)
            && d.contains(&format!(r#"resource_metadata="{metadata_url}""#))
    });
    // 8. The step-up: authorization again, same client, for the union.
    t.next("authorize", "for the union files:read files:write", |d| {
        d.starts_with(r#"scope="files:read files:write" "#) && authorize(d)
    });
    t.next("browser", "with the step-up redirect", browser);
    t.next("token", "granting files:read files:write", |d| {
        d.starts_with(r#"granted scope="files:read files:write" token_type=Bearer"#)
    });
    // 9. The retried call succeeds, and reading back sees it.
    let wrote = t.next("write_file", "with the retried call's result", |_| true);
    assert_eq!(
        wrote,
        format!("dev-user wrote {} bytes to {path}", content.len())
    );
    let read = t.next("read_file", "reading the file back", |_| true);
    assert_eq!(read, content);
    t.next("done", "at the end", |_| true);

    // The server's side: the file is in the store.
    assert_eq!(
        qs.store.lock().unwrap().get(path).map(String::as_str),
        Some(content),
        "the server's store does not hold what the journey wrote"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_sdk_client_signs_in_steps_up_and_retries() {
    journey(Stack::Python, Posture::SignIn).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_sdk_client_signs_in_steps_up_and_retries_in_the_anonymous_posture() {
    journey(Stack::Python, Posture::Anonymous).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_typescript_sdk_client_signs_in_steps_up_and_retries() {
    journey(Stack::TypeScript, Posture::SignIn).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_typescript_sdk_client_signs_in_steps_up_and_retries_in_the_anonymous_posture() {
    journey(Stack::TypeScript, Posture::Anonymous).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_typescript_sdk_v2_client_signs_in_steps_up_and_retries() {
    journey(Stack::TypeScriptV2, Posture::SignIn).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_typescript_sdk_v2_client_signs_in_steps_up_and_retries_in_the_anonymous_posture() {
    journey(Stack::TypeScriptV2, Posture::Anonymous).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(target_os = "linux"),
    ignore = "elsewhere the Inspector would open a real browser"
)]
async fn the_mcp_inspector_cli_signs_in_steps_up_and_retries() {
    journey(Stack::Inspector, Posture::SignIn).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(target_os = "linux"),
    ignore = "elsewhere the Inspector would open a real browser"
)]
async fn the_mcp_inspector_cli_signs_in_steps_up_and_retries_in_the_anonymous_posture() {
    journey(Stack::Inspector, Posture::Anonymous).await;
}

/// Left unconfigured, the Inspector asks for a scope of its own choosing: the challenged
/// `files:read` (the MCP spec's scope selection) or every scope of `scopes_supported` (what
/// 2.12.0 does). Either way nothing the metadata does not advertise.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(target_os = "linux"),
    ignore = "elsewhere the Inspector would open a real browser"
)]
async fn the_mcp_inspector_cli_left_to_itself_asks_only_for_advertised_scopes() {
    let qs = start_quickstart(Posture::SignIn).await;
    let advertised = advertised_scopes(&qs).await;
    let done = run_stack(Stack::Inspector, "default-scope", &qs, "unused").await;
    assert!(done.success, "the journey failed\n{}", done.describe());
    let mut t = Transcript::parse(&done.stdout);
    let metadata_url = qs.server.guard.metadata_url().to_string();
    check_challenge(&mut t, Posture::SignIn, &metadata_url);
    let client_id = check_discovery_and_registration(&mut t, &qs);
    let authorize = authorize_for(&qs, &client_id);
    let asked = t.next("authorize", "with PKCE and the resource", |d| authorize(d));
    let scope = quoted_scope(&asked)
        .expect("the requested scope")
        .to_owned();
    assert!(
        scope == "files:read" || scope == advertised.join(" "),
        "the Inspector asked for neither the challenged scope nor scopes_supported: {asked}"
    );
    t.next("browser", "with the redirect", browser);
    t.next("token", "granting what was asked", |d| {
        d.starts_with(&format!(r#"granted scope="{scope}" token_type=Bearer"#))
    });
    let who = t.next("whoami", "with the caller", |_| true);
    let who: Value = serde_json::from_str(&who).unwrap_or_else(|e| panic!("whoami: {e}: {who}"));
    assert_eq!(who["client_id"], client_id.as_str(), "{who}");
    assert_eq!(
        who["scopes"],
        serde_json::json!(scope.split(' ').collect::<Vec<_>>()),
        "{who}"
    );
    t.next("done", "at the end", |_| true);
    check_requested_scopes(&done, &advertised);
    println!("the Inspector, left to itself, asked for scope=\"{scope}\"");
    qs.stop().await.unwrap();
}

/// The DPoP journey of `requests-oauth2client` against the quickstart with `--dpop` (and
/// server nonces when `nonce_secret` is given).
async fn dpop_journey(nonce_secret: Option<&str>) {
    let mcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let auth = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut options = QuickstartOptions::new(mcp.local_addr().unwrap(), auth.local_addr().unwrap());
    options.dpop = true;
    options.dpop_nonce_secret = nonce_secret.map(str::to_owned);
    let qs = quickstart::start(&options, mcp, auth)
        .await
        .expect("quickstart starts");
    let mut cmd = tokio::task::spawn_blocking(|| {
        let mut cmd = Command::new(python_venv("dpop"));
        cmd.arg(sdk_sources().join("dpop").join("journey.py"))
            .current_dir(sdk_work_dir());
        cmd
    })
    .await
    .expect("installing requests-oauth2client");
    cmd.arg(&qs.mcp_url);
    let done = run_journey(cmd).await;
    let mode = if nonce_secret.is_some() {
        "with server nonces"
    } else {
        "without nonces"
    };
    println!(
        "--- requests-oauth2client DPoP journey ({mode}) ---\n{}",
        done.stdout
    );
    assert!(
        done.success,
        "the DPoP journey failed:\n{}",
        done.describe()
    );
    let mut t = Transcript::parse(&done.stdout);
    let algs = "ES256 ES384 EdDSA PS256 RS256";
    let c = t.next("challenge", "", |d| d.starts_with("401 "));
    assert!(
        c.contains("Bearer ") && c.contains(&format!(r#"DPoP scope="files:read", algs="{algs}""#)),
        "{c}"
    );
    t.next("metadata", "", |d| {
        d == format!("dpop_signing_alg_values_supported={algs}")
    });
    t.next("as-metadata", "", |d| {
        d == format!("dpop_signing_alg_values_supported={algs}")
    });
    t.next("registered", "", |_| true);
    let token = t.next("token", "", |d| {
        d.starts_with("DPoPToken token_type=DPoP jkt=")
    });
    let jkt = field(&token, "jkt").expect("jkt").to_owned();
    let nonce = if nonce_secret.is_some() { "yes" } else { "no" };
    for n in ["call-1", "call-2"] {
        let call = t.next(n, "", |d| d.starts_with(&format!("200 nonce={nonce} ")));
        assert!(call.contains("files:read"), "{call}");
    }
    let replay = t.next("replay", "", |d| d.starts_with("401 DPoP "));
    assert!(
        replay.contains(r#"error="invalid_dpop_proof""#) && replay.contains("already used"),
        "{replay}"
    );
    let bearer = t.next("as-bearer", "", |d| d.starts_with("401 Bearer "));
    assert!(
        bearer.contains(r#"error="invalid_token""#) && bearer.contains("bound to a key"),
        "{bearer}"
    );
    assert!(!jkt.is_empty());
    qs.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_oauth2client_gets_a_dpop_token_and_calls_with_fresh_proofs() {
    dpop_journey(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_oauth2client_follows_the_server_nonce_challenge() {
    dpop_journey(Some("a secret of at least thirty-two bytes")).await;
}
