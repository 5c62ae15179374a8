//! Compile tests for the diagnostics of mcp-guard's macros (`tests/ui/fail`) and for the
//! forms they accept (`tests/ui/pass`). Regenerate the expected output with
//! `TRYBUILD=overwrite cargo test -p mcp-guard-tests --test ui`, then read every `.stderr`.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("ui/pass/*.rs");
    t.compile_fail("ui/fail/*.rs");
}
