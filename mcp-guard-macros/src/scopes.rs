//! `scopes!`: the scope catalogue. Syntax in `parse`, checks in `validate`, output in `expand`.

use std::collections::{HashMap, HashSet};

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{Attribute, Ident, LitStr, Token, Visibility, braced, bracketed};

use crate::diag::{Errors, did_you_mean, scope_grammar_error};

/// The name of the `macro_rules!` the catalogue defines for `#[protected]` to call back.
pub(crate) const CALLBACK: &str = "mcp_guard_scope_catalogue";

pub(crate) struct Catalogue {
    docs: Vec<Attribute>,
    vis: Visibility,
    name: Ident,
    entries: Vec<Entry>,
}

struct Entry {
    docs: Vec<Attribute>,
    baseline: bool,
    advertised: bool,
    name: Ident,
    scope: LitStr,
    implies: Vec<Ident>,
}

impl Parse for Catalogue {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let docs = input.call(Attribute::parse_outer)?;
        let vis: Visibility = input.parse()?;
        let name: Ident = input.parse()?;
        let content;
        braced!(content in input);
        let entries = Punctuated::<Entry, Token![,]>::parse_terminated(&content)?;
        Ok(Self {
            docs,
            vis,
            name,
            entries: entries.into_iter().collect(),
        })
    }
}

impl Parse for Entry {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let attrs = input.call(Attribute::parse_outer)?;
        let mut docs = Vec::new();
        let mut baseline = false;
        let mut advertised = false;
        for attr in attrs {
            if attr.path().is_ident("doc") {
                docs.push(attr);
                continue;
            }
            let (flag, name) = if attr.path().is_ident("baseline") {
                (&mut baseline, "baseline")
            } else if attr.path().is_ident("advertised") {
                (&mut advertised, "advertised")
            } else {
                return Err(syn::Error::new_spanned(
                    attr.path(),
                    "unsupported attribute on a scope; expected `#[baseline]`, `#[advertised]` or doc comments",
                ));
            };
            if !matches!(attr.meta, syn::Meta::Path(_)) {
                return Err(syn::Error::new_spanned(
                    &attr.meta,
                    format!("`#[{name}]` takes no arguments"),
                ));
            }
            if *flag {
                return Err(syn::Error::new_spanned(
                    attr,
                    format!("duplicate `#[{name}]`"),
                ));
            }
            *flag = true;
        }
        let name: Ident = input.parse()?;
        input.parse::<Token![=]>()?;
        let scope: LitStr = input.parse()?;
        let mut implies = Vec::new();
        if input.peek(Token![=>]) {
            input.parse::<Token![=>]>()?;
            let list;
            bracketed!(list in input);
            implies = Punctuated::<Ident, Token![,]>::parse_terminated(&list)?
                .into_iter()
                .collect();
        }
        Ok(Self {
            docs,
            baseline,
            advertised,
            name,
            scope,
            implies,
        })
    }
}

