use mcp_guard::{ProtectedResource, guarded, protected};
use rmcp::{ServerHandler, tool, tool_handler, tool_router};

mcp_guard::scopes! {
    pub Scopes {
        #[baseline]
        READ = "read",
    }
}

#[derive(ProtectedResource)]
#[protected_resource(scopes = Scopes)]
pub struct Server;

// `#[guarded]` is missing here: the handler's policy would have no declarations to read.
#[tool_router]
impl Server {
    /// Reads.
    #[protected(scopes = READ)]
    #[tool]
    async fn read(&self) -> String {
        String::new()
    }
}

#[guarded]
#[tool_handler]
impl ServerHandler for Server {}

fn main() {}
