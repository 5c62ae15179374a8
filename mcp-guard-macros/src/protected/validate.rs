//! The checks of `#[protected]` and `#[public]`: every mistake becomes a spanned error, and
//! what passes becomes the model that `expand` emits.

use proc_macro2::{Span, TokenStream};
use syn::spanned::Spanned;
use syn::{Attribute, FnArg, ImplItemFn, Meta, Type};

use super::condition::condition;
use super::last_segment_is;
use super::model::{
    Actor, ArgumentRules, Kind, Protected, Public, Requirement, RmcpArg, RmcpAttr, TokenKind,
    Visibility, When,
};
use super::parse::{ActorArg, Arg, Args, ScopeRef, Stage2, rmcp_args};
use crate::diag::{Errors, did_you_mean, scope_grammar_error};

/// The rmcp attribute on the method, and which kind it makes.
fn rmcp_kind(item: &ImplItemFn) -> Option<(usize, Kind)> {
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

/// The method, or the error that the attribute `which` does not apply to this item.
fn method(item: TokenStream, which: &str) -> syn::Result<ImplItemFn> {
    syn::parse2(item).map_err(|_| {
        syn::Error::new(
            Span::call_site(),
            format!("`#[{which}]` applies to rmcp `#[tool]` and `#[prompt]` methods"),
        )
    })
}

/// The rmcp attribute at `index`, its `meta = ...` told apart from the other arguments.
fn rmcp_attr(attr: &Attribute, index: usize) -> syn::Result<RmcpAttr> {
    let args = rmcp_args(attr)?.map(|args| {
        args.into_iter()
            .map(|m| match m {
                Meta::NameValue(nv) if nv.path.is_ident("meta") => RmcpArg::Meta(nv.value),
                other => RmcpArg::Other(other),
            })
            .collect()
    });
    Ok(RmcpAttr {
        index,
        path: attr.path().clone(),
        args,
    })
}

/// Stage one of `#[protected]`: a method with an rmcp attribute below this one.
pub(crate) fn stage_one(item: TokenStream) -> syn::Result<()> {
    let f = method(item, "protected")?;
    match rmcp_kind(&f) {
        Some(_) => Ok(()),
        None => Err(ordering_error(f.sig.ident.span(), "protected")),
    }
}

/// `#[public]`: no arguments, above the rmcp attribute, not also `#[protected]`.
pub(crate) fn public(attr: &TokenStream, item: TokenStream) -> syn::Result<Public> {
    let f = method(item, "public")?;
    if !attr.is_empty() {
        return Err(syn::Error::new_spanned(
            attr,
            "`#[public]` takes no arguments",
        ));
    }
    let Some((index, _)) = rmcp_kind(&f) else {
        return Err(ordering_error(f.sig.ident.span(), "public"));
    };
    if let Some(other) = f.attrs.iter().find(|a| last_segment_is(a, "protected")) {
        return Err(syn::Error::new_spanned(
            other,
            "a method is either `#[public]` or `#[protected]`, not both",
        ));
    }
    let rmcp = rmcp_attr(&f.attrs[index], index)?;
    Ok(Public { method: f, rmcp })
}

/// Stage two of `#[protected]`: the method and its arguments, checked against the catalogue.
pub(crate) fn protected(input: Stage2) -> syn::Result<Protected> {
    let f: ImplItemFn = syn::parse2(input.item)?;
    let args: Args = syn::parse2(input.attr)?;
    let mut errors = Errors::default();
    let Some((index, kind)) = rmcp_kind(&f) else {
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
    let requirement = requirement(&args.0, &input.catalogue, parameters_type(&f), &mut errors);
    errors.finish()?;
    let rmcp = rmcp_attr(&f.attrs[index], index)?;
    Ok(Protected {
        method: f,
        rmcp,
        kind,
        requirement,
    })
}

/// The scope strings that `refs` name, each checked: grammar, declared, listed once.
fn resolve_scopes(
    refs: &[ScopeRef],
    catalogue: &[(String, String)],
    errors: &mut Errors,
) -> Vec<String> {
    let declared: Vec<String> = catalogue.iter().map(|(s, _)| s.clone()).collect();
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
                        let names: Vec<String> = catalogue.iter().map(|(_, n)| n.clone()).collect();
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
}

/// The arguments of `#[protected(...)]` as a requirement; `params` is the method's
/// `Parameters<T>` type, which `when(...)` needs.
fn requirement(
    args: &[Arg],
    catalogue: &[(String, String)],
    params: Option<&Type>,
    errors: &mut Errors,
) -> Requirement {
    let mut r = Requirement::default();
    let mut rules: Vec<When> = Vec::new();
    let mut seen: Vec<String> = Vec::new();
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
            Arg::Scopes(_, refs) => r.scopes = resolve_scopes(refs, catalogue, errors),
            Arg::AnyOf(k, refs) => {
                if refs.len() < 2 {
                    errors.push(syn::Error::new(
                        k.span(),
                        "`any_of` needs at least two alternatives",
                    ));
                }
                for sref in refs {
                    let alternative = resolve_scopes(std::slice::from_ref(sref), catalogue, errors);
                    r.any_of.push(alternative);
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
                "user" => r.token = Some(TokenKind::User),
                "app" => r.token = Some(TokenKind::App),
                other => errors.push(syn::Error::new(
                    value.span(),
                    format!("unknown token kind `{other}`; expected `\"user\"` or `\"app\"`"),
                )),
            },
            Arg::Actor(_, value) => r.actor = actor(value, errors),
            Arg::When(k, cond, refs) => {
                if params.is_none() {
                    errors.push(syn::Error::new(
                        k.span(),
                        "`when(...)` reads the call's arguments: the method needs a `Parameters<T>` parameter",
                    ));
                }
                let scopes = resolve_scopes(refs, catalogue, errors);
                match condition(cond) {
                    Ok((field, test)) => rules.push(When {
                        field,
                        test,
                        scopes,
                    }),
                    Err(e) => errors.push(e),
                }
            }
            Arg::Hidden(_) => r.visibility = Some(Visibility::Hidden),
            Arg::Listed(_) => r.visibility = Some(Visibility::Listed),
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
    // Without `Parameters<T>` an error is already recorded above.
    r.arguments = params
        .filter(|_| !rules.is_empty())
        .map(|params| ArgumentRules {
            params: params.clone(),
            rules,
        });
    r
}

/// `actor = ...` as a requirement: a known mode, or a non-empty list of distinct, non-empty
/// actor subjects.
fn actor(value: &ActorArg, errors: &mut Errors) -> Option<Actor> {
    match value {
        ActorArg::Mode(mode) => match mode.value().as_str() {
            "required" => Some(Actor::Required),
            "forbidden" => Some(Actor::Forbidden),
            other => {
                errors.push(syn::Error::new(
                    mode.span(),
                    format!(
                        "unknown actor requirement `{other}`; expected `\"required\"`, `\"forbidden\"` or a list of actor subjects `[\"{other}\"]`"
                    ),
                ));
                None
            }
        },
        ActorArg::List(subjects, span) => {
            if subjects.is_empty() {
                errors.push(syn::Error::new(
                    *span,
                    "`actor = []` accepts no actor; name at least one actor subject, or write `actor = \"forbidden\"`",
                ));
                return None;
            }
            let mut out: Vec<String> = Vec::new();
            for subject in subjects {
                let value = subject.value();
                if value.is_empty() {
                    errors.push(syn::Error::new(subject.span(), "empty actor subject"));
                } else if out.contains(&value) {
                    errors.push(syn::Error::new(
                        subject.span(),
                        format!("actor `{value}` is listed twice"),
                    ));
                } else {
                    out.push(value);
                }
            }
            Some(Actor::OneOf(out))
        }
    }
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
