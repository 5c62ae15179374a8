//! Token verification: JWTs checked against their issuer's keys ([`jwt`], the pure verifier,
//! and [`jwks`], the key source kept fresh), opaque tokens by RFC 7662 introspection
//! ([`introspection`]) or by lookup among tokens known in advance ([`static_tokens`]), each
//! identity provider's token shape ([`profile`]), the cache of tokens already verified, and
//! the bounded reader of every document fetched over HTTP (`bounded`).

pub(crate) mod bounded;
pub mod dpop;
pub mod introspection;
pub mod jwks;
pub(crate) mod jwt;
pub mod profile;
pub mod static_tokens;
pub(crate) mod token_cache;
mod token_error;

pub use token_error::TokenError;
