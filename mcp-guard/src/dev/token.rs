//! The token endpoint: client authentication and the authorization code, refresh token and client credentials grants.

#[allow(unused_imports)]
use super::*;

#[derive(Deserialize)]
pub(super) struct TokenRequest {
    grant_type: Option<String>,
    code: Option<String>,
    redirect_uri: Option<String>,
    code_verifier: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    refresh_token: Option<String>,
    scope: Option<String>,
    resource: Option<String>,
}

/// The authenticated client of a token request: HTTP Basic, `client_secret_post`, or a public
/// client that only names itself.
pub(super) async fn token_client(
    s: &DevAuthServer,
    headers: &HeaderMap,
    req: &TokenRequest,
) -> Result<Arc<Client>, Response> {
    let invalid = |d: &str| {
        let mut r = oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", d);
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Basic realm=\"token\""),
        );
        r
    };
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Basic ")
                .or_else(|| v.strip_prefix("basic "))
        })
        .and_then(|b| {
            base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .ok()
        })
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|pair| {
            let (id, secret) = pair.split_once(':')?;
            let decode = |s: &str| {
                url::form_urlencoded::parse(format!("x={s}").as_bytes())
                    .next()
                    .map(|(_, v)| v.into_owned())
            };
            Some((decode(id)?, decode(secret)?))
        });
    let (id, secret) = match (&basic, &req.client_id, &req.client_secret) {
        (Some((id, secret)), _, None) => (id.clone(), Some(secret.clone())),
        (Some(_), _, Some(_)) => {
            return Err(oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "use one client authentication method",
            ));
        }
        (None, Some(id), secret) => (id.clone(), secret.clone()),
        (None, None, _) => return Err(invalid("client authentication is required")),
    };
    let client = s.client(&id).await.map_err(|e| invalid(&e))?;
    match (&client.secret, secret) {
        (None, None) => Ok(client),
        (Some(expected), Some(given))
            if constant_time_eq(expected.as_bytes(), given.as_bytes()) =>
        {
            Ok(client)
        }
        (None, Some(_)) => Err(invalid("this public client has no secret")),
        _ => Err(invalid("client authentication failed")),
    }
}

