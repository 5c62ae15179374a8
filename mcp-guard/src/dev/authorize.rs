//! The authorization endpoint: request validation, the consent page and its form (with its
//! anti-CSRF token).

#[allow(unused_imports)]
use super::*;

/// The longest parameter of an authorization request kept (`state`, `scope`, …, `client_id`).
const MAX_PARAM: usize = 2048;
/// How long a consent page may wait for its decision.
const PENDING_TTL: Duration = Duration::from_secs(600);
/// The most authorization codes outstanding (issued and not yet expired).
const MAX_CODES: usize = 10_000;

#[derive(Debug, Clone, Deserialize)]
pub(super) struct AuthorizeRequest {
    response_type: Option<String>,
    client_id: Option<String>,
    redirect_uri: Option<String>,
    scope: Option<String>,
    state: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
    resource: Option<String>,
}

impl DevAuthServer {
    /// The client: registered, or described by a client ID metadata document at its URL.
    pub(super) async fn client(&self, client_id: &str) -> Result<Arc<Client>, String> {
        if let Some(c) = self.lock().clients.get(client_id) {
            return Ok(c);
        }
        if client_id.len() > MAX_PARAM {
            return Err(format!(
                "unknown client; a client_id is at most {MAX_PARAM} bytes"
            ));
        }
        self.document_client(client_id).await
    }

    /// Redirects back to the client with `params`, the `state` and the RFC 9207 `iss`.
    pub(super) fn redirect_back(
        &self,
        redirect_uri: &str,
        state: Option<&str>,
        params: &[(&str, &str)],
    ) -> Response {
        let mut url = match Url::parse(redirect_uri) {
            Ok(u) => u,
            Err(_) => {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "invalid redirect_uri",
                );
            }
        };
        {
            let mut q = url.query_pairs_mut();
            for (k, v) in params {
                q.append_pair(k, v);
            }
            if let Some(state) = state {
                q.append_pair("state", state);
            }
            q.append_pair("iss", &self.0.issuer);
        }
        Redirect::to(url.as_str()).into_response()
    }

    pub(super) fn scopes_allowed(&self, scope: &ScopeSet) -> Result<(), String> {
        let supported = &self.0.config.scopes_accepted;
        match scope
            .iter()
            .find(|s| !supported.is_empty() && !supported.iter().any(|x| x == s))
        {
            Some(s) => Err(format!("scope `{s}` is not supported")),
            None => Ok(()),
        }
    }

    pub(super) fn resource_for(&self, requested: Option<&str>) -> Result<Option<String>, String> {
        let known = &self.0.config.resources;
        match requested {
            Some(r) => {
                let url =
                    Url::parse(r).map_err(|_| format!("resource `{r}` is not an absolute URI"))?;
                if url.fragment().is_some() {
                    return Err(format!("resource `{r}` must not have a fragment"));
                }
                if !known.is_empty() && !known.iter().any(|k| k == r) {
                    return Err(format!("this server issues no tokens for resource `{r}`"));
                }
                Ok(Some(r.to_owned()))
            }
            None => Ok(known.first().cloned()),
        }
    }

    pub(super) fn issue_code(&self, req: &AuthorizeRequest, client: &Client) -> Response {
        let code = random_token(24);
        let redirect_uri = req.redirect_uri.clone().unwrap_or_default();
        let scope = ScopeSet::parse(req.scope.as_deref().unwrap_or_default()).unwrap_or_default();
        let mut store = self.lock();
        if store.codes.len() >= MAX_CODES {
            let now = Instant::now();
            store.codes.retain(|_, c| c.expires > now);
        }
        if store.codes.len() >= MAX_CODES {
            drop(store);
            return self.redirect_back(
                &redirect_uri,
                req.state.as_deref(),
                &[
                    ("error", "temporarily_unavailable"),
                    (
                        "error_description",
                        "too many authorization codes are outstanding",
                    ),
                ],
            );
        }
        store.codes.insert(
            code.clone(),
            CodeGrant {
                client_id: client.id.clone(),
                redirect_uri: redirect_uri.clone(),
                challenge: req.code_challenge.clone().unwrap_or_default(),
                scope,
                resource: req.resource.clone(),
                expires: Instant::now() + self.0.config.code_ttl,
                used: false,
                family: None,
            },
        );
        drop(store);
        self.redirect_back(&redirect_uri, req.state.as_deref(), &[("code", &code)])
    }
}

