//! Not public API: what the macros' generated code names.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

pub use crate::declared::{
    ActorSpec, Declaration, DeclaredOperations, DeclaredPrompts, DeclaredTools, ProtectedResource,
    RequirementSpec, ResourceDescriptor, TestSpec, WhenSpec, declared, spec_meta,
};
pub use crate::policy::{
    ArgCheck, ArgProbe, ArgumentsError, Requirement, Visibility, deserialize_arguments,
};
pub use crate::principal::TokenKind;
pub use crate::rmcp::{PromptCheck, ToolCheck, list_tools};
pub use crate::scope::{CatalogueEntry, Scope, ScopeCatalogue};
pub use mcp_guard_macros::protected_expand;
pub use rmcp;
pub use serde_json::{Map, Value};

/// What `#[protected]` calls when the crate declares no `scopes!` catalogue: a glob import
/// `#[guarded]` puts beside the impl, shadowed by the catalogue's own callback when there is
/// one.
pub mod no_catalogue {
    pub use mcp_guard_macros::missing_scope_catalogue as mcp_guard_scope_catalogue;
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

/// Whether a field holds exactly a body value a `Mcp-Param-*` header agrees with (text, an
/// integer, a boolean): the condition for deciding a rule from the headers.
pub fn holds(value: &(impl ArgValue + ?Sized), expected: &Value) -> bool {
    match (value.view(), expected) {
        (ArgView::Str(s), Value::String(e)) => s == e,
        (ArgView::Bool(b), Value::Bool(e)) => b == *e,
        (ArgView::Int(i), Value::Number(n)) => {
            n.as_i64().map(i128::from).or(n.as_u64().map(i128::from)) == Some(i)
        }
        _ => false,
    }
}