pub(super) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The token endpoint.
pub(super) async fn token(
    State(s): State<DevAuthServer>,
    headers: HeaderMap,
    Form(req): Form<TokenRequest>,
) -> Response {
    let client = match token_client(&s, &headers, &req).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let bad = |error: &str, d: &str| oauth_error(StatusCode::BAD_REQUEST, error, d);
    // A DPoP proof binds what is issued to the client's key (RFC 9449 §5); one that fails
    // any check is refused with `invalid_dpop_proof`, before any grant is spent.
    let now_secs = unix_now();
    let proof = match headers.contains_key("dpop") {
        false => None,
        true => match s
            .0
            .dpop
            .check(&headers, "POST", &s.0.token_path, None, now_secs)
            .and_then(|c| s.0.dpop.record(&c.proof, now_secs).map(|()| c.proof))
        {
            Ok(p) => Some(p),
            Err(e) => return bad("invalid_dpop_proof", &e.to_string()),
        },
    };
    let jkt = proof.as_ref().map(|p| p.jkt.clone());
    let grant = req.grant_type.as_deref().unwrap_or_default();
    if !client.grant_types.iter().any(|g| g == grant)
        && matches!(
            grant,
            "authorization_code" | "refresh_token" | "client_credentials"
        )
    {
        return bad(
            "unauthorized_client",
            &format!("this client may not use the `{grant}` grant"),
        );
    }
    let bad_verifier = |verifier: &str, challenge: &str| {
        let well_formed = (43..=128).contains(&verifier.len())
            && verifier
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
        !well_formed || !constant_time_eq(s256(verifier).as_bytes(), challenge.as_bytes())
    };
    let ttl = s.0.config.refresh_token_ttl;
    // Each grant checks everything first and then, in the same critical section, spends
    // what was presented and records the refresh token it gives: a concurrent request sees
    // either nothing spent or the spent grant together with its successor.
    let (subject, scope, resource, refresh) = match grant {
        "authorization_code" => {
            let (Some(code), Some(verifier)) = (req.code.as_deref(), req.code_verifier.as_deref())
            else {
                return bad("invalid_request", "code and code_verifier are required");
            };
            let mut store = s.lock();
            let Store { codes, refresh, .. } = &mut *store;
            let now = Instant::now();
            let Some(grant) = codes.get_mut(code) else {
                return bad("invalid_grant", "the authorization code is unknown");
            };
            if grant.used {
                // A code presented twice was stolen or replayed: what it gave is revoked.
                if let Some(family) = &grant.family {
                    refresh.revoke(family, now);
                }
                return bad("invalid_grant", "the authorization code was already used");
            }
            if grant.expires <= now {
                return bad("invalid_grant", "the authorization code has expired");
            }
            // Who cannot prove to be the client the code was issued to (its id, redirect URI
            // and PKCE verifier) does not spend it.
            if grant.client_id != client.id {
                return bad(
                    "invalid_grant",
                    "the authorization code was issued to another client",
                );
            }
            if req.redirect_uri.as_deref() != Some(grant.redirect_uri.as_str()) {
                return bad(
                    "invalid_grant",
                    "redirect_uri differs from the authorization request",
                );
            }
            if bad_verifier(verifier, &grant.challenge) {
                return bad(
                    "invalid_grant",
                    "the code_verifier does not match the code_challenge",
                );
            }
            if let Some(r) = req.resource.as_deref()
                && grant.resource.as_deref() != Some(r)
            {
                return bad(
                    "invalid_target",
                    "resource differs from the authorization request",
                );
            }
            if !scope_valid(&grant.scope) {
                return bad("invalid_scope", "the scope parameter is malformed");
            }
            let issued = RefreshGrant {
                client_id: client.id.clone(),
                subject: s.0.config.subject.clone(),
                scope: grant.scope.clone(),
                resource: grant.resource.clone(),
                expires: now + ttl,
                family: String::new(),
                used: false,
                jkt: jkt.clone(),
            };
            let (token, family) = refresh.start_family(issued.clone(), now);
            grant.used = true;
            grant.family = Some(family);
            (issued.subject, issued.scope, issued.resource, Some(token))
        }
        "refresh_token" => {
            let Some(presented) = req.refresh_token.as_deref() else {
                return bad("invalid_request", "refresh_token is required");
            };
            let mut store = s.lock();
            let now = Instant::now();
            let Some(old) = store.refresh.get(presented) else {
                return bad(
                    "invalid_grant",
                    "the refresh token is unknown, used or revoked",
                );
            };
            if old.used {
                // A rotated token presented again: someone else holds a copy. Revoke the
                // whole family, the legitimate holder's newest token included (OAuth 2.1
                // §4.3.1). Access tokens already issued are JWTs and live until they expire.
                let family = old.family.clone();
                store.refresh.revoke(&family, now);
                tracing::debug!(target: "mcp_guard::dev",
                    "a rotated refresh token was presented again; its family is revoked");
                return bad(
                    "invalid_grant",
                    "the refresh token was already used; every refresh token of its grant is revoked",
                );
            }
            if old.expires <= now || old.client_id != client.id {
                return bad(
                    "invalid_grant",
                    "the refresh token is expired or was issued to another client",
                );
            }
            // A refresh token issued with a proof is bound to that key (RFC 9449 §5).
            if old.jkt.is_some() && old.jkt != jkt {
                return bad(
                    "invalid_dpop_proof",
                    "the refresh token is bound to a DPoP key: refresh with a proof signed by it",
                );
            }
            let scope = match req.scope.as_deref().map(ScopeSet::parse) {
                None => old.scope.clone(),
                Some(Ok(narrow)) if narrow.iter().all(|x| old.scope.contains(x)) => narrow,
                Some(_) => {
                    return bad(
                        "invalid_scope",
                        "a refresh may only narrow the granted scope",
                    );
                }
            };
            if !scope_valid(&scope) {
                return bad("invalid_scope", "the scope parameter is malformed");
            }
            if let Some(r) = req.resource.as_deref()
                && old.resource.as_deref() != Some(r)
            {
                return bad("invalid_target", "resource differs from the original grant");
            }
            // Only a request that succeeds spends the refresh token (rotation). It is kept,
            // marked used, until it expires, so that a replay is recognised.
            let issued = RefreshGrant {
                scope,
                expires: now + ttl,
                used: false,
                ..old.clone()
            };
            let Some(token) = store.refresh.rotate(presented, issued.clone(), now) else {
                return bad(
                    "invalid_grant",
                    "the refresh token is unknown, used or revoked",
                );
            };
            (issued.subject, issued.scope, issued.resource, Some(token))
        }
        "client_credentials" => {
            if client.secret.is_none() {
                return bad(
                    "unauthorized_client",
                    "client_credentials needs a confidential client",
                );
            }
            let scope = match ScopeSet::parse(req.scope.as_deref().unwrap_or_default()) {
                Ok(s) => s,
                Err(_) => return bad("invalid_scope", "the scope parameter is malformed"),
            };
            if !scope_valid(&scope) {
                return bad("invalid_scope", "the scope parameter is malformed");
            }
            if let Err(e) = s.scopes_allowed(&scope) {
                return bad("invalid_scope", &e);
            }
            let resource = match s.resource_for(req.resource.as_deref()) {
                Ok(r) => r,
                Err(e) => return bad("invalid_target", &e),
            };
            (client.id.clone(), scope, resource, None)
        }
        "" => return bad("invalid_request", "grant_type is required"),
        other => {
            return bad(
                "unsupported_grant_type",
                &format!("grant type `{other}` is not supported"),
            );
        }
    };
    let (access_token, expires_in) = s.access_token(
        &subject,
        &client.id,
        &scope,
        resource.as_deref(),
        jkt.as_deref(),
    );
    let mut body = json!({
        "access_token": access_token,
        "token_type": if jkt.is_some() { "DPoP" } else { "Bearer" },
        "expires_in": expires_in,
        "scope": scope.to_string(),
    });
    if let Some(refresh) = refresh {
        body["refresh_token"] = json!(refresh);
    }
    (
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::PRAGMA, "no-cache"),
        ],
        Json(body),
    )
        .into_response()
}

