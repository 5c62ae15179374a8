mcp_guard::scopes! {
    pub Scopes {
        #[baseline]
        #[baseline]
        FILES_READ = "files:read",
        FILES_WRITE = "files:write",
    }
}

fn main() {}
