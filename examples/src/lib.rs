//! Runnable mcp-guard examples: the protected file-store server and its shared startup code.

pub mod files;
pub mod server;
