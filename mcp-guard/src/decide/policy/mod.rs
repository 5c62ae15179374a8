//! What each operation requires, and the decision for one caller: tools, prompts and
//! resources → requirements (scopes, alternatives, roles, token kind, actor,
//! argument-dependent scopes, visibility), with the scope hierarchy honoured.

mod builder;
mod mirrored;
mod requirement;
mod uri_template;

pub use builder::{PolicyBuilder, PolicyError};
pub use requirement::{
    ActorRule, ArgCheck, ArgRule, ArgTest, ArgumentsError, Requirement, Visibility,
    deserialize_arguments,
};
pub use uri_template::UriTemplate;

pub(crate) use mirrored::{MirroredArgs, ParamHeader};
#[doc(hidden)]
pub use requirement::ArgProbe;

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::principal::{Principal, TokenKind};
use crate::scope::{CatalogueEntry, OFFLINE_ACCESS, ScopeError, ScopeHierarchy, ScopeSet};

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

/// A table of declared names (tools, prompts), built once and then only read: a request's
/// name is looked up, never added. With no entry an attacker can add, there is no collision
/// chain for a chosen name to walk, so the table hashes with FNV-1a, a few instructions per
/// byte, instead of the keyed SipHash a table that takes untrusted keys needs.
pub(crate) type Names<V> = HashMap<String, V, BuildHasherDefault<NameHasher>>;
pub(crate) type NameSet = HashSet<String, BuildHasherDefault<NameHasher>>;

/// FNV-1a, 64 bits, for [`Names`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct NameHasher(u64);

impl Default for NameHasher {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for NameHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    fn finish(&self) -> u64 {
        self.0
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
///     .advertised(["files:write"])
///     .tool("read_file", Requirement::scopes(["files:read"]).unwrap())
///     .tool("write_file", Requirement::scopes(["files:write"]).unwrap())
///     .build()
///     .unwrap();
/// // What clients are told to ask for: the baseline and the advertised scopes only.
/// assert_eq!(policy.scopes_supported().to_string(), "files:read files:write");
/// assert_eq!(policy.known_scopes().to_string(), "files:admin files:read files:write");
/// ```
#[derive(Debug, Clone, Default)]
pub struct Policy {
    catalogue: ScopeSet,
    baseline: ScopeSet,
    /// The baseline and the `#[advertised]` scopes, never `offline_access`.
    advertised: ScopeSet,
    /// Shared with every principal the guard verifies ([`Principal::has_scope`]).
    hierarchy: Arc<ScopeHierarchy>,
    tools: Names<Requirement>,
    prompts: Names<Requirement>,
    resources: Vec<(UriTemplate, Requirement)>,
    /// What an operation without its own declaration needs, tool, prompt or resource alike.
    default: Requirement,
    default_visibility: Visibility,
    caller_dependent_lists: bool,
    known_tools: Option<NameSet>,
    known_prompts: Option<NameSet>,
    /// The tools whose argument rules may be decided from `Mcp-Param-*` headers.
    mirrored: Names<MirroredArgs>,
    pub(crate) scope_prefix: Option<String>,
    /// The guard's posture: whether operations that need no scope work without a token.
    pub(crate) anonymous: bool,
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

    /// Whether the guard enforcing this policy is in the anonymous access posture
    /// ([`GuardBuilder::anonymous`](crate::GuardBuilder::anonymous)): only then do `#[public]`
    /// operations work without a token, and only then are they advertised as `noauth`.
    pub fn allows_anonymous(&self) -> bool {
        self.anonymous
    }

    /// Starts a policy.
    pub fn builder() -> PolicyBuilder {
        PolicyBuilder::default()
    }

    /// What the metadata's `scopes_supported` advertises by default: the baseline scopes and
    /// those marked advertised (`#[advertised]`, [`PolicyBuilder::advertised`]), never
    /// `offline_access`. Publishing every scope is what the MCP security best practices call
    /// a common mistake: clients that request all of `scopes_supported` end up with
    /// over-privileged tokens. The rest are asked for by step-up, when an operation needs them.
    pub fn scopes_supported(&self) -> ScopeSet {
        self.advertised.clone()
    }

