//! trybuild UI tests for `agentd!`: one compile-fail case per diagnostic class (each
//! with its `.stderr`) and compile-pass cases that also run.
//!
//! Cases live in `tests/ui/*.rs`, their workflows in `tests/ui/workflows/`. trybuild
//! compiles the cases in a crate it generates under `target/tests/trybuild/`, so the
//! macro finds `workflows/…` beside the case file (its fallback after
//! `CARGO_MANIFEST_DIR`).
//!
//! Bless changed `.stderr` files (review the diff before committing):
//!
//! ```text
//! TRYBUILD=overwrite cargo test -p agentd-macros --test ui
//! ```

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("../tests/ui/fail_*.rs");
    t.pass("../tests/ui/pass_*.rs");
}
