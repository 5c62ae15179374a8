//! Access token extraction from the `Authorization` header: `Bearer` (RFC 6750 §2.1) and
//! `DPoP` (RFC 9449 §7.1, the same `token68` grammar), nothing else.

use http::{HeaderMap, Uri, header::AUTHORIZATION};

/// Why no bearer token could be taken from a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BearerError {
    /// No `Authorization` header, or one with another scheme (`Basic`, …): the request carries
    /// no credentials this server understands (401 without an error code).
    #[error("no bearer credentials")]
    Missing,
    /// More than one `Authorization` header.
    #[error("more than one Authorization header")]
    Duplicate,
    /// `Bearer` with no token after it.
    #[error("the Bearer credentials are empty")]
    Empty,
    /// The token breaks the RFC 6750 `b64token` grammar, or the header is not visible ASCII.
    #[error("the Bearer token is not a valid b64token (RFC 6750 section 2.1)")]
    Malformed,
    /// An `access_token` query parameter: tokens are accepted only in the header.
    #[error("access tokens are accepted only in the Authorization header, not in the query string")]
    InQuery,
}

impl BearerError {
    /// Whether this is a malformed request (400 `invalid_request`) rather than missing
    /// credentials (401 without an error code).
    pub fn is_malformed(self) -> bool {
        !matches!(self, BearerError::Missing)
    }
}

/// The scheme an access token was presented with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `Authorization: Bearer`.
    Bearer,
    /// `Authorization: DPoP`, with a proof in the `DPoP` header.
    Dpop,
}

/// Takes the access token and its scheme (`Bearer` or `DPoP`, case-insensitive) from the
/// request's only `Authorization` header, as [`extract`] does for `Bearer` alone.
///
/// ```
/// use http::{HeaderMap, HeaderValue, Uri};
/// use mcp_guard::__internals::bearer::{Scheme, extract_credentials};
/// let mut headers = HeaderMap::new();
/// headers.insert("authorization", HeaderValue::from_static("DPoP abc.def"));
/// let uri: Uri = "/mcp".parse().unwrap();
/// assert_eq!(extract_credentials(&headers, &uri), Ok((Scheme::Dpop, "abc.def")));
/// ```
pub fn extract_credentials<'h>(
    headers: &'h HeaderMap,
    uri: &Uri,
) -> Result<(Scheme, &'h str), BearerError> {
    if query_has_access_token(uri) {
        return Err(BearerError::InQuery);
    }
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let value = values.next().ok_or(BearerError::Missing)?;
    if values.next().is_some() {
        return Err(BearerError::Duplicate);
    }
    parse_any(value.as_bytes())
}

/// Takes the bearer token from the request's only `Authorization` header.
///
/// The scheme is matched case-insensitively; the token must follow RFC 6750's `b64token`
/// grammar. A token in the query string is never used and makes the request malformed.
///
/// ```
/// use http::{HeaderMap, HeaderValue, Uri};
/// let mut headers = HeaderMap::new();
/// headers.insert("authorization", HeaderValue::from_static("bearer abc.def-_~+/=="));
/// let uri: Uri = "/mcp".parse().unwrap();
/// assert_eq!(mcp_guard::__internals::bearer::extract(&headers, &uri), Ok("abc.def-_~+/=="));
/// ```
pub fn extract<'h>(headers: &'h HeaderMap, uri: &Uri) -> Result<&'h str, BearerError> {
    if query_has_access_token(uri) {
        return Err(BearerError::InQuery);
    }
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let value = values.next().ok_or(BearerError::Missing)?;
    if values.next().is_some() {
        return Err(BearerError::Duplicate);
    }
    parse_credentials(value.as_bytes())
}

/// Parses the value of one `Authorization` header as `Bearer` credentials.
pub fn parse_credentials(value: &[u8]) -> Result<&str, BearerError> {
    match parse_any(value)? {
        (Scheme::Bearer, token) => Ok(token),
        (Scheme::Dpop, _) => Err(BearerError::Missing),
    }
}

