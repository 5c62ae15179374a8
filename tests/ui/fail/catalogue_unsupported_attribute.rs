mcp_guard::scopes! {
    pub Scopes {
        #[default]
        FILES_READ = "files:read",
        FILES_WRITE = "files:write",
    }
}

fn main() {}
