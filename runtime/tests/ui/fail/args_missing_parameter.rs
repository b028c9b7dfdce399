#[traced::span(args(prompt, steps))]
fn encode(prompt: &str) -> usize {
    prompt.len()
}

fn main() {
    encode("red circle");
}
