//! The example file-store MCP server, protected by mcp-guard.
//!
//! ```text
//! cargo run -p mcp-guard-examples --bin files -- \
//!     --issuer https://auth.example.com --resource http://127.0.0.1:8080/mcp --listen 127.0.0.1:8080
//! ```

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use mcp_guard_examples::files::{self, FileServer};
use mcp_guard_examples::server::{self, ServerOptions};
use mcp_guard_examples::{logging, report};

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
    /// JSON and exit, with the --resource and --issuer values when given; needs no network and
    /// does not listen.
    #[arg(long)]
    print_manifest: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.print_manifest {
        return report::exit(print_manifest(&cli.server));
    }
    report::exit(serve(cli))
}

/// The manifest, with the resource and authorization servers this configuration advertises.
fn print_manifest(options: &ServerOptions) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let mut manifest = mcp_guard::manifest::<FileServer>();
    if !options.resource.is_empty() {
        // Building the guard checks the flags and fetches nothing: keys load later.
        let guard = files::guard(options)?;
        manifest["resource"] = guard.resource().into();
        manifest["authorization_servers"] = guard.metadata().authorization_servers.clone().into();
    } else if !options.issuers.is_empty() || options.introspection_issuer.is_some() {
        let mut servers: Vec<&str> = Vec::new();
        for s in options.issuers.iter().chain(&options.introspection_issuer) {
            if !servers.contains(&s.as_str()) {
                servers.push(s);
            }
        }
        manifest["authorization_servers"] = servers.into();
    }
    let text = serde_json::to_string_pretty(&manifest)?;
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{text}").and_then(|()| out.flush()) {
        // A reader that stopped early (`| head -1`) has what it wanted.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

#[tokio::main]
async fn serve(cli: Cli) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let _logs = logging::init(logging::SERVER_FILTER, logging::Output::Stdout);
    if let Some(addr) = cli.server.metrics_listen {
        server::serve_metrics(addr)?;
        tracing::info!("metrics at http://{addr}/metrics");
    }
    let guard = files::guard(&cli.server)?;
    server::startup_check(&guard, cli.server.startup_check).await?;
    let listener = tokio::net::TcpListener::bind(cli.server.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", cli.server.listen))?;
    let store = files::Store::default();
    let running = server::spawn(listener, &cli.server, guard, move || {
        FileServer::new(store.clone())
    })?;
    tracing::info!(
        "mcp-guard files server ready: MCP URL {} (listening on {}, metadata at {}, probes at /healthz and /readyz)",
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
