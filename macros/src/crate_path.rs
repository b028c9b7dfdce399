//! Which crate generated code names. Expansions are written against
//! `::traced`; the crate being compiled may know it under another name: it
//! depends on `traced-core` alone (`#[traced_core::span]`), renames either
//! (`tr = { package = "traced", .. }`), or reaches it through a crate that
//! re-exports it (`crate = path`, serde's convention). The name comes from
//! that option, else from the crate's manifest, `traced` first.

use std::cell::RefCell;

use proc_macro2::{Group, Ident, Punct, Spacing, TokenStream, TokenTree};
use quote::ToTokens as _;

/// What the expansion's `::traced` becomes.
pub(crate) enum CratePath {
    /// `::traced`, as written.
    Traced,
    /// `::NAME`: the manifest's name for it.
    Named(String),
    /// A path given with `crate = ...`.
    Given(syn::Path),
}

/// Takes a `crate = path` (or `crate = "path"`) option out of a macro's
/// arguments; the rest go to the macro's own parser.
pub(crate) fn take_option(args: TokenStream) -> (TokenStream, Result<Option<syn::Path>, syn::Error>) {
    let mut options: Vec<Vec<TokenTree>> = vec![Vec::new()];
    for token in args {
        match &token {
            TokenTree::Punct(comma) if comma.as_char() == ',' => options.push(Vec::new()),
            _ => options.last_mut().map_or((), |option| option.push(token)),
        }
    }
    let mut given = Ok(None);
    let mut rest = TokenStream::new();
    let mut first = true;
    for option in options {
        let names_crate = matches!(option.first(), Some(TokenTree::Ident(word)) if word == "crate")
            && matches!(option.get(1), Some(TokenTree::Punct(equals)) if equals.as_char() == '=');
        if names_crate {
            given = parse_given(&option[2..]);
            continue;
        }
        if !first {
            rest.extend([TokenTree::Punct(Punct::new(',', Spacing::Alone))]);
        }
        first = false;
        rest.extend(option);
    }
    (rest, given)
}

fn parse_given(value: &[TokenTree]) -> Result<Option<syn::Path>, syn::Error> {
    let tokens: TokenStream = value.iter().cloned().collect();
    if let Ok(text) = syn::parse2::<syn::LitStr>(tokens.clone()) {
        return text.parse::<syn::Path>().map(Some);
    }
    syn::parse2::<syn::Path>(tokens.clone())
        .map(Some)
        .map_err(|_| syn::Error::new_spanned(tokens, "expected a path to the traced crate: crate = my_crate::traced"))
}

/// The crate path for this expansion: the option's, else the manifest's.
pub(crate) fn resolve(given: Option<syn::Path>) -> CratePath {
    match given {
        Some(path) => CratePath::Given(path),
        None => match manifest_name() {
            Some(name) => CratePath::Named(name),
            None => CratePath::Traced,
        },
    }
}

/// Rewrites every `::traced` path start in `tokens` to `path`.
pub(crate) fn rename(tokens: TokenStream, path: &CratePath) -> TokenStream {
    if let CratePath::Traced = path {
        return tokens;
    }
    let tokens: Vec<TokenTree> = tokens.into_iter().collect();
    let mut out = TokenStream::new();
    let mut index = 0;
    while index < tokens.len() {
        if let Some(span) = traced_root_at(&tokens, index) {
            match path {
                CratePath::Named(name) => {
                    out.extend(tokens[index..index + 2].iter().cloned());
                    out.extend([TokenTree::Ident(Ident::new(name, span))]);
                }
                CratePath::Given(given) => out.extend(given.to_token_stream()),
                CratePath::Traced => {}
            }
            index += 3;
            continue;
        }
        match &tokens[index] {
            TokenTree::Group(group) => {
                let mut renamed = Group::new(group.delimiter(), rename(group.stream(), path));
                renamed.set_span(group.span());
                out.extend([TokenTree::Group(renamed)]);
            }
            other => out.extend([other.clone()]),
        }
        index += 1;
    }
    out
}

/// `::traced` starting at `index`, not inside a longer path (`a::traced`).
fn traced_root_at(tokens: &[TokenTree], index: usize) -> Option<proc_macro2::Span> {
    let is_colon = |at: usize, spacing: Spacing| matches!(tokens.get(at), Some(TokenTree::Punct(p)) if p.as_char() == ':' && p.spacing() == spacing);
    // After a path segment, `::traced` continues that path; after a
    // keyword (`impl`, `dyn`, `as`, ...) it starts one.
    let after_path = index > 0
        && matches!(&tokens[index - 1], TokenTree::Ident(word) if !KEYWORDS.contains(&word.to_string().as_str()));
    if after_path || !is_colon(index, Spacing::Joint) || !is_colon(index + 1, Spacing::Alone) {
        return None;
    }
    match tokens.get(index + 2) {
        Some(TokenTree::Ident(word)) if word == "traced" => Some(word.span()),
        _ => None,
    }
}

