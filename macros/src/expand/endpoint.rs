//! `#[endpoint("/path")]`: a Server span that roots a request's trace in the
//! caller's, around a method taking `&self` and one input.

use proc_macro2::TokenStream;

use crate::attr::{SpanKind, Target};
use crate::expand::body::{Parent, Plan, emit};
use crate::expand::{Expansion, parse_function};

pub(crate) fn expand(args: TokenStream, item: TokenStream) -> Expansion {
    let Some((function, args)) = parse_function(args, item.clone(), Target::Endpoint)? else { return Ok(item) };
    let params = function.params();
    let plan = Plan {
        function: &function,
        name: Plan::default_name(&args, &function),
        kind: Some(SpanKind::Server),
        parent: Parent::Request { input: params.first().and_then(|p| p.ident) },
        args: &args,
        flush_on_failure: false,
    };
    Ok(emit(&function, plan.body()))
}
