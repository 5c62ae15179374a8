//! Scope tokens (RFC 6749 §3.3), scope sets, and the scope hierarchy honoured when deciding.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::Arc;

/// The scope that asks for refresh tokens; it is never a resource requirement and is never
/// advertised or challenged (MCP 2026-07-28, SEP-2207).
pub const OFFLINE_ACCESS: &str = "offline_access";

/// Why a scope string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScopeError {
    /// The scope token is empty.
    #[error("empty scope token")]
    Empty,
    /// The scope token holds a character outside RFC 6749 §3.3 `scope-token`.
    #[error(
        "invalid character {found:?} in scope `{scope}`; scope tokens use %x21 / %x23-5B / %x5D-7E (RFC 6749 §3.3)"
    )]
    InvalidChar {
        /// The offending scope.
        scope: String,
        /// The first invalid character.
        found: char,
    },
    /// A scope implies itself through a chain of implications.
    #[error("scope hierarchy has a cycle through `{0}`")]
    Cycle(String),
    /// A URI scope is not a scope token with `{variable}` parts, or a URI's value does not
    /// make one.
    #[error(
        "`{0}` is not a URI scope: a scope token whose `{{variable}}` parts name URI template variables, each value itself valid in a scope"
    )]
    UriScope(String),
}

/// Checks one scope token against RFC 6749 §3.3: `1*( %x21 / %x23-5B / %x5D-7E )`.
///
/// ```
/// assert!(mcp_guard::scope::validate_scope_token("files:read").is_ok());
/// assert!(mcp_guard::scope::validate_scope_token("files read").is_err());
/// ```
pub fn validate_scope_token(scope: &str) -> Result<(), ScopeError> {
    if scope.is_empty() {
        return Err(ScopeError::Empty);
    }
    match scope.chars().find(|c| !is_scope_char(*c)) {
        None => Ok(()),
        Some(found) => Err(ScopeError::InvalidChar {
            scope: scope.to_owned(),
            found,
        }),
    }
}

fn is_scope_char(c: char) -> bool {
    matches!(c, '\x21' | '\x23'..='\x5B' | '\x5D'..='\x7E')
}

/// A set of scope tokens, kept sorted and free of duplicates so that it prints the same way
/// every time.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct ScopeSet(BTreeSet<Arc<str>>);

impl ScopeSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses a space-delimited scope string, as carried by an OAuth `scope` parameter or the
    /// RFC 9068 `scope` claim. Repeated spaces are tolerated; invalid tokens are an error.
    ///
    /// ```
    /// let set = mcp_guard::ScopeSet::parse("files:write  files:read").unwrap();
    /// assert_eq!(set.to_string(), "files:read files:write");
    /// ```
    pub fn parse(s: &str) -> Result<Self, ScopeError> {
        let mut set = Self::new();
        for token in s.split(' ').filter(|t| !t.is_empty()) {
            validate_scope_token(token)?;
            set.0.insert(Arc::from(token));
        }
        Ok(set)
    }

    /// Builds a set from scope tokens, validating each.
    pub fn try_from_iter<I, S>(iter: I) -> Result<Self, ScopeError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut set = Self::new();
        for s in iter {
            set.insert(s.as_ref())?;
        }
        Ok(set)
    }

    /// Adds one validated scope token.
    pub fn insert(&mut self, scope: &str) -> Result<(), ScopeError> {
        validate_scope_token(scope)?;
        if !self.0.contains(scope) {
            self.0.insert(Arc::from(scope));
        }
        Ok(())
    }

    /// Whether the set holds exactly this token (no hierarchy, no prefix matching).
    pub fn contains(&self, scope: &str) -> bool {
        self.0.contains(scope)
    }

    /// Number of scopes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The scopes, in sorted order.
    pub fn iter(&self) -> impl Iterator<Item = &str> + '_ {
        self.0.iter().map(|s| &**s)
    }

    /// Adds every scope of `other`.
    pub fn extend_from(&mut self, other: &ScopeSet) {
        self.0.extend(other.0.iter().cloned());
    }

    /// The scopes as owned strings (for JSON documents).
    pub fn to_vec(&self) -> Vec<String> {
        self.iter().map(str::to_owned).collect()
    }

    pub(crate) fn insert_unchecked(&mut self, scope: Arc<str>) {
        self.0.insert(scope);
    }

    pub(crate) fn without(&self, scope: &str) -> ScopeSet {
        ScopeSet(self.0.iter().filter(|s| &***s != scope).cloned().collect())
    }
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(s)?;
        }
        Ok(())
    }
}

