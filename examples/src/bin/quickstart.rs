//! The quickstart: the protected example server and the development authorization server.
//!
//! ```text
//! cargo run -p mcp-guard-examples --bin quickstart
//! ```

use clap::Parser;
use mcp_guard_examples::quickstart::{self, QuickstartOptions};
use mcp_guard_examples::server;

#[derive(Debug, Parser)]
#[command(
    name = "quickstart",
    version,
    about = "A protected MCP server with its embedded development authorization server (no identity provider needed)",
    long_about = None
)]
struct Cli {
    #[command(flatten)]
    options: QuickstartOptions,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,mcp_guard::audit=info".into()),
        )
        .init();
    let cli = Cli::parse();
    let mcp = tokio::net::TcpListener::bind(cli.options.listen).await?;
    let auth = tokio::net::TcpListener::bind(cli.options.auth_listen).await?;
    let qs = quickstart::start(&cli.options, mcp, auth).await?;
    println!("{}", qs.instructions());
    println!("Press Ctrl-C to stop.");
    server::shutdown_signal().await;
    qs.stop().await?;
    Ok(())
}
