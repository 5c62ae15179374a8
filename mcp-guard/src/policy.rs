//! What each operation requires, and the decision for one caller: tools, prompts and
//! resources → requirements (scopes, alternatives, roles, token kind, argument-dependent
//! scopes, visibility), with the scope hierarchy honoured.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::principal::{Principal, TokenKind};
use crate::scope::{CatalogueEntry, OFFLINE_ACCESS, ScopeError, ScopeHierarchy, ScopeSet};

/// Whether a caller who may not use an operation still sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    /// Listed to everyone; a call without the scopes gets the 403 step-up challenge.
    #[default]
    Listed,
    /// Absent from lists for callers who may not use it; their calls are answered as if the
    /// operation did not exist.
    Hidden,
}

/// A test on one argument of a call, as it is described in the manifest.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ArgTest {
    /// The argument is a string starting with this prefix, compared byte for byte (no
    /// normalisation: `//shared/a` does not start with `/shared`). For paths use
    /// [`ArgTest::Under`].
    StartsWith(String),
    /// The argument is a string naming a path at or below this one once both are normalised
    /// by [`crate::path::normalize`] (`//shared/./a`, `/notes/../shared/a` and `shared/a` are
    /// all under `/shared`). A path that cannot be normalised (`..` above the root, a NUL, a
    /// backslash) counts as under it, so the rule fails closed.
    Under(String),
    /// The argument equals this value, exactly (no case folding, no trimming); the value as
    /// written in the declaration.
    Equals(String),
    /// The argument is `true`, `Some`, a non-empty string, a non-zero number, or a non-empty
    /// collection.
    Truthy,
}

/// Why a call's arguments could not be read as the tool reads them: the call is refused as
/// invalid params, never allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("failed to deserialize parameters: {0}")]
pub struct ArgumentsError(pub String);

/// The test of an [`ArgRule`]: whether it applies to a call's arguments (`None`: the call sent
/// none, read as `{}`), evaluated on the value the tool's own argument type deserializes from
/// them.
pub type ArgCheck = fn(Option<&Map<String, Value>>) -> Result<bool, ArgumentsError>;

/// Extra scopes a call needs when one of its arguments passes a test, e.g. writing under
/// `/shared` needs `files:shared`.
///
/// `#[protected(when(...))]` writes these with a test over the tool's argument type, so that
/// renames, aliases, flattened and optional fields are read exactly as the tool reads them.
/// By hand, [`ArgRule::typed`] does the same.
#[derive(Debug, Clone, Serialize)]
pub struct ArgRule {
    /// The argument's path in the tool's argument type (`["options", "force"]`), for the
    /// manifest.
    pub field: Vec<String>,
    /// The test, for the manifest.
    pub test: ArgTest,
    /// The scopes needed when the test passes.
    pub scopes: ScopeSet,
    #[serde(skip)]
    check: ArgCheck,
}

impl PartialEq for ArgRule {
    fn eq(&self, other: &Self) -> bool {
        self.field == other.field && self.test == other.test && self.scopes == other.scopes
    }
}

impl ArgRule {
    /// A rule: when `check` says so, `scopes` are needed too. `field` and `test` describe the
    /// check in the manifest; `check` is what runs.
    ///
    /// ```
    /// use mcp_guard::policy::{ArgRule, ArgTest, ArgumentsError, Requirement};
    /// use serde_json::{Map, Value};
    ///
    /// #[derive(serde::Deserialize)]
    /// #[serde(rename_all = "camelCase")]
    /// struct Write { file_path: String }
    ///
    /// fn shared(args: Option<&Map<String, Value>>) -> Result<bool, ArgumentsError> {
    ///     let w: Write = mcp_guard::policy::deserialize_arguments(args)?;
    ///     Ok(mcp_guard::path::is_under(&w.file_path, "/shared"))
    /// }
    ///
    /// let rule = ArgRule::typed("file_path", ArgTest::Under("/shared".into()), ["files:shared"], shared).unwrap();
    /// let write = Requirement::scopes(["files:write"]).unwrap().when(rule);
    /// ```
    pub fn typed<I, S>(
        field: &str,
        test: ArgTest,
        scopes: I,
        check: ArgCheck,
    ) -> Result<Self, ScopeError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Ok(Self {
            field: field.split('.').map(str::to_owned).collect(),
            test,
            scopes: ScopeSet::try_from_iter(scopes)?,
            check,
        })
    }

    /// Whether the rule applies to these arguments; an error when they do not deserialize as
    /// the tool's argument type.
    pub fn applies(&self, args: Option<&Map<String, Value>>) -> Result<bool, ArgumentsError> {
        (self.check)(args)
    }
}