impl fmt::Debug for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl serde::Serialize for ScopeSet {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

impl<'de> serde::Deserialize<'de> for ScopeSet {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let items = Vec::<String>::deserialize(deserializer)?;
        ScopeSet::try_from_iter(items).map_err(serde::de::Error::custom)
    }
}

/// A scope from a catalogue, as a typed constant (`Scopes::FILES_READ`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Scope(&'static str);

impl Scope {
    /// A scope constant. The `scopes!` macro checks the grammar at compile time.
    pub const fn new_unchecked(scope: &'static str) -> Self {
        Self(scope)
    }

    /// The scope string.
    pub const fn as_str(self) -> &'static str {
        self.0
    }
}

impl AsRef<str> for Scope {
    fn as_ref(&self) -> &str {
        self.0
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// One scope of a catalogue declared with `scopes!`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CatalogueEntry {
    /// The scope string.
    pub scope: &'static str,
    /// Its documentation.
    pub doc: &'static str,
    /// The scopes it implies directly.
    pub implies: &'static [&'static str],
    /// Whether it is asked for in 401 challenges (`#[baseline]`); baseline scopes are also
    /// advertised in the metadata's `scopes_supported`.
    pub baseline: bool,
    /// Whether it is advertised in the metadata's `scopes_supported` beside the baseline
    /// (`#[advertised]`).
    pub advertised: bool,
}

/// A scope catalogue: implemented by the type `scopes!` declares.
pub trait ScopeCatalogue {
    /// Every scope, in declaration order.
    const ENTRIES: &'static [CatalogueEntry];
}

/// Which scopes imply which: a broader scope satisfies every narrower scope it implies,
/// directly or through a chain (`files:admin` ⇒ `files:write` ⇒ `files:read`).
///
/// MCP 2026-07-28 requires servers to honour such hierarchies when deciding; the scopes a
/// challenge names are not affected by it.
///
/// ```
/// use mcp_guard::{ScopeHierarchy, ScopeSet};
/// let h = ScopeHierarchy::builder()
///     .implies("files:admin", ["files:read", "files:write"])
///     .build()
///     .unwrap();
/// let held = ScopeSet::parse("files:admin").unwrap();
/// assert!(h.satisfies(&held, "files:write"));
/// assert!(!h.satisfies(&held, "mail:read"));
/// ```
#[derive(Clone, Debug, Default)]
pub struct ScopeHierarchy {
    /// scope → every scope it implies, transitively (not including itself).
    closure: HashMap<Arc<str>, ScopeSet>,
}

impl ScopeHierarchy {
    /// Starts a hierarchy.
    pub fn builder() -> ScopeHierarchyBuilder {
        ScopeHierarchyBuilder::default()
    }

    /// Whether `held` satisfies the single scope `required`, exactly or through the hierarchy.
    pub fn satisfies(&self, held: &ScopeSet, required: &str) -> bool {
        held.contains(required)
            || held.iter().any(|h| {
                self.closure
                    .get(h)
                    .is_some_and(|implied| implied.contains(required))
            })
    }

    /// The scopes of `required` that `held` does not satisfy.
    pub fn missing(&self, held: &ScopeSet, required: &ScopeSet) -> ScopeSet {
        let mut missing = ScopeSet::new();
        for r in &required.0 {
            if !self.satisfies(held, r) {
                missing.insert_unchecked(r.clone());
            }
        }
        missing
    }

