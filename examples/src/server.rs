//! Configuration and startup of the example server, shared by its binary and the tests.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use mcp_guard::dpop::Dpop;
use mcp_guard::introspection::{ClientAuth, Introspection};
use mcp_guard::jwks::KeySourceConfig;
use mcp_guard::profile::Profile;
use mcp_guard::serve::{ServeConfig, serve};
use mcp_guard::{
    Guard, GuardBuilder, GuardedSessionManager, Issuer, SessionLimits, ToolCallChallenge, TypPolicy,
};
use rmcp::ServerHandler;
use rmcp::transport::streamable_http_server::{
    StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::replica_sessions::PrefixedSessions;

/// Options of a protected example server. Every flag has an environment equivalent.
#[derive(Debug, Clone, clap::Args)]
pub struct ServerOptions {
    /// Issuer identifier of the trusted authorization server (repeat for several). Its keys
    /// are found through RFC 8414 / OpenID Connect discovery unless --jwks-uri is given. A
    /// multi-tenant Entra ID issuer is written with `{tid}` and needs --tenant.
    #[arg(long = "issuer", env = "MCP_GUARD_ISSUER", value_delimiter = ',')]
    pub issuers: Vec<String>,

    /// How the identity provider shapes tokens: generic, entra, okta, cognito, auth0, keycloak.
    #[arg(long, env = "MCP_GUARD_PROFILE", default_value = "generic",
        value_parser = ["generic", "entra", "okta", "cognito", "auth0", "auth0-rbac", "keycloak"])]
    pub profile: String,

    /// Tenant accepted by a `{tid}` issuer template (Entra ID multi-tenant; repeatable).
    #[arg(long = "tenant", env = "MCP_GUARD_TENANTS", value_delimiter = ',')]
    pub tenants: Vec<String>,

    /// Cognito: the app client ids whose access tokens are accepted (they carry no `aud`).
    /// Keycloak: the server's client, whose `resource_access` roles count.
    #[arg(
        long = "client-id",
        env = "MCP_GUARD_CLIENT_IDS",
        value_delimiter = ','
    )]
    pub client_ids: Vec<String>,

    /// Keycloak: a client (`azp`) whose tokens are accepted (repeatable; required). `*`
    /// accepts any client of the realm: only for realms whose client registration you trust.
    #[arg(
        long = "allowed-client",
        env = "MCP_GUARD_ALLOWED_CLIENTS",
        value_delimiter = ','
    )]
    pub allowed_clients: Vec<String>,

    /// Namespace of the scopes at the identity provider (Entra App ID URI `api://…/`, Cognito
    /// resource server identifier): advertised with it, held without it.
    #[arg(long, env = "MCP_GUARD_SCOPE_PREFIX")]
    pub scope_prefix: Option<String>,

    /// RFC 7662 introspection endpoint for opaque tokens.
    #[arg(long, env = "MCP_GUARD_INTROSPECTION_ENDPOINT")]
    pub introspection_endpoint: Option<String>,

    /// Issuer of the opaque tokens (advertised to clients as the authorization server; the
    /// first --issuer when not given).
    #[arg(long, env = "MCP_GUARD_INTROSPECTION_ISSUER")]
    pub introspection_issuer: Option<String>,

    /// Client id of this server at the introspection endpoint.
    #[arg(long, env = "MCP_GUARD_INTROSPECTION_CLIENT_ID")]
    pub introspection_client_id: Option<String>,

    /// Client secret of this server at the introspection endpoint (prefer the environment).
    #[arg(
        long,
        env = "MCP_GUARD_INTROSPECTION_CLIENT_SECRET",
        hide_env_values = true
    )]
    pub introspection_client_secret: Option<String>,

    /// Client authentication at the introspection endpoint: basic or post.
    #[arg(long, env = "MCP_GUARD_INTROSPECTION_AUTH", default_value = "basic", value_parser = ["basic", "post"])]
    pub introspection_auth: String,

    /// Public URL of the MCP endpoint, e.g. `https://mcp.example.com/mcp`, written exactly
    /// as clients are given it (no trailing `/`). It is the `resource` of the metadata and the
    /// audience tokens must carry. Required to serve (not for --print-manifest, where it is
    /// empty when not given).
    #[arg(
        long,
        env = "MCP_GUARD_RESOURCE",
        required_unless_present = "print_manifest",
        default_value = "",
        hide_default_value = true
    )]
    pub resource: String,

    /// At start-up, load every issuer's discovery document and keys: `fail` exits with status
    /// 1 when one cannot be loaded, `warn` logs it and serves (tokens of that issuer get 503
    /// until its keys load), `off` loads them at the first token.
    #[arg(long, env = "MCP_GUARD_STARTUP_CHECK", default_value_t = StartupCheck::Warn)]
    pub startup_check: StartupCheck,

    /// Address to listen on.
    #[arg(long, env = "MCP_GUARD_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Fixed key set URL instead of discovery: `URL` for the single --issuer, or
    /// `ISSUER=URL` for one of several (repeatable), e.g. Entra ID's v1 and v2 templates.
    #[arg(long = "jwks-uri", env = "MCP_GUARD_JWKS_URI")]
    pub jwks_uris: Vec<String>,

    /// Another accepted token audience besides the resource URL (repeatable).
    #[arg(long = "audience", env = "MCP_GUARD_AUDIENCES", value_delimiter = ',')]
    pub audiences: Vec<String>,

    /// Accept access tokens typed `JWT` or untyped, besides RFC 9068 `at+jwt` (the non-generic
    /// profiles already do).
    #[arg(long, env = "MCP_GUARD_LENIENT_TYP")]
    pub lenient_typ: bool,

    /// Clock tolerance for exp/nbf/iat, in seconds.
    #[arg(long, env = "MCP_GUARD_LEEWAY_SECS", default_value_t = 60)]
    pub leeway_secs: u64,

    /// Minimum seconds between key refetches for unknown key ids.
    #[arg(long, env = "MCP_GUARD_KEY_COOLDOWN_SECS", default_value_t = 30)]
    pub key_cooldown_secs: u64,

    /// Tokens the verified-token cache holds (default: the guard's,
    /// `GuardBuilder::token_cache_capacity`; 0 turns it off: every request verifies its
    /// token's signature). A cached token is not verified again while a fresh verification
    /// would still accept it and its key is still published.
    #[arg(long, env = "MCP_GUARD_TOKEN_CACHE_CAPACITY")]
    pub token_cache_capacity: Option<usize>,

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

    /// The anonymous access posture: discovery (`initialize`, lists) and the `#[public]` tool
    /// work without a token, and only protected tools are challenged. Without it every request
    /// needs a token, so every client signs in at its first request.
    #[arg(long, env = "MCP_GUARD_ALLOW_ANONYMOUS")]
    pub allow_anonymous: bool,

    /// Serve the guard's metrics in Prometheus' text format at `http://ADDR/metrics`
    /// (decisions, authentications, key fetches, introspection; see docs/operations.md).
    #[arg(long, env = "MCP_GUARD_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,

    /// How a tool call refused for want of a token or of scopes carries its challenge:
    /// `http` (401/403 with `WWW-Authenticate`, what spec clients such as Claude react to),
    /// `tool_result` (a 200 `isError` result with `_meta["mcp/www_authenticate"]`, what
    /// ChatGPT reacts to) or `auto` (the tool result for ChatGPT, HTTP for the others).
    #[arg(
        long,
        env = "MCP_GUARD_TOOL_CALL_CHALLENGE",
        default_value_t = ToolCallChallenge::Http
    )]
    pub tool_call_challenge: ToolCallChallenge,

    /// Most legacy sessions held at once.
    #[arg(long, env = "MCP_GUARD_MAX_SESSIONS", default_value_t = 10_000)]
    pub max_sessions: usize,

    /// Most legacy sessions one subject holds; its oldest ends when it opens another.
    #[arg(long, env = "MCP_GUARD_MAX_SESSIONS_PER_SUBJECT", default_value_t = 32)]
    pub max_sessions_per_subject: usize,

    /// Most legacy sessions opened without a token and not signed in to (anonymous posture).
    #[arg(long, env = "MCP_GUARD_MAX_ANONYMOUS_SESSIONS", default_value_t = 256)]
    pub max_anonymous_sessions: usize,

    /// Refuse legacy sessions opened without a token (anonymous posture): such an
    /// `initialize` gets the sign-in challenge.
    #[arg(long, env = "MCP_GUARD_NO_ANONYMOUS_SESSIONS")]
    pub no_anonymous_sessions: bool,

    /// `resource_name` of the protected resource metadata.
    #[arg(
        long,
        env = "MCP_GUARD_RESOURCE_NAME",
        default_value = "mcp-guard example file store"
    )]
    pub resource_name: String,

    /// Milliseconds a client may take to send a request's head (request line and headers),
    /// and that a connection may stay idle; a connection that misses it is closed.
    #[arg(
        long,
        env = "MCP_GUARD_HEADER_READ_TIMEOUT_MS",
        default_value_t = 10_000
    )]
    pub header_read_timeout_ms: u64,

    /// Milliseconds a client may take to send a whole request body, from the end of its head;
    /// a request that misses it is answered 408.
    #[arg(long, env = "MCP_GUARD_BODY_READ_TIMEOUT_MS", default_value_t = 30_000)]
    pub body_read_timeout_ms: u64,

    /// The most connections served at once; more wait in the listen backlog.
    #[arg(long, env = "MCP_GUARD_MAX_CONNECTIONS", default_value_t = 1024)]
    pub max_connections: usize,

    /// Milliseconds connections stay open after SIGTERM, answering with `Connection: close`
    /// so that a proxy stops reusing them, before they are closed.
    #[arg(long, env = "MCP_GUARD_DRAIN_MS", default_value_t = 5_000)]
    pub drain_ms: u64,

    /// DPoP-bound tokens (RFC 9449): `off` (a bound token is refused), `allowed` (beside
    /// bearer tokens) or `required` (bearer tokens refused).
    #[arg(long, env = "MCP_GUARD_DPOP", default_value_t = DpopMode::Off)]
    pub dpop: DpopMode,

    /// Require server-issued DPoP nonces, MACed with this secret (at least 32 bytes, the same
    /// on every instance behind one resource URL).
    #[arg(long, env = "MCP_GUARD_DPOP_NONCE_SECRET", hide_env_values = true)]
    pub dpop_nonce_secret: Option<String>,

    /// Prefix of every legacy session id this server creates (`[A-Za-z0-9_-]`), so that a
    /// load balancer can route a session back to its replica (see `scale-out/README.md`).
    #[arg(long, env = "MCP_GUARD_SESSION_ID_PREFIX")]
    pub session_id_prefix: Option<String>,
}

