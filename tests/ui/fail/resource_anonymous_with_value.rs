use mcp_guard::ProtectedResource;

mcp_guard::scopes! {
    pub Scopes {
        FILES_READ = "files:read",
    }
}

#[derive(ProtectedResource)]
#[protected_resource(scopes = Scopes, anonymous = true)]
pub struct Server;

fn main() {}
