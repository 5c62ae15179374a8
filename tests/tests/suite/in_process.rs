//! Protected servers without the HTTP layer: the real rmcp server driven in-process by the
//! real rmcp client, as the caller `Guard::in_process` hands every request (what stdio
//! serving does) and as the testing kit (`mcp_guard::testing`) sets it up; principals from
//! real tokens signed by a test issuer.

use mcp_guard::rmcp::{FORBIDDEN, UNAUTHENTICATED};
use mcp_guard::testing::{self, TestIssuer};
use mcp_guard_examples::tickets::TicketServer;
use rmcp::model::CallToolRequestParams;
use serde_json::json;

fn open_ticket() -> CallToolRequestParams {
    CallToolRequestParams::new("open_ticket").with_arguments(
        json!({"title": "printer on fire"})
            .as_object()
            .expect("object")
            .clone(),
    )
}

fn text(result: &rmcp::model::CallToolResult) -> &str {
    &result.content[0].as_text().expect("text").text
}

#[tokio::test]
async fn a_protected_tool_runs_for_a_caller_with_its_scope_and_is_refused_without() {
    let issuer = TestIssuer::new();
    let guard = issuer.guard::<TicketServer>().build().expect("guard");

    let writer = testing::principal("alice", "tickets:write");
    let client = testing::connect(&guard, TicketServer::default(), Some(writer))
        .await
        .expect("connects");
    let opened = client.call_tool(open_ticket()).await.expect("allowed");
    assert_eq!(text(&opened), "opened #1");
    // The scope it lacks is refused in-process with the structured error.
    let refused = client
        .call_tool(CallToolRequestParams::new("list_tickets"))
        .await
        .expect_err("tickets:write does not grant tickets:read");
    assert_eq!(testing::error_code(&refused), Some(FORBIDDEN));
    client.close().await;

    let reader = testing::principal("bob", "tickets:read");
    let client = testing::connect(&guard, TicketServer::default(), Some(reader))
        .await
        .expect("connects");
    let refused = client.call_tool(open_ticket()).await.expect_err("refused");
    assert_eq!(testing::error_code(&refused), Some(FORBIDDEN));
    let listed = client
        .call_tool(CallToolRequestParams::new("list_tickets"))
        .await
        .expect("tickets:read lists");
    assert_eq!(text(&listed), "");
    client.close().await;
}

#[tokio::test]
async fn the_catalogue_hierarchy_holds_in_process() {
    let issuer = TestIssuer::new();
    let guard = issuer.guard::<TicketServer>().build().expect("guard");
    let admin = testing::principal("root", "tickets:admin");
    let client = testing::connect(&guard, TicketServer::default(), Some(admin))
        .await
        .expect("connects");
    assert_eq!(
        text(&client.call_tool(open_ticket()).await.expect("write")),
        "opened #1"
    );
    let listed = client
        .call_tool(CallToolRequestParams::new("list_tickets"))
        .await
        .expect("read");
    assert_eq!(text(&listed), "#1 printer on fire (root)");
    client.close().await;
}

#[tokio::test]
async fn without_a_caller_every_protected_tool_is_refused_as_unauthenticated() {
    let issuer = TestIssuer::new();
    let guard = issuer.guard::<TicketServer>().build().expect("guard");
    let client = testing::connect(&guard, TicketServer::default(), None)
        .await
        .expect("connects");
    for call in [
        open_ticket(),
        CallToolRequestParams::new("list_tickets"),
        CallToolRequestParams::new("purge"),
    ] {
        let name = call.name.clone();
        let refused = client.call_tool(call).await.expect_err("refused");
        assert_eq!(
            testing::error_code(&refused),
            Some(UNAUTHENTICATED),
            "{name}"
        );
    }
    client.close().await;
}

#[tokio::test]
async fn a_caller_verified_from_a_signed_token_is_the_one_tools_see() {
    let issuer = TestIssuer::new();
    let guard = issuer.guard::<TicketServer>().build().expect("guard");
    let token = issuer
        .token()
        .subject("carol")
        .scope("tickets:write")
        .audience(testing::RESOURCE)
        .sign();
    let caller = guard.authenticate(&token).await.expect("a valid token");
    let client = testing::connect(&guard, TicketServer::default(), Some(caller))
        .await
        .expect("connects");
    assert_eq!(
        text(&client.call_tool(open_ticket()).await.expect("allowed")),
        "opened #1"
    );
    client.close().await;

    // A token for another resource, or from an issuer the guard does not trust, never
    // becomes a caller.
    let elsewhere = issuer
        .token()
        .subject("carol")
        .scope("tickets:write")
        .audience("https://other.example.com/mcp")
        .sign();
    assert!(guard.authenticate(&elsewhere).await.is_err());
    let stranger = TestIssuer::named("https://stranger.test")
        .token()
        .subject("carol")
        .scope("tickets:write")
        .audience(testing::RESOURCE)
        .sign();
    assert!(guard.authenticate(&stranger).await.is_err());
}

#[tokio::test]
async fn an_expired_caller_is_refused_as_unauthenticated() {
    let issuer = TestIssuer::new();
    let guard = issuer.guard::<TicketServer>().build().expect("guard");
    let claims = json!({
        "iss": testing::ISSUER, "sub": "dave", "scope": "tickets:write", "exp": 1,
    });
    let expired = mcp_guard::Principal::from_claims(claims.as_object().expect("object").clone())
        .expect("claims");
    let client = testing::connect(&guard, TicketServer::default(), Some(expired))
        .await
        .expect("connects");
    let refused = client.call_tool(open_ticket()).await.expect_err("refused");
    assert_eq!(testing::error_code(&refused), Some(UNAUTHENTICATED));
    client.close().await;
}
