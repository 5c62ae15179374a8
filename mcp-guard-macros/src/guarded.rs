//! `#[guarded]` on the `#[tool_handler]` impl: per-caller `tools/list` and the list of
//! protected operations the guard's policy is collected from.

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Expr, ImplItem, ItemImpl, Meta, Token};

use crate::protected::with_item;

/// The `router = …` of a handler attribute, or its default.
fn router_expr(item: &ItemImpl, handler: &str, default: Expr) -> syn::Result<Option<Expr>> {
    let Some(attr) = item
        .attrs
        .iter()
        .find(|a| a.path().segments.last().is_some_and(|s| s.ident == handler))
    else {
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

fn try_guarded(attr: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    if !attr.is_empty() {
        return Err(syn::Error::new(
            attr.span(),
            "`#[guarded]` takes no arguments",
        ));
    }
    let mut imp: ItemImpl = syn::parse2(item).map_err(|e| {
        syn::Error::new(e.span(), "`#[guarded]` applies to the `impl ServerHandler for ...` block that carries `#[tool_handler]`")
    })?;
    let Some(tools) = router_expr(&imp, "tool_handler", syn::parse_quote!(Self::tool_router()))?
    else {
        return Err(syn::Error::new(
            Span::call_site(),
            "`#[guarded]` must be written above `#[tool_handler]` on the `impl ServerHandler` block",
        ));
    };
    let prompts = router_expr(
        &imp,
        "prompt_handler",
        syn::parse_quote!(Self::prompt_router()),
    )?;
    if let Some(router) = &prompts {
        // rmcp's `#[prompt_handler]` writes `list_prompts` itself; hand it a router that lists
        // prompts without the internal requirement.
        for attr in &mut imp.attrs {
            if attr
                .path()
                .segments
                .last()
                .is_some_and(|s| s.ident == "prompt_handler")
            {
                let path = attr.path().clone();
                let mut rest: Vec<TokenStream> = Vec::new();
                if let Meta::List(list) = &attr.meta {
                    for m in
                        list.parse_args_with(Punctuated::<Meta, Token![,]>::parse_terminated)?
                    {
                        if !m.path().is_ident("router") {
                            rest.push(quote!(#m));
                        }
                    }
                }
                *attr = syn::parse_quote!(
                    #[#path(router = ::mcp_guard::__private::GuardedPrompts(&#router) #(, #rest)*)]
                );
            }
        }
    }
    if let Some(own) = imp.items.iter().find_map(|i| match i {
        ImplItem::Fn(f) if f.sig.ident == "list_tools" => Some(f),
        _ => None,
    }) {
        return Err(syn::Error::new(
            own.sig.ident.span(),
            "`#[guarded]` provides `list_tools` (filtered per caller); remove this one or remove `#[guarded]`",
        ));
    }
    let rmcp = quote!(::mcp_guard::__private::rmcp);
    imp.items.push(syn::parse_quote! {
        async fn list_tools(
            &self,
            _request: ::core::option::Option<#rmcp::model::PaginatedRequestParams>,
            context: #rmcp::service::RequestContext<#rmcp::RoleServer>,
        ) -> ::core::result::Result<#rmcp::model::ListToolsResult, #rmcp::ErrorData> {
            ::core::result::Result::Ok(::mcp_guard::__private::list_tools((#tools).list_all(), &context))
        }
    });
    let self_ty = &imp.self_ty;
    let (impl_generics, _, where_clause) = imp.generics.split_for_impl();
    let prompts_fn = prompts.map(|p| {
        quote! {
            fn guarded_prompts(&self) -> ::std::vec::Vec<#rmcp::model::Prompt> {
                (#p).list_all()
            }
        }
    });
    Ok(quote! {
        #imp

        impl #impl_generics ::mcp_guard::GuardedServer for #self_ty #where_clause {
            fn guarded_tools(&self) -> ::std::vec::Vec<#rmcp::model::Tool> {
                (#tools).list_all()
            }
            #prompts_fn
        }
    })
}
