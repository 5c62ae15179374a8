//! Not public API: what the macros' generated code names.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

pub use crate::policy::{ArgCheck, ArgumentsError, Visibility, deserialize_arguments};
pub use crate::principal::TokenKind;
pub use crate::rmcp::{PromptGuard, ToolGuard, list_tools};
pub use mcp_guard_macros::protected_expand;
pub use rmcp;
pub use serde_json::{Map, Value};

use crate::policy::{ArgRule, ArgTest, Requirement};
use crate::scope::ScopeSet;

/// A requirement as `#[protected]` writes it: constant data, emitted beside the method.
#[derive(Debug, Clone, Copy)]
pub struct RequirementSpec {
    pub scopes: &'static [&'static str],
    pub any_of: &'static [&'static [&'static str]],
    pub roles: &'static [&'static str],
    pub token_kind: Option<TokenKind>,
    pub when: &'static [WhenSpec],
    pub visibility: Option<Visibility>,
    pub public: bool,
}

impl RequirementSpec {
    /// What `#[public]` writes.
    pub const PUBLIC: Self = Self {
        scopes: &[],
        any_of: &[],
        roles: &[],
        token_kind: None,
        when: &[],
        visibility: None,
        public: true,
    };
}

/// One `when(...)` rule: its description for the manifest and the test that runs, a function
/// the macro wrote over the operation's argument type.
#[derive(Debug, Clone, Copy)]
pub struct WhenSpec {
    pub field: &'static [&'static str],
    pub test: TestSpec,
    pub scopes: &'static [&'static str],
    pub check: ArgCheck,
}

/// The test of a `when(...)` rule as written; `Equals` holds the compared expression's text.
#[derive(Debug, Clone, Copy)]
pub enum TestSpec {
    StartsWith(&'static str),
    Under(&'static str),
    Equals(&'static str),
    Truthy,
}

fn set(scopes: &[&str]) -> ScopeSet {
    ScopeSet::try_from_iter(scopes).expect("scopes are checked at compile time")
}

impl RequirementSpec {
    /// The runtime requirement.
    pub fn requirement(&self) -> Requirement {
        Requirement {
            scopes: set(self.scopes),
            any_of: self.any_of.iter().map(|a| set(a)).collect(),
            roles: self.roles.iter().map(|s| (*s).to_owned()).collect(),
            token_kind: self.token_kind,
            when: self
                .when
                .iter()
                .map(|w| {
                    let test = match w.test {
                        TestSpec::StartsWith(p) => ArgTest::StartsWith(p.to_owned()),
                        TestSpec::Under(p) => ArgTest::Under(p.to_owned()),
                        TestSpec::Equals(v) => ArgTest::Equals(v.to_owned()),
                        TestSpec::Truthy => ArgTest::Truthy,
                    };
                    ArgRule::typed(&w.field.join("."), test, w.scopes, w.check)
                        .expect("scopes are checked at compile time")
                })
                .collect(),
            visibility: self.visibility,
            public: self.public,
        }
    }
}

/// The `_meta` `#[protected]` and `#[public]` put on a tool or prompt: the advertised
/// `securitySchemes`, merged into the user's own `_meta` if any. The requirement itself
/// travels as the constant the guard is built from, not in `_meta`.
pub fn spec_meta(
    spec: &RequirementSpec,
    user: Option<rmcp::model::MetaObject>,
) -> rmcp::model::MetaObject {
    crate::rmcp::requirement_meta(&spec.requirement(), user)
}

/// One operation of a `#[guarded]` router: rmcp's description of it (its name is the one
/// rmcp routes by) and its declaration (`None`: neither `#[protected]` nor `#[public]`).
#[derive(Debug, Clone, Copy)]
pub struct Declaration<T> {
    pub attr: fn() -> T,
    pub requirement: Option<&'static RequirementSpec>,
}

/// Implemented by `#[guarded]` above `#[tool_router]`: every tool and its declaration.
#[diagnostic::on_unimplemented(
    message = "`{Self}` has no guarded tool router",
    label = "the policy is collected from the `#[tool_router]` impl of `{Self}`",
    note = "write `#[mcp_guard::guarded]` above `#[tool_router]` on the impl that declares the tools"
)]
pub trait DeclaredTools {
    const TOOLS: &'static [Declaration<rmcp::model::Tool>];
}

/// Implemented by `#[guarded]` above `#[prompt_router]`: every prompt and its declaration.
#[diagnostic::on_unimplemented(
    message = "`{Self}` has no guarded prompt router",
    label = "the policy is collected from the `#[prompt_router]` impl of `{Self}`",
    note = "write `#[mcp_guard::guarded]` above `#[prompt_router]` on the impl that declares the prompts"
)]
pub trait DeclaredPrompts {
    const PROMPTS: &'static [Declaration<rmcp::model::Prompt>];
}

