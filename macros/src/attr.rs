//! The arguments of `#[span]`, `#[endpoint]` and `#[traced_app]`, parsed into
//! typed structs. Each option keeps the token that named it, so a later check
//! can underline the right word.

use proc_macro2::{Span, TokenStream};
use syn::ext::IdentExt as _;
use syn::parse::{ParseStream, Parser as _};
use syn::punctuated::Punctuated;
use syn::{Expr, Ident, LitStr, Token};

use crate::ctxt::Ctxt;

/// Every option each macro takes: the one list parsing, checking and the
/// error messages read.
const SPAN_OPTIONS: &[&str] =
    &["name", "kind", "ai_kind", "attrs", "args", "skip", "links", "follows_from", "stream", "sync", "metrics"];
const ENDPOINT_OPTIONS: &[&str] = &["name", "ai_kind", "attrs", "sync", "stream"];
const APP_OPTIONS: &[&str] = &["service"];
const STREAM_OPTIONS: &[&str] = &["events"];
const FIELD_OPTIONS: &[&str] = &["name", "with", "redact", "skip", "carrier"];
const CONTAINER_OPTIONS: &[&str] = &["all", "crate"];

/// A span's kind as `kind = ...` names it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum SpanKind {
    Internal,
    Server,
    Client,
    Producer,
    Consumer,
}

const KINDS: &[(&str, SpanKind)] = &[
    ("internal", SpanKind::Internal),
    ("server", SpanKind::Server),
    ("client", SpanKind::Client),
    ("producer", SpanKind::Producer),
    ("consumer", SpanKind::Consumer),
];

/// What an AI span does, as OpenInference names it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum AiKind {
    Llm,
    Embedding,
    Chain,
    Tool,
    Retriever,
    Reranker,
    Agent,
    Guardrail,
    Evaluator,
}

const AI_KINDS: &[(&str, AiKind)] = &[
    ("llm", AiKind::Llm),
    ("embedding", AiKind::Embedding),
    ("chain", AiKind::Chain),
    ("tool", AiKind::Tool),
    ("retriever", AiKind::Retriever),
    ("reranker", AiKind::Reranker),
    ("agent", AiKind::Agent),
    ("guardrail", AiKind::Guardrail),
    ("evaluator", AiKind::Evaluator),
];

impl AiKind {
    /// The variant of `traced::__private::AiKind` it becomes.
    pub(crate) fn variant(self) -> &'static str {
        match self {
            AiKind::Llm => "Llm",
            AiKind::Embedding => "Embedding",
            AiKind::Chain => "Chain",
            AiKind::Tool => "Tool",
            AiKind::Retriever => "Retriever",
            AiKind::Reranker => "Reranker",
            AiKind::Agent => "Agent",
            AiKind::Guardrail => "Guardrail",
            AiKind::Evaluator => "Evaluator",
        }
    }
}

impl SpanKind {
    /// The variant of `traced::__private::Kind` it becomes.
    pub(crate) fn variant(self) -> &'static str {
        match self {
            SpanKind::Internal => "Internal",
            SpanKind::Server => "Server",
            SpanKind::Client => "Client",
            SpanKind::Producer => "Producer",
            SpanKind::Consumer => "Consumer",
        }
    }
}

/// `a, b, c`, for "expected one of" messages.
fn listed(options: &[&str]) -> String {
    options.join(", ")
}

/// One `key = value` of `attrs(...)`; the key may be a string or dotted words.
pub(crate) struct AttrKv {
    pub key: String,
    pub key_span: Span,
    pub value: Expr,
}

/// `args`, or `args(a, b)`.
pub(crate) enum ArgsOption {
    All,
    Named(Vec<Ident>),
}

/// Everything `#[span(...)]` accepts; `#[endpoint]` uses a subset.
#[derive(Default)]
pub(crate) struct SpanArgs {
    pub name: Option<LitStr>,
    pub kind: Option<SpanKind>,
    pub ai_kind: Option<AiKind>,
    pub attrs: Vec<AttrKv>,
    pub args: Option<ArgsOption>,
    pub skip: Vec<Ident>,
    pub links: Vec<Expr>,
    pub stream: Option<Ident>,
    pub item_events: bool,
    pub sync: Option<Ident>,
    /// `metrics`: the stage's duration histogram.
    pub metrics: Option<Ident>,
    /// `#[endpoint]` only: the route.
    pub path: Option<LitStr>,
}

