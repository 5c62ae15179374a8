//! The conditions of `when(...)`: which field each reads and what it tests, checked into the
//! model's [`Test`].

use quote::ToTokens;
use syn::spanned::Spanned;
use syn::{Expr, ExprLit, Ident, Lit};

use super::model::{Test, Value};

/// `field`, `a.b`, `field == value`, `field.starts_with("prefix")`, `field.under("/path")`:
/// the field read and what is tested of it.
pub(crate) fn condition(expr: &Expr) -> syn::Result<(Vec<Ident>, Test)> {
    let shape_error = || {
        syn::Error::new_spanned(
            expr,
            "unsupported condition; expected `field`, `field == value`, `field.under(\"/path\")` or `field.starts_with(\"prefix\")` (fields may be nested: `a.b`)",
        )
    };
    match expr {
        Expr::MethodCall(call)
            if (call.method == "starts_with" || call.method == "under") && call.args.len() == 1 =>
        {
            let Expr::Lit(ExprLit {
                lit: Lit::Str(prefix),
                ..
            }) = &call.args[0]
            else {
                return Err(syn::Error::new(
                    call.args[0].span(),
                    format!("`{}` takes a string literal", call.method),
                ));
            };
            let field = field_path(&call.receiver).ok_or_else(shape_error)?;
            if call.method == "under" {
                if let Some(msg) = under_prefix_error(&prefix.value()) {
                    return Err(syn::Error::new(prefix.span(), msg));
                }
                Ok((field, Test::Under(prefix.clone())))
            } else {
                Ok((field, Test::StartsWith(prefix.clone())))
            }
        }
        Expr::Binary(bin) if matches!(bin.op, syn::BinOp::Eq(_)) => {
            let field = field_path(&bin.left).ok_or_else(shape_error)?;
            let right = &*bin.right;
            let value = match right {
                Expr::Lit(ExprLit { lit, .. }) => match lit {
                    Lit::Str(s) => Value::Str(s.clone()),
                    Lit::Bool(b) => Value::Bool(b.clone()),
                    Lit::Int(i) => Value::Int(syn::LitInt::new(i.base10_digits(), i.span())),
                    Lit::Float(x) => Value::Float(syn::LitFloat::new(x.base10_digits(), x.span())),
                    other => {
                        return Err(syn::Error::new(
                            other.span(),
                            "compare with a string, a number, a boolean or a value of the field's type",
                        ));
                    }
                },
                // Anything else is ordinary Rust: `mode == Mode::Overwrite`.
                other => Value::Expr(other.clone()),
            };
            let text = right.to_token_stream().to_string();
            Ok((field, Test::Equals { text, value }))
        }
        other => {
            let field = field_path(other).ok_or_else(shape_error)?;
            Ok((field, Test::Truthy))
        }
    }
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
