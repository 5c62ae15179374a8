//! The HTTP edge, in the order a request meets it: the `Origin` check and the bearer token
//! ([`bearer`]), what the request asks for ([`classify`]), the tower layer that runs the steps
//! ([`layer`]), and what goes back: refusals in one shape ([`refusal`], with their
//! `WWW-Authenticate` challenges in [`challenge`] and their audit events in [`audit`]) and the
//! protected resource metadata ([`metadata`]).

pub mod audit;
pub mod bearer;
pub mod challenge;
pub mod classify;
pub(crate) mod layer;
pub mod metadata;
pub(crate) mod refusal;
pub(crate) mod require;
pub(crate) mod session;
