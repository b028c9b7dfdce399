#[traced::span(colour, kind = sideways, args(missing), skip(also_missing))]
fn encode(prompt: &str) -> usize {
    prompt.len()
}

fn main() {
    encode("red circle");
}
