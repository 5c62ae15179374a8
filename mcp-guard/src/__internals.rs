//! Not API: the parsers and the pure verifier, for the fuzz targets, the benchmarks and the
//! workspace's own tests, which exercise them on inputs no HTTP client would send. Nothing
//! here follows semantic versioning; servers use the crate root instead.

pub use crate::edge::{bearer, classify};
pub use crate::verify::jwks::http::cache_control_max_age;
pub use crate::verify::jwt::{Audiences, JwtRules, VerifiedJwt, verify};
