//! `#[protected(...)]` and `#[public]` on rmcp `#[tool]` / `#[prompt]` methods.
//!
//! `#[protected]` runs in two stages. The attribute checks the item's shape and hands it to
//! the scope catalogue's callback macro (declared by `scopes!`), which calls
//! `protected_expand!` with the declared scopes, so that every scope is checked against the
//! catalogue at compile time. `protected_expand!` parses the arguments (`parse`), checks them
//! into a model of the operation (`validate`, `model`) and emits the method from it (`expand`).

use proc_macro2::TokenStream;
use quote::quote;
use syn::{Attribute, Ident};

mod condition;
pub(crate) mod expand;
pub(crate) mod model;
pub(crate) mod parse;
pub(crate) mod validate;
#[cfg(test)]
mod validate_tests;

pub(crate) use parse::Stage2;

/// Stage one of `#[protected]`: shape checks, then the catalogue callback.
pub(crate) fn protected(attr: TokenStream, item: TokenStream) -> TokenStream {
    match validate::stage_one(item.clone()) {
        Ok(()) => expand::handover(attr, item),
        Err(e) => with_item(e, item),
    }
}

/// `#[public]`: the operation needs no token; advertised as `{"type":"noauth"}`.
pub(crate) fn public(attr: TokenStream, item: TokenStream) -> TokenStream {
    match validate::public(&attr, item.clone()) {
        Ok(model) => expand::public(&model),
        Err(e) => with_item(e, item),
    }
}

/// Stage two of `#[protected]` (`protected_expand!`), called back by the catalogue.
pub(crate) fn expand_stage2(input: Stage2) -> TokenStream {
    let item = input.item.clone();
    match validate::protected(input) {
        Ok(model) => expand::protected(&model),
        Err(e) => with_item(e, item),
    }
}

/// The item unchanged plus the error, so the IDE keeps working and no cascade follows.
pub(crate) fn with_item(e: syn::Error, item: TokenStream) -> TokenStream {
    let err = e.to_compile_error();
    quote! { #err #item }
}

/// Whether the attribute is `#[name]` under any path (`#[rmcp::tool]` too).
pub(crate) fn last_segment_is(attr: &Attribute, name: &str) -> bool {
    attr.path().segments.last().is_some_and(|s| s.ident == name)
}

/// The associated constant holding a method's declaration, which `#[protected]` emits and
/// `#[guarded]` collects.
pub(crate) fn requirement_const(method: &Ident) -> Ident {
    quote::format_ident!("__mcp_guard_requirement_{}", method)
}

/// The stand-in for a missing catalogue's callback: `{ attr } { item } { konst }` becomes an
/// error spanned at the user's own attribute arguments (so no macro name is shown), the
/// method unchanged and its requirement constant.
pub(crate) fn missing_catalogue(input: TokenStream) -> TokenStream {
    let mut groups = input.into_iter().filter_map(|t| match t {
        proc_macro2::TokenTree::Group(g) => Some(g),
        _ => None,
    });
    let (Some(attr), Some(item)) = (groups.next(), groups.next()) else {
        return TokenStream::new();
    };
    let konst = groups.next().map(|g| g.stream()).unwrap_or_default();
    let span = attr
        .stream()
        .into_iter()
        .next()
        .map_or_else(|| attr.span(), |t| t.span());
    let message = "`#[protected]` needs the crate's scope catalogue: declare it with `mcp_guard::scopes! { pub Scopes { NAME = \"scope\", ... } }` in this module or a parent module";
    let error = syn::Error::new(span, message).to_compile_error();
    let item = item.stream();
    let requirement = (!konst.is_empty()).then(|| {
        quote::quote! {
            #[doc(hidden)]
            const #konst: ::mcp_guard::__private::RequirementSpec =
                ::mcp_guard::__private::RequirementSpec::PUBLIC;
        }
    });
    quote::quote! { #error #item #requirement }
}
