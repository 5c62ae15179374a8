//! Where each identity provider puts scopes, roles, audience, client and token kind: data plus
//! small functions, one [`Profile`] per provider, and your own when none fits.
//!
//! | profile | scopes | roles | audience | client | app-only when | `typ` |
//! |---|---|---|---|---|---|---|
//! | `generic` (RFC 9068) | `scope` string (`scp` too) | `roles` | `aud` | `client_id` | `sub == client_id` | `at+jwt` required |
//! | `entra` (v1, v2) | `scp` string | `roles` | `aud` (App ID URI or client GUID) | `azp` / `appid` | `idtyp: app`, or no `scp` | `JWT` or none |
//! | `okta` | `scp` array | `groups` | `aud` | `cid` | `sub == cid` | `JWT` or none |
//! | `cognito` | `scope` string | `cognito:groups` | none: `client_id` in an allow-list | `client_id` | `sub == client_id` | none; `token_use: access` required |
//! | `auth0` | `scope` string | none | `aud` string or array | `azp` | `gty: client-credentials` | `at+jwt`, `JWT` or none |
//! | `auth0-rbac` (opt-in) | `scope` string + `permissions` | `permissions` | `aud` string or array | `azp` | `gty: client-credentials` | `at+jwt`, `JWT` or none |
//! | `keycloak` | `scope` string | `realm_access.roles` + `resource_access.<client>.roles` (this server's client only) | `aud` | `azp`, in an allow-list | `client_id` (or `clientId`) note equal to `azp`, set on client-credentials tokens only | `JWT` or none; `typ` claim `Bearer` |
//!
//! Whatever the profile, the RFC 8693 `act` chain and `azp` are read the same way
//! ([`Principal::actors`](crate::Principal::actors), [`Principal::azp`](crate::Principal::azp)),
//! and a malformed `act` makes the token invalid.

use std::sync::Arc;

use serde_json::{Map, Value};

pub use crate::jwt::AudienceClaim;
use crate::jwt::{TokenError, TypPolicy};
use crate::scope::{ScopeSet, validate_scope_token};

/// Claims as verified.
pub type Claims = Map<String, Value>;

/// A function reading something from verified claims.
pub type ClaimsFn<T> = Arc<dyn Fn(&Claims) -> T + Send + Sync>;

/// Whether a token acts for a user or for an application alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenKind {
    /// A delegated token: a user signed in through a client.
    User,
    /// An app-only token (client credentials): no user.
    App,
}

impl std::fmt::Display for TokenKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TokenKind::User => "a delegated (user) token",
            TokenKind::App => "an app-only token",
        })
    }
}

/// How one identity provider shapes access tokens.
#[derive(Clone)]
pub struct Profile {
    /// The profile's name.
    pub name: String,
    /// Accepted `typ` header values.
    pub typ: TypPolicy,
    /// Where the audience is.
    pub audience: AudienceClaim,
    /// The granted scopes.
    pub scopes: ClaimsFn<ScopeSet>,
    /// The roles.
    pub roles: ClaimsFn<Vec<String>>,
    /// The OAuth client the token was issued to.
    pub client_id: ClaimsFn<Option<String>>,
    /// Delegated or app-only.
    pub token_kind: ClaimsFn<TokenKind>,
    /// Extra checks after the signature and the registered claims (e.g. Cognito's
    /// `token_use: access`).
    pub check: ClaimsFn<Result<(), TokenError>>,
}

impl std::fmt::Debug for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Profile")
            .field("name", &self.name)
            .field("typ", &self.typ)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

impl Default for Profile {
    fn default() -> Self {
        Self::generic()
    }
}

fn str_claim<'a>(c: &'a Claims, name: &str) -> Option<&'a str> {
    c.get(name).and_then(Value::as_str)
}

