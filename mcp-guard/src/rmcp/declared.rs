//! The link between a server type and its guard: what `#[derive(ProtectedResource)]` and
//! `#[guarded]` generate, the policy collected from them, and the authorization manifest.

use serde_json::{Value, json};

use rmcp::model::MetaObject;

use crate::policy::{
    ActorRule, ArgCheck, ArgProbe, ArgRule, ArgTest, Policy, PolicyBuilder, Requirement, Visibility,
};
use crate::principal::TokenKind;
use crate::scope::CatalogueEntry;
use crate::scope::ScopeSet;

/// What `#[derive(ProtectedResource)]` states about a server: its scope catalogue and the
/// metadata known at compile time. Values known only at run time override it through the
/// [`GuardBuilder`](crate::GuardBuilder).
#[derive(Debug, Clone, Copy)]
pub struct ResourceDescriptor {
    /// The scope catalogue.
    pub catalogue: &'static [CatalogueEntry],
    /// The resource URL, if known at compile time.
    pub resource: Option<&'static str>,
    /// Issuer identifiers of the authorization servers.
    pub authorization_servers: &'static [&'static str],
    /// `resource_name`.
    pub name: Option<&'static str>,
    /// `resource_documentation`.
    pub documentation: Option<&'static str>,
    /// `resource_policy_uri`.
    pub policy_uri: Option<&'static str>,
    /// `resource_tos_uri`.
    pub tos_uri: Option<&'static str>,
    /// Hide operations from callers who may not use them, unless an operation says otherwise.
    pub hide_unauthorized: bool,
    /// The anonymous access posture ([`GuardBuilder::anonymous`](crate::GuardBuilder::anonymous)).
    pub anonymous: bool,
}

/// A server type described by `#[derive(ProtectedResource)]`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not describe the resource it protects",
    label = "`{Self}` has no `#[derive(ProtectedResource)]`",
    note = "add `#[derive(mcp_guard::ProtectedResource)]` and `#[protected_resource(scopes = YourScopes, resource = \"https://…/mcp\")]` to the struct `{Self}`",
    note = "or configure the guard without the type: `Guard::builder().resource(..).policy(..)`"
)]
pub trait ProtectedResource {
    /// The description.
    const DESCRIPTOR: ResourceDescriptor;
}

/// A server whose `#[tool_handler]` impl carries `#[guarded]`: its operations and their
/// declarations, collected at compile time from the `#[guarded]` `#[tool_router]` (and
/// `#[prompt_router]`) impls. Everything here is known from the type alone.
#[diagnostic::on_unimplemented(
    message = "`{Self}` declares no guarded operations",
    label = "the guard reads the operations of `{Self}` from its `#[guarded]` impls",
    note = "write `#[mcp_guard::guarded]` above `#[tool_router]` (and `#[prompt_router]`) on the impl that declares the tools, and above `#[tool_handler]` on `impl ServerHandler for {Self}`"
)]
pub trait DeclaredOperations {
    /// Every tool, with its `#[protected]` or `#[public]` requirement (`None`: undeclared, so
    /// the policy's default applies).
    fn declared_tools() -> Vec<(rmcp::model::Tool, Option<Requirement>)>;

    /// Every prompt, likewise.
    fn declared_prompts() -> Vec<(rmcp::model::Prompt, Option<Requirement>)> {
        Vec::new()
    }

    /// Whether the server's `get_tool` answers with the tools of
    /// [`declared_tools`](Self::declared_tools), so that rmcp checks a call's `Mcp-Param-*`
    /// headers against the schemas declared there (rmcp skips the check for a tool
    /// `get_tool` does not give). `#[guarded]` says so when `#[tool_handler]` writes
    /// `get_tool`; otherwise argument rules are always decided on the body.
    fn serves_declared_schemas() -> bool {
        false
    }
}

