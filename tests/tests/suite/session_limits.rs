//! Legacy sessions under a flood: anonymous sessions make room among themselves, a subject
//! at its bound gives up its own oldest session, a signed-in session is never displaced by
//! a caller without a token, and rmcp's own sessions (the memory) stay within the limits.

use std::time::Duration;

use mcp_guard::SessionLimits;
use mcp_guard_tests::server::LEGACY;
use mcp_guard_tests::{Answer, TestIssuer, TestKey, TestServer, claims};
use serde_json::{Value, json};

fn token_for(issuer: &TestIssuer, server: &TestServer, key: &TestKey, sub: &str) -> String {
    let mut c = claims(&issuer.issuer, &server.mcp_url, "files:read");
    c["sub"] = json!(sub);
    key.sign(&c)
}

async fn anonymous_server(limits: SessionLimits) -> (TestIssuer, TestServer, TestKey) {
    let key = TestKey::rsa1();
    let issuer = TestIssuer::start(vec![key.jwk()]).await;
    let server =
        TestServer::start_configured(&issuer, |b| b.anonymous(true).session_limits(limits)).await;
    (issuer, server, key)
}

fn initialize() -> String {
    json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{
        "protocolVersion": LEGACY, "capabilities": {},
        "clientInfo": {"name": "flood", "version": "0"}}})
    .to_string()
}

/// An `initialize` without a token.
async fn open_anonymously(server: &TestServer) -> Answer {
    server
        .post(&[("mcp-protocol-version", LEGACY)], &initialize())
        .await
}

fn session_of(a: &Answer) -> String {
    a.headers
        .get("mcp-session-id")
        .unwrap_or_else(|| panic!("a session id: {a:?}"))
        .to_str()
        .unwrap()
        .to_owned()
}

