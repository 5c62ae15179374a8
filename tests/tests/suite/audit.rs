//! One audit event per decision, in the log and in the server's audit sink, and no token in
//! either.

use std::sync::{Arc, Mutex};

use mcp_guard::Principal;
use mcp_guard::audit::AuditEvent;
use mcp_guard_tests::{TestIssuer, TestKey, TestServer, claims};
use serde_json::json;

// One thread, so that the subscriber set for this test sees the server's tasks too.
#[tokio::test(flavor = "current_thread")]
async fn decisions_are_audited_and_tokens_never_logged() {
    let logs = mcp_guard_tests::logs::CapturedLogs::start();

    let key = TestKey::rsa1();
    let issuer = TestIssuer::start(vec![key.jwk()]).await;
    // What the sink saw, one line per decision: `allowed|refused reason sub target {event:?}`.
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let sink = seen.clone();
    let server = TestServer::start_configured(&issuer, |b| {
        b.audit_sink(move |e: &AuditEvent<'_>| {
            let line = format!(
                "{} {} {} {} {e:?}",
                if e.allowed { "allowed" } else { "refused" },
                e.reason.unwrap_or("-"),
                e.principal.map_or("-", Principal::subject),
                e.target.unwrap_or("-"),
            );
            sink.lock().expect("sink").push(line);
        })
    })
    .await;
    let mut c = claims(&issuer.issuer, &server.mcp_url, "files:read");
    c["jti"] = json!("audit-jti-1");
    let good = key.sign(&c);
    let mut e = claims(&issuer.issuer, &server.mcp_url, "files:read");
    e["exp"] = json!(mcp_guard_tests::now() - 3600);
    let expired = key.sign(&e);
    let garbage = "Z2FyYmFnZS10b2tlbi12YWx1ZQ";

    assert_eq!(
        server
            .call(&good, "read_file", json!({"path": "/x"}))
            .await
            .status,
        200
    );
    assert_eq!(
        server
            .call(&good, "write_file", json!({"path": "/x", "content": "y"}))
            .await
            .status,
        403
    );
    assert_eq!(
        server
            .call(&expired, "read_file", json!({"path": "/x"}))
            .await
            .status,
        401
    );
    assert_eq!(
        server
            .call(garbage, "read_file", json!({"path": "/x"}))
            .await
            .status,
        401
    );
    server.stop().await;

    let log = logs.text();
    let audit: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("mcp_guard::audit"))
        .collect();
    assert_eq!(audit.len(), 4, "one event per decision:\n{log}");
    // Allowed decisions are `debug` (one per request), refusals `info`.
    assert!(audit[0].contains(" DEBUG mcp_guard::audit"), "{}", audit[0]);
    for refused in &audit[1..] {
        assert!(refused.contains(" INFO mcp_guard::audit"), "{refused}");
    }
    assert!(
        audit[0].contains(r#"decision="allowed""#)
            && audit[0].contains("audit-jti-1")
            && audit[0].contains("read_file")
    );
    assert!(
        audit[1].contains(r#"reason="insufficient_scope""#)
            && audit[1].contains("sub=\"alice\"")
            && audit[1].contains("files:write")
    );
    assert!(audit[2].contains(r#"reason="invalid_token""#) && audit[2].contains("expired"));
    assert!(audit[3].contains(r#"reason="invalid_token""#));
    for secret in [good.as_str(), expired.as_str(), garbage] {
        assert!(!log.contains(secret), "a token appeared in the logs");
        let signature = secret.rsplit('.').next().unwrap();
        assert!(!log.contains(signature));
    }

    let seen = seen.lock().expect("sink").clone();
    let summary: Vec<String> = seen
        .iter()
        .map(|l| l.splitn(5, ' ').take(4).collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        summary,
        [
            "allowed - alice read_file",
            "refused insufficient_scope alice write_file",
            "refused invalid_token - -",
            "refused invalid_token - -",
        ],
        "the sink sees the decisions the log records"
    );
    assert!(
        seen[1].contains("files:write"),
        "required scopes: {}",
        seen[1]
    );
    for line in &seen {
        for secret in [good.as_str(), expired.as_str(), garbage] {
            assert!(!line.contains(secret), "a token reached the sink: {line}");
            assert!(!line.contains(secret.rsplit('.').next().unwrap()), "{line}");
        }
    }
}
