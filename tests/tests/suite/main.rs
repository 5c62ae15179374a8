//! The integration suite: one test binary, one module per area of the specification, all
//! through real HTTP on 127.0.0.1, the real rmcp server and client, and real signed JWTs.

pub mod argument_rules;
pub mod audit;
pub mod challenges;
pub mod conformance;
pub mod conformance_fixture;
pub mod connections;
pub mod declarative;
pub mod delegation;
pub mod dev_auth_server;
pub mod dpop;
pub mod extensions;
pub mod faults;
pub mod header_args;
pub mod in_process;
pub mod introspection;
pub mod keysource;
pub mod metadata;
pub mod postures;
pub mod probes;
pub mod profiles;
pub mod quickstart;
pub mod scale_out;
pub mod scope_hierarchy;
pub mod sdk_clients;
pub mod session_limits;
pub mod sessions;
pub mod token_cache;
pub mod tokens;
pub mod tool_result_challenge;
