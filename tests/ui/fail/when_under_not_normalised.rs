use mcp_guard::protected;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::{tool, tool_router};
use serde::Deserialize;

mcp_guard::scopes! {
    pub Scopes {
        FILES_READ = "files:read",
        FILES_WRITE = "files:write",
        FILES_SHARED = "files:shared",
    }
}

pub struct Server;


#[derive(Deserialize, schemars::JsonSchema)]
pub struct WriteArgs {
    pub path: String,
    pub content: String,
    pub mode: String,
}

#[tool_router]
impl Server {
    /// Writes a file.
    #[protected(scopes = FILES_WRITE, when(path.under("/shared/../notes"), scopes = FILES_SHARED))]
    #[tool]
    async fn write_file(&self, Parameters(args): Parameters<WriteArgs>) -> String {
        args.content
    }
}

fn main() {}
