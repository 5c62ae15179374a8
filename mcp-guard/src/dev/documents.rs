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
/// The most document fetches in flight at once, and how long a request waits for a turn.
pub(super) const MAX_FETCHES: usize = 8;
const FETCH_QUEUE_WAIT: Duration = Duration::from_secs(2);
/// A URL whose fetch failed is not fetched again for this long; at most this many are kept.
const FAILED_DOCUMENT_TTL: Duration = Duration::from_secs(60);
const MAX_FAILED_DOCUMENTS: usize = 256;

const UNUSABLE: &str = "the client ID metadata document could not be fetched or is not valid";

impl DevAuthServer {
    /// The client a client ID metadata document at `client_id` describes, from the cache or
    /// fetched.
    pub(super) async fn document_client(&self, client_id: &str) -> Result<Arc<Client>, String> {
        let Ok(url) = Url::parse(client_id) else {
            return Err(format!("unknown client `{client_id}`"));
        };
        if let Err(why) = self.document_url_allowed(&url, client_id) {
            return Err(format!(
                "unknown client `{client_id}`; a client ID metadata document must be at {why}"
            ));
        }
        if let Some(c) = self.cached_document(client_id)? {
            return Ok(c);
        }
        // These fetches are triggered by unauthenticated requests: only a few at a time, and
        // who waits too long for a turn gets the generic error.
        let Ok(Ok(_permit)) =
            tokio::time::timeout(FETCH_QUEUE_WAIT, self.0.fetches.acquire()).await
        else {
            tracing::debug!(target: "mcp_guard::dev", client_id,
                "too many client ID metadata document fetches in flight");
            return Err(UNUSABLE.to_owned());
        };
        // Another request may have fetched it while this one waited.
        if let Some(c) = self.cached_document(client_id)? {
            return Ok(c);
        }
        match self.fetch_document(url, client_id).await {
            Ok(client) => {
                let client = Arc::new(client);
                self.cache_document(client.clone());
                Ok(client)
            }
            Err(reason) => {
                tracing::debug!(target: "mcp_guard::dev", client_id, %reason,
                    "client ID metadata document refused");
                self.cache_failure(client_id);
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
        let name = doc
            .get("client_name")
            .and_then(Value::as_str)
            .map(str::to_owned);
        check_client_limits(name.as_deref(), &redirect_uris)?;
        Ok(Client {
            id: client_id.to_owned(),
            secret: None,
            name,
            redirect_uris,
            grant_types: vec!["authorization_code".into(), "refresh_token".into()],
        })
    }

    /// The cached client, or the generic error while a recent fetch of this URL failed.
    fn cached_document(&self, client_id: &str) -> Result<Option<Arc<Client>>, String> {
        let store = self.lock();
        let now = Instant::now();
        if store
            .failed_documents
            .get(client_id)
            .is_some_and(|until| *until > now)
        {
            return Err(UNUSABLE.to_owned());
        }
        Ok(store
            .documents
            .get(client_id)
            .and_then(|(until, client)| (*until > now).then(|| client.clone())))
    }

    fn cache_failure(&self, client_id: &str) {
        let mut store = self.lock();
        let now = Instant::now();
        let failed = &mut store.failed_documents;
        if failed.len() >= MAX_FAILED_DOCUMENTS {
            failed.retain(|_, until| *until > now);
        }
        if failed.len() >= MAX_FAILED_DOCUMENTS
            && let Some(oldest) = failed
                .iter()
                .min_by_key(|(_, until)| **until)
                .map(|(k, _)| k.clone())
        {
            failed.remove(&oldest);
        }
        failed.insert(client_id.to_owned(), now + FAILED_DOCUMENT_TTL);
    }

    fn cache_document(&self, client: Arc<Client>) {
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
                .filter(|a| resolved_allowed(&host, a.ip(), loopback))
                .collect();
            if allowed.is_empty() {
                return Err("the host resolves to no address a client ID metadata document may be fetched from".into());
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Whether a document may be fetched from `ip`, an address `host` resolved to: loopback
/// addresses only for the name `localhost` itself (when loopback documents are enabled),
/// never for another name that happens to resolve to one.
fn resolved_allowed(host: &str, ip: IpAddr, loopback: bool) -> bool {
    address_allowed(ip, loopback && host.eq_ignore_ascii_case("localhost"))
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

/// Addresses a document URL must not name: private, shared (carrier-grade NAT), link-local
/// (cloud metadata services), unique- and site-local, unspecified (which reaches the host
/// itself), benchmarking, reserved, broadcast and multicast, and IPv6 addresses that embed
/// such an IPv4 address or a loopback one (mapped, compatible, NAT64, 6to4, Teredo).
fn internal_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 192 && b == 0 && c == 0)
                || (a == 198 && (b == 18 || b == 19))
                || a >= 240
        }
        IpAddr::V6(v6) => {
            let seg = v6.segments();
            v6.is_unspecified()
                || v6.is_multicast()
                || (seg[0] & 0xfe00) == 0xfc00
                || (seg[0] & 0xffc0) == 0xfe80
                || (seg[0] & 0xffc0) == 0xfec0
                // NAT64 local use (RFC 8215): its IPv4 side is the operator's choice.
                || seg[..3] == [0x64, 0xff9b, 1]
                || embedded_ipv4(v6).is_some_and(|v4| internal_ip(IpAddr::V4(v4)) || v4.is_loopback())
        }
    }
}

/// The IPv4 address an IPv6 address carries: IPv4-mapped `::ffff:0:0/96`, IPv4-compatible
/// `::/96` (but `::` and `::1`), NAT64 `64:ff9b::/96`, 6to4 `2002::/16`, Teredo `2001::/32`.
fn embedded_ipv4(v6: std::net::Ipv6Addr) -> Option<std::net::Ipv4Addr> {
    let seg = v6.segments();
    let last = |hi: u16, lo: u16| std::net::Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    if let Some(v4) = v6.to_ipv4_mapped() {
        return Some(v4);
    }
    match seg {
        [0, 0, 0, 0, 0, 0, hi, lo] if (hi, lo) != (0, 0) && (hi, lo) != (0, 1) => {
            Some(last(hi, lo))
        }
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => Some(last(hi, lo)),
        [0x2002, hi, lo, ..] => Some(last(hi, lo)),
        // The client's address is stored inverted.
        [0x2001, 0, .., hi, lo] => Some(last(!hi, !lo)),
        _ => None,
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
        for ip in [
            "240.0.0.1",
            "255.255.255.254",
            "198.18.0.1",
            "198.19.255.255",
            "192.0.0.8",
            "100.127.255.255",
            "fec0::1",
            "feff::1",
            // NAT64, 6to4, IPv4-compatible and Teredo forms of internal IPv4 addresses.
            "64:ff9b::a00:1",
            "64:ff9b::7f00:1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b:1::1",
            "2002:a00:1::1",
            "2002:7f00:1::",
            "2002:c0a8:101::1",
            "::10.0.0.1",
            "::127.0.0.1",
            "::169.254.169.254",
            "2001:0:4136:e378:8000:63bf:f5ff:fffe",
        ] {
            assert!(internal_ip(ip.parse().unwrap()), "{ip}");
            assert!(!address_allowed(ip.parse().unwrap(), true), "{ip}");
        }
        // The same forms of public IPv4 addresses, and public neighbours of the ranges.
        for ip in [
            "64:ff9b::5db8:d822",
            "2002:5db8:d822::1",
            "::93.184.216.34",
            "100.128.0.1",
            "198.20.0.1",
            "192.0.1.1",
        ] {
            assert!(!internal_ip(ip.parse().unwrap()), "{ip}");
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

    #[test]
    fn loopback_addresses_only_for_the_name_localhost() {
        let lo4: IpAddr = "127.0.0.1".parse().unwrap();
        let lo6: IpAddr = "::1".parse().unwrap();
        for ip in [lo4, lo6] {
            assert!(resolved_allowed("localhost", ip, true));
            assert!(resolved_allowed("LOCALHOST", ip, true));
            for name in [
                "localhost.",
                "localtest.me",
                "evil.example",
                "127.0.0.1.nip.io",
            ] {
                assert!(!resolved_allowed(name, ip, true), "{name}");
            }
            assert!(!resolved_allowed("localhost", ip, false));
        }
        let public: IpAddr = "93.184.216.34".parse().unwrap();
        assert!(resolved_allowed("as.example", public, false));
    }
}
