//! The syntax of `#[protected(...)]`'s arguments and of stage two's input; no checks beyond
//! the grammar.

use proc_macro2::TokenStream;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Attribute, Expr, Ident, LitStr, Meta, Path, Token, bracketed, parenthesized};

/// A scope as written: a string literal (possibly several, space-separated) or a name from
/// the catalogue (`FILES_READ`, `Scopes::FILES_READ`).
pub(crate) enum ScopeRef {
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

/// The value of `actor = ...`: a mode string, or a list of actor subjects in brackets.
pub(crate) enum ActorArg {
    Mode(LitStr),
    /// The subjects, and the brackets' span (for an empty list).
    List(Vec<LitStr>, proc_macro2::Span),
}

/// One argument of `#[protected(...)]`, with its key for error spans.
pub(crate) enum Arg {
    Scopes(Ident, Vec<ScopeRef>),
    AnyOf(Ident, Vec<ScopeRef>),
    Roles(Ident, Vec<LitStr>),
    Token(Ident, LitStr),
    Actor(Ident, ActorArg),
    When(Ident, Expr, Vec<ScopeRef>),
    Hidden(Ident),
    Listed(Ident),
}

impl Arg {
    pub(crate) fn key(&self) -> &Ident {
        match self {
            Arg::Scopes(k, _)
            | Arg::AnyOf(k, _)
            | Arg::Roles(k, _)
            | Arg::Token(k, _)
            | Arg::Actor(k, _)
            | Arg::When(k, ..) => k,
            Arg::Hidden(k) | Arg::Listed(k) => k,
        }
    }
}

/// `x` or `[x, ...]`.
fn one_or_list<T: Parse>(input: ParseStream<'_>) -> syn::Result<Vec<T>> {
    if input.peek(syn::token::Bracket) {
        let content;
        bracketed!(content in input);
        Ok(Punctuated::<T, Token![,]>::parse_terminated(&content)?
            .into_iter()
            .collect())
    } else {
        Ok(vec![input.parse()?])
    }
}

impl Parse for Arg {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let key: Ident = input.call(syn::ext::IdentExt::parse_any)?;
        match key.to_string().as_str() {
            "scopes" | "any_of" => {
                input.parse::<Token![=]>()?;
                let list = one_or_list(input)?;
                Ok(if key == "scopes" {
                    Arg::Scopes(key, list)
                } else {
                    Arg::AnyOf(key, list)
                })
            }
            "roles" => {
                input.parse::<Token![=]>()?;
                Ok(Arg::Roles(key, one_or_list(input)?))
            }
            "token" => {
                input.parse::<Token![=]>()?;
                Ok(Arg::Token(key, input.parse()?))
            }
            "actor" => {
                input.parse::<Token![=]>()?;
                if input.peek(syn::token::Bracket) {
                    let content;
                    let brackets = bracketed!(content in input);
                    let subjects = Punctuated::<LitStr, Token![,]>::parse_terminated(&content)?;
                    Ok(Arg::Actor(
                        key,
                        ActorArg::List(subjects.into_iter().collect(), brackets.span.join()),
                    ))
                } else if input.peek(LitStr) {
                    Ok(Arg::Actor(key, ActorArg::Mode(input.parse()?)))
                } else {
                    Err(input.error(
                        "expected `actor = \"required\"`, `actor = \"forbidden\"` or a list of actor subjects `actor = [\"agent-a\", ...]`",
                    ))
                }
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
                let scopes = one_or_list(&content)?;
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
                    "unknown argument `{other}`; expected `scopes`, `any_of`, `roles`, `token`, `actor`, `when(...)`, `hidden` or `listed`"
                ),
            )),
        }
    }
}

/// The arguments of `#[protected(...)]`, comma-separated.
pub(crate) struct Args(pub(crate) Vec<Arg>);

impl Parse for Args {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let args = Punctuated::<Arg, Token![,]>::parse_terminated(input)?;
        Ok(Self(args.into_iter().collect()))
    }
}

/// The stage-two input: `[("scope", NAME) ...] { attr } { item }`. The attribute and the item
/// stay tokens here, so that when they fail to parse the item is still emitted beside the
/// error.
pub(crate) struct Stage2 {
    pub(crate) catalogue: Vec<(String, String)>,
    pub(crate) attr: TokenStream,
    pub(crate) item: TokenStream,
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
        // The requirement constant's name, for the stand-in callback only.
        if !input.is_empty() {
            let konst;
            syn::braced!(konst in input);
            konst.parse::<TokenStream>()?;
        }
        Ok(Self {
            catalogue,
            attr: attr.parse()?,
            item: item.parse()?,
        })
    }
}

/// The arguments of an rmcp `#[tool]` / `#[tool(...)]`: `None` for the bare path.
pub(crate) fn rmcp_args(attr: &Attribute) -> syn::Result<Option<Vec<Meta>>> {
    match &attr.meta {
        Meta::Path(_) => Ok(None),
        Meta::List(list) => {
            let nested = list.parse_args_with(Punctuated::<Meta, Token![,]>::parse_terminated)?;
            Ok(Some(nested.into_iter().collect()))
        }
        Meta::NameValue(nv) => Err(syn::Error::new(
            nv.span(),
            "expected `#[tool]` or `#[tool(...)]`",
        )),
    }
}
