use mcp_guard::ProtectedResource;

mcp_guard::scopes! {
    pub Scopes {
        FILES_READ = "files:read",
    }
}

#[derive(ProtectedResource)]
#[protected_resource(resource = "https://mcp.example.com/mcp", name = "Files")]
pub struct Server;

fn main() {}
