//! A small in-memory file store served over MCP, protected by mcp-guard's macros.
//!
//! | operation | requirement |
//! |---|---|
//! | tool `about` | no scope (`#[public]`); no token with `--allow-anonymous` |
//! | tools `echo`, `whoami` | any authenticated caller |
//! | tools `list_files`, `read_file`, prompt `review_file`, resources `files:///…` | `files:read` |
//! | tool `write_file` | `files:write`, plus `files:shared` for paths under `/shared` |
//! | tool `reset_store` | `files:admin`, hidden from callers without it |
//!
//! `files:admin` implies `files:read` and `files:write`. The metadata's `scopes_supported`
//! lists `files:read` (the baseline) and `files:write` (`#[advertised]`); `files:shared` and
//! `files:admin` are asked for by step-up when an operation needs them.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use mcp_guard::policy::Requirement;
use mcp_guard::{GuardBuilder, Principal, ProtectedResource, guarded, protected, public};
use rmcp::handler::server::router::prompt::PromptRouter;
use rmcp::handler::server::{router::tool::ToolRouter, wrapper::Parameters};
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
use serde::Deserialize;

mcp_guard::scopes! {
    /// The file store's scopes.
    pub Scopes {
        /// Read and list files.
        #[baseline]
        FILES_READ = "files:read",
        /// Create and replace files.
        #[advertised]
        FILES_WRITE = "files:write",
        /// Write under `/shared`, where every user sees the files.
        FILES_SHARED = "files:shared",
        /// Administer the store; implies reading and writing.
        FILES_ADMIN = "files:admin" => [FILES_READ, FILES_WRITE],
    }
}

/// The URI template of the store's resources.
pub const RESOURCE_TEMPLATE: &str = "files:///{+path}";

/// The requirement of the store's resources.
pub fn resource_requirement() -> Requirement {
    Requirement::scopes([Scopes::FILES_READ]).expect("declared scope")
}

/// Adds this server's policy and metadata to a guard configuration: the `#[protected]`
/// declarations, the catalogue, and the resources' requirement.
pub fn configure(builder: GuardBuilder) -> GuardBuilder {
    builder
        .server::<FileServer>()
        .resource_requirement(RESOURCE_TEMPLATE, resource_requirement())
}

/// The guard of this server as `options` describe it.
pub fn guard(
    options: &crate::server::ServerOptions,
) -> Result<mcp_guard::Guard, Box<dyn std::error::Error + Send + Sync>> {
    Ok(configure(options.guard_builder()?).build()?)
}

/// The store shared by every session.
pub type Store = Arc<Mutex<BTreeMap<String, String>>>;

/// The MCP server.
#[derive(Clone, ProtectedResource)]
#[protected_resource(scopes = Scopes, name = "mcp-guard example file store")]
pub struct FileServer {
    store: Store,
    // Built once and shared by every session and request: a router holds each tool's schemas
    // and requirement data, too much to rebuild per connection.
    tool_router: Arc<ToolRouter<Self>>,
    prompt_router: Arc<PromptRouter<Self>>,
}

/// The tool and prompt routers of the server.
type Routers = (Arc<ToolRouter<FileServer>>, Arc<PromptRouter<FileServer>>);

/// The routers, built on first use.
fn routers() -> &'static Routers {
    static ROUTERS: std::sync::OnceLock<Routers> = std::sync::OnceLock::new();
    ROUTERS.get_or_init(|| {
        (
            Arc::new(FileServer::tool_router()),
            Arc::new(FileServer::prompt_router()),
        )
    })
}

/// Arguments of `echo`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct EchoArgs {
    /// Text to send back.
    pub text: String,
}

/// Arguments naming one file.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct PathArgs {
    /// The file's path, e.g. `/notes/todo.txt`.
    pub path: String,
}

/// Arguments of `write_file`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct WriteArgs {
    /// The file's path; paths under `/shared` (once normalised) need `files:shared` too.
    pub path: String,
    /// The new content.
    pub content: String,
}

impl FileServer {
    /// A server over a shared store.
    pub fn new(store: Store) -> Self {
        let (tools, prompts) = routers();
        Self {
            store,
            tool_router: tools.clone(),
            prompt_router: prompts.clone(),
        }
    }

