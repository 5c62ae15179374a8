//! The official MCP SDK clients, Python (`mcp` on PyPI) and TypeScript
//! (`@modelcontextprotocol/sdk` on npm), through the whole OAuth journey against the quickstart
//! server: the 401, protected resource metadata, authorization server metadata, dynamic client
//! registration, authorization code with PKCE and a resource indicator, an allowed call, the 403
//! `insufficient_scope` of a tool needing more, the step-up to the union of the scopes, and the
//! retried call.
//!
//! The clients are the scripts under `tests/sdk/`; each prints one `step: detail` line per step.
//! The SDKs are installed on first use at the versions pinned there, into `target/sdk/` (a
//! Python venv, an `npm ci` directory); this needs `python3` (with venv and pip) and `node` with
//! `npm` on the PATH, and the package registries once. The journeys themselves contact only
//! 127.0.0.1.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
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
fn python_sdk() -> &'static Path {
    static READY: OnceLock<PathBuf> = OnceLock::new();
    READY.get_or_init(|| {
        let requirements = sdk_sources().join("python").join("requirements.txt");
        let wanted = std::fs::read_to_string(&requirements).expect("read requirements.txt");
        let venv = sdk_work_dir().join("python-venv");
        let python = venv_python(&venv);
        install_once(
            "python",
            &venv.join(".mcp-guard-installed"),
            &wanted,
            || {
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
                run_ok("installing the Python SDK", cmd, INSTALL_TIMEOUT);
            },
        );
        python
    })
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

/// The directory with the pinned TypeScript SDK installed by `npm ci`, and the journey script
/// copied beside its `node_modules`.
fn node_sdk() -> &'static Path {
    static READY: OnceLock<PathBuf> = OnceLock::new();
    let dir = READY.get_or_init(|| {
        let sources = sdk_sources().join("node");
        let lock = std::fs::read_to_string(sources.join("package-lock.json"))
            .expect("read package-lock.json");
        let manifest =
            std::fs::read_to_string(sources.join("package.json")).expect("read package.json");
        let dir = sdk_work_dir().join("node");
        let wanted = format!("{manifest}\n{lock}");
        install_once("node", &dir.join(".mcp-guard-installed"), &wanted, || {
            std::fs::create_dir_all(&dir).expect("create target/sdk/node");
            for f in ["package.json", "package-lock.json"] {
                std::fs::copy(sources.join(f), dir.join(f)).expect("copy the npm manifests");
            }
            let mut cmd = npm();
            cmd.args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
                .current_dir(&dir);
            run_ok(
                "installing the TypeScript SDK (npm ci)",
                cmd,
                INSTALL_TIMEOUT,
            );
        });
        dir
    });
    // The script is copied on every run so edits take effect; Node resolves its imports from
    // the directory it is in.
    std::fs::copy(
        sdk_sources().join("node").join("journey.mjs"),
        dir.join("journey.mjs"),
    )
    .expect("copy journey.mjs");
    dir
}

async fn start_quickstart() -> Quickstart {
    let mcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let auth = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut options = QuickstartOptions::new(mcp.local_addr().unwrap(), auth.local_addr().unwrap());
    options.auto_approve = true;
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
}

fn field<'a>(detail: &'a str, name: &str) -> Option<&'a str> {
    detail
        .split(' ')
        .find_map(|part| part.strip_prefix(name)?.strip_prefix('='))
}

/// Checks every step of a journey's transcript against the server it ran against.
fn check_journey(qs: &Quickstart, done: &Finished, path: &str, content: &str) {
    assert!(done.success, "the journey failed\n{}", done.describe());
    let metadata_url = qs.server.guard.metadata_url().to_string();
    let issuer = qs.auth.issuer().to_owned();
    let resource = qs.mcp_url.clone();
    let mut t = Transcript::parse(&done.stdout);

    // 1. The 401 without a token, naming the metadata and the baseline scope.
    t.next("unauthorized", "with the 401 challenge", |d| {
        d.contains("401 WWW-Authenticate: Bearer ")
            && d.contains(r#"scope="files:read""#)
            && d.contains(&format!(r#"resource_metadata="{metadata_url}""#))
    });
    // 2. Protected resource metadata, 3. authorization server metadata.
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
    // 4. Dynamic client registration, once for the whole journey.
    t.next("registration", "at the registration endpoint", |d| {
        d == format!("POST {issuer}/register -> 201")
    });
    let registered = t.next("registered", "with a client id", |d| {
        d.starts_with("client_id=dev-")
    });
    let client_id = field(&registered, "client_id").unwrap().to_owned();
    assert_eq!(
        t.count("registered"),
        1,
        "the client registered more than once"
    );
    // 5. Authorization code with PKCE and the resource indicator, for the challenged scope.
    let authorize = |scope: &'static str| {
        let resource = resource.clone();
        let client_id = client_id.clone();
        move |d: &str| {
            d.starts_with(&format!(r#"scope="{scope}" "#))
                && field(d, "resource") == Some(resource.as_str())
                && field(d, "code_challenge_method") == Some("S256")
                && field(d, "state") == Some("yes")
                && field(d, "client_id") == Some(client_id.as_str())
        }
    };
    let browser = |d: &str| {
        (d.starts_with("302 ") || d.starts_with("303 ") || d.starts_with("307 "))
            && d.contains("to the redirect_uri with code, state, iss")
    };
    t.next(
        "authorize",
        "for files:read with PKCE and the resource",
        authorize("files:read"),
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
    t.next(
        "authorize",
        "for the union files:read files:write",
        authorize("files:read files:write"),
    );
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
    let python = tokio::task::spawn_blocking(|| python_sdk().to_path_buf())
        .await
        .expect("installing the Python SDK");
    let qs = start_quickstart().await;
    let content = format!("written by the MCP Python SDK to {}", qs.mcp_url);
    let mut cmd = Command::new(python);
    cmd.arg(sdk_sources().join("python").join("journey.py"))
        .arg(&qs.mcp_url)
        .arg(&content)
        .current_dir(sdk_work_dir());
    let done = run_journey(cmd).await;
    println!(
        "--- Python SDK journey ---\n{}{}",
        done.stdout,
        if done.success {
            String::new()
        } else {
            done.describe()
        }
    );
    check_journey(&qs, &done, "/notes/python-sdk.txt", &content);
    qs.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_typescript_sdk_client_signs_in_steps_up_and_retries() {
    let dir = tokio::task::spawn_blocking(|| node_sdk().to_path_buf())
        .await
        .expect("installing the TypeScript SDK");
    let qs = start_quickstart().await;
    let content = format!("written by the MCP TypeScript SDK to {}", qs.mcp_url);
    let mut cmd = Command::new("node");
    cmd.arg(dir.join("journey.mjs"))
        .arg(&qs.mcp_url)
        .arg(&content)
        .current_dir(&dir);
    let done = run_journey(cmd).await;
    println!(
        "--- TypeScript SDK journey ---\n{}{}",
        done.stdout,
        if done.success {
            String::new()
        } else {
            done.describe()
        }
    );
    check_journey(&qs, &done, "/notes/typescript-sdk.txt", &content);
    qs.stop().await.unwrap();
}
