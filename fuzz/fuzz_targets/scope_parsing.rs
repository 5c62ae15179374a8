//! `ScopeSet::parse`, `scope::validate_scope_token` and `cache_control_max_age` on
//! arbitrary strings (the input as lossy UTF-8).
//!
//! Invariants:
//! - nothing panics;
//! - `validate_scope_token(s)` is `Ok` exactly when `s` is non-empty and every byte is
//!   `%x21 / %x23-5B / %x5D-7E` (RFC 6749 §3.3), stated independently here;
//! - `ScopeSet::parse(s)` is `Ok` exactly when every space-separated non-empty word is a valid
//!   token; then the set holds exactly those words, equals `try_from_iter` of them, prints as
//!   the sorted distinct words joined by single spaces, and `parse(display)` gives the set
//!   back;
//! - `cache_control_max_age`: a non-zero answer comes from a `max-age` directive.
#![no_main]

use std::collections::BTreeSet;

use libfuzzer_sys::fuzz_target;
use mcp_guard::ScopeSet;
use mcp_guard::scope::validate_scope_token;

fn valid_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
}

fuzz_target!(|data: &[u8]| {
    let input = String::from_utf8_lossy(data);
    let input: &str = &input;

    assert_eq!(
        validate_scope_token(input).is_ok(),
        valid_token(input),
        "validate {input:?}"
    );

    let words: Vec<&str> = input.split(' ').filter(|w| !w.is_empty()).collect();
    let all_valid = words.iter().all(|w| valid_token(w));
    match ScopeSet::parse(input) {
        Ok(set) => {
            assert!(all_valid, "parse accepted {input:?}");
            let distinct: BTreeSet<&str> = words.iter().copied().collect();
            assert_eq!(set.len(), distinct.len());
            assert!(set.iter().eq(distinct.iter().copied()), "set of {input:?}");
            assert_eq!(set, ScopeSet::try_from_iter(&words).expect("valid words"));
            let shown = set.to_string();
            assert_eq!(shown, distinct.into_iter().collect::<Vec<_>>().join(" "));
            let again = ScopeSet::parse(&shown).unwrap_or_else(|e| panic!("{shown:?}: {e}"));
            assert_eq!(again, set, "round trip through {shown:?}");
            assert_eq!(set.is_empty(), words.is_empty());
        }
        Err(_) => assert!(!all_valid, "parse refused {input:?}"),
    }

    if let Some(age) = mcp_guard::__internals::cache_control_max_age(input)
        && !age.is_zero()
    {
        assert!(
            input.to_ascii_lowercase().contains("max-age"),
            "max-age {age:?} from {input:?}"
        );
    }
});