/// A field's value as a `when(...)` test reads it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ArgView<'a> {
    /// `None`, or a value no test reads.
    Absent,
    /// Text (a path that is not UTF-8 is [`ArgView::Opaque`]).
    Str(&'a str),
    Bool(bool),
    Int(i128),
    Float(f64),
    /// A collection of this many items.
    Len(usize),
    /// A value that cannot be read as text (a non-UTF-8 path).
    Opaque,
}

/// The types a `when(...)` field may have: text, paths, booleans, numbers, collections, and
/// `Option`, references or smart pointers of these.
#[diagnostic::on_unimplemented(
    message = "`when(...)` cannot test a field of type `{Self}`",
    note = "`when` tests text, paths, booleans, numbers and collections, or an `Option` of one; compare other types with `field == Type::Variant`"
)]
pub trait ArgValue {
    fn view(&self) -> ArgView<'_>;
}

macro_rules! view_ints {
    ($($t:ty),*) => {$(
        impl ArgValue for $t {
            fn view(&self) -> ArgView<'_> {
                ArgView::Int(i128::from(*self))
            }
        }
    )*};
}
view_ints!(i8, i16, i32, i64, u8, u16, u32, u64);

impl ArgValue for i128 {
    fn view(&self) -> ArgView<'_> {
        ArgView::Int(*self)
    }
}
impl ArgValue for isize {
    fn view(&self) -> ArgView<'_> {
        ArgView::Int(*self as i128)
    }
}
impl ArgValue for usize {
    fn view(&self) -> ArgView<'_> {
        ArgView::Int(*self as i128)
    }
}
impl ArgValue for f64 {
    fn view(&self) -> ArgView<'_> {
        ArgView::Float(*self)
    }
}
impl ArgValue for f32 {
    fn view(&self) -> ArgView<'_> {
        ArgView::Float(f64::from(*self))
    }
}
impl ArgValue for bool {
    fn view(&self) -> ArgView<'_> {
        ArgView::Bool(*self)
    }
}
impl ArgValue for str {
    fn view(&self) -> ArgView<'_> {
        ArgView::Str(self)
    }
}
impl ArgValue for String {
    fn view(&self) -> ArgView<'_> {
        ArgView::Str(self)
    }
}
impl ArgValue for Cow<'_, str> {
    fn view(&self) -> ArgView<'_> {
        ArgView::Str(self)
    }
}
impl ArgValue for Path {
    fn view(&self) -> ArgView<'_> {
        self.to_str().map_or(ArgView::Opaque, ArgView::Str)
    }
}
impl ArgValue for PathBuf {
    fn view(&self) -> ArgView<'_> {
        self.as_path().view()
    }
}
impl<T: ArgValue> ArgValue for Option<T> {
    fn view(&self) -> ArgView<'_> {
        self.as_ref().map_or(ArgView::Absent, ArgValue::view)
    }
}
impl<T: ArgValue + ?Sized> ArgValue for &T {
    fn view(&self) -> ArgView<'_> {
        (**self).view()
    }
}
impl<T: ArgValue + ?Sized> ArgValue for Box<T> {
    fn view(&self) -> ArgView<'_> {
        (**self).view()
    }
}
impl<T: ArgValue + ?Sized> ArgValue for std::sync::Arc<T> {
    fn view(&self) -> ArgView<'_> {
        (**self).view()
    }
}
impl<T> ArgValue for Vec<T> {
    fn view(&self) -> ArgView<'_> {
        ArgView::Len(self.len())
    }
}
impl<K, V> ArgValue for std::collections::HashMap<K, V> {
    fn view(&self) -> ArgView<'_> {
        ArgView::Len(self.len())
    }
}
impl<K, V> ArgValue for std::collections::BTreeMap<K, V> {
    fn view(&self) -> ArgView<'_> {
        ArgView::Len(self.len())
    }
}
impl ArgValue for Value {
    fn view(&self) -> ArgView<'_> {
        match self {
            Value::Null => ArgView::Absent,
            Value::Bool(b) => ArgView::Bool(*b),
            Value::String(s) => ArgView::Str(s),
            Value::Number(n) => match n.as_i64() {
                Some(i) => ArgView::Int(i128::from(i)),
                None => match n.as_u64() {
                    Some(u) => ArgView::Int(i128::from(u)),
                    None => n.as_f64().map_or(ArgView::Opaque, ArgView::Float),
                },
            },
            Value::Array(a) => ArgView::Len(a.len()),
            Value::Object(o) => ArgView::Len(o.len()),
        }
    }
}

