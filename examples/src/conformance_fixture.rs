//! The server fixture of the MCP conformance suite's server-side scope-challenge scenario
//! (SEP-2350; modelcontextprotocol/conformance issue #480, pull request #481, not yet
//! published): the suite's portable fixtures, each behind the scopes the scenario names, and
//! its two opaque test tokens.
//!
//! | operation | fixture | scopes one challenge must name |
//! |---|---|---|
//! | tool | `tools/call` `test_simple_text` | `mcp:conformance:tools:call`, `mcp:conformance:tools:test_simple_text` |
//! | static resource | `resources/read` `test://static-text` | `mcp:conformance:resources:read`, `mcp:conformance:resources:static` |
//! | template resource | `resources/read` `test://template/{id}/data` | `mcp:conformance:resources:read`, `mcp:conformance:resources:template:{id}` (the URI's own id) |
//! | prompt | `prompts/get` `test_simple_prompt` | `mcp:conformance:prompts:get`, `mcp:conformance:prompts:test_simple_prompt` |
//!
//! [`LOW_TOKEN`] (`mcp-conformance-scope-low`) stands for a caller holding only the baseline
//! `mcp:conformance:baseline`; [`FULL_TOKEN`] (`mcp-conformance-scope-full`) for one holding
//! every scope above, the template's for id `123`, as the scenario reads it. Both are
//! [`StaticTokens`]: opaque, accepted by lookup. The server also trusts its development
//! authorization server, so OAuth clients can sign in as usual.
//!
//! One difference from the scenario's wording, by design: the scenario leaves the behaviour
//! without a token "unchanged" for SDK servers that need none, but mcp-guard never lets a
//! request without a token reach a protected operation. The fixture serves discovery without a
//! token (the anonymous access posture) and answers a protected operation called without one
//! with the 401 challenge.

use std::net::SocketAddr;
use std::sync::Arc;

use mcp_guard::dev::{DevAuthServer, RunningDevAuthServer};
use mcp_guard::policy::Requirement;
use mcp_guard::scope::ScopeCatalogue as _;
use mcp_guard::{Guard, ProtectedResource, StaticTokens, guarded, protected};
use rmcp::handler::server::router::prompt::PromptRouter;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::model::{
    ListResourceTemplatesResult, ListResourcesResult, PaginatedRequestParams, PromptMessage,
    ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult, Resource,
    ResourceContents, ResourceTemplate, Role,
};
use rmcp::service::RequestContext;
use rmcp::{
    ErrorData, RoleServer, ServerHandler, prompt, prompt_handler, prompt_router, tool,
    tool_handler, tool_router,
};
use tokio::net::TcpListener;

use crate::server::{self, RunningServer, ServerOptions};

mcp_guard::scopes! {
    /// The scopes of the scope-challenge scenario.
    pub Scopes {
        /// What every signed-in caller holds.
        #[baseline]
        BASELINE = "mcp:conformance:baseline",
        /// Calling tools.
        TOOLS_CALL = "mcp:conformance:tools:call",
        /// Calling `test_simple_text`.
        TOOLS_SIMPLE_TEXT = "mcp:conformance:tools:test_simple_text",
        /// Reading resources.
        RESOURCES_READ = "mcp:conformance:resources:read",
        /// Reading `test://static-text`.
        RESOURCES_STATIC = "mcp:conformance:resources:static",
        /// Getting prompts.
        PROMPTS_GET = "mcp:conformance:prompts:get",
        /// Getting `test_simple_prompt`.
        PROMPTS_SIMPLE = "mcp:conformance:prompts:test_simple_prompt",
    }
}

/// The opaque token of a caller holding only the baseline scope.
pub const LOW_TOKEN: &str = "mcp-conformance-scope-low";
/// The opaque token of a caller holding every scope the scenario requires.
pub const FULL_TOKEN: &str = "mcp-conformance-scope-full";
/// The static resource.
pub const STATIC_URI: &str = "test://static-text";
/// The resource template.
pub const TEMPLATE: &str = "test://template/{id}/data";
/// The scope the template's URI names.
pub const TEMPLATE_SCOPE: &str = "mcp:conformance:resources:template:{id}";
/// The template id the full token may read, as the scenario reads it.
pub const TEMPLATE_ID: &str = "123";
/// The text `test_simple_text` answers with, as the suite's fixture does.
pub const SIMPLE_TEXT: &str = "This is a simple text response for testing.";
/// The text of `test://static-text`.
pub const STATIC_TEXT: &str = "This is the content of the static text resource.";

/// Every scope the scenario requires, the template's for [`TEMPLATE_ID`] included.
pub fn full_scopes() -> String {
    let mut all: Vec<String> = Scopes::ENTRIES.iter().map(|e| e.scope.to_owned()).collect();
    all.push(TEMPLATE_SCOPE.replace("{id}", TEMPLATE_ID));
    all.join(" ")
}

/// The scenario's two tokens.
pub fn static_tokens() -> StaticTokens {
    StaticTokens::new()
        .token(LOW_TOKEN, "conformance-low", Scopes::BASELINE.as_str())
        .and_then(|t| t.token(FULL_TOKEN, "conformance-full", &full_scopes()))
        .expect("the fixture tokens are valid")
}

