//! `#[derive(ProtectedResource)]`: the server's RFC 9728 metadata and scope catalogue, with
//! URL literals checked at compile time.

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{DeriveInput, Expr, ExprArray, Lit, LitStr, Meta, Path, Token};

use crate::diag::Errors;

#[derive(Default)]
struct Args {
    scopes: Option<Path>,
    resource: Option<LitStr>,
    authorization_servers: Vec<LitStr>,
    name: Option<LitStr>,
    documentation: Option<LitStr>,
    policy_uri: Option<LitStr>,
    tos_uri: Option<LitStr>,
    hidden: bool,
    anonymous: bool,
}

pub(crate) fn derive(input: TokenStream) -> TokenStream {
    match try_derive(input) {
        Ok(ts) => ts,
        Err(e) => e.to_compile_error(),
    }
}

/// An absolute URL: https, or http on a loopback host; no fragment.
pub(crate) fn check_url(lit: &LitStr) -> Result<(), String> {
    let url = lit.value();
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(format!("`{url}` is not an absolute URL"));
    };
    let host_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..host_end];
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next().unwrap_or_default()
    } else {
        authority.rsplit_once(':').map_or(authority, |(h, _)| h)
    };
    if host.is_empty() {
        return Err(format!("`{url}` has no host"));
    }
    if url.contains('#') {
        return Err(format!("`{url}` must not have a fragment"));
    }
    let loopback =
        host.eq_ignore_ascii_case("localhost") || host == "::1" || host.starts_with("127.");
    match scheme.to_ascii_lowercase().as_str() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        "http" => Err(format!(
            "`{url}` must use https (plain http only for loopback hosts)"
        )),
        other => Err(format!(
            "`{url}` has unsupported scheme `{other}`; expected https"
        )),
    }
}

fn try_derive(input: TokenStream) -> syn::Result<TokenStream> {
    let input: DeriveInput = syn::parse2(input)?;
    let mut args = Args::default();
    let mut errors = Errors::default();
    let mut found = false;
    let mut scopes_given = false;
    for attr in input
        .attrs
        .iter()
        .filter(|a| a.path().is_ident("protected_resource"))
    {
        found = true;
        let nested = attr.parse_args_with(Punctuated::<Meta, Token![,]>::parse_terminated)?;
        for m in nested {
            let key = m
                .path()
                .get_ident()
                .map(ToString::to_string)
                .unwrap_or_default();
            let lit = |m: &Meta| -> syn::Result<LitStr> {
                match m {
                    Meta::NameValue(nv) => match &nv.value {
                        Expr::Lit(syn::ExprLit {
                            lit: Lit::Str(s), ..
                        }) => Ok(s.clone()),
                        other => Err(syn::Error::new(
                            other.span(),
                            format!("`{key}` takes a string literal"),
                        )),
                    },
                    other => Err(syn::Error::new(
                        other.span(),
                        format!("expected `{key} = \"...\"`"),
                    )),
                }
            };
            let url = |m: &Meta, errors: &mut Errors| -> syn::Result<LitStr> {
                let l = lit(m)?;
                if let Err(msg) = check_url(&l) {
                    errors.push(syn::Error::new(l.span(), msg));
                }
                Ok(l)
            };
            match key.as_str() {
                "scopes" => match (scopes_given = true, &m).1 {
                    Meta::NameValue(nv) => match &nv.value {
                        Expr::Path(p) => args.scopes = Some(p.path.clone()),
                        other => errors.push(syn::Error::new(other.span(), "`scopes` names the catalogue type declared with `scopes!`")),
                    },
                    other => errors.push(syn::Error::new(other.span(), "expected `scopes = CatalogueType`")),
                },
                "resource" => args.resource = Some(url(&m, &mut errors)?),
                "documentation" => args.documentation = Some(url(&m, &mut errors)?),
                "policy_uri" => args.policy_uri = Some(url(&m, &mut errors)?),
                "tos_uri" => args.tos_uri = Some(url(&m, &mut errors)?),
                "name" => args.name = Some(lit(&m)?),
                "authorization_servers" => match &m {
                    Meta::NameValue(nv) => match &nv.value {
                        Expr::Array(ExprArray { elems, .. }) => {
                            for e in elems {
                                match e {
                                    Expr::Lit(syn::ExprLit { lit: Lit::Str(s), .. }) => {
                                        if let Err(msg) = check_url(s) {
                                            errors.push(syn::Error::new(s.span(), msg));
                                        }
                                        args.authorization_servers.push(s.clone());
                                    }
                                    other => errors.push(syn::Error::new(other.span(), "expected a URL string literal")),
                                }
                            }
                        }
                        other => errors.push(syn::Error::new(other.span(), "expected `[\"https://...\", ...]`")),
                    },
                    other => errors.push(syn::Error::new(other.span(), "expected `authorization_servers = [...]`")),
                },
                "hidden" => {
                    if !matches!(m, Meta::Path(_)) {
                        errors.push(syn::Error::new_spanned(&m, "`hidden` takes no value"));
                    }
                    args.hidden = true;
                }
                "anonymous" => {
                    if !matches!(m, Meta::Path(_)) {
                        errors.push(syn::Error::new_spanned(&m, "`anonymous` takes no value"));
                    }
                    args.anonymous = true;
                }
                other => errors.push(syn::Error::new(
                    m.path().span(),
                    format!("unknown argument `{other}`; expected `scopes`, `resource`, `authorization_servers`, `name`, `documentation`, `policy_uri`, `tos_uri`, `hidden` or `anonymous`"),
                )),
            }
        }
    }
    if !found || !scopes_given {
        errors.push(syn::Error::new(
            Span::call_site(),
            "`#[derive(ProtectedResource)]` needs `#[protected_resource(scopes = CatalogueType, ...)]`",
        ));
    }
    errors.finish()?;
    let name = &input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    let scopes = args.scopes.expect("checked above");
    let opt = |v: &Option<LitStr>| match v {
        Some(l) => quote!(::core::option::Option::Some(#l)),
        None => quote!(::core::option::Option::None),
    };
    let (resource, display_name, documentation, policy_uri, tos_uri) = (
        opt(&args.resource),
        opt(&args.name),
        opt(&args.documentation),
        opt(&args.policy_uri),
        opt(&args.tos_uri),
    );
    let servers = &args.authorization_servers;
    let hidden = args.hidden;
    let anonymous = args.anonymous;
    let p = quote!(::mcp_guard::__private);
    Ok(quote! {
        impl #impl_generics #p::ProtectedResource for #name #ty_generics #where_clause {
            const DESCRIPTOR: #p::ResourceDescriptor = #p::ResourceDescriptor {
                catalogue: <#scopes as #p::ScopeCatalogue>::ENTRIES,
                resource: #resource,
                authorization_servers: &[#(#servers),*],
                name: #display_name,
                documentation: #documentation,
                policy_uri: #policy_uri,
                tos_uri: #tos_uri,
                hide_unauthorized: #hidden,
                anonymous: #anonymous,
            };
        }
    })
}
