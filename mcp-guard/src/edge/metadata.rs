//! OAuth 2.0 Protected Resource Metadata (RFC 9728): the document, its well-known URLs, and
//! optional signed metadata.

use bytes::Bytes;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};
use url::Url;

/// The RFC 9728 well-known suffix.
pub(crate) const WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";

/// Which scopes the metadata's `scopes_supported` lists. Clients such as MCP Inspector request
/// every scope listed there, so listing the whole catalogue hands them over-privileged tokens
/// (the MCP security best practices name "publishing all possible scopes" as a common
/// mistake); by default only what a client should ask for at first is listed, and the rest
/// is asked for by step-up when an operation needs it. `offline_access` is never listed
/// (MCP 2026-07-28, SEP-2207). The manifest always lists the whole catalogue.
///
/// ```
/// use mcp_guard::metadata::ScopesSupported;
/// assert_eq!(ScopesSupported::default(), ScopesSupported::Advertised);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ScopesSupported {
    /// The baseline scopes and those marked `#[advertised]` (the default).
    #[default]
    Advertised,
    /// Every scope of the catalogue.
    Catalogue,
    /// Exactly these scopes, each one the policy knows.
    Only(crate::scope::ScopeSet),
}

/// The protected resource metadata document (RFC 9728 §2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ResourceMetadata {
    /// The resource identifier: the exact canonical MCP endpoint URL.
    pub resource: String,
    /// Issuer identifiers of the authorization servers (at least one, MCP).
    pub authorization_servers: Vec<String>,
    /// The scopes clients may request (never `offline_access`).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub scopes_supported: Vec<String>,
    /// Always `["header"]`.
    pub bearer_methods_supported: Vec<String>,
    /// Human-readable name.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub resource_name: Option<String>,
    /// Documentation URL.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub resource_documentation: Option<String>,
    /// Policy URL.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub resource_policy_uri: Option<String>,
    /// Terms of service URL.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub resource_tos_uri: Option<String>,
    /// The resource's own JWK Set URL (for signed responses).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub jwks_uri: Option<String>,
    /// The DPoP proof algorithms accepted (RFC 9728 §2, RFC 9449): present only when the
    /// guard accepts DPoP ([`GuardBuilder::dpop`](crate::GuardBuilder::dpop)).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub dpop_signing_alg_values_supported: Vec<String>,
    /// Whether only DPoP-bound tokens are accepted (RFC 9728 §2); written only when true.
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub dpop_bound_access_tokens_required: bool,
    /// The signed metadata JWT (RFC 9728 §2.2).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub signed_metadata: Option<String>,
}

impl ResourceMetadata {
    /// A document for a resource and its authorization servers.
    pub fn new(resource: &str, authorization_servers: Vec<String>) -> Self {
        Self {
            resource: resource.to_owned(),
            authorization_servers,
            scopes_supported: Vec::new(),
            bearer_methods_supported: vec!["header".to_owned()],
            resource_name: None,
            resource_documentation: None,
            resource_policy_uri: None,
            resource_tos_uri: None,
            jwks_uri: None,
            dpop_signing_alg_values_supported: Vec::new(),
            dpop_bound_access_tokens_required: false,
            signed_metadata: None,
        }
    }

    /// Signs the document's fields (all but `signed_metadata`) as a JWT with `iss`, and stores
    /// it in `signed_metadata`.
    pub fn sign(&mut self, key: &MetadataSigningKey) -> Result<(), jsonwebtoken::errors::Error> {
        self.signed_metadata = None;
        let mut claims = serde_json::to_value(&*self).map_err(jsonwebtoken::errors::Error::from)?;
        if let Some(map) = claims.as_object_mut() {
            map.insert("iss".into(), key.issuer.clone().into());
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            map.insert("iat".into(), now.into());
        }
        let mut header = Header::new(key.algorithm);
        header.kid = key.kid.clone();
        crate::jwt::ensure_crypto_provider();
        self.signed_metadata = Some(jsonwebtoken::encode(&header, &claims, &key.key)?);
        Ok(())
    }
}