    /// The scopes `scope` implies (transitively), if any.
    pub fn implied_by(&self, scope: &str) -> Option<&ScopeSet> {
        self.closure.get(scope)
    }
}

/// Builds a [`ScopeHierarchy`]; cycles and invalid scope tokens are errors.
#[derive(Debug, Default)]
pub struct ScopeHierarchyBuilder {
    edges: Vec<(String, Vec<String>)>,
}

impl ScopeHierarchyBuilder {
    /// Declares that `broader` implies each of `narrower`.
    pub fn implies<I, S>(mut self, broader: &str, narrower: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.edges.push((
            broader.to_owned(),
            narrower.into_iter().map(Into::into).collect(),
        ));
        self
    }

    /// Computes the transitive closure; fails on an invalid token or a cycle.
    pub fn build(self) -> Result<ScopeHierarchy, ScopeError> {
        let mut direct: HashMap<Arc<str>, Vec<Arc<str>>> = HashMap::new();
        for (broader, narrower) in &self.edges {
            validate_scope_token(broader)?;
            let entry = direct.entry(Arc::from(broader.as_str())).or_default();
            for n in narrower {
                validate_scope_token(n)?;
                entry.push(Arc::from(n.as_str()));
            }
        }
        let mut closure = HashMap::new();
        for start in direct.keys() {
            let mut reached = ScopeSet::new();
            let mut stack: Vec<Arc<str>> = direct[start].clone();
            while let Some(s) = stack.pop() {
                if s == *start {
                    return Err(ScopeError::Cycle(start.to_string()));
                }
                if reached.contains(&s) {
                    continue;
                }
                if let Some(next) = direct.get(&s) {
                    stack.extend(next.iter().cloned());
                }
                reached.insert_unchecked(s);
            }
            closure.insert(start.clone(), reached);
        }
        Ok(ScopeHierarchy { closure })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn grammar() {
        assert!(validate_scope_token("a").is_ok());
        assert!(validate_scope_token("api://x/files.read").is_ok());
        assert_eq!(validate_scope_token(""), Err(ScopeError::Empty));
        for bad in ["a b", "a\"b", "a\\b", "é", "a\tb"] {
            assert!(validate_scope_token(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn hierarchy_is_transitive_and_exact() {
        let h = ScopeHierarchy::builder()
            .implies("files:admin", ["files:write"])
            .implies("files:write", ["files:read"])
            .build()
            .unwrap();
        let admin = ScopeSet::parse("files:admin").unwrap();
        assert!(h.satisfies(&admin, "files:read"));
        let writer = ScopeSet::parse("files:writer").unwrap();
        assert!(!h.satisfies(&writer, "files:write"));
        let req = ScopeSet::parse("files:read mail:send").unwrap();
        assert_eq!(h.missing(&admin, &req).to_string(), "mail:send");
    }

    #[test]
    fn cycles_are_refused() {
        let err = ScopeHierarchy::builder()
            .implies("a", ["b"])
            .implies("b", ["c"])
            .implies("c", ["a"])
            .build()
            .unwrap_err();
        assert!(matches!(err, ScopeError::Cycle(_)));
    }

    proptest! {
        #[test]
        fn parse_print_round_trip(tokens in proptest::collection::vec("[!#-\\[\\]-~]{1,12}", 0..8)) {
            let joined = tokens.join(" ");
            let set = ScopeSet::parse(&joined).unwrap();
            let again = ScopeSet::parse(&set.to_string()).unwrap();
            prop_assert_eq!(&set, &again);
            for t in &tokens {
                prop_assert!(set.contains(t));
            }
        }

        #[test]
        fn parse_never_panics(s in "\\PC*") {
            let _ = ScopeSet::parse(&s);
        }
    }
}
