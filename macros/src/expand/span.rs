//! `#[span]`: a span around any fn or method, sync or async, child of the
//! current one.

use proc_macro2::TokenStream;

use crate::attr::Target;
use crate::expand::body::{Parent, Plan, emit};
use crate::expand::{Expansion, parse_function};

pub(crate) fn expand(args: TokenStream, item: TokenStream) -> Expansion {
    let Some((function, args)) = parse_function(args, item.clone(), Target::Span)? else { return Ok(item) };
    let plan = Plan {
        function: &function,
        name: Plan::default_name(&args, &function),
        kind: args.kind,
        parent: Parent::Current,
        args: &args,
        flush_on_failure: false,
    };
    Ok(emit(&function, plan.body()))
}
