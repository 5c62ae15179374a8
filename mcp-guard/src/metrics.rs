//! What the guard counts, through the `metrics` facade (feature `metrics`): decisions by
//! outcome and reason, authentications and the JWT verifications behind them (the rest were
//! served by the verified-token cache), key fetches and their failures, when each key set was
//! last loaded, and introspection latency. Without the feature every function here is empty.
//!
//! | metric | kind | labels |
//! |---|---|---|
//! | `mcp_guard_decisions_total` | counter | `decision` (`allowed`, `refused`), `reason` (the audit reason; `none` when allowed) |
//! | `mcp_guard_authentications_total` | counter | — |
//! | `mcp_guard_jwt_verifications_total` | counter | — |
//! | `mcp_guard_key_fetches_total` | counter | `issuer`, `result` (`ok`, `error`) |
//! | `mcp_guard_key_set_loaded_timestamp_seconds` | gauge | `issuer` |
//! | `mcp_guard_introspection_seconds` | histogram | `result` (`ok`, `error`) |

#[cfg(feature = "metrics")]
mod on {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    const DECISIONS: &str = "mcp_guard_decisions_total";

    /// An allowed decision: its labels are static, so counting it allocates nothing (it
    /// happens on every request that goes on).
    pub(crate) fn allowed() {
        metrics::counter!(DECISIONS, "decision" => "allowed", "reason" => "none").increment(1);
    }

    pub(crate) fn refused(reason: &'static str) {
        metrics::counter!(DECISIONS, "decision" => "refused", "reason" => reason).increment(1);
    }

    pub(crate) fn authentication() {
        metrics::counter!("mcp_guard_authentications_total").increment(1);
    }

    pub(crate) fn jwt_verification() {
        metrics::counter!("mcp_guard_jwt_verifications_total").increment(1);
    }

    pub(crate) fn key_fetch(issuer: &str, ok: bool) {
        let result = if ok { "ok" } else { "error" };
        metrics::counter!("mcp_guard_key_fetches_total", "issuer" => issuer.to_owned(), "result" => result)
            .increment(1);
        if ok {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64());
            metrics::gauge!("mcp_guard_key_set_loaded_timestamp_seconds", "issuer" => issuer.to_owned())
                .set(now);
        }
    }

    pub(crate) fn introspection(took: Duration, ok: bool) {
        let result = if ok { "ok" } else { "error" };
        metrics::histogram!("mcp_guard_introspection_seconds", "result" => result)
            .record(took.as_secs_f64());
    }
}

#[cfg(not(feature = "metrics"))]
mod on {
    use std::time::Duration;

    pub(crate) fn allowed() {}
    pub(crate) fn refused(_reason: &'static str) {}
    pub(crate) fn authentication() {}
    pub(crate) fn jwt_verification() {}
    pub(crate) fn key_fetch(_issuer: &str, _ok: bool) {}
    pub(crate) fn introspection(_took: Duration, _ok: bool) {}
}

pub(crate) use on::*;
