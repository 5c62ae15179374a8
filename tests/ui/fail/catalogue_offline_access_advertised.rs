// `offline_access` is never advertised nor asked for in a challenge.
mcp_guard::scopes! {
    pub Scopes {
        #[baseline]
        READ = "read",
        #[advertised]
        OFFLINE = "offline_access",
    }
}

fn main() {}