/// Field types a text test (`starts_with`, `under`, `== "text"`) may read.
#[diagnostic::on_unimplemented(
    message = "`when(...)` reads `{Self}` as text, but it is not text",
    note = "`starts_with`, `under` and `== \"...\"` test `String`, `str`, `Cow<str>`, `Path`, `PathBuf` or an `Option` of one"
)]
pub trait TextArg: ArgValue {}
/// Field types `== 3` may compare.
#[diagnostic::on_unimplemented(
    message = "`when(...)` compares `{Self}` with an integer, but it is not one",
    note = "compare integer fields (or an `Option` of one) with integer literals"
)]
pub trait IntArg: ArgValue {}
/// Field types `== 1.5` may compare.
#[diagnostic::on_unimplemented(
    message = "`when(...)` compares `{Self}` with a float, but it is not a number",
    note = "compare `f32`/`f64` fields (or an `Option` of one) with float literals"
)]
pub trait FloatArg: ArgValue {}
/// Field types `== true` may compare.
#[diagnostic::on_unimplemented(
    message = "`when(...)` compares `{Self}` with a boolean, but it is not one",
    note = "compare `bool` fields (or an `Option<bool>`) with `true` or `false`"
)]
pub trait BoolArg: ArgValue {}

macro_rules! marks {
    ($mark:ident: $($t:ty),*) => {$(impl $mark for $t {})*};
}
marks!(TextArg: str, String, Cow<'_, str>, Path, PathBuf, Value);
marks!(IntArg: i8, i16, i32, i64, i128, isize, u8, u16, u32, u64, usize, Value);
marks!(FloatArg: f32, f64, Value);
marks!(BoolArg: bool, Value);
macro_rules! wrappers {
    ($($mark:ident),*) => {$(
        impl<T: $mark> $mark for Option<T> {}
        impl<T: $mark + ?Sized> $mark for &T {}
        impl<T: $mark + ?Sized> $mark for Box<T> {}
        impl<T: $mark + ?Sized> $mark for std::sync::Arc<T> {}
    )*};
}
wrappers!(TextArg, IntArg, FloatArg, BoolArg);

/// `field.starts_with("prefix")`: text starting with the prefix, byte for byte.
pub fn starts_with(value: &(impl TextArg + ?Sized), prefix: &str) -> bool {
    matches!(value.view(), ArgView::Str(s) if s.starts_with(prefix))
}

/// `field.under("/path")`: a path at or below this one once normalised; a path that cannot be
/// normalised or read as text counts as under it (fails closed).
pub fn under(value: &(impl TextArg + ?Sized), prefix: &str) -> bool {
    match value.view() {
        ArgView::Str(s) => crate::path::is_under(s, prefix),
        ArgView::Opaque => true,
        _ => false,
    }
}

/// `field`: `true`, `Some` of a truthy value, non-empty text, a non-zero number, a non-empty
/// collection.
pub fn truthy(value: &(impl ArgValue + ?Sized)) -> bool {
    match value.view() {
        ArgView::Absent => false,
        ArgView::Str(s) => !s.is_empty(),
        ArgView::Bool(b) => b,
        ArgView::Int(i) => i != 0,
        ArgView::Float(f) => f != 0.0,
        ArgView::Len(n) => n != 0,
        ArgView::Opaque => true,
    }
}

/// `field == "text"`.
pub fn equals_str(value: &(impl TextArg + ?Sized), other: &str) -> bool {
    value.view() == ArgView::Str(other)
}

/// `field == 3`.
pub fn equals_int(value: &(impl IntArg + ?Sized), other: i128) -> bool {
    match value.view() {
        ArgView::Int(i) => i == other,
        // Only a JSON `Value` field can hold `1.0`; a tool reading it as a number sees 1.
        ArgView::Float(f) => f.fract() == 0.0 && f == other as f64,
        _ => false,
    }
}

/// `field == 1.5`.
pub fn equals_float(value: &(impl FloatArg + ?Sized), other: f64) -> bool {
    match value.view() {
        ArgView::Float(f) => f == other,
        ArgView::Int(i) => i as f64 == other,
        _ => false,
    }
}

/// `field == true`.
pub fn equals_bool(value: &(impl BoolArg + ?Sized), other: bool) -> bool {
    value.view() == ArgView::Bool(other)
}

/// What [`crate::GuardedServer`] returns for a table: each operation's description and
/// requirement.
pub fn declared<T>(table: &[Declaration<T>]) -> Vec<(T, Option<Requirement>)> {
    table
        .iter()
        .map(|d| ((d.attr)(), d.requirement.map(RequirementSpec::requirement)))
        .collect()
}