/// The keywords a path may follow (`crate`, `self`, `super` and `Self`
/// are path segments themselves).
const KEYWORDS: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "dyn", "else", "enum", "extern", "fn", "for", "if", "impl",
    "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref", "return", "static", "struct", "trait", "type",
    "unsafe", "use", "where", "while", "yield",
];

thread_local! {
    /// The last manifest read and what it said: one crate's expansions
    /// come one after another.
    static READ: RefCell<Option<(String, Option<String>)>> = const { RefCell::new(None) };
}

/// The name the crate being compiled gives `traced`, else `traced-core`.
/// traced's own doc tests and tests name it `traced`; traced-core's
/// (which see it as an outside crate) `traced_core`.
fn manifest_name() -> Option<String> {
    match std::env::var("CARGO_PKG_NAME").unwrap_or_default().as_str() {
        "traced" => return None,
        "traced-core" => return Some("traced_core".to_string()),
        _ => {}
    }
    let dir = std::env::var("CARGO_MANIFEST_DIR").ok()?;
    if let Some(name) =
        READ.with(|read| read.borrow().as_ref().filter(|(at, _)| *at == dir).map(|(_, name)| name.clone()))
    {
        return name;
    }
    let dir_path = std::path::Path::new(&dir);
    let manifest = std::fs::read_to_string(dir_path.join("Cargo.toml")).unwrap_or_default();
    let mut dependencies = dependencies(&manifest);
    if dependencies.iter().any(|dependency| dependency.inherited) {
        let workspace = workspace_manifest(dir_path).map(|root| dependencies_of_workspace(&root)).unwrap_or_default();
        for dependency in dependencies.iter_mut().filter(|dependency| dependency.inherited) {
            if let Some(declared) = workspace.iter().find(|declared| declared.name == dependency.name) {
                dependency.package.clone_from(&declared.package);
            }
        }
    }
    let name = ["traced", "traced-core"]
        .iter()
        .find_map(|wanted| dependencies.iter().find(|dependency| dependency.package == *wanted))
        .map(|dependency| dependency.name.replace('-', "_"))
        .filter(|name| name != "traced");
    READ.with(|read| *read.borrow_mut() = Some((dir, name.clone())));
    name
}

/// One dependency a manifest declares.
#[derive(Debug)]
struct Dependency {
    /// The table it is in (`dependencies`, `workspace.dependencies`, ...).
    table: String,
    /// Its name in code (before `-` becomes `_`).
    name: String,
    /// The package it names: `package = "..."`, else its name.
    package: String,
    /// `workspace = true`: the workspace's manifest says which package.
    inherited: bool,
}

/// Every dependency a manifest declares: the keys of `[dependencies]`-like
/// tables (dev, build, target and workspace ones too) and
/// `[dependencies.NAME]` tables, with `package = "..."` and
/// `workspace = true` in any of their forms.
fn dependencies(manifest: &str) -> Vec<Dependency> {
    let mut found: Vec<Dependency> = Vec::new();
    let mut table = String::new();
    // Inside a `[dependencies.NAME]` table: its keys are that dependency's.
    let mut in_own_table = false;
    for line in manifest.lines().map(str::trim) {
        if let Some(header) = line.strip_prefix('[').and_then(|line| line.split(']').next()) {
            table = header.trim().to_string();
            in_own_table = false;
            if let Some((head, key)) = table.rsplit_once('.')
                && head.ends_with("dependencies")
            {
                let name = unquoted(key);
                found.push(Dependency { table: head.to_string(), package: name.clone(), name, inherited: false });
                in_own_table = true;
            }
            continue;
        }
        let Some((key, value)) = line.split_once('=') else { continue };
        let (key, value) = (key.trim(), value.trim());
        if in_own_table {
            if let Some(last) = found.last_mut() {
                match unquoted(key).as_str() {
                    "package" => last.package = unquoted(value),
                    "workspace" => last.inherited = value == "true",
                    _ => {}
                }
            }
        } else if table.ends_with("dependencies") {
            // `name.workspace = true`, `name.package = "..."`: dotted keys.
            let (name, field) = match key.split_once('.') {
                Some((name, field)) => (unquoted(name), Some(unquoted(field))),
                None => (unquoted(key), None),
            };
            let known = found.iter().position(|dependency| dependency.table == table && dependency.name == name);
            let index = known.unwrap_or_else(|| {
                found.push(Dependency { table: table.clone(), package: name.clone(), name, inherited: false });
                found.len() - 1
            });
            let dependency = &mut found[index];
            match field.as_deref() {
                None => {
                    if let Some(package) = inline_value(value, "package") {
                        dependency.package = unquoted(package);
                    }
                    dependency.inherited = inline_value(value, "workspace") == Some("true");
                }
                Some("package") => dependency.package = unquoted(value),
                Some("workspace") => dependency.inherited = value == "true",
                Some(_) => {}
            }
        }
    }
    found
}