    fn files(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, String>> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[guarded]
#[tool_router]
impl FileServer {
    /// What this server is; needs no token.
    #[public]
    #[tool(annotations(read_only_hint = true))]
    async fn about(&self) -> String {
        "mcp-guard example file store".to_owned()
    }

    /// Sends the text back.
    #[protected]
    #[tool]
    async fn echo(&self, Parameters(args): Parameters<EchoArgs>) -> String {
        args.text
    }

    /// The caller's subject, client and scopes.
    #[protected]
    #[tool]
    async fn whoami(&self, caller: Principal) -> String {
        serde_json::json!({
            "sub": caller.subject(),
            "client_id": caller.client_id(),
            "scopes": caller.scopes().to_vec(),
        })
        .to_string()
    }

    /// Lists the stored files.
    #[protected(scopes = FILES_READ)]
    #[tool(annotations(read_only_hint = true))]
    async fn list_files(&self) -> String {
        self.files().keys().cloned().collect::<Vec<_>>().join("\n")
    }

    /// Reads one file.
    #[protected(scopes = FILES_READ)]
    #[tool(annotations(read_only_hint = true))]
    async fn read_file(&self, Parameters(args): Parameters<PathArgs>) -> Result<String, String> {
        let path = store_path(&args.path)?;
        self.files()
            .get(&path)
            .cloned()
            .ok_or_else(|| format!("no such file: {path}"))
    }

    /// Creates or replaces one file.
    #[protected(scopes = FILES_WRITE, when(path.under("/shared"), scopes = FILES_SHARED))]
    #[tool]
    async fn write_file(
        &self,
        caller: Principal,
        Parameters(args): Parameters<WriteArgs>,
    ) -> Result<String, String> {
        // The rule above and the store read the path the same way: `//shared/a`,
        // `/notes/../shared/a` and `shared/a` are all `/shared/a`, which needs `files:shared`.
        let path = store_path(&args.path)?;
        let len = args.content.len();
        self.files().insert(path.clone(), args.content);
        Ok(format!("{} wrote {len} bytes to {path}", caller.subject()))
    }

    /// Deletes every file.
    #[protected(scopes = FILES_ADMIN, hidden)]
    #[tool(annotations(destructive_hint = true))]
    async fn reset_store(&self) -> String {
        let mut files = self.files();
        let n = files.len();
        files.clear();
        format!("deleted {n} files")
    }
}

// rmcp's `#[prompt]` generates an undocumented `pub fn review_file_prompt_attr`.
#[allow(missing_docs)]
#[guarded]
#[prompt_router]
impl FileServer {
    /// Asks the model to review one file.
    #[protected(scopes = FILES_READ)]
    #[prompt]
    async fn review_file(
        &self,
        Parameters(args): Parameters<PathArgs>,
    ) -> Result<Vec<PromptMessage>, ErrorData> {
        let content = self.files().get(&args.path).cloned().ok_or_else(|| {
            ErrorData::invalid_params(format!("no such file: {}", args.path), None)
        })?;
        Ok(vec![PromptMessage::new_text(
            Role::User,
            format!("Review this file ({}):\n\n{content}", args.path),
        )])
    }
}

#[guarded]
#[tool_handler(router = self.tool_router, name = "mcp-guard-files", version = "0.1.0")]
#[prompt_handler(router = self.prompt_router)]
impl ServerHandler for FileServer {
    fn get_info(&self) -> rmcp::model::ServerConfig {
        server_config()
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let resources = self
            .files()
            .keys()
            .filter(|path| mcp_guard::rmcp::authorize_resource(&ctx, &uri(path)).is_ok())
            .map(|path| Resource::new(uri(path), path.clone()))
            .collect();
        Ok(ListResourcesResult::with_all_items(resources))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        // The same rule as reads: a caller who may read no file sees no template.
        let templates = mcp_guard::rmcp::readable_resource_templates(&ctx)
            .into_iter()
            .map(|t| ResourceTemplate::new(t, "file"))
            .collect();
        Ok(ListResourceTemplatesResult::with_all_items(templates))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        // Outside `files:///{+path}` nothing is served, whatever the store holds.
        mcp_guard::rmcp::authorize_resource(&ctx, &request.uri)?;
        let path = request.uri.strip_prefix("files://").unwrap_or_default();
        let content =
            self.files().get(path).cloned().ok_or_else(|| {
                ErrorData::resource_not_found(format!("no such file: {path}"), None)
            })?;
        Ok(ReadResourceResult::new(vec![ResourceContents::text(content, request.uri)]).into())
    }
}

/// What the server says of itself at `initialize`: tools, prompts and resources.
pub fn server_config() -> rmcp::model::ServerConfig {
    rmcp::model::ServerConfig::new(
        rmcp::model::ServerCapabilities::builder()
            .enable_tools()
            .enable_prompts()
            .enable_resources()
            .build(),
    )
    .with_server_info(rmcp::model::Implementation::new("mcp-guard-files", "0.1.0"))
}

/// The store's key for a path: normalised as the `under` rules normalise it, so a rule and
/// the store never disagree about which file a path names.
fn store_path(path: &str) -> Result<String, String> {
    mcp_guard::path::normalize(path)
        .map(|p| p.as_str().to_owned())
        .map_err(|e| format!("invalid path `{path}`: {e}"))
}

fn uri(path: &str) -> String {
    format!("files://{path}")
}