pub(super) fn error_page(status: StatusCode, message: &str) -> Response {
    (status, Html(format!("<!doctype html><title>Authorization error</title><h1>Authorization error</h1><p>{}</p>", html_escape(message)))).into_response()
}

pub(super) fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// The authorization endpoint: validates the request, then shows the consent page (or
/// approves at once with `auto_approve`).
pub(super) async fn authorize(
    State(s): State<DevAuthServer>,
    Query(mut req): Query<AuthorizeRequest>,
) -> Response {
    // Errors about the client or the redirect URI are shown, never redirected (RFC 6749 §4.1.2.1).
    let Some(client_id) = req.client_id.clone() else {
        return error_page(StatusCode::BAD_REQUEST, "the request has no client_id");
    };
    let client = match s.client(&client_id).await {
        Ok(c) => c,
        Err(e) => return error_page(StatusCode::BAD_REQUEST, &e),
    };
    let Some(redirect_uri) = req.redirect_uri.clone() else {
        return error_page(StatusCode::BAD_REQUEST, "the request has no redirect_uri");
    };
    if !client
        .redirect_uris
        .iter()
        .any(|r| redirect_matches(r, &redirect_uri))
    {
        return error_page(
            StatusCode::BAD_REQUEST,
            "the redirect_uri is not registered for this client",
        );
    }
    let back = |error: &str, d: &str| {
        s.redirect_back(
            &redirect_uri,
            req.state.as_deref(),
            &[("error", error), ("error_description", d)],
        )
    };
    for (name, value) in [
        ("state", &req.state),
        ("scope", &req.scope),
        ("resource", &req.resource),
        ("code_challenge", &req.code_challenge),
        ("code_challenge_method", &req.code_challenge_method),
        ("response_type", &req.response_type),
    ] {
        if value.as_ref().is_some_and(|v| v.len() > MAX_PARAM) {
            return back(
                "invalid_request",
                &format!("`{name}` is longer than {MAX_PARAM} bytes"),
            );
        }
    }
    if req.response_type.as_deref() != Some("code") {
        return back(
            "unsupported_response_type",
            "only response_type=code is supported",
        );
    }
    if !client.grant_types.iter().any(|g| g == "authorization_code") {
        return back(
            "unauthorized_client",
            "this client may not use the authorization code grant",
        );
    }
    match (
        req.code_challenge.as_deref(),
        req.code_challenge_method.as_deref(),
    ) {
        (Some(c), Some("S256"))
            if c.len() == 43
                && c.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') => {}
        (Some(_), Some("S256")) => {
            return back(
                "invalid_request",
                "code_challenge must be a base64url SHA-256 digest",
            );
        }
        (Some(_), _) => return back("invalid_request", "code_challenge_method must be S256"),
        (None, _) => {
            return back(
                "invalid_request",
                "PKCE is required: send code_challenge with code_challenge_method=S256",
            );
        }
    }
    let scope = match ScopeSet::parse(req.scope.as_deref().unwrap_or_default()) {
        Ok(s) => s,
        Err(_) => return back("invalid_scope", "the scope parameter is malformed"),
    };
    if let Err(e) = s.scopes_allowed(&scope) {
        return back("invalid_scope", &e);
    }
    match s.resource_for(req.resource.as_deref()) {
        Ok(r) => req.resource = r,
        Err(e) => return back("invalid_target", &e),
    }
    if s.0.config.auto_approve {
        return s.issue_code(&req, &client);
    }
    let id = random_token(18);
    let csrf = random_token(18);
    {
        let mut store = s.lock();
        if store.pending.len() >= MAX_PENDING {
            store.pending.retain(|_, p| p.at.elapsed() < PENDING_TTL);
        }
        if store.pending.len() >= MAX_PENDING {
            return error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "too many pending authorization requests",
            );
        }
        store.pending.insert(
            id.clone(),
            Pending {
                at: Instant::now(),
                req: req.clone(),
                client: client.clone(),
                csrf: csrf.clone(),
            },
        );
    }
    consent_page(&s, &id, &csrf, &client, &scope, req.resource.as_deref())
}

