#[traced::span(colour = "red")]
fn encode() {}

fn main() {
    encode();
}
