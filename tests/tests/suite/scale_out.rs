//! What the scale-out routing relies on (`scale-out/README.md`): a replica's legacy session
//! ids carry its prefix, its sessions work under those ids, and an id it did not create, such
//! as another replica's, is unknown (404) so that the client re-initializes.

use mcp_guard_tests::{TestIssuer, TestKey, TestServer, claims};
use serde_json::json;

#[tokio::test]
async fn session_ids_carry_the_replica_prefix_and_others_are_unknown() {
    let key = TestKey::rsa1();
    let issuer = TestIssuer::start(vec![key.jwk()]).await;
    let server = TestServer::start_with(&issuer, |o| {
        o.session_id_prefix = Some("r7-".to_owned());
    })
    .await;
    let token = key.sign(&claims(&issuer.issuer, &server.mcp_url, "files:read"));
    let session = server.open_session(&token).await;
    assert!(session.starts_with("r7-"), "{session}");
    assert!(session.len() > "r7-".len(), "{session}");
    let who = server
        .call_in_session(&token, &session, "whoami", json!({}))
        .await;
    assert_eq!(who.status, 200, "{who:?}");
    assert!(who.tool_text().contains("\"sub\""), "{who:?}");
    // The same session under another replica's prefix, and without any: unknown here.
    let inner = &session["r7-".len()..];
    for other in [format!("r3-{inner}"), inner.to_owned()] {
        let a = server
            .call_in_session(&token, &other, "whoami", json!({}))
            .await;
        assert_eq!(a.status, 404, "{other}: {a:?}");
    }
    server.running.stop().await.expect("stop");
}

#[tokio::test]
async fn a_prefix_that_proxies_could_mangle_is_refused() {
    let key = TestKey::rsa1();
    let issuer = TestIssuer::start(vec![key.jwk()]).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let mut options = mcp_guard_examples::server::ServerOptions::new(
        &issuer.issuer,
        &format!("http://{addr}/mcp"),
        addr,
    );
    options.session_id_prefix = Some("r 1/".to_owned());
    let guard = mcp_guard_examples::files::guard(&options).expect("guard");
    let store = mcp_guard_examples::files::Store::default();
    let started = mcp_guard_examples::server::spawn(listener, &options, guard, move || {
        mcp_guard_examples::files::FileServer::new(store.clone())
    });
    let Err(e) = started else {
        panic!("a prefix with a space and a slash is refused");
    };
    assert!(e.to_string().contains("--session-id-prefix"), "{e}");
}