/// The policy of a server: its catalogue (hierarchy, baseline), the requirements its
/// `#[protected]` and `#[public]` operations declare, and the default for the others (the
/// baseline scopes).
pub fn policy_builder<S: ProtectedResource + DeclaredOperations>() -> PolicyBuilder {
    let d = S::DESCRIPTOR;
    let visibility = if d.hide_unauthorized {
        Visibility::Hidden
    } else {
        Visibility::Listed
    };
    let tools = S::declared_tools();
    let mut builder = Policy::builder()
        .catalogue(d.catalogue)
        .default_visibility(visibility);
    // The schema rmcp checks `Mcp-Param-*` headers against is the input schema `get_tool`
    // gives, the declared one when `#[tool_handler]` wrote `get_tool`.
    for (tool, req) in &tools {
        if S::serves_declared_schemas() && req.as_ref().is_some_and(|r| !r.when.is_empty()) {
            builder = builder.mirrored_arguments(&tool.name, &tool.input_schema);
        }
    }
    builder
        .all_tools(tools.into_iter().map(|(t, r)| (t.name.into_owned(), r)))
        .all_prompts(S::declared_prompts().into_iter().map(|(p, r)| (p.name, r)))
}

/// The whole server's authorization manifest as JSON: the posture its derive declares (the
/// SEP-2742 `auth` block; a [`GuardBuilder::anonymous`](crate::GuardBuilder::anonymous)
/// override shows in [`Guard::auth_declaration`](crate::Guard::auth_declaration)), the scope
/// catalogue (with docs, implications, baseline and advertised marks) and each tool's and
/// prompt's requirement with its security schemes. For review, and for configuring the
/// identity provider's scopes.
pub fn manifest<S: ProtectedResource + DeclaredOperations>() -> Value {
    let d = S::DESCRIPTOR;
    let scopes: Vec<Value> = d
        .catalogue
        .iter()
        .map(|e| {
            json!({
                "scope": e.scope,
                "description": e.doc,
                "implies": e.implies,
                "baseline": e.baseline,
                "advertised": e.baseline || e.advertised,
            })
        })
        .collect();
    let entry = |name: &str, req: Option<Requirement>| -> Value {
        json!({
            "name": name,
            "requirement": match &req {
                Some(r) => serde_json::to_value(r).expect("requirements serialize"),
                None => json!({ "default": "baseline scopes" }),
            },
            "securitySchemes": req.map(|r| {
                let mut schemes = r.security_schemes();
                if let Value::Array(list) = &mut schemes {
                    list.iter_mut().for_each(|s| scheme_in_posture(s, d.anonymous));
                }
                schemes
            }),
        })
    };
    let tools: Vec<Value> = S::declared_tools()
        .into_iter()
        .map(|(t, r)| entry(&t.name, r))
        .collect();
    let prompts: Vec<Value> = S::declared_prompts()
        .into_iter()
        .map(|(p, r)| entry(&p.name, r))
        .collect();
    json!({
        "resource": d.resource,
        "auth": auth_declaration(d.anonymous),
        "authorization_servers": d.authorization_servers,
        "scopes": scopes,
        "tools": tools,
        "prompts": prompts,
    })
}

/// One operation of a `#[guarded]` router: rmcp's description of it (its name is the one
/// rmcp routes by) and its declaration (`None`: neither `#[protected]` nor `#[public]`).
#[derive(Debug, Clone, Copy)]
#[doc(hidden)]
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
#[doc(hidden)]
pub trait DeclaredTools {
    const TOOLS: &'static [Declaration<rmcp::model::Tool>];
}

/// Implemented by `#[guarded]` above `#[prompt_router]`: every prompt and its declaration.
#[diagnostic::on_unimplemented(
    message = "`{Self}` has no guarded prompt router",
    label = "the policy is collected from the `#[prompt_router]` impl of `{Self}`",
    note = "write `#[mcp_guard::guarded]` above `#[prompt_router]` on the impl that declares the prompts"
)]
#[doc(hidden)]
pub trait DeclaredPrompts {
    const PROMPTS: &'static [Declaration<rmcp::model::Prompt>];
}

/// What [`crate::DeclaredOperations`] returns for a table: each operation's description and
/// requirement.
#[doc(hidden)]
pub fn declared<T>(table: &[Declaration<T>]) -> Vec<(T, Option<Requirement>)> {
    table
        .iter()
        .map(|d| ((d.attr)(), d.requirement.map(RequirementSpec::requirement)))
        .collect()
}

