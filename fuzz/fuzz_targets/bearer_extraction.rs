//! `bearer::parse_credentials` on raw header bytes, and `bearer::extract` on a request built
//! from the input: zero to four `Authorization` headers, other headers, and a query string.
//!
//! Input layout: the first byte picks the mode.
//! - even: the rest is one `Authorization` value for `parse_credentials`;
//! - odd: the rest is split into lines (`\n`; header values cannot hold one). The first line,
//!   when it starts with `?`, is the query string of `/mcp`; every other line is a header:
//!   first byte `A` → `Authorization`, `P` → `Proxy-Authorization`, anything else → `Cookie`,
//!   the rest of the line its value (lines that are not valid header values are dropped).
//!
//! Invariants:
//! - neither function panics;
//! - an `Ok` token satisfies `is_b64token`, is a suffix of the (trimmed) header value, and the
//!   value starts with the `Bearer` scheme (any case) followed by a space;
//! - `extract`: `access_token` in the query wins (`InQuery`); then no header is `Missing`,
//!   two or more are `Duplicate`; exactly one gives the same result as `parse_credentials`.
#![no_main]

use http::header::{AUTHORIZATION, COOKIE, PROXY_AUTHORIZATION};
use http::{HeaderMap, HeaderValue, Uri};
use libfuzzer_sys::fuzz_target;
use mcp_guard::__internals::bearer::{self, BearerError};

fn check_credentials(value: &[u8]) {
    let result = bearer::parse_credentials(value);
    match result {
        Ok(token) => {
            assert!(
                bearer::is_b64token(token),
                "Ok token {token:?} is not a b64token"
            );
            let text = std::str::from_utf8(value).expect("Ok only for UTF-8 values");
            let trimmed = text.trim_matches([' ', '\t']);
            assert!(
                trimmed.ends_with(token),
                "token {token:?} is not the tail of {text:?}"
            );
            assert!(
                trimmed.len() > 7
                    && trimmed.as_bytes()[..6].eq_ignore_ascii_case(b"bearer")
                    && trimmed.as_bytes()[6] == b' ',
                "Ok for a value without the Bearer scheme: {text:?}"
            );
            // The token is the last space-separated word: nothing but spaces before it.
            let before = &trimmed[6..trimmed.len() - token.len()];
            assert!(
                before.bytes().all(|b| b == b' '),
                "junk before the token in {text:?}"
            );
        }
        Err(BearerError::Missing) => {
            // Another scheme (or none): the first word is not `bearer`.
            if let Ok(text) = std::str::from_utf8(value) {
                let trimmed = text.trim_matches([' ', '\t']);
                let scheme = trimmed.split(' ').next().unwrap_or("");
                assert!(
                    !scheme.eq_ignore_ascii_case("bearer"),
                    "Missing for {text:?}"
                );
            }
        }
        Err(BearerError::Empty) => {
            let text = std::str::from_utf8(value).expect("Empty only for UTF-8 values");
            let trimmed = text.trim_matches([' ', '\t']);
            assert!(trimmed.eq_ignore_ascii_case("bearer"), "Empty for {text:?}");
        }
        Err(BearerError::Malformed) => {}
        Err(e) => panic!("parse_credentials returned {e:?}, which only extract may return"),
    }
}

/// An independent statement of "the query has an `access_token` parameter".
fn query_names_access_token(uri: &Uri) -> bool {
    uri.query().is_some_and(|q| {
        q.split('&')
            .any(|pair| pair == "access_token" || pair.starts_with("access_token="))
    })
}

fn check_request(data: &[u8]) {
    let mut lines = data.split(|&b| b == b'\n');
    let first = lines.next().unwrap_or_default();
    let uri = match first.strip_prefix(b"?") {
        Some(query) => {
            let mut target = b"/mcp?".to_vec();
            target.extend_from_slice(query);
            match Uri::from_maybe_shared(target) {
                Ok(uri) => uri,
                Err(_) => return,
            }
        }
        None => Uri::from_static("/mcp"),
    };
    let mut headers = HeaderMap::new();
    let mut authorizations: Vec<HeaderValue> = Vec::new();
    for line in lines {
        let Some((&kind, value)) = line.split_first() else {
            continue;
        };
        let Ok(value) = HeaderValue::from_bytes(value) else {
            continue;
        };
        match kind {
            b'A' => {
                authorizations.push(value.clone());
                headers.append(AUTHORIZATION, value);
            }
            b'P' => {
                headers.append(PROXY_AUTHORIZATION, value);
            }
            _ => {
                headers.append(COOKIE, value);
            }
        }
    }

    let result = bearer::extract(&headers, &uri);
    if let Ok(token) = result {
        assert!(
            bearer::is_b64token(token),
            "extract: Ok token {token:?} is not a b64token"
        );
    }
    let expected = if query_names_access_token(&uri) {
        Err(BearerError::InQuery)
    } else {
        match authorizations.as_slice() {
            [] => Err(BearerError::Missing),
            [one] => bearer::parse_credentials(one.as_bytes()),
            _ => Err(BearerError::Duplicate),
        }
    };
    assert_eq!(
        result, expected,
        "extract disagrees for {uri:?} / {authorizations:?}"
    );
    for value in &authorizations {
        check_credentials(value.as_bytes());
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        check_credentials(rest);
    } else {
        check_request(rest);
    }
});
