//! The verified caller handed to tools and handlers: subject, client, scopes, roles, actors,
//! claims.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::jwt::{TokenError, numeric_date};
use crate::scope::{ScopeHierarchy, ScopeSet};

pub use crate::profile::TokenKind;

/// One party of a token's RFC 8693 §4.1 `act` chain: someone acting on behalf of the token's
/// subject (the current actor), or on behalf of the actor before it (a prior actor).
///
/// ```
/// # let claims = serde_json::json!({"sub": "alice", "iss": "https://as", "exp": 1,
/// #     "act": {"sub": "agent-a", "client_id": "agents", "act": {"sub": "gateway"}}});
/// # let p = mcp_guard::Principal::from_claims(claims.as_object().unwrap().clone()).unwrap();
/// let actor = p.actor().expect("a delegated token");
/// assert_eq!(actor.subject(), "agent-a");
/// assert_eq!(actor.client_id(), Some("agents"));
/// assert_eq!(actor.issuer(), None);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    subject: String,
    issuer: Option<String>,
    client_id: Option<String>,
}

impl Actor {
    /// The actor's `sub`: who acts.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The actor's `iss`, when the `act` object names one (the issuer its `sub` is relative
    /// to; absent, the token's own issuer).
    pub fn issuer(&self) -> Option<&str> {
        self.issuer.as_deref()
    }

    /// The actor's `client_id`, when the `act` object names one.
    pub fn client_id(&self) -> Option<&str> {
        self.client_id.as_deref()
    }
}

/// The `act` chain of verified claims, current actor first. Fails closed: an `act` that is not
/// an object, an actor without a non-empty string `sub`, an `iss` or `client_id` that is not a
/// string, or more than [`Principal::MAX_ACTOR_DEPTH`] actors make the token invalid.
fn actor_chain(claims: &Map<String, Value>) -> Result<Vec<Actor>, TokenError> {
    let mut chain = Vec::new();
    let mut next = claims.get("act");
    while let Some(act) = next {
        let Value::Object(act) = act else {
            return Err(TokenError::InvalidClaim("act"));
        };
        if chain.len() == Principal::MAX_ACTOR_DEPTH {
            return Err(TokenError::InvalidClaim("act"));
        }
        let subject = match act.get("sub") {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            _ => return Err(TokenError::InvalidClaim("act")),
        };
        let text = |name: &str| match act.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(TokenError::InvalidClaim("act")),
        };
        chain.push(Actor {
            subject,
            issuer: text("iss")?,
            client_id: text("client_id")?,
        });
        next = act.get("act");
    }
    Ok(chain)
}

/// The verified caller of one request.
///
/// The guard layer inserts it into the request's extensions after the token is verified; it
/// is cheap to clone. Tools take it as a parameter (it implements rmcp's `FromContextPart`)
/// and axum handlers as an extractor. Both refuse the call when it is absent (fail closed).
///
/// ```no_run
/// use mcp_guard::Principal;
/// async fn handler(principal: Principal) -> String {
///     format!("{} {}", principal.subject(), principal.scopes())
/// }
/// let app: axum::Router = axum::Router::new().route("/whoami", axum::routing::get(handler));
/// ```
#[derive(Clone)]
pub struct Principal(Arc<Inner>);

#[derive(Clone)]
struct Inner {
    subject: String,
    issuer: String,
    client_id: Option<String>,
    scopes: ScopeSet,
    roles: Vec<String>,
    kind: TokenKind,
    expires_at: u64,
    jti: Option<String>,
    /// The RFC 8693 `act` chain, current actor first.
    actors: Vec<Actor>,
    /// What the token is bound to (`cnf`, RFC 7800).
    binding: Binding,
    claims: Claims,
    /// The subject is the client id, not an issuer-asserted `sub`.
    client_subject: bool,
    /// The scope hierarchy of the server whose guard verified the token (none for a
    /// principal built outside a guard).
    hierarchy: Option<Arc<ScopeHierarchy>>,
}

