mcp_guard::scopes! {
    pub Scopes {
        FILES_READ = "files:read",
        FILES_ADMIN = "files:admin" => [FILES_READ, FILES_ADMIN],
    }
}

fn main() {}
