//! Runnable mcp-guard examples: the protected file-store server, the quickstart that pairs it
//! with the development authorization server, and an OAuth-signing-in Rust client.

pub mod client;
pub mod files;
pub mod quickstart;
pub mod server;
