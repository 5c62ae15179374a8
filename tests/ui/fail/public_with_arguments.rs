use mcp_guard::public;
use rmcp::{tool, tool_router};

pub struct Server;

#[tool_router]
impl Server {
    /// What this server is.
    #[public(scopes = "files:read")]
    #[tool]
    async fn about(&self) -> String {
        String::new()
    }
}

fn main() {}
