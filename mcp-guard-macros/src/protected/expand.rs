//! The code a checked `#[protected]` / `#[public]` method becomes: a pure function of the
//! model, with no checks of its own.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, quote, quote_spanned};
use syn::{Ident, ImplItemFn, Type};

use super::model::{
    Actor, Kind, Protected, Public, Requirement, RmcpArg, RmcpAttr, Test, TokenKind, Value,
    Visibility, When,
};
use super::requirement_const;
use crate::scopes::CALLBACK;

/// Stage one of `#[protected]`: hands the arguments and the method to the catalogue's
/// callback, which calls `protected_expand!` with the declared scopes.
///
/// The third group names the requirement constant, so that the stand-in callback `#[guarded]`
/// provides for a crate without a catalogue can define it beside its one error, and nothing
/// else fails after it.
pub(crate) fn handover(attr: TokenStream, item: TokenStream) -> TokenStream {
    let callback = Ident::new(CALLBACK, Span::call_site());
    let konst = syn::parse2::<syn::ImplItemFn>(item.clone())
        .map(|f| requirement_const(&f.sig.ident))
        .ok();
    quote! { #callback! { { #attr } { #item } { #konst } } }
}

/// The method with `meta` declaring it public.
pub(crate) fn public(model: &Public) -> TokenStream {
    let mut f = model.method.clone();
    let spec = quote!(::mcp_guard::__private::RequirementSpec::PUBLIC);
    set_rmcp_attr(&mut f, &model.rmcp, &spec);
    f.into_token_stream()
}

/// The method with its guard parameter and `meta`, and the constant holding its declaration.
pub(crate) fn protected(model: &Protected) -> TokenStream {
    let mut f = model.method.clone();
    let name = requirement_const(&f.sig.ident);
    let spec = requirement(&model.requirement);
    set_rmcp_attr(&mut f, &model.rmcp, &quote!(Self::#name));
    insert_guard(&mut f, model.kind);
    quote! {
        #f
        #[doc(hidden)]
        #[allow(non_upper_case_globals)]
        const #name: ::mcp_guard::__private::RequirementSpec = #spec;
    }
}

/// The in-process check (`_: ToolCheck`) as the method's first parameter after `self`, so
/// that rmcp runs it as an extractor before the others.
pub(crate) fn insert_guard(f: &mut ImplItemFn, kind: Kind) {
    let guard = match kind {
        Kind::Tool => quote!(::mcp_guard::__private::ToolCheck),
        Kind::Prompt => quote!(::mcp_guard::__private::PromptCheck),
    };
    let position = usize::from(f.sig.receiver().is_some());
    f.sig.inputs.insert(position, syn::parse_quote!(_: #guard));
}

/// `Some(x)` or `None`, as code.
fn option(value: Option<TokenStream>) -> TokenStream {
    match value {
        Some(v) => quote!(::core::option::Option::Some(#v)),
        None => quote!(::core::option::Option::None),
    }
}

/// The `RequirementSpec` constant's value.
fn requirement(r: &Requirement) -> TokenStream {
    let p = quote!(::mcp_guard::__private);
    let scopes = &r.scopes;
    let any_of = r.any_of.iter().map(|alt| quote!(&[#(#alt),*]));
    let roles = &r.roles;
    let token = option(r.token.map(|t| match t {
        TokenKind::User => quote!(#p::TokenKind::User),
        TokenKind::App => quote!(#p::TokenKind::App),
    }));
    let actor = option(r.actor.as_ref().map(|a| match a {
        Actor::Required => quote!(#p::ActorSpec::Required),
        Actor::Forbidden => quote!(#p::ActorSpec::Forbidden),
        Actor::OneOf(subjects) => quote!(#p::ActorSpec::OneOf(&[#(#subjects),*])),
    }));
    let when = r
        .arguments
        .iter()
        .flat_map(|a| a.rules.iter().map(|w| rule(w, &a.params)));
    let visibility = option(r.visibility.map(|v| match v {
        Visibility::Hidden => quote!(#p::Visibility::Hidden),
        Visibility::Listed => quote!(#p::Visibility::Listed),
    }));
    quote! {
        #p::RequirementSpec {
            scopes: &[#(#scopes),*],
            any_of: &[#(#any_of),*],
            roles: &[#(#roles),*],
            token_kind: #token,
            actor: #actor,
            when: &[#(#when),*],
            visibility: #visibility,
            public: false,
        }
    }
}

/// One `WhenSpec`: the rule's description and its test over the deserialized arguments.
fn rule(w: &When, params: &Type) -> TokenStream {
    let p = quote!(::mcp_guard::__private);
    let args = Ident::new("__mcp_guard_args", Span::mixed_site());
    let field = w.field.iter().map(|i| i.to_string());
    let scopes = &w.scopes;
    let test = match &w.test {
        Test::Truthy => quote!(#p::TestSpec::Truthy),
        Test::StartsWith(prefix) => quote!(#p::TestSpec::StartsWith(#prefix)),
        Test::Under(prefix) => quote!(#p::TestSpec::Under(#prefix)),
        Test::Equals { text, .. } => quote!(#p::TestSpec::Equals(#text)),
    };
    let check = check(w);
    let probe = option(probe(w, params, &check));
    quote! {
        #p::WhenSpec {
            field: &[#(#field),*],
            test: #test,
            scopes: &[#(#scopes),*],
            check: {
                // The arguments exactly as the method's `Parameters<T>` reads them.
                fn check(
                    args: ::core::option::Option<&#p::Map<::std::string::String, #p::Value>>,
                ) -> ::core::result::Result<bool, #p::ArgumentsError> {
                    let #args: #params = #p::deserialize_arguments(args)?;
                    ::core::result::Result::Ok(#check)
                }
                check
            },
            probe: #probe,
        }
    }
}

/// The rule's test on arguments built from `Mcp-Param-*` header values, for a top-level
/// field tested by `truthy`, `under`, `starts_with` or `==` a literal (types `when` reads as
/// text, numbers or booleans): its outcome only if the field holds the header's value.
/// Comparisons with an expression of the field's own type and nested fields get none.
fn probe(w: &When, params: &Type, check: &TokenStream) -> Option<TokenStream> {
    if w.field.len() != 1
        || matches!(
            &w.test,
            Test::Equals {
                value: Value::Expr(_),
                ..
            }
        )
    {
        return None;
    }
    let p = quote!(::mcp_guard::__private);
    let args = Ident::new("__mcp_guard_args", Span::mixed_site());
    let value = field_access(&w.field);
    Some(quote! {{
        fn probe(
            args: &#p::Map<::std::string::String, #p::Value>,
            expected: &#p::Value,
        ) -> ::core::result::Result<::core::option::Option<bool>, #p::ArgumentsError> {
            let #args: #params = #p::deserialize_arguments(::core::option::Option::Some(args))?;
            if !#p::holds(&#value, expected) {
                return ::core::result::Result::Ok(::core::option::Option::None);
            }
            ::core::result::Result::Ok(::core::option::Option::Some(#check))
        }
        probe
    }})
}

/// The Rust test of a rule, spanned at the field (or the compared expression) so that
/// rustc's errors point at the declaration.
fn check(w: &When) -> TokenStream {
    let p = quote!(::mcp_guard::__private);
    let value = field_access(&w.field);
    let span = w.field[0].span();
    match &w.test {
        Test::Truthy => quote_spanned!(span=> #p::truthy(&#value)),
        Test::StartsWith(prefix) => quote_spanned!(span=> #p::starts_with(&#value, #prefix)),
        Test::Under(prefix) => quote_spanned!(span=> #p::under(&#value, #prefix)),
        Test::Equals { value: other, .. } => match other {
            Value::Str(s) => quote_spanned!(span=> #p::equals_str(&#value, #s)),
            Value::Bool(b) => quote_spanned!(span=> #p::equals_bool(&#value, #b)),
            Value::Int(i) => quote_spanned!(span=> #p::equals_int(&#value, #i)),
            Value::Float(x) => quote_spanned!(span=> #p::equals_float(&#value, #x)),
            Value::Expr(e) => {
                let span = syn::spanned::Spanned::span(e);
                quote_spanned!(span=> #value == #e)
            }
        },
    }
}

/// `__mcp_guard_args.a.b`, spanned at the field as written so that rustc's errors (no such
/// field, a type `when` cannot test) point at the declaration.
fn field_access(field: &[Ident]) -> TokenStream {
    let span = field[0].span();
    let args = Ident::new("__mcp_guard_args", Span::mixed_site().located_at(span));
    quote_spanned!(span=> #args #(.#field)*)
}

/// The rmcp attribute with `meta = spec_meta(&spec, user's meta)`: merged into the user's
/// `meta = ...`, or added.
fn set_rmcp_attr(f: &mut ImplItemFn, rmcp: &RmcpAttr, spec: &TokenStream) {
    let meta = |user: Option<TokenStream>| {
        let user = option(user);
        quote!(meta = ::mcp_guard::__private::spec_meta(&#spec, #user))
    };
    let path = &rmcp.path;
    f.attrs[rmcp.index] = match &rmcp.args {
        None => {
            let m = meta(None);
            syn::parse_quote!(#[#path(#m)])
        }
        Some(args) => {
            let mut out: Vec<TokenStream> = args
                .iter()
                .map(|a| match a {
                    RmcpArg::Meta(user) => meta(Some(user.to_token_stream())),
                    RmcpArg::Other(other) => other.to_token_stream(),
                })
                .collect();
            if !args.iter().any(|a| matches!(a, RmcpArg::Meta(_))) {
                out.push(meta(None));
            }
            syn::parse_quote!(#[#path(#(#out),*)])
        }
    };
}
