//! `#[protected(...)]` and `#[public]` on rmcp `#[tool]` / `#[prompt]` methods.
//!
//! `#[protected]` runs in two stages. The attribute checks the item's shape and hands it to
//! the scope catalogue's callback macro (declared by `scopes!`), which calls
//! `protected_expand!` with the declared scopes, so that every scope is checked against the
//! catalogue at compile time. `protected_expand!` parses the arguments, validates them and
//! rewrites the method.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, quote, quote_spanned};
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{
    Attribute, Expr, ExprLit, FnArg, Ident, ImplItemFn, Lit, LitStr, Meta, Path, Token, Type,
    bracketed, parenthesized,
};

use crate::diag::{Errors, did_you_mean, scope_grammar_error};
use crate::scopes::CALLBACK;

/// What an rmcp method is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Tool,
    Prompt,
}

/// Whether the attribute is `#[name]` under any path (`#[rmcp::tool]` too).
pub(crate) fn last_segment_is(attr: &Attribute, name: &str) -> bool {
    attr.path().segments.last().is_some_and(|s| s.ident == name)
}

/// The rmcp attribute on the method, and which kind it makes.
fn rmcp_attr(item: &ImplItemFn) -> Option<(usize, Kind)> {
    item.attrs.iter().enumerate().find_map(|(i, a)| {
        if last_segment_is(a, "tool") {
            Some((i, Kind::Tool))
        } else if last_segment_is(a, "prompt") {
            Some((i, Kind::Prompt))
        } else {
            None
        }
    })
}

fn ordering_error(span: Span, which: &str) -> syn::Error {
    syn::Error::new(
        span,
        format!(
            "`#[{which}]` applies to a method with `#[tool]` or `#[prompt]` and must be written above that attribute: it rewrites it, so it has to expand first"
        ),
    )
}

