//! Short names in generated code: the lowerers write every runtime item by
//! its full path (`::agentd_runtime::graph::NodeMeta`), which is unambiguous
//! wherever the tokens land; this pass turns those paths into a `use` block at
//! the top of the generated module and short names below it, the form of
//! `agentd-runtime/tests/hand_wired/hello.rs`.
//!
//! Owns only the renaming, on tokens (no syntax tree needed: a full path is
//! `::` + one of [`CRATES`] + `::`-separated identifiers). It never changes
//! what a path resolves to: a name is shortened only when exactly one full
//! path in the module has it and no other identifier in the module is
//! spelled the same (an item, a local, a handler function reached through
//! the `agentd!` module's `use super::*`); everything else keeps its full
//! path. Macro calls and their arguments are left alone.

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

use proc_macro2::{Delimiter, Group, Ident, Punct, Spacing, TokenStream, TokenTree};

/// The crates whose paths are shortened.
const CRATES: &[&str] = &["agentd_runtime", "core", "std"];

/// Keywords that may come right before a full path (`&'static ::x::Y`,
/// `as ::x::Y`): an identifier before `::` that is not one of these
/// continues a path instead of starting one.
const STARTERS: &[&str] = &[
    "as", "const", "dyn", "else", "for", "if", "impl", "in", "let", "match", "move", "mut", "ref",
    "return", "static", "where", "while", "break", "unsafe",
];

/// `tokens` (a whole generated module) with a `use` block and short names.
pub fn shorten(tokens: TokenStream) -> TokenStream {
    let mut reserved = BTreeSet::new();
    let mut found = BTreeSet::new();
    scan(tokens.clone(), &mut reserved, &mut found);
    // One full path per short name, or the name stays long everywhere.
    let mut by_name: BTreeMap<&str, BTreeSet<&Vec<String>>> = BTreeMap::new();
    for import in &found {
        if let Some(name) = import.last() {
            by_name.entry(name).or_default().insert(import);
        }
    }
    let chosen: BTreeSet<Vec<String>> = by_name
        .into_iter()
        .filter(|(name, paths)| paths.len() == 1 && !reserved.contains(*name))
        .flat_map(|(_, paths)| paths.into_iter().cloned())
        .collect();
    if chosen.is_empty() {
        return tokens;
    }

    // `use ::a::b::{C, D};`, one line per module, sorted.
    let mut groups: BTreeMap<&[String], Vec<&str>> = BTreeMap::new();
    for path in &chosen {
        if let Some((name, parent)) = path.split_last() {
            groups.entry(parent).or_default().push(name);
        }
    }
    let mut uses = String::new();
    for (parent, names) in groups {
        match names.as_slice() {
            [one] => uses.push_str(&format!("use ::{}::{one};\n", parent.join("::"))),
            _ => uses.push_str(&format!(
                "use ::{}::{{{}}};\n",
                parent.join("::"),
                names.join(", ")
            )),
        }
    }
    let Ok(uses) = TokenStream::from_str(&uses) else {
        return tokens;
    };

    let body: Vec<TokenTree> = rewrite(tokens, &chosen).into_iter().collect();
    // After the module's inner attributes (`#![...]`).
    let mut at = 0;
    while let [
        TokenTree::Punct(hash),
        TokenTree::Punct(bang),
        TokenTree::Group(g),
        ..,
    ] = &body[at..]
        && hash.as_char() == '#'
        && bang.as_char() == '!'
        && g.delimiter() == Delimiter::Bracket
    {
        at += 3;
    }
    let mut out = TokenStream::new();
    out.extend(body[..at].iter().cloned());
    out.extend(uses);
    out.extend(body[at..].iter().cloned());
    out
}

