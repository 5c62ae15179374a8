mcp_guard::scopes! {
    pub Scopes {
        FILES_READ = "files read",
        FILES_WRITE = "files:write",
    }
}

fn main() {}
