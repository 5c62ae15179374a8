//! The key source's HTTP side: discovery documents (RFC 8414, then OpenID Connect) and the
//! JWKS, both read bounded while streaming (`verify::bounded`), redirects kept to the same
//! secure origin, and the URL rules (https, or http to a loopback host).

use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use jsonwebtoken::jwk::JwkSet;
use url::Url;

use super::{KeySource, KeySourceError, Location, RefreshState};
use crate::verify::bounded::{BodyError, read_body};
use crate::verify::jwt::KeySet;

impl KeySource {
    pub(super) async fn fetch(
        &self,
        state: &mut RefreshState,
    ) -> Result<(KeySet, Duration), KeySourceError> {
        let jwks_uri = match &self.0.location {
            Location::Fixed(u) => u.clone(),
            Location::Discover => match self.discover_jwks_uri().await {
                Ok(u) => {
                    state.jwks_uri = Some(u.clone());
                    u
                }
                // Metadata that names another issuer is a failure, never skipped over.
                Err(e @ KeySourceError::IssuerMismatch { .. }) => return Err(e),
                // Metadata briefly unavailable: keep using the last discovered key set URL.
                Err(e) => state.jwks_uri.clone().ok_or(e)?,
            },
        };
        self.0.fetches.fetch_add(1, Ordering::Relaxed);
        let (body, max_age) = self.get(&jwks_uri).await?;
        let jwks: JwkSet =
            serde_json::from_slice(&body).map_err(|_| KeySourceError::InvalidDocument {
                url: jwks_uri.to_string(),
                what: "JWK Set",
            })?;
        let (keys, skipped) = KeySet::from_jwks(&jwks, &self.0.config.algorithms);
        for s in &skipped {
            tracing::warn!(target: "mcp_guard::jwks", issuer = %self.0.issuer, kid = ?s.kid,
                reason = %s.reason, "skipping unusable key");
        }
        if keys.is_empty() {
            return Err(KeySourceError::NoUsableKeys(jwks_uri.to_string()));
        }
        let config = &self.0.config;
        let ttl = max_age
            .unwrap_or(config.default_ttl)
            .min(config.max_ttl)
            .max(config.min_ttl);
        Ok((keys, ttl))
    }

    async fn discover_jwks_uri(&self) -> Result<Url, KeySourceError> {
        #[derive(serde::Deserialize)]
        struct Metadata {
            issuer: Option<String>,
            jwks_uri: Option<String>,
        }
        let issuer = &self.0.issuer;
        let mut last_err = KeySourceError::NotDiscovered(issuer.clone());
        for url in discovery_urls(issuer)? {
            let body = match self.get(&url).await {
                Ok((b, _)) => b,
                Err(e) => {
                    if !matches!(e, KeySourceError::Status { status: 404, .. }) {
                        last_err = e;
                    }
                    continue;
                }
            };
            let Ok(meta) = serde_json::from_slice::<Metadata>(&body) else {
                last_err = KeySourceError::InvalidDocument {
                    url: url.to_string(),
                    what: "authorization server metadata document",
                };
                continue;
            };
            match meta.issuer {
                Some(found) if found == *issuer => {}
                Some(found) => {
                    last_err = KeySourceError::IssuerMismatch {
                        expected: issuer.clone(),
                        found,
                    };
                    continue;
                }
                None => continue,
            }
            let Some(jwks_uri) = meta.jwks_uri else {
                continue;
            };
            let jwks_uri = parse_url(&jwks_uri)?;
            require_secure(&jwks_uri)?;
            return Ok(jwks_uri);
        }
        Err(last_err)
    }

