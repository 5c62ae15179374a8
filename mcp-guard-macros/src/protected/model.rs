//! What a checked `#[protected]` / `#[public]` method declares, as plain data: `validate`
//! builds it, `expand` turns it into code. User code is carried as syn nodes, unchanged.

use syn::{Expr, Ident, ImplItemFn, LitBool, LitFloat, LitInt, LitStr, Meta, Path, Type};

/// What an rmcp method is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Tool,
    Prompt,
}

/// A `#[public]` method: it needs no token.
pub(crate) struct Public {
    pub(crate) method: ImplItemFn,
    pub(crate) rmcp: RmcpAttr,
}

/// A `#[protected]` method and what it requires.
pub(crate) struct Protected {
    /// The method as written, rmcp attribute included.
    pub(crate) method: ImplItemFn,
    pub(crate) rmcp: RmcpAttr,
    pub(crate) kind: Kind,
    pub(crate) requirement: Requirement,
}

/// The method's rmcp attribute (`#[tool]`, `#[rmcp::prompt(name = "p")]`), which gets the
/// declaration as its `meta`.
pub(crate) struct RmcpAttr {
    /// Its position among the method's attributes.
    pub(crate) index: usize,
    pub(crate) path: Path,
    /// `None` for the bare `#[tool]`.
    pub(crate) args: Option<Vec<RmcpArg>>,
}

/// One argument of the rmcp attribute.
pub(crate) enum RmcpArg {
    /// `meta = expr`: the user's own metadata, merged with the declaration.
    Meta(Expr),
    /// Any other argument, kept as written.
    Other(Meta),
}

/// The requirement of a `#[protected]` operation, every scope resolved to its string.
#[derive(Default)]
pub(crate) struct Requirement {
    /// All of these (`scopes = ...`).
    pub(crate) scopes: Vec<String>,
    /// One of these alternatives (`any_of = [...]`), each a set of scopes.
    pub(crate) any_of: Vec<Vec<String>>,
    pub(crate) roles: Vec<String>,
    pub(crate) token: Option<TokenKind>,
    pub(crate) actor: Option<Actor>,
    /// The `when(...)` rules; `None` when there are none.
    pub(crate) arguments: Option<ArgumentRules>,
    pub(crate) visibility: Option<Visibility>,
}

/// `token = "user"` / `token = "app"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenKind {
    User,
    App,
}

/// `actor = "required"` / `actor = "forbidden"` / `actor = ["subject", ...]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Actor {
    Required,
    Forbidden,
    /// The current actor's `sub` is one of these.
    OneOf(Vec<String>),
}

/// `hidden` / `listed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Visibility {
    Hidden,
    Listed,
}

/// The `when(...)` rules, and the type they read the call's arguments as.
pub(crate) struct ArgumentRules {
    /// The `T` of the method's `Parameters<T>` parameter.
    pub(crate) params: Type,
    pub(crate) rules: Vec<When>,
}

/// `when(condition, scopes = ...)`: the extra scopes a call needs when its arguments match.
pub(crate) struct When {
    /// The field the condition reads (`a.b` is `[a, b]`), spanned as written.
    pub(crate) field: Vec<Ident>,
    pub(crate) test: Test,
    pub(crate) scopes: Vec<String>,
}

/// What a condition tests of its field.
pub(crate) enum Test {
    /// `field`.
    Truthy,
    /// `field.starts_with("prefix")`.
    StartsWith(LitStr),
    /// `field.under("/path")`, the path already checked to be normalised.
    Under(LitStr),
    /// `field == value`; `text` is the value as written, for the manifest.
    Equals { text: String, value: Value },
}

/// The right-hand side of `field == value`.
pub(crate) enum Value {
    Str(LitStr),
    Bool(LitBool),
    /// Without its suffix: `3u8` is `3`.
    Int(LitInt),
    /// Without its suffix.
    Float(LitFloat),
    /// Any other Rust expression (`Mode::Overwrite`), type-checked against the field by rustc.
    Expr(Expr),
}
