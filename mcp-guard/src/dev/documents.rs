//! Client ID metadata documents: which URLs may be fetched, the bounded fetch with its
//! timeout, the validation of the document (its redirect URIs by the registration rules),
//! and the small cache that spares repeated fetches.

#[allow(unused_imports)]
use super::*;

use std::net::IpAddr;

/// The largest document read (64 KiB); a larger one is refused while it streams.
const MAX_DOCUMENT_BYTES: usize = 64 * 1024;

/// What the browser is told about any document that could not be used: never the upstream's
/// status or body.
const UNUSABLE: &str = "the client ID metadata document could not be fetched or is not valid";

impl DevAuthServer {
    /// The client a client ID metadata document at `client_id` describes, from the cache or
    /// fetched.
    pub(super) async fn document_client(&self, client_id: &str) -> Result<Client, String> {
        let Ok(url) = Url::parse(client_id) else {
            return Err(format!("unknown client `{client_id}`"));
        };
        if let Err(why) = self.document_url_allowed(&url, client_id) {
            return Err(format!(
                "unknown client `{client_id}`; a client ID metadata document must be at {why}"
            ));
        }
        if let Some(c) = self.cached_document(client_id) {
            return Ok(c);
        }
        match self.fetch_document(url, client_id).await {
            Ok(client) => {
                self.cache_document(client.clone());
                Ok(client)
            }
            Err(reason) => {
                tracing::debug!(target: "mcp_guard::dev", client_id, %reason,
                    "client ID metadata document refused");
                Err(UNUSABLE.to_owned())
            }
        }
    }

    /// The URL rules; the error completes "a document must be at …".
    fn document_url_allowed(&self, url: &Url, raw: &str) -> Result<(), &'static str> {
        let shape = "an https URL with a path, without credentials, fragment or dot segments";
        // The parsed form equals the string: no dot segments, no case or encoding tricks.
        if url.as_str() != raw
            || url.path() == "/"
            || url.fragment().is_some()
            || !url.username().is_empty()
            || url.password().is_some()
        {
            return Err(shape);
        }
        let loopback = crate::jwks::is_loopback(url);
        if loopback {
            let named = url.host_str().is_some_and(|h| LOOPBACK_NAMES.contains(&h));
            return if self.0.config.loopback_client_metadata
                && named
                && matches!(url.scheme(), "http" | "https")
            {
                Ok(())
            } else {
                Err(
                    "an https URL that is not on a loopback address (unless loopback documents are enabled)",
                )
            };
        }
        if url.scheme() != "https" {
            return Err(shape);
        }
        let ip = match url.host() {
            Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            _ => None,
        };
        if ip.is_some_and(internal_ip) {
            return Err(
                "an https URL whose host is not a private, link-local or unspecified address",
            );
        }
        Ok(())
    }

    async fn fetch_document(&self, url: Url, client_id: &str) -> Result<Client, String> {
        let resp = self
            .0
            .http
            .get(url)
            .header(header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| {
                if e.is_timeout() {
                    "timed out"
                } else {
                    "connection failed"
                }
                .to_owned()
            })?;
        if !resp.status().is_success() {
            return Err(format!("HTTP {}", resp.status().as_u16()));
        }
        let bytes = crate::verify::bounded::read_body(resp, MAX_DOCUMENT_BYTES)
            .await
            .map_err(|e| e.to_string())?;
        let doc: Map<String, Value> =
            serde_json::from_slice(&bytes).map_err(|_| "not a JSON object".to_owned())?;
        if doc.get("client_id").and_then(Value::as_str) != Some(client_id) {
            return Err("its `client_id` differs from its URL".to_owned());
        }
        let redirect_uris: Vec<String> = match doc.get("redirect_uris") {
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect::<Option<_>>()
                .ok_or("`redirect_uris` holds a value that is not a string")?,
            _ => return Err("it has no `redirect_uris` array".to_owned()),
        };
        if redirect_uris.is_empty() {
            return Err("it lists no redirect URI".to_owned());
        }
        check_redirect_uris(&redirect_uris)?;
        Ok(Client {
            id: client_id.to_owned(),
            secret: None,
            name: doc
                .get("client_name")
                .and_then(Value::as_str)
                .map(str::to_owned),
            redirect_uris,
            grant_types: vec!["authorization_code".into(), "refresh_token".into()],
        })
    }

    fn cached_document(&self, client_id: &str) -> Option<Client> {
        let store = self.lock();
        let (until, client) = store.documents.get(client_id)?;
        (*until > Instant::now()).then(|| client.clone())
    }

    fn cache_document(&self, client: Client) {
        let mut store = self.lock();
        let now = Instant::now();
        store.documents.retain(|_, (until, _)| *until > now);
        if store.documents.len() >= MAX_DOCUMENTS
            && let Some(oldest) = store
                .documents
                .iter()
                .min_by_key(|(_, (until, _))| *until)
                .map(|(k, _)| k.clone())
        {
            store.documents.remove(&oldest);
        }
        store
            .documents
            .insert(client.id.clone(), (now + DOCUMENT_TTL, client));
    }
}

/// Resolves the hosts of document URLs, keeping only addresses a document may be fetched
/// from: a name that resolves to an internal address (or to loopback, unless loopback
/// documents are enabled) is not fetched at all.
pub(super) struct DocumentResolver {
    pub(super) loopback: bool,
}

impl reqwest::dns::Resolve for DocumentResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        let loopback = self.loopback;
        Box::pin(async move {
            let allowed: Vec<std::net::SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| address_allowed(a.ip(), loopback))
                .collect();
            if allowed.is_empty() {
                return Err("the host resolves to no address a client ID metadata document may be fetched from".into());
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Whether a document may be fetched from `ip`.
fn address_allowed(ip: IpAddr, loopback: bool) -> bool {
    let is_loopback = match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    };
    if is_loopback {
        loopback
    } else {
        !internal_ip(ip)
    }
}

/// Addresses a document URL must not name: private, link-local (cloud metadata services),
/// unique-local, unspecified (which reaches the host itself), broadcast and multicast.
fn internal_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.octets()[0] == 0
                || (v4.octets()[0] == 100 && (64..128).contains(&v4.octets()[1]))
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || v6
                    .to_ipv4_mapped()
                    .is_some_and(|v4| internal_ip(IpAddr::V4(v4)) || v4.is_loopback())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses() {
        for ip in [
            "10.0.0.1",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
        ] {
            assert!(internal_ip(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.216.34", "2606:4700::1111"] {
            assert!(!internal_ip(ip.parse().unwrap()), "{ip}");
            assert!(address_allowed(ip.parse().unwrap(), false), "{ip}");
        }
        for ip in ["127.0.0.1", "::1", "::ffff:127.0.0.1"] {
            assert!(!address_allowed(ip.parse().unwrap(), false), "{ip}");
            assert!(address_allowed(ip.parse().unwrap(), true), "{ip}");
        }
        assert!(!address_allowed("10.1.2.3".parse().unwrap(), true));
    }
}