/// The claims of a principal: the map it was built from, or the JSON text a verified token
/// carried, parsed on first use. A principal in the verified-token cache keeps one buffer
/// instead of a map of a few dozen allocations while no one asks for its claims; once asked,
/// it keeps the map beside the buffer for the rest of its life.
#[derive(Clone, Default)]
struct Claims {
    /// The JSON object the map is read from, when it has not been parsed yet.
    json: Option<Vec<u8>>,
    map: OnceLock<Map<String, Value>>,
}

impl Claims {
    fn parsed(map: Map<String, Value>) -> Self {
        Self {
            json: None,
            map: OnceLock::from(map),
        }
    }

    /// `json` is text that has already been parsed into a JSON object, so parsing it again
    /// gives the same map.
    fn unparsed(json: Vec<u8>) -> Self {
        Self {
            json: Some(json),
            map: OnceLock::new(),
        }
    }

    fn get(&self) -> &Map<String, Value> {
        self.map.get_or_init(|| {
            self.json
                .as_deref()
                .and_then(|json| serde_json::from_slice(json).ok())
                .unwrap_or_default()
        })
    }

    fn into_map(self) -> Map<String, Value> {
        self.get();
        self.map.into_inner().unwrap_or_default()
    }
}

/// What a token's `cnf` claim binds it to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Binding {
    /// No `cnf`: a bearer token.
    None,
    /// `cnf.jkt`: a DPoP key's thumbprint.
    Dpop(String),
    /// A confirmation method this guard cannot check.
    Other,
}

/// Reads `cnf`: absent (or `null`) is a bearer token; an object with a `jkt` string is DPoP;
/// an object without is bound some other way; anything else is malformed.
fn binding(claims: &Map<String, Value>) -> Result<Binding, TokenError> {
    match claims.get("cnf") {
        None | Some(Value::Null) => Ok(Binding::None),
        Some(Value::Object(cnf)) => match cnf.get("jkt") {
            Some(Value::String(jkt)) if !jkt.is_empty() => Ok(Binding::Dpop(jkt.clone())),
            Some(_) => Err(TokenError::InvalidClaim("cnf")),
            None if cnf.is_empty() => Err(TokenError::InvalidClaim("cnf")),
            None => Ok(Binding::Other),
        },
        Some(_) => Err(TokenError::InvalidClaim("cnf")),
    }
}

impl Inner {
    /// Everything but the claims, read from them (see [`Principal::from_profile`]).
    fn read(
        claims: &Map<String, Value>,
        profile: &crate::profile::Profile,
        scope_prefix: Option<&str>,
    ) -> Result<Self, TokenError> {
        let subject = match claims.get("sub") {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            Some(Value::String(_)) | None => return Err(TokenError::MissingClaim("sub")),
            Some(_) => return Err(TokenError::InvalidClaim("sub")),
        };
        let issuer = claims
            .get("iss")
            .and_then(Value::as_str)
            .ok_or(TokenError::MissingClaim("iss"))?
            .to_owned();
        let expires_at = numeric_date(claims, "exp")?.ok_or(TokenError::MissingClaim("exp"))?;
        for name in ["scope", "scp"] {
            if let Some(v) = claims.get(name)
                && !matches!(v, Value::String(_) | Value::Array(_) | Value::Null)
            {
                return Err(TokenError::InvalidClaim(if name == "scope" {
                    "scope"
                } else {
                    "scp"
                }));
            }
        }
        if claims.get("azp").is_some_and(|v| !v.is_string()) {
            return Err(TokenError::InvalidClaim("azp"));
        }
        let actors = actor_chain(claims)?;
        let binding = binding(claims)?;
        (profile.check)(claims)?;
        let mut scopes = (profile.scopes)(claims);
        if let Some(prefix) = scope_prefix.filter(|p| !p.is_empty()) {
            let mut stripped = ScopeSet::new();
            for s in scopes.iter() {
                let _ = stripped.insert(
                    s.strip_prefix(prefix)
                        .filter(|r| !r.is_empty())
                        .unwrap_or(s),
                );
            }
            scopes = stripped;
        }
        let kind = (profile.token_kind)(claims);
        Ok(Inner {
            subject,
            issuer,
            client_id: (profile.client_id)(claims),
            scopes,
            roles: (profile.roles)(claims),
            kind,
            expires_at,
            jti: claims.get("jti").and_then(Value::as_str).map(str::to_owned),
            actors,
            binding,
            claims: Claims::default(),
            client_subject: false,
            hierarchy: None,
        })
    }
}