fn scope_valid(scope: &ScopeSet) -> bool {
    scope.iter().all(|sc| validate_scope_token(sc).is_ok())
}

/// The most refresh tokens kept, used ones included; past it the oldest grants are forgotten
/// whole.
const MAX_REFRESH_TOKENS: usize = 10_000;
/// The most grants (refresh token families) remembered, revoked ones included.
const MAX_FAMILIES: usize = 2 * MAX_REFRESH_TOKENS;
/// Expired tokens and families are pruned once every this many issued tokens.
const PRUNE_EVERY: u32 = 256;

#[derive(Clone)]
pub(super) struct RefreshGrant {
    client_id: String,
    subject: String,
    scope: ScopeSet,
    resource: Option<String>,
    expires: Instant,
    /// The grant this token descends from: every rotation keeps it.
    family: String,
    /// Already rotated: presenting it again revokes the family.
    used: bool,
    /// The thumbprint of the DPoP key the grant is bound to.
    jkt: Option<String>,
}

/// The tokens that descend from one grant.
struct Family {
    /// Creation order, for forgetting the oldest grants first.
    seq: u64,
    /// When its last token expires: a revoked family is remembered until then.
    expires: Instant,
    revoked: bool,
    tokens: Vec<String>,
}

/// The refresh tokens, grouped in families, with the revoked families remembered until
/// their tokens would have expired, and bounded in number.
#[derive(Default)]
pub(super) struct RefreshTokens {
    tokens: HashMap<String, RefreshGrant>,
    families: HashMap<String, Family>,
    /// Families by `seq`.
    order: std::collections::BTreeMap<u64, String>,
    next_seq: u64,
    since_prune: u32,
}

impl RefreshTokens {
    /// A token of a family that is not revoked.
    pub(super) fn get(&self, token: &str) -> Option<&RefreshGrant> {
        let grant = self.tokens.get(token)?;
        let family = self.families.get(&grant.family)?;
        (!family.revoked).then_some(grant)
    }

    /// Records `grant` as the first token of a new family; returns the token and the family.
    pub(super) fn start_family(
        &mut self,
        mut grant: RefreshGrant,
        now: Instant,
    ) -> (String, String) {
        let family = random_token(16);
        let seq = self.next_seq;
        self.next_seq += 1;
        self.families.insert(
            family.clone(),
            Family {
                seq,
                expires: grant.expires,
                revoked: false,
                tokens: Vec::new(),
            },
        );
        self.order.insert(seq, family.clone());
        grant.family = family.clone();
        let token = self.insert(grant, now);
        (token, family)
    }

