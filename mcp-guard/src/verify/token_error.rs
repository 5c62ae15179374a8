//! Why a token was refused, whichever verifier refused it (JWT checks or introspection).

/// Why a token was refused. Every variant leads to 401 `invalid_token`; none holds the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// Not a compact JWS, bad base64url or bad JSON.
    #[error("the token is not a well-formed signed JWT")]
    Malformed,
    /// `alg` is `none`, HMAC, unknown, or not on the allow-list.
    #[error("the token's signing algorithm is not accepted")]
    AlgorithmNotAllowed,
    /// No key in the current key set has the token's `kid`.
    #[error("the token was signed by an unknown key")]
    UnknownKey,
    /// The header `alg` differs from the algorithm of the key the `kid` names.
    #[error("the token's algorithm does not match its key")]
    AlgorithmMismatch,
    /// The signature does not verify.
    #[error("the token's signature is invalid")]
    BadSignature,
    /// The header has a `crit` parameter.
    #[error("the token uses critical header extensions that are not supported")]
    CriticalHeader,
    /// `typ` is not accepted.
    #[error("the token type is not an accepted access token type")]
    WrongType,
    /// `iss` differs from the configured issuer.
    #[error("the token was issued by an unexpected issuer")]
    WrongIssuer,
    /// `aud` does not name this resource.
    #[error("the token was not issued for this resource")]
    WrongAudience,
    /// `exp` is past.
    #[error("the token has expired")]
    Expired,
    /// `nbf` is in the future.
    #[error("the token is not valid yet")]
    NotYetValid,
    /// `iat` is in the future.
    #[error("the token was issued in the future")]
    IssuedInFuture,
    /// Introspection says the token is not active (revoked, expired, unknown).
    #[error("the token is not active")]
    Inactive,
    /// A required claim is absent.
    #[error("the token lacks the `{0}` claim")]
    MissingClaim(&'static str),
    /// A claim has the wrong type.
    #[error("the token's `{0}` claim is malformed")]
    InvalidClaim(&'static str),
    /// The client the token was issued to is not one this server accepts.
    #[error("the token was issued to a client this server does not accept")]
    UnknownClient,
    /// The token is longer than the server accepts ([`GuardBuilder::max_token_bytes`]); it
    /// was refused before any parsing.
    ///
    /// [`GuardBuilder::max_token_bytes`]: crate::GuardBuilder::max_token_bytes
    #[error("the token is larger than this server accepts")]
    TooLarge,
    /// `exp` lies further after `iat` (or after now, without `iat`) than the server accepts
    /// ([`GuardBuilder::max_token_lifetime`]).
    ///
    /// [`GuardBuilder::max_token_lifetime`]: crate::GuardBuilder::max_token_lifetime
    #[error("the token's lifetime is longer than this server accepts")]
    LifetimeTooLong,
    /// A token bound to a key (`cnf`) presented as a bearer token: a DPoP-bound token needs
    /// `Authorization: DPoP` and a proof ([`crate::dpop`]); other bindings are not supported.
    #[error("the token is bound to a key and cannot be used as a bearer token")]
    SenderConstrained,
    /// With `Authorization: DPoP`, the token is not bound to the proof's key (no `cnf.jkt`,
    /// or another key's thumbprint).
    #[error("the token is not bound to the DPoP proof's key")]
    NotBoundToProof,
    /// A bearer token where the server accepts only DPoP-bound tokens
    /// ([`Dpop::required`](crate::dpop::Dpop::required)).
    #[error("this resource accepts only DPoP-bound tokens")]
    DpopRequired,
    /// The server's own check refused the caller ([`CheckError::Refused`]).
    ///
    /// [`CheckError::Refused`]: crate::CheckError::Refused
    #[error("{0}")]
    Refused(std::borrow::Cow<'static, str>),
}
