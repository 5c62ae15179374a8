//! A guarded server without `#[derive(ProtectedResource)]`, given to the guard builder.

use mcp_guard::{Guard, guarded, protected};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::{ServerHandler, tool, tool_handler, tool_router};

mcp_guard::scopes! {
    pub Scopes {
        #[baseline] NOTES_READ = "notes:read",
    }
}

#[derive(Clone)]
struct Notes {
    tool_router: ToolRouter<Self>,
}

#[guarded]
#[tool_router]
impl Notes {
    /// Reads the notes.
    #[protected(scopes = NOTES_READ)]
    #[tool]
    async fn read(&self) -> String {
        String::new()
    }
}

#[guarded]
#[tool_handler(router = self.tool_router, name = "notes", version = "0.1.0")]
impl ServerHandler for Notes {}

fn main() {
    let _ = Guard::builder().server::<Notes>();
}
