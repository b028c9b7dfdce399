//! Code generation, one file per macro.

pub mod app;
pub mod derive;
pub mod endpoint;
pub mod span;

use proc_macro2::TokenStream;

use crate::ast::Function;
use crate::attr::{self, Target};
use crate::check;
use crate::ctxt::Ctxt;

/// `#[span]`.
pub fn span(args: TokenStream, item: TokenStream) -> Result<TokenStream, (TokenStream, syn::Error)> {
    let function: Function = syn::parse2(item.clone()).map_err(|e| (item.clone(), e))?;
    let cx = Ctxt::new();
    let args = attr::parse_span_args(&cx, args, Target::Span);
    check::check_function(&cx, &args, &function, Target::Span);
    cx.check().map_err(|e| (item, e))?;
    if cfg!(feature = "off") {
        return Ok(quote::quote!(#function));
    }
    let kind = args.kind.as_ref().map(|kind| match kind.to_string().as_str() {
        "server" => "Server",
        "client" => "Client",
        "producer" => "Producer",
        "consumer" => "Consumer",
        _ => "Internal",
    });
    let plan = span::Plan {
        function: &function,
        name: span::Plan::default_name(&args, &function),
        kind: kind.filter(|k| *k != "Internal"),
        parent: span::Parent::Current,
        args: &args,
        flush_on_failure: false,
    };
    Ok(span::emit(&function, plan.body()))
}
