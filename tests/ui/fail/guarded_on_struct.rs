use mcp_guard::guarded;

#[guarded]
pub struct Server;

fn main() {}