/// Every error in the catalogue, collected: grammar, duplicate names and strings, unknown
/// implied names, cycles.
pub(crate) fn validate(cat: &Catalogue) -> syn::Result<()> {
    let mut errors = Errors::default();
    let mut names = HashMap::new();
    let mut strings = HashSet::new();
    for e in &cat.entries {
        if let Err(msg) = scope_grammar_error(&e.scope.value()) {
            errors.push(syn::Error::new(e.scope.span(), msg));
        }
        if e.scope.value() == "offline_access" && (e.baseline || e.advertised) {
            errors.push(syn::Error::new(
                e.scope.span(),
                "`offline_access` is never advertised or asked for in challenges (MCP 2026-07-28, SEP-2207); drop `#[baseline]` / `#[advertised]`",
            ));
        }
        if names.insert(e.name.to_string(), e).is_some() {
            errors.push(syn::Error::new(
                e.name.span(),
                format!("duplicate scope name `{}`", e.name),
            ));
        }
        if !strings.insert(e.scope.value()) {
            errors.push(syn::Error::new(
                e.scope.span(),
                format!(
                    "duplicate scope `{}`; each scope is declared once",
                    e.scope.value()
                ),
            ));
        }
    }
    let declared: Vec<String> = cat.entries.iter().map(|e| e.name.to_string()).collect();
    for e in &cat.entries {
        for i in &e.implies {
            if !names.contains_key(&i.to_string()) {
                errors.push(syn::Error::new(
                    i.span(),
                    format!(
                        "unknown scope `{i}` in implications; declared scopes are {}{}",
                        list(&declared),
                        did_you_mean(&i.to_string(), &declared)
                    ),
                ));
            } else if *i == e.name {
                errors.push(syn::Error::new(
                    i.span(),
                    format!("scope `{i}` cannot imply itself"),
                ));
            }
        }
    }
    if errors.is_empty() {
        // Cycles: depth-first search over names.
        for start in &cat.entries {
            let mut stack: Vec<&Ident> = start.implies.iter().collect();
            let mut seen = HashSet::new();
            while let Some(n) = stack.pop() {
                if *n == start.name {
                    errors.push(syn::Error::new(
                        start.name.span(),
                        format!(
                            "scope `{}` implies itself through a cycle of implications",
                            start.name
                        ),
                    ));
                    break;
                }
                if seen.insert(n.to_string())
                    && let Some(next) = names.get(&n.to_string())
                {
                    stack.extend(next.implies.iter());
                }
            }
        }
    }
    errors.finish()
}

fn list(items: &[String]) -> String {
    items
        .iter()
        .map(|i| format!("`{i}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) fn expand(cat: &Catalogue) -> TokenStream {
    let Catalogue {
        docs,
        vis,
        name,
        entries,
    } = cat;
    // After a duplicate-name error, emit each name once so that no second error follows.
    let mut seen = HashSet::new();
    let entries: Vec<&Entry> = entries
        .iter()
        .filter(|e| seen.insert(e.name.to_string()))
        .collect();
    let strings: HashMap<String, &LitStr> = entries
        .iter()
        .map(|e| (e.name.to_string(), &e.scope))
        .collect();
    let consts = entries.iter().map(|e| {
        let (docs, ident, scope) = (&e.docs, &e.name, &e.scope);
        quote! {
            #(#docs)*
            pub const #ident: ::mcp_guard::__private::Scope = ::mcp_guard::__private::Scope::new_unchecked(#scope);
        }
    });
    let records = entries.iter().map(|e| {
        let scope = &e.scope;
        let doc = doc_text(&e.docs);
        let implies = e.implies.iter().filter_map(|i| strings.get(&i.to_string()));
        let (baseline, advertised) = (e.baseline, e.advertised);
        quote! {
            ::mcp_guard::__private::CatalogueEntry {
                scope: #scope,
                doc: #doc,
                implies: &[#(#implies),*],
                baseline: #baseline,
                advertised: #advertised,
            }
        }
    });
    let callback = Ident::new(CALLBACK, Span::call_site());
    let scope_strings = entries.iter().map(|e| &e.scope);
    let scope_names = entries.iter().map(|e| &e.name);
    quote! {
        #(#docs)*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #vis struct #name;

        impl #name {
            #(#consts)*
        }

        impl ::mcp_guard::__private::ScopeCatalogue for #name {
            const ENTRIES: &'static [::mcp_guard::__private::CatalogueEntry] = &[#(#records),*];
        }

        #[doc(hidden)]
        #[allow(unused_macros)]
        macro_rules! #callback {
            ($($input:tt)*) => {
                ::mcp_guard::__private::protected_expand! {
                    [#((#scope_strings, #scope_names))*] $($input)*
                }
            };
        }

        #[doc(hidden)]
        #[allow(unused_imports)]
        pub(crate) use #callback;
    }
}

/// The text of `///` comments, lines trimmed and joined with spaces.
pub(crate) fn doc_text(docs: &[Attribute]) -> String {
    docs.iter()
        .filter_map(|a| match &a.meta {
            syn::Meta::NameValue(nv) => match &nv.value {
                syn::Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Str(s),
                    ..
                }) => Some(s.value().trim().to_owned()),
                _ => None,
            },
            _ => None,
        })
        .collect::<Vec<_>>()
        .join(" ")
        .trim()
        .to_owned()
}
