//! Generated code names nothing through the prelude: these shadows would
//! break any path that is not rooted.
#![deny(warnings)]
#![allow(non_camel_case_types, dead_code)]

struct Ok;
struct Err;
struct Some;
struct None;
struct Box;
struct Vec;
struct String;
type Option = ();
type Result = ();
mod core {}
mod std {}

#[derive(::traced::SpanAttributes, ::serde::Deserialize)]
struct Input {
    #[span_attr]
    steps: u32,
    trace_context: ::traced::Carrier,
}

#[::traced::span(attrs(model.name = "tiny-unet"), args(steps))]
fn encode(steps: u32) -> ::core::result::Result<u32, ::std::io::Error> {
    ::core::result::Result::Ok(steps)
}

#[::traced::span(stream)]
fn tokens() -> impl ::core::iter::Iterator<Item = u32> {
    0..3
}

#[::traced::span]
async fn denoise() -> u32 {
    1
}

struct App;

#[::traced::traced_app(service = "shadowed")]
impl App {
    fn setup() -> ::core::result::Result<Self, ::std::io::Error> {
        ::core::result::Result::Ok(App)
    }

    #[endpoint("/")]
    fn run(&self, input: Input) -> ::core::result::Result<u32, ::std::io::Error> {
        encode(input.steps)
    }
}

fn main() {
    let _ = encode(3);
    let _ = tokens().count();
    let _ = denoise();
    let _ = App::run;
}