impl ServerOptions {
    /// Options for a server at `resource` trusting `issuer`, with the defaults of the flags,
    /// except the drain: none, so that [`RunningServer::stop`] returns as soon as the requests
    /// in flight are answered (what tests and the quickstart want).
    pub fn new(issuer: &str, resource: &str, listen: SocketAddr) -> Self {
        Self {
            issuers: vec![issuer.to_owned()],
            profile: "generic".to_owned(),
            tenants: Vec::new(),
            client_ids: Vec::new(),
            allowed_clients: Vec::new(),
            scope_prefix: None,
            introspection_endpoint: None,
            introspection_issuer: None,
            introspection_client_id: None,
            introspection_client_secret: None,
            introspection_auth: "basic".to_owned(),
            resource: resource.to_owned(),
            startup_check: StartupCheck::Warn,
            listen,
            jwks_uris: Vec::new(),
            audiences: Vec::new(),
            lenient_typ: false,
            leeway_secs: 60,
            key_cooldown_secs: 30,
            token_cache_capacity: None,
            allowed_origins: Vec::new(),
            stateless: false,
            allow_anonymous: false,
            metrics_listen: None,
            tool_call_challenge: ToolCallChallenge::Http,
            max_sessions: 10_000,
            max_sessions_per_subject: 32,
            max_anonymous_sessions: 256,
            no_anonymous_sessions: false,
            resource_name: "mcp-guard example file store".to_owned(),
            header_read_timeout_ms: 10_000,
            body_read_timeout_ms: 30_000,
            max_connections: 1024,
            drain_ms: 0,
            dpop: DpopMode::Off,
            dpop_nonce_secret: None,
            session_id_prefix: None,
        }
    }

