//! The example file-store MCP server, protected by mcp-guard.
//!
//! ```text
//! cargo run -p mcp-guard-examples --bin files -- \
//!     --issuer https://auth.example.com --resource http://127.0.0.1:8080/mcp --listen 127.0.0.1:8080
//! ```

use clap::Parser;
use mcp_guard_examples::files::{self, FileServer};
use mcp_guard_examples::server::{self, ServerOptions};

/// A protected MCP file store: tools need files:read, files:write or files:admin.
#[derive(Debug, Parser)]
#[command(
    name = "files",
    version,
    about = "A protected MCP file store: tools need files:read, files:write or files:admin",
    long_about = None
)]
struct Cli {
    #[command(flatten)]
    server: ServerOptions,

    /// Print the authorization manifest (scopes, and what each tool and prompt requires) as
    /// JSON and exit.
    #[arg(long)]
    print_manifest: bool,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,mcp_guard::audit=info".into()),
        )
        .init();
    let cli = Cli::parse();
    let listener = tokio::net::TcpListener::bind(cli.server.listen).await?;
    let store = files::Store::default();
    if cli.print_manifest {
        let manifest = mcp_guard::manifest::<FileServer>();
        println!("{}", serde_json::to_string_pretty(&manifest)?);
        return Ok(());
    }
    let guard = files::guard(&cli.server)?;
    let running = server::spawn(listener, &cli.server, guard, move || {
        FileServer::new(store.clone())
    })?;
    tracing::info!(
        "mcp-guard files server ready: MCP URL {} (listening on {}, metadata at {})",
        running.guard.resource(),
        running.addr,
        running.guard.metadata_url()
    );
    server::shutdown_signal().await;
    tracing::info!(
        "shutting down: not accepting; draining open connections for up to {} ms",
        cli.server.drain_ms
    );
    running.stop().await?;
    tracing::info!("stopped: every connection closed");
    Ok(())
}
