//! The ticket tracker: a protected MCP server with its own scopes.
//!
//! ```text
//! # With the development authorization server embedded (no identity provider needed):
//! cargo run -p mcp-guard-examples --bin tickets -- --dev-auth
//! # Trusting a real identity provider:
//! cargo run -p mcp-guard-examples --bin tickets -- --issuer https://auth.example.com
//! # One caller over stdio, with a token for https://tickets.example.com/mcp:
//! MCP_GUARD_TOKEN=eyJ... cargo run -p mcp-guard-examples --bin tickets -- --stdio \
//!     --issuer https://auth.example.com --resource https://tickets.example.com/mcp
//! ```

use clap::Parser;
use mcp_guard::{Guard, Issuer};
use mcp_guard_examples::server;
use mcp_guard_examples::tickets::{self, TicketOptions, TicketServer};
use rmcp::ServiceExt as _;

#[derive(Debug, Parser)]
#[command(
    name = "tickets",
    version,
    about = "A protected MCP ticket tracker (tickets:read, tickets:write, tickets:admin)",
    long_about = None
)]
struct Cli {
    #[command(flatten)]
    options: TicketOptions,

    /// Serve one caller over stdin/stdout, the one whose token MCP_GUARD_TOKEN holds
    /// (needs --issuer and --resource).
    #[arg(long, conflicts_with = "dev_auth")]
    stdio: bool,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    // Logs go to stderr: over stdio, stdout carries the protocol.
    let _logs = mcp_guard_examples::logging::init(
        mcp_guard_examples::logging::DEMO_FILTER,
        mcp_guard_examples::logging::Output::Stderr,
    );
    let cli = Cli::parse();
    let o = &cli.options;
    if cli.stdio {
        let (Some(issuer), Some(resource)) = (&o.issuer, &o.resource) else {
            return Err("--stdio needs --issuer and --resource".into());
        };
        let guard = Guard::builder()
            .server::<TicketServer>()
            .resource(resource)
            .issuer(Issuer::discover(issuer))
            .build()?;
        // Refuse to start without a valid token: every request is made as its caller.
        let caller = match guard.stdio_principal_from_env(tickets::TOKEN_VAR).await {
            Ok(caller) => caller,
            Err(e) => {
                eprintln!("tickets: {e}");
                std::process::exit(2);
            }
        };
        eprintln!("tickets: serving {} over stdio", caller.subject());
        let running = guard
            .in_process(TicketServer::default(), Some(caller))
            .serve(rmcp::transport::stdio())
            .await?;
        running.waiting().await?;
        return Ok(());
    }
    let listener = tokio::net::TcpListener::bind(o.listen).await?;
    let auth = match o.dev_auth {
        true => Some(tokio::net::TcpListener::bind(o.auth_listen).await?),
        false => None,
    };
    let running = tickets::start(o, listener, auth).await?;
    println!("MCP server: {}", running.mcp_url);
    if let Some(dev) = &running.dev {
        println!(
            "Development authorization server (never for production): {}",
            dev.issuer()
        );
    }
    println!("Press Ctrl-C to stop.");
    server::shutdown_signal().await;
    running.stop().await?;
    Ok(())
}
