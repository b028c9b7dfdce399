//! Attribute macros for `traced`; use them through the `traced` crate, which
//! re-exports them and pins this crate's exact version.

mod ast;
mod attr;
mod check;
mod crate_path;
mod ctxt;
#[cfg(test)]
mod doc_expansions;
mod expand;

use proc_macro::TokenStream;

type Expansion = Result<proc_macro2::TokenStream, (proc_macro2::TokenStream, syn::Error)>;

/// The expansion, naming the crate the user's code knows traced by.
fn finish_in(given: Result<Option<syn::Path>, syn::Error>, result: Expansion) -> TokenStream {
    let given = match given {
        Ok(given) => given,
        Err(error) => {
            let item = match result {
                Ok(tokens) | Err((tokens, _)) => tokens,
            };
            return ctxt::with_errors(item, error).into();
        }
    };
    let path = crate_path::resolve(given);
    match result {
        Ok(tokens) => crate_path::rename(tokens, &path).into(),
        Err((item, error)) => crate_path::rename(ctxt::with_errors(item, error), &path).into(),
    }
}

/// Wraps a function, sync or async, in a span.
///
/// | option | effect |
/// | --- | --- |
/// | `"name"`, `name = "..."` | the span name (default: the fn name) |
/// | `attrs(key = expr, "a.b" = expr, a.b = expr)` | attributes, computed only when the span records; an expression may call traced code (a `#[span]` fn, `traced::current_trace_id()`) |
/// | `args(a, b)`, `args` | record these arguments, or all; each must implement `traced::AttrValue` |
/// | `skip(a)` | leave an argument out of `args` |
/// | `kind = server\|client\|producer\|consumer\|internal` | the span kind |
/// | `ai_kind = llm\|embedding\|chain\|tool\|retriever\|reranker\|agent\|guardrail\|evaluator` | the OpenInference kind, `openinference.span.kind` (default `chain`) |
/// | `links(expr, ..)`, `follows_from(expr, ..)` | link to other spans (`Context`, `SpanContext`, `Carrier`) |
/// | `stream`, `stream(events)` | on a fn returning `impl Iterator`/`impl Stream`: the span covers the iteration |
/// | `sync` | wait for the device (see `traced::set_device_sync`) before the span ends |
/// | `metrics` | count the call's duration in `traced.stage.duration` by stage name, every call, sampled or not (for a `stream`, until the stream is returned) |
/// | `crate = path` | the path to `traced` for a crate that reaches it through another (serde's convention); by default the crate's manifest says: `traced`, else `traced-core`, under whatever name it is given |
///
/// A `Result` return (aliases too) that is `Err` sets the status to Error and
/// adds an `exception` event (type, message, source chain); a panic is
/// recorded the same way, then continues; an async fn's span is current
/// across every `.await`, and a future dropped early marks it `cancelled`.
/// Arguments are never captured unless asked: prompts and keys stay out.
///
/// ```
/// use traced::span;
///
/// #[span(attrs(model.name = "tiny-unet"), args(steps))]
/// fn denoise(prompt: &str, steps: u32) -> Result<Vec<f32>, std::io::Error> {
///     Ok(vec![0.0; prompt.len() * steps as usize])
/// }
///
/// let guard = traced::init(traced::Config::default().with_env_from(|_| None));
/// assert_eq!(denoise("red circle", 2).unwrap().len(), 20);
/// guard.shutdown();
/// ```
///
/// expands to (the logic lives in `traced`, the expansion stays small):
///
/// ```text
/// fn denoise(prompt: &str, steps: u32) -> Result<Vec<f32>, std::io::Error> {
///     let __traced_span = ::traced::__private::SpanHandle::scoped(
///         const { &::traced::__private::Meta::new("denoise") },
///         |__traced_attrs: &mut ::traced::__private::Attributes| {
///             __traced_attrs.record("model.name", &("tiny-unet"));
///             __traced_attrs.record("steps", &steps);
///         }
///     );
///     let __traced_ret = __traced_span.call::<Result<Vec<f32>, std::io::Error>, _>(move || {
///         Ok(vec![0.0; prompt.len() * steps as usize])
///     });
///     {
///         use ::traced::__private::outcome::*;
///         (&&&&&&&::traced::__private::outcome::Outcome(&__traced_ret)).__traced_record(&__traced_span);
///     }
///     __traced_ret
/// }
/// ```
///
/// With tracing off, `SpanHandle::scoped` is one relaxed load and a branch,
/// and `call` runs the body directly; the span's name and options are a
/// constant. A test (`doc_expansions.rs`) expands this example with the
/// macro's own code and compares it with the text above.
#[proc_macro_attribute]
pub fn span(args: TokenStream, item: TokenStream) -> TokenStream {
    let (args, given) = crate_path::take_option(args.into());
    finish_in(given, expand::span::expand(args, item.into()))
}

