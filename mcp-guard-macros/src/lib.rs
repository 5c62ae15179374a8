//! Procedural macros for [mcp-guard](https://docs.rs/mcp-guard).
//!
//! Users depend on `mcp-guard`, which re-exports what this crate provides.
