//! The annotated function as typed parts borrowed from the input: what the
//! checks ask about and what expansion re-emits unchanged.

use proc_macro2::{Group, TokenStream};
use syn::ext::IdentExt as _;
use syn::parse::{Parse, ParseStream};
use syn::{
    Attribute, FnArg, Ident, ImplItem, ImplItemFn, ItemImpl, Pat, ReturnType, Signature, Token, Type, TypeParamBound,
    Visibility,
};

/// A function whose body is kept as raw tokens: a body that does not parse
/// (half-typed code in an IDE) still expands.
pub(crate) struct Function {
    pub attrs: Vec<Attribute>,
    pub vis: Visibility,
    pub sig: Signature,
    pub body: Option<Group>,
    pub semi: Option<Token![;]>,
}

impl Parse for Function {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let attrs = input.call(Attribute::parse_outer)?;
        let vis = input.parse()?;
        let sig = input.parse()?;
        if input.peek(Token![;]) {
            return Ok(Function { attrs, vis, sig, body: None, semi: Some(input.parse()?) });
        }
        let body: Group = input.parse()?;
        if body.delimiter() != proc_macro2::Delimiter::Brace {
            return Err(syn::Error::new(body.span(), "expected a function body"));
        }
        Ok(Function { attrs, vis, sig, body: Some(body), semi: None })
    }
}

impl quote::ToTokens for Function {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        for attr in &self.attrs {
            attr.to_tokens(tokens);
        }
        self.vis.to_tokens(tokens);
        self.sig.to_tokens(tokens);
        self.body.to_tokens(tokens);
        self.semi.to_tokens(tokens);
    }
}

/// How a method takes `self`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Receiver {
    None,
    Ref,
    RefMut,
    Value,
}

/// A typed parameter other than `self`.
pub(crate) struct Param<'a> {
    /// The name, when the pattern is a plain identifier.
    pub ident: Option<&'a Ident>,
    pub pat: &'a Pat,
}

/// What the function returns, as far as the macros care.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Returns {
    Unit,
    /// A nameable type: the body closure can be annotated with it.
    Named,
    /// `impl Iterator<...>`.
    ImplIterator,
    /// `impl Stream<...>`.
    ImplStream,
    /// `Result<impl Iterator<...>, E>`: an error before the first item.
    ResultImplIterator,
    /// `Result<impl Stream<...>, E>`.
    ResultImplStream,
    /// Some other `impl Trait`: left to inference.
    ImplOther,
}

/// An identifier as users read it: `r#type` is `type`.
pub(crate) fn plain_name(ident: &Ident) -> String {
    ident.unraw().to_string()
}

/// How `sig` takes `self`.
pub(crate) fn receiver(sig: &Signature) -> Receiver {
    match sig.inputs.first() {
        Some(FnArg::Receiver(receiver)) => match (&receiver.reference, &receiver.mutability) {
            (Some(_), Some(_)) => Receiver::RefMut,
            (Some(_), None) => Receiver::Ref,
            (None, _) => match receiver.ty.as_ref() {
                Type::Reference(reference) if reference.mutability.is_some() => Receiver::RefMut,
                Type::Reference(_) => Receiver::Ref,
                _ => Receiver::Value,
            },
        },
        _ => Receiver::None,
    }
}

impl Function {
    pub(crate) fn receiver(&self) -> Receiver {
        receiver(&self.sig)
    }

    pub(crate) fn params(&self) -> Vec<Param<'_>> {
        self.sig
            .inputs
            .iter()
            .filter_map(|arg| match arg {
                FnArg::Typed(typed) => Some(Param {
                    ident: match typed.pat.as_ref() {
                        Pat::Ident(pat) if pat.subpat.is_none() => Some(&pat.ident),
                        _ => None,
                    },
                    pat: &typed.pat,
                }),
                FnArg::Receiver(_) => None,
            })
            .collect()
    }

    pub(crate) fn returns(&self) -> Returns {
        returns(&self.sig)
    }

    /// True when the function returns an iterator or a `Stream`, bare or in
    /// the `Ok` of a `Result`.
    pub(crate) fn streams(&self) -> bool {
        self.returns().streams()
    }
}

