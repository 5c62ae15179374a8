//! A kit for testing a protected server (feature `testing`): tokens from a test issuer whose
//! keys the guard holds in memory (no network), principals built from chosen claims, the real
//! rmcp server driven in-process by the real rmcp client as a chosen caller, and the parsed
//! `WWW-Authenticate` challenge of an HTTP answer.
//!
//! A `#[protected]` method takes a hidden first parameter (the in-process check), so it cannot
//! be called directly in a unit test. Call it through the server instead, as the caller of
//! your choice: [`connect`] serves the server over an in-memory pipe with the guard's policy
//! and that caller in every request, exactly as the guard layer leaves them behind HTTP. To
//! test the in-process checks over HTTP with the layer bypassed, a middleware of the test's
//! own calls [`leave_for_in_process_checks`] in its place.
//!
//! ```
//! use mcp_guard::testing;
//! use rmcp::model::CallToolRequestParams;
//! use rmcp::{ServerHandler, tool, tool_handler, tool_router, handler::server::router::tool::ToolRouter};
//!
//! mcp_guard::scopes! {
//!     pub Scopes {
//!         #[baseline]
//!         TICKETS_READ = "tickets:read",
//!         TICKETS_WRITE = "tickets:write",
//!     }
//! }
//!
//! #[derive(Clone, mcp_guard::ProtectedResource)]
//! #[protected_resource(scopes = Scopes)]
//! pub struct Tickets { tool_router: ToolRouter<Self> }
//!
//! #[mcp_guard::guarded]
//! #[tool_router]
//! impl Tickets {
//!     /// Opens a ticket.
//!     #[mcp_guard::protected(scopes = TICKETS_WRITE)]
//!     #[tool]
//!     async fn open_ticket(&self) -> String { "opened".into() }
//! }
//!
//! #[mcp_guard::guarded]
//! #[tool_handler(router = self.tool_router, name = "tickets", version = "0.1.0")]
//! impl ServerHandler for Tickets {}
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let issuer = testing::TestIssuer::new();
//! let guard = issuer.guard::<Tickets>().build()?;
//! let tickets = || Tickets { tool_router: Tickets::tool_router() };
//!
//! // As a caller holding `tickets:write`: the tool runs.
//! let writer = testing::principal("alice", "tickets:write");
//! let client = testing::connect(&guard, tickets(), Some(writer)).await?;
//! let done = client.call_tool(CallToolRequestParams::new("open_ticket")).await?;
//! assert_eq!(done.content[0].as_text().unwrap().text, "opened");
//!
//! // As one holding only `tickets:read`: refused (403, JSON-RPC -32003).
//! let reader = testing::principal("bob", "tickets:read");
//! let client = testing::connect(&guard, tickets(), Some(reader)).await?;
//! let refused = client.call_tool(CallToolRequestParams::new("open_ticket")).await;
//! assert_eq!(testing::error_code(&refused.unwrap_err()), Some(mcp_guard::rmcp::FORBIDDEN));
//!
//! // A real signed token, verified as the HTTP layer verifies one.
//! let token = issuer.token().subject("carol").scope("tickets:read").audience(testing::RESOURCE).sign();
//! assert_eq!(guard.authenticate(&token).await?.subject(), "carol");
//! # Ok(()) }
//! ```

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rmcp::service::{RoleClient, RoleServer, RunningService, Service, ServiceError};
use rmcp::{ServiceExt as _, model::ErrorCode};
use serde_json::{Map, Value, json};

use crate::audit::Enforcement;
use crate::challenge::ParsedChallenge;
use crate::dev::{DevAuthServer, TokenBuilder};
use crate::jwks::{KeySet, SUPPORTED_ALGORITHMS};
use crate::policy::Policy;
use crate::principal::Principal;
use crate::rmcp::InProcess;
use crate::{DeclaredOperations, Guard, GuardBuilder, Issuer, ProtectedResource};

/// The issuer identifier of [`TestIssuer::new`] and of the principals [`principal`] builds.
pub const ISSUER: &str = "https://issuer.test";

/// The resource URL of the guards [`TestIssuer::guard`] configures: the audience tokens for
/// them carry.
pub const RESOURCE: &str = "http://127.0.0.1/mcp";

/// How long the principals [`principal`] builds stay valid.
const PRINCIPAL_LIFETIME: Duration = Duration::from_secs(3600);

