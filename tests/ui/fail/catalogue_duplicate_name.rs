mcp_guard::scopes! {
    pub Scopes {
        FILES_READ = "files:read",
        FILES_READ = "files:list",
    }
}

fn main() {}