/// Parses the value of one `Authorization` header as `Bearer` or `DPoP` credentials.
fn parse_any(value: &[u8]) -> Result<(Scheme, &str), BearerError> {
    let value = std::str::from_utf8(value).map_err(|_| BearerError::Malformed)?;
    let value = value.trim_matches(|c| c == ' ' || c == '\t');
    let (scheme, rest) = match value.find(' ') {
        Some(i) => (&value[..i], &value[i..]),
        None => (value, ""),
    };
    let scheme = if scheme.eq_ignore_ascii_case("bearer") {
        Scheme::Bearer
    } else if scheme.eq_ignore_ascii_case("dpop") {
        Scheme::Dpop
    } else {
        return Err(BearerError::Missing);
    };
    let token = rest.trim_start_matches(' ');
    if token.is_empty() {
        return Err(BearerError::Empty);
    }
    if is_b64token(token) {
        Ok((scheme, token))
    } else {
        Err(BearerError::Malformed)
    }
}

/// `b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`
pub fn is_b64token(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    // No early exit: the loop is vectorised (a token is read on every request).
    !body.is_empty() && body.bytes().fold(true, |ok, b| ok & b64token_byte(b))
}

/// Whether a byte may appear in a `b64token` before its `=` padding; branch-free.
#[inline]
fn b64token_byte(b: u8) -> bool {
    let letter = (b | 0x20).wrapping_sub(b'a') < 26;
    let digit = b.wrapping_sub(b'0') < 10;
    letter
        | digit
        | (b == b'-')
        | (b == b'.')
        | (b == b'_')
        | (b == b'~')
        | (b == b'+')
        | (b == b'/')
}

fn query_has_access_token(uri: &Uri) -> bool {
    uri.query().is_some_and(|q| {
        q.split('&')
            .any(|pair| pair.split('=').next() == Some("access_token"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use proptest::prelude::*;

    fn one(v: &str) -> Result<&str, BearerError> {
        parse_credentials(v.as_bytes())
    }

    #[test]
    fn grammar() {
        assert_eq!(one("Bearer abc"), Ok("abc"));
        assert_eq!(one("BEARER   abc=="), Ok("abc=="));
        assert_eq!(one("Basic dXNlcjpwYXNz"), Err(BearerError::Missing));
        assert_eq!(one("Bearer"), Err(BearerError::Empty));
        assert_eq!(one("Bearer    "), Err(BearerError::Empty));
        assert_eq!(one("Bearer abc def"), Err(BearerError::Malformed));
        assert_eq!(one("Bearer a,b"), Err(BearerError::Malformed));
        assert_eq!(one("Bearer a\"b"), Err(BearerError::Malformed));
        assert_eq!(one("Bearer ==="), Err(BearerError::Malformed));
        assert_eq!(one("Bearer a=b"), Err(BearerError::Malformed));
        // `DPoP` is another scheme to a bearer-only reader.
        assert_eq!(one("DPoP abc"), Err(BearerError::Missing));
        assert_eq!(parse_any(b"dpop  abc"), Ok((Scheme::Dpop, "abc")));
        assert_eq!(parse_any(b"DPoP"), Err(BearerError::Empty));
        assert_eq!(parse_any(b"DPoP a b"), Err(BearerError::Malformed));
        assert_eq!(parse_any(b"DPoPx abc"), Err(BearerError::Missing));
    }

    #[test]
    fn duplicates_and_query() {
        let mut h = HeaderMap::new();
        let uri: Uri = "/mcp".parse().unwrap();
        assert_eq!(extract(&h, &uri), Err(BearerError::Missing));
        h.append(AUTHORIZATION, HeaderValue::from_static("Bearer a"));
        h.append(AUTHORIZATION, HeaderValue::from_static("Bearer b"));
        assert_eq!(extract(&h, &uri), Err(BearerError::Duplicate));
        let q: Uri = "/mcp?x=1&access_token=abc".parse().unwrap();
        assert_eq!(extract(&HeaderMap::new(), &q), Err(BearerError::InQuery));
    }

    #[test]
    fn the_byte_test_is_the_grammar() {
        for b in 0..=u8::MAX {
            let expected =
                b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/');
            assert_eq!(b64token_byte(b), expected, "byte {b:#04x}");
        }
    }

    proptest! {
        #[test]
        fn never_panics_and_only_returns_b64tokens(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(t) = parse_credentials(&bytes) {
                prop_assert!(is_b64token(t));
            }
        }
    }
}
