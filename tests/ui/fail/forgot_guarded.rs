//! A server whose tool router and handler lack `#[guarded]`, given to the guard builder.

use mcp_guard::{Guard, ProtectedResource, protected};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::{ServerHandler, tool, tool_handler, tool_router};

mcp_guard::scopes! {
    pub Scopes {
        #[baseline] NOTES_READ = "notes:read",
    }
}

#[derive(Clone, ProtectedResource)]
#[protected_resource(scopes = Scopes, resource = "https://notes.example.com/mcp",
    authorization_servers = ["https://auth.example.com"])]
struct Notes {
    tool_router: ToolRouter<Self>,
}

#[tool_router]
impl Notes {
    /// Reads the notes.
    #[protected(scopes = NOTES_READ)]
    #[tool]
    async fn read(&self) -> String {
        String::new()
    }
}

#[tool_handler(router = self.tool_router, name = "notes", version = "0.1.0")]
impl ServerHandler for Notes {}

fn main() {
    let _ = Guard::builder().server::<Notes>();
}
