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

/// What an expansion returns: the new item, or the item as written with the
/// errors to show beside it.
pub type Expansion = Result<TokenStream, (TokenStream, syn::Error)>;

/// Parses and checks `#[span]` or `#[endpoint]`, collecting every error.
/// `Ok(None)`: the arguments are fine and instrumentation is compiled out.
fn parse_function(
    args: TokenStream,
    item: TokenStream,
    target: Target,
) -> Result<Option<(Function, attr::SpanArgs)>, (TokenStream, syn::Error)> {
    let function: Function = syn::parse2(item.clone()).map_err(|e| (item.clone(), e))?;
    let cx = Ctxt::new();
    let args = attr::parse_span_args(&cx, args, target);
    check::check_function(&cx, &args, &function, target);
    cx.check().map_err(|e| (item, e))?;
    Ok((!cfg!(feature = "off")).then_some((function, args)))
}

/// `#[span]`.
pub fn span(args: TokenStream, item: TokenStream) -> Expansion {
    let Some((function, args)) = parse_function(args, item.clone(), Target::Span)? else { return Ok(item) };
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