/// Stage one of `#[protected]`: shape checks, then the catalogue callback.
pub(crate) fn protected(attr: TokenStream, item: TokenStream) -> TokenStream {
    let parsed: ImplItemFn = match syn::parse2(item.clone()) {
        Ok(f) => f,
        Err(_) => {
            let e = syn::Error::new(
                Span::call_site(),
                "`#[protected]` applies to rmcp `#[tool]` and `#[prompt]` methods",
            );
            return with_item(e, item);
        }
    };
    if rmcp_attr(&parsed).is_none() {
        return with_item(ordering_error(parsed.sig.ident.span(), "protected"), item);
    }
    let callback = Ident::new(CALLBACK, Span::call_site());
    quote! { #callback! { { #attr } { #item } } }
}

/// `#[public]`: the operation needs no token; advertised as `{"type":"noauth"}`.
pub(crate) fn public(attr: TokenStream, item: TokenStream) -> TokenStream {
    let mut f: ImplItemFn = match syn::parse2(item.clone()) {
        Ok(f) => f,
        Err(_) => {
            let e = syn::Error::new(
                Span::call_site(),
                "`#[public]` applies to rmcp `#[tool]` and `#[prompt]` methods",
            );
            return with_item(e, item);
        }
    };
    if !attr.is_empty() {
        return with_item(
            syn::Error::new_spanned(&attr, "`#[public]` takes no arguments"),
            item,
        );
    }
    let Some((index, _)) = rmcp_attr(&f) else {
        return with_item(ordering_error(f.sig.ident.span(), "public"), item);
    };
    if let Some(other) = f.attrs.iter().find(|a| last_segment_is(a, "protected")) {
        return with_item(
            syn::Error::new_spanned(
                other,
                "a method is either `#[public]` or `#[protected]`, not both",
            ),
            item,
        );
    }
    let spec = quote!(::mcp_guard::__private::RequirementSpec::PUBLIC);
    match rewrite_rmcp_attr(&f.attrs[index], &spec) {
        Ok(a) => f.attrs[index] = a,
        Err(e) => return with_item(e, item),
    }
    f.into_token_stream()
}

/// The item unchanged plus the error, so the IDE keeps working and no cascade follows.
pub(crate) fn with_item(e: syn::Error, item: TokenStream) -> TokenStream {
    let err = e.to_compile_error();
    quote! { #err #item }
}

/// A scope as written: a string literal (possibly several, space-separated) or a name from
/// the catalogue (`FILES_READ`, `Scopes::FILES_READ`).
#[derive(Clone)]
enum ScopeRef {
    Lit(LitStr),
    Name(Path),
}

impl Parse for ScopeRef {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        if input.peek(LitStr) {
            Ok(Self::Lit(input.parse()?))
        } else {
            Ok(Self::Name(input.parse()?))
        }
    }
}

/// `"a b"`, `NAME`, or `[..]` of either.
fn parse_scope_list(input: ParseStream<'_>) -> syn::Result<Vec<ScopeRef>> {
    if input.peek(syn::token::Bracket) {
        let content;
        bracketed!(content in input);
        Ok(
            Punctuated::<ScopeRef, Token![,]>::parse_terminated(&content)?
                .into_iter()
                .collect(),
        )
    } else {
        Ok(vec![input.parse()?])
    }
}

enum Arg {
    Scopes(Ident, Vec<ScopeRef>),
    AnyOf(Ident, Vec<ScopeRef>),
    Roles(Ident, Vec<LitStr>),
    Token(Ident, LitStr),
    When(Ident, Expr, Vec<ScopeRef>),
    Hidden(Ident),
    Listed(Ident),
}

impl Arg {
    fn key(&self) -> &Ident {
        match self {
            Arg::Scopes(k, _)
            | Arg::AnyOf(k, _)
            | Arg::Roles(k, _)
            | Arg::Token(k, _)
            | Arg::When(k, ..) => k,
            Arg::Hidden(k) | Arg::Listed(k) => k,
        }
    }
}

impl Parse for Arg {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let key: Ident = input.call(syn::ext::IdentExt::parse_any)?;
        match key.to_string().as_str() {
            "scopes" | "any_of" => {
                input.parse::<Token![=]>()?;
                let list = parse_scope_list(input)?;
                Ok(if key == "scopes" {
                    Arg::Scopes(key, list)
                } else {
                    Arg::AnyOf(key, list)
                })
            }
            "roles" => {
                input.parse::<Token![=]>()?;
                let roles = if input.peek(syn::token::Bracket) {
                    let content;
                    bracketed!(content in input);
                    Punctuated::<LitStr, Token![,]>::parse_terminated(&content)?
                        .into_iter()
                        .collect()
                } else {
                    vec![input.parse()?]
                };
                Ok(Arg::Roles(key, roles))
            }
            "token" => {
                input.parse::<Token![=]>()?;
                Ok(Arg::Token(key, input.parse()?))
            }
            "when" => {
                let content;
                parenthesized!(content in input);
                let cond: Expr = content.parse()?;
                content.parse::<Token![,]>()?;
                let scopes_key: Ident = content.parse()?;
                if scopes_key != "scopes" {
                    return Err(syn::Error::new(
                        scopes_key.span(),
                        "expected `scopes = ...` after the condition of `when(...)`",
                    ));
                }
                content.parse::<Token![=]>()?;
                let scopes = parse_scope_list(&content)?;
                if !content.is_empty() {
                    return Err(
                        content.error("unexpected tokens after `scopes = ...` in `when(...)`")
                    );
                }
                Ok(Arg::When(key, cond, scopes))
            }
            "hidden" => Ok(Arg::Hidden(key)),
            "listed" => Ok(Arg::Listed(key)),
            other => Err(syn::Error::new(
                key.span(),
                format!(
                    "unknown argument `{other}`; expected `scopes`, `any_of`, `roles`, `token`, `when(...)`, `hidden` or `listed`"
                ),
            )),
        }
    }
}

/// The stage-two input: `[("scope", NAME) ...] { attr } { item }`.
pub(crate) struct Stage2 {
    catalogue: Vec<(String, String)>,
    attr: TokenStream,
    item: TokenStream,
}

impl Parse for Stage2 {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let list;
        bracketed!(list in input);
        let mut catalogue = Vec::new();
        while !list.is_empty() {
            let pair;
            parenthesized!(pair in list);
            let scope: LitStr = pair.parse()?;
            pair.parse::<Token![,]>()?;
            let name: Ident = pair.parse()?;
            catalogue.push((scope.value(), name.to_string()));
        }
        let attr;
        syn::braced!(attr in input);
        let item;
        syn::braced!(item in input);
        Ok(Self {
            catalogue,
            attr: attr.parse()?,
            item: item.parse()?,
        })
    }
}

