//! Rules that need the arguments and the function together.

use crate::ast::{Function, Receiver, Returns};
use crate::attr::{ArgsOption, SpanArgs, Target};
use crate::ctxt::Ctxt;

pub fn check_function(cx: &Ctxt, args: &SpanArgs, function: &Function, target: Target) {
    let macro_name = match target {
        Target::Span => "#[span]",
        Target::Endpoint => "#[endpoint]",
    };
    if function.body.is_none() {
        cx.error_spanned_by(&function.sig, format!("{macro_name} needs a function with a body"));
    }
    if let Some(constness) = &function.sig.constness {
        cx.error_spanned_by(constness, format!("{macro_name} cannot go on a const fn: spans are made at run time"));
    }
    check_argument_names(cx, args, function);
    if let Some(stream) = &args.stream {
        if let Some(asyncness) = &function.sig.asyncness {
            cx.error_spanned_by(asyncness, "`stream` goes on a fn returning an iterator or a Stream, not an async fn");
        } else if !matches!(function.returns(), Returns::ImplIterator | Returns::ImplStream) {
            let message = "`stream` needs a fn returning `impl Iterator<Item = ...>` or `impl Stream<Item = ...>`";
            match &function.sig.output {
                syn::ReturnType::Type(_, ty) => cx.error_spanned_by(ty, message),
                syn::ReturnType::Default => cx.error_spanned_by(stream, format!("{message}; this one returns nothing")),
            }
        }
    }
    if target == Target::Endpoint && function.receiver() != Receiver::Ref {
        let message = "#[endpoint] goes on a method taking `&self`: requests are served concurrently from one app";
        match function.sig.inputs.first() {
            Some(syn::FnArg::Receiver(receiver)) => cx.error_spanned_by(receiver, message),
            _ => cx.error_spanned_by(&function.sig.ident, message),
        }
    }
    if target == Target::Endpoint {
        let params = function.params();
        if let Some(extra) = params.get(1) {
            cx.error_spanned_by(extra.pat, "an endpoint takes one input (its JSON body); put more fields in that type");
        }
        if let Some(input) = params.first()
            && input.ident.is_none()
        {
            cx.error_spanned_by(input.pat, "name the endpoint's input: `input: Input`");
        }
    }
}

fn check_argument_names(cx: &Ctxt, args: &SpanArgs, function: &Function) {
    let params = function.params();
    let has = |name: &syn::Ident| params.iter().any(|param| param.ident == Some(name));
    if let Some(ArgsOption::Named(names)) = &args.args {
        for name in names {
            if name == "self" {
                cx.error_spanned_by(
                    name,
                    "`self` cannot be captured; record what you need with attrs(key = self.field)",
                );
            } else if !has(name) {
                cx.error_spanned_by(name, format!("no parameter named `{name}`"));
            } else if names.iter().filter(|other| *other == name).count() > 1 {
                cx.error_spanned_by(name, format!("`{name}` is listed twice"));
            }
        }
    }
    for name in &args.skip {
        if !has(name) {
            cx.error_spanned_by(name, format!("no parameter named `{name}` to skip"));
        }
    }
    match &args.args {
        None => {
            if let Some(first) = args.skip.first() {
                cx.error_spanned_by(first, "skip(...) only applies with `args`: nothing is captured without it");
            }
        }
        Some(ArgsOption::Named(names)) => {
            for name in args.skip.iter().filter(|skip| names.contains(skip)) {
                cx.error_spanned_by(name, format!("`{name}` is both captured and skipped"));
            }
        }
        Some(ArgsOption::All) => {}
    }
}