/// The fixture server.
#[derive(Clone, ProtectedResource)]
#[protected_resource(scopes = Scopes, name = "mcp-guard conformance fixture", anonymous)]
pub struct ConformanceFixture {
    // Built once and shared by every clone the service's factory makes.
    tool_router: Arc<ToolRouter<Self>>,
    prompt_router: Arc<PromptRouter<Self>>,
}

impl Default for ConformanceFixture {
    fn default() -> Self {
        Self {
            tool_router: Arc::new(Self::tool_router()),
            prompt_router: Arc::new(Self::prompt_router()),
        }
    }
}

#[guarded]
#[tool_router]
impl ConformanceFixture {
    /// Answers with a fixed text.
    #[protected(scopes = [TOOLS_CALL, TOOLS_SIMPLE_TEXT])]
    #[tool]
    async fn test_simple_text(&self) -> String {
        SIMPLE_TEXT.to_owned()
    }
}

// rmcp's `#[prompt]` generates an undocumented `pub fn …_prompt_attr`.
#[allow(missing_docs)]
#[guarded]
#[prompt_router]
impl ConformanceFixture {
    /// A prompt without arguments.
    #[protected(scopes = [PROMPTS_GET, PROMPTS_SIMPLE])]
    #[prompt]
    async fn test_simple_prompt(&self) -> Vec<PromptMessage> {
        vec![PromptMessage::new_text(
            Role::User,
            "This is a simple prompt for testing.",
        )]
    }
}

#[guarded]
#[tool_handler(router = self.tool_router, name = "mcp-guard-conformance-fixture", version = "0.1.0")]
#[prompt_handler(router = self.prompt_router)]
impl ServerHandler for ConformanceFixture {
    fn get_info(&self) -> rmcp::model::ServerConfig {
        rmcp::model::ServerConfig::new(
            rmcp::model::ServerCapabilities::builder()
                .enable_tools()
                .enable_prompts()
                .enable_resources()
                .build(),
        )
        .with_server_info(rmcp::model::Implementation::new(
            "mcp-guard-conformance-fixture",
            "0.1.0",
        ))
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let resource = Resource::new(STATIC_URI, "static-text");
        Ok(ListResourcesResult::with_all_items(vec![resource]))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        Ok(ListResourceTemplatesResult::with_all_items(vec![
            ResourceTemplate::new(TEMPLATE, "template-data"),
        ]))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        mcp_guard::rmcp::authorize_resource(&ctx, &request.uri)?;
        let text = if request.uri == STATIC_URI {
            STATIC_TEXT.to_owned()
        } else if let Some(id) = request
            .uri
            .strip_prefix("test://template/")
            .and_then(|r| r.strip_suffix("/data"))
        {
            format!("Data for template id {id}")
        } else {
            return Err(ErrorData::resource_not_found("resource not found", None));
        };
        Ok(ReadResourceResult::new(vec![ResourceContents::text(text, request.uri)]).into())
    }
}

/// The fixture's guard, from `options` (its issuer, resource URL, posture flags): the
/// declarations, the resources' requirements and the static tokens.
pub fn guard(options: &ServerOptions) -> Result<Guard, Box<dyn std::error::Error + Send + Sync>> {
    let read_static = Requirement::scopes([Scopes::RESOURCES_READ, Scopes::RESOURCES_STATIC])?;
    let read_template = Requirement::scopes([Scopes::RESOURCES_READ])?.uri_scope(TEMPLATE_SCOPE)?;
    Ok(options
        .guard_builder()?
        .server::<ConformanceFixture>()
        .resource_requirement(STATIC_URI, read_static)
        .resource_requirement(TEMPLATE, read_template)
        .static_tokens(static_tokens())
        .build()?)
}

/// The running fixture and its development authorization server.
pub struct RunningFixture {
    /// The development authorization server.
    pub auth: RunningDevAuthServer,
    /// The fixture server.
    pub server: RunningServer,
    /// The MCP endpoint URL.
    pub mcp_url: String,
}

impl RunningFixture {
    /// Stops both servers (the authorization server when dropped).
    pub async fn stop(self) -> std::io::Result<()> {
        self.server.stop().await
    }
}

/// Starts the fixture on `mcp` with its authorization server on `auth`.
pub async fn start(
    mcp: TcpListener,
    auth: TcpListener,
) -> Result<RunningFixture, Box<dyn std::error::Error + Send + Sync>> {
    let addr: SocketAddr = mcp.local_addr()?;
    let mcp_url = format!("http://{addr}/mcp");
    let auth = DevAuthServer::builder()
        .auto_approve(true)
        .scopes_supported(Scopes::ENTRIES.iter().map(|e| e.scope))
        .resource(mcp_url.clone())
        .start(auth)
        .await?;
    let mut options = ServerOptions::new(auth.issuer(), &mcp_url, addr);
    options.allow_anonymous = true;
    let guard = guard(&options)?;
    let fixture = ConformanceFixture::default();
    let server = server::spawn(mcp, &options, guard, move || fixture.clone())?;
    Ok(RunningFixture {
        auth,
        server,
        mcp_url,
    })
}
