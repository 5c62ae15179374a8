//! The quickstart: the protected file server and the embedded development authorization
//! server, started together on loopback.

use std::net::SocketAddr;
use std::time::Duration;

use mcp_guard::ToolCallChallenge;
use mcp_guard::dev::{DevAuthServer, RunningDevAuthServer};
use tokio::net::TcpListener;

use crate::files::{self, FileServer};
use crate::server::{self, RunningServer, ServerOptions};

/// Options of the quickstart.
#[derive(Debug, Clone, clap::Args)]
pub struct QuickstartOptions {
    /// Address of the protected MCP server.
    #[arg(long, env = "MCP_GUARD_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Address of the development authorization server.
    #[arg(long, env = "MCP_GUARD_AUTH_LISTEN", default_value = "127.0.0.1:9090")]
    pub auth_listen: SocketAddr,

    /// Approve every authorization request without showing the consent page.
    #[arg(long, env = "MCP_GUARD_AUTO_APPROVE")]
    pub auto_approve: bool,

    /// The anonymous access posture: discovery and the `#[public]` tool work without a token
    /// (by default every request needs one).
    #[arg(long, env = "MCP_GUARD_ALLOW_ANONYMOUS")]
    pub allow_anonymous: bool,

    /// How a refused tool call carries its challenge: `http`, `tool_result` or `auto` (the
    /// tool result for ChatGPT, HTTP for the others).
    #[arg(
        long,
        env = "MCP_GUARD_TOOL_CALL_CHALLENGE",
        default_value_t = ToolCallChallenge::Http
    )]
    pub tool_call_challenge: ToolCallChallenge,

    /// Accept DPoP-bound tokens (RFC 9449) beside bearer tokens; the development server binds
    /// the tokens it issues to the key of a token request's DPoP proof.
    #[arg(long, env = "MCP_GUARD_DPOP")]
    pub dpop: bool,

    /// With `--dpop`, require server-issued DPoP nonces MACed with this secret (32+ bytes).
    #[arg(long, env = "MCP_GUARD_DPOP_NONCE_SECRET", hide_env_values = true)]
    pub dpop_nonce_secret: Option<String>,

    /// Browser origins allowed to call the server (MCP Inspector's by default).
    #[arg(
        long = "allowed-origin",
        env = "MCP_GUARD_ALLOWED_ORIGINS",
        value_delimiter = ',',
        default_value = "http://localhost:6274,http://127.0.0.1:6274"
    )]
    pub allowed_origins: Vec<String>,
}

impl QuickstartOptions {
    /// Options on the given addresses, consent page shown.
    pub fn new(listen: SocketAddr, auth_listen: SocketAddr) -> Self {
        Self {
            listen,
            auth_listen,
            auto_approve: false,
            allow_anonymous: false,
            tool_call_challenge: ToolCallChallenge::Http,
            dpop: false,
            dpop_nonce_secret: None,
            allowed_origins: vec![
                "http://localhost:6274".into(),
                "http://127.0.0.1:6274".into(),
            ],
        }
    }
}

/// The running pair.
pub struct Quickstart {
    /// The development authorization server.
    pub auth: RunningDevAuthServer,
    /// The protected MCP server.
    pub server: RunningServer,
    /// The MCP endpoint URL.
    pub mcp_url: String,
    /// The store behind the server.
    pub store: files::Store,
    auto_approve: bool,
}

