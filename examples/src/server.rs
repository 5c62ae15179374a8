//! Configuration and startup of the example server, shared by its binary and the tests.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use mcp_guard::jwks::KeySourceConfig;
use mcp_guard::{Guard, GuardBuilder, Issuer, TypPolicy};
use rmcp::ServerHandler;
use rmcp::transport::streamable_http_server::{
    StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Options of a protected example server. Every flag has an environment equivalent.
#[derive(Debug, Clone, clap::Args)]
pub struct ServerOptions {
    /// Issuer identifier of the trusted authorization server (repeat for several). Its keys
    /// are found through RFC 8414 / OpenID Connect discovery unless --jwks-uri is given.
    #[arg(
        long = "issuer",
        env = "MCP_GUARD_ISSUER",
        value_delimiter = ',',
        required = true
    )]
    pub issuers: Vec<String>,

    /// Public URL of the MCP endpoint, e.g. https://mcp.example.com/mcp. It is the
    /// `resource` of the metadata and the audience tokens must carry.
    #[arg(long, env = "MCP_GUARD_RESOURCE")]
    pub resource: String,

    /// Address to listen on.
    #[arg(long, env = "MCP_GUARD_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Fixed JWKS URL of the (single) issuer, instead of discovery.
    #[arg(long, env = "MCP_GUARD_JWKS_URI")]
    pub jwks_uri: Option<String>,

    /// Another accepted token audience besides the resource URL (repeatable).
    #[arg(long = "audience", env = "MCP_GUARD_AUDIENCES", value_delimiter = ',')]
    pub audiences: Vec<String>,

    /// Accept access tokens typed `JWT` or untyped, besides RFC 9068 `at+jwt`.
    #[arg(long, env = "MCP_GUARD_LENIENT_TYP")]
    pub lenient_typ: bool,

    /// Clock tolerance for exp/nbf/iat, in seconds.
    #[arg(long, env = "MCP_GUARD_LEEWAY_SECS", default_value_t = 60)]
    pub leeway_secs: u64,

    /// Minimum seconds between key refetches for unknown key ids.
    #[arg(long, env = "MCP_GUARD_KEY_COOLDOWN_SECS", default_value_t = 30)]
    pub key_cooldown_secs: u64,

    /// Browser origin allowed to call the server besides its own (repeatable).
    #[arg(
        long = "allowed-origin",
        env = "MCP_GUARD_ALLOWED_ORIGINS",
        value_delimiter = ','
    )]
    pub allowed_origins: Vec<String>,

    /// Serve only stateless requests (no legacy Mcp-Session-Id sessions), answering with JSON.
    #[arg(long, env = "MCP_GUARD_STATELESS")]
    pub stateless: bool,

    /// `resource_name` of the protected resource metadata.
    #[arg(
        long,
        env = "MCP_GUARD_RESOURCE_NAME",
        default_value = "mcp-guard example file store"
    )]
    pub resource_name: String,
}

impl ServerOptions {
    /// Options for a server at `resource` trusting `issuer`, with the defaults of the flags.
    pub fn new(issuer: &str, resource: &str, listen: SocketAddr) -> Self {
        Self {
            issuers: vec![issuer.to_owned()],
            resource: resource.to_owned(),
            listen,
            jwks_uri: None,
            audiences: Vec::new(),
            lenient_typ: false,
            leeway_secs: 60,
            key_cooldown_secs: 30,
            allowed_origins: Vec::new(),
            stateless: false,
            resource_name: "mcp-guard example file store".to_owned(),
        }
    }

    /// A guard configuration with these options; the server's policy is added by the caller.
    pub fn guard_builder(&self) -> Result<GuardBuilder, Box<dyn std::error::Error + Send + Sync>> {
        if self.jwks_uri.is_some() && self.issuers.len() != 1 {
            return Err("--jwks-uri needs exactly one --issuer".into());
        }
        let mut key_config = KeySourceConfig::default();
        key_config.refetch_cooldown = Duration::from_secs(self.key_cooldown_secs);
        let mut builder = Guard::builder()
            .resource(&self.resource)
            .leeway(Duration::from_secs(self.leeway_secs))
            .resource_name(&self.resource_name);
        for iss in &self.issuers {
            let issuer = match &self.jwks_uri {
                Some(uri) => Issuer::with_jwks_uri(iss, uri),
                None => Issuer::discover(iss),
            };
            let typ = if self.lenient_typ {
                TypPolicy::lenient()
            } else {
                TypPolicy::access_token()
            };
            builder = builder.issuer(issuer.typ(typ).key_source_config(key_config.clone()));
        }
        for a in &self.audiences {
            builder = builder.extra_audience(a);
        }
        for o in &self.allowed_origins {
            builder = builder.allowed_origin(o);
        }
        Ok(builder)
    }
}

/// A running server.
pub struct RunningServer {
    /// The address it listens on.
    pub addr: SocketAddr,
    /// The guard in front of it.
    pub guard: Guard,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl RunningServer {
    /// Stops accepting, closes open streams, and waits for the server to finish.
    pub async fn stop(self) -> std::io::Result<()> {
        self.shutdown.cancel();
        self.task
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)))
    }
}

/// Serves the handlers `factory` makes behind `guard` on `listener` until stopped.
pub fn spawn<H, F>(
    listener: TcpListener,
    options: &ServerOptions,
    guard: Guard,
    factory: F,
) -> Result<RunningServer, Box<dyn std::error::Error + Send + Sync>>
where
    H: ServerHandler + Send + 'static,
    F: Fn() -> H + Send + Sync + 'static,
{
    let addr = listener.local_addr()?;
    let shutdown = CancellationToken::new();
    let mut config = StreamableHttpServerConfig::default()
        .with_cancellation_token(shutdown.child_token())
        .with_allowed_hosts(allowed_hosts(guard.resource()));
    if options.stateless {
        config = config
            .with_legacy_session_mode(false)
            .with_json_response(true);
    }
    let mcp = StreamableHttpService::new(
        move || Ok(factory()),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    let app = guard.router(mcp);
    let token = shutdown.clone();
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { token.cancelled().await })
            .await
    });
    Ok(RunningServer {
        addr,
        guard,
        shutdown,
        task,
    })
}

fn allowed_hosts(resource: &str) -> Vec<String> {
    let mut hosts = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    if let Ok(url) = url::Url::parse(resource)
        && let Some(host) = url.host_str()
    {
        hosts.push(
            host.trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
        );
    }
    hosts
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
