// A mistake in the derive is the only error: the type still implements
// SpanAttributes and AttrValue, so its uses below report nothing more.
#[derive(traced::SpanAttributes)]
struct Request {
    #[span_attr(colour)]
    prompt: String,
}

#[traced::span(args(request))]
fn run(request: &Request) -> usize {
    request.prompt.len()
}

fn main() {
    run(&Request { prompt: String::new() });
}
