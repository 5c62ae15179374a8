// `#[guarded]` knows declarations by the attribute's name; one imported under another name
// must not be read as undeclared (which would enforce only the baseline): it does not compile.
use mcp_guard::protected as requires;
use rmcp::{tool, tool_router};

mcp_guard::scopes! {
    pub Scopes {
        #[baseline]
        READ = "read",
        ADMIN = "admin",
    }
}

pub struct Server;

#[mcp_guard::guarded]
#[tool_router]
impl Server {
    /// Needs `admin`.
    #[requires(scopes = ADMIN)]
    #[tool]
    async fn purge(&self) -> String {
        String::new()
    }
}

fn main() {}