/// Starts both servers on the listeners.
pub async fn start(
    options: &QuickstartOptions,
    mcp_listener: TcpListener,
    auth_listener: TcpListener,
) -> Result<Quickstart, Box<dyn std::error::Error + Send + Sync>> {
    let addr = mcp_listener.local_addr()?;
    let mcp_url = format!("http://{addr}/mcp");
    let auth = DevAuthServer::builder()
        .auto_approve(options.auto_approve)
        .server::<FileServer>()
        .resource(mcp_url.clone())
        .start(auth_listener)
        .await?;
    let mut server_options = ServerOptions::new(auth.issuer(), &mcp_url, addr);
    server_options.allowed_origins = options.allowed_origins.clone();
    server_options.allow_anonymous = options.allow_anonymous;
    server_options.tool_call_challenge = options.tool_call_challenge;
    if options.dpop {
        server_options.dpop = server::DpopMode::Allowed;
        server_options.dpop_nonce_secret = options.dpop_nonce_secret.clone();
    }
    let store = files::Store::default();
    let guard = files::guard(&server_options)?;
    // The start-up check: the development server runs in this process, so its keys load
    // (and /readyz is 200) before the first client arrives; failing is a bug, not an outage.
    guard.preload_keys().await?;
    let shared = store.clone();
    let server = server::spawn(mcp_listener, &server_options, guard, move || {
        FileServer::new(shared.clone())
    })?;
    Ok(Quickstart {
        auth,
        server,
        mcp_url,
        store,
        auto_approve: options.auto_approve,
    })
}

impl Quickstart {
    /// What to do next: the URLs, how to connect clients, and `curl` lines for the 401
    /// challenge and for a call with a token minted for the purpose.
    pub fn instructions(&self) -> String {
        let url = &self.mcp_url;
        let posture = if self.server.guard.allows_anonymous() {
            "anonymous access (discovery and `about` without a token; the rest is challenged)"
        } else {
            "sign-in (every request needs a token; --allow-anonymous for anonymous access)"
        };
        let token = self
            .auth
            .token()
            .subject("quickstart-user")
            .client_id("quickstart-curl")
            .scope("files:read")
            .audience(url)
            .expires_in(Duration::from_secs(3600))
            .sign();
        let headers = "-H 'content-type: application/json' -H 'accept: application/json, text/event-stream' \\\n       -H 'mcp-protocol-version: 2026-07-28' -H 'mcp-method: tools/call' -H 'mcp-name: whoami'";
        let body = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami","arguments":{},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}"#;
        format!(
            "mcp-guard quickstart: a protected MCP server and a development authorization server\n\
             \n\
             MCP server (protected resource):  {url}\n\
             Protected resource metadata:      {metadata}\n\
             Authorization server (dev only):  {issuer}\n\
             \n\
             Tools: about (no scope), echo and whoami (any signed-in user), list_files and read_file\n\
             (files:read), write_file (files:write; files:shared under /shared), reset_store (files:admin).\n\
             Posture: {posture}.\n\
             {dpop}\
             \n\
             Connect a client to {url}:\n\
             - VS Code: in .vscode/mcp.json add {{\"servers\": {{\"files\": {{\"type\": \"http\", \"url\": \"{url}\"}}}}}}\n\
             - MCP Inspector: npx @modelcontextprotocol/inspector, transport Streamable HTTP, URL above\n\
             - Python SDK / TypeScript SDK: their OAuth client provider with the URL above\n\
             - Rust: cargo run -p mcp-guard-examples --bin client -- --url {url}\n\
             They discover the authorization server from the 401, register, and ask you to approve\n\
             the requested scopes on its consent page{approve}.\n\
             \n\
             Without a token, the server answers 401 with the challenge clients follow:\n\
             \n  curl -si {url} {headers} \\\n       -d '{body}'\n\
             \n\
             With a token (minted for this run: subject quickstart-user, scope files:read, 1 hour):\n\
             \n  curl -si {url} {headers} \\\n       -H 'authorization: Bearer {token}' \\\n       -d '{body}'\n",
            dpop = if self
                .server
                .guard
                .metadata()
                .dpop_signing_alg_values_supported
                .is_empty()
            {
                String::new()
            } else {
                format!(
                    "DPoP (RFC 9449): bound tokens accepted with a proof ({algs}); a token request with a\n\
                     DPoP proof gets token_type DPoP, bound to the proof's key.\n",
                    algs = self
                        .server
                        .guard
                        .metadata()
                        .dpop_signing_alg_values_supported
                        .join(", ")
                )
            },
            metadata = self.server.guard.metadata_url(),
            issuer = self.auth.issuer(),
            approve = if self.auto_approve {
                " (auto-approved in this run)"
            } else {
                ""
            },
        )
    }

    /// Stops both servers.
    pub async fn stop(self) -> std::io::Result<()> {
        self.server.stop().await
    }
}
