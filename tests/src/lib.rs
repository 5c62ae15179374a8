//! Test support for mcp-guard's end-to-end tests: committed test keys and token minting, a
//! controllable token issuer on 127.0.0.1, and the example server with a raw MCP client.

pub mod issuer;
pub mod keys;
pub mod logs;
pub mod server;

pub use issuer::{Discovery, JwksMode, TestIssuer};
pub use keys::{TestKey, claims, now};
pub use server::{Answer, TestServer};