/// A call's arguments as a tool's `Parameters<T>` reads them: absent arguments are `{}`, and
/// the object goes through `T`'s own `Deserialize`, as rmcp does before it calls the tool.
pub fn deserialize_arguments<T: serde::de::DeserializeOwned>(
    args: Option<&Map<String, Value>>,
) -> Result<T, ArgumentsError> {
    serde_json::from_value(Value::Object(args.cloned().unwrap_or_default()))
        .map_err(|e| ArgumentsError(e.to_string()))
}

/// The requirement of one operation.
///
/// ```
/// use mcp_guard::policy::Requirement;
/// let write = Requirement::scopes(["files:write"]).unwrap().role("editor");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Requirement {
    /// Scopes that must all be held.
    #[serde(default, skip_serializing_if = "ScopeSet::is_empty")]
    pub scopes: ScopeSet,
    /// Alternatives: when non-empty, at least one of these sets must be held as well.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub any_of: Vec<ScopeSet>,
    /// Roles that must all be held.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// The kind of token required (delegated user or app-only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_kind: Option<TokenKind>,
    /// Argument-dependent scopes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub when: Vec<ArgRule>,
    /// Visibility to callers who may not use the operation (`None`: the policy's default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visibility: Option<Visibility>,
    /// No token needed at all.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub public: bool,
}

impl Requirement {
    /// Any authenticated caller.
    pub fn authenticated() -> Self {
        Self::default()
    }

    /// No token needed.
    pub fn public() -> Self {
        Self {
            public: true,
            ..Self::default()
        }
    }

    /// All of these scopes.
    pub fn scopes<I, S>(scopes: I) -> Result<Self, ScopeError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Ok(Self {
            scopes: ScopeSet::try_from_iter(scopes)?,
            ..Self::default()
        })
    }

    /// Adds an alternative: at least one alternative must be held.
    pub fn or_scopes<I, S>(mut self, scopes: I) -> Result<Self, ScopeError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.any_of.push(ScopeSet::try_from_iter(scopes)?);
        Ok(self)
    }

    /// Requires a role.
    pub fn role(mut self, role: impl Into<String>) -> Self {
        self.roles.push(role.into());
        self
    }

    /// Requires a kind of token.
    pub fn token_kind(mut self, kind: TokenKind) -> Self {
        self.token_kind = Some(kind);
        self
    }

    /// Adds an argument-dependent rule.
    pub fn when(mut self, rule: ArgRule) -> Self {
        self.when.push(rule);
        self
    }

    /// Hides the operation from callers who may not use it.
    pub fn hidden(mut self) -> Self {
        self.visibility = Some(Visibility::Hidden);
        self
    }

    /// Lists the operation to everyone.
    pub fn listed(mut self) -> Self {
        self.visibility = Some(Visibility::Listed);
        self
    }

    /// Every scope this requirement can name.
    fn named_scopes(&self) -> impl Iterator<Item = &str> {
        self.scopes
            .iter()
            .chain(self.any_of.iter().flat_map(ScopeSet::iter))
            .chain(self.when.iter().flat_map(|r| r.scopes.iter()))
    }

    /// The SEP-1488 `securitySchemes` value advertising this requirement:
    /// `[{"type":"noauth"}]` for public operations, otherwise one `oauth2` scheme per
    /// alternative with the scopes it needs (argument-dependent scopes are not included).
    pub fn security_schemes(&self) -> Value {
        if self.public {
            return serde_json::json!([{ "type": "noauth" }]);
        }
        let alternatives: Vec<ScopeSet> = if self.any_of.is_empty() {
            vec![self.scopes.clone()]
        } else {
            self.any_of
                .iter()
                .map(|alt| {
                    let mut s = self.scopes.clone();
                    s.extend_from(alt);
                    s
                })
                .collect()
        };
        Value::Array(
            alternatives
                .into_iter()
                .map(|s| serde_json::json!({ "type": "oauth2", "scopes": s.to_vec() }))
                .collect(),
        )
    }
}

