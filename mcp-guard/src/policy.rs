//! What each operation requires, and the decision for one principal: tool → required scopes,
//! with the scope hierarchy honoured.

use std::collections::HashMap;

use crate::principal::Principal;
use crate::scope::{OFFLINE_ACCESS, ScopeError, ScopeHierarchy, ScopeSet};

/// The requirement of one operation. Every listed scope is needed (directly or through the
/// hierarchy).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Requirement {
    /// Scopes that must all be held.
    pub scopes: ScopeSet,
}

impl Requirement {
    /// Any authenticated caller.
    pub fn authenticated() -> Self {
        Self::default()
    }

    /// All of these scopes.
    pub fn scopes<I, S>(scopes: I) -> Result<Self, ScopeError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Ok(Self {
            scopes: ScopeSet::try_from_iter(scopes)?,
        })
    }
}

/// The outcome of a policy check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The principal may perform the operation.
    Allow,
    /// The token lacks scopes: answer 403 `insufficient_scope`.
    InsufficientScope {
        /// What the operation requires.
        required: ScopeSet,
        /// What the token lacks of it.
        missing: ScopeSet,
        /// The `scope` of the challenge: the required scopes plus the scopes the token holds
        /// that this resource knows (so that a client that replaces rather than merges scopes
        /// keeps what it had), never `offline_access`.
        challenge: ScopeSet,
    },
}

/// The server's authorization policy: the scope catalogue, the hierarchy, the baseline scopes
/// asked for in 401 challenges, and the requirement of each tool.
///
/// ```
/// use mcp_guard::{Policy, Requirement};
/// let policy = Policy::builder()
///     .scope("files:read")
///     .scope("files:write")
///     .scope_implying("files:admin", ["files:read", "files:write"])
///     .baseline(["files:read"])
///     .tool("read_file", Requirement::scopes(["files:read"]).unwrap())
///     .tool("write_file", Requirement::scopes(["files:write"]).unwrap())
///     .build()
///     .unwrap();
/// assert_eq!(policy.scopes_supported().to_string(), "files:admin files:read files:write");
/// ```
#[derive(Debug, Clone, Default)]
pub struct Policy {
    catalogue: ScopeSet,
    baseline: ScopeSet,
    hierarchy: ScopeHierarchy,
    tools: HashMap<String, Requirement>,
    default_tool: Requirement,
}

impl Policy {
    /// Starts a policy.
    pub fn builder() -> PolicyBuilder {
        PolicyBuilder::default()
    }

    /// Every scope this resource knows, for `scopes_supported` (never `offline_access`).
    pub fn scopes_supported(&self) -> ScopeSet {
        self.catalogue.without(OFFLINE_ACCESS)
    }

    /// The scopes asked for in 401 challenges.
    pub fn baseline(&self) -> &ScopeSet {
        &self.baseline
    }

    /// The hierarchy.
    pub fn hierarchy(&self) -> &ScopeHierarchy {
        &self.hierarchy
    }

    /// The requirement of a tool: its own, or the default for tools not listed.
    pub fn tool_requirement(&self, name: &str) -> &Requirement {
        self.tools.get(name).unwrap_or(&self.default_tool)
    }

    /// Decides whether `principal` may call tool `name`.
    pub fn decide_tool(&self, principal: &Principal, name: &str) -> Decision {
        self.decide(principal, self.tool_requirement(name))
    }

    /// Decides a requirement for a principal.
    pub fn decide(&self, principal: &Principal, requirement: &Requirement) -> Decision {
        let held = principal.scopes();
        let missing = self.hierarchy.missing(held, &requirement.scopes);
        if missing.is_empty() {
            return Decision::Allow;
        }
        let mut challenge = requirement.scopes.clone();
        for s in held.iter() {
            if self.catalogue.contains(s) && s != OFFLINE_ACCESS {
                let _ = challenge.insert(s);
            }
        }
        Decision::InsufficientScope {
            required: requirement.scopes.clone(),
            missing,
            challenge: challenge.without(OFFLINE_ACCESS),
        }
    }
}

/// Builds a [`Policy`].
#[derive(Debug, Default)]
pub struct PolicyBuilder {
    scopes: Vec<String>,
    implies: Vec<(String, Vec<String>)>,
    baseline: Vec<String>,
    tools: Vec<(String, Requirement)>,
    default_tool: Requirement,
}

