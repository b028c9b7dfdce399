// The struct's options: an unknown one is named with the list, a `crate`
// that is not a path is an error under its value.
#[derive(traced::SpanAttributes)]
#[span_attrs(every)]
struct Request {
    #[span_attr]
    steps: u32,
}

#[derive(traced::SpanAttributes)]
#[span_attrs(crate = 3)]
struct Reply {
    #[span_attr]
    tokens: u32,
}

fn main() {}