impl std::fmt::Debug for Principal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Principal")
            .field("subject", &self.0.subject)
            .field("issuer", &self.0.issuer)
            .field("client_id", &self.0.client_id)
            .field("scopes", &self.0.scopes)
            .field("roles", &self.0.roles)
            .field("actors", &self.0.actors)
            .finish_non_exhaustive()
    }
}

impl Principal {
    /// How deeply `act` claims may nest (RFC 8693 §4.1): a token whose chain of actors is
    /// longer is refused as invalid.
    pub const MAX_ACTOR_DEPTH: usize = 8;

    /// Builds a principal from verified claims.
    ///
    /// Scopes come from `scope` (a space-separated string, RFC 9068) or `scp` (a string or an
    /// array of strings, as Okta and Entra ID send); tokens that are not valid scope tokens are
    /// skipped. The client is `client_id`, else `azp`, else `cid`. Roles come from `roles`.
    /// The actors come from the RFC 8693 `act` claim ([`Principal::actors`]).
    pub fn from_claims(claims: Map<String, Value>) -> Result<Self, TokenError> {
        Self::from_profile(claims, &crate::profile::Profile::generic(), None)
    }

    /// Builds a principal from verified claims the way `profile` reads them. Scopes that carry
    /// `scope_prefix` (a resource's scope namespace, such as Cognito's resource server
    /// identifier) are held without it.
    ///
    /// Whatever the profile, an `azp` that is not a string and an `act` claim that is not a
    /// well-formed chain of actors (see [`Principal::actors`]) make the token invalid.
    pub fn from_profile(
        claims: Map<String, Value>,
        profile: &crate::profile::Profile,
        scope_prefix: Option<&str>,
    ) -> Result<Self, TokenError> {
        let mut inner = Inner::read(&claims, profile, scope_prefix)?;
        inner.claims = Claims::parsed(claims);
        Ok(Self(Arc::new(inner)))
    }

    /// [`Principal::from_profile`] for a verified JWT whose payload (`json`) parsed into
    /// `claims`: the principal keeps the payload and reads the map from it again only when
    /// asked for its claims.
    pub(crate) fn from_payload(
        json: Vec<u8>,
        claims: &Map<String, Value>,
        profile: &crate::profile::Profile,
        scope_prefix: Option<&str>,
    ) -> Result<Self, TokenError> {
        let mut inner = Inner::read(claims, profile, scope_prefix)?;
        inner.claims = Claims::unparsed(json);
        Ok(Self(Arc::new(inner)))
    }

    /// Who the caller is: the `sub` claim the issuer asserted.
    ///
    /// One exception: an introspected app-only token whose response has no `sub` (RFC 7662
    /// makes it optional) is the client acting for itself, and its subject is its client id;
    /// [`Principal::subject_is_client`] then says so. A client id and a user's `sub` may be
    /// the same string, so code that keys data by subject should key it by that pair (the
    /// guard's own session binding does). A response without `sub` that names a user
    /// (`username`) is refused: a user name is never used as an identity.
    pub fn subject(&self) -> &str {
        &self.0.subject
    }

    /// Whether [`Principal::subject`] is a client id rather than an issuer-asserted `sub`
    /// (an introspected app-only token without `sub`). Always false for JWTs.
    pub fn subject_is_client(&self) -> bool {
        self.0.client_subject
    }

    /// This principal with its subject marked as a client id (the claims keep no `sub`).
    pub(crate) fn into_client_subject(mut self) -> Self {
        let inner = Arc::make_mut(&mut self.0);
        inner.client_subject = true;
        inner.kind = TokenKind::App;
        let mut claims = std::mem::take(&mut inner.claims).into_map();
        claims.remove("sub");
        inner.claims = Claims::parsed(claims);
        self
    }