/// What is being asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target<'a> {
    /// `tools/call` of this tool.
    Tool(&'a str),
    /// `prompts/get` of this prompt.
    Prompt(&'a str),
    /// `resources/read` of this URI.
    Resource(&'a str),
}

impl<'a> Target<'a> {
    /// The tool's or prompt's name, or the resource's URI.
    pub fn name(&self) -> &'a str {
        match *self {
            Target::Tool(n) | Target::Prompt(n) | Target::Resource(n) => n,
        }
    }
}

/// The outcome of a policy check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The caller may go ahead.
    Allow,
    /// A token is needed (401).
    Unauthenticated,
    /// The token lacks scopes: 403 `insufficient_scope`.
    InsufficientScope {
        /// What the operation requires (with argument-dependent scopes).
        required: ScopeSet,
        /// What the token lacks of it.
        missing: ScopeSet,
        /// The `scope` of the challenge: the required scopes plus the scopes the token holds
        /// that this resource knows (so that a client that replaces rather than merges scopes
        /// keeps what it had), never `offline_access`.
        challenge: ScopeSet,
    },
    /// The token lacks a role or is of the wrong kind: 403, no scope can fix it.
    Forbidden {
        /// Why.
        reason: String,
    },
    /// A hidden operation the caller may not use: answer as if it did not exist.
    Conceal,
    /// The call's arguments do not deserialize as the operation's argument type, so its
    /// argument rules cannot be decided: answered as invalid params (JSON-RPC -32602), as
    /// the operation itself would answer them.
    InvalidArguments(ArgumentsError),
}

/// A URI template of RFC 6570 level 1/2 shape: `{var}` matches one path segment, `{+var}`
/// matches the rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UriTemplate {
    source: String,
    parts: Vec<TemplatePart>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum TemplatePart {
    Literal(String),
    Segment,
    Rest,
}

impl UriTemplate {
    /// Parses a template; a URI without `{…}` matches only itself.
    pub fn parse(template: &str) -> Result<Self, PolicyError> {
        let mut parts = Vec::new();
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(TemplatePart::Literal(rest[..open].to_owned()));
            }
            let close = rest[open..]
                .find('}')
                .ok_or_else(|| PolicyError::InvalidTemplate(template.to_owned()))?;
            let var = &rest[open + 1..open + close];
            parts.push(if var.starts_with('+') {
                TemplatePart::Rest
            } else {
                TemplatePart::Segment
            });
            rest = &rest[open + close + 1..];
        }
        if !rest.is_empty() {
            parts.push(TemplatePart::Literal(rest.to_owned()));
        }
        Ok(Self {
            source: template.to_owned(),
            parts,
        })
    }

    /// The template as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether a URI matches.
    pub fn matches(&self, uri: &str) -> bool {
        fn go(parts: &[TemplatePart], uri: &str) -> bool {
            match parts.split_first() {
                None => uri.is_empty(),
                Some((TemplatePart::Literal(l), rest)) => {
                    uri.strip_prefix(l.as_str()).is_some_and(|u| go(rest, u))
                }
                Some((TemplatePart::Segment, rest)) => {
                    let end = uri.find(['/', '?', '#']).unwrap_or(uri.len());
                    (1..=end).rev().any(|i| go(rest, &uri[i..]))
                }
                Some((TemplatePart::Rest, rest)) => (1..=uri.len())
                    .rev()
                    .filter(|i| uri.is_char_boundary(*i))
                    .any(|i| go(rest, &uri[i..])),
            }
        }
        go(&self.parts, uri)
    }
}

/// The server's authorization policy: the scope catalogue and its hierarchy, the baseline
/// scopes asked for in 401 challenges, and the requirement of each tool, prompt and resource.
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
    prompts: HashMap<String, Requirement>,
    resources: Vec<(UriTemplate, Requirement)>,
    /// What an operation without its own declaration needs, tool, prompt or resource alike.
    default: Requirement,
    default_visibility: Visibility,
    caller_dependent_lists: bool,
    known_tools: Option<std::collections::HashSet<String>>,
    known_prompts: Option<std::collections::HashSet<String>>,
    pub(crate) scope_prefix: Option<String>,
}

