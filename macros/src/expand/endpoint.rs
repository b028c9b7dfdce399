//! `#[endpoint("/path")]`: a Server span that roots a request's trace in the
//! caller's, around a method taking `&self` and one input.

use proc_macro2::TokenStream;

use crate::ast::Function;
use crate::attr::{self, Target};
use crate::check;
use crate::ctxt::Ctxt;
use crate::expand::span::{Parent, Plan, emit};

pub fn expand(args: TokenStream, item: TokenStream) -> Result<TokenStream, (TokenStream, syn::Error)> {
    let function: Function = syn::parse2(item.clone()).map_err(|e| (item.clone(), e))?;
    let cx = Ctxt::new();
    let args = attr::parse_span_args(&cx, args, Target::Endpoint);
    check::check_function(&cx, &args, &function, Target::Endpoint);
    cx.check().map_err(|e| (item, e))?;
    if cfg!(feature = "off") {
        return Ok(quote::quote!(#function));
    }
    let params = function.params();
    let plan = Plan {
        function: &function,
        name: Plan::default_name(&args, &function),
        kind: Some("Server"),
        parent: Parent::Request { input: params.first().and_then(|p| p.ident) },
        args: &args,
        flush_on_failure: false,
    };
    Ok(emit(&function, plan.body()))
}
