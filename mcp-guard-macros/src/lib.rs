//! Procedural macros for [mcp-guard](https://docs.rs/mcp-guard). Users depend on `mcp-guard`,
//! which re-exports them; the documentation with examples lives there.

use proc_macro::TokenStream;

mod diag;
mod guarded;
mod protected;
mod resource;
mod scopes;

/// Declares the server's scope catalogue. See `mcp_guard::scopes!`.
#[proc_macro]
pub fn scopes(input: TokenStream) -> TokenStream {
    let cat = syn::parse_macro_input!(input as scopes::Catalogue);
    match scopes::validate(&cat) {
        Ok(()) => scopes::expand(&cat).into(),
        Err(e) => {
            let err = e.to_compile_error();
            let items = scopes::expand(&cat);
            quote::quote!(#err #items).into()
        }
    }
}

/// Protects an rmcp tool or prompt. See `mcp_guard::protected`.
#[proc_macro_attribute]
pub fn protected(attr: TokenStream, item: TokenStream) -> TokenStream {
    protected::protected(attr.into(), item.into()).into()
}

/// Marks an rmcp tool or prompt as needing no token. See `mcp_guard::public`.
#[proc_macro_attribute]
pub fn public(attr: TokenStream, item: TokenStream) -> TokenStream {
    protected::public(attr.into(), item.into()).into()
}

/// Filters `tools/list` per caller and registers the server's operations. See
/// `mcp_guard::guarded`.
#[proc_macro_attribute]
pub fn guarded(attr: TokenStream, item: TokenStream) -> TokenStream {
    guarded::guarded(attr.into(), item.into()).into()
}

/// Derives the server's protected resource description. See `mcp_guard::ProtectedResource`.
#[proc_macro_derive(ProtectedResource, attributes(protected_resource))]
pub fn derive_protected_resource(input: TokenStream) -> TokenStream {
    resource::derive(input.into()).into()
}

/// What `#[protected]` reaches when the crate declares no `scopes!` catalogue: one error at
/// the attribute's own arguments, the method kept and its requirement defined, so that
/// nothing else fails after it.
#[doc(hidden)]
#[proc_macro]
pub fn missing_scope_catalogue(input: TokenStream) -> TokenStream {
    protected::missing_catalogue(input.into()).into()
}

#[doc(hidden)]
#[proc_macro]
pub fn protected_expand(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as protected::Stage2);
    protected::expand_stage2(input).into()
}

#[cfg(test)]
mod expansion_tests;