/// A condition of `when(...)`, resolved: the field it reads, its description for the
/// manifest, and the Rust test over the deserialized arguments (`__mcp_guard_args`).
struct Condition {
    field: Vec<Ident>,
    test: TokenStream,
    check: TokenStream,
}

/// The validated arguments.
#[derive(Default)]
struct Resolved {
    scopes: Vec<String>,
    any_of: Vec<Vec<String>>,
    roles: Vec<String>,
    token: Option<TokenStream>,
    when: Vec<(Condition, Vec<String>)>,
    visibility: Option<TokenStream>,
}

pub(crate) fn expand_stage2(input: Stage2) -> TokenStream {
    let item = input.item.clone();
    match try_expand(input) {
        Ok(ts) => ts,
        Err(e) => with_item(e, item),
    }
}

fn try_expand(input: Stage2) -> syn::Result<TokenStream> {
    let mut f: ImplItemFn = syn::parse2(input.item)?;
    let args =
        syn::parse::Parser::parse2(Punctuated::<Arg, Token![,]>::parse_terminated, input.attr)?;
    let mut errors = Errors::default();
    let Some((index, kind)) = rmcp_attr(&f) else {
        return Err(ordering_error(f.sig.ident.span(), "protected"));
    };
    if let Some(dup) = f
        .attrs
        .iter()
        .find(|a| last_segment_is(a, "protected") || last_segment_is(a, "public"))
    {
        errors.push(syn::Error::new_spanned(
            dup,
            "only one `#[protected]` or `#[public]` per method",
        ));
    }
    if f.sig.asyncness.is_none() {
        errors.push(syn::Error::new(
            f.sig.fn_token.span,
            "`#[protected]` needs an `async fn`: its guard runs as an extractor of rmcp's async handlers",
        ));
    }
    let resolved = resolve(&args, &input.catalogue, &f, &mut errors);
    errors.finish()?;
    let name = requirement_const(&f.sig.ident);
    let spec = spec_tokens(&resolved, parameters_type(&f));
    let reference = quote!(Self::#name);
    f.attrs[index] = rewrite_rmcp_attr(&f.attrs[index], &reference)?;
    let guard: Type = match kind {
        Kind::Tool => syn::parse_quote!(::mcp_guard::__private::ToolCheck),
        Kind::Prompt => syn::parse_quote!(::mcp_guard::__private::PromptCheck),
    };
    let position = usize::from(f.sig.receiver().is_some());
    f.sig.inputs.insert(position, syn::parse_quote!(_: #guard));
    Ok(quote! {
        #f
        #[doc(hidden)]
        #[allow(non_upper_case_globals)]
        const #name: ::mcp_guard::__private::RequirementSpec = #spec;
    })
}

/// The associated constant holding a method's declaration, which `#[protected]` emits and
/// `#[guarded]` collects.
pub(crate) fn requirement_const(method: &Ident) -> Ident {
    quote::format_ident!("__mcp_guard_requirement_{}", method)
}

fn resolve(
    args: &Punctuated<Arg, Token![,]>,
    catalogue: &[(String, String)],
    f: &ImplItemFn,
    errors: &mut Errors,
) -> Resolved {
    let mut r = Resolved::default();
    let mut seen: Vec<String> = Vec::new();
    let declared: Vec<String> = catalogue.iter().map(|(s, _)| s.clone()).collect();
    let resolve_scopes = |refs: &[ScopeRef], errors: &mut Errors| -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for sref in refs {
            let (values, span): (Vec<String>, Span) = match sref {
                ScopeRef::Lit(l) => (
                    l.value()
                        .split(' ')
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect(),
                    l.span(),
                ),
                ScopeRef::Name(p) => {
                    let name = p
                        .segments
                        .last()
                        .map(|s| s.ident.to_string())
                        .unwrap_or_default();
                    match catalogue.iter().find(|(_, n)| *n == name) {
                        Some((s, _)) => (vec![s.clone()], p.span()),
                        None => {
                            let names: Vec<String> =
                                catalogue.iter().map(|(_, n)| n.clone()).collect();
                            errors.push(syn::Error::new(
                                p.span(),
                                format!(
                                    "unknown scope name `{name}`; declared names are {}{}",
                                    quoted(&names),
                                    did_you_mean(&name, &names)
                                ),
                            ));
                            continue;
                        }
                    }
                }
            };
            if values.is_empty() {
                errors.push(syn::Error::new(
                    span,
                    "empty scope string; name at least one scope",
                ));
            }
            for v in values {
                if let Err(msg) = scope_grammar_error(&v) {
                    errors.push(syn::Error::new(span, msg));
                } else if !declared.contains(&v) {
                    errors.push(syn::Error::new(
                        span,
                        format!(
                            "unknown scope `{v}`; declared scopes are {}{}",
                            quoted(&declared),
                            did_you_mean(&v, &declared)
                        ),
                    ));
                } else if out.contains(&v) {
                    errors.push(syn::Error::new(
                        span,
                        format!("scope `{v}` is listed twice"),
                    ));
                } else {
                    out.push(v);
                }
            }
        }
        out
    };
    for arg in args {
        let key = arg.key().to_string();
        if seen.contains(&key) && !matches!(arg, Arg::When(..)) {
            errors.push(syn::Error::new(
                arg.key().span(),
                format!("`{key}` is given twice"),
            ));
            continue;
        }
        seen.push(key);
        match arg {
            Arg::Scopes(_, refs) => r.scopes = resolve_scopes(refs, errors),
            Arg::AnyOf(k, refs) => {
                if refs.len() < 2 {
                    errors.push(syn::Error::new(
                        k.span(),
                        "`any_of` needs at least two alternatives",
                    ));
                }
                for sref in refs {
                    r.any_of
                        .push(resolve_scopes(std::slice::from_ref(sref), errors));
                }
            }
            Arg::Roles(_, roles) => {
                for role in roles {
                    if role.value().is_empty() {
                        errors.push(syn::Error::new(role.span(), "empty role"));
                    } else if r.roles.contains(&role.value()) {
                        errors.push(syn::Error::new(
                            role.span(),
                            format!("role `{}` is listed twice", role.value()),
                        ));
                    } else {
                        r.roles.push(role.value());
                    }
                }
            }
            Arg::Token(_, value) => match value.value().as_str() {
                "user" => r.token = Some(quote!(::mcp_guard::__private::TokenKind::User)),
                "app" => r.token = Some(quote!(::mcp_guard::__private::TokenKind::App)),
                other => errors.push(syn::Error::new(
                    value.span(),
                    format!("unknown token kind `{other}`; expected `\"user\"` or `\"app\"`"),
                )),
            },
            Arg::When(k, cond, refs) => {
                if parameters_type(f).is_none() {
                    errors.push(syn::Error::new(
                        k.span(),
                        "`when(...)` reads the call's arguments: the method needs a `Parameters<T>` parameter",
                    ));
                }
                let scopes = resolve_scopes(refs, errors);
                match condition(cond) {
                    Ok(c) => r.when.push((c, scopes)),
                    Err(e) => errors.push(e),
                }
            }
            Arg::Hidden(_) => {
                r.visibility = Some(quote!(::mcp_guard::__private::Visibility::Hidden))
            }
            Arg::Listed(_) => {
                r.visibility = Some(quote!(::mcp_guard::__private::Visibility::Listed))
            }
        }
    }
    if seen.iter().any(|k| k == "hidden") && seen.iter().any(|k| k == "listed") {
        let span = args
            .iter()
            .find(|a| matches!(a, Arg::Listed(_)))
            .map_or(Span::call_site(), |a| a.key().span());
        errors.push(syn::Error::new(
            span,
            "`hidden` and `listed` contradict each other",
        ));
    }
    r
}

fn quoted(items: &[String]) -> String {
    if items.is_empty() {
        return "none".to_owned();
    }
    items
        .iter()
        .map(|i| format!("`{i}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `field`, `a.b`, `field == value`, `field.starts_with("prefix")`, `field.under("/path")`.
fn condition(expr: &Expr) -> syn::Result<Condition> {
    let shape_error = || {
        syn::Error::new_spanned(
            expr,
            "unsupported condition; expected `field`, `field == value`, `field.under(\"/path\")` or `field.starts_with(\"prefix\")` (fields may be nested: `a.b`)",
        )
    };
    let p = quote!(::mcp_guard::__private);
    match expr {
        Expr::MethodCall(call)
            if (call.method == "starts_with" || call.method == "under") && call.args.len() == 1 =>
        {
            let method = call.method.to_string();
            match &call.args[0] {
                Expr::Lit(ExprLit {
                    lit: Lit::Str(prefix),
                    ..
                }) => {
                    let field = field_path(&call.receiver).ok_or_else(shape_error)?;
                    let value = field_access(&field);
                    let (test, check) = if method == "under" {
                        under_prefix_error(&prefix.value())
                            .map_or(Ok(()), |m| Err(syn::Error::new(prefix.span(), m)))?;
                        (
                            quote!(#p::TestSpec::Under(#prefix)),
                            quote_spanned!(field[0].span()=> #p::under(&#value, #prefix)),
                        )
                    } else {
                        (
                            quote!(#p::TestSpec::StartsWith(#prefix)),
                            quote_spanned!(field[0].span()=> #p::starts_with(&#value, #prefix)),
                        )
                    };
                    Ok(Condition { field, test, check })
                }
                other => Err(syn::Error::new(
                    other.span(),
                    format!("`{method}` takes a string literal"),
                )),
            }
        }
        Expr::Binary(bin) if matches!(bin.op, syn::BinOp::Eq(_)) => {
            let field = field_path(&bin.left).ok_or_else(shape_error)?;
            let value = field_access(&field);
            let right = &bin.right;
            let text = right.to_token_stream().to_string();
            let span = field[0].span();
            let check = match &**right {
                Expr::Lit(ExprLit { lit, .. }) => match lit {
                    Lit::Str(s) => quote_spanned!(span=> #p::equals_str(&#value, #s)),
                    Lit::Bool(b) => quote_spanned!(span=> #p::equals_bool(&#value, #b)),
                    Lit::Int(i) => {
                        let i = syn::LitInt::new(i.base10_digits(), i.span());
                        quote_spanned!(span=> #p::equals_int(&#value, #i))
                    }
                    Lit::Float(x) => {
                        let x = syn::LitFloat::new(x.base10_digits(), x.span());
                        quote_spanned!(span=> #p::equals_float(&#value, #x))
                    }
                    other => {
                        return Err(syn::Error::new(
                            other.span(),
                            "compare with a string, a number, a boolean or a value of the field's type",
                        ));
                    }
                },
                // Anything else is ordinary Rust: `mode == Mode::Overwrite`, type-checked
                // against the field by rustc.
                other => quote_spanned!(other.span()=> #value == #other),
            };
            Ok(Condition {
                field,
                test: quote!(#p::TestSpec::Equals(#text)),
                check,
            })
        }
        other => {
            let field = field_path(other).ok_or_else(shape_error)?;
            let value = field_access(&field);
            let check = quote_spanned!(field[0].span()=> #p::truthy(&#value));
            Ok(Condition {
                field,
                test: quote!(#p::TestSpec::Truthy),
                check,
            })
        }
    }
}

/// `__mcp_guard_args.a.b`, spanned at the field as written so that rustc's errors (no such
/// field, a type `when` cannot test) point at the declaration.
fn field_access(field: &[Ident]) -> TokenStream {
    let span = field[0].span();
    let args = Ident::new("__mcp_guard_args", Span::mixed_site().located_at(span));
    quote_spanned!(span=> #args #(.#field)*)
}

/// Why a literal is not a usable `under(...)` prefix: it must be a normalised absolute path.
fn under_prefix_error(prefix: &str) -> Option<&'static str> {
    let normal = prefix == "/"
        || prefix.strip_prefix('/').is_some_and(|rest| {
            !rest.chars().any(|c| c == '\\' || c.is_control())
                && rest
                    .split('/')
                    .all(|s| !s.is_empty() && s != "." && s != ".." && s.trim() == s)
        });
    (!normal).then_some(
        "`under` takes a normalised absolute path: it starts with `/`, has no empty, `.` or `..` segment and no trailing `/`",
    )
}

fn field_path(expr: &Expr) -> Option<Vec<Ident>> {
    match expr {
        Expr::Path(p) if p.qself.is_none() => p.path.get_ident().cloned().map(|i| vec![i]),
        Expr::Field(f) => {
            let mut base = field_path(&f.base)?;
            match &f.member {
                syn::Member::Named(i) => base.push(i.clone()),
                syn::Member::Unnamed(_) => return None,
            }
            Some(base)
        }
        _ => None,
    }
}

/// The `T` of the method's `Parameters<T>` parameter.
fn parameters_type(f: &ImplItemFn) -> Option<&Type> {
    f.sig.inputs.iter().find_map(|input| {
        let FnArg::Typed(pt) = input else { return None };
        let Type::Path(tp) = &*pt.ty else { return None };
        let seg = tp.path.segments.last()?;
        if seg.ident != "Parameters" {
            return None;
        }
        match &seg.arguments {
            syn::PathArguments::AngleBracketed(a) => a.args.iter().find_map(|g| match g {
                syn::GenericArgument::Type(t) => Some(t),
                _ => None,
            }),
            _ => None,
        }
    })
}

fn spec_tokens(r: &Resolved, params: Option<&Type>) -> TokenStream {
    let p = quote!(::mcp_guard::__private);
    let scopes = &r.scopes;
    let any_of = r.any_of.iter().map(|alt| quote!(&[#(#alt),*]));
    let roles = &r.roles;
    let token = match &r.token {
        Some(t) => quote!(::core::option::Option::Some(#t)),
        None => quote!(::core::option::Option::None),
    };
    let args = Ident::new("__mcp_guard_args", Span::mixed_site());
    let when = r.when.iter().map(|(c, scopes)| {
        let field = c.field.iter().map(|i| i.to_string());
        let test = &c.test;
        let check = &c.check;
        let params = params.expect("checked in resolve");
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
            }
        }
    });
    let visibility = match &r.visibility {
        Some(v) => quote!(::core::option::Option::Some(#v)),
        None => quote!(::core::option::Option::None),
    };
    quote! {
        #p::RequirementSpec {
            scopes: &[#(#scopes),*],
            any_of: &[#(#any_of),*],
            roles: &[#(#roles),*],
            token_kind: #token,
            when: &[#(#when),*],
            visibility: #visibility,
            public: false,
        }
    }
}

/// `#[tool]` / `#[tool(...)]` with `meta = ...` added or merged.
fn rewrite_rmcp_attr(attr: &Attribute, spec: &TokenStream) -> syn::Result<Attribute> {
    let meta_expr = |user: Option<&Expr>| {
        let user = match user {
            Some(u) => quote!(::core::option::Option::Some(#u)),
            None => quote!(::core::option::Option::None),
        };
        quote!(::mcp_guard::__private::spec_meta(&#spec, #user))
    };
    match &attr.meta {
        Meta::Path(path) => {
            let m = meta_expr(None);
            Ok(syn::parse_quote!(#[#path(meta = #m)]))
        }
        Meta::List(list) => {
            let nested = list.parse_args_with(Punctuated::<Meta, Token![,]>::parse_terminated)?;
            let mut out: Vec<TokenStream> = Vec::new();
            let mut merged = false;
            for m in nested {
                match m {
                    Meta::NameValue(nv) if nv.path.is_ident("meta") => {
                        merged = true;
                        let value = meta_expr(Some(&nv.value));
                        out.push(quote!(meta = #value));
                    }
                    other => out.push(other.into_token_stream()),
                }
            }
            if !merged {
                let value = meta_expr(None);
                out.push(quote!(meta = #value));
            }
            let path = &list.path;
            Ok(syn::parse_quote!(#[#path(#(#out),*)]))
        }
        Meta::NameValue(nv) => Err(syn::Error::new(
            nv.span(),
            "expected `#[tool]` or `#[tool(...)]`",
        )),
    }
}
