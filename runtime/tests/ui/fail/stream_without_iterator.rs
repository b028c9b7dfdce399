#[traced::span(stream)]
fn tokens() -> Vec<u32> {
    vec![1, 2, 3]
}

fn main() {
    tokens();
}