impl Policy {
    /// A scope as advertised to clients: with the identity provider's namespace when the
    /// guard has one (see [`GuardBuilder::scope_prefix`](crate::GuardBuilder::scope_prefix)).
    pub fn advertised_scope(&self, scope: &str) -> String {
        match &self.scope_prefix {
            Some(p) => format!("{p}{scope}"),
            None => scope.to_owned(),
        }
    }

    /// Scopes as advertised to clients (metadata, challenges, `securitySchemes`).
    pub fn advertise(&self, scopes: &ScopeSet) -> ScopeSet {
        match &self.scope_prefix {
            None => scopes.clone(),
            Some(_) => {
                let mut out = ScopeSet::new();
                for s in scopes.iter() {
                    let _ = out.insert(&self.advertised_scope(s));
                }
                out
            }
        }
    }

    /// The identity provider's namespace for this resource's scopes, if any: stripped from
    /// the scopes of every token (JWT or introspected) and added to every advertised scope.
    pub fn scope_prefix(&self) -> Option<&str> {
        self.scope_prefix.as_deref()
    }

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

    /// Whether some operation is hidden from some callers, so that lists depend on the caller.
    pub fn lists_depend_on_caller(&self) -> bool {
        self.caller_dependent_lists
    }

    /// Whether any operation can be used without a token.
    pub fn has_public_operations(&self) -> bool {
        self.tools
            .values()
            .chain(self.prompts.values())
            .any(|r| r.public)
            || self.resources.iter().any(|(_, r)| r.public)
            || self.default.public
    }

    /// The requirement of an operation: its own, or the policy's default (the baseline scopes
    /// unless [`PolicyBuilder::default_requirement`] says otherwise), for tools, prompts and
    /// resources alike.
    pub fn requirement(&self, target: Target<'_>) -> &Requirement {
        let own = match target {
            Target::Tool(name) => self.tools.get(name),
            Target::Prompt(name) => self.prompts.get(name),
            Target::Resource(uri) => self
                .resources
                .iter()
                .find(|(t, _)| t.matches(uri))
                .map(|(_, r)| r),
        };
        own.unwrap_or(&self.default)
    }

    /// Whether a resource URI matches one of the declared resource templates.
    pub fn declares_resource(&self, uri: &str) -> bool {
        self.resources.iter().any(|(t, _)| t.matches(uri))
    }

    /// The declared resource templates, in order.
    pub fn resource_templates(&self) -> impl Iterator<Item = &UriTemplate> {
        self.resources.iter().map(|(t, _)| t)
    }

    /// Whether a caller (`None`: no token) may read the resources of a declared template, as
    /// `resources/templates/list` needs to know; an undeclared template: no.
    pub fn may_read_template(&self, principal: Option<&Principal>, template: &str) -> bool {
        self.resources
            .iter()
            .find(|(t, _)| t.as_str() == template)
            .is_some_and(|(_, req)| {
                self.decide_with(principal, Target::Resource(template), req, None)
                    == Decision::Allow
            })
    }

    /// The requirement of a tool.
    pub fn tool_requirement(&self, name: &str) -> &Requirement {
        self.requirement(Target::Tool(name))
    }

    /// Whether the requirement's operation is hidden from callers who may not use it.
    pub fn is_hidden(&self, requirement: &Requirement) -> bool {
        requirement.visibility.unwrap_or(self.default_visibility) == Visibility::Hidden
    }

    /// Whether the target is unknown to a policy that knows every tool and prompt of its
    /// server (one collected with [`PolicyBuilder::all_tools`]): such calls are answered
    /// exactly like calls of hidden operations, so that hidden ones cannot be told apart.
    pub(crate) fn is_unknown(&self, target: Target<'_>) -> bool {
        match target {
            Target::Tool(name) => self.known_tools.as_ref().is_some_and(|k| !k.contains(name)),
            Target::Prompt(name) => self
                .known_prompts
                .as_ref()
                .is_some_and(|k| !k.contains(name)),
            Target::Resource(_) => false,
        }
    }

