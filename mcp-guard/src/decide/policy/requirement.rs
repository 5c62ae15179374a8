//! What one operation requires: scopes, alternatives, roles, token kind, actor, argument rules
//! and visibility.

#[allow(unused_imports)]
use super::*;

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

/// What an operation requires of the token's RFC 8693 actor (the `act` claim, read into
/// [`Principal::actors`]). Only the current actor counts: RFC 8693 §4.1 makes prior actors
/// informational.
///
/// A caller who does not meet it is refused with 403 and no challenge, as for a role or a
/// token kind: no scope could help.
///
/// ```
/// use mcp_guard::policy::{ActorRule, Requirement};
/// let by_agents = Requirement::default().actor(ActorRule::one_of(["agent-a", "agent-b"]));
/// let users_only = Requirement::default().actor(ActorRule::Forbidden);
/// # assert_eq!(by_agents.actor, Some(ActorRule::OneOf(vec!["agent-a".into(), "agent-b".into()])));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ActorRule {
    /// The token must name an actor: someone calls on behalf of the subject.
    Required,
    /// The token must not name an actor: the subject calls itself.
    Forbidden,
    /// The token must name an actor, and the current actor's `sub` must be one of these
    /// (compared exactly).
    OneOf(Vec<String>),
}

impl ActorRule {
    /// [`ActorRule::OneOf`] these actor subjects.
    pub fn one_of<I, S>(subjects: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::OneOf(subjects.into_iter().map(Into::into).collect())
    }

    /// Why `principal` does not meet the rule (the end of a sentence starting with the
    /// operation), or `None` when it does.
    pub(crate) fn refusal(&self, principal: &Principal) -> Option<&'static str> {
        let actor = principal.actor();
        match self {
            ActorRule::Required if actor.is_none() => {
                Some("requires a token naming an actor (RFC 8693 `act`)")
            }
            ActorRule::Forbidden if actor.is_some() => {
                Some("refuses tokens naming an actor (RFC 8693 `act`)")
            }
            ActorRule::OneOf(allowed)
                if !actor.is_some_and(|a| allowed.iter().any(|s| s == a.subject())) =>
            {
                Some("requires a token naming one of its accepted actors (RFC 8693 `act`)")
            }
            _ => None,
        }
    }
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

/// What `#[protected]` writes beside an [`ArgCheck`] for a rule on a top-level field: the
/// rule's outcome on these arguments, `Ok(None)` unless the field it reads holds exactly the
/// given value once they are deserialized, an error when they do not deserialize (see the
/// `mirrored` module of the policy). Not public API.
#[doc(hidden)]
pub type ArgProbe = fn(&Map<String, Value>, &Value) -> Result<Option<bool>, ArgumentsError>;

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
    #[serde(skip)]
    pub(crate) probe: Option<ArgProbe>,
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
            probe: None,
        })
    }

    /// The same rule, decidable from `Mcp-Param-*` headers through `probe`.
    pub(crate) fn with_probe(mut self, probe: Option<ArgProbe>) -> Self {
        self.probe = probe;
        self
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
    /// What is required of the token's actor (RFC 8693 `act`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<ActorRule>,
    /// Argument-dependent scopes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub when: Vec<ArgRule>,
    /// Scopes named by a resource's URI: `{var}` in each is the value of that variable of the
    /// resource's URI template in the URI read ([`Requirement::uri_scope`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub uri_scopes: Vec<String>,
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

    /// Requires (or refuses) an actor ([`ActorRule`]).
    ///
    /// ```
    /// use mcp_guard::policy::{ActorRule, Requirement};
    /// let delegated = Requirement::scopes(["files:write"]).unwrap().actor(ActorRule::Required);
    /// ```
    pub fn actor(mut self, rule: ActorRule) -> Self {
        self.actor = Some(rule);
        self
    }

    /// Adds a scope named by the URI of the resource read: each `{var}` is replaced with the
    /// value of that variable of the resource's URI template, so reading
    /// `test://template/123/data` through the template `test://template/{id}/data` with
    /// `uri_scope("mcp:conformance:resources:template:{id}")` needs
    /// `mcp:conformance:resources:template:123`. Only resource requirements may have them, and
    /// every variable must be one of the template's; a URI whose values do not make a valid
    /// scope token is refused. Such scopes are not declared in the catalogue and never
    /// advertised; a caller who lacks one is challenged with it, like any other.
    ///
    /// ```
    /// use mcp_guard::policy::Requirement;
    /// let item = Requirement::scopes(["items:read"])
    ///     .unwrap()
    ///     .uri_scope("items:read:{id}")
    ///     .unwrap();
    /// assert_eq!(item.uri_scopes, ["items:read:{id}"]);
    /// assert!(Requirement::default().uri_scope("bad scope {id}").is_err());
    /// ```
    pub fn uri_scope(mut self, template: &str) -> Result<Self, ScopeError> {
        let mut probe = String::with_capacity(template.len());
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            let close = rest[open..]
                .find('}')
                .filter(|c| *c > 1)
                .ok_or_else(|| ScopeError::UriScope(template.to_owned()))?;
            probe.push_str(&rest[..open]);
            probe.push('x');
            rest = &rest[open + close + 1..];
        }
        probe.push_str(rest);
        if probe.contains('}') {
            return Err(ScopeError::UriScope(template.to_owned()));
        }
        crate::scope::validate_scope_token(&probe)
            .map_err(|_| ScopeError::UriScope(template.to_owned()))?;
        self.uri_scopes.push(template.to_owned());
        Ok(self)
    }

    /// The URI scopes of this requirement for a URI read through `template`: `Err` when a
    /// value does not make a valid scope token.
    pub(crate) fn expand_uri_scopes(
        &self,
        template: &UriTemplate,
        uri: &str,
    ) -> Result<ScopeSet, ScopeError> {
        let mut out = ScopeSet::new();
        if self.uri_scopes.is_empty() {
            return Ok(out);
        }
        let values = template.captures(uri).unwrap_or_default();
        for scope in &self.uri_scopes {
            let mut expanded = String::with_capacity(scope.len() + 16);
            let mut rest = scope.as_str();
            while let Some(open) = rest.find('{') {
                let close = open + rest[open..].find('}').unwrap_or(rest.len() - open);
                expanded.push_str(&rest[..open]);
                let name = &rest[open + 1..close];
                let value = values
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| *v)
                    .ok_or_else(|| ScopeError::UriScope(scope.clone()))?;
                expanded.push_str(value);
                rest = &rest[(close + 1).min(rest.len())..];
            }
            expanded.push_str(rest);
            out.insert(&expanded)?;
        }
        Ok(out)
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
    pub(crate) fn named_scopes(&self) -> impl Iterator<Item = &str> {
        self.scopes
            .iter()
            .chain(self.any_of.iter().flat_map(ScopeSet::iter))
            .chain(self.when.iter().flat_map(|r| r.scopes.iter()))
    }

    /// The SEP-1488 `securitySchemes` value advertising this requirement:
    /// `[{"type":"noauth"}]` for public operations, otherwise one `oauth2` scheme per
    /// alternative with the scopes it needs (argument-dependent scopes are not included).
    /// Lists served through the guard adjust it to the posture: in the sign-in posture a
    /// public operation needs a token, and is advertised as `oauth2` without scopes.
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
