//! A complete server: catalogue, protected tools of every kind, a public tool, a protected
//! prompt, the `#[guarded]` handler and the derived resource description.

use mcp_guard::{Principal, ProtectedResource, guarded, protected, public};
use rmcp::handler::server::router::prompt::PromptRouter;
use rmcp::handler::server::{router::tool::ToolRouter, wrapper::Parameters};
use rmcp::model::{PromptMessage, Role};
use rmcp::{
    ErrorData, ServerHandler, prompt, prompt_handler, prompt_router, tool, tool_handler,
    tool_router,
};
use serde::Deserialize;

mcp_guard::scopes! {
    /// The file store's scopes.
    pub Scopes {
        /// Read and list files.
        #[baseline]
        FILES_READ = "files:read",
        /// Create and replace files.
        FILES_WRITE = "files:write",
        /// Write under `/shared`.
        FILES_SHARED = "files:shared",
        /// Administer the store.
        FILES_ADMIN = "files:admin" => [FILES_READ, FILES_WRITE],
    }
}

#[derive(Clone, ProtectedResource)]
#[protected_resource(
    scopes = Scopes,
    resource = "https://mcp.example.com/mcp",
    authorization_servers = ["https://auth.example.com", "http://127.0.0.1:9000"],
    name = "Example files",
    documentation = "https://mcp.example.com/docs",
    policy_uri = "https://mcp.example.com/policy",
    tos_uri = "https://mcp.example.com/tos",
)]
pub struct FileServer {
    tool_router: ToolRouter<Self>,
    prompt_router: PromptRouter<Self>,
}

#[derive(Clone, ProtectedResource)]
#[protected_resource(scopes = Scopes, resource = "http://127.0.0.1:8080/mcp", hidden)]
pub struct LocalServer;

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct PathArgs {
    pub path: String,
}

#[derive(Debug, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Text,
    Binary,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Options {
    pub overwrite: bool,
    pub mode: String,
    pub kind: Option<Kind>,
    pub max_size: Option<u64>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct WriteArgs {
    pub path: String,
    pub content: String,
    pub options: Options,
    pub force: bool,
}

#[guarded]
#[tool_router]
impl FileServer {
    /// Needs no token.
    #[public]
    #[tool(annotations(read_only_hint = true))]
    async fn about(&self) -> String {
        "files".to_owned()
    }

    /// Any authenticated caller.
    #[protected]
    #[tool]
    async fn whoami(&self, caller: Principal) -> String {
        caller.subject().to_owned()
    }

    /// One scope, by name.
    #[protected(scopes = FILES_READ)]
    #[tool(annotations(read_only_hint = true))]
    async fn read_file(&self, Parameters(args): Parameters<PathArgs>) -> String {
        args.path
    }

    /// Either alternative suffices.
    #[protected(any_of = [FILES_WRITE, Scopes::FILES_ADMIN])]
    #[tool]
    async fn touch(&self, Parameters(args): Parameters<PathArgs>) -> String {
        args.path
    }

    /// Roles, and an app token only.
    #[protected(scopes = "files:admin", roles = ["operator", "auditor"], token = "app")]
    #[tool]
    async fn audit(&self) -> String {
        String::new()
    }

    /// A user token with a single role.
    #[protected(roles = "operator", token = "user")]
    #[tool]
    async fn operate(&self) -> String {
        String::new()
    }

    /// Extra scopes depending on the arguments.
    #[protected(
        scopes = FILES_WRITE,
        when(path.starts_with("/shared"), scopes = FILES_SHARED),
        when(options.mode == "replace", scopes = FILES_ADMIN),
        when(options.overwrite == true, scopes = [FILES_ADMIN]),
        when(force, scopes = "files:admin"),
        when(options.kind == Some(Kind::Binary), scopes = FILES_ADMIN),
        when(options.max_size == 0, scopes = FILES_ADMIN),
    )]
    #[tool]
    async fn write_file(
        &self,
        caller: Principal,
        Parameters(args): Parameters<WriteArgs>,
    ) -> String {
        format!("{} {} {}", caller.subject(), args.path, args.content.len())
    }

    /// Hidden from callers who lack `files:admin`.
    #[protected(scopes = FILES_ADMIN, hidden)]
    #[tool(annotations(destructive_hint = true))]
    async fn reset(&self) -> String {
        String::new()
    }

    /// Listed even for callers who lack `files:admin`.
    #[protected(scopes = FILES_ADMIN, listed)]
    #[tool]
    async fn stats(&self) -> String {
        String::new()
    }
}

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
        Ok(vec![PromptMessage::new_text(Role::User, args.path)])
    }
}

#[guarded]
#[tool_handler(router = self.tool_router, name = "files", version = "0.1.0")]
#[prompt_handler(router = self.prompt_router)]
impl ServerHandler for FileServer {}

fn main() {
    let policy = mcp_guard::policy_builder::<FileServer>()
        .build()
        .expect("the policy builds");
    assert!(policy.tool_requirement("about").public);
    assert_eq!(policy.tool_requirement("touch").any_of.len(), 2);
    let audit = policy.tool_requirement("audit");
    assert_eq!(audit.roles, ["operator", "auditor"]);
    assert_eq!(audit.token_kind, Some(mcp_guard::TokenKind::App));
    let write = policy.tool_requirement("write_file");
    assert_eq!(write.when.len(), 6);
    assert_eq!(write.when[1].field, ["options", "mode"]);
    let args = serde_json::json!({
        "path": "/a", "content": "", "force": false,
        "options": {"overwrite": false, "mode": "keep", "kind": "binary", "maxSize": 0},
    });
    let args = args.as_object();
    assert_eq!(write.when[4].applies(args), Ok(true));
    assert_eq!(write.when[5].applies(args), Ok(true));
    assert_eq!(write.when[0].applies(args), Ok(false));
    assert_eq!(
        policy.tool_requirement("reset").visibility,
        Some(mcp_guard::Visibility::Hidden)
    );
    assert_eq!(mcp_guard::manifest::<FileServer>()["tools"].as_array().map(Vec::len), Some(9));

    let descriptor = <FileServer as mcp_guard::ProtectedResource>::DESCRIPTOR;
    assert_eq!(descriptor.resource, Some("https://mcp.example.com/mcp"));
    assert_eq!(descriptor.catalogue.len(), 4);
    let local = <LocalServer as mcp_guard::ProtectedResource>::DESCRIPTOR;
    assert_eq!(local.resource, Some("http://127.0.0.1:8080/mcp"));
    assert!(local.hide_unauthorized);
}