/// Which macro the arguments belong to: they accept different options.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    Span,
    Endpoint,
}

/// Parses every option, reporting each bad or repeated one, and returns what
/// could be understood.
pub(crate) fn parse_span_args(cx: &Ctxt, tokens: TokenStream, target: Target) -> SpanArgs {
    let mut args = SpanArgs::default();
    let mut seen: Vec<String> = Vec::new();
    let mut first = true;
    let parser = |input: ParseStream| {
        comma_separated(input, |input| {
            parse_span_option(cx, input, target, &mut args, &mut seen, first);
            first = false;
            Ok(())
        })
    };
    if let Err(error) = parser.parse2(tokens) {
        cx.push(error);
    }
    if target == Target::Endpoint && args.path.is_none() {
        cx.push(syn::Error::new(Span::call_site(), "#[endpoint] needs a path: #[endpoint(\"/\")]"));
    }
    args
}

fn duplicate(cx: &Ctxt, seen: &mut Vec<String>, word: &Ident) -> bool {
    let name = word.to_string();
    if seen.contains(&name) {
        cx.error_spanned_by(word, format!("duplicate option `{name}`"));
        return true;
    }
    seen.push(name);
    false
}

fn parse_span_option(
    cx: &Ctxt,
    input: ParseStream,
    target: Target,
    args: &mut SpanArgs,
    seen: &mut Vec<String>,
    first: bool,
) {
    if input.peek(LitStr) {
        let Ok(literal) = input.parse::<LitStr>() else { return };
        match target {
            Target::Endpoint if first => args.path = Some(check_path(cx, literal)),
            Target::Span if first => args.name = Some(literal),
            _ => cx.error_spanned_by(&literal, "a bare string comes first; name other values: name = \"...\""),
        }
        return;
    }
    let word = match input.call(Ident::parse_any) {
        Ok(word) => word,
        Err(error) => {
            cx.push(error);
            skip_to_comma(input);
            return;
        }
    };
    let (known, allowed) = match target {
        Target::Span => (SPAN_OPTIONS, listed(SPAN_OPTIONS)),
        Target::Endpoint => (ENDPOINT_OPTIONS, format!("a path (\"/\"), {}", listed(ENDPOINT_OPTIONS))),
    };
    if !known.contains(&word.to_string().as_str()) {
        cx.error_spanned_by(&word, format!("unknown option `{word}`; expected one of: {allowed}"));
        skip_to_comma(input);
        return;
    }
    // `links` and `follows_from` are one list: each may appear once.
    if duplicate(cx, seen, &word) {
        skip_to_comma(input);
        return;
    }
    let result = match word.to_string().as_str() {
        "name" => parse_value::<LitStr>(input).map(|name| args.name = Some(name)),
        "kind" => parse_choice(cx, input, KINDS, "span kind").map(|kind| args.kind = kind),
        "ai_kind" => parse_choice(cx, input, AI_KINDS, "AI kind").map(|kind| args.ai_kind = kind),
        "attrs" => parse_attrs(cx, input).map(|attrs| args.attrs = attrs),
        "args" => {
            if input.peek(syn::token::Paren) {
                parse_idents(input).map(|names| args.args = Some(ArgsOption::Named(names)))
            } else {
                args.args = Some(ArgsOption::All);
                Ok(())
            }
        }
        "skip" => parse_idents(input).map(|names| args.skip = names),
        "links" | "follows_from" => parse_exprs(input).map(|exprs| args.links.extend(exprs)),
        "stream" => {
            args.stream = Some(word.clone());
            if input.peek(syn::token::Paren) {
                parse_idents(input).map(|words| {
                    for w in words {
                        if w == "events" {
                            args.item_events = true;
                        } else {
                            let expected = listed(STREAM_OPTIONS);
                            cx.error_spanned_by(&w, format!("unknown stream option `{w}`; expected: {expected}"));
                        }
                    }
                })
            } else {
                Ok(())
            }
        }
        "sync" => {
            args.sync = Some(word.clone());
            Ok(())
        }
        "metrics" => {
            args.metrics = Some(word.clone());
            Ok(())
        }
        _ => Ok(()),
    };
    if let Err(error) = result {
        cx.push(error);
        skip_to_comma(input);
    }
}

