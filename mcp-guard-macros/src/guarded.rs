//! `#[guarded]`, in its two places:
//! - above `#[tool_router]` / `#[prompt_router]`: the table of every operation with its
//!   declaration (the constants `#[protected]` emits), and the in-process guard on the
//!   operations that declare nothing, so that every operation of the router is guarded;
//! - above `#[tool_handler]`: per-caller `tools/list` and [`DeclaredOperations`], through which
//!   the guard's policy is collected from the table.

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Expr, ImplItem, ItemImpl, Meta, Token};

use crate::protected::expand::insert_guard;
use crate::protected::model::Kind;
use crate::protected::{last_segment_is, requirement_const, with_item};

/// The `router = …` of a handler attribute, or its default.
fn router_expr(item: &ItemImpl, handler: &str, default: Expr) -> syn::Result<Option<Expr>> {
    let Some(attr) = item.attrs.iter().find(|a| last_segment_is(a, handler)) else {
        return Ok(None);
    };
    let Meta::List(list) = &attr.meta else {
        return Ok(Some(default));
    };
    let nested = list.parse_args_with(Punctuated::<Meta, Token![,]>::parse_terminated)?;
    for m in nested {
        if let Meta::NameValue(nv) = m
            && nv.path.is_ident("router")
        {
            return Ok(Some(match nv.value {
                // `#[prompt_handler(router = "name")]`-style strings are not rmcp's form for
                // handlers, but accept a string holding an expression too.
                Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Str(s),
                    ..
                }) => s.parse()?,
                other => other,
            }));
        }
    }
    Ok(Some(default))
}

pub(crate) fn guarded(attr: TokenStream, item: TokenStream) -> TokenStream {
    match try_guarded(attr, item.clone()) {
        Ok(ts) => ts,
        Err(e) => with_item(e, item),
    }
}

fn has_attr(attrs: &[syn::Attribute], name: &str) -> bool {
    attrs.iter().any(|a| last_segment_is(a, name))
}

fn try_guarded(attr: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    if !attr.is_empty() {
        return Err(syn::Error::new(
            attr.span(),
            "`#[guarded]` takes no arguments",
        ));
    }
    let imp: ItemImpl = syn::parse2(item).map_err(|e| {
        syn::Error::new(e.span(), "`#[guarded]` applies to the `impl` blocks that carry `#[tool_router]`, `#[prompt_router]` and `#[tool_handler]`")
    })?;
    let handler = has_attr(&imp.attrs, "tool_handler") || has_attr(&imp.attrs, "prompt_handler");
    let router = has_attr(&imp.attrs, "tool_router") || has_attr(&imp.attrs, "prompt_router");
    match (handler, router) {
        (true, _) => guarded_handler(imp),
        (false, true) => guarded_router(imp),
        (false, false) => Err(syn::Error::new(
            Span::call_site(),
            "`#[guarded]` must be written above `#[tool_router]` / `#[prompt_router]` (on the impl that declares the operations) and above `#[tool_handler]` (on the `impl ServerHandler` block)",
        )),
    }
}

