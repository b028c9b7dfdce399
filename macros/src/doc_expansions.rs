//! The expansions the macros' documentation shows, checked against what the
//! macros emit for the documentation's own examples: each example is read
//! from the doc comment, expanded by the same code the macro runs, and
//! compared token by token with the expansion written under it, so that the
//! two cannot drift apart.

use proc_macro2::TokenStream;

const LIB: &str = include_str!("lib.rs");

/// The doc comment of the item whose declaration starts with `declaration`,
/// its `///` prefixes removed.
fn docs_of(declaration: &str) -> Vec<&'static str> {
    let lines: Vec<&str> = LIB.lines().collect();
    let at = lines.iter().position(|line| line.starts_with(declaration)).expect("the declaration");
    let mut docs: Vec<&str> = lines[..at]
        .iter()
        .rev()
        .skip_while(|line| line.starts_with("#["))
        .take_while(|line| line.starts_with("///"))
        .map(|line| line.strip_prefix("/// ").unwrap_or(line.trim_start_matches("///")))
        .collect();
    docs.reverse();
    docs
}

/// The code blocks of `docs` with their info strings, in order.
fn blocks(docs: &[&str]) -> Vec<(String, Vec<String>)> {
    let mut blocks = Vec::new();
    let mut open: Option<(String, Vec<String>)> = None;
    for line in docs {
        match (line.strip_prefix("```"), open.take()) {
            (Some(info), None) => open = Some((info.to_string(), Vec::new())),
            (Some(_), Some(block)) => blocks.push(block),
            (None, Some((info, mut body))) => {
                body.push((*line).to_string());
                open = Some((info, body));
            }
            (None, None) => {}
        }
    }
    blocks
}

/// The example (the first Rust block) and the expansion shown (the first
/// `text` block) of one macro's documentation.
fn example_and_expansion(declaration: &str) -> (Vec<String>, String) {
    let blocks = blocks(&docs_of(declaration));
    let example = blocks.iter().find(|(info, _)| info.is_empty()).expect("an example").1.clone();
    let shown = blocks.iter().find(|(info, _)| info == "text").expect("an expansion").1.join("\n");
    (example, shown)
}

/// Tokens as one string without whitespace: how `proc_macro2` spaces
/// joint punctuation (`&& &` or `&&&`) is not what is compared.
fn tokens(text: &str) -> String {
    let parsed = text.parse::<TokenStream>().unwrap_or_else(|error| panic!("not Rust tokens ({error}): {text}"));
    squeezed(&parsed.to_string())
}

fn squeezed(text: &str) -> String {
    text.chars().filter(|c| !c.is_whitespace()).collect()
}

/// The attribute's arguments on `line` (`#[NAME(ARGS)]`), and the item from
/// the next line through the first line that is `}` at the attribute's
/// indentation.
fn annotated_item(example: &[String], attribute: &str) -> (String, String) {
    let at = example.iter().position(|line| line.trim_start().starts_with(attribute)).expect("the attribute");
    let line = example[at].trim_start();
    let indent = &example[at][..example[at].len() - line.len()];
    let args = line.strip_prefix(attribute).and_then(|rest| rest.strip_suffix(")]")).expect("#[NAME(ARGS)]");
    let end = at + example[at..].iter().position(|line| *line == format!("{indent}}}")).expect("the item's end");
    (args.to_string(), example[at + 1..=end].join("\n"))
}

fn expanded(result: crate::Expansion) -> String {
    match result {
        Ok(expansion) => squeezed(&expansion.to_string()),
        Err((_, error)) => panic!("the example does not expand: {error}"),
    }
}

#[test]
fn the_span_docs_show_what_span_emits() {
    let (example, shown) = example_and_expansion("pub fn span(");
    let (args, item) = annotated_item(&example, "#[span(");
    let emitted = expanded(crate::expand::span::expand(args.parse().unwrap(), item.parse().unwrap()));
    assert_eq!(emitted, tokens(&shown), "update the expansion in `span`'s docs");
}

#[test]
fn the_endpoint_docs_show_the_span_endpoint_emits() {
    let (example, shown) = example_and_expansion("pub fn endpoint(");
    let (args, item) = annotated_item(&example, "#[traced::endpoint(");
    let emitted = expanded(crate::expand::endpoint::expand(args.parse().unwrap(), item.parse().unwrap()));
    assert!(emitted.contains(&tokens(&shown)), "update the expansion in `endpoint`'s docs: it emits {emitted}");
}

#[test]
fn the_derive_docs_show_the_impl_it_emits() {
    let (example, shown) = example_and_expansion("pub fn derive_span_attributes(");
    let start = example.iter().position(|line| line.starts_with("#[derive(SpanAttributes)]")).expect("the derive");
    let end = start + example[start..].iter().position(|line| line == "}").expect("the struct's end");
    let input = example[start + 1..=end].join("\n");
    let emitted = expanded(crate::expand::derive::expand(input.parse().unwrap()).0);
    assert!(emitted.contains(&tokens(&shown)), "update the expansion in the derive's docs: it emits {emitted}");
}
