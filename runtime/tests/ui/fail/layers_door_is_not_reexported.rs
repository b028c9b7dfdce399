// traced's `__private` holds what generated code names, not the door its
// own layers use into the core.
fn main() {
    traced::__private::remove_tracer();
}