/// Above a router: the declaration table, and a guard on every undeclared operation.
fn guarded_router(mut imp: ItemImpl) -> syn::Result<TokenStream> {
    let p = quote!(::mcp_guard::__private);
    let mut tools: Vec<TokenStream> = Vec::new();
    let mut prompts: Vec<TokenStream> = Vec::new();
    let mut undeclared: Vec<TokenStream> = Vec::new();
    for item in &mut imp.items {
        let ImplItem::Fn(f) = item else { continue };
        let (suffix, kind, list) = if has_attr(&f.attrs, "tool") {
            ("tool_attr", Kind::Tool, &mut tools)
        } else if has_attr(&f.attrs, "prompt") {
            ("prompt_attr", Kind::Prompt, &mut prompts)
        } else {
            continue;
        };
        let ident = f.sig.ident.clone();
        let attr_fn = quote::format_ident!("{}_{}", ident, suffix);
        let requirement = if has_attr(&f.attrs, "protected") {
            let name = requirement_const(&ident);
            quote!(::core::option::Option::Some(&Self::#name))
        } else if has_attr(&f.attrs, "public") {
            quote!(::core::option::Option::Some(&#p::RequirementSpec::PUBLIC))
        } else {
            // Undeclared: the policy's default (the baseline) applies, checked in-process too.
            insert_guard(f, kind);
            // Claims the declaration's name: a `#[protected]` this attribute did not
            // recognise (imported under another name) collides with it instead of being
            // silently read as undeclared.
            let name = requirement_const(&ident);
            undeclared.push(quote! {
                #[doc(hidden)]
                #[allow(non_upper_case_globals, dead_code)]
                const #name: () = ();
            });
            quote!(::core::option::Option::None)
        };
        list.push(quote! {
            #p::Declaration { attr: Self::#attr_fn, requirement: #requirement }
        });
    }
    for item in undeclared {
        imp.items.push(syn::parse2(item)?);
    }
    let self_ty = &imp.self_ty;
    let (impl_generics, _, where_clause) = imp.generics.split_for_impl();
    let tools_impl = has_attr(&imp.attrs, "tool_router").then(|| {
        quote! {
            impl #impl_generics #p::DeclaredTools for #self_ty #where_clause {
                const TOOLS: &'static [#p::Declaration<#p::rmcp::model::Tool>] = &[#(#tools),*];
            }
        }
    });
    let prompts_impl = has_attr(&imp.attrs, "prompt_router").then(|| {
        quote! {
            impl #impl_generics #p::DeclaredPrompts for #self_ty #where_clause {
                const PROMPTS: &'static [#p::Declaration<#p::rmcp::model::Prompt>] = &[#(#prompts),*];
            }
        }
    });
    Ok(quote! {
        #[allow(unused_imports)]
        use #p::no_catalogue::*;
        #imp
        #tools_impl
        #prompts_impl
    })
}

/// Above the handler: `list_tools` per caller and [`DeclaredOperations`].
fn guarded_handler(mut imp: ItemImpl) -> syn::Result<TokenStream> {
    let Some(tools) = router_expr(&imp, "tool_handler", syn::parse_quote!(Self::tool_router()))?
    else {
        return Err(syn::Error::new(
            Span::call_site(),
            "`#[guarded]` must be written above `#[tool_handler]` on the `impl ServerHandler` block",
        ));
    };
    let prompts = has_attr(&imp.attrs, "prompt_handler");
    if let Some(own) = imp.items.iter().find_map(|i| match i {
        ImplItem::Fn(f) if f.sig.ident == "list_tools" => Some(f),
        _ => None,
    }) {
        return Err(syn::Error::new(
            own.sig.ident.span(),
            "`#[guarded]` provides `list_tools` (filtered per caller); remove this one or remove `#[guarded]`",
        ));
    }
    // rmcp checks `Mcp-Param-*` headers against the schema `get_tool` gives; the one
    // `#[tool_handler]` writes gives the router's, which the guard's table is built from.
    let own_get_tool = imp
        .items
        .iter()
        .any(|i| matches!(i, ImplItem::Fn(f) if f.sig.ident == "get_tool"));
    let p = quote!(::mcp_guard::__private);
    let rmcp = quote!(#p::rmcp);
    let served_fn = (!own_get_tool).then(|| {
        quote! {
            fn serves_declared_schemas() -> bool {
                true
            }
        }
    });
    imp.items.push(syn::parse_quote! {
        async fn list_tools(
            &self,
            _request: ::core::option::Option<#rmcp::model::PaginatedRequestParams>,
            context: #rmcp::service::RequestContext<#rmcp::RoleServer>,
        ) -> ::core::result::Result<#rmcp::model::ListToolsResult, #rmcp::ErrorData> {
            ::core::result::Result::Ok(#p::list_tools::<Self>((#tools).list_all(), &context))
        }
    });
    let self_ty = &imp.self_ty;
    let (impl_generics, _, where_clause) = imp.generics.split_for_impl();
    let prompts_fn = prompts.then(|| {
        quote! {
            fn declared_prompts() -> ::std::vec::Vec<(#rmcp::model::Prompt, ::core::option::Option<#p::Requirement>)> {
                #p::declared(<Self as #p::DeclaredPrompts>::PROMPTS)
            }
        }
    });
    Ok(quote! {
        #imp

        impl #impl_generics #p::DeclaredOperations for #self_ty #where_clause {
            fn declared_tools() -> ::std::vec::Vec<(#rmcp::model::Tool, ::core::option::Option<#p::Requirement>)> {
                #p::declared(<Self as #p::DeclaredTools>::TOOLS)
            }
            #prompts_fn
            #served_fn
        }
    })
}
