//! Path normalisation shared by argument rules and tools: one reading of a path, so that the
//! rule `path.under("/shared")` and the file store see the same file.
//!
//! A path is read the way a file store rooted at `/` must read it: `//` and `.` collapse,
//! `..` goes up one segment, a relative path starts at the root. Paths that would climb above
//! the root, or that hold a NUL, a backslash or another control character, are refused.

use std::fmt;

/// Why a path was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PathError {
    /// `..` would climb above the root.
    #[error("path escapes the root with `..`")]
    EscapesRoot,
    /// A NUL, a backslash or another control character.
    #[error("path contains a NUL, a backslash or a control character")]
    ForbiddenCharacter,
    /// A segment starts or ends with white space, which stores and shells often trim.
    #[error("a path segment starts or ends with white space")]
    Whitespace,
}

/// A normalised absolute path: starts with `/`, no empty, `.` or `..` segments, no trailing
/// slash (except the root itself).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NormalPath(String);

impl NormalPath {
    /// The path as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this path is `prefix` or lies below it, segment by segment (`/shared` is under
    /// `/shared`, `/shared/a` is, `/sharedx` is not). `prefix` is normalised too; a prefix that
    /// cannot be normalised contains nothing.
    pub fn is_under(&self, prefix: &str) -> bool {
        let Ok(prefix) = normalize(prefix) else {
            return false;
        };
        let p = prefix.as_str();
        p == "/"
            || self.0 == p
            || self
                .0
                .strip_prefix(p)
                .is_some_and(|rest| rest.starts_with('/'))
    }
}

impl fmt::Display for NormalPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for NormalPath {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Normalises a path as a file store rooted at `/` reads it.
///
/// ```
/// use mcp_guard::path::{PathError, normalize};
/// assert_eq!(normalize("//shared/./a").unwrap().as_str(), "/shared/a");
/// assert_eq!(normalize("/notes/../shared/a").unwrap().as_str(), "/shared/a");
/// assert_eq!(normalize("shared/a").unwrap().as_str(), "/shared/a");
/// assert_eq!(normalize("/../etc/passwd"), Err(PathError::EscapesRoot));
/// assert_eq!(normalize("/shared\\a"), Err(PathError::ForbiddenCharacter));
/// assert!(normalize("/shared/a").unwrap().is_under("/shared"));
/// assert!(!normalize("/sharedx").unwrap().is_under("/shared"));
/// ```
pub fn normalize(path: &str) -> Result<NormalPath, PathError> {
    if path.chars().any(|c| c == '\\' || c.is_control()) {
        return Err(PathError::ForbiddenCharacter);
    }
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop().ok_or(PathError::EscapesRoot)?;
            }
            s if s.trim() != s => return Err(PathError::Whitespace),
            s => segments.push(s),
        }
    }
    let mut out = String::with_capacity(path.len() + 1);
    for s in &segments {
        out.push('/');
        out.push_str(s);
    }
    if out.is_empty() {
        out.push('/');
    }
    Ok(NormalPath(out))
}

/// Whether `path`, normalised, is `prefix` or below it. A path that cannot be normalised is
/// treated as under every prefix, so a rule that adds scopes for it fails closed (the tool,
/// normalising with [`normalize`], refuses such a path anyway).
pub fn is_under(path: &str, prefix: &str) -> bool {
    normalize(path).map_or(true, |p| p.is_under(prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_of_a_shared_path_is_under_shared() {
        for p in [
            "/shared/a",
            "//shared/a",
            "/./shared/a",
            "/notes/../shared/a",
            "shared/a",
            "/shared",
            "/shared/",
            "///shared//a//",
            "/a/b/../../shared/x",
            "/../shared/a",
            "/shared\0/a",
            "\\shared\\a",
            " /shared/a",
            "/ shared/a",
        ] {
            assert!(is_under(p, "/shared"), "{p:?}");
        }
        for p in ["/sharedx/a", "/notes/a", "/", "/notes/shared"] {
            assert!(!is_under(p, "/shared"), "{p:?}");
        }
    }

    #[test]
    fn the_root_contains_everything() {
        assert!(is_under("/a", "/"));
        assert_eq!(normalize("").unwrap().as_str(), "/");
        assert_eq!(normalize("/..").unwrap_err(), PathError::EscapesRoot);
    }
}