/// `about` (public) in `session`, anonymously.
async fn about_in(server: &TestServer, session: &str) -> Answer {
    let body = json!({"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"about","arguments":{}}});
    server
        .post(
            &[
                ("mcp-protocol-version", LEGACY),
                ("mcp-session-id", session),
            ],
            &body.to_string(),
        )
        .await
}

/// `whoami` in `session` answers for `sub`.
async fn assert_whoami(server: &TestServer, token: &str, session: &str, sub: &str) {
    let a = server
        .call_in_session(token, session, "whoami", json!({}))
        .await;
    assert_eq!(a.status, 200, "{sub}'s session still works: {a:?}");
    let me: Value = serde_json::from_str(&a.tool_text()).expect("whoami answers JSON");
    assert_eq!(me["sub"], sub);
}

/// How many sessions rmcp holds: what the memory is spent on.
async fn rmcp_sessions(server: &TestServer) -> usize {
    server
        .running
        .sessions
        .as_ref()
        .expect("the guard's session manager")
        .inner()
        .sessions
        .read()
        .await
        .len()
}

/// Waits (bounded) until rmcp holds at most `most` sessions; the sessions the guard lets go
/// are ended in rmcp by spawned tasks.
async fn settle(server: &TestServer, most: usize) -> usize {
    let mut held = rmcp_sessions(server).await;
    for _ in 0..200 {
        if held <= most {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
        held = rmcp_sessions(server).await;
    }
    held
}

#[tokio::test]
async fn an_anonymous_flood_leaves_a_signed_in_session_alone_and_memory_bounded() {
    let (issuer, server, key) =
        anonymous_server(SessionLimits::default().total(64).anonymous(16)).await;
    let alice = token_for(&issuer, &server, &key, "alice");
    let alice_session = server.open_session(&alice).await;

    // 400 anonymous sessions, 8 at a time: each is opened, the oldest anonymous ones go.
    let mut first_anonymous = None;
    for round in 0..50 {
        let answers =
            futures_util::future::join_all((0..8).map(|_| open_anonymously(&server))).await;
        for a in &answers {
            assert_eq!(a.status, 200, "an anonymous session opens: {a:?}");
        }
        if round == 0 {
            first_anonymous = Some(session_of(&answers[0]));
        }
        // The signed-in session keeps working throughout.
        if round % 10 == 9 {
            assert_whoami(&server, &alice, &alice_session, "alice").await;
        }
    }
    assert_whoami(&server, &alice, &alice_session, "alice").await;

    let counts = server.running.guard.session_counts();
    assert_eq!(counts.signed_in, 1, "{counts:?}");
    assert!(counts.anonymous <= 16, "{counts:?}");
    let held = settle(&server, 17).await;
    assert!(
        held <= 17,
        "rmcp holds {held} sessions: the evicted ones were not ended"
    );

    // The first anonymous session was let go: the transport's 404, so its client
    // re-initializes.
    let gone = about_in(&server, &first_anonymous.unwrap()).await;
    assert_eq!(gone.status, 404, "{gone:?}");
    // A recent one works.
    let fresh = session_of(&open_anonymously(&server).await);
    let a = about_in(&server, &fresh).await;
    assert_eq!(a.status, 200, "{a:?}");
}

#[tokio::test]
async fn a_caller_at_its_bound_gives_up_its_own_oldest_session_not_anothers() {
    let (issuer, server, key) = anonymous_server(SessionLimits::default().per_subject(3)).await;
    let alice = token_for(&issuer, &server, &key, "alice");
    let bob = token_for(&issuer, &server, &key, "bob");
    let alice_session = server.open_session(&alice).await;
    let mut bobs = Vec::new();
    for _ in 0..20 {
        bobs.push(server.open_session(&bob).await);
    }
    assert_whoami(&server, &alice, &alice_session, "alice").await;
    for s in &bobs[17..] {
        assert_whoami(&server, &bob, s, "bob").await;
    }
    let oldest = server
        .call_in_session(&bob, &bobs[0], "whoami", json!({}))
        .await;
    assert_eq!(oldest.status, 404, "bob's oldest session ended: {oldest:?}");
    let counts = server.running.guard.session_counts();
    assert_eq!(counts.signed_in, 4, "{counts:?}");
    let held = settle(&server, 4).await;
    assert!(held <= 4, "rmcp holds {held} sessions");
}

#[tokio::test]
async fn when_only_signed_in_sessions_are_held_a_caller_without_a_token_is_refused() {
    let (issuer, server, key) = anonymous_server(SessionLimits::default().total(3)).await;
    let users = ["alice", "bob", "carol"];
    let mut held = Vec::new();
    for u in users {
        let t = token_for(&issuer, &server, &key, u);
        let s = server.open_session(&t).await;
        held.push((u, t, s));
    }
    let a = open_anonymously(&server).await;
    assert_eq!(a.status, 503, "{a:?}");
    assert!(a.headers.get("retry-after").is_some(), "{a:?}");
    assert!(a.headers.get("mcp-session-id").is_none(), "{a:?}");
    for (u, t, s) in &held {
        assert_whoami(&server, t, s, u).await;
    }
    // A signed-in caller still gets in: the least recently used signed-in session makes room.
    let dave = token_for(&issuer, &server, &key, "dave");
    let dave_session = server.open_session(&dave).await;
    assert_whoami(&server, &dave, &dave_session, "dave").await;
    assert_eq!(server.running.guard.session_counts().signed_in, 3);
    let refused = settle(&server, 3).await;
    assert!(refused <= 3, "rmcp holds {refused} sessions");
}

#[tokio::test]
async fn anonymous_session_creation_can_be_refused() {
    let (issuer, server, key) =
        anonymous_server(SessionLimits::default().anonymous_sessions(false)).await;
    let a = open_anonymously(&server).await;
    assert_eq!(a.status, 401, "{a:?}");
    let c = a.challenge();
    assert_eq!(
        c.param("resource_metadata"),
        Some(server.metadata_url.as_str())
    );
    assert!(a.headers.get("mcp-session-id").is_none(), "{a:?}");
    assert_eq!(server.running.guard.session_counts().anonymous, 0);
    assert!(
        settle(&server, 0).await == 0,
        "the refused session was ended"
    );
    // Stateless requests and signed-in sessions are unaffected.
    let about = mcp_guard_tests::server::post_stateless(
        &server.mcp_url,
        "tools/call",
        "about",
        json!({"name": "about", "arguments": {}}),
    )
    .await;
    assert_eq!(about.status, 200, "{about:?}");
    let alice = token_for(&issuer, &server, &key, "alice");
    let s = server.open_session(&alice).await;
    assert_whoami(&server, &alice, &s, "alice").await;
}

#[tokio::test]
async fn an_idle_anonymous_session_ends_after_its_short_life() {
    let (_issuer, server, _key) =
        anonymous_server(SessionLimits::default().anonymous_idle(Duration::from_millis(200))).await;
    let s = session_of(&open_anonymously(&server).await);
    assert_eq!(about_in(&server, &s).await.status, 200);
    // The sweeper ends it without any new session asking for room.
    let held = {
        let mut held = rmcp_sessions(&server).await;
        for _ in 0..200 {
            if held == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            held = rmcp_sessions(&server).await;
        }
        held
    };
    assert_eq!(held, 0, "the idle anonymous session was ended in rmcp");
    assert_eq!(about_in(&server, &s).await.status, 404);
}
