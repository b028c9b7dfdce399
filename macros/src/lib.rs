//! Attribute macros for `traced`; use them through the `traced` crate, which
//! documents them and pins this crate's exact version.

mod ast;
mod attr;
mod check;
mod ctxt;
mod expand;

use proc_macro::TokenStream;

fn finish(result: Result<proc_macro2::TokenStream, (proc_macro2::TokenStream, syn::Error)>) -> TokenStream {
    match result {
        Ok(tokens) => tokens.into(),
        Err((item, error)) => ctxt::with_errors(item, error).into(),
    }
}

/// Wraps a function in a span. Documented in `traced`.
#[proc_macro_attribute]
pub fn span(args: TokenStream, item: TokenStream) -> TokenStream {
    finish(expand::span(args.into(), item.into()))
}

/// Makes a method a request's root span. Documented in `traced`.
#[proc_macro_attribute]
pub fn endpoint(args: TokenStream, item: TokenStream) -> TokenStream {
    finish(expand::endpoint::expand(args.into(), item.into()))
}

/// Traces an app's lifecycle. Documented in `traced`.
#[proc_macro_attribute]
pub fn traced_app(args: TokenStream, item: TokenStream) -> TokenStream {
    finish(expand::app::expand(args.into(), item.into()))
}

/// Derives `traced::SpanAttributes`. Documented in `traced`.
#[proc_macro_derive(SpanAttributes, attributes(span_attr, span_attrs))]
pub fn derive_span_attributes(input: TokenStream) -> TokenStream {
    finish(expand::derive::expand(input.into()))
}