/// The `[workspace.dependencies]` a member's `workspace = true` refers to.
fn dependencies_of_workspace(manifest: &str) -> Vec<Dependency> {
    dependencies(manifest).into_iter().filter(|dependency| dependency.table == "workspace.dependencies").collect()
}

/// The manifest of the workspace a crate belongs to: the nearest one above
/// (or at) its directory that has a `[workspace]` table.
fn workspace_manifest(crate_dir: &std::path::Path) -> Option<String> {
    crate_dir.ancestors().find_map(|dir| {
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).ok()?;
        manifest.lines().any(|line| line.trim() == "[workspace]").then_some(manifest)
    })
}

/// The value of `key` in an inline table (`{ package = "x", workspace = true }`).
fn inline_value<'a>(value: &'a str, key: &str) -> Option<&'a str> {
    let inner = value.strip_prefix('{')?.trim_end().strip_suffix('}')?;
    inner.split(',').find_map(|pair| {
        let (name, value) = pair.split_once('=')?;
        (name.trim() == key).then(|| value.trim())
    })
}

fn unquoted(text: &str) -> String {
    text.trim().trim_matches('"').trim_matches('\'').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names_and_packages(manifest: &str) -> Vec<(String, String, bool)> {
        dependencies(manifest).into_iter().map(|d| (d.name, d.package, d.inherited)).collect()
    }

    #[test]
    fn dependencies_are_found_under_their_names() {
        let manifest = r#"
[package]
name = "app"

[dependencies]
serde = "1"
tr = { package = "traced", version = "0.1" }
"traced-core" = { path = "../core" }
features-first = { version = "1", features = ["a", "b"], package = "traced" }

[dev-dependencies.tc]
package = "traced-core"
version = "0.1"

[target.'cfg(unix)'.dependencies]
traced = "0.1"
"#;
        let found = names_and_packages(manifest);
        for (name, package) in [
            ("tr", "traced"),
            ("traced-core", "traced-core"),
            ("tc", "traced-core"),
            ("traced", "traced"),
            ("features-first", "traced"),
        ] {
            assert!(found.contains(&(name.to_string(), package.to_string(), false)), "{name} in {found:?}");
        }
    }

    #[test]
    fn a_dependency_the_workspace_declares_takes_the_workspaces_package() {
        let member = r#"
[dependencies]
tr = { workspace = true }
tc.workspace = true

[dev-dependencies.td]
workspace = true
"#;
        let found = names_and_packages(member);
        for name in ["tr", "tc", "td"] {
            assert!(found.contains(&(name.to_string(), name.to_string(), true)), "{name} in {found:?}");
        }
        let root = r#"
[workspace]
members = ["app"]

[workspace.dependencies]
tr = { package = "traced", path = "runtime" }
tc.package = "traced-core"
tc.path = "core"

[workspace.dependencies.td]
package = "traced"
"#;
        let declared: Vec<(String, String)> =
            dependencies_of_workspace(root).into_iter().map(|d| (d.name, d.package)).collect();
        assert_eq!(
            declared,
            [("tr", "traced"), ("tc", "traced-core"), ("td", "traced")].map(|(n, p)| (n.to_string(), p.to_string()))
        );
    }

    #[test]
    fn the_option_is_taken_out_of_the_arguments() {
        let args: TokenStream = "name = \"x\", crate = \"my::traced\", sync".parse().unwrap();
        let (rest, given) = take_option(args);
        assert_eq!(rest.to_string(), "name = \"x\" , sync");
        assert_eq!(given.unwrap().unwrap().to_token_stream().to_string(), "my :: traced");
        let (_, given) = take_option("crate = 3".parse().unwrap());
        assert!(given.is_err());
    }

    #[test]
    fn only_path_roots_are_renamed() {
        let tokens: TokenStream =
            "::traced::f(); a::traced::g(); { ::traced::h() } impl ::traced::T for X {}".parse().unwrap();
        let renamed = rename(tokens, &CratePath::Named("tr".into()));
        assert_eq!(
            renamed.to_string(),
            ":: tr :: f () ; a :: traced :: g () ; { :: tr :: h () } impl :: tr :: T for X { }"
        );
    }
}