/// Makes a method taking `&self` and one input a request's root span: kind
/// Server, parent from the W3C headers the server made current, else from
/// the input's `traced::Carrier` field, else a new trace. The input's
/// `#[derive(SpanAttributes)]` attributes are recorded, plus `attrs(...)`.
///
/// ```
/// #[derive(traced::SpanAttributes)]
/// struct Input {
///     #[span_attr(name = "prompt.length", with = str::len)]
///     prompt: String,
///     trace_context: traced::Carrier,
/// }
///
/// struct Worker;
///
/// impl Worker {
///     #[traced::endpoint("/", name = "text-to-image")]
///     fn run(&self, input: Input) -> Option<String> {
///         traced::current_trace_id()
///     }
/// }
///
/// let guard = traced::init(traced::Config::default().with_env_from(|_| None));
/// let trace_context = [("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")]
///     .into_iter()
///     .collect();
/// let id = Worker.run(Input { prompt: "red circle".into(), trace_context });
/// assert_eq!(id.as_deref(), Some("0af7651916cd43dd8448eb211c80319c"));
/// guard.shutdown();
/// ```
///
/// expands like `#[span]`, with the span made by
///
/// ```text
/// {
///     use ::traced::__private::input::*;
///     let __traced_input = &&::traced::__private::input::Input(&input);
///     ::traced::__private::SpanHandle::request(
///         ::traced::__private::Meta::new("text-to-image").kind(::traced::__private::Kind::Server),
///         __traced_input.__traced_carrier(),
///         |__traced_attrs: &mut ::traced::__private::Attributes| {
///             __traced_input.__traced_attributes(__traced_attrs);
///         },
///     )
/// }
/// ```
#[proc_macro_attribute]
pub fn endpoint(args: TokenStream, item: TokenStream) -> TokenStream {
    let (args, given) = crate_path::take_option(args.into());
    finish_in(given, expand::endpoint::expand(args, item.into()))
}