    /// Marks `presented` used and records `next`, its successor in the same family; `None`
    /// when `presented` is not a live token of a family that is not revoked.
    pub(super) fn rotate(
        &mut self,
        presented: &str,
        mut next: RefreshGrant,
        now: Instant,
    ) -> Option<String> {
        let old = self.tokens.get_mut(presented)?;
        let family = self.families.get(&old.family)?;
        if old.used || family.revoked || old.expires <= now {
            return None;
        }
        old.used = true;
        next.family = old.family.clone();
        Some(self.insert(next, now))
    }

    /// Forgets every token of `family` and remembers it as revoked until its tokens expire.
    pub(super) fn revoke(&mut self, family: &str, now: Instant) {
        let Some(f) = self.families.get_mut(family) else {
            return;
        };
        f.revoked = true;
        for t in f.tokens.drain(..) {
            self.tokens.remove(&t);
        }
        if f.expires <= now {
            let seq = f.seq;
            self.families.remove(family);
            self.order.remove(&seq);
        }
    }

    fn insert(&mut self, grant: RefreshGrant, now: Instant) -> String {
        self.since_prune += 1;
        if self.since_prune >= PRUNE_EVERY {
            self.since_prune = 0;
            self.prune(now);
        }
        let family = grant.family.clone();
        while self.tokens.len() >= MAX_REFRESH_TOKENS || self.families.len() > MAX_FAMILIES {
            let Some(oldest) = self.order.first_key_value().map(|(_, f)| f.clone()) else {
                break;
            };
            if oldest == family {
                break;
            }
            self.forget(&oldest);
        }
        let token = random_token(32);
        let f = self
            .families
            .get_mut(&family)
            .expect("a family is created before its tokens");
        f.expires = f.expires.max(grant.expires);
        f.tokens.push(token.clone());
        self.tokens.insert(token.clone(), grant);
        token
    }

    /// Drops a family and its tokens without a trace (it was the oldest at the cap).
    fn forget(&mut self, family: &str) {
        if let Some(f) = self.families.remove(family) {
            self.order.remove(&f.seq);
            for t in f.tokens {
                self.tokens.remove(&t);
            }
        }
    }

    fn prune(&mut self, now: Instant) {
        self.tokens.retain(|_, r| r.expires > now);
        let tokens = &self.tokens;
        let order = &mut self.order;
        self.families.retain(|_, f| {
            f.tokens.retain(|t| tokens.contains_key(t));
            let keep = f.expires > now;
            if !keep {
                order.remove(&f.seq);
            }
            keep
        });
    }

    #[cfg(test)]
    fn len(&self) -> (usize, usize) {
        (self.tokens.len(), self.families.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(expires: Instant) -> RefreshGrant {
        RefreshGrant {
            client_id: "c".into(),
            subject: "s".into(),
            scope: ScopeSet::default(),
            resource: None,
            expires,
            family: String::new(),
            used: false,
            jkt: None,
        }
    }

    #[test]
    fn revoked_families_accept_no_token_and_are_remembered() {
        let now = Instant::now();
        let later = now + Duration::from_secs(60);
        let mut store = RefreshTokens::default();
        let (r1, family) = store.start_family(grant(later), now);
        let r2 = store.rotate(&r1, grant(later), now).expect("rotates");
        assert!(store.rotate(&r1, grant(later), now).is_none(), "spent");
        store.revoke(&family, now);
        assert!(store.get(&r1).is_none() && store.get(&r2).is_none());
        assert!(store.rotate(&r2, grant(later), now).is_none());
        assert!(store.families[&family].revoked, "a tombstone stays");
        // Once its tokens would have expired, the tombstone goes with the next prune.
        store.prune(later);
        assert_eq!(store.len(), (0, 0));
    }

    #[test]
    fn the_oldest_grants_are_forgotten_at_the_cap() {
        let now = Instant::now();
        let later = now + Duration::from_secs(60);
        let mut store = RefreshTokens::default();
        let (first, _) = store.start_family(grant(later), now);
        let mut newest = String::new();
        for _ in 0..MAX_REFRESH_TOKENS + 10 {
            newest = store.start_family(grant(later), now).0;
        }
        let (tokens, families) = store.len();
        assert!(tokens <= MAX_REFRESH_TOKENS, "{tokens} tokens");
        assert!(families <= MAX_REFRESH_TOKENS, "{families} families");
        assert!(store.get(&first).is_none(), "the oldest grant is forgotten");
        assert!(store.get(&newest).is_some());
        assert_eq!(
            store.order.len(),
            families,
            "the order index follows the families"
        );
    }
}