pub(super) fn consent_page(
    s: &DevAuthServer,
    id: &str,
    csrf: &str,
    client: &Client,
    scope: &ScopeSet,
    resource: Option<&str>,
) -> Response {
    let name = client.name.clone().unwrap_or_else(|| client.id.clone());
    let scopes = if scope.is_empty() {
        "<li><em>no scopes</em></li>".to_owned()
    } else {
        scope
            .iter()
            .map(|s| format!("<li><code>{}</code></li>", html_escape(s)))
            .collect()
    };
    let page = format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Authorize {name}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:34rem;margin:3rem auto;padding:0 1rem}}button{{font-size:1rem;padding:.5rem 1.2rem;margin-right:.5rem}}</style></head>
<body><h1>Authorize <em>{name}</em>?</h1>
<p>The development authorization server at <code>{issuer}</code> will let <strong>{name}</strong> act as <strong>{subject}</strong>{resource}.</p>
<p>Requested scopes:</p><ul>{scopes}</ul>
<form method="post" action="">
<input type="hidden" name="request_id" value="{id}">
<input type="hidden" name="csrf_token" value="{csrf}">
<button type="submit" name="decision" value="approve">Approve</button>
<button type="submit" name="decision" value="deny">Deny</button>
</form></body></html>"#,
        name = html_escape(&name),
        issuer = html_escape(&s.0.issuer),
        subject = html_escape(&s.0.config.subject),
        resource = resource
            .map(|r| format!(" at <code>{}</code>", html_escape(r)))
            .unwrap_or_default(),
    );
    ([(header::CACHE_CONTROL, "no-store")], Html(page)).into_response()
}

#[derive(Deserialize)]
pub(super) struct Consent {
    request_id: String,
    #[serde(default)]
    csrf_token: String,
    decision: String,
}

/// The consent form's submission: only with the anti-CSRF token of its own consent page.
pub(super) async fn consent(State(s): State<DevAuthServer>, Form(d): Form<Consent>) -> Response {
    let Pending { req, client, .. } = {
        let mut store = s.lock();
        match store.pending.get(&d.request_id) {
            Some(p) if p.at.elapsed() >= PENDING_TTL => {
                store.pending.remove(&d.request_id);
                return error_page(
                    StatusCode::BAD_REQUEST,
                    "this authorization request is unknown or has expired",
                );
            }
            None => {
                return error_page(
                    StatusCode::BAD_REQUEST,
                    "this authorization request is unknown or has expired",
                );
            }
            Some(p) if !constant_time_eq(p.csrf.as_bytes(), d.csrf_token.as_bytes()) => {
                return error_page(
                    StatusCode::FORBIDDEN,
                    "this consent form was not issued for this authorization request",
                );
            }
            Some(_) => store
                .pending
                .remove(&d.request_id)
                .expect("present: checked above"),
        }
    };
    if d.decision == "approve" {
        s.issue_code(&req, &client)
    } else {
        let redirect_uri = req.redirect_uri.clone().unwrap_or_default();
        s.redirect_back(
            &redirect_uri,
            req.state.as_deref(),
            &[
                ("error", "access_denied"),
                ("error_description", "the user denied the request"),
            ],
        )
    }
}
