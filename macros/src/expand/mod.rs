//! Code generation, one file per macro, and the body they share.

pub(crate) mod app;
pub(crate) mod body;
pub(crate) mod derive;
pub(crate) mod endpoint;
pub(crate) mod span;

use proc_macro2::TokenStream;

use crate::ast::Function;
use crate::attr::{self, Target};
use crate::check;
use crate::ctxt::Ctxt;

/// What an expansion returns: the new item, or the item as written with the
/// errors to show beside it.
pub(crate) type Expansion = Result<TokenStream, (TokenStream, syn::Error)>;

/// Parses and checks `#[span]` or `#[endpoint]`, collecting every error.
/// `Ok(None)`: the arguments are fine and instrumentation is compiled out.
pub(crate) fn parse_function(
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
