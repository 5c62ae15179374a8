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
) -> Result<Client, Response> {
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
    let (subject, scope, resource, family) = match grant {
        "authorization_code" => {
            let (Some(code), Some(verifier)) = (req.code.as_deref(), req.code_verifier.as_deref())
            else {
                return bad("invalid_request", "code and code_verifier are required");
            };
            let mut store = s.lock();
            let Some(grant) = store.codes.get_mut(code) else {
                return bad("invalid_grant", "the authorization code is unknown");
            };
            if grant.used {
                // A code presented twice was stolen or replayed: what it gave is revoked.
                if let Some(family) = grant.family.clone() {
                    store.refresh.retain(|_, r| r.family != family);
                }
                return bad("invalid_grant", "the authorization code was already used");
            }
            grant.used = true;
            if grant.expires <= Instant::now() {
                return bad("invalid_grant", "the authorization code has expired");
            }
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
            let verifier_ok = (43..=128).contains(&verifier.len())
                && verifier
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
            if !verifier_ok
                || !constant_time_eq(s256(verifier).as_bytes(), grant.challenge.as_bytes())
            {
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
            let family = random_token(16);
            grant.family = Some(family.clone());
            (
                s.0.config.subject.clone(),
                grant.scope.clone(),
                grant.resource.clone(),
                Some(family),
            )
        }
        "refresh_token" => {
            let Some(presented) = req.refresh_token.as_deref() else {
                return bad("invalid_request", "refresh_token is required");
            };
            let mut store = s.lock();
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
                store.refresh.retain(|_, r| r.family != family);
                tracing::debug!(target: "mcp_guard::dev",
                    "a rotated refresh token was presented again; its family is revoked");
                return bad(
                    "invalid_grant",
                    "the refresh token was already used; every refresh token of its grant is revoked",
                );
            }
            if old.expires <= Instant::now() || old.client_id != client.id {
                return bad(
                    "invalid_grant",
                    "the refresh token is expired or was issued to another client",
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
            if let Some(r) = req.resource.as_deref()
                && old.resource.as_deref() != Some(r)
            {
                return bad("invalid_target", "resource differs from the original grant");
            }
            // Only a request that succeeds spends the refresh token (rotation). It is kept,
            // marked used, until it expires, so that a replay is recognised.
            let old = store
                .refresh
                .get_mut(presented)
                .expect("present: checked above");
            old.used = true;
            let spent = (
                old.subject.clone(),
                scope,
                old.resource.clone(),
                Some(old.family.clone()),
            );
            drop(store);
            spent
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
    for sc in scope.iter() {
        if validate_scope_token(sc).is_err() {
            return bad("invalid_scope", "the scope parameter is malformed");
        }
    }
    let (access_token, expires_in) =
        s.access_token(&subject, &client.id, &scope, resource.as_deref());
    let mut body = json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": expires_in,
        "scope": scope.to_string(),
    });
    if grant != "client_credentials" {
        let refresh = random_token(32);
        let mut store = s.lock();
        store.refresh.retain(|_, r| r.expires > Instant::now());
        store.refresh.insert(
            refresh.clone(),
            RefreshGrant {
                client_id: client.id.clone(),
                subject,
                scope,
                resource,
                expires: Instant::now() + s.0.config.refresh_token_ttl,
                family: family.unwrap_or_else(|| random_token(16)),
                used: false,
            },
        );
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