/// A full path starting at `t[i]`: its segment identifiers and where it ends.
fn full_path(t: &[TokenTree], i: usize) -> Option<(Vec<&Ident>, usize)> {
    let is_sep = |j: usize| {
        matches!(
            (t.get(j), t.get(j + 1)),
            (Some(TokenTree::Punct(a)), Some(TokenTree::Punct(b)))
                if a.as_char() == ':' && a.spacing() == Spacing::Joint && b.as_char() == ':'
        )
    };
    if !is_sep(i) {
        return None;
    }
    // `a::b`: the `::` continues a path.
    if let Some(TokenTree::Ident(prev)) = i.checked_sub(1).and_then(|p| t.get(p))
        && !STARTERS.contains(&prev.to_string().as_str())
    {
        return None;
    }
    let Some(TokenTree::Ident(krate)) = t.get(i + 2) else {
        return None;
    };
    if !CRATES.contains(&krate.to_string().as_str()) {
        return None;
    }
    let mut segs = vec![krate];
    let mut j = i + 3;
    while is_sep(j) {
        let Some(TokenTree::Ident(next)) = t.get(j + 2) else {
            break;
        };
        segs.push(next);
        j += 3;
    }
    Some((segs, j))
}

/// Whether `t[j]` is the `!` of a macro call.
fn is_bang(t: &[TokenTree], j: usize) -> bool {
    matches!(t.get(j), Some(TokenTree::Punct(p)) if p.as_char() == '!')
}

/// Every identifier outside full paths into `reserved`; every importable
/// full path (outside macro calls) into `found`.
fn scan(tokens: TokenStream, reserved: &mut BTreeSet<String>, found: &mut BTreeSet<Vec<String>>) {
    let t: Vec<TokenTree> = tokens.into_iter().collect();
    let mut i = 0;
    while i < t.len() {
        if let Some((segs, end)) = full_path(&t, i) {
            let names: Vec<String> = segs.iter().map(ToString::to_string).collect();
            if is_bang(&t, end) {
                reserved.extend(names);
            } else if let Some((import, _)) = split(&names) {
                found.insert(import);
            }
            i = end;
            continue;
        }
        match &t[i] {
            TokenTree::Ident(id) => {
                reserved.insert(id.to_string());
            }
            TokenTree::Group(g) => {
                if i > 0 && is_bang(&t, i - 1) {
                    // A macro's arguments: names only, never rewritten.
                    scan_names(g.stream(), reserved);
                } else {
                    scan(g.stream(), reserved, found);
                }
            }
            _ => {}
        }
        i += 1;
    }
}

fn scan_names(tokens: TokenStream, reserved: &mut BTreeSet<String>) {
    for tt in tokens {
        match tt {
            TokenTree::Ident(id) => {
                reserved.insert(id.to_string());
            }
            TokenTree::Group(g) => scan_names(g.stream(), reserved),
            _ => {}
        }
    }
}

/// `krate::module::Item::Rest` → (the import `krate::module::Item`, how many
/// segments the short form keeps: `Item::Rest` is 2). `None` for a bare crate.
fn split(names: &[String]) -> Option<(Vec<String>, usize)> {
    if names.len() < 2 {
        return None;
    }
    // `Option::Some`, `Result::Ok`: the variants themselves, as the prelude has them.
    let variant = matches!(
        names
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .as_slice(),
        ["core", "option", "Option", "Some" | "None"] | ["core", "result", "Result", "Ok" | "Err"]
    );
    // The item is the first segment that is not a module (modules are snake_case);
    // a path of modules only ends in a function.
    let item = if variant {
        names.len() - 1
    } else {
        names
            .iter()
            .position(|n| n.starts_with(|c: char| c.is_ascii_uppercase()))
            .unwrap_or(names.len() - 1)
    };
    (item > 0).then(|| (names[..=item].to_vec(), names.len() - item))
}

