//! Test support for mcp-guard's end-to-end tests: committed test keys and token minting, a
//! controllable token issuer on 127.0.0.1, the example server with a raw MCP client, and a
//! server that floods its clients with endless bodies.

pub mod flood;
pub mod issuer;
pub mod keys;
pub mod logs;
pub mod server;

pub use flood::FloodServer;
pub use issuer::{Discovery, JwksMode, TestIssuer};
pub use keys::{TestKey, ath, claims, dpop_claims, now};
pub use server::{Answer, TestServer};
