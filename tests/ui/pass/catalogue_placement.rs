//! Where the catalogue may be declared: after the tools that use it in the same module, and
//! before an inline module whose tools use it.

use mcp_guard::protected;
use rmcp::{tool, tool_router};

pub struct Server;

#[tool_router]
impl Server {
    /// The catalogue is declared below.
    #[protected(scopes = FILES_READ)]
    #[tool]
    async fn read_file(&self) -> String {
        String::new()
    }
}

mcp_guard::scopes! {
    pub Scopes {
        FILES_READ = "files:read",
        FILES_WRITE = "files:write",
    }
}

mod tools {
    use mcp_guard::protected;
    use rmcp::{tool, tool_router};

    pub struct Writer;

    #[tool_router]
    impl Writer {
        /// The catalogue is declared in the parent module.
        #[protected(scopes = "files:write")]
        #[tool]
        async fn write_file(&self) -> String {
            String::new()
        }
    }

    pub fn check() {
        let _ = Writer::tool_router();
    }
}

fn main() {
    let _ = Server::tool_router();
    tools::check();
    let _ = Scopes::FILES_WRITE;
}