/// An issuer of signed test tokens, with a fresh ES256 key held in memory. A guard trusts it
/// through [`TestIssuer::trust`] without fetching anything.
///
/// ```
/// let issuer = mcp_guard::testing::TestIssuer::new();
/// let token = issuer.token().subject("alice").scope("files:read").audience("http://127.0.0.1/mcp").sign();
/// assert_eq!(token.split('.').count(), 3);
/// ```
#[derive(Clone)]
pub struct TestIssuer {
    keys: DevAuthServer,
}

impl std::fmt::Debug for TestIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestIssuer")
            .field("issuer", &self.issuer())
            .finish_non_exhaustive()
    }
}

impl Default for TestIssuer {
    fn default() -> Self {
        Self::new()
    }
}

impl TestIssuer {
    /// An issuer named [`ISSUER`].
    pub fn new() -> Self {
        Self::named(ISSUER)
    }

    /// An issuer with this identifier (an absolute URL).
    ///
    /// # Panics
    ///
    /// If `issuer` is not an absolute URL.
    pub fn named(issuer: &str) -> Self {
        let keys = DevAuthServer::builder()
            .build(issuer)
            .unwrap_or_else(|e| panic!("test issuer `{issuer}`: {e}"));
        Self { keys }
    }

    /// The issuer identifier (`iss`).
    pub fn issuer(&self) -> &str {
        self.keys.issuer()
    }

    /// Its public JWK Set.
    pub fn jwks(&self) -> Value {
        self.keys.jwks()
    }

    /// The guard's view of it: this issuer with its keys given directly, never fetched.
    pub fn trust(&self) -> Issuer {
        let set = serde_json::from_value(self.jwks()).expect("the JWK Set is well formed");
        let (keys, skipped) = KeySet::from_jwks(&set, &SUPPORTED_ALGORITHMS);
        debug_assert!(skipped.is_empty(), "the test key is usable");
        Issuer::with_keys(self.issuer(), keys)
    }

    /// A token signed by this issuer: by default a valid RFC 9068 access token (`typ`
    /// `at+jwt`) for the subject `dev-user` and the client `dev-client`, valid for an hour,
    /// with no scope and no audience; set them on the builder.
    pub fn token(&self) -> TokenBuilder {
        self.keys.token()
    }

    /// A guard configuration for the server type `S` ([`GuardBuilder::server`]) on
    /// [`RESOURCE`], trusting this issuer. Add to it, then `.build()`.
    pub fn guard<S: ProtectedResource + DeclaredOperations>(&self) -> GuardBuilder {
        Guard::builder()
            .server::<S>()
            .resource(RESOURCE)
            .issuer(self.trust())
    }
}

/// A caller issued by [`ISSUER`] for `subject`, holding `scopes` (space-separated), through
/// the client `test-client`, valid for an hour. For a principal with other claims (roles,
/// an app-only token), use [`Principal::from_claims`].
///
/// # Panics
///
/// If `subject` is empty.
///
/// ```
/// let caller = mcp_guard::testing::principal("alice", "files:read files:write");
/// assert_eq!(caller.subject(), "alice");
/// assert!(caller.has_scope("files:write"));
/// ```
pub fn principal(subject: &str, scopes: &str) -> Principal {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let claims = json!({
        "iss": ISSUER,
        "sub": subject,
        "client_id": "test-client",
        "scope": scopes,
        "iat": now,
        "exp": now + PRINCIPAL_LIFETIME.as_secs(),
    });
    let Value::Object(claims) = claims else {
        unreachable!("an object literal")
    };
    Principal::from_claims(claims).unwrap_or_else(|e| panic!("test principal: {e}"))
}

/// The real rmcp client, connected in-process to a server served as one caller; dereferences
/// to the client's [`Peer`](rmcp::Peer) (`call_tool`, `list_all_tools`, ...). Dropping it
/// stops both sides.
pub struct TestClient<S: Service<RoleServer>> {
    client: RunningService<RoleClient, ()>,
    server: RunningService<RoleServer, InProcess<S>>,
}

impl<S: Service<RoleServer>> std::fmt::Debug for TestClient<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestClient")
            .field("principal", &self.server.service().principal())
            .finish_non_exhaustive()
    }
}

