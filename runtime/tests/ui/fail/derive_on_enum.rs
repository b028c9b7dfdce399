#[derive(traced::SpanAttributes)]
enum Input {
    Text(String),
}

fn main() {
    let Input::Text(_) = Input::Text(String::new());
}