    fn hides(&self, target: Target<'_>, requirement: &Requirement) -> bool {
        // rmcp's `#[prompt_handler]` lists every prompt, so prompts are never hidden.
        !matches!(target, Target::Prompt(_)) && self.is_hidden(requirement)
    }

    /// Decides whether `principal` may call tool `name` (arguments not considered).
    pub fn decide_tool(&self, principal: &Principal, name: &str) -> Decision {
        self.decide_inner(Some(principal), Target::Tool(name), None)
    }

    /// Decides one operation for a caller (`None`: no token) on its argument-independent
    /// requirement only, as lists do: whether the caller may use it with some arguments.
    pub fn decide_ignoring_arguments(
        &self,
        principal: Option<&Principal>,
        target: Target<'_>,
    ) -> Decision {
        self.decide_inner(principal, target, None)
    }

    /// Decides one operation for a caller (`None`: no token) with the call's arguments
    /// (`None`: the call sent none, which its argument type reads as `{}`).
    pub fn decide(
        &self,
        principal: Option<&Principal>,
        target: Target<'_>,
        args: Option<&Map<String, Value>>,
    ) -> Decision {
        self.decide_inner(principal, target, Some(args))
    }

    /// `args`: `None` to leave the argument rules out.
    fn decide_inner(
        &self,
        principal: Option<&Principal>,
        target: Target<'_>,
        args: Option<Option<&Map<String, Value>>>,
    ) -> Decision {
        if self.is_unknown(target) {
            return Decision::Conceal;
        }
        self.decide_with(principal, target, self.requirement(target), args)
    }

