//! Why a guard could not be built, and why a token was not accepted.

use crate::introspection::IntrospectionError;
use crate::jwks::KeySourceError;
use crate::jwt::TokenError;
use crate::policy::PolicyError;

/// Why a guard could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// No resource URL was given.
    #[error("the resource URL (the public URL of the MCP endpoint) is required")]
    MissingResource,
    /// The resource URL is not acceptable.
    #[error("invalid resource URL: {0}")]
    InvalidResource(String),
    /// No issuer was given.
    #[error("at least one trusted issuer is required")]
    MissingIssuer,
    /// An issuer is configured twice.
    #[error("issuer `{0}` is configured twice")]
    DuplicateIssuer(String),
    /// An issuer has no usable algorithm.
    #[error("issuer `{0}` allows no supported algorithm")]
    NoAlgorithms(String),
    /// An issuer or key URL is not acceptable.
    #[error(transparent)]
    KeySource(#[from] KeySourceError),
    /// An `Origin` value is not an origin.
    #[error("`{0}` is not an origin (scheme://host[:port])")]
    InvalidOrigin(String),
    /// The policy is inconsistent.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// The DPoP configuration is unusable (no algorithm, a symmetric one, a short nonce
    /// secret, a zero window).
    #[error("DPoP: {0}")]
    Dpop(String),
    /// A `{tid}` issuer template without tenants, or tenants without a template.
    #[error(
        "issuer `{0}`: a `{{tid}}` template needs `tenants`, and `tenants` need a `{{tid}}` template"
    )]
    Tenants(String),
    /// A `{tid}` issuer template cannot be discovered.
    #[error(
        "issuer `{0}` is a `{{tid}}` template: give its key set URL (jwks_uri), it cannot be discovered"
    )]
    TemplateDiscovery(String),
    /// Signing the metadata failed.
    #[error("signing the resource metadata failed: {0}")]
    Signing(String),
    /// Resource requirements were added to a guard given a ready-made policy, where they
    /// would not apply: add them to the [`crate::policy::PolicyBuilder`] instead.
    #[error(
        "resource_requirement(..) applies to the policy collected by server::<S>(); with policy(..) add the resource to the PolicyBuilder instead"
    )]
    ResourceRequirementWithPolicy,
    /// A requirement with argument rules (`when`) or URI scopes (`uri_scope`) was given to
    /// [`Guard::require`](crate::Guard::require), where there are no arguments or resource
    /// URIs to decide them.
    #[error(
        "Guard::require(..) takes no argument rules (when) nor URI scopes (uri_scope): a plain route has no MCP arguments or resource URI to decide them on; give it a requirement without them, or check in the handler"
    )]
    RouteArgumentRules,
    /// [`ScopesSupported::Only`](crate::metadata::ScopesSupported::Only) names a scope the
    /// policy does not know, or `offline_access`.
    #[error(
        "scopes_supported lists `{0}`, which is not a scope of this resource's catalogue (offline_access is never advertised)"
    )]
    UnknownAdvertisedScope(String),
}

/// Why authentication failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The token is invalid: 401 `invalid_token`.
    #[error(transparent)]
    Invalid(#[from] TokenError),
    /// The DPoP proof was refused: 401 `invalid_dpop_proof` (or `use_dpop_nonce`; 503 when
    /// the replay cache is full).
    #[error(transparent)]
    Dpop(#[from] crate::dpop::DpopError),
    /// No keys could be obtained: 503.
    #[error(transparent)]
    Unavailable(#[from] KeySourceError),
    /// The introspection endpoint could not answer: 503.
    #[error(transparent)]
    IntrospectionUnavailable(#[from] IntrospectionError),
    /// The server's [`PrincipalCheck`](crate::PrincipalCheck) could not be made: 503.
    #[error("the token check could not be made: {0}")]
    CheckUnavailable(String),
}

/// The issuers whose keys [`Guard::preload_keys`](crate::Guard::preload_keys) could not load,
/// each with why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", describe(.failures))]
#[non_exhaustive]
pub struct KeysUnavailable {
    /// Each issuer (as configured) whose key set was never loaded, and the last error.
    pub failures: Vec<(String, KeySourceError)>,
}

fn describe(failures: &[(String, KeySourceError)]) -> String {
    let each: Vec<String> = failures
        .iter()
        .map(|(issuer, e)| format!("the keys of issuer `{issuer}` could not be loaded: {e}"))
        .collect();
    each.join("; ")
}
