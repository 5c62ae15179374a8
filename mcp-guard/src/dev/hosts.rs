//! The `Host` allow-list that defeats DNS rebinding (421 for any other host), and the headers
//! that keep every page of the server out of frames.

#[allow(unused_imports)]
use super::*;

use axum::extract::Request;
use axum::middleware::Next;

/// The hosts (and ports) the server answers for.
#[derive(Debug, Clone)]
pub(super) struct AllowedHosts {
    /// Lowercase host (IPv6 in brackets) and the port, `None` for any port.
    entries: Vec<(String, Option<u16>)>,
    /// The port a `Host` without one means (the issuer scheme's default).
    default_port: u16,
}

impl AllowedHosts {
    pub(super) fn new(issuer: &Url, extra: &[String]) -> Result<Self, DevError> {
        let host = issuer
            .host_str()
            .ok_or_else(|| DevError(format!("the issuer `{issuer}` has no host")))?
            .to_ascii_lowercase();
        let default_port = if issuer.scheme() == "https" { 443 } else { 80 };
        let port = issuer.port_or_known_default().unwrap_or(default_port);
        let mut entries = vec![(host.clone(), Some(port))];
        if LOOPBACK_NAMES.contains(&host.as_str()) {
            for name in LOOPBACK_NAMES {
                entries.push(((*name).to_owned(), Some(port)));
            }
        }
        for name in extra {
            let authority: http::uri::Authority = name
                .parse()
                .map_err(|_| DevError(format!("allowed host `{name}` is not a host name")))?;
            if authority.as_str().contains('@') {
                return Err(DevError(format!(
                    "allowed host `{name}` is not a host name"
                )));
            }
            entries.push((authority.host().to_ascii_lowercase(), authority.port_u16()));
        }
        Ok(Self {
            entries,
            default_port,
        })
    }

    /// Whether a request for `authority` (`host[:port]`) is answered.
    pub(super) fn allows(&self, authority: &str) -> bool {
        let Ok(a) = authority.parse::<http::uri::Authority>() else {
            return false;
        };
        if a.as_str().contains('@') {
            return false;
        }
        let host = a.host().to_ascii_lowercase();
        let port = a.port_u16().unwrap_or(self.default_port);
        self.entries
            .iter()
            .any(|(h, p)| *h == host && p.is_none_or(|p| p == port))
    }
}

/// The loopback names of redirect URIs and of the allow-list.
pub(super) const LOOPBACK_NAMES: &[&str] = &["127.0.0.1", "localhost", "[::1]"];

/// Refuses requests for a host the server does not answer for (421), and marks every
/// response as never to be framed.
pub(super) async fn host_and_frame_guard(
    State(s): State<DevAuthServer>,
    req: Request,
    next: Next,
) -> Response {
    let from_uri = req.uri().authority().map(|a| a.as_str().to_owned());
    let from_header = req
        .headers()
        .get(header::HOST)
        .map(|v| v.to_str().map(str::to_owned));
    // Two `Host` headers: which one a proxy or the handler reads is anyone's guess.
    let repeated = req.headers().get_all(header::HOST).iter().nth(1).is_some();
    let allowed = match (from_uri, from_header) {
        _ if repeated => false,
        (None, None) | (_, Some(Err(_))) => false,
        (uri, header) => {
            uri.is_none_or(|a| s.0.hosts.allows(&a))
                && header.is_none_or(|h| h.is_ok_and(|h| s.0.hosts.allows(&h)))
        }
    };
    let mut resp = if allowed {
        next.run(req).await
    } else {
        tracing::debug!(target: "mcp_guard::dev", "request for a host this server does not answer for refused");
        (
            StatusCode::MISDIRECTED_REQUEST,
            [(header::CACHE_CONTROL, "no-store")],
            "this authorization server does not answer for this host\n",
        )
            .into_response()
    };
    let h = resp.headers_mut();
    h.insert(
        header::X_FRAME_OPTIONS,
        header::HeaderValue::from_static("DENY"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        header::HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        header::HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        header::HeaderValue::from_static("no-referrer"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_loopback_port_and_configured_names() {
        let issuer = Url::parse("http://127.0.0.1:9000").unwrap();
        let hosts =
            AllowedHosts::new(&issuer, &["auth.test".into(), "other.test:81".into()]).unwrap();
        for ok in [
            "127.0.0.1:9000",
            "localhost:9000",
            "LOCALHOST:9000",
            "[::1]:9000",
            "auth.test",
            "auth.test:1234",
            "other.test:81",
        ] {
            assert!(hosts.allows(ok), "{ok}");
        }
        for bad in [
            "127.0.0.1:9001",
            "127.0.0.1",
            "evil.example:9000",
            "other.test",
            "other.test:82",
            "user@127.0.0.1:9000",
            "",
        ] {
            assert!(!hosts.allows(bad), "{bad}");
        }
        let https = AllowedHosts::new(&Url::parse("https://as.example").unwrap(), &[]).unwrap();
        assert!(https.allows("as.example") && https.allows("as.example:443"));
        assert!(!https.allows("localhost:443") && !https.allows("as.example:80"));
    }
}
