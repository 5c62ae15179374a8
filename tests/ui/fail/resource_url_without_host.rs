use mcp_guard::ProtectedResource;

mcp_guard::scopes! {
    pub Scopes {
        FILES_READ = "files:read",
    }
}

#[derive(ProtectedResource)]
#[protected_resource(scopes = Scopes, resource = "https:///mcp")]
pub struct Server;

fn main() {}
