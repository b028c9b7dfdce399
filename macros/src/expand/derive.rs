//! `#[derive(SpanAttributes)]`: which fields become attributes, under which
//! names, computed how, and which field carries the caller's trace context.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::{Data, DeriveInput, Fields};

use crate::ast::{is_option, plain_name};
use crate::attr::{self, FieldAttr};
use crate::check;
use crate::ctxt::Ctxt;

/// The derive's expansion, and the path to traced that `crate = ...` gave.
pub(crate) fn expand(input: TokenStream) -> (crate::expand::Expansion, Option<syn::Path>) {
    let input: DeriveInput = match syn::parse2(input) {
        Ok(input) => input,
        Err(error) => return (Err((TokenStream::new(), error)), None),
    };
    let cx = Ctxt::new();
    let container = attr::parse_container(&cx, &input);
    (expand_checked(cx, &input, container.all), container.crate_path)
}

fn expand_checked(cx: Ctxt, input: &DeriveInput, all: bool) -> crate::expand::Expansion {
    let fields: Vec<(&syn::Field, FieldAttr)> = match &input.data {
        Data::Struct(data) => match &data.fields {
            Fields::Named(named) => {
                named.named.iter().map(|field| (field, attr::parse_field_attr(&cx, field))).collect()
            }
            _ => Vec::new(),
        },
        _ => Vec::new(),
    };
    check::check_derive(&cx, input, &fields);
    if let Err(error) = cx.check() {
        return Err((fallback(input), error));
    }

    let mut statements = Vec::new();
    let mut carrier = None;
    for (field, attr) in &fields {
        let ident = field.ident.as_ref().expect("named field");
        if attr.carries(&field.ty) {
            carrier = Some((ident, is_option(&field.ty)));
            continue;
        }
        if attr.skip.is_some() || !(all || attr.marked.is_some()) {
            continue;
        }
        let key = attr.name.as_ref().map_or_else(|| plain_name(ident), |(name, _)| name.clone());
        let span = attr.marked.unwrap_or_else(|| ident.span());
        statements.push(if attr.redact.is_some() {
            quote_spanned!(span=> __traced_attrs.push(#key, "[redacted]");)
        } else if let Some(with) = &attr.with {
            quote_spanned!(span=> __traced_attrs.record(#key, &(#with)(&self.#ident));)
        } else {
            quote_spanned!(ident.span()=> __traced_attrs.record(#key, &self.#ident);)
        });
    }

    let attrs_param = if statements.is_empty() { quote!(_) } else { quote!(__traced_attrs) };
    let carrier = carrier.map(|(ident, optional)| {
        let (value, value_mut) = if optional {
            (
                quote!(self.#ident.as_ref()),
                quote!(::core::option::Option::Some(self.#ident.get_or_insert_with(::core::default::Default::default))),
            )
        } else {
            (quote!(::core::option::Option::Some(&self.#ident)), quote!(::core::option::Option::Some(&mut self.#ident)))
        };
        quote! {
            fn carrier(&self) -> ::core::option::Option<&::traced::__private::Carrier> {
                #value
            }
            fn carrier_mut(&mut self) -> ::core::option::Option<&mut ::traced::__private::Carrier> {
                #value_mut
            }
        }
    });
    Ok(impls(
        input,
        &quote! {
            fn span_attributes(&self, #attrs_param: &mut ::traced::__private::Attributes) {
                #(#statements)*
            }
            #carrier
        },
    ))
}

/// `SpanAttributes` with `body`, and `AttrValue` through it.
fn impls(input: &DeriveInput, body: &TokenStream) -> TokenStream {
    let name = &input.ident;
    let (impl_generics, type_generics, where_clause) = input.generics.split_for_impl();
    quote! {
        impl #impl_generics ::traced::__private::SpanAttributes for #name #type_generics #where_clause {
            #body
        }

        impl #impl_generics ::traced::__private::AttrValue for #name #type_generics #where_clause {
            fn record(&self, _key: &'static str, attrs: &mut ::traced::__private::Attributes) {
                ::traced::__private::SpanAttributes::span_attributes(self, attrs);
            }
        }
    }
}

/// What a derive with errors still emits: impls that record nothing, so code
/// using the type as an endpoint input or an argument shows no follow-on
/// errors, only the real one.
fn fallback(input: &DeriveInput) -> TokenStream {
    impls(
        input,
        &quote! {
            fn span_attributes(&self, _: &mut ::traced::__private::Attributes) {}
        },
    )
}