fn rewrite(tokens: TokenStream, chosen: &BTreeSet<Vec<String>>) -> TokenStream {
    let t: Vec<TokenTree> = tokens.into_iter().collect();
    let mut out = TokenStream::new();
    let mut i = 0;
    while i < t.len() {
        if let Some((segs, end)) = full_path(&t, i) {
            let names: Vec<String> = segs.iter().map(ToString::to_string).collect();
            match split(&names) {
                Some((import, keep)) if !is_bang(&t, end) && chosen.contains(&import) => {
                    let kept = &segs[segs.len() - keep..];
                    for (n, seg) in kept.iter().enumerate() {
                        if n > 0 {
                            out.extend([
                                TokenTree::Punct(Punct::new(':', Spacing::Joint)),
                                TokenTree::Punct(Punct::new(':', Spacing::Alone)),
                            ]);
                        }
                        out.extend([TokenTree::Ident((*seg).clone())]);
                    }
                }
                _ => out.extend(t[i..end].iter().cloned()),
            }
            i = end;
            continue;
        }
        match &t[i] {
            TokenTree::Group(g) if !(i > 0 && is_bang(&t, i - 1)) => {
                let mut inner = Group::new(g.delimiter(), rewrite(g.stream(), chosen));
                inner.set_span(g.span());
                out.extend([TokenTree::Group(inner)]);
            }
            other => out.extend([other.clone()]),
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use quote::quote;

    use super::shorten;

    fn pretty(tokens: proc_macro2::TokenStream) -> String {
        crate::codegen::pretty(&shorten(tokens))
    }

    #[test]
    fn full_runtime_paths_become_a_use_block_and_short_names() {
        let out = pretty(quote! {
            static WHO: ::agentd_runtime::nodes::env::ReadEnv = ::agentd_runtime::nodes::env::ReadEnv {
                kind: ::agentd_runtime::graph::Kind::ReadEnv,
                next: ::core::option::Option::Some(::agentd_runtime::graph::NodeIdx(1)),
                none: ::core::option::Option::None,
            };
            fn run(cx: &mut ::agentd_runtime::context::Cx<'_>) {
                ::agentd_runtime::nodes::env::read_env(cx, &WHO)
            }
        });
        assert!(
            out.contains("use ::agentd_runtime::graph::{Kind, NodeIdx};"),
            "{out}"
        );
        assert!(
            out.contains("use ::agentd_runtime::nodes::env::{ReadEnv, read_env};"),
            "{out}"
        );
        assert!(
            out.contains("use ::core::option::Option::{None, Some};"),
            "{out}"
        );
        assert!(out.contains("static WHO: ReadEnv = ReadEnv {"), "{out}");
        assert!(out.contains("kind: Kind::ReadEnv,"), "{out}");
        assert!(out.contains("next: Some(NodeIdx(1)),"), "{out}");
        assert!(out.contains("read_env(cx, &WHO)"), "{out}");
        assert!(!out.contains("::agentd_runtime::graph::Kind::"), "{out}");
    }

    #[test]
    fn a_name_two_paths_share_or_a_local_name_takes_stays_long() {
        let out = pretty(quote! {
            static A: ::agentd_runtime::nodes::compose::Map = X;
            static B: ::agentd_runtime::nodes::data::Map = Y;
            fn f() { read_env(); ::agentd_runtime::nodes::env::read_env() }
            struct Policy;
            static P: ::agentd_runtime::policy::Policy = Z;
        });
        assert!(
            out.contains("::agentd_runtime::nodes::compose::Map"),
            "{out}"
        );
        assert!(out.contains("::agentd_runtime::nodes::data::Map"), "{out}");
        assert!(
            out.contains("::agentd_runtime::nodes::env::read_env()"),
            "{out}"
        );
        assert!(
            out.contains("static P: ::agentd_runtime::policy::Policy"),
            "{out}"
        );
        assert!(!out.contains("use "), "{out}");
    }

    #[test]
    fn macro_calls_keep_their_full_paths_and_arguments() {
        let out = pretty(quote! {
            #![allow(unused_imports)]
            static D: &::agentd_runtime::WorkflowDef = <P as ::agentd_runtime::Workflow>::DEF;
            ::agentd_runtime::__agentd_require_feature!("fs", ::agentd_runtime::graph::Kind);
        });
        assert!(out.contains("<P as Workflow>::DEF"), "{out}");
        assert!(
            out.contains("::agentd_runtime::__agentd_require_feature!"),
            "{out}"
        );
        assert!(out.contains("::agentd_runtime::graph::Kind)"), "{out}");
        assert!(out.contains("static D: &WorkflowDef"), "{out}");
        // The `use` block comes after the inner attributes.
        let attr = out.find("#![allow(unused_imports)]").unwrap_or(usize::MAX);
        let uses = out
            .find("use ::agentd_runtime::{Workflow, WorkflowDef};")
            .unwrap_or(0);
        assert!(attr < uses, "{out}");
    }
}