/// `= word`, one of the names in `table`; an unknown one is reported at the
/// word, naming the ones there are.
fn parse_choice<T: Copy>(cx: &Ctxt, input: ParseStream, table: &[(&str, T)], what: &str) -> syn::Result<Option<T>> {
    let word = parse_value::<Ident>(input)?;
    let found = table.iter().find(|(name, _)| word == name).map(|(_, value)| *value);
    if found.is_none() {
        let names: Vec<&str> = table.iter().map(|(name, _)| *name).collect();
        cx.error_spanned_by(&word, format!("unknown {what} `{word}`; expected one of: {}", listed(&names)));
    }
    Ok(found)
}

fn check_path(cx: &Ctxt, path: LitStr) -> LitStr {
    let value = path.value();
    if !value.starts_with('/') {
        cx.error_spanned_by(&path, "an endpoint path starts with `/`");
    } else if value.contains(char::is_whitespace) {
        cx.error_spanned_by(&path, "an endpoint path has no whitespace");
    }
    path
}

/// Calls `each` for every comma-separated option.
pub(crate) fn comma_separated(
    input: ParseStream,
    mut each: impl FnMut(ParseStream) -> syn::Result<()>,
) -> syn::Result<()> {
    while !input.is_empty() {
        each(input)?;
        if input.is_empty() {
            break;
        }
        input.parse::<Token![,]>()?;
    }
    Ok(())
}

/// Moves past a bad option so the next one can still be checked.
fn skip_to_comma(input: ParseStream) {
    while !input.is_empty() && !input.peek(Token![,]) {
        let _ = input.parse::<proc_macro2::TokenTree>();
    }
}

fn parse_value<T: syn::parse::Parse>(input: ParseStream) -> syn::Result<T> {
    input.parse::<Token![=]>()?;
    input.parse()
}

fn parse_idents(input: ParseStream) -> syn::Result<Vec<Ident>> {
    let content;
    syn::parenthesized!(content in input);
    let list = Punctuated::<Ident, Token![,]>::parse_terminated_with(&content, Ident::parse_any)?;
    Ok(list.into_iter().collect())
}

fn parse_exprs(input: ParseStream) -> syn::Result<Vec<Expr>> {
    let content;
    syn::parenthesized!(content in input);
    let list = Punctuated::<Expr, Token![,]>::parse_terminated(&content)?;
    Ok(list.into_iter().collect())
}

fn parse_attrs(cx: &Ctxt, input: ParseStream) -> syn::Result<Vec<AttrKv>> {
    let content;
    syn::parenthesized!(content in input);
    let mut attrs: Vec<AttrKv> = Vec::new();
    comma_separated(&content, |content| {
        let (key, key_span) = parse_key(content)?;
        content.parse::<Token![=]>()?;
        let value: Expr = content.parse()?;
        if attrs.iter().any(|existing| existing.key == key) {
            cx.push(syn::Error::new(key_span, format!("duplicate attribute `{key}`")));
        }
        attrs.push(AttrKv { key, key_span, value });
        Ok(())
    })?;
    Ok(attrs)
}

/// `"model.name"`, `model.name` or `steps`.
pub(crate) fn parse_key(input: ParseStream) -> syn::Result<(String, Span)> {
    if input.peek(LitStr) {
        let literal: LitStr = input.parse()?;
        if literal.value().is_empty() {
            return Err(syn::Error::new(literal.span(), "an attribute key cannot be empty"));
        }
        return Ok((literal.value(), literal.span()));
    }
    let first = input.call(Ident::parse_any)?;
    let mut key = first.to_string();
    let span = first.span();
    while input.peek(Token![.]) {
        input.parse::<Token![.]>()?;
        let next = input.call(Ident::parse_any)?;
        key.push('.');
        key.push_str(&next.to_string());
    }
    Ok((key, span))
}

