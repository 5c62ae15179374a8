mcp_guard::scopes! {
    pub Scopes {
        FILES_READ = "files:read",
        FILES_WRITE = "files:write" => [FILES_ADMIN],
        FILES_ADMIN = "files:admin" => [FILES_WRITE],
    }
}

fn main() {}
