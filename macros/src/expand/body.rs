//! The body every instrumented function gets: make the span, run the user's
//! body inside it, record the outcome, return. `#[endpoint]` and
//! `#[traced_app]` reuse it with another parent.

use proc_macro2::{Ident, Span, TokenStream};
use quote::{quote, quote_spanned};

use crate::ast::{Function, Returns, plain_name};
use crate::attr::{AiKind, ArgsOption, SpanArgs, SpanKind};

/// Where the span's parent comes from.
pub(crate) enum Parent<'a> {
    /// The current span; with links when given.
    Current,
    /// A request: remote headers, else the input's carrier.
    Request { input: Option<&'a Ident> },
    /// A trace of its own.
    Root,
}

/// Everything expansion needs, decided from the arguments and the function.
pub(crate) struct Plan<'a> {
    pub function: &'a Function,
    pub name: String,
    pub kind: Option<SpanKind>,
    pub parent: Parent<'a>,
    pub args: &'a SpanArgs,
    pub flush_on_failure: bool,
}

impl Plan<'_> {
    /// The span's name: the option, else the function's name.
    pub(crate) fn default_name(args: &SpanArgs, function: &Function) -> String {
        args.name.as_ref().map_or_else(|| plain_name(&function.sig.ident), |n| n.value())
    }

    fn meta(&self) -> TokenStream {
        let name = &self.name;
        let mut meta = quote!(::traced::__private::Meta::new(#name));
        if let Some(kind) = self.kind.filter(|kind| *kind != SpanKind::Internal) {
            let kind = Ident::new(kind.variant(), Span::call_site());
            meta.extend(quote!(.kind(::traced::__private::Kind::#kind)));
        }
        if let Some(kind) = self.args.ai_kind.filter(|kind| *kind != AiKind::Chain) {
            let kind = Ident::new(kind.variant(), Span::call_site());
            meta.extend(quote!(.ai_kind(::traced::__private::AiKind::#kind)));
        }
        if self.args.sync.is_some() {
            meta.extend(quote!(.device_sync()));
        }
        if self.flush_on_failure {
            meta.extend(quote!(.flush_on_failure()));
        }
        meta
    }

    /// Statements adding `attrs(...)` and `args(...)` to `__traced_attrs`.
    fn attribute_statements(&self) -> Vec<TokenStream> {
        let mut statements: Vec<TokenStream> = self
            .args
            .attrs
            .iter()
            .map(|kv| {
                let key = &kv.key;
                let value = &kv.value;
                quote_spanned!(kv.key_span=> __traced_attrs.record(#key, &(#value));)
            })
            .collect();
        let params = self.function.params();
        let captured: Vec<&Ident> = match &self.args.args {
            None => Vec::new(),
            Some(ArgsOption::Named(names)) => names.iter().collect(),
            Some(ArgsOption::All) => {
                params.iter().filter_map(|p| p.ident).filter(|ident| !self.args.skip.contains(ident)).collect()
            }
        };
        for ident in captured {
            let key = plain_name(ident);
            statements.push(quote_spanned!(ident.span()=> __traced_attrs.record(#key, &#ident);));
        }
        statements
    }

    fn handle(&self) -> TokenStream {
        let meta = self.meta();
        let statements = self.attribute_statements();
        let attrs = if statements.is_empty() {
            quote!(|_| {})
        } else {
            quote!(|__traced_attrs: &mut ::traced::__private::Attributes| { #(#statements)* })
        };
        match &self.parent {
            // A sync fn's span starts and ends around one call on one thread:
            // traced's own span core records it.
            Parent::Current
                if self.args.links.is_empty() && self.function.sig.asyncness.is_none() && !self.streams() =>
            {
                // The metadata is a constant: nothing is written before the
                // enabled check.
                quote!(::traced::__private::SpanHandle::scoped(const { &#meta }, #attrs))
            }
            Parent::Current if self.args.links.is_empty() => {
                quote!(::traced::__private::SpanHandle::new(#meta, #attrs))
            }
            Parent::Current => {
                let links = &self.args.links;
                quote!(::traced::__private::SpanHandle::linked(
                    #meta,
                    || ::traced::__private::links([#(&(#links) as &dyn ::traced::__private::IntoLink),*]),
                    #attrs,
                ))
            }
            Parent::Root => quote!(::traced::__private::SpanHandle::root(#meta)),
            Parent::Request { input: None } => {
                quote!(::traced::__private::SpanHandle::request(#meta, ::core::option::Option::None, #attrs))
            }
            Parent::Request { input: Some(input) } => quote!({
                use ::traced::__private::input::*;
                let __traced_input = &&::traced::__private::input::Input(&#input);
                ::traced::__private::SpanHandle::request(
                    #meta,
                    __traced_input.__traced_carrier(),
                    |__traced_attrs: &mut ::traced::__private::Attributes| {
                        __traced_input.__traced_attributes(__traced_attrs);
                        #(#statements)*
                    },
                )
            }),
        }
    }

    /// `#[span(stream)]`, or an endpoint that answers as it goes: the span
    /// lives as long as the iterator or `Stream` returned.
    pub(crate) fn streams(&self) -> bool {
        self.args.stream.is_some() || (matches!(self.parent, Parent::Request { .. }) && self.function.streams())
    }

    /// `metrics`: a timer for the stage's duration histogram, first in the
    /// body so that it ends last.
    fn stage_timer(&self) -> TokenStream {
        if self.args.metrics.is_none() {
            return TokenStream::new();
        }
        let name = &self.name;
        quote!(let __traced_stage = ::traced::__private::StageTimer::start(#name);)
    }

    /// The new function body, braces included.
    pub(crate) fn body(&self) -> TokenStream {
        let handle = self.handle();
        let stage = self.stage_timer();
        let block = self.function.body.as_ref().map_or_else(|| quote!({}), |b| quote!(#b));
        let returns = self.function.returns();
        let ty = match &self.function.sig.output {
            syn::ReturnType::Type(_, ty) if returns == Returns::Named => Some(ty),
            _ => None,
        };
        let run = if self.function.sig.asyncness.is_some() {
            let ty = ty.map(|ty| quote!(::<#ty, _>));
            quote!(__traced_span.run #ty (async move #block).await)
        } else {
            let ty = ty.map(|ty| quote!(::<#ty, _>));
            quote!(__traced_span.call #ty (move || #block))
        };
        if self.streams() {
            let events = self.args.item_events;
            let wrap = if matches!(returns, Returns::ResultImplIterator | Returns::ResultImplStream) {
                quote!({
                    use ::traced::__private::outcome::*;
                    (&&&&&&&::traced::__private::outcome::Outcome(&__traced_ret)).__traced_record(&__traced_span);
                    ::traced::__private::Spanned::new_ok(__traced_started, __traced_span, __traced_ret, #events)
                })
            } else {
                quote!(::traced::__private::Spanned::new(__traced_started, __traced_span, __traced_ret, #events))
            };
            // The time to the first item counts from the call, not from the
            // return of the iterator.
            return quote!({
                #stage
                let __traced_started = ::std::time::Instant::now();
                let __traced_span = #handle;
                let __traced_ret = #run;
                #wrap
            });
        }
        if returns == Returns::Unit {
            // A statement, not a tail: its temporaries (which borrow the span)
            // must go before the span does, in every edition.
            return quote!({
                #stage
                let __traced_span = #handle;
                #run;
            });
        }
        quote!({
            #stage
            let __traced_span = #handle;
            let __traced_ret = #run;
            {
                use ::traced::__private::outcome::*;
                (&&&&&&&::traced::__private::outcome::Outcome(&__traced_ret)).__traced_record(&__traced_span);
            }
            __traced_ret
        })
    }
}

/// The function with its body replaced; everything else re-emitted as is.
///
/// The new body's braces take the original body's span: an item whose last
/// token comes from the macro counts as macro-made, and rustc then stops
/// reporting it as dead code.
pub(crate) fn emit(function: &Function, body: TokenStream) -> TokenStream {
    let attrs = &function.attrs;
    let vis = &function.vis;
    let sig = &function.sig;
    let body = match (syn::parse2::<proc_macro2::Group>(body.clone()), &function.body) {
        (Ok(generated), Some(original)) => {
            let mut group = proc_macro2::Group::new(proc_macro2::Delimiter::Brace, generated.stream());
            group.set_span(original.span());
            quote!(#group)
        }
        _ => body,
    };
    quote!(#(#attrs)* #vis #sig #body)
}
