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

/// The most clients registered at once; past it the least recently used one is forgotten.
const MAX_CLIENTS: usize = 10_000;
/// The most redirect URIs of one client, and the longest one.
const MAX_REDIRECT_URIS: usize = 10;
const MAX_REDIRECT_URI_BYTES: usize = 2048;
/// The longest client name, in characters.
const MAX_CLIENT_NAME_CHARS: usize = 200;

/// The limits on what a client (registered or described by a document) may declare.
pub(super) fn check_client_limits(name: Option<&str>, uris: &[String]) -> Result<(), String> {
    if uris.len() > MAX_REDIRECT_URIS {
        return Err(format!(
            "at most {MAX_REDIRECT_URIS} redirect URIs may be registered, not {}",
            uris.len()
        ));
    }
    if uris.iter().any(|u| u.len() > MAX_REDIRECT_URI_BYTES) {
        return Err(format!(
            "a redirect URI is at most {MAX_REDIRECT_URI_BYTES} bytes long"
        ));
    }
    if name.is_some_and(|n| n.chars().count() > MAX_CLIENT_NAME_CHARS) {
        return Err(format!(
            "`client_name` is at most {MAX_CLIENT_NAME_CHARS} characters long"
        ));
    }
    Ok(())
}

/// The registered clients, bounded: at the cap, the one used least recently is forgotten.
#[derive(Default)]
pub(super) struct Clients {
    /// Each client with the sequence number of its last use.
    by_id: HashMap<String, (u64, Arc<Client>)>,
    /// Client ids by the sequence number of their last use.
    by_use: std::collections::BTreeMap<u64, String>,
    next: u64,
}

impl Clients {
    /// The client, now its most recently used.
    pub(super) fn get(&mut self, id: &str) -> Option<Arc<Client>> {
        let seq = self.next;
        let (used, client) = self.by_id.get_mut(id)?;
        self.by_use.remove(used);
        *used = seq;
        self.by_use.insert(seq, id.to_owned());
        self.next += 1;
        Some(client.clone())
    }

    pub(super) fn insert(&mut self, client: Client) {
        while self.by_id.len() >= MAX_CLIENTS
            && let Some((_, oldest)) = self.by_use.pop_first()
        {
            self.by_id.remove(&oldest);
        }
        let seq = self.next;
        self.next += 1;
        self.by_use.insert(seq, client.id.clone());
        if let Some((old, _)) = self
            .by_id
            .insert(client.id.clone(), (seq, Arc::new(client)))
        {
            self.by_use.remove(&old);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.by_id.len()
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
    let mut grant_types = req
        .grant_types
        .unwrap_or_else(|| vec!["authorization_code".into(), "refresh_token".into()]);
    let mut seen = std::collections::HashSet::new();
    grant_types.retain(|g| seen.insert(g.clone()));
    if let Err(e) = check_client_limits(req.client_name.as_deref(), &req.redirect_uris) {
        return reg_error("invalid_client_metadata", &e);
    }
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
    s.lock().clients.insert(client);
    (
        StatusCode::CREATED,
        [(header::CACHE_CONTROL, "no-store")],
        Json(body),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(n: usize) -> Client {
        Client {
            id: format!("c{n}"),
            secret: None,
            name: None,
            redirect_uris: Vec::new(),
            grant_types: Vec::new(),
        }
    }

    #[test]
    fn registered_clients_are_bounded_and_the_least_recently_used_go_first() {
        let mut clients = Clients::default();
        for n in 0..MAX_CLIENTS {
            clients.insert(client(n));
        }
        // c0 is used again: c1 is now the least recently used.
        assert!(clients.get("c0").is_some());
        for n in MAX_CLIENTS..MAX_CLIENTS + 100 {
            clients.insert(client(n));
        }
        assert_eq!(clients.len(), MAX_CLIENTS);
        assert_eq!(clients.by_use.len(), MAX_CLIENTS);
        assert!(clients.get("c0").is_some(), "recently used: kept");
        assert!(
            clients.get("c1").is_none(),
            "least recently used: forgotten"
        );
        assert!(clients.get(&format!("c{}", MAX_CLIENTS + 99)).is_some());
    }

    #[test]
    fn client_metadata_limits() {
        let uri = |len: usize| format!("https://app.example/{}", "a".repeat(len - 20));
        assert!(check_client_limits(Some("x"), &vec![uri(2048); 10]).is_ok());
        assert!(check_client_limits(None, &vec![uri(30); 11]).is_err());
        assert!(check_client_limits(None, &[uri(2049)]).is_err());
        assert!(check_client_limits(Some(&"é".repeat(200)), &[]).is_ok());
        assert!(check_client_limits(Some(&"é".repeat(201)), &[]).is_err());
    }
}
