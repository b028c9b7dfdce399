#[traced::span]
const fn steps() -> u32 {
    4
}

fn main() {
    let _ = steps();
}
