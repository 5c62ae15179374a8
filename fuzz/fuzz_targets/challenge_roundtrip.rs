//! `challenge::Challenge` rendered with `to_header_value()` and read back with
//! `challenge::parse`, and `challenge::parse` alone on arbitrary strings.
//!
//! The first input byte picks the mode:
//! - even: build a challenge: bits 1-2 of the mode byte pick the error code (none,
//!   `invalid_request`, `invalid_token`, `insufficient_scope`), bit 3 whether there is a
//!   description; the rest, split at `0xFF` bytes (never part of UTF-8) and read as lossy
//!   UTF-8, is the resource metadata URL, the description, then scope tokens (invalid tokens
//!   are skipped). Render it with `to_header_value()` and parse it back:
//!   the header value is visible ASCII, the scheme is `Bearer`, each of the four parameters
//!   appears at most once and no other appears, `error` and `resource_metadata` round-trip
//!   exactly (the URL exactly when it is printable ASCII, otherwise with each other character
//!   written as `?`), `error_description` equals the description with every character
//!   outside RFC 6750's set (`%x20-21 / %x23-5B / %x5D-7E`) replaced by `'`, and `scope`
//!   parses back to the same set (absent when the set is empty);
//! - odd: `parse` on the rest as a (lossy UTF-8) string never panics; when it succeeds, the
//!   scheme and names are tokens, names are lower case, and writing the parsed challenge out
//!   again (all values quoted) parses to the same thing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_guard::ScopeSet;
use mcp_guard::challenge::{self, Challenge, ErrorCode, ParsedChallenge};

const PARAMS: [&str; 4] = ["error", "error_description", "scope", "resource_metadata"];

fn is_tchar(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

fn quote(value: &str) -> String {
    let mut out = String::from("\"");
    for c in value.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

fn render(parsed: &ParsedChallenge) -> String {
    let params: Vec<String> = parsed
        .params
        .iter()
        .map(|(n, v)| format!("{n}={}", quote(v)))
        .collect();
    if params.is_empty() {
        parsed.scheme.clone()
    } else {
        format!("{} {}", parsed.scheme, params.join(", "))
    }
}

fn parse_alone(input: &str) {
    let Ok(parsed) = challenge::parse(input) else {
        return;
    };
    assert!(!parsed.scheme.is_empty() && parsed.scheme.chars().all(is_tchar));
    for (name, _) in &parsed.params {
        assert!(
            !name.is_empty() && name.chars().all(is_tchar),
            "param name {name:?}"
        );
        assert_eq!(*name, name.to_ascii_lowercase());
    }
    let again = render(&parsed);
    let reparsed = challenge::parse(&again)
        .unwrap_or_else(|e| panic!("re-rendered {again:?} does not parse: {e}"));
    assert_eq!(parsed, reparsed, "re-rendered as {again:?}");
    for name in PARAMS {
        let count = parsed.count(name);
        assert_eq!(parsed.param(name).is_some(), count == 1);
    }
}

fn round_trip(mode: u8, rest: &[u8]) {
    let code = match (mode >> 1) & 3 {
        0 => None,
        1 => Some(ErrorCode::InvalidRequest),
        2 => Some(ErrorCode::InvalidToken),
        _ => Some(ErrorCode::InsufficientScope),
    };
    let with_description = (mode >> 3) & 1 == 1;
    let mut parts = rest.split(|&b| b == 0xFF).map(String::from_utf8_lossy);
    let url = parts.next().unwrap_or_default();
    let url: &str = &url;
    let description = parts.next().unwrap_or_default();
    let description: Option<&str> = with_description.then_some(&*description);
    let candidates: Vec<_> = parts.collect();
    let valid: Vec<&str> = candidates
        .iter()
        .map(|s| &**s)
        .filter(|s| mcp_guard::scope::validate_scope_token(s).is_ok())
        .collect();
    let scope = ScopeSet::try_from_iter(&valid).expect("validated tokens");

    let mut c = Challenge::new(url).scope(&scope);
    if let Some(code) = code {
        c = c.error(code);
    }
    if let Some(d) = description {
        c = c.description(d);
    }
    let header = c.to_header_value();
    let text = header
        .to_str()
        .unwrap_or_else(|_| panic!("challenge header is not visible ASCII: {header:?}"));
    assert_eq!(text, c.to_string(), "to_header_value fell back for {c:?}");
    let parsed = challenge::parse(text).unwrap_or_else(|e| panic!("{text:?} does not parse: {e}"));

    assert_eq!(parsed.scheme, "Bearer");
    for (name, _) in &parsed.params {
        assert!(
            PARAMS.contains(&name.as_str()),
            "unexpected parameter {name:?} in {text:?}"
        );
    }
    for name in PARAMS {
        assert!(
            parsed.count(name) <= 1,
            "{name} appears {} times in {text:?}",
            parsed.count(name)
        );
    }
    assert_eq!(
        parsed.param("error"),
        code.map(ErrorCode::as_str),
        "error in {text:?}"
    );

    let expected_url: String = url
        .chars()
        .map(|ch| if matches!(ch, ' '..='~') { ch } else { '?' })
        .collect();
    assert_eq!(
        parsed.param("resource_metadata"),
        Some(expected_url.as_str()),
        "{text:?}"
    );
    if url.chars().all(|ch| matches!(ch, ' '..='~')) {
        assert_eq!(parsed.param("resource_metadata"), Some(url));
    }

    let expected_description = description.map(|d| {
        d.chars()
            .map(|ch| {
                let b = ch as u32;
                if b == 0x20
                    || b == 0x21
                    || (0x23..=0x5B).contains(&b)
                    || (0x5D..=0x7E).contains(&b)
                {
                    ch
                } else {
                    '\''
                }
            })
            .collect::<String>()
    });
    assert_eq!(
        parsed.param("error_description"),
        expected_description.as_deref(),
        "{text:?}"
    );

    match parsed.param("scope") {
        None => assert!(scope.is_empty(), "scope missing from {text:?}"),
        Some(s) => {
            assert!(
                !scope.is_empty(),
                "scope present for an empty set in {text:?}"
            );
            let back = ScopeSet::parse(s).unwrap_or_else(|e| panic!("scope {s:?}: {e}"));
            assert_eq!(back, scope, "scope in {text:?}");
            for t in &valid {
                assert!(back.contains(t));
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        round_trip(mode, rest);
    } else {
        parse_alone(&String::from_utf8_lossy(rest));
    }
});