/// `#[traced_app(service = "...")]`.
#[derive(Default)]
pub(crate) struct AppArgs {
    pub service: Option<LitStr>,
}

pub(crate) fn parse_app_args(cx: &Ctxt, tokens: TokenStream) -> AppArgs {
    let mut args = AppArgs::default();
    let mut seen = Vec::new();
    let parser = |input: ParseStream| {
        comma_separated(input, |input| {
            let word = input.call(Ident::parse_any)?;
            if !APP_OPTIONS.contains(&word.to_string().as_str()) {
                cx.error_spanned_by(&word, format!("unknown option `{word}`; expected: {}", listed(APP_OPTIONS)));
                skip_to_comma(input);
            } else if !duplicate(cx, &mut seen, &word) {
                let service = parse_value::<LitStr>(input)?;
                if service.value().trim().is_empty() {
                    cx.error_spanned_by(&service, "the service name cannot be empty");
                }
                args.service = Some(service);
            } else {
                skip_to_comma(input);
            }
            Ok(())
        })
    };
    if let Err(error) = parser.parse2(tokens) {
        cx.push(error);
    }
    args
}

/// One field's `#[span_attr(...)]`, each option with the span of its word.
#[derive(Default)]
pub(crate) struct FieldAttr {
    /// Where `#[span_attr]` was written, when it was.
    pub marked: Option<Span>,
    pub name: Option<(String, Span)>,
    pub with: Option<Expr>,
    pub redact: Option<Span>,
    pub skip: Option<Span>,
    pub carrier: bool,
    /// A second `#[span_attr]` on the same field.
    pub repeated: Vec<Span>,
}

pub(crate) fn parse_field_attr(cx: &Ctxt, field: &syn::Field) -> FieldAttr {
    let mut parsed = FieldAttr::default();
    for attr in field.attrs.iter().filter(|a| a.path().is_ident("span_attr")) {
        let word = attr.path().segments[0].ident.span();
        if parsed.marked.is_some() {
            parsed.repeated.push(word);
            continue;
        }
        parsed.marked = Some(word);
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
                    "with" => parsed.with = Some(parse_value(input)?),
                    "redact" => parsed.redact = Some(word.span()),
                    "skip" => parsed.skip = Some(word.span()),
                    "carrier" => parsed.carrier = true,
                    _ => {
                        let expected = listed(FIELD_OPTIONS);
                        cx.error_spanned_by(&word, format!("unknown option `{word}`; expected one of: {expected}"));
                        skip_to_comma(input);
                    }
                }
                Ok(())
            })
        });
        if let Err(error) = result {
            cx.push(error);
        }
    }
    parsed
}

impl FieldAttr {
    /// This field is the trace context an endpoint continues: marked so, or
    /// of type `Carrier` and not marked otherwise.
    pub(crate) fn carries(&self, ty: &syn::Type) -> bool {
        self.carrier || (self.marked.is_none() && crate::ast::is_carrier(ty))
    }
}

/// The options of `#[span_attrs(...)]` on the struct.
#[derive(Default)]
pub(crate) struct ContainerAttr {
    /// `all`: every field unless skipped.
    pub(crate) all: bool,
    /// `crate = path`: the path generated code names traced by.
    pub(crate) crate_path: Option<syn::Path>,
}

pub(crate) fn parse_container(cx: &Ctxt, input: &syn::DeriveInput) -> ContainerAttr {
    let mut parsed = ContainerAttr::default();
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("span_attrs")) {
        let result = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("all") {
                parsed.all = true;
                Ok(())
            } else if meta.path.is_ident("crate") {
                let value = meta.value()?;
                let path = if value.peek(LitStr) {
                    value.parse::<LitStr>().and_then(|text| text.parse::<syn::Path>())
                } else {
                    value.parse::<syn::Path>()
                };
                parsed.crate_path = Some(path.map_err(|error| {
                    syn::Error::new(error.span(), "expected a path to the traced crate: crate = my_crate::traced")
                })?);
                Ok(())
            } else {
                Err(meta.error(format!("unknown option; expected: {}", listed(CONTAINER_OPTIONS))))
            }
        });
        if let Err(error) = result {
            cx.push(error);
        }
    }
    parsed
}