    /// The serving bounds: read deadlines, connection limit, drain.
    pub fn serve_config(&self) -> ServeConfig {
        ServeConfig::default()
            .header_read_timeout(Duration::from_millis(self.header_read_timeout_ms))
            .body_read_timeout(Duration::from_millis(self.body_read_timeout_ms))
            .max_connections(self.max_connections)
            .drain(Duration::from_millis(self.drain_ms))
            .grace(SHUTDOWN_GRACE)
    }

    /// The key set URL of each issuer, in order (`None`: discovery), from `--jwks-uri`.
    fn key_set_urls(&self) -> Result<Vec<Option<&str>>, Box<dyn std::error::Error + Send + Sync>> {
        let mut urls: Vec<Option<&str>> = vec![None; self.issuers.len()];
        for entry in &self.jwks_uris {
            let paired = self.issuers.iter().position(|iss| {
                entry
                    .strip_prefix(iss.as_str())
                    .is_some_and(|rest| rest.starts_with('='))
            });
            let (index, url) = match paired {
                Some(i) => (i, &entry[self.issuers[i].len() + 1..]),
                None if self.issuers.len() == 1 => (0, entry.as_str()),
                None => {
                    return Err(format!(
                        "--jwks-uri `{entry}`: with several --issuer values, write ISSUER=URL naming one of them"
                    )
                    .into());
                }
            };
            if urls[index].replace(url).is_some() {
                return Err(format!(
                    "--jwks-uri is given twice for issuer `{}`",
                    self.issuers[index]
                )
                .into());
            }
        }
        Ok(urls)
    }

