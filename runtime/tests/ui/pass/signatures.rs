//! Every shape of signature keeps compiling, with warnings denied.
#![deny(warnings)]

use std::fmt::Display;

#[traced::span]
fn generic<T: Display + Clone>(value: &T) -> String
where
    T: Send,
{
    value.to_string()
}

#[traced::span]
fn borrowed<'a>(text: &'a str, _other: &str) -> &'a str {
    &text[..1]
}

#[traced::span]
fn elided(text: &str) -> &str {
    text.trim()
}

#[traced::span]
fn impl_argument(values: impl IntoIterator<Item = u32>) -> u32 {
    values.into_iter().sum()
}

#[traced::span]
fn impl_return(count: usize) -> impl Display {
    count
}

#[traced::span]
fn question_mark(text: &str) -> Result<u32, std::num::ParseIntError> {
    let value: u32 = text.parse()?;
    Ok(value + 1)
}

#[traced::span]
fn boxed_error(text: &str) -> Result<u32, Box<dyn std::error::Error + Send + Sync>> {
    let value: u32 = text.parse()?;
    if value == 0 {
        return Err("zero".into());
    }
    Ok(value)
}

#[traced::span]
fn early_return(flag: bool) -> u32 {
    if flag {
        return 1;
    }
    2
}

#[traced::span]
async fn async_question_mark(text: &str) -> Result<u32, std::num::ParseIntError> {
    let value: u32 = text.parse()?;
    Ok(value)
}

#[traced::span]
async fn async_borrowed(text: &str) -> &str {
    text
}

#[traced::span]
fn diverging_branch(flag: bool) -> u32 {
    if flag { 0 } else { unreachable!() }
}

struct Model {
    steps: u32,
}

impl Model {
    #[traced::span(attrs(steps = self.steps))]
    fn by_ref(&self) -> u32 {
        self.steps
    }

    #[traced::span]
    fn by_mut(&mut self) {
        self.steps += 1;
    }

    #[traced::span]
    fn by_value(self) -> u32 {
        self.steps
    }

    #[traced::span]
    fn with_self_type() -> Self {
        Model { steps: 0 }
    }

    #[traced::span]
    async fn async_by_ref(&self) -> u32 {
        self.steps
    }

    #[traced::span(stream(events))]
    fn steps<'a>(&'a self) -> impl Iterator<Item = u32> + 'a {
        0..self.steps
    }
}

trait Stage {
    fn run(&self, input: u32) -> u32;
}

impl Stage for Model {
    #[traced::span(args(input))]
    fn run(&self, input: u32) -> u32 {
        input + self.steps
    }
}

/// Docs and attributes on the function are kept.
#[traced::span]
#[must_use]
#[inline]
pub fn documented() -> u32 {
    7
}

fn main() {
    let _ = generic(&1_u8);
    let _ = borrowed("abc", "d");
    let _ = elided(" a ");
    let _ = impl_argument([1, 2]);
    let _ = impl_return(3).to_string();
    let _ = question_mark("4");
    let _ = boxed_error("5");
    let _ = early_return(true);
    let _ = async_question_mark("6");
    let _ = async_borrowed("7");
    let _ = diverging_branch(true);
    let mut model = Model::with_self_type();
    model.by_mut();
    let _ = model.by_ref();
    let _ = model.async_by_ref();
    let _ = model.steps().count();
    let _ = model.run(1);
    let _ = model.by_value();
    let _ = documented();
}