impl PolicyBuilder {
    /// Declares a scope.
    pub fn scope(mut self, scope: &str) -> Self {
        self.scopes.push(scope.to_owned());
        self
    }

    /// Declares a scope that implies narrower ones.
    pub fn scope_implying<I, S>(mut self, scope: &str, implies: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scopes.push(scope.to_owned());
        self.implies.push((
            scope.to_owned(),
            implies.into_iter().map(Into::into).collect(),
        ));
        self
    }

    /// The scopes 401 challenges ask for (the minimum for basic use).
    pub fn baseline<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.baseline = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// The requirement of one tool.
    pub fn tool(mut self, name: &str, requirement: Requirement) -> Self {
        self.tools.push((name.to_owned(), requirement));
        self
    }

    /// The requirement of tools that are not listed (default: any authenticated caller).
    pub fn default_tool(mut self, requirement: Requirement) -> Self {
        self.default_tool = requirement;
        self
    }

    /// Validates and builds: every scope named anywhere must be declared, the hierarchy must
    /// have no cycle, and no tool may be listed twice.
    pub fn build(self) -> Result<Policy, PolicyError> {
        let catalogue = ScopeSet::try_from_iter(&self.scopes)?;
        let known = |s: &str| {
            if catalogue.contains(s) {
                Ok(())
            } else {
                Err(PolicyError::UndeclaredScope(s.to_owned()))
            }
        };
        let mut hierarchy = ScopeHierarchy::builder();
        for (broader, narrower) in &self.implies {
            for n in narrower {
                known(n)?;
            }
            hierarchy = hierarchy.implies(broader, narrower.iter().cloned());
        }
        let baseline = ScopeSet::try_from_iter(&self.baseline)?;
        for s in baseline.iter() {
            known(s)?;
        }
        let mut tools = HashMap::new();
        for (name, req) in self.tools {
            for s in req.scopes.iter() {
                known(s)?;
            }
            if tools.insert(name.clone(), req).is_some() {
                return Err(PolicyError::DuplicateTool(name));
            }
        }
        for s in self.default_tool.scopes.iter() {
            known(s)?;
        }
        Ok(Policy {
            catalogue,
            baseline,
            hierarchy: hierarchy.build()?,
            tools,
            default_tool: self.default_tool,
        })
    }
}

/// Why a policy could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// A scope is invalid or the hierarchy has a cycle.
    #[error(transparent)]
    Scope(#[from] ScopeError),
    /// A requirement names a scope that was not declared.
    #[error("scope `{0}` is used but not declared in the policy's scope catalogue")]
    UndeclaredScope(String),
    /// A tool was given two requirements.
    #[error("tool `{0}` is listed twice")]
    DuplicateTool(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn principal(scope: &str) -> Principal {
        let c = json!({"sub":"a","iss":"i","exp":1,"scope":scope});
        Principal::from_claims(c.as_object().unwrap().clone()).unwrap()
    }

    fn policy() -> Policy {
        Policy::builder()
            .scope("files:read")
            .scope("files:write")
            .scope_implying("files:admin", ["files:read", "files:write"])
            .scope("offline_access")
            .tool("write", Requirement::scopes(["files:write"]).unwrap())
            .build()
            .unwrap()
    }

    #[test]
    fn decisions() {
        let p = policy();
        assert_eq!(
            p.decide_tool(&principal("files:admin"), "write"),
            Decision::Allow
        );
        assert_eq!(p.decide_tool(&principal(""), "anything"), Decision::Allow);
        match p.decide_tool(&principal("files:read offline_access other:x"), "write") {
            Decision::InsufficientScope {
                challenge, missing, ..
            } => {
                assert_eq!(challenge.to_string(), "files:read files:write");
                assert_eq!(missing.to_string(), "files:write");
            }
            d => panic!("{d:?}"),
        }
        assert!(!p.scopes_supported().contains("offline_access"));
    }

    #[test]
    fn undeclared_scopes_are_errors() {
        let err = Policy::builder()
            .scope("a")
            .tool("t", Requirement::scopes(["b"]).unwrap())
            .build()
            .unwrap_err();
        assert_eq!(err, PolicyError::UndeclaredScope("b".into()));
    }
}
