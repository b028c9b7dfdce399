#[traced::span(ai_kind = gpt)]
fn generate() {}

fn main() {
    generate();
}
