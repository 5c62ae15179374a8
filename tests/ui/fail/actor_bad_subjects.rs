use mcp_guard::protected;
use rmcp::{tool, tool_router};

mcp_guard::scopes! {
    pub Scopes {
        FILES_READ = "files:read",
        FILES_WRITE = "files:write",
    }
}

pub struct Server;

#[tool_router]
impl Server {
    /// Reads a file.
    #[protected(scopes = FILES_READ, actor = ["agent-a", "", "agent-a"])]
    #[tool]
    async fn read_file(&self) -> String {
        String::new()
    }
}

fn main() {}
