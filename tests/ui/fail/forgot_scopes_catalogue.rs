//! `#[protected]` tools in a crate that declares no `scopes!` catalogue.

use mcp_guard::{guarded, protected};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::{tool, tool_router};

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

    /// Writes the notes.
    #[protected(scopes = "notes:write")]
    #[tool]
    async fn write(&self) -> String {
        String::new()
    }
}

fn main() {
    let _ = Notes::tool_router();
}
