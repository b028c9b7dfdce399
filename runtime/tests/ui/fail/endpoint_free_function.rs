#[traced::endpoint("/")]
fn run(prompt: String) -> usize {
    prompt.len()
}

fn main() {
    run(String::new());
}
