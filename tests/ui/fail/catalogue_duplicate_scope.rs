mcp_guard::scopes! {
    pub Scopes {
        FILES_READ = "files:read",
        FILES_LIST = "files:read",
    }
}

fn main() {}