    /// The `iss` claim (the issuer whose keys verified the token).
    pub fn issuer(&self) -> &str {
        &self.0.issuer
    }

    /// The OAuth client the token was issued to.
    pub fn client_id(&self) -> Option<&str> {
        self.0.client_id.as_deref()
    }

    /// The granted scopes.
    pub fn scopes(&self) -> &ScopeSet {
        &self.0.scopes
    }

    /// Whether the caller has this scope: the token holds it, or holds a scope that implies
    /// it in the server's scope catalogue (`files:admin => [files:write]`), the way the guard
    /// decides.
    ///
    /// The hierarchy is the one of the guard that verified the token: every principal a
    /// [`Guard`](crate::Guard) hands to a tool or handler carries it. A principal built
    /// directly ([`Principal::from_claims`], [`Principal::from_profile`]) knows no hierarchy,
    /// and this is then [`Principal::holds_scope`].
    ///
    /// ```
    /// # let claims = serde_json::json!({"sub": "alice", "iss": "https://as", "exp": 1, "scope": "files:admin"});
    /// # let p = mcp_guard::Principal::from_claims(claims.as_object().unwrap().clone()).unwrap();
    /// let admin = p.has_scope("files:admin"); // held literally: true
    /// # assert!(admin);
    /// ```
    pub fn has_scope(&self, scope: &str) -> bool {
        match &self.0.hierarchy {
            Some(h) => h.satisfies(&self.0.scopes, scope),
            None => self.0.scopes.contains(scope),
        }
    }

    /// Whether the token itself lists this scope, whatever the hierarchy implies (for
    /// auditing what was granted; decide with [`Principal::has_scope`]).
    pub fn holds_scope(&self, scope: &str) -> bool {
        self.0.scopes.contains(scope)
    }

    /// The same principal, judged by `hierarchy` in [`Principal::has_scope`]. Called where a
    /// principal is created, so the shared inner value is not copied.
    pub(crate) fn with_hierarchy(mut self, hierarchy: &Arc<ScopeHierarchy>) -> Self {
        Arc::make_mut(&mut self.0).hierarchy = Some(hierarchy.clone());
        self
    }

    /// The roles (`roles` claim).
    pub fn roles(&self) -> &[String] {
        &self.0.roles
    }

    /// When the token expires.
    pub fn expires_at(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(self.0.expires_at)
    }

    /// Whether the token is delegated or app-only, as the issuer's profile reads it (generic:
    /// app-only when the subject is the client, RFC 9068 §2.2 for `client_credentials`).
    pub fn token_kind(&self) -> TokenKind {
        self.0.kind
    }

    /// The authorized party (`azp` claim): the client the token was issued to, as OpenID
    /// Connect and several identity providers name it. [`Principal::client_id`] is the
    /// profile's reading of the client, which may come from another claim.
    ///
    /// ```
    /// # let claims = serde_json::json!({"sub": "alice", "iss": "https://as", "exp": 1, "azp": "inspector"});
    /// # let p = mcp_guard::Principal::from_claims(claims.as_object().unwrap().clone()).unwrap();
    /// assert_eq!(p.azp(), Some("inspector"));
    /// ```
    pub fn azp(&self) -> Option<&str> {
        self.claims().get("azp").and_then(Value::as_str)
    }

    /// Whether the token names an actor (RFC 8693 §4.1 `act`): someone, typically an agent or
    /// a service, calls on behalf of the subject. Independent of [`Principal::token_kind`],
    /// which tells a user's token from an app-only one.
    pub fn has_actor(&self) -> bool {
        !self.0.actors.is_empty()
    }

    /// The current actor: the outermost `act`, the party making this call on behalf of the
    /// subject. RFC 8693 §4.1 makes it the only actor access decisions consider.
    pub fn actor(&self) -> Option<&Actor> {
        self.0.actors.first()
    }

