//! Runnable mcp-guard examples: the protected file-store server, the quickstart that pairs it
//! with the development authorization server, an OAuth-signing-in Rust client, and the MCP
//! conformance suite's scope-challenge fixture, and replica-prefixed session ids for
//! scale-out.

pub mod client;
pub mod conformance_fixture;
pub mod files;
pub mod quickstart;
pub mod replica_sessions;
pub mod report;
pub mod server;
