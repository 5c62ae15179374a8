//! The check a server adds after verification ([`PrincipalCheck`]): a revocation list, a
//! disabled-account lookup, a tenant allow-list. It runs on every request, cached tokens
//! included, so a revocation takes effect on the next request.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;

use crate::principal::Principal;

/// Why a [`PrincipalCheck`] did not accept a caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CheckError {
    /// The token must not be accepted: 401 `invalid_token`, with this text as the
    /// `error_description` (keep it free of secrets; it is sent to the client).
    #[error("{0}")]
    Refused(Cow<'static, str>),
    /// The check could not be made (its backend is down, or it took longer than
    /// [`GuardBuilder::check_timeout`](crate::GuardBuilder::check_timeout)): 503, and the
    /// request is refused, never let through.
    #[error("the token check could not be made: {0}")]
    Unavailable(String),
}

/// The future a [`PrincipalCheck`] returns.
pub type CheckFuture<'a> = Pin<Box<dyn Future<Output = Result<(), CheckError>> + Send + 'a>>;

/// A check of every verified caller, after the token's signature and claims were accepted
/// and before any decision is made ([`GuardBuilder::check`](crate::GuardBuilder::check)).
///
/// Closures taking the [`Principal`] by value implement it:
///
/// ```
/// use mcp_guard::{CheckError, GuardBuilder, Principal};
///
/// let revoked: std::collections::HashSet<String> = ["jti-123".to_owned()].into();
/// let builder = GuardBuilder::default().check(move |caller: Principal| {
///     let refused = caller.token_id().is_some_and(|jti| revoked.contains(jti));
///     async move {
///         if refused {
///             return Err(CheckError::Refused("the token has been revoked".into()));
///         }
///         Ok(())
///     }
/// });
/// # drop(builder);
/// ```
pub trait PrincipalCheck: Send + Sync + 'static {
    /// Accepts the caller, or says why not.
    fn check<'a>(&'a self, principal: &'a Principal) -> CheckFuture<'a>;
}

impl<F, Fut> PrincipalCheck for F
where
    F: Fn(Principal) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), CheckError>> + Send + 'static,
{
    fn check<'a>(&'a self, principal: &'a Principal) -> CheckFuture<'a> {
        Box::pin(self(principal.clone()))
    }
}
