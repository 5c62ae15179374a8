//! Every mistake is reported in one build: the catalogue's, each `#[protected]`'s and the
//! derive's.

use mcp_guard::{ProtectedResource, protected};
use rmcp::{tool, tool_router};

mcp_guard::scopes! {
    pub Scopes {
        FILES_READ = "files:read",
        FILES_WRITE = "files:write",
        FILES_ADMIN = "files:admin" => [FILES_RAED],
    }
}

#[derive(ProtectedResource)]
#[protected_resource(
    scopes = Scopes,
    resource = "http://mcp.example.com/mcp",
    authorization_servers = ["auth.example.com"],
)]
pub struct Server;

#[tool_router]
impl Server {
    /// Reads a file.
    #[protected(scopes = ["files:raed", FILES_WRITE], token = "robot", hidden, listed)]
    #[tool]
    fn read_file(&self) -> String {
        String::new()
    }

    /// Writes a file.
    #[protected(any_of = [FILES_WRITE])]
    #[tool]
    async fn write_file(&self) -> String {
        String::new()
    }
}

fn main() {}
