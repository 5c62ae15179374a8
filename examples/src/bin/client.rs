//! An MCP client that signs in with OAuth (rmcp's `auth` feature), calls a tool, meets a 403,
//! steps up its scopes and retries.
//!
//! ```text
//! cargo run -p mcp-guard-examples --bin client -- --url http://127.0.0.1:8080/mcp
//! ```

use std::time::Duration;

use clap::Parser;

#[derive(Debug, Parser)]
#[command(name = "client", version, about = "Sign in to a protected MCP server and step up its scopes", long_about = None)]
struct Cli {
    /// The MCP endpoint.
    #[arg(
        long,
        env = "MCP_GUARD_URL",
        default_value = "http://127.0.0.1:8080/mcp"
    )]
    url: String,

    /// How long to wait for the browser to come back after a consent page, in seconds.
    #[arg(long, default_value_t = 300)]
    browser_wait_secs: u64,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let cli = Cli::parse();
    mcp_guard_examples::client::run(&cli.url, Duration::from_secs(cli.browser_wait_secs)).await?;
    Ok(())
}
