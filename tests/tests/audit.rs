//! One audit event per decision, and no token in any log line.

use std::io::Write;
use std::sync::{Arc, Mutex};

use mcp_guard_tests::{TestIssuer, TestKey, TestServer, claims};
use serde_json::json;

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

// One thread, so that the subscriber set for this test sees the server's tasks too.
#[tokio::test(flavor = "current_thread")]
async fn decisions_are_audited_and_tokens_never_logged() {
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _default = tracing::subscriber::set_default(subscriber);

    let key = TestKey::rsa1();
    let issuer = TestIssuer::start(vec![key.jwk()]).await;
    let server = TestServer::start(&issuer).await;
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

    let log = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    let audit: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("mcp_guard::audit"))
        .collect();
    assert_eq!(audit.len(), 4, "one event per decision:\n{log}");
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
}