/// One advertised security scheme as the posture makes it true: `noauth` holds only in the
/// anonymous access posture; in the sign-in posture an operation that needs no scope still
/// needs a token, `{"type":"oauth2","scopes":[]}`.
pub(crate) fn scheme_in_posture(scheme: &mut Value, anonymous: bool) {
    if !anonymous && scheme.get("type").and_then(Value::as_str) == Some("noauth") {
        *scheme = json!({ "type": "oauth2", "scopes": [] });
    }
}

/// The server-level authentication declaration (the `auth` block SEP-2742, a draft, proposes
/// for `server.json` and server cards): `required` in the sign-in posture, where clients
/// sign in before `initialize`; `optional` in the anonymous access posture, where they sign in
/// when a protected operation answers with a challenge. The one method is OAuth, discovered
/// from the protected resource metadata.
pub(crate) fn auth_declaration(anonymous: bool) -> Value {
    json!({
        "posture": if anonymous { "optional" } else { "required" },
        "methods": [{ "type": "oauth" }],
    })
}

/// The `_meta` key of the advertised SEP-1488 security schemes.
pub(crate) const SECURITY_SCHEMES_META_KEY: &str = "securitySchemes";

/// The `_meta` of a protected operation: the advertised `securitySchemes`, merged into the
/// user's own `_meta` if any.
pub(crate) fn requirement_meta(requirement: &Requirement, user: Option<MetaObject>) -> MetaObject {
    let mut meta = user.unwrap_or_default();
    meta.insert(
        SECURITY_SCHEMES_META_KEY.into(),
        requirement.security_schemes(),
    );
    meta
}

/// A requirement as `#[protected]` writes it: constant data, emitted beside the method.
#[derive(Debug, Clone, Copy)]
#[doc(hidden)]
pub struct RequirementSpec {
    pub scopes: &'static [&'static str],
    pub any_of: &'static [&'static [&'static str]],
    pub roles: &'static [&'static str],
    pub token_kind: Option<TokenKind>,
    pub actor: Option<ActorSpec>,
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
        actor: None,
        when: &[],
        visibility: None,
        public: true,
    };
}

/// `actor = ...` as written: `"required"`, `"forbidden"` or a list of actor subjects.
#[derive(Debug, Clone, Copy)]
#[doc(hidden)]
pub enum ActorSpec {
    Required,
    Forbidden,
    OneOf(&'static [&'static str]),
}

/// One `when(...)` rule: its description for the manifest and the test that runs, a function
/// the macro wrote over the operation's argument type.
#[derive(Debug, Clone, Copy)]
#[doc(hidden)]
pub struct WhenSpec {
    pub field: &'static [&'static str],
    pub test: TestSpec,
    pub scopes: &'static [&'static str],
    pub check: ArgCheck,
    /// The same test decided from the values of `Mcp-Param-*` headers (`None`: the body is
    /// always read).
    pub probe: Option<ArgProbe>,
}

/// The test of a `when(...)` rule as written; `Equals` holds the compared expression's text.
#[derive(Debug, Clone, Copy)]
#[doc(hidden)]
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
            actor: self.actor.map(|a| match a {
                ActorSpec::Required => ActorRule::Required,
                ActorSpec::Forbidden => ActorRule::Forbidden,
                ActorSpec::OneOf(subjects) => ActorRule::one_of(subjects.iter().copied()),
            }),
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
                        .with_probe(w.probe)
                })
                .collect(),
            uri_scopes: Vec::new(),
            visibility: self.visibility,
            public: self.public,
        }
    }
}

/// The `_meta` `#[protected]` and `#[public]` put on a tool or prompt: the advertised
/// `securitySchemes`, merged into the user's own `_meta` if any. The requirement itself
/// travels as the constant the guard is built from, not in `_meta`.
#[doc(hidden)]
pub fn spec_meta(
    spec: &RequirementSpec,
    user: Option<rmcp::model::MetaObject>,
) -> rmcp::model::MetaObject {
    requirement_meta(&spec.requirement(), user)
}