    /// GET with the timeout, the size cap, and same-host redirects only.
    async fn get(&self, url: &Url) -> Result<(Vec<u8>, Option<Duration>), KeySourceError> {
        let transport = |e: reqwest::Error| KeySourceError::Transport {
            url: url.to_string(),
            reason: if e.is_timeout() {
                "timed out".to_owned()
            } else if e.is_redirect() {
                "redirect to another origin refused".to_owned()
            } else {
                "connection failed".to_owned()
            },
        };
        let resp = self
            .0
            .http
            .get(url.clone())
            .header(http::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(transport)?;
        if !resp.status().is_success() {
            return Err(KeySourceError::Status {
                url: url.to_string(),
                status: resp.status().as_u16(),
            });
        }
        let max_age = resp
            .headers()
            .get(http::header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .and_then(cache_control_max_age);
        let limit = self.0.config.max_response_bytes;
        let body = read_body(resp, limit).await.map_err(|e| match e {
            BodyError::Read { timed_out } => KeySourceError::Transport {
                url: url.to_string(),
                reason: if timed_out {
                    "timed out"
                } else {
                    "connection failed"
                }
                .to_owned(),
            },
            _ => KeySourceError::TooLarge {
                url: url.to_string(),
                limit,
            },
        })?;
        Ok((body, max_age))
    }
}

pub(super) fn http_client(timeout: Duration) -> reqwest::Client {
    let policy = reqwest::redirect::Policy::custom(|attempt| {
        let same_origin = attempt
            .previous()
            .first()
            .is_some_and(|first| first.origin() == attempt.url().origin());
        if attempt.previous().len() > 3 || !same_origin || require_secure(attempt.url()).is_err() {
            attempt.error("redirect refused")
        } else {
            attempt.follow()
        }
    });
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(policy)
        .user_agent(concat!("mcp-guard/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_default()
}

pub(super) fn parse_url(s: &str) -> Result<Url, KeySourceError> {
    Url::parse(s).map_err(|_| KeySourceError::InvalidUrl(s.to_owned()))
}

/// https, or http to a loopback address.
pub(crate) fn require_secure(url: &Url) -> Result<(), KeySourceError> {
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(url) => Ok(()),
        _ => Err(KeySourceError::InsecureUrl(url.to_string())),
    }
}

pub(crate) fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

/// The metadata locations for an issuer, in the order they are tried: RFC 8414
/// path-inserted, OIDC path-inserted, OIDC path-appended.
pub(crate) fn discovery_urls(issuer: &str) -> Result<Vec<Url>, KeySourceError> {
    let url = parse_url(issuer)?;
    let origin = url.origin().ascii_serialization();
    let path = url.path().trim_end_matches('/');
    let mut out = Vec::with_capacity(3);
    for candidate in [
        format!("{origin}/.well-known/oauth-authorization-server{path}"),
        format!("{origin}/.well-known/openid-configuration{path}"),
        format!("{origin}{path}/.well-known/openid-configuration"),
    ] {
        let u = parse_url(&candidate)?;
        if !out.contains(&u) {
            out.push(u);
        }
    }
    Ok(out)
}

/// `max-age` from a `Cache-Control` value; `no-store`/`no-cache` count as zero (the caller
/// clamps to the minimum TTL).
pub fn cache_control_max_age(value: &str) -> Option<Duration> {
    let mut max_age = None;
    for directive in value.split(',') {
        let directive = directive.trim();
        let (name, arg) = match directive.split_once('=') {
            Some((n, a)) => (n.trim(), Some(a.trim().trim_matches('"'))),
            None => (directive, None),
        };
        if name.eq_ignore_ascii_case("no-store") || name.eq_ignore_ascii_case("no-cache") {
            return Some(Duration::ZERO);
        }
        if name.eq_ignore_ascii_case("max-age") {
            max_age = arg
                .and_then(|a| a.parse::<u64>().ok())
                .map(Duration::from_secs);
        }
    }
    max_age
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn discovery_order() {
        let urls: Vec<String> = discovery_urls("https://as.example.com/tenant1")
            .unwrap()
            .into_iter()
            .map(|u| u.to_string())
            .collect();
        assert_eq!(
            urls,
            [
                "https://as.example.com/.well-known/oauth-authorization-server/tenant1",
                "https://as.example.com/.well-known/openid-configuration/tenant1",
                "https://as.example.com/tenant1/.well-known/openid-configuration",
            ]
        );
        assert_eq!(discovery_urls("https://as.example.com").unwrap().len(), 2);
    }

    #[test]
    fn secure_urls() {
        for ok in [
            "https://as.example",
            "http://127.0.0.1:8080/x",
            "http://localhost/",
            "http://[::1]/",
        ] {
            assert!(require_secure(&Url::parse(ok).unwrap()).is_ok(), "{ok}");
        }
        for bad in ["http://as.example", "http://10.0.0.1/", "ftp://127.0.0.1/"] {
            assert!(require_secure(&Url::parse(bad).unwrap()).is_err(), "{bad}");
        }
    }

    #[test]
    fn cache_control() {
        assert_eq!(
            cache_control_max_age("public, max-age=300"),
            Some(Duration::from_secs(300))
        );
        assert_eq!(cache_control_max_age("no-store"), Some(Duration::ZERO));
        assert_eq!(cache_control_max_age("max-age=abc"), None);
        assert_eq!(cache_control_max_age("private"), None);
    }

    proptest! {
        #[test]
        fn cache_control_never_panics(s in "\\PC*") {
            let _ = cache_control_max_age(&s);
        }
    }
}
