//! A Rust MCP client that signs in the way the MCP authorization spec describes, with rmcp's
//! OAuth client: discover the authorization server from the 401, register, authorize with
//! PKCE and a resource indicator, call a tool, meet the 403 of a tool that needs more, step
//! up, and retry.
//!
//! The browser step: the client listens on a loopback redirect URI. It first asks the
//! authorization URL itself; an authorization server that approves without asking (the
//! development server with `--auto-approve`) redirects at once. Otherwise it prints the URL
//! for a person to open, and waits for the redirect.

use std::time::Duration;

use rmcp::ServiceExt as _;
use rmcp::model::CallToolRequestParams;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::auth::{AuthClient, AuthorizationCallback, AuthorizationRequest, OAuthState};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

/// What the journey did, step by step.
#[derive(Debug, Default)]
pub struct Transcript {
    /// One line per step.
    pub lines: Vec<String>,
}

impl Transcript {
    fn say(&mut self, line: impl Into<String>) {
        let line = line.into();
        println!("{line}");
        self.lines.push(line);
    }
}

type Error = Box<dyn std::error::Error + Send + Sync>;

/// Runs the whole journey against the MCP server at `url`.
pub async fn run(url: &str, browser_wait: Duration) -> Result<Transcript, Error> {
    let mut t = Transcript::default();
    let callback = TcpListener::bind("127.0.0.1:0").await?;
    let redirect_uri = format!("http://{}/callback", callback.local_addr()?);

    // 1. An unauthenticated call: the 401 names the metadata and the scopes to ask for.
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()?;
    let probe = http
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", "whoami")
        .body(
            json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami","arguments":{},
                "_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}})
            .to_string(),
        )
        .send()
        .await?;
    let challenge = probe
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .ok_or("the server did not answer with a WWW-Authenticate challenge")?
        .to_owned();
    t.say(format!(
        "1. {} without a token: {}",
        probe.status().as_u16(),
        challenge
    ));

    // 2. Discovery and registration, then the authorization request.
    // Ask for what the challenge names, nothing more (least privilege); step up later.
    let initial: Vec<String> = mcp_guard::challenge::parse(&challenge)?
        .param("scope")
        .map(|s| s.split(' ').map(str::to_owned).collect())
        .unwrap_or_default();
    let mut oauth = OAuthState::new(url, None).await?;
    oauth
        .start_authorization(
            AuthorizationRequest::new(&redirect_uri)
                .with_challenge(&challenge)
                .with_scopes(initial)
                .with_client_name("mcp-guard example client"),
        )
        .await?;
    let credentials = oauth.get_credentials().await?;
    t.say(format!(
        "2. discovered the authorization server and registered as client {}",
        credentials.0
    ));
    let auth_url = oauth.get_authorization_url().await?;
    let callback_url = browser(&auth_url, &callback, browser_wait).await?;
    oauth.handle_callback_url(&callback_url).await?;
    let manager = oauth
        .into_authorization_manager()
        .ok_or("authorization did not complete")?;
    t.say(format!(
        "3. authorized with PKCE; granted scopes: {}",
        manager.get_current_scopes().await.join(" ")
    ));

    // 3. The MCP session, every request carrying the token.
    let auth_client = AuthClient::new(reqwest::Client::default(), manager);
    let manager = auth_client.auth_manager.clone();
    let transport = StreamableHttpClientTransport::with_client(
        auth_client,
        StreamableHttpClientTransportConfig::with_uri(url.to_owned()),
    );
    let client = ().serve(transport).await?;
    let who = client
        .call_tool(CallToolRequestParams::new("whoami"))
        .await?;
    t.say(format!("4. whoami: {}", text(&who)));

    // 4. A tool that needs more: the 403 challenge names the scopes.
    let args = json!({"path": "/notes/hello.txt", "content": "hello from the Rust client"});
    let write = || {
        CallToolRequestParams::new("write_file")
            .with_arguments(args.as_object().cloned().unwrap_or_default())
    };
    let refused = match client.call_tool(write()).await {
        Ok(r) => {
            return Err(format!(
                "write_file was expected to need more scopes, got {}",
                text(&r)
            )
            .into());
        }
        Err(e) => e,
    };
    let step_up = refused
        .auth_challenge()
        .ok_or_else(|| format!("write_file failed without a challenge: {refused}"))?
        .to_owned();
    let parsed = mcp_guard::challenge::parse(&step_up)?;
    let needed = parsed
        .param("scope")
        .ok_or("the 403 challenge names no scope")?
        .to_owned();
    t.say(format!(
        "5. write_file refused with 403 {}: needs scope \"{needed}\"",
        parsed.param("error").unwrap_or("?")
    ));

    // 5. Step up: authorize again with the union of the scopes, then retry.
    let upgrade_url = manager.lock().await.request_scope_upgrade(&needed).await?;
    let callback_url = browser(&upgrade_url, &callback, browser_wait).await?;
    let cb = AuthorizationCallback::from_redirect_url(&callback_url)?;
    {
        let manager = manager.lock().await;
        manager
            .exchange_code_for_token_with_issuer(&cb.code, &cb.csrf_token, cb.issuer.as_deref())
            .await?;
        t.say(format!(
            "6. stepped up; granted scopes: {}",
            manager.get_current_scopes().await.join(" ")
        ));
    }
    let wrote = client.call_tool(write()).await?;
    t.say(format!("7. write_file retried: {}", text(&wrote)));
    client.cancel().await?;
    Ok(t)
}

fn text(result: &rmcp::model::CallToolResult) -> String {
    result
        .content
        .first()
        .and_then(|c| c.as_text())
        .map(|c| c.text.clone())
        .unwrap_or_default()
}

/// The browser step: returns the redirect the authorization server sends back to the
/// loopback redirect URI.
async fn browser(auth_url: &str, callback: &TcpListener, wait: Duration) -> Result<String, Error> {
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()?;
    let resp = no_redirects.get(auth_url).send().await?;
    let redirect_base = format!("http://{}/callback", callback.local_addr()?);
    if resp.status().is_redirection()
        && let Some(location) = resp.headers().get("location").and_then(|l| l.to_str().ok())
        && location.starts_with(&redirect_base)
    {
        return Ok(location.to_owned());
    }
    println!("   Open this URL in a browser to approve:\n   {auth_url}");
    let (mut stream, _) = tokio::time::timeout(wait, callback.accept())
        .await
        .map_err(|_| "no authorization response arrived in time")??;
    let mut buf = vec![0u8; 8192];
    let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf)).await??;
    let request = String::from_utf8_lossy(&buf[..n]);
    let target = request
        .lines()
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .ok_or("malformed redirect request")?
        .to_owned();
    stream
        .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\nAuthorized. You can close this window.")
        .await?;
    Ok(format!("http://{}{target}", callback.local_addr()?))
}
