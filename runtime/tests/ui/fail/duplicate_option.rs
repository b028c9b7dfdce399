#[traced::span(sync, name = "decode", sync)]
fn decode() {}

fn main() {
    decode();
}
