//! Runnable mcp-guard examples: the protected file-store server, the quickstart that pairs it
//! with the development authorization server, an OAuth-signing-in Rust client, and the MCP
//! conformance suite's scope-challenge fixture, replica-prefixed session ids for scale-out,
//! a ticket tracker with its own scopes that embeds the development server behind a flag,
//! and the binaries' logging (formatted in place, written by a thread of its own).

pub mod bench;
pub mod client;
pub mod conformance_fixture;
pub mod files;
pub mod logging;
pub mod quickstart;
pub mod replica_sessions;
pub mod report;
pub mod server;
pub mod tickets;
