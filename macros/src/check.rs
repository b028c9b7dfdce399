//! Every rule that needs more than one argument: the arguments against the
//! function, the app's block as a whole, a derive's fields together.

use proc_macro2::TokenStream;
use syn::{Data, DeriveInput, Fields, ImplItem, ItemImpl, LitStr};

use crate::ast::{Function, Receiver, find_method, is_traced_attribute, receiver};
use crate::attr::{ArgsOption, FieldAttr, SpanArgs, Target};
use crate::ctxt::Ctxt;

pub(crate) fn check_function(cx: &Ctxt, args: &SpanArgs, function: &Function, target: Target) {
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
    if let Some(stream) = &args.stream
        && !function.streams()
    {
        let message = "`stream` needs a fn returning `impl Iterator<Item = ...>` or `impl Stream<Item = ...>` \
                       (or a `Result` of one)";
        match &function.sig.output {
            syn::ReturnType::Type(_, ty) => cx.error_spanned_by(ty, message),
            syn::ReturnType::Default => cx.error_spanned_by(stream, format!("{message}; this one returns nothing")),
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

/// The rules of `#[traced_app]`'s block: an inherent impl, a `setup` that
/// builds the app, a `teardown` that borrows it, one endpoint per path.
pub(crate) fn check_app(cx: &Ctxt, block: &ItemImpl) {
    if let Some((_, path, _)) = &block.trait_ {
        cx.error_spanned_by(
            path,
            "#[traced_app] goes on the app's inherent impl block (`impl MyApp { ... }`), not on a trait impl",
        );
    } else {
        check_lifecycle(cx, block);
    }
    check_endpoint_paths(cx, block);
}

fn check_lifecycle(cx: &Ctxt, block: &ItemImpl) {
    match find_method(block, "setup") {
        None => cx.error_spanned_by(
            &block.self_ty,
            "a #[traced_app] needs `fn setup() -> Self` (or `-> Result<Self, E>`): it builds the app",
        ),
        Some(setup) => {
            if let Some(receiver) = setup.sig.receiver() {
                cx.error_spanned_by(receiver, "`setup` builds the app, so it takes no `self`");
            }
            if let Some(asyncness) = &setup.sig.asyncness {
                cx.error_spanned_by(asyncness, "`setup` runs before serving starts and must not be async");
            }
            if matches!(setup.sig.output, syn::ReturnType::Default) {
                cx.error_spanned_by(&setup.sig.ident, "`setup` returns the app: `-> Self` or `-> Result<Self, E>`");
            }
        }
    }
    if let Some(teardown) = find_method(block, "teardown") {
        match receiver(&teardown.sig) {
            Receiver::Ref | Receiver::RefMut => {}
            Receiver::Value => cx.error_spanned_by(
                teardown.sig.receiver(),
                "`teardown` takes `&self` or `&mut self`: the app outlives it until the process exits",
            ),
            Receiver::None => cx.error_spanned_by(&teardown.sig.ident, "`teardown` takes `&self` or `&mut self`"),
        }
        if let Some(asyncness) = &teardown.sig.asyncness {
            cx.error_spanned_by(asyncness, "`teardown` must not be async: it runs inside the shutdown budget");
        }
    }
}

/// Two endpoints on one path would shadow each other when served.
fn check_endpoint_paths(cx: &Ctxt, block: &ItemImpl) {
    let mut seen: Vec<String> = Vec::new();
    for item in &block.items {
        let ImplItem::Fn(method) = item else { continue };
        for attr in method.attrs.iter().filter(|a| is_traced_attribute(a, "endpoint")) {
            let Ok(path) = attr.parse_args_with(|input: syn::parse::ParseStream| {
                let path: LitStr = input.parse()?;
                let _rest: TokenStream = input.parse()?;
                Ok(path)
            }) else {
                continue;
            };
            if seen.contains(&path.value()) {
                cx.error_spanned_by(&path, format!("another endpoint already serves `{}`", path.value()));
            }
            seen.push(path.value());
        }
    }
}

/// The rules of `#[derive(SpanAttributes)]`: a struct with named fields,
/// options on a field that make sense together, one carrier.
pub(crate) fn check_derive(cx: &Ctxt, input: &DeriveInput, fields: &[(&syn::Field, FieldAttr)]) {
    match &input.data {
        Data::Struct(data) if matches!(data.fields, Fields::Named(_)) => {}
        Data::Struct(_) => cx.error_spanned_by(&input.ident, "SpanAttributes needs a struct with named fields"),
        _ => cx.error_spanned_by(&input.ident, "SpanAttributes can be derived for structs only"),
    }
    let mut carriers = fields.iter().filter(|(field, attr)| attr.carries(&field.ty));
    if carriers.next().is_some() {
        for (field, _) in carriers {
            cx.error_spanned_by(&field.ident, "only one field can carry the trace context");
        }
    }
    for (_, attr) in fields {
        for repeated in &attr.repeated {
            cx.push(syn::Error::new(*repeated, "one #[span_attr(...)] per field: put every option in it"));
        }
        if let Some(skip) = attr.skip
            && (attr.name.is_some() || attr.with.is_some() || attr.redact.is_some())
        {
            cx.push(syn::Error::new(skip, "`skip` leaves the field out: it takes no other option"));
        }
        if let Some(redact) = attr.redact
            && attr.with.is_some()
        {
            cx.push(syn::Error::new(redact, "`redact` records a placeholder: `with` has nothing to compute"));
        }
    }
}