impl Returns {
    pub(crate) fn streams(self) -> bool {
        matches!(
            self,
            Returns::ImplIterator | Returns::ImplStream | Returns::ResultImplIterator | Returns::ResultImplStream
        )
    }
}

/// What `sig` returns, as far as the macros care.
pub(crate) fn returns(sig: &Signature) -> Returns {
    let ReturnType::Type(_, ty) = &sig.output else { return Returns::Unit };
    match ty.as_ref() {
        Type::ImplTrait(bounds) => impl_returns(bounds),
        Type::Tuple(tuple) if tuple.elems.is_empty() => Returns::Unit,
        Type::Path(path) if path.path.segments.last().is_some_and(|s| s.ident == "Result") => {
            match path.path.segments.last().and_then(option_inner) {
                Some(Type::ImplTrait(bounds)) => match impl_returns(bounds) {
                    Returns::ImplIterator => Returns::ResultImplIterator,
                    Returns::ImplStream => Returns::ResultImplStream,
                    _ => Returns::ImplOther,
                },
                Some(other) if contains_impl(other) => Returns::ImplOther,
                _ if contains_impl(ty) => Returns::ImplOther,
                _ => Returns::Named,
            }
        }
        other if contains_impl(other) => Returns::ImplOther,
        _ => Returns::Named,
    }
}

fn impl_returns(bounds: &syn::TypeImplTrait) -> Returns {
    let named = |names: &[&str]| {
        bounds.bounds.iter().any(|bound| match bound {
            TypeParamBound::Trait(t) => {
                t.path.segments.last().is_some_and(|s| names.contains(&s.ident.to_string().as_str()))
            }
            _ => false,
        })
    };
    if named(&["Iterator", "DoubleEndedIterator", "ExactSizeIterator", "FusedIterator"]) {
        Returns::ImplIterator
    } else if named(&["Stream"]) {
        Returns::ImplStream
    } else {
        Returns::ImplOther
    }
}

/// `impl Trait` nested anywhere (`Box<impl Fn()>`, `(impl A, B)`) rules out
/// naming the type elsewhere.
fn contains_impl(ty: &Type) -> bool {
    quote::ToTokens::to_token_stream(ty).into_iter().any(|token| is_impl(&token))
}

fn is_impl(token: &proc_macro2::TokenTree) -> bool {
    match token {
        proc_macro2::TokenTree::Ident(ident) => ident == "impl",
        proc_macro2::TokenTree::Group(group) => group.stream().into_iter().any(|t| is_impl(&t)),
        _ => false,
    }
}

/// The method of an impl block with this name.
pub(crate) fn find_method<'a>(block: &'a ItemImpl, name: &str) -> Option<&'a ImplItemFn> {
    block.items.iter().find_map(|item| match item {
        ImplItem::Fn(method) if method.sig.ident == name => Some(method),
        _ => None,
    })
}

/// `#[name]` or `#[traced::name]`.
pub(crate) fn is_traced_attribute(attr: &Attribute, name: &str) -> bool {
    let segments = &attr.path().segments;
    segments.last().is_some_and(|s| s.ident == name)
        && (segments.len() == 1 || (segments.len() == 2 && segments[0].ident == "traced"))
}

fn last_segment(ty: &Type) -> Option<&syn::PathSegment> {
    match ty {
        Type::Path(path) => path.path.segments.last(),
        _ => None,
    }
}

/// `Carrier`, `traced::Carrier` or an `Option` of one.
pub(crate) fn is_carrier(ty: &Type) -> bool {
    match last_segment(ty) {
        Some(segment) if segment.ident == "Carrier" => true,
        Some(segment) if segment.ident == "Option" => option_inner(segment).is_some_and(is_carrier),
        _ => false,
    }
}

pub(crate) fn is_option(ty: &Type) -> bool {
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