    /// The whole `act` chain, outermost first: the current actor, then the prior actors it
    /// acts for, each nested `act` in turn (at most [`Principal::MAX_ACTOR_DEPTH`]).
    ///
    /// ```
    /// # let claims = serde_json::json!({"sub": "alice", "iss": "https://as", "exp": 1,
    /// #     "act": {"sub": "agent-a", "act": {"sub": "gateway"}}});
    /// # let p = mcp_guard::Principal::from_claims(claims.as_object().unwrap().clone()).unwrap();
    /// let chain: Vec<&str> = p.actors().map(|a| a.subject()).collect();
    /// assert_eq!(chain, ["agent-a", "gateway"]);
    /// assert_eq!(p.prior_actors().count(), 1);
    /// ```
    pub fn actors(&self) -> impl ExactSizeIterator<Item = &Actor> + DoubleEndedIterator {
        self.0.actors.iter()
    }

    /// The prior actors: the chain after the current actor (informational only, RFC 8693
    /// §4.1).
    pub fn prior_actors(&self) -> impl ExactSizeIterator<Item = &Actor> + DoubleEndedIterator {
        self.0.actors.iter().skip(1)
    }

    /// The RFC 7638 thumbprint of the key the token is bound to (`cnf.jkt`, RFC 9449 §6):
    /// such a token is accepted only as `Authorization: DPoP` with a proof signed by that key
    /// ([`crate::dpop`]).
    ///
    /// ```
    /// # let claims = serde_json::json!({"sub":"alice","iss":"https://as","exp":1,
    /// #     "cnf": {"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}});
    /// # let p = mcp_guard::Principal::from_claims(claims.as_object().unwrap().clone()).unwrap();
    /// assert_eq!(p.dpop_thumbprint(), Some("0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"));
    /// assert!(p.is_sender_constrained());
    /// ```
    pub fn dpop_thumbprint(&self) -> Option<&str> {
        match &self.0.binding {
            Binding::Dpop(jkt) => Some(jkt),
            _ => None,
        }
    }

    /// Whether the token is bound to a key (any `cnf` claim): it is never accepted as a
    /// bearer token. A confirmation other than `jkt` (such as RFC 8705's certificate
    /// thumbprint `x5t#S256`) is one this guard cannot check, so such tokens are refused.
    pub fn is_sender_constrained(&self) -> bool {
        !matches!(self.0.binding, Binding::None)
    }

    /// The `jti` claim.
    pub fn token_id(&self) -> Option<&str> {
        self.0.jti.as_deref()
    }

    /// All claims, as sent.
    pub fn claims(&self) -> &Map<String, Value> {
        self.0.claims.get()
    }

    /// One claim deserialized into `T`; `None` when absent or of another shape.
    ///
    /// ```
    /// # let claims = serde_json::json!({"sub":"alice","iss":"https://as","exp":1,"tid":"t1"});
    /// # let p = mcp_guard::Principal::from_claims(claims.as_object().unwrap().clone()).unwrap();
    /// let tenant: Option<String> = p.claim("tid");
    /// assert_eq!(tenant.as_deref(), Some("t1"));
    /// ```
    pub fn claim<T: DeserializeOwned>(&self, name: &str) -> Option<T> {
        self.claims()
            .get(name)
            .and_then(|v| serde_json::from_value(v.clone()).ok())
    }

