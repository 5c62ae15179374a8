//! Tokens signed by the development server with chosen claims, for tests and demos.

#[allow(unused_imports)]
use super::*;

/// Builds a signed token with chosen claims (see [`DevAuthServer::token`]).
#[must_use]
pub struct TokenBuilder {
    pub(super) server: DevAuthServer,
    pub(super) claims: Map<String, Value>,
    pub(super) ttl: Duration,
    pub(super) typ: Option<String>,
}

impl TokenBuilder {
    /// `sub`.
    pub fn subject(self, sub: &str) -> Self {
        self.claim("sub", sub)
    }

    /// `client_id`.
    pub fn client_id(self, id: &str) -> Self {
        self.claim("client_id", id)
    }

    /// `scope` (space-separated).
    pub fn scope(self, scope: &str) -> Self {
        self.claim("scope", scope)
    }

    /// `aud`.
    pub fn audience(self, aud: &str) -> Self {
        self.claim("aud", aud)
    }

    /// Lifetime from now (`exp`). A zero lifetime expires at once but is still inside a
    /// verifier's leeway; for an expired token set `exp` in the past with
    /// [`TokenBuilder::claim`].
    pub fn expires_in(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// The `typ` header (`None` leaves it out). Default `at+jwt`.
    pub fn typ(mut self, typ: Option<&str>) -> Self {
        self.typ = typ.map(str::to_owned);
        self
    }

    /// Any claim (overrides the defaults, including `iss`, `exp`, `iat`, `jti`).
    pub fn claim(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.claims.insert(name.to_owned(), value.into());
        self
    }

    /// Removes a claim (to make one missing).
    pub fn without(mut self, name: &str) -> Self {
        self.claims.insert(name.to_owned(), Value::Null);
        self
    }

    /// The compact JWS.
    pub fn sign(self) -> String {
        let now = unix_now();
        let mut claims = Map::new();
        claims.insert("iss".into(), self.server.0.issuer.clone().into());
        claims.insert("sub".into(), "dev-user".into());
        claims.insert("client_id".into(), "dev-client".into());
        claims.insert("iat".into(), now.into());
        claims.insert("exp".into(), (now + self.ttl.as_secs()).into());
        claims.insert("jti".into(), random_token(12).into());
        for (k, v) in self.claims {
            if v.is_null() {
                claims.remove(&k);
            } else {
                claims.insert(k, v);
            }
        }
        self.server.sign(&claims, self.typ.as_deref())
    }
}
