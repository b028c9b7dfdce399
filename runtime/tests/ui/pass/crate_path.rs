// A crate that re-exports traced hands its path to the macros.
mod reexport {
    pub use traced as instrumentation;
}

#[traced::span(crate = crate::reexport::instrumentation, name = "encode")]
fn encode(prompt: &str) -> usize {
    prompt.len()
}

#[traced::span(crate = "crate::reexport::instrumentation")]
async fn decode(tokens: usize) -> usize {
    tokens
}

fn main() {
    assert_eq!(encode("a red circle"), 12);
    drop(decode(3));
}
