//! The quickstart: the protected example server and the development authorization server.
//!
//! ```text
//! cargo run -p mcp-guard-examples --bin quickstart
//! ```

use std::process::ExitCode;

use clap::Parser;
use mcp_guard_examples::quickstart::{self, QuickstartOptions};
use mcp_guard_examples::{report, server};

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

fn main() -> ExitCode {
    report::exit(run(Cli::parse()))
}

#[tokio::main]
async fn run(cli: Cli) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let _logs = mcp_guard_examples::logging::init(
        mcp_guard_examples::logging::DEMO_FILTER,
        mcp_guard_examples::logging::Output::Stdout,
    );
    let bind = |addr| async move {
        tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| format!("cannot listen on {addr}: {e}"))
    };
    let mcp = bind(cli.options.listen).await?;
    let auth = bind(cli.options.auth_listen).await?;
    let qs = quickstart::start(&cli.options, mcp, auth).await?;
    println!("{}", qs.instructions());
    println!("Press Ctrl-C to stop.");
    server::shutdown_signal().await;
    qs.stop().await?;
    Ok(())
}