    /// The key a legacy session is bound to: issuer, the kind of subject, and the subject.
    ///
    /// Collision-free by construction: the issuer is length-prefixed, so no issuer or subject
    /// can shift the boundary between them, and a client-id subject (`client`) never equals
    /// an asserted `sub` (`sub`), even when the strings are the same.
    pub(crate) fn binding_key(&self) -> String {
        let kind = if self.0.client_subject {
            "client"
        } else {
            "sub"
        };
        format!(
            "{}:{}\u{0}{kind}\u{0}{}",
            self.0.issuer.len(),
            self.0.issuer,
            self.0.subject
        )
    }
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Principal {
    type Rejection = (http::StatusCode, &'static str);

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Principal>().cloned().ok_or((
            http::StatusCode::INTERNAL_SERVER_ERROR,
            "no verified principal on this request: mount the handler behind mcp_guard's GuardLayer",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(v: Value) -> Result<Principal, TokenError> {
        Principal::from_claims(v.as_object().unwrap().clone())
    }

    #[test]
    fn a_principal_kept_as_its_payload_reads_the_same_claims() {
        let json = br#"{"sub":"alice","iss":"https://as","exp":10,"scope":"a b","tid":"t1","n":{"x":[1,2]}}"#;
        let claims: Map<String, Value> = serde_json::from_slice(json).unwrap();
        let profile = crate::profile::Profile::generic();
        let lazy = Principal::from_payload(json.to_vec(), &claims, &profile, None).unwrap();
        let eager = Principal::from_profile(claims.clone(), &profile, None).unwrap();
        assert_eq!(lazy.subject(), eager.subject());
        assert_eq!(lazy.scopes(), eager.scopes());
        // A copy made before the claims are first read reads them too.
        let copy = lazy.clone();
        assert_eq!(lazy.claims(), &claims);
        assert_eq!(copy.claims(), &claims);
        assert_eq!(lazy.clone().claims(), &claims);
        assert_eq!(lazy.claim::<String>("tid").as_deref(), Some("t1"));
        assert_eq!(lazy.claim::<Value>("n"), Some(json!({"x": [1, 2]})));
        // Marking the subject as a client drops `sub` from the claims, read or not.
        let fresh = Principal::from_payload(json.to_vec(), &claims, &profile, None).unwrap();
        let client = fresh.into_client_subject();
        assert!(client.claims().get("sub").is_none());
        assert_eq!(client.claims().get("tid"), Some(&json!("t1")));
    }

    #[test]
    fn has_scope_follows_the_attached_hierarchy_and_holds_scope_the_token() {
        let claims = json!({"sub":"a","iss":"i","exp":10,"scope":"files:admin"});
        let plain = p(claims).unwrap();
        assert!(plain.has_scope("files:admin"));
        assert!(!plain.has_scope("files:write"), "no hierarchy: literal");
        let hierarchy = Arc::new(
            ScopeHierarchy::builder()
                .implies("files:admin", ["files:write"])
                .implies("files:write", ["files:read"])
                .build()
                .unwrap(),
        );
        let judged = plain.clone().with_hierarchy(&hierarchy);
        assert!(judged.has_scope("files:write") && judged.has_scope("files:read"));
        assert!(!judged.holds_scope("files:read") && judged.holds_scope("files:admin"));
        assert!(!judged.has_scope("mail:read"));
        assert!(!plain.has_scope("files:read"), "the original is unchanged");
    }

    #[test]
    fn scope_shapes() {
        let base = |extra: Value| {
            let mut v = json!({"sub":"a","iss":"i","exp":10});
            v.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            v
        };
        assert_eq!(
            p(base(json!({"scope":"b a"})))
                .unwrap()
                .scopes()
                .to_string(),
            "a b"
        );
        assert_eq!(
            p(base(json!({"scp":"b a"}))).unwrap().scopes().to_string(),
            "a b"
        );
        assert_eq!(
            p(base(json!({"scp":["x","y"]})))
                .unwrap()
                .scopes()
                .to_string(),
            "x y"
        );
        assert_eq!(
            p(base(json!({"scope":7}))).unwrap_err(),
            TokenError::InvalidClaim("scope")
        );
        assert_eq!(
            p(json!({"iss":"i","exp":1})).unwrap_err(),
            TokenError::MissingClaim("sub")
        );
        let q = p(base(json!({"azp":"c1","roles":["admin"]}))).unwrap();
        assert_eq!(q.client_id(), Some("c1"));
        assert_eq!(q.roles(), ["admin"]);
    }

    #[test]
    fn act_chains_are_read_outermost_first_and_malformed_ones_refused() {
        let base = |act: Value| json!({"sub":"alice","iss":"i","exp":10,"act":act});
        let q = p(base(json!({
            "sub": "agent-a", "iss": "https://agents", "client_id": "c",
            "act": {"sub": "gateway"}
        })))
        .unwrap();
        assert!(q.has_actor());
        let chain: Vec<_> = q.actors().map(Actor::subject).collect();
        assert_eq!(chain, ["agent-a", "gateway"]);
        let current = q.actor().unwrap();
        assert_eq!(current.issuer(), Some("https://agents"));
        assert_eq!(current.client_id(), Some("c"));
        assert_eq!(q.prior_actors().next().unwrap().issuer(), None);
        let plain = p(json!({"sub":"alice","iss":"i","exp":10})).unwrap();
        assert!(!plain.has_actor() && plain.actor().is_none());

        let mut deepest = json!({"sub": "a8"});
        for i in (1..Principal::MAX_ACTOR_DEPTH).rev() {
            deepest = json!({"sub": format!("a{i}"), "act": deepest});
        }
        assert_eq!(p(base(deepest.clone())).unwrap().actors().len(), 8);
        let too_deep = json!({"sub": "a0", "act": deepest});
        for bad in [
            json!("agent-a"),
            json!(null),
            json!(["agent-a"]),
            json!({}),
            json!({"sub": ""}),
            json!({"sub": 7}),
            json!({"sub": "a", "iss": 1}),
            json!({"sub": "a", "client_id": ["c"]}),
            json!({"sub": "a", "act": "b"}),
            json!({"sub": "a", "act": {"client_id": "c"}}),
            too_deep,
        ] {
            assert_eq!(
                p(base(bad.clone())).unwrap_err(),
                TokenError::InvalidClaim("act"),
                "{bad}"
            );
        }
        assert_eq!(
            p(json!({"sub":"a","iss":"i","exp":10,"azp":1})).unwrap_err(),
            TokenError::InvalidClaim("azp")
        );
    }

    #[test]
    fn every_profile_reads_and_checks_the_act_chain() {
        use crate::profile::Profile;
        let base = json!({
            "sub": "alice", "iss": "i", "exp": 10, "scp": "a", "scope": "a", "azp": "c",
            "typ": "Bearer", "token_use": "access", "client_id": "c",
        });
        for profile in [
            Profile::generic(),
            Profile::entra(),
            Profile::okta(),
            Profile::cognito(["c"]),
            Profile::auth0(),
            Profile::auth0_rbac(),
            Profile::keycloak("mcp", ["c"]),
        ] {
            let with = |act: Value| {
                let mut c = base.as_object().unwrap().clone();
                c.insert("act".into(), act);
                Principal::from_profile(c, &profile, None)
            };
            let q = with(json!({"sub": "agent-a"})).unwrap();
            assert_eq!(
                q.actor().map(Actor::subject),
                Some("agent-a"),
                "{}",
                profile.name
            );
            assert_eq!(q.azp(), Some("c"));
            assert_eq!(
                with(json!({"iss": "x"})).unwrap_err(),
                TokenError::InvalidClaim("act"),
                "{}",
                profile.name
            );
        }
    }

    #[test]
    fn binding_keys_never_collide_across_kinds_or_issuers() {
        let user = p(json!({"sub":"alice","iss":"i","exp":10})).unwrap();
        let client = p(json!({"sub":"alice","iss":"i","exp":10,"client_id":"alice"}))
            .unwrap()
            .into_client_subject();
        assert_eq!(user.subject(), client.subject());
        assert!(client.subject_is_client() && !user.subject_is_client());
        assert_eq!(client.token_kind(), TokenKind::App);
        assert!(client.claims().get("sub").is_none());
        assert_ne!(user.binding_key(), client.binding_key());
        // An issuer cannot absorb part of the subject, nor a subject fake the kind.
        let a = p(json!({"sub":"b\u{0}sub\u{0}c","iss":"a","exp":10})).unwrap();
        let b = p(json!({"sub":"c","iss":"a\u{0}sub\u{0}b","exp":10})).unwrap();
        assert_ne!(a.binding_key(), b.binding_key());
        let faked = p(json!({"sub":"client\u{0}alice","iss":"i","exp":10})).unwrap();
        assert_ne!(faked.binding_key(), client.binding_key());
    }
}
