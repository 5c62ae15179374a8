//! `classify::classify_body` on arbitrary bytes.
//!
//! Invariants (checked whenever it returns `Ok`):
//! - a body whose first non-whitespace byte is not `[` gives exactly one operation;
//! - `tool()` is `Some` exactly for `tools/call`, and then equals the target;
//! - `tools/call`, `prompts/get` and `resources/read` always have a target, every other method
//!   (and a response, without method) has none; only `tools/call`/`prompts/get` carry
//!   `arguments`; `policy_target()` agrees with the method; `arguments_object()` does not
//!   panic;
//! - differential check against `serde_json::Value`: for each message written as a JSON
//!   object, the method and the target (`params.name` / `params.uri`) are the ones a plain JSON
//!   parse sees, and a batch has as many operations as the array has elements.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_guard::__internals::classify::{self, Operation};
use mcp_guard::policy::Target;
use serde_json::Value;

fn check_op(op: &Operation<'_>) {
    let method = op.method.as_deref();
    match method {
        Some("tools/call") => {
            let target = op.target.as_deref().expect("tools/call without a target");
            assert_eq!(op.tool(), Some(target));
            assert!(matches!(op.policy_target(), Some(Target::Tool(t)) if t == target));
        }
        Some("prompts/get") => {
            let target = op.target.as_deref().expect("prompts/get without a target");
            assert_eq!(op.tool(), None);
            assert!(matches!(op.policy_target(), Some(Target::Prompt(t)) if t == target));
        }
        Some("resources/read") => {
            let target = op
                .target
                .as_deref()
                .expect("resources/read without a target");
            assert_eq!(op.tool(), None);
            assert!(op.arguments.is_none(), "resources/read with arguments");
            assert!(matches!(op.policy_target(), Some(Target::Resource(t)) if t == target));
        }
        _ => {
            assert_eq!(op.tool(), None, "tool() for method {method:?}");
            assert!(op.target.is_none(), "a target for method {method:?}");
            assert!(op.arguments.is_none(), "arguments for method {method:?}");
            assert!(op.policy_target().is_none());
        }
    }
    let _ = op.arguments_object();
}

/// Compares one classified message with what a plain JSON parse of it says.
fn check_against_json(op: &Operation<'_>, message: &Value) {
    // Messages in array form (`["tools/call", {...}, 1]`) are accepted by serde's struct
    // deserializer; only the object form has a meaning to compare with.
    let Value::Object(map) = message else {
        return;
    };
    let method = map.get("method").and_then(Value::as_str);
    assert_eq!(
        op.method.as_deref(),
        method,
        "method differs from the JSON's"
    );
    let params = map.get("params");
    let expected_target = match method {
        Some("tools/call" | "prompts/get") => {
            params.and_then(|p| p.get("name")).and_then(Value::as_str)
        }
        Some("resources/read") => params.and_then(|p| p.get("uri")).and_then(Value::as_str),
        _ => None,
    };
    assert_eq!(
        op.target.as_deref(),
        expected_target,
        "target differs from the JSON's"
    );
}

fuzz_target!(|data: &[u8]| {
    let Ok(ops) = classify::classify_body(data) else {
        return;
    };
    let batch = data.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[');
    if !batch {
        assert_eq!(
            ops.len(),
            1,
            "a single message gave {} operations",
            ops.len()
        );
    }
    for op in &ops {
        check_op(op);
    }
    // A plain parse can refuse what the classifier's borrowed parse accepted (e.g. lone
    // surrogates in ignored strings); then there is nothing to compare.
    if let Ok(json) = serde_json::from_slice::<Value>(data) {
        match (&json, batch) {
            (Value::Array(items), true) => {
                assert_eq!(items.len(), ops.len(), "batch length");
                for (op, item) in ops.iter().zip(items) {
                    check_against_json(op, item);
                }
            }
            (_, false) => check_against_json(&ops[0], &json),
            (other, true) => panic!("a batch body parsed as {other:?}"),
        }
    }
});
