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
    pub size: u64,
}

#[tool_router]
impl Server {
    /// Writes a file; a comparison that could never hold does not compile.
    #[protected(
        scopes = FILES_WRITE,
        when(mode == 3, scopes = FILES_SHARED),
        when(size.starts_with("1"), scopes = FILES_SHARED),
        when(size == "big", scopes = FILES_SHARED),
    )]
    #[tool]
    async fn write_file(&self, Parameters(args): Parameters<WriteArgs>) -> String {
        args.content
    }
}

fn main() {}
