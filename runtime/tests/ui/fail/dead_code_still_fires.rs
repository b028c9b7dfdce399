#![deny(dead_code)]

#[traced::span]
fn never_called() {}

fn main() {}
