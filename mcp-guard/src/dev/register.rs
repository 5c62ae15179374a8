//! Client registration: RFC 7591 dynamic registration and the redirect URI rules.

#[allow(unused_imports)]
use super::*;

/// Loopback redirect URIs may use any port (RFC 8252 §7.3, OAuth 2.1 §8.4.2); all others
/// match exactly.
pub(super) fn redirect_matches(registered: &str, requested: &str) -> bool {
    if registered == requested {
        return true;
    }
    let (Ok(a), Ok(b)) = (Url::parse(registered), Url::parse(requested)) else {
        return false;
    };
    let loopback =
        |u: &Url| u.scheme() == "http" && u.host_str().is_some_and(|h| LOOPBACK_NAMES.contains(&h));
    loopback(&a)
        && loopback(&b)
        && a.host_str() == b.host_str()
        && a.path() == b.path()
        && a.query() == b.query()
}

/// The redirect URI rules of every client, registered (RFC 7591) or described by a client ID
/// metadata document: https, http on a loopback address, or a private-use scheme; never a
/// fragment. The error names the first URI refused.
pub(super) fn check_redirect_uris(uris: &[String]) -> Result<(), String> {
    match uris.iter().find(|u| !valid_redirect_uri(u)) {
        Some(bad) => Err(format!(
            "redirect URI `{bad}` must be https, http on a loopback address, or a private-use scheme"
        )),
        None => Ok(()),
    }
}

fn valid_redirect_uri(uri: &str) -> bool {
    match Url::parse(uri) {
        Ok(u) if u.fragment().is_none() => match u.scheme() {
            "https" => true,
            "http" => crate::jwks::is_loopback(&u),
            // Private-use schemes of native apps (RFC 8252 §7.1) contain a dot; `javascript:`,
            // `data:` and the like do not.
            s => s.contains('.'),
        },
        _ => false,
    }
}

#[derive(Deserialize)]
pub(super) struct RegistrationRequest {
    #[serde(default)]
    redirect_uris: Vec<String>,
    #[serde(default)]
    client_name: Option<String>,
    #[serde(default)]
    grant_types: Option<Vec<String>>,
    #[serde(default)]
    token_endpoint_auth_method: Option<String>,
}

/// RFC 7591 dynamic client registration.
pub(super) async fn register(State(s): State<DevAuthServer>, body: axum::body::Bytes) -> Response {
    let reg_error = |error: &str, d: &str| oauth_error(StatusCode::BAD_REQUEST, error, d);
    let Ok(req) = serde_json::from_slice::<RegistrationRequest>(&body) else {
        return reg_error(
            "invalid_client_metadata",
            "the registration request is not valid JSON client metadata",
        );
    };
    let grant_types = req
        .grant_types
        .unwrap_or_else(|| vec!["authorization_code".into(), "refresh_token".into()]);
    if let Some(g) = grant_types.iter().find(|g| {
        !matches!(
            g.as_str(),
            "authorization_code" | "refresh_token" | "client_credentials"
        )
    }) {
        return reg_error(
            "invalid_client_metadata",
            &format!("unsupported grant type `{g}`"),
        );
    }
    if grant_types.iter().any(|g| g == "authorization_code") && req.redirect_uris.is_empty() {
        return reg_error(
            "invalid_redirect_uri",
            "authorization_code clients must register redirect_uris",
        );
    }
    if let Err(e) = check_redirect_uris(&req.redirect_uris) {
        return reg_error("invalid_redirect_uri", &e);
    }
    let method = req
        .token_endpoint_auth_method
        .unwrap_or_else(|| "client_secret_basic".into());
    let secret = match method.as_str() {
        "none" => None,
        "client_secret_basic" | "client_secret_post" => Some(random_token(24)),
        other => {
            return reg_error(
                "invalid_client_metadata",
                &format!("unsupported token_endpoint_auth_method `{other}`"),
            );
        }
    };
    let client = Client {
        id: format!("dev-{}", random_token(12)),
        secret,
        name: req.client_name,
        redirect_uris: req.redirect_uris,
        grant_types,
    };
    let mut body = json!({
        "client_id": client.id,
        "client_id_issued_at": unix_now(),
        "redirect_uris": client.redirect_uris,
        "grant_types": client.grant_types,
        "response_types": ["code"],
        "token_endpoint_auth_method": method,
    });
    if let Some(name) = &client.name {
        body["client_name"] = json!(name);
    }
    if let Some(secret) = &client.secret {
        body["client_secret"] = json!(secret);
        body["client_secret_expires_at"] = json!(0);
    }
    let mut store = s.lock();
    if store.clients.len() >= MAX_CLIENTS {
        return reg_error("invalid_client_metadata", "too many registered clients");
    }
    store.clients.insert(client.id.clone(), client);
    (
        StatusCode::CREATED,
        [(header::CACHE_CONTROL, "no-store")],
        Json(body),
    )
        .into_response()
}
