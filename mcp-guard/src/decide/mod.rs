//! The decision: scope tokens and their hierarchy ([`scope`]), the verified caller
//! ([`principal`]), what each operation requires and the verdict for one caller
//! ([`policy`]), and the path normalisation argument rules and tools share ([`path`]).

pub mod path;
pub mod policy;
pub(crate) mod principal;
pub mod scope;