impl<S: Service<RoleServer>> std::ops::Deref for TestClient<S> {
    type Target = rmcp::Peer<RoleClient>;
    fn deref(&self) -> &Self::Target {
        &self.client
    }
}

impl<S: Service<RoleServer>> TestClient<S> {
    /// Closes the connection and waits for both sides to end.
    pub async fn close(self) {
        let _ = self.client.cancel().await;
        let _ = self.server.cancel().await;
    }
}

/// Why [`connect`] could not connect.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The server side failed to start.
    #[error("the server did not start: {0}")]
    Server(#[source] rmcp::service::ServerInitializeError),
    /// The client side failed to initialize.
    #[error("the client did not connect: {0}")]
    Client(#[source] rmcp::service::ClientInitializeError),
}

/// Serves `server` over an in-memory pipe with `guard`'s policy and `principal` as the caller
/// of every request ([`Guard::in_process`]: `None` is a caller without a token), and connects
/// the real rmcp client to it. The `#[protected]` checks, the `tools/list` filtering and
/// [`crate::rmcp::authorize`] decide as they do behind the HTTP layer.
pub async fn connect<S: Service<RoleServer>>(
    guard: &Guard,
    server: S,
    principal: Option<Principal>,
) -> Result<TestClient<S>, ConnectError> {
    let (server_io, client_io) = tokio::io::duplex(64 * 1024);
    let service = guard.in_process(server, principal);
    let (server, client) = tokio::join!(service.serve(server_io), ().serve(client_io));
    Ok(TestClient {
        server: server.map_err(ConnectError::Server)?,
        client: client.map_err(ConnectError::Client)?,
    })
}

/// The JSON-RPC error code of a refused request, if the server answered with an error:
/// [`UNAUTHENTICATED`](crate::rmcp::UNAUTHENTICATED) (-32001) without a caller,
/// [`FORBIDDEN`](crate::rmcp::FORBIDDEN) (-32003) for a caller lacking scopes or roles.
pub fn error_code(error: &ServiceError) -> Option<i32> {
    match error {
        ServiceError::McpError(e) => {
            let ErrorCode(code) = e.code;
            Some(code)
        }
        _ => None,
    }
}

/// The one `WWW-Authenticate` challenge of an HTTP answer, parsed (`None` when there is none,
/// several, or one that does not parse).
///
/// ```
/// let mut headers = http::HeaderMap::new();
/// headers.insert(
///     "www-authenticate",
///     r#"Bearer error="insufficient_scope", scope="tickets:write""#.parse().unwrap(),
/// );
/// let challenge = mcp_guard::testing::challenge(&headers).unwrap();
/// assert_eq!(challenge.param("scope"), Some("tickets:write"));
/// ```
pub fn challenge(headers: &http::HeaderMap) -> Option<ParsedChallenge> {
    let mut values = headers.get_all(http::header::WWW_AUTHENTICATE).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return None;
    };
    crate::challenge::parse(value.to_str().ok()?).ok()
}

/// Leaves in a request's extensions what the guard layer leaves in every request it lets
/// through: the policy the in-process checks decide with and, when given, the verified
/// caller. For tests of the in-process checks alone: a middleware of the test's own in front
/// of rmcp's service, in place of the guard layer, so that nothing but `#[protected]`'s
/// checks stands between a call and its tool. No audit sink is left: the in-process checks'
/// refusals go to the `mcp_guard::audit` log target only.
///
/// ```
/// # use std::sync::Arc;
/// let policy = Arc::new(mcp_guard::Policy::builder().build().unwrap());
/// let mut request = http::Request::new(());
/// let caller = mcp_guard::testing::principal("mallory", "files:read");
/// mcp_guard::testing::leave_for_in_process_checks(request.extensions_mut(), policy, Some(caller));
/// assert!(request.extensions().get::<mcp_guard::Principal>().is_some());
/// ```
pub fn leave_for_in_process_checks(
    extensions: &mut http::Extensions,
    policy: Arc<Policy>,
    caller: Option<Principal>,
) {
    extensions.insert(Arc::new(Enforcement { policy, sink: None }));
    if let Some(caller) = caller {
        extensions.insert(caller);
    }
}

/// The claims of a token as the guard would read them, without verifying it (for asserting
/// what a test issuer or a development server issued). `None` for a token that is not a JWT.
pub fn claims_of(token: &str) -> Option<Map<String, Value>> {
    use base64::Engine as _;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}
