use mcp_guard::protected;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::{tool, tool_router};
use serde::Deserialize;

mcp_guard::scopes! {
    pub Scopes {
        FILES_WRITE = "files:write",
        FILES_SHARED = "files:shared",
    }
}

pub struct Server;

#[derive(Deserialize, schemars::JsonSchema)]
pub struct Options {
    pub force: bool,
}

#[derive(Deserialize, schemars::JsonSchema)]
pub struct WriteArgs {
    pub options: Options,
}

#[tool_router]
impl Server {
    /// Writes a file.
    #[protected(scopes = FILES_WRITE, when(options.forse, scopes = FILES_SHARED))]
    #[tool]
    async fn write_file(&self, Parameters(args): Parameters<WriteArgs>) -> String {
        let _ = args.options.force;
        String::new()
    }
}

fn main() {}