    /// Every scope this resource knows (the catalogue, as the manifest lists it), never
    /// `offline_access`.
    pub fn known_scopes(&self) -> ScopeSet {
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

    /// The hierarchy, shared: what the guard attaches to the principals it verifies.
    pub(crate) fn shared_hierarchy(&self) -> &Arc<ScopeHierarchy> {
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

    /// Decides a requirement that belongs to no MCP operation (an HTTP route behind
    /// [`Guard::require`](crate::Guard::require)): never concealed, no arguments.
    pub(crate) fn decide_route(
        &self,
        principal: Option<&Principal>,
        req: &Requirement,
    ) -> Decision {
        let listed = req.clone().listed();
        self.decide_with(principal, Target::Resource(""), &listed, None)
    }

    /// Decides a `tools/call` whose argument rules all read top-level fields the tool's input
    /// schema mirrors into `Mcp-Param-*` headers, from the headers `header` reads (by
    /// lowercase name), without the body. `None` when any rule's outcome is not provably the
    /// one on the body ([`MirroredArgs::outcomes`]): the body must be read. Only for requests
    /// whose headers the transport checks against the body (2026-07-28).
    pub(crate) fn decide_from_headers(
        &self,
        principal: Option<&Principal>,
        target: Target<'_>,
        header: &dyn Fn(&str) -> ParamHeader,
    ) -> Option<Decision> {
        let Target::Tool(name) = target else {
            return None;
        };
        if self.is_unknown(target) {
            return None;
        }
        let req = self.requirement(target);
        let outcomes = self.mirrored.get(name)?.outcomes(&req.when, header)?;
        if !outcomes.contains(&true) {
            return Some(self.decide_with(principal, target, req, None));
        }
        let mut decided = req.clone();
        for (rule, applies) in req.when.iter().zip(outcomes) {
            if applies {
                decided.scopes.extend_from(&rule.scopes);
            }
        }
        decided.when.clear();
        Some(self.decide_with(principal, target, &decided, None))
    }

    /// The first scope a requirement names that the catalogue does not declare.
    pub(crate) fn undeclared_scope<'r>(&self, req: &'r Requirement) -> Option<&'r str> {
        req.named_scopes().find(|s| !self.catalogue.contains(s))
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
        let req = self.requirement(target);
        // Scopes the resource's URI names are decided with the arguments: a list (which
        // ignores them) shows what some URI of the template may serve.
        if let (Target::Resource(uri), Some(_)) = (target, args)
            && !req.uri_scopes.is_empty()
        {
            let Some((template, _)) = self.resources.iter().find(|(t, _)| t.matches(uri)) else {
                return self.decide_with(principal, target, req, args);
            };
            return match req.expand_uri_scopes(template, uri) {
                Ok(named) => {
                    let mut with_uri = req.clone();
                    with_uri.scopes.extend_from(&named);
                    self.decide_with(principal, target, &with_uri, args)
                }
                // The URI cannot name a scope: no token could be enough for it.
                Err(_) => match self.decide_with(principal, target, req, None) {
                    Decision::Allow => Decision::Forbidden {
                        reason: "cannot be read at this URI: its values do not make a valid scope"
                            .to_owned(),
                    },
                    other => other,
                },
            };
        }
        self.decide_with(principal, target, req, args)
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
        // Copied only when a rule adds to it: most decisions need the declared scopes alone.
        let mut required = Cow::Borrowed(&req.scopes);
        for rule in args.map_or(&[][..], |_| &req.when) {
            match rule.applies(args.flatten()) {
                Ok(true) => required.to_mut().extend_from(&rule.scopes),
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
            required.to_mut().extend_from(&req.any_of[0]);
        }
        let missing = self.hierarchy.missing(held, &required);
        if !missing.is_empty() {
            if self.hides(target, req) {
                return Decision::Conceal;
            }
            let required = required.into_owned();
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
                .map(|kind| format!("requires {kind}"))
                .or_else(|| {
                    req.actor
                        .as_ref()
                        .and_then(|a| a.refusal(principal))
                        .map(str::to_owned)
                }),
        };
        match forbidden {
            Some(_) if self.hides(target, req) => Decision::Conceal,
            Some(reason) => Decision::Forbidden { reason },
            None => Decision::Allow,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_name_hasher_is_fnv_1a() {
        for (text, expected) in [
            ("", 0xcbf2_9ce4_8422_2325_u64),
            ("a", 0xaf63_dc4c_8601_ec8c),
            ("foobar", 0x8594_4171_f739_67e8),
        ] {
            let mut h = NameHasher::default();
            h.write(text.as_bytes());
            assert_eq!(h.finish(), expected, "{text:?}");
        }
    }

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
    fn actor_rules_judge_the_current_actor_only() {
        let p = Policy::builder()
            .tool("agents", Requirement::default().actor(ActorRule::Required))
            .tool("people", Requirement::default().actor(ActorRule::Forbidden))
            .tool(
                "agent_a",
                Requirement::default().actor(ActorRule::one_of(["agent-a"])),
            )
            .tool(
                "hidden_agents",
                Requirement::default().actor(ActorRule::Required).hidden(),
            )
            .build()
            .unwrap();
        let user = scoped("");
        let by_a = principal(json!({"act": {"sub": "agent-a"}}));
        let by_b_for_a = principal(json!({"act": {"sub": "agent-b", "act": {"sub": "agent-a"}}}));
        let forbidden = |d: Decision| matches!(d, Decision::Forbidden { .. });
        assert!(forbidden(p.decide_tool(&user, "agents")));
        assert_eq!(p.decide_tool(&by_a, "agents"), Decision::Allow);
        assert_eq!(p.decide_tool(&user, "people"), Decision::Allow);
        assert!(forbidden(p.decide_tool(&by_a, "people")));
        assert_eq!(p.decide_tool(&by_a, "agent_a"), Decision::Allow);
        assert!(forbidden(p.decide_tool(&user, "agent_a")));
        assert!(
            forbidden(p.decide_tool(&by_b_for_a, "agent_a")),
            "a prior actor is not the one calling"
        );
        assert_eq!(p.decide_tool(&user, "hidden_agents"), Decision::Conceal);
        assert_eq!(
            serde_json::to_value(p.tool_requirement("agent_a")).unwrap(),
            json!({"actor": {"one_of": ["agent-a"]}})
        );
        assert_eq!(
            serde_json::to_value(p.tool_requirement("people")).unwrap(),
            json!({"actor": "forbidden"})
        );
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

    fn template_policy() -> Policy {
        Policy::builder()
            .scope("res:read")
            .resource(
                "test://template/{id}/data",
                Requirement::scopes(["res:read"])
                    .unwrap()
                    .uri_scope("res:template:{id}")
                    .unwrap(),
            )
            .resource(
                "test://docs/{+path}",
                Requirement::scopes(["res:read"])
                    .unwrap()
                    .uri_scope("docs:{path}")
                    .unwrap(),
            )
            .build()
            .unwrap()
    }

    #[test]
    fn uri_scopes_are_named_by_the_uri_read() {
        let p = template_policy();
        let read =
            |scopes: &str, uri: &str| p.decide(Some(&scoped(scopes)), Target::Resource(uri), None);
        match read("res:read", "test://template/123/data") {
            Decision::InsufficientScope {
                required, missing, ..
            } => {
                assert_eq!(required.to_string(), "res:read res:template:123");
                assert_eq!(missing.to_string(), "res:template:123");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            read("res:read res:template:123", "test://template/123/data"),
            Decision::Allow
        );
        // Another id is another scope.
        assert!(matches!(
            read("res:read res:template:123", "test://template/124/data"),
            Decision::InsufficientScope { .. }
        ));
        // `{+path}` takes the rest; a value that cannot be in a scope is refused for everyone.
        assert_eq!(
            read("res:read docs:a/b", "test://docs/a/b"),
            Decision::Allow
        );
        assert!(matches!(
            read("res:read docs:a\"b", "test://docs/a\"b"),
            Decision::Forbidden { .. }
        ));
        // Lists ignore them: some URI of the template may be read with `res:read`.
        assert_eq!(
            p.decide_ignoring_arguments(
                Some(&scoped("res:read")),
                Target::Resource("test://template/123/data")
            ),
            Decision::Allow
        );
    }

    #[test]
    fn uri_scopes_are_checked_when_the_policy_is_built() {
        let built = |template: &str, scope: &str| {
            Policy::builder()
                .resource(template, Requirement::default().uri_scope(scope).unwrap())
                .build()
        };
        assert!(built("test://t/{id}", "t:{id}").is_ok());
        assert!(matches!(
            built("test://t/{id}", "t:{other}"),
            Err(PolicyError::UnknownUriVariable { .. })
        ));
        let on_tool = Policy::builder()
            .tool("x", Requirement::default().uri_scope("t:{id}").unwrap())
            .build();
        assert!(matches!(
            on_tool,
            Err(PolicyError::UriScopeOutsideResource(_))
        ));
        for bad in ["t:{}", "t:{id", "t:id}", "t {id}", "t:\"{id}"] {
            assert!(Requirement::default().uri_scope(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn templates_capture_their_variables() {
        let t = UriTemplate::parse("test://template/{id}/data").unwrap();
        assert_eq!(
            t.captures("test://template/123/data"),
            Some(vec![("id", "123")])
        );
        assert_eq!(t.captures("test://template/1/2/data"), None);
        assert_eq!(t.captures("test://template//data"), None);
        let t = UriTemplate::parse("x://{a}/{+rest}").unwrap();
        assert_eq!(
            t.captures("x://one/two/three"),
            Some(vec![("a", "one"), ("rest", "two/three")])
        );
        assert_eq!(t.variables().collect::<Vec<_>>(), ["a", "rest"]);
    }
}
