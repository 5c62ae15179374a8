//! The registered-claim checks (issuer, audience, times) on claims whose signature verified.

use std::time::Duration;

use serde_json::{Map, Value};

use super::rules::{AudienceClaim, JwtRules};
use crate::verify::TokenError;

/// The registered-claim checks (issuer, audience, times) on already verified claims.
pub(crate) fn check_claims(
    claims: &Map<String, Value>,
    rules: &JwtRules,
    now: u64,
) -> Result<(), TokenError> {
    match claims.get("iss") {
        None => return Err(TokenError::MissingClaim("iss")),
        Some(Value::String(iss)) if issuer_matches(rules, iss, claims) => {}
        Some(Value::String(_)) => return Err(TokenError::WrongIssuer),
        Some(_) => return Err(TokenError::InvalidClaim("iss")),
    }
    if let AudienceClaim::ClientIdAllowList(clients) = &rules.audience_claim {
        return match claims.get("client_id").and_then(Value::as_str) {
            Some(c) if clients.iter().any(|a| a == c) => {
                check_times(claims, rules.leeway, rules.max_lifetime, now)
            }
            Some(_) => Err(TokenError::WrongAudience),
            None => Err(TokenError::MissingClaim("client_id")),
        };
    }
    let aud_ok = match claims.get("aud") {
        None => return Err(TokenError::MissingClaim("aud")),
        Some(Value::String(a)) => rules.audiences.accepts(a),
        Some(Value::Array(list)) => {
            let mut ok = false;
            for a in list {
                let a = a.as_str().ok_or(TokenError::InvalidClaim("aud"))?;
                ok |= rules.audiences.accepts(a);
            }
            ok
        }
        Some(_) => return Err(TokenError::InvalidClaim("aud")),
    };
    if !aud_ok {
        return Err(TokenError::WrongAudience);
    }
    check_times(claims, rules.leeway, rules.max_lifetime, now)
}

/// The exact issuer, or a `{tid}` template filled with the token's own allowed `tid`.
pub(crate) fn issuer_matches(rules: &JwtRules, iss: &str, claims: &Map<String, Value>) -> bool {
    match rules.issuer.split_once("{tid}") {
        None => iss == rules.issuer,
        Some((prefix, suffix)) => {
            let Some(tid) = claims.get("tid").and_then(Value::as_str) else {
                return false;
            };
            rules.tenants.iter().any(|t| t == tid)
                && iss.len() == prefix.len() + tid.len() + suffix.len()
                && iss.starts_with(prefix)
                && iss.ends_with(suffix)
                && &iss[prefix.len()..iss.len() - suffix.len()] == tid
        }
    }
}

/// Whether a token's `iss` routes to these rules (the template without the `tid` check).
pub(crate) fn issuer_routes(rules: &JwtRules, iss: &str) -> bool {
    match rules.issuer.split_once("{tid}") {
        None => iss == rules.issuer,
        Some((prefix, suffix)) => {
            iss.len() > prefix.len() + suffix.len()
                && iss.starts_with(prefix)
                && iss.ends_with(suffix)
        }
    }
}

/// The largest NumericDate accepted: 9999-12-31T23:59:59Z, the end of the range every JWT and
/// date library represents. Larger values (`1e30`, `2^64 + 5`) are refused, not saturated.
pub(crate) const MAX_NUMERIC_DATE: u64 = 253_402_300_799;

/// `exp` required and `nbf`/`iat` checked, with leeway; with `max_lifetime`, `exp` may lie at
/// most that long after `iat` (after now for a token without `iat`).
pub(crate) fn check_times(
    claims: &Map<String, Value>,
    leeway: Duration,
    max_lifetime: Option<Duration>,
    now: u64,
) -> Result<(), TokenError> {
    let leeway = leeway.as_secs();
    let exp = numeric_date(claims, "exp")?.ok_or(TokenError::MissingClaim("exp"))?;
    if now >= exp.saturating_add(leeway) {
        return Err(TokenError::Expired);
    }
    let nbf = numeric_date(claims, "nbf")?;
    if nbf.is_some_and(|nbf| nbf > now.saturating_add(leeway)) {
        return Err(TokenError::NotYetValid);
    }
    let iat = numeric_date(claims, "iat")?;
    if iat.is_some_and(|iat| iat > now.saturating_add(leeway)) {
        return Err(TokenError::IssuedInFuture);
    }
    if let Some(max) = max_lifetime {
        let start = iat.unwrap_or(now);
        if exp.saturating_sub(start) > max.as_secs() {
            return Err(TokenError::LifetimeTooLong);
        }
    }
    Ok(())
}

/// A NumericDate claim (RFC 7519 §2): integer or fractional seconds, rounded down, between 0
/// and [`MAX_NUMERIC_DATE`]; anything else is a malformed claim.
pub(crate) fn numeric_date(
    claims: &Map<String, Value>,
    name: &'static str,
) -> Result<Option<u64>, TokenError> {
    let Some(value) = claims.get(name) else {
        return Ok(None);
    };
    let seconds = match value {
        Value::Number(n) => match n.as_u64() {
            Some(u) => Some(u),
            None => n
                .as_f64()
                .filter(|f| f.is_finite() && *f >= 0.0 && *f <= MAX_NUMERIC_DATE as f64)
                .map(|f| f as u64),
        },
        _ => None,
    };
    match seconds {
        Some(s) if s <= MAX_NUMERIC_DATE => Ok(Some(s)),
        _ => Err(TokenError::InvalidClaim(name)),
    }
}
