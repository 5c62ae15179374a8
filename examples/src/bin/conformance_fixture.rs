//! The MCP conformance suite's scope-challenge fixture (SEP-2350, conformance#480): the
//! suite's tool, resources and prompt, each behind its scopes, with the opaque test tokens
//! `mcp-conformance-scope-low` and `mcp-conformance-scope-full`.
//!
//! ```text
//! cargo run -p mcp-guard-examples --bin conformance_fixture
//! ```

use std::net::SocketAddr;

use clap::Parser;
use mcp_guard_examples::conformance_fixture::{self, FULL_TOKEN, LOW_TOKEN};
use mcp_guard_examples::server;

#[derive(Debug, Parser)]
#[command(
    name = "conformance_fixture",
    version,
    about = "The MCP conformance suite's scope-challenge fixture behind mcp-guard",
    long_about = None
)]
struct Cli {
    /// Address of the MCP server.
    #[arg(long, env = "MCP_GUARD_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Address of the development authorization server.
    #[arg(long, env = "MCP_GUARD_AUTH_LISTEN", default_value = "127.0.0.1:9090")]
    auth_listen: SocketAddr,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let _logs = mcp_guard_examples::logging::init(
        mcp_guard_examples::logging::DEMO_FILTER,
        mcp_guard_examples::logging::Output::Stdout,
    );
    let cli = Cli::parse();
    let mcp = tokio::net::TcpListener::bind(cli.listen).await?;
    let auth = tokio::net::TcpListener::bind(cli.auth_listen).await?;
    let fixture = conformance_fixture::start(mcp, auth).await?;
    println!(
        "conformance fixture: {}\ntokens: {LOW_TOKEN} (baseline only), {FULL_TOKEN} (every scope)\nPress Ctrl-C to stop.",
        fixture.mcp_url
    );
    server::shutdown_signal().await;
    fixture.stop().await?;
    Ok(())
}