/// A key the server signs its metadata with.
#[derive(Clone)]
pub struct MetadataSigningKey {
    /// The `iss` of the signed metadata.
    pub issuer: String,
    /// The signing algorithm.
    pub algorithm: Algorithm,
    /// The key id, published in the server's `jwks_uri`.
    pub kid: Option<String>,
    /// The private key.
    pub key: EncodingKey,
}

impl std::fmt::Debug for MetadataSigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetadataSigningKey")
            .field("issuer", &self.issuer)
            .field("algorithm", &self.algorithm)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// The path-suffixed metadata URL of a resource (RFC 9728 §3): the well-known suffix
/// inserted between the host and the path: `https://mcp.example.com/mcp` →
/// `https://mcp.example.com/.well-known/oauth-protected-resource/mcp`.
pub(crate) fn metadata_url(resource: &Url) -> String {
    format!(
        "{}{}",
        resource.origin().ascii_serialization(),
        metadata_path(resource)
    )
}

/// The path part of [`metadata_url`].
pub(crate) fn metadata_path(resource: &Url) -> String {
    let path = resource.path().trim_end_matches('/');
    format!("{WELL_KNOWN}{path}")
}

/// Canonicalizes a resource URL: absolute http(s), no fragment, no query, scheme and host
/// lower-cased (the URL parser does that). Plain http is accepted only for loopback hosts.
///
/// A path ending with `/` (`https://x/mcp/`) is refused rather than trimmed: the server is
/// served and its tokens are audienced at exactly the URL clients are given, and trimming
/// would serve `/mcp` to clients told `/mcp/`. A bare origin (`https://x` or `https://x/`)
/// is the resource `https://x`.
pub(crate) fn canonical_resource(resource: &str) -> Result<Url, String> {
    let mut url =
        Url::parse(resource).map_err(|e| format!("`{resource}` is not an absolute URL: {e}"))?;
    if url.fragment().is_some() {
        return Err(format!("resource `{resource}` must not have a fragment"));
    }
    if url.query().is_some() {
        return Err(format!("resource `{resource}` must not have a query"));
    }
    match url.scheme() {
        "https" => {}
        "http" if crate::jwks::is_loopback(&url) => {}
        "http" => {
            return Err(format!(
                "resource `{resource}` must use https (http only for loopback hosts)"
            ));
        }
        other => {
            return Err(format!(
                "resource `{resource}` has unsupported scheme `{other}`"
            ));
        }
    }
    if url.host().is_none() {
        return Err(format!("resource `{resource}` has no host"));
    }
    if url.path() != "/" && url.path().ends_with('/') {
        let path = url.path().trim_end_matches('/').to_owned();
        url.set_path(&path);
        return Err(format!(
            "the resource URL `{resource}` ends with `/`: write it as `{}` (clients and tokens use exactly this URL)",
            resource_string(&url)
        ));
    }
    Ok(url)
}

/// The resource URL as written in metadata and compared as audience: no trailing slash.
pub(crate) fn resource_string(url: &Url) -> String {
    let s = url.as_str();
    s.strip_suffix('/').unwrap_or(s).to_owned()
}

/// The routes serving the metadata document `body` at `path`, and at the root well-known URL
/// when `path` is not that already.
pub(crate) fn routes<S: Clone + Send + Sync + 'static>(path: &str, body: Bytes) -> axum::Router<S> {
    let handler = move || {
        let body = body.clone();
        async move {
            (
                [
                    (http::header::CONTENT_TYPE, "application/json"),
                    (http::header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
                    (http::header::CACHE_CONTROL, "public, max-age=3600"),
                ],
                body,
            )
        }
    };
    let mut router = axum::Router::new().route(path, axum::routing::get(handler.clone()));
    if path != WELL_KNOWN {
        router = router.route(WELL_KNOWN, axum::routing::get(handler));
    }
    router
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_well_known_suffix_goes_between_host_and_path() {
        let url = Url::parse("https://mcp.example.com/mcp").expect("url");
        assert_eq!(
            metadata_url(&url),
            "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"
        );
        let root = Url::parse("https://mcp.example.com/").expect("url");
        assert_eq!(
            metadata_url(&root),
            "https://mcp.example.com/.well-known/oauth-protected-resource"
        );
    }
}
