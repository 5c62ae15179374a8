use mcp_guard::protected;

mcp_guard::scopes! {
    pub Scopes {
        FILES_READ = "files:read",
        FILES_WRITE = "files:write",
    }
}

#[protected(scopes = FILES_READ)]
pub struct Server;

fn main() {}
