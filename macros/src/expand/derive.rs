//! `#[derive(SpanAttributes)]`: which fields become attributes, under which
//! names, computed how, and which field carries the caller's trace context.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::ext::IdentExt as _;
use syn::parse::ParseStream;
use syn::{Data, DeriveInput, Fields, Ident, Token, Type};

use crate::attr::{comma_separated, parse_key};
use crate::ctxt::Ctxt;

const FIELD_OPTIONS: &str = "name, with, redact, skip, carrier";

/// One field's `#[span_attr(...)]`.
#[derive(Default)]
struct FieldAttr {
    marked: Option<Span>,
    name: Option<(String, Span)>,
    with: Option<syn::Expr>,
    redact: bool,
    skip: Option<Span>,
    carrier: bool,
}

pub fn expand(input: TokenStream) -> crate::expand::Expansion {
    let input: DeriveInput = syn::parse2(input).map_err(|e| (TokenStream::new(), e))?;
    let cx = Ctxt::new();
    let all = container_all(&cx, &input);
    let fields = match &input.data {
        Data::Struct(data) => match &data.fields {
            Fields::Named(named) => named.named.iter().collect(),
            _ => {
                cx.error_spanned_by(&input.ident, "SpanAttributes needs a struct with named fields");
                Vec::new()
            }
        },
        _ => {
            cx.error_spanned_by(&input.ident, "SpanAttributes can be derived for structs only");
            Vec::new()
        }
    };
    let mut statements = Vec::new();
    let mut carrier = None;
    for field in fields {
        let ident = field.ident.as_ref().expect("named field");
        let attr = field_attr(&cx, field);
        let carries = attr.carrier || (attr.marked.is_none() && is_carrier(&field.ty));
        if carries {
            if carrier.is_some() {
                cx.error_spanned_by(ident, "only one field can carry the trace context");
            }
            carrier = Some((ident, is_option(&field.ty)));
            continue;
        }
        if attr.skip.is_some() || !(all || attr.marked.is_some()) {
            continue;
        }
        let key = attr.name.as_ref().map_or_else(|| ident.unraw().to_string(), |(name, _)| name.clone());
        let span = attr.marked.unwrap_or_else(|| ident.span());
        statements.push(if attr.redact {
            quote_spanned!(span=> __traced_attrs.push(#key, "[redacted]");)
        } else if let Some(with) = &attr.with {
            quote_spanned!(span=> __traced_attrs.record(#key, &(#with)(&self.#ident));)
        } else {
            quote_spanned!(ident.span()=> __traced_attrs.record(#key, &self.#ident);)
        });
    }
    cx.check().map_err(|e| (TokenStream::new(), e))?;

    let name = &input.ident;
    let (impl_generics, type_generics, where_clause) = input.generics.split_for_impl();
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
    Ok(quote! {
        impl #impl_generics ::traced::__private::SpanAttributes for #name #type_generics #where_clause {
            fn span_attributes(&self, #attrs_param: &mut ::traced::__private::Attributes) {
                #(#statements)*
            }
            #carrier
        }

        impl #impl_generics ::traced::__private::AttrValue for #name #type_generics #where_clause {
            fn record(&self, _key: &'static str, attrs: &mut ::traced::__private::Attributes) {
                ::traced::__private::SpanAttributes::span_attributes(self, attrs);
            }
        }
    })
}

/// `#[span_attrs(all)]`: every field unless skipped.
fn container_all(cx: &Ctxt, input: &DeriveInput) -> bool {
    let mut all = false;
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("span_attrs")) {
        let result = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("all") {
                all = true;
                Ok(())
            } else {
                Err(meta.error("unknown option; expected: all"))
            }
        });
        if let Err(error) = result {
            cx.push(error);
        }
    }
    all
}

fn field_attr(cx: &Ctxt, field: &syn::Field) -> FieldAttr {
    let mut parsed = FieldAttr::default();
    for attr in field.attrs.iter().filter(|a| a.path().is_ident("span_attr")) {
        if parsed.marked.is_some() {
            cx.error_spanned_by(attr, "one #[span_attr(...)] per field: put every option in it");
            continue;
        }
        parsed.marked = Some(attr.path().segments[0].ident.span());
        if matches!(attr.meta, syn::Meta::Path(_)) {
            continue;
        }
        let result = attr.parse_args_with(|input: ParseStream| {
            comma_separated(input, |input| {
                let word = input.call(Ident::parse_any)?;
                match word.to_string().as_str() {
                    "name" => {
                        input.parse::<Token![=]>()?;
                        parsed.name = Some(parse_key(input)?);
                    }
                    "with" => {
                        input.parse::<Token![=]>()?;
                        parsed.with = Some(input.parse()?);
                    }
                    "redact" => parsed.redact = true,
                    "skip" => parsed.skip = Some(word.span()),
                    "carrier" => parsed.carrier = true,
                    _ => {
                        cx.error_spanned_by(
                            &word,
                            format!("unknown option `{word}`; expected one of: {FIELD_OPTIONS}"),
                        );
                        while !input.is_empty() && !input.peek(Token![,]) {
                            input.parse::<proc_macro2::TokenTree>()?;
                        }
                    }
                }
                Ok(())
            })
        });
        if let Err(error) = result {
            cx.push(error);
        }
    }
    if let Some(skip) = parsed.skip
        && (parsed.name.is_some() || parsed.with.is_some() || parsed.redact)
    {
        cx.push(syn::Error::new(skip, "`skip` leaves the field out: it takes no other option"));
    }
    if parsed.redact && parsed.with.is_some() {
        cx.error_spanned_by(field.ident.as_ref(), "`redact` records a placeholder: `with` has nothing to compute");
    }
    parsed
}

fn last_segment(ty: &Type) -> Option<&syn::PathSegment> {
    match ty {
        Type::Path(path) => path.path.segments.last(),
        _ => None,
    }
}

fn is_carrier(ty: &Type) -> bool {
    match last_segment(ty) {
        Some(segment) if segment.ident == "Carrier" => true,
        Some(segment) if segment.ident == "Option" => option_inner(segment).is_some_and(is_carrier),
        _ => false,
    }
}

fn is_option(ty: &Type) -> bool {
    last_segment(ty).is_some_and(|s| s.ident == "Option")
}

fn option_inner(segment: &syn::PathSegment) -> Option<&Type> {
    match &segment.arguments {
        syn::PathArguments::AngleBracketed(args) => args.args.iter().find_map(|arg| match arg {
            syn::GenericArgument::Type(ty) => Some(ty),
            _ => None,
        }),
        _ => None,
    }
}
