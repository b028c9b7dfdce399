//! Generated code adds no lint to a user's crate: this file is built by
//! `cargo clippy --all-targets -- -D warnings` with every pedantic lint
//! denied, and instruments every kind of function.
#![deny(warnings, clippy::pedantic)]

use traced::{Carrier, SpanAttributes, span, traced_app};

/// A request body.
#[derive(SpanAttributes, Default, serde::Deserialize)]
pub struct Input {
    /// The prompt, recorded as its length.
    #[span_attr(name = "prompt.length", with = str::len)]
    pub prompt: String,
    /// Denoising steps.
    #[span_attr]
    pub steps: u32,
    /// The caller's trace context.
    pub trace_context: Option<Carrier>,
}

/// The failure of a stage.
#[derive(Debug)]
pub struct StageError;

impl std::fmt::Display for StageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("stage failed")
    }
}

impl std::error::Error for StageError {}

/// A stage with attributes and arguments.
///
/// # Errors
/// When `steps` is zero.
#[span(attrs(model.name = "tiny-unet"), args(steps))]
pub fn encode(prompt: &str, steps: u32) -> Result<usize, StageError> {
    if steps == 0 {
        return Err(StageError);
    }
    Ok(prompt.len())
}

/// A generic stage.
#[span(kind = client)]
pub fn generic<T>(value: &T) -> String
where
    T: std::fmt::Display + ?Sized,
{
    value.to_string()
}

/// An async stage.
#[span]
pub async fn denoise(steps: u32) -> u32 {
    steps
}

/// A stage with its own duration histogram.
#[must_use]
#[span(metrics, args(steps))]
pub fn decode(steps: u32) -> u32 {
    steps
}

/// An async stage with its own duration histogram.
#[span(metrics)]
pub async fn upload(steps: u32) {
    let _ = steps;
}

/// A streamed stage.
#[span(stream(events))]
pub fn tokens(count: u32) -> impl Iterator<Item = u32> {
    0..count
}

/// The app.
pub struct Pipeline {
    steps: u32,
}

#[traced_app(service = "pedantic")]
impl Pipeline {
    /// Builds it.
    ///
    /// # Errors
    /// Never.
    pub fn setup() -> Result<Self, StageError> {
        Ok(Pipeline { steps: 4 })
    }

    /// Serves a request.
    ///
    /// # Errors
    /// When encoding fails.
    #[endpoint("/", name = "text-to-image")]
    pub fn run(&self, input: &Input) -> Result<usize, StageError> {
        encode(&input.prompt, self.steps.min(input.steps))
    }

    /// Serves a request asynchronously.
    #[endpoint("/async")]
    pub async fn run_async(&self, input: Input) -> u32 {
        denoise(input.steps).await
    }

    /// Cleans up.
    pub fn teardown(&mut self) {
        self.steps = 0;
    }
}

#[test]
fn instrumented_code_runs() {
    assert_eq!(encode("abc", 1).ok(), Some(3));
    assert_eq!(generic("x"), "x");
    assert_eq!(tokens(3).count(), 3);
    let mut app = Pipeline::setup().expect("setup");
    assert!(app.run(&Input::default()).is_err());
    app.teardown();
}
