//! Compile-time behaviour of the macros: every misuse is an error under the
//! exact token, and every legitimate signature compiles with warnings denied.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/fail/*.rs");
    cases.pass("tests/ui/pass/*.rs");
}