    /// A guard configuration with these options; the server's policy is added by the caller.
    pub fn guard_builder(&self) -> Result<GuardBuilder, Box<dyn std::error::Error + Send + Sync>> {
        let jwks = self.key_set_urls()?;
        let mut key_config = KeySourceConfig::default();
        key_config.refetch_cooldown = Duration::from_secs(self.key_cooldown_secs);
        if self.resource.is_empty() {
            return Err("give --resource: the public URL of the MCP endpoint".into());
        }
        let mut builder = Guard::builder()
            .resource(&self.resource)
            .leeway(Duration::from_secs(self.leeway_secs))
            .resource_name(&self.resource_name);
        let mut clients = self.client_ids.clone();
        if self.profile == "cognito" && clients.is_empty() {
            return Err(
                "--profile cognito needs --client-id: Cognito access tokens carry no audience"
                    .into(),
            );
        }
        if self.profile == "keycloak" {
            if self.client_ids.len() != 1 || self.allowed_clients.is_empty() {
                return Err("--profile keycloak needs one --client-id (the server's client, whose roles count) and --allowed-client for each client whose tokens are accepted".into());
            }
            clients.extend(self.allowed_clients.iter().cloned());
        }
        let profile = Profile::by_name(&self.profile, &clients)
            .ok_or_else(|| format!("unknown profile `{}`", self.profile))?;
        for (iss, jwks) in self.issuers.iter().zip(jwks) {
            let mut issuer = match jwks {
                Some(uri) => Issuer::with_jwks_uri(iss, uri),
                None => Issuer::discover(iss),
            };
            issuer = issuer
                .profile(profile.clone())
                .key_source_config(key_config.clone());
            if self.lenient_typ {
                issuer = issuer.typ(TypPolicy::lenient());
            }
            if iss.contains("{tid}") {
                issuer = issuer.tenants(self.tenants.iter().cloned());
            }
            builder = builder.issuer(issuer);
        }
        if let Some(prefix) = &self.scope_prefix {
            builder = builder.scope_prefix(prefix);
        }
        if let Some(tokens) = self.token_cache_capacity {
            builder = builder.token_cache_capacity(tokens);
        }
        if self.allow_anonymous {
            builder = builder.anonymous(true);
        }
        let dpop = match self.dpop {
            DpopMode::Off if self.dpop_nonce_secret.is_some() => {
                return Err("--dpop-nonce-secret needs --dpop allowed or --dpop required".into());
            }
            DpopMode::Off => None,
            DpopMode::Allowed => Some(Dpop::allowed()),
            DpopMode::Required => Some(Dpop::required()),
        };
        if let Some(mut dpop) = dpop {
            if let Some(secret) = &self.dpop_nonce_secret {
                dpop = dpop.nonces(secret.as_bytes());
            }
            builder = builder.dpop(dpop);
        }
        builder = builder
            .tool_call_challenge(self.tool_call_challenge)
            .session_limits(
                SessionLimits::default()
                    .total(self.max_sessions)
                    .per_subject(self.max_sessions_per_subject)
                    .anonymous(self.max_anonymous_sessions)
                    .anonymous_sessions(!self.no_anonymous_sessions),
            );
        if let Some(endpoint) = &self.introspection_endpoint {
            let (Some(id), Some(secret)) = (
                &self.introspection_client_id,
                &self.introspection_client_secret,
            ) else {
                return Err("--introspection-endpoint needs --introspection-client-id and --introspection-client-secret".into());
            };
            let auth = if self.introspection_auth == "post" {
                ClientAuth::Post
            } else {
                ClientAuth::Basic
            };
            let mut i = Introspection::new(endpoint, id, secret)?.client_auth(auth);
            match self.introspection_issuer.as_ref().or(self.issuers.first()) {
                Some(issuer) => i = i.issuer(issuer),
                None => {
                    return Err("--introspection-endpoint without --issuer needs --introspection-issuer: the authorization server clients sign in with".into());
                }
            }
            builder = builder.introspection(i);
        } else if self.issuers.is_empty() {
            return Err("give --issuer, or --introspection-endpoint for opaque tokens".into());
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

/// How the server treats DPoP-bound tokens (`--dpop`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DpopMode {
    /// Bound tokens are refused.
    Off,
    /// Bound tokens with their proofs, and bearer tokens.
    Allowed,
    /// Bound tokens with their proofs only.
    Required,
}

impl std::fmt::Display for DpopMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Off => "off",
            Self::Allowed => "allowed",
            Self::Required => "required",
        })
    }
}