/// Traces an app's lifecycle and implements `traced::App` for it.
///
/// On the app's inherent impl block: `setup` (`-> Self` or `-> Result<Self,
/// E>`) first installs the tracer provider from the environment, then runs in
/// a `setup` span of its own startup trace (warmup spans land there, not in
/// requests); a failed setup's span is flushed at once. `teardown` (`&self`
/// or `&mut self`, generated when absent) runs in a `teardown` span, then
/// tracing is flushed and shut down within the flush budget. `#[endpoint]`
/// and `#[span]` inside the block need no import. The service name is
/// `service = "..."`, else `OTEL_SERVICE_NAME`, else the type's name in
/// kebab-case.
///
/// ```
/// struct TextToImage {
///     model: String,
/// }
///
/// #[traced::traced_app(service = "text-to-image")]
/// impl TextToImage {
///     fn setup() -> Result<Self, std::io::Error> {
///         Ok(TextToImage { model: "tiny-unet".into() })
///     }
///
///     #[endpoint("/", attrs(model.name = self.model.as_str()))]
///     fn run(&self, prompt: String) -> usize {
///         prompt.len()
///     }
/// }
///
/// # unsafe { std::env::set_var("OTEL_TRACES_EXPORTER", "none") };
/// let mut app = <TextToImage as traced::App>::setup().unwrap();
/// assert_eq!(app.run("red circle".into()), 10);
/// traced::App::teardown(&mut app); // flushes within the budget
/// ```
///
/// `setup`'s body becomes
///
/// ```text
/// ::traced::__private::install(::traced::__private::ServiceName::Given("text-to-image"));
/// let __traced_span = ::traced::__private::SpanHandle::root(
///     ::traced::__private::Meta::new("setup").flush_on_failure(),
/// );
/// let __traced_ret = __traced_span.call::<Result<Self, std::io::Error>, _>(move || { /* the body */ });
/// /* outcome recorded as in #[span] */
/// __traced_ret
/// ```
///
/// and the block gains `impl ::traced::__private::App for TextToImage`.
#[proc_macro_attribute]
pub fn traced_app(args: TokenStream, item: TokenStream) -> TokenStream {
    let (args, given) = crate_path::take_option(args.into());
    finish_in(given, expand::app::expand(args, item.into()))
}

/// Derives `traced::SpanAttributes` (and `traced::AttrValue`) for a struct.
///
/// Fields are opt-in: `#[span_attr]` records a field under its name;
/// `#[span_attr(name = "prompt.length", with = str::len)]` renames it and
/// records a computed value; `#[span_attr(redact)]` records `[redacted]`.
/// `#[span_attrs(all)]` on the struct records every field instead, with
/// `#[span_attr(skip)]` to leave one out. `#[span_attrs(crate = path)]`
/// names traced for a crate that reaches it through another, as `crate =`
/// does for the attribute macros. A field of type `traced::Carrier`
/// (or `Option` of it, or marked `#[span_attr(carrier)]`) is the trace
/// context an `#[endpoint]` continues.
///
/// ```
/// use traced::{Attributes, SpanAttributes};
///
/// #[derive(SpanAttributes)]
/// struct Input {
///     #[span_attr(name = "prompt.length", with = str::len)]
///     prompt: String,
///     #[span_attr]
///     num_inference_steps: u32,
///     #[span_attr(redact)]
///     api_key: String,
///     trace_context: Option<traced::Carrier>,
/// }
///
/// let input = Input { prompt: "red circle".into(), num_inference_steps: 4, api_key: "sk".into(), trace_context: None };
/// let mut attrs = Attributes::default();
/// input.span_attributes(&mut attrs);
/// assert_eq!(format!("{attrs:?}").matches("Key").count(), 3);
/// assert!(!format!("{attrs:?}").contains("red circle"));
/// ```
///
/// expands to
///
/// ```text
/// impl ::traced::__private::SpanAttributes for Input {
///     fn span_attributes(&self, __traced_attrs: &mut ::traced::__private::Attributes) {
///         __traced_attrs.record("prompt.length", &(str::len)(&self.prompt));
///         __traced_attrs.record("num_inference_steps", &self.num_inference_steps);
///         __traced_attrs.push("api_key", "[redacted]");
///     }
///     fn carrier(&self) -> ::core::option::Option<&::traced::__private::Carrier> {
///         self.trace_context.as_ref()
///     }
///     fn carrier_mut(&mut self) -> ::core::option::Option<&mut ::traced::__private::Carrier> {
///         ::core::option::Option::Some(self.trace_context.get_or_insert_with(::core::default::Default::default))
///     }
/// }
/// ```
///
/// and an `AttrValue` impl that records the same attributes.
#[proc_macro_derive(SpanAttributes, attributes(span_attr, span_attrs))]
pub fn derive_span_attributes(input: TokenStream) -> TokenStream {
    let (result, given) = expand::derive::expand(input.into());
    finish_in(Ok(given), result)
}
