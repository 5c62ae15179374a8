//! The authorization server metadata (RFC 8414) and key set documents.

#[allow(unused_imports)]
use super::*;

pub(super) async fn metadata(State(s): State<DevAuthServer>) -> Json<Value> {
    Json(s.metadata())
}

pub(super) async fn jwks(State(s): State<DevAuthServer>) -> Json<Value> {
    Json(s.jwks())
}