    fn decide_with(
        &self,
        principal: Option<&Principal>,
        target: Target<'_>,
        req: &Requirement,
        args: Option<Option<&Map<String, Value>>>,
    ) -> Decision {
        if req.public {
            return Decision::Allow;
        }
        let Some(principal) = principal else {
            return if self.hides(target, req) {
                Decision::Conceal
            } else {
                Decision::Unauthenticated
            };
        };
        let held = principal.scopes();
        let mut required = req.scopes.clone();
        for rule in args.map_or(&[][..], |_| &req.when) {
            match rule.applies(args.flatten()) {
                Ok(true) => required.extend_from(&rule.scopes),
                Ok(false) => {}
                // Arguments the tool could not read never reach it. A caller who could not
                // use the operation with any arguments learns no more than that (a hidden
                // operation stays concealed); only one who could hears what is wrong.
                Err(e) => {
                    return match self.decide_with(Some(principal), target, req, None) {
                        Decision::Allow => Decision::InvalidArguments(e),
                        other => other,
                    };
                }
            }
        }
        if !req.any_of.is_empty()
            && !req
                .any_of
                .iter()
                .any(|alt| self.hierarchy.missing(held, alt).is_empty())
        {
            required.extend_from(&req.any_of[0]);
        }
        let missing = self.hierarchy.missing(held, &required);
        if !missing.is_empty() {
            if self.hides(target, req) {
                return Decision::Conceal;
            }
            let mut challenge = required.clone();
            for s in held.iter() {
                if self.catalogue.contains(s) {
                    let _ = challenge.insert(s);
                }
            }
            return Decision::InsufficientScope {
                required,
                missing,
                challenge: challenge.without(OFFLINE_ACCESS),
            };
        }
        let forbidden = match req.roles.iter().find(|r| !principal.roles().contains(r)) {
            Some(role) => Some(format!("requires the role `{role}`")),
            None => req
                .token_kind
                .filter(|k| *k != principal.token_kind())
                .map(|kind| format!("requires {kind}")),
        };
        match forbidden {
            Some(_) if self.hides(target, req) => Decision::Conceal,
            Some(reason) => Decision::Forbidden { reason },
            None => Decision::Allow,
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
    prompts: Vec<(String, Requirement)>,
    resources: Vec<(String, Requirement)>,
    default: Option<Requirement>,
    default_visibility: Visibility,
    known_tools: Option<std::collections::HashSet<String>>,
    known_prompts: Option<std::collections::HashSet<String>>,
    duplicates: Vec<String>,
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

    /// Declares every scope of a catalogue (as generated by `scopes!`), with its implications
    /// and baseline marks.
    pub fn catalogue(mut self, entries: &[CatalogueEntry]) -> Self {
        for e in entries {
            self.scopes.push(e.scope.to_owned());
            if !e.implies.is_empty() {
                self.implies.push((
                    e.scope.to_owned(),
                    e.implies.iter().map(|s| (*s).to_owned()).collect(),
                ));
            }
            if e.baseline {
                self.baseline.push(e.scope.to_owned());
            }
        }
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

    /// The requirement of one prompt.
    pub fn prompt(mut self, name: &str, requirement: Requirement) -> Self {
        self.prompts.push((name.to_owned(), requirement));
        self
    }

    /// The requirement of the resources matching a URI or URI template (`file:///docs/{name}`,
    /// `file:///{+path}`). The first matching template applies.
    pub fn resource(mut self, uri_template: &str, requirement: Requirement) -> Self {
        self.resources.push((uri_template.to_owned(), requirement));
        self
    }

    /// Every tool of the server, each with its declared requirement (`None`: the default).
    /// The policy then knows every tool: calls of other names are answered like calls of
    /// hidden tools. [`crate::policy_builder`] calls this with what `#[guarded]` collected.
    pub fn all_tools(
        mut self,
        tools: impl IntoIterator<Item = (String, Option<Requirement>)>,
    ) -> Self {
        let known = self.known_tools.get_or_insert_with(Default::default);
        for (name, req) in tools {
            if !known.insert(name.clone()) {
                // rmcp routes a name to one of them only: a rule must never be read for
                // another method's arguments.
                self.duplicates.push(name.clone());
            }
            if let Some(req) = req {
                self.tools.push((name, req));
            }
        }
        self
    }

    /// Every prompt of the server, each with its declared requirement (`None`: the default).
    pub fn all_prompts(
        mut self,
        prompts: impl IntoIterator<Item = (String, Option<Requirement>)>,
    ) -> Self {
        let known = self.known_prompts.get_or_insert_with(Default::default);
        for (name, req) in prompts {
            if !known.insert(name.clone()) {
                self.duplicates.push(name.clone());
            }
            if let Some(req) = req {
                self.prompts.push((name, req));
            }
        }
        self
    }

    /// The requirement of every tool, prompt and resource without its own (default: the
    /// baseline scopes). Defaults fail closed: an operation nobody declared needs at least what
    /// the baseline asks for, never merely some valid token, unless this says so.
    pub fn default_requirement(mut self, requirement: Requirement) -> Self {
        self.default = Some(requirement);
        self
    }

    /// Whether operations the caller may not use are hidden or listed when their own
    /// requirement does not say (default: listed).
    pub fn default_visibility(mut self, visibility: Visibility) -> Self {
        self.default_visibility = visibility;
        self
    }

    /// Validates and builds: every scope named anywhere must be declared, the hierarchy must
    /// have no cycle, and no operation may be listed twice.
    pub fn build(self) -> Result<Policy, PolicyError> {
        let catalogue = ScopeSet::try_from_iter(&self.scopes)?;
        if catalogue.len() != self.scopes.len() {
            let mut seen = ScopeSet::new();
            for s in &self.scopes {
                if seen.contains(s) {
                    return Err(PolicyError::DuplicateScope(s.clone()));
                }
                seen.insert(s)?;
            }
        }
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
        let default = self.default.unwrap_or_else(|| Requirement {
            scopes: baseline.clone(),
            ..Requirement::default()
        });
        let mut caller_dependent = self.default_visibility == Visibility::Hidden;
        let mut check = |req: &Requirement| -> Result<(), PolicyError> {
            for s in req.named_scopes() {
                known(s)?;
            }
            caller_dependent |= req.visibility == Some(Visibility::Hidden);
            Ok(())
        };
        check(&default)?;
        if let Some(name) = self.duplicates.into_iter().next() {
            return Err(PolicyError::Duplicate(name));
        }
        let mut tools = HashMap::new();
        for (name, req) in self.tools {
            check(&req)?;
            if tools.insert(name.clone(), req).is_some() {
                return Err(PolicyError::Duplicate(name));
            }
        }
        let mut prompts = HashMap::new();
        for (name, req) in self.prompts {
            check(&req)?;
            if prompts.insert(name.clone(), req).is_some() {
                return Err(PolicyError::Duplicate(name));
            }
        }
        let mut resources = Vec::new();
        for (template, req) in self.resources {
            check(&req)?;
            resources.push((UriTemplate::parse(&template)?, req));
        }
        Ok(Policy {
            catalogue,
            baseline,
            hierarchy: hierarchy.build()?,
            tools,
            prompts,
            resources,
            default,
            default_visibility: self.default_visibility,
            caller_dependent_lists: caller_dependent,
            known_tools: self.known_tools,
            known_prompts: self.known_prompts,
            scope_prefix: None,
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
    /// A scope is declared twice.
    #[error("scope `{0}` is declared twice")]
    DuplicateScope(String),
    /// An operation was given two requirements.
    #[error("`{0}` is given two requirements")]
    Duplicate(String),
    /// A URI template is malformed.
    #[error("`{0}` is not a valid URI template (unclosed `{{`)")]
    InvalidTemplate(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn principal(v: Value) -> Principal {
        let mut c = json!({"sub":"a","iss":"i","exp":1});
        c.as_object_mut()
            .unwrap()
            .extend(v.as_object().unwrap().clone());
        Principal::from_claims(c.as_object().unwrap().clone()).unwrap()
    }

    fn scoped(scope: &str) -> Principal {
        principal(json!({ "scope": scope }))
    }

    #[derive(serde::Deserialize)]
    struct WriteArgs {
        path: String,
    }

    fn shared_path(args: Option<&Map<String, Value>>) -> Result<bool, ArgumentsError> {
        let a: WriteArgs = deserialize_arguments(args)?;
        Ok(a.path.starts_with("/shared"))
    }

    fn policy() -> Policy {
        Policy::builder()
            .scope("files:read")
            .scope("files:write")
            .scope("files:shared")
            .scope_implying("files:admin", ["files:read", "files:write"])
            .scope("offline_access")
            .tool(
                "write",
                Requirement::scopes(["files:write"]).unwrap().when(
                    ArgRule::typed(
                        "path",
                        ArgTest::StartsWith("/shared".into()),
                        ["files:shared"],
                        shared_path,
                    )
                    .unwrap(),
                ),
            )
            .tool(
                "either",
                Requirement::default()
                    .or_scopes(["files:write"])
                    .unwrap()
                    .or_scopes(["files:shared"])
                    .unwrap(),
            )
            .tool(
                "secret",
                Requirement::scopes(["files:admin"]).unwrap().hidden(),
            )
            .tool("ops", Requirement::default().role("operator"))
            .tool("robot", Requirement::default().token_kind(TokenKind::App))
            .tool("open", Requirement::public())
            .build()
            .unwrap()
    }

    #[test]
    fn decisions() {
        let p = policy();
        assert_eq!(
            p.decide_tool(&scoped("files:admin"), "write"),
            Decision::Allow
        );
        assert_eq!(p.decide_tool(&scoped(""), "unlisted"), Decision::Allow);
        match p.decide_tool(&scoped("files:read offline_access other:x"), "write") {
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
    fn argument_rules_add_scopes_in_one_challenge() {
        let p = policy();
        let shared = json!({"path": "/shared/x"});
        let private = json!({"path": "/home/x"});
        let writer = scoped("files:write");
        assert_eq!(
            p.decide(Some(&writer), Target::Tool("write"), private.as_object()),
            Decision::Allow
        );
        match p.decide(
            Some(&scoped("files:read")),
            Target::Tool("write"),
            shared.as_object(),
        ) {
            Decision::InsufficientScope { required, .. } => {
                assert_eq!(required.to_string(), "files:shared files:write")
            }
            d => panic!("{d:?}"),
        }
    }

    #[test]
    fn a_hidden_operation_stays_concealed_whatever_its_arguments() {
        let p = Policy::builder()
            .scope("files:write")
            .scope("files:shared")
            .tool(
                "secret_write",
                Requirement::scopes(["files:write"])
                    .unwrap()
                    .role("operator")
                    .hidden()
                    .when(
                        ArgRule::typed("path", ArgTest::Truthy, ["files:shared"], shared_path)
                            .unwrap(),
                    ),
            )
            .build()
            .unwrap();
        let bad = json!({"path": 7});
        // The scopes but not the role: neither the tool nor its argument type is revealed.
        assert_eq!(
            p.decide(
                Some(&scoped("files:write files:shared")),
                Target::Tool("secret_write"),
                bad.as_object()
            ),
            Decision::Conceal
        );
    }

    #[test]
    fn two_operations_of_one_name_are_refused() {
        let r = Policy::builder()
            .scope("a")
            .all_tools([("t".to_owned(), None), ("t".to_owned(), None)])
            .build();
        assert_eq!(r.err(), Some(PolicyError::Duplicate("t".into())));
    }

    #[test]
    fn arguments_the_tool_cannot_read_are_refused_never_allowed() {
        let p = policy();
        let wrong = json!({"path": 5});
        for args in [wrong.as_object(), None] {
            assert!(matches!(
                p.decide(
                    Some(&scoped("files:write files:shared")),
                    Target::Tool("write"),
                    args
                ),
                Decision::InvalidArguments(_)
            ));
            // Without the operation's own scopes the caller learns only that.
            assert!(matches!(
                p.decide(Some(&scoped("files:read")), Target::Tool("write"), args),
                Decision::InsufficientScope { .. }
            ));
        }
    }

    #[test]
    fn alternatives_roles_kinds_visibility_public() {
        let p = policy();
        assert_eq!(
            p.decide_tool(&scoped("files:shared"), "either"),
            Decision::Allow
        );
        assert!(matches!(
            p.decide_tool(&scoped("files:read"), "either"),
            Decision::InsufficientScope { .. }
        ));
        assert_eq!(
            p.decide_tool(&scoped("files:read"), "secret"),
            Decision::Conceal
        );
        assert_eq!(
            p.decide(None, Target::Tool("secret"), None),
            Decision::Conceal
        );
        assert_eq!(
            p.decide(None, Target::Tool("write"), None),
            Decision::Unauthenticated
        );
        assert_eq!(p.decide(None, Target::Tool("open"), None), Decision::Allow);
        assert!(matches!(
            p.decide_tool(&scoped(""), "ops"),
            Decision::Forbidden { .. }
        ));
        assert_eq!(
            p.decide_tool(&principal(json!({"roles": ["operator"]})), "ops"),
            Decision::Allow
        );
        assert!(matches!(
            p.decide_tool(&scoped(""), "robot"),
            Decision::Forbidden { .. }
        ));
        assert_eq!(
            p.decide_tool(&principal(json!({"client_id": "a"})), "robot"),
            Decision::Allow
        );
        assert!(p.lists_depend_on_caller());
        assert!(p.has_public_operations());
    }

    #[test]
    fn templates() {
        let t = UriTemplate::parse("file:///docs/{name}").unwrap();
        assert!(t.matches("file:///docs/a.txt"));
        assert!(!t.matches("file:///docs/a/b.txt"));
        assert!(!t.matches("file:///docs/"));
        let r = UriTemplate::parse("file:///{+path}").unwrap();
        assert!(r.matches("file:///a/b/c"));
        assert!(UriTemplate::parse("file:///{oops").is_err());
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

    #[test]
    fn requirement_serializes_for_the_manifest() {
        let r = Requirement::scopes(["a"])
            .unwrap()
            .or_scopes(["b"])
            .unwrap()
            .role("r")
            .hidden()
            .when(
                ArgRule::typed("x.y", ArgTest::Equals("true".into()), ["c"], |_| Ok(true)).unwrap(),
            );
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            json!({
                "scopes": ["a"], "any_of": [["b"]], "roles": ["r"], "visibility": "hidden",
                "when": [{"field": ["x", "y"], "test": {"equals": "true"}, "scopes": ["c"]}],
            })
        );
        assert_eq!(
            r.security_schemes(),
            json!([{"type":"oauth2","scopes":["a","b"]}])
        );
        assert_eq!(
            Requirement::public().security_schemes(),
            json!([{"type":"noauth"}])
        );
    }
}
