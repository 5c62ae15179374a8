//! The `files` binary's metrics: after a known mix of decisions, `/metrics` (Prometheus'
//! text format, `--metrics-listen`) counts each outcome and reason, the authentications and
//! the JWT verifications behind them, and the key fetches.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mcp_guard::dev::DevAuthServer;
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_files");

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A 2026-07-28 `tools/call` of `tool`, with `token` if any: the status.
async fn call(http: &reqwest::Client, url: &str, tool: &str, token: Option<&str>) -> u16 {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": tool, "arguments": {"path": "/a", "content": "x"}, "_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {}}}});
    let mut req = http
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", tool)
        .body(body.to_string());
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.expect("request sent").status().as_u16()
}

/// The value of the sample `name{labels}` (labels in any order) in a Prometheus text page.
fn sample(page: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    page.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (series, value) = l.rsplit_once(' ')?;
        let (metric, rest) = series.split_once('{').unwrap_or((series, "}"));
        if metric != name {
            return None;
        }
        let all = labels
            .iter()
            .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")));
        all.then(|| value.parse().ok()).flatten()
    })
}

#[tokio::test]
async fn metrics_count_every_decision_and_what_it_cost() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dev = DevAuthServer::builder().start(listener).await.unwrap();
    let (port, metrics_port) = (free_port(), free_port());
    let url = format!("http://127.0.0.1:{port}/mcp");
    let _server = Killed(
        Command::new(BIN)
            .args(["--issuer", dev.issuer(), "--resource", &url])
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--metrics-listen", &format!("127.0.0.1:{metrics_port}")])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("files starts"),
    );
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let metrics = format!("http://127.0.0.1:{metrics_port}/metrics");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let up = http
            .get(format!("http://127.0.0.1:{port}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if up {
            break;
        }
        assert!(Instant::now() < deadline, "the server did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let reader = dev
        .token()
        .subject("alice")
        .scope("files:read")
        .audience(&url)
        .sign();
    assert_eq!(call(&http, &url, "whoami", None).await, 401);
    assert_eq!(call(&http, &url, "whoami", None).await, 401);
    assert_eq!(call(&http, &url, "whoami", Some("not-a-token")).await, 401);
    for _ in 0..3 {
        assert_eq!(call(&http, &url, "whoami", Some(&reader)).await, 200);
    }
    assert_eq!(call(&http, &url, "write_file", Some(&reader)).await, 403);

    let page = http
        .get(&metrics)
        .send()
        .await
        .expect("metrics served")
        .text()
        .await
        .unwrap();
    let decisions = |decision: &str, reason: &str| {
        sample(
            &page,
            "mcp_guard_decisions_total",
            &[("decision", decision), ("reason", reason)],
        )
    };
    assert_eq!(decisions("refused", "missing_token"), Some(2.0), "{page}");
    assert_eq!(decisions("refused", "invalid_token"), Some(1.0), "{page}");
    assert_eq!(
        decisions("refused", "insufficient_scope"),
        Some(1.0),
        "{page}"
    );
    assert_eq!(decisions("allowed", "none"), Some(3.0), "{page}");
    // Five tokens presented; the reader's was verified once and then served by the cache.
    assert_eq!(
        sample(&page, "mcp_guard_authentications_total", &[]),
        Some(5.0),
        "{page}"
    );
    assert_eq!(
        sample(&page, "mcp_guard_jwt_verifications_total", &[]),
        Some(2.0),
        "{page}"
    );
    let issuer = dev.issuer();
    assert!(
        sample(
            &page,
            "mcp_guard_key_fetches_total",
            &[("issuer", issuer), ("result", "ok")]
        )
        .is_some_and(|n| n >= 1.0),
        "{page}"
    );
    assert!(
        sample(
            &page,
            "mcp_guard_key_set_loaded_timestamp_seconds",
            &[("issuer", issuer)]
        )
        .is_some_and(|t| t > 1.0e9),
        "{page}"
    );
}
