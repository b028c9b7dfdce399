#[derive(traced::SpanAttributes)]
struct Input {
    #[span_attr(rename = "prompt.length")]
    prompt: String,
}

fn main() {
    let _ = Input { prompt: String::new() }.prompt;
}
