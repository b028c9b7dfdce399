#[traced::span(crate = 3)]
fn encode() {}

fn main() {
    encode();
}
