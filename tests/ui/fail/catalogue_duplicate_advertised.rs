// A scope is marked advertised once.
mcp_guard::scopes! {
    pub Scopes {
        #[advertised]
        #[advertised]
        READ = "read",
    }
}

fn main() {}