/// What the server checks of its issuers before serving (`--startup-check`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StartupCheck {
    /// Exit with status 1 when an issuer's keys cannot be loaded.
    Fail,
    /// Log a warning and serve.
    Warn,
    /// Load keys at the first token.
    Off,
}

impl std::fmt::Display for StartupCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Fail => "fail",
            Self::Warn => "warn",
            Self::Off => "off",
        })
    }
}

/// Loads every issuer's keys as `check` says: `Err` only for [`StartupCheck::Fail`] when one
/// could not be loaded.
pub async fn startup_check(
    guard: &Guard,
    check: StartupCheck,
) -> Result<(), mcp_guard::KeysUnavailable> {
    if check == StartupCheck::Off {
        return Ok(());
    }
    match guard.preload_keys().await {
        Ok(()) => {
            tracing::info!("start-up check: every issuer's keys are loaded");
            Ok(())
        }
        Err(e) if check == StartupCheck::Fail => Err(e),
        Err(e) => {
            tracing::warn!(
                "start-up check: {e}; tokens of that issuer are answered 503 until its keys load (the readiness probe says when)"
            );
            Ok(())
        }
    }
}

/// The probes served beside the guard's routes, without a token: `GET /healthz` answers 200
/// `ok` while the server serves; `GET /readyz` answers 200 once every issuer's key set is
/// loaded, else 503 with a JSON reason, after trying to load the missing ones (at most one
/// fetch per issuer per key refetch cooldown, so probes cannot flood an issuer).
pub fn probes(guard: Guard) -> axum::Router {
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    let readyz = move || {
        let guard = guard.clone();
        async move {
            if !guard.issuers_without_keys().is_empty() {
                let _ = guard.preload_keys().await;
            }
            let missing = guard.issuers_without_keys();
            if missing.is_empty() {
                (
                    StatusCode::OK,
                    axum::Json(serde_json::json!({"status": "ready"})),
                )
                    .into_response()
            } else {
                let body = serde_json::json!({
                    "status": "not ready",
                    "reason": "no key set loaded for these issuers",
                    "issuers": missing,
                });
                (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response()
            }
        }
    };
    axum::Router::new()
        .route("/healthz", axum::routing::get(|| async { "ok" }))
        .route("/readyz", axum::routing::get(readyz))
}

/// How long requests still in flight when the drain ends may run on before their connections
/// are dropped.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// A running server.
pub struct RunningServer {
    /// The address it listens on.
    pub addr: SocketAddr,
    /// The guard in front of it.
    pub guard: Guard,
    /// rmcp's sessions, bounded by the guard (`None` with `--session-id-prefix`, whose
    /// manager is another type).
    pub sessions: Option<Arc<GuardedSessionManager<LocalSessionManager>>>,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl RunningServer {
    /// Stops accepting, drains (see [`mcp_guard::serve::serve`]), closes open streams, and
    /// waits for the server to finish.
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
    if matches!(guard.mcp_path(), "/healthz" | "/readyz") {
        return Err(format!(
            "the MCP endpoint `{}` would hide the /healthz and /readyz probes: serve it at another path",
            guard.resource()
        )
        .into());
    }
    let shutdown = CancellationToken::new();
    // rmcp's own token ends open sessions and streams. It is cancelled only when the drain
    // ends (the HTTP server stopped accepting and in-flight requests were answered), so that
    // a shutdown never turns a request being served into an error.
    let streams = CancellationToken::new();
    let config = mcp_config(options, guard.resource(), streams.clone());
    let (app, sessions) = match &options.session_id_prefix {
        Some(prefix) => {
            if prefix.is_empty()
                || !prefix
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            {
                return Err(format!(
                    "--session-id-prefix `{prefix}`: use letters, digits, `_` and `-` only"
                )
                .into());
            }
            let mut local = LocalSessionManager::default();
            local.session_config.keep_alive = Some(guard.session_limits().idle_life());
            let prefixed =
                guard.wrap_session_manager(PrefixedSessions::new(prefix.as_str(), local));
            (
                guard.router(StreamableHttpService::new(
                    move || Ok(factory()),
                    prefixed,
                    config,
                )),
                None,
            )
        }
        None => {
            let sessions = guard.session_manager();
            (
                guard.router(StreamableHttpService::new(
                    move || Ok(factory()),
                    sessions.clone(),
                    config,
                )),
                Some(sessions),
            )
        }
    };
    // The probes are not behind the guard: a load balancer has no token.
    let app = app.merge(probes(guard.clone()));
    let serve_config = options.serve_config();
    let drain = Duration::from_millis(options.drain_ms);
    let token = shutdown.clone();
    let task = tokio::spawn(async move {
        // Open streams (SSE) end when the drain does, so that their connections can close.
        let draining = token.clone();
        let end_streams = streams.clone();
        let ender = tokio::spawn(async move {
            draining.cancelled().await;
            tokio::time::sleep(drain).await;
            end_streams.cancel();
        });
        let served = serve(listener, app, serve_config, async move {
            token.cancelled().await;
        })
        .await;
        streams.cancel();
        ender.abort();
        served
    });
    Ok(RunningServer {
        addr,
        guard,
        sessions,
        shutdown,
        task,
    })
}

/// The MCP service's configuration for `options`: the hosts `resource` names, stateless with
/// JSON answers under `--stateless`, streams ended by `streams`.
pub fn mcp_config(
    options: &ServerOptions,
    resource: &str,
    streams: CancellationToken,
) -> StreamableHttpServerConfig {
    let config = StreamableHttpServerConfig::default()
        .with_cancellation_token(streams)
        .with_allowed_hosts(allowed_hosts(resource));
    if options.stateless {
        config
            .with_legacy_session_mode(false)
            .with_json_response(true)
    } else {
        config
    }
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

/// Serves the process's metrics at `http://addr/metrics` in Prometheus' text format. The
/// recorder is process-wide: call it once, before the guard is built.
pub fn serve_metrics(addr: SocketAddr) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    metrics_exporter_prometheus::PrometheusBuilder::new()
        .with_http_listener(addr)
        .install()
        .map_err(|e| format!("--metrics-listen {addr}: {e}").into())
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
