//! A small protected server with its own scopes (a ticket tracker), and the development
//! authorization server embedded in its `main` behind `--dev-auth`: the development server
//! takes its scopes from the same `scopes!` catalogue the guard reads, so tokens for
//! `tickets:read` and `tickets:write` are issued with no list to keep in sync.
//!
//! Over HTTP it trusts `--issuer` (a real identity provider) or, with `--dev-auth`, the
//! embedded development server; with `--stdio` it serves one caller over stdin/stdout, the
//! one whose token `MCP_GUARD_TOKEN` holds.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use mcp_guard::dev::{DevAuthServer, RunningDevAuthServer};
use mcp_guard::serve::{ServeConfig, serve};
use mcp_guard::{Guard, Issuer, Principal, ProtectedResource, guarded, protected};
use rmcp::handler::server::{router::tool::ToolRouter, wrapper::Parameters};
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ServerHandler, tool, tool_handler, tool_router};
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

mcp_guard::scopes! {
    /// The ticket tracker's scopes.
    pub Scopes {
        /// Read tickets.
        #[baseline]
        TICKETS_READ = "tickets:read",
        /// Open tickets.
        #[advertised]
        TICKETS_WRITE = "tickets:write",
        /// Administer the tracker; implies reading and writing.
        TICKETS_ADMIN = "tickets:admin" => [TICKETS_READ, TICKETS_WRITE],
    }
}

/// The environment variable holding the caller's token over stdio.
pub const TOKEN_VAR: &str = "MCP_GUARD_TOKEN";

/// The ticket tracker. Cheap to clone: every session shares the tickets.
#[derive(Clone, ProtectedResource)]
#[protected_resource(scopes = Scopes, name = "mcp-guard example ticket tracker")]
pub struct TicketServer {
    tickets: Arc<Mutex<Vec<String>>>,
    // Shared by every clone the service's factory makes.
    tool_router: Arc<ToolRouter<Self>>,
}

impl Default for TicketServer {
    fn default() -> Self {
        Self {
            tickets: Arc::default(),
            tool_router: Arc::new(Self::tool_router()),
        }
    }
}

/// Arguments of `open_ticket`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct OpenTicket {
    /// What the ticket is about.
    pub title: String,
}

#[guarded]
#[tool_router]
impl TicketServer {
    /// Lists the tickets.
    #[protected(scopes = TICKETS_READ)]
    #[tool]
    async fn list_tickets(&self) -> String {
        self.lock().join("\n")
    }

    /// Opens a ticket.
    #[protected(scopes = TICKETS_WRITE)]
    #[tool]
    async fn open_ticket(
        &self,
        caller: Principal,
        Parameters(args): Parameters<OpenTicket>,
    ) -> String {
        let mut tickets = self.lock();
        let number = tickets.len() + 1;
        tickets.push(format!("#{number} {} ({})", args.title, caller.subject()));
        format!("opened #{number}")
    }

    /// Deletes every ticket.
    #[protected(scopes = TICKETS_ADMIN)]
    #[tool]
    async fn purge(&self) -> String {
        let n = std::mem::take(&mut *self.lock()).len();
        format!("purged {n}")
    }
}

impl TicketServer {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<String>> {
        self.tickets.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[guarded]
#[tool_handler(router = self.tool_router, name = "tickets", version = "0.1.0")]
impl ServerHandler for TicketServer {}

/// Options of the ticket tracker.
#[derive(Debug, Clone, clap::Args)]
pub struct TicketOptions {
    /// Address of the MCP server.
    #[arg(long, env = "MCP_GUARD_LISTEN", default_value = "127.0.0.1:8081")]
    pub listen: SocketAddr,

    /// The public URL of the MCP endpoint (default `http://<listen>/mcp`).
    #[arg(long, env = "MCP_GUARD_RESOURCE")]
    pub resource: Option<String>,

    /// Issuer identifier of the trusted authorization server (discovered by RFC 8414).
    #[arg(long, env = "MCP_GUARD_ISSUER", conflicts_with = "dev_auth")]
    pub issuer: Option<String>,

    /// Run the development authorization server in this process and trust it (never in
    /// production).
    #[arg(long)]
    pub dev_auth: bool,

    /// Address of the development authorization server (with --dev-auth).
    #[arg(long, env = "MCP_GUARD_AUTH_LISTEN", default_value = "127.0.0.1:9091")]
    pub auth_listen: SocketAddr,

    /// Approve every authorization request without showing the consent page (with
    /// --dev-auth).
    #[arg(long)]
    pub auto_approve: bool,
}

/// The ticket tracker served over HTTP, and the development server when embedded.
pub struct RunningTickets {
    /// The MCP endpoint URL.
    pub mcp_url: String,
    /// The guard in front of the server.
    pub guard: Guard,
    /// The embedded development authorization server (with `--dev-auth`).
    pub dev: Option<RunningDevAuthServer>,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl RunningTickets {
    /// Stops serving (draining requests in flight) and waits for the server to end.
    pub async fn stop(self) -> std::io::Result<()> {
        self.shutdown.cancel();
        self.task
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)))
    }
}

/// Starts the development authorization server on `listener`, with the tracker's scopes, for
/// `resource`.
pub async fn start_dev_auth(
    listener: TcpListener,
    resource: &str,
    auto_approve: bool,
) -> Result<RunningDevAuthServer, mcp_guard::dev::DevError> {
    DevAuthServer::builder()
        .server::<TicketServer>()
        .resource(resource)
        .auto_approve(auto_approve)
        .start(listener)
        .await
}

/// Serves the tracker on `listener`; with `--dev-auth`, starts the development server on
/// `auth_listener` too and trusts it.
pub async fn start(
    options: &TicketOptions,
    listener: TcpListener,
    auth_listener: Option<TcpListener>,
) -> Result<RunningTickets, Box<dyn std::error::Error + Send + Sync>> {
    let addr = listener.local_addr()?;
    let mcp_url = options
        .resource
        .clone()
        .unwrap_or_else(|| format!("http://{addr}/mcp"));
    let (issuer, dev) = match (options.dev_auth, auth_listener, &options.issuer) {
        (true, Some(auth), _) => {
            let dev = start_dev_auth(auth, &mcp_url, options.auto_approve).await?;
            (dev.issuer().to_owned(), Some(dev))
        }
        (true, None, _) => return Err("--dev-auth needs a listener for it".into()),
        (false, _, Some(issuer)) => (issuer.clone(), None),
        (false, _, None) => return Err("give --issuer, or --dev-auth for development".into()),
    };
    let guard = Guard::builder()
        .server::<TicketServer>()
        .resource(&mcp_url)
        .issuer(Issuer::discover(issuer))
        .build()?;
    let server = TicketServer::default();
    let mcp = StreamableHttpService::new(
        move || Ok(server.clone()),
        guard.session_manager(),
        StreamableHttpServerConfig::default(),
    );
    let app = guard.router(mcp);
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    let task = tokio::spawn(async move {
        serve(listener, app, ServeConfig::default(), async move {
            stop.cancelled().await;
        })
        .await
    });
    Ok(RunningTickets {
        mcp_url,
        guard,
        dev,
        shutdown,
        task,
    })
}