/// Strings of a claim that is a space-separated string or an array of strings.
fn words(c: &Claims, name: &str) -> Vec<String> {
    match c.get(name) {
        Some(Value::String(s)) => s
            .split(' ')
            .filter(|w| !w.is_empty())
            .map(str::to_owned)
            .collect(),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

/// Strings at a path of nested objects (`["realm_access", "roles"]`).
fn array_at(c: &Claims, path: &[&str]) -> Vec<String> {
    let mut v = match path.first().and_then(|p| c.get(*p)) {
        Some(v) => v,
        None => return Vec::new(),
    };
    for p in &path[1..] {
        match v.get(*p) {
            Some(next) => v = next,
            None => return Vec::new(),
        }
    }
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// A scope set from scope tokens; invalid tokens are skipped.
pub fn scope_set<I: IntoIterator<Item = String>>(items: I) -> ScopeSet {
    let mut set = ScopeSet::new();
    for s in items {
        if validate_scope_token(&s).is_ok() {
            let _ = set.insert(&s);
        }
    }
    set
}

fn first_of(c: &Claims, names: &[&str]) -> Option<String> {
    names
        .iter()
        .find_map(|n| str_claim(c, n))
        .map(str::to_owned)
}

/// A claim that, when present, has the JSON type `is_type` accepts.
fn claim_of_type(
    c: &Claims,
    name: &'static str,
    is_type: impl Fn(&Value) -> bool,
) -> Result<(), TokenError> {
    match c.get(name) {
        Some(v) if !is_type(v) => Err(TokenError::InvalidClaim(name)),
        _ => Ok(()),
    }
}

fn ok(_: &Claims) -> Result<(), TokenError> {
    Ok(())
}

impl Profile {
    /// RFC 9068: `scope` string (an `scp` string or array is read too), `roles`, `aud`,
    /// `client_id` (else `azp`, `cid`), `typ: at+jwt` required; app-only when the subject is
    /// the client.
    pub fn generic() -> Self {
        Self {
            name: "generic".into(),
            typ: TypPolicy::access_token(),
            audience: AudienceClaim::Aud,
            scopes: Arc::new(|c| scope_set(words(c, "scope").into_iter().chain(words(c, "scp")))),
            roles: Arc::new(|c| words(c, "roles")),
            client_id: Arc::new(|c| first_of(c, &["client_id", "azp", "cid"])),
            token_kind: Arc::new(|c| {
                let client = first_of(c, &["client_id", "azp", "cid"]);
                if client.is_some() && client.as_deref() == str_claim(c, "sub") {
                    TokenKind::App
                } else {
                    TokenKind::User
                }
            }),
            check: Arc::new(ok),
        }
    }

    /// Microsoft Entra ID, v1 and v2 access tokens: `scp` space-separated string for delegated
    /// tokens, `roles` array for application permissions, `idtyp: app` (or no `scp`) for
    /// app-only tokens, client in `azp` (v2) or `appid` (v1), `typ: JWT`. Configure the App ID
    /// URI and the client id as audiences, and issuers per tenant
    /// (`https://login.microsoftonline.com/{tid}/v2.0`, `https://sts.windows.net/{tid}/`).
    pub fn entra() -> Self {
        Self {
            name: "entra".into(),
            typ: TypPolicy::lenient(),
            audience: AudienceClaim::Aud,
            scopes: Arc::new(|c| scope_set(words(c, "scp"))),
            roles: Arc::new(|c| words(c, "roles")),
            client_id: Arc::new(|c| first_of(c, &["azp", "appid"])),
            token_kind: Arc::new(|c| {
                if str_claim(c, "idtyp") == Some("app")
                    || (c.get("scp").is_none() && c.get("roles").is_some())
                {
                    TokenKind::App
                } else {
                    TokenKind::User
                }
            }),
            check: Arc::new(|c| {
                // Entra writes `scp` and `idtyp` as strings and `roles` as an array of strings;
                // any other JSON type (`null` included) is refused rather than read as absent,
                // so that `roles: null` cannot make a delegated token look app-only.
                claim_of_type(c, "scp", Value::is_string)?;
                claim_of_type(c, "idtyp", Value::is_string)?;
                claim_of_type(c, "roles", |v| {
                    v.as_array().is_some_and(|a| a.iter().all(Value::is_string))
                })?;
                // Access tokens for this API carry `scp` (delegated) or `roles` (app-only), and
                // name the client in `azp` (v2) or `appid` (v1); ID tokens have no client claim.
                if c.get("scp").is_none() && c.get("roles").is_none() {
                    return Err(TokenError::MissingClaim("scp"));
                }
                if str_claim(c, "azp").is_none() && str_claim(c, "appid").is_none() {
                    return Err(TokenError::MissingClaim("azp"));
                }
                Ok(())
            }),
        }
    }

    /// Okta (custom authorization servers `https://{domain}/oauth2/{id}`): `scp` array, `cid`
    /// client, `groups` as roles; app-only when the subject is the client.
    pub fn okta() -> Self {
        Self {
            name: "okta".into(),
            typ: TypPolicy::lenient(),
            audience: AudienceClaim::Aud,
            scopes: Arc::new(|c| scope_set(words(c, "scp"))),
            roles: Arc::new(|c| words(c, "groups")),
            client_id: Arc::new(|c| first_of(c, &["cid", "client_id"])),
            token_kind: Arc::new(|c| {
                if str_claim(c, "cid").is_some() && str_claim(c, "cid") == str_claim(c, "sub") {
                    TokenKind::App
                } else {
                    TokenKind::User
                }
            }),
            check: Arc::new(ok),
        }
    }

    /// AWS Cognito access tokens: no `aud` (the `client_id` must be one of `app_clients`),
    /// `token_use: access` required (ID tokens are refused), `scope` string (custom scopes
    /// carry the resource server identifier as prefix, see
    /// [`GuardBuilder::scope_prefix`](crate::GuardBuilder::scope_prefix)), `cognito:groups`
    /// as roles; app-only when the subject is the client (client credentials).
    pub fn cognito<I, S>(app_clients: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            name: "cognito".into(),
            typ: TypPolicy::lenient(),
            audience: AudienceClaim::ClientIdAllowList(
                app_clients.into_iter().map(Into::into).collect(),
            ),
            scopes: Arc::new(|c| scope_set(words(c, "scope"))),
            roles: Arc::new(|c| words(c, "cognito:groups")),
            client_id: Arc::new(|c| first_of(c, &["client_id"])),
            token_kind: Arc::new(|c| {
                if str_claim(c, "client_id").is_some()
                    && str_claim(c, "client_id") == str_claim(c, "sub")
                {
                    TokenKind::App
                } else {
                    TokenKind::User
                }
            }),
            check: Arc::new(|c| match str_claim(c, "token_use") {
                Some("access") => Ok(()),
                Some(_) => Err(TokenError::WrongType),
                None => Err(TokenError::MissingClaim("token_use")),
            }),
        }
    }

    /// Auth0: the `scope` string only, `aud` string or array, `azp` client; app-only for
    /// `gty: client-credentials`.
    ///
    /// Auth0's RBAC `permissions` array lists every permission the *user* holds on the API,
    /// whatever scopes the client was granted: a client granted only `openid` (even one
    /// registered dynamically) would hold them all. They count only with
    /// [`Profile::auth0_rbac`], for APIs whose Auth0 settings make permissions the grant.
    pub fn auth0() -> Self {
        Self {
            name: "auth0".into(),
            typ: TypPolicy::lenient(),
            audience: AudienceClaim::Aud,
            scopes: Arc::new(|c| scope_set(words(c, "scope"))),
            roles: Arc::new(|_| Vec::new()),
            client_id: Arc::new(|c| first_of(c, &["azp", "client_id"])),
            token_kind: Arc::new(|c| {
                if str_claim(c, "gty") == Some("client-credentials") {
                    TokenKind::App
                } else {
                    TokenKind::User
                }
            }),
            check: Arc::new(ok),
        }
    }

    /// Auth0 with RBAC permissions trusted (opt-in, `auth0-rbac` by name): the `permissions`
    /// array counts as scopes and as roles, besides `scope`. Choose it only when the API's
    /// Auth0 settings enable RBAC and "Add Permissions in the Access Token", and every client
    /// that may call it is trusted with all of a user's permissions.
    pub fn auth0_rbac() -> Self {
        Self {
            name: "auth0-rbac".into(),
            scopes: Arc::new(|c| {
                scope_set(words(c, "scope").into_iter().chain(words(c, "permissions")))
            }),
            roles: Arc::new(|c| words(c, "permissions")),
            ..Self::auth0()
        }
    }

    /// Keycloak (realm issuer `https://{host}/realms/{realm}`): `scope` string, roles from
    /// `realm_access.roles` and `resource_access.<client>.roles` for `client` only (the MCP
    /// server's client in the realm; other clients' roles are theirs), the client in `azp`,
    /// which must be one of `allowed_clients` (`"*"`: any client of the realm, for realms
    /// whose client registration is itself trusted). App-only for service accounts, told by
    /// the `client_id` (or, before Keycloak 20, `clientId`) note Keycloak adds to
    /// client-credentials tokens only, equal to `azp`: never by `preferred_username`, which
    /// a user may be able to choose. Keycloak puts the server in `aud` only with an audience
    /// mapper: configure one.
    pub fn keycloak<I, S>(client: impl Into<String>, allowed_clients: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let client: String = client.into();
        let allowed: Vec<String> = allowed_clients.into_iter().map(Into::into).collect();
        let any = allowed.iter().any(|c| c == "*");
        Self {
            name: "keycloak".into(),
            typ: TypPolicy::lenient(),
            audience: AudienceClaim::Aud,
            scopes: Arc::new(|c| scope_set(words(c, "scope"))),
            roles: Arc::new(move |c| {
                let mut roles = array_at(c, &["realm_access", "roles"]);
                roles.extend(array_at(c, &["resource_access", client.as_str(), "roles"]));
                roles
            }),
            client_id: Arc::new(|c| str_claim(c, "azp").map(str::to_owned)),
            token_kind: Arc::new(|c| {
                let note = str_claim(c, "client_id").or_else(|| str_claim(c, "clientId"));
                if note.is_some() && note == str_claim(c, "azp") {
                    TokenKind::App
                } else {
                    TokenKind::User
                }
            }),
            // Keycloak labels every token in a `typ` claim: the string `Bearer` for access
            // tokens, `ID` and `Refresh` for the others. Missing or of another JSON type, it
            // is not an access token.
            check: Arc::new(move |c| {
                match c.get("typ") {
                    Some(Value::String(t)) if t == "Bearer" => {}
                    _ => return Err(TokenError::WrongType),
                }
                match c.get("azp") {
                    Some(Value::String(azp)) if any || allowed.iter().any(|a| a == azp) => Ok(()),
                    Some(Value::String(_)) => Err(TokenError::UnknownClient),
                    Some(_) => Err(TokenError::InvalidClaim("azp")),
                    None => Err(TokenError::MissingClaim("azp")),
                }
            }),
        }
    }

    /// A profile by name (`generic`, `entra`, `okta`, `cognito`, `auth0`, `auth0-rbac`,
    /// `keycloak`). `clients` are Cognito's app clients, or Keycloak's server client (the
    /// first) followed by the clients whose tokens it accepts.
    pub fn by_name(name: &str, clients: &[String]) -> Option<Self> {
        Some(match name {
            "generic" => Self::generic(),
            "entra" => Self::entra(),
            "okta" => Self::okta(),
            "cognito" => Self::cognito(clients.iter().cloned()),
            "auth0" => Self::auth0(),
            "auth0-rbac" => Self::auth0_rbac(),
            "keycloak" => Self::keycloak(
                clients.first().cloned().unwrap_or_default(),
                clients.iter().skip(1).cloned(),
            ),
            _ => return None,
        })
    }

    /// Replaces the `typ` policy.
    pub fn with_typ(mut self, typ: TypPolicy) -> Self {
        self.typ = typ;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(v: Value) -> Claims {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn keycloak_refuses_id_and_refresh_tokens() {
        let p = Profile::keycloak("mcp", ["inspector"]);
        assert!((p.check)(&claims(json!({"typ": "Bearer", "azp": "inspector"}))).is_ok());
        assert_eq!(
            (p.check)(&claims(json!({"typ": "Bearer", "azp": "other"}))),
            Err(TokenError::UnknownClient)
        );
        assert_eq!(
            (p.check)(&claims(json!({"typ": "Bearer"}))),
            Err(TokenError::MissingClaim("azp"))
        );
        let any = Profile::keycloak("mcp", ["*"]);
        assert!((any.check)(&claims(json!({"typ": "Bearer", "azp": "other"}))).is_ok());
        assert_eq!((p.check)(&claims(json!({}))), Err(TokenError::WrongType));
        assert_eq!(
            (p.check)(&claims(json!({"typ": ["Bearer"]}))),
            Err(TokenError::WrongType)
        );
        assert_eq!(
            (p.check)(&claims(json!({"typ": "ID"}))),
            Err(TokenError::WrongType)
        );
        assert_eq!(
            (p.check)(&claims(json!({"typ": "Refresh"}))),
            Err(TokenError::WrongType)
        );
    }

    #[test]
    fn entra_needs_a_client_claim_and_a_grant() {
        let p = Profile::entra();
        assert!((p.check)(&claims(json!({"scp": "a", "azp": "c"}))).is_ok());
        assert!((p.check)(&claims(json!({"roles": ["r"], "appid": "c"}))).is_ok());
        assert!(
            (p.check)(&claims(json!({"roles": ["r"], "aud": "c"}))).is_err(),
            "an ID token with app roles"
        );
        assert!((p.check)(&claims(json!({"azp": "c"}))).is_err());
        for (bad, name) in [
            (json!({"scp": null, "roles": ["r"], "azp": "c"}), "scp"),
            (json!({"scp": "a", "roles": null, "azp": "c"}), "roles"),
            (json!({"scp": ["a"], "azp": "c"}), "scp"),
            (json!({"roles": "r", "azp": "c"}), "roles"),
            (json!({"roles": [1], "azp": "c"}), "roles"),
            (json!({"scp": "a", "idtyp": 1, "azp": "c"}), "idtyp"),
        ] {
            assert_eq!(
                (p.check)(&claims(bad.clone())),
                Err(TokenError::InvalidClaim(name)),
                "{bad}"
            );
        }
    }
}
