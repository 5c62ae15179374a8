use mcp_guard::guarded;
use rmcp::{ServerHandler, tool, tool_router};

pub struct Server;

#[tool_router]
impl Server {
    /// What this server is.
    #[tool]
    async fn about(&self) -> String {
        String::new()
    }
}

#[guarded]
impl ServerHandler for Server {}

fn main() {}
