//! The link between a server type and its guard: what `#[derive(ProtectedResource)]` and
//! `#[guarded]` generate, the policy collected from them, and the authorization manifest.

use serde_json::{Value, json};

use crate::policy::{Policy, PolicyBuilder, Requirement, Visibility};
use crate::scope::CatalogueEntry;

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
}

/// A server type described by `#[derive(ProtectedResource)]`.
pub trait ProtectedResource {
    /// The description.
    const DESCRIPTOR: ResourceDescriptor;
}

/// A server whose `#[tool_handler]` impl carries `#[guarded]`: its operations and their
/// declarations, collected at compile time from the `#[guarded]` `#[tool_router]` (and
/// `#[prompt_router]`) impls. Everything here is known from the type alone.
pub trait GuardedServer {
    /// Every tool, with its `#[protected]` or `#[public]` requirement (`None`: undeclared, so
    /// the policy's default applies).
    fn declared_tools() -> Vec<(rmcp::model::Tool, Option<Requirement>)>;

    /// Every prompt, likewise.
    fn declared_prompts() -> Vec<(rmcp::model::Prompt, Option<Requirement>)> {
        Vec::new()
    }
}

/// The policy of a server: its catalogue (hierarchy, baseline), the requirements its
/// `#[protected]` and `#[public]` operations declare, and the default for the others (the
/// baseline scopes).
pub fn policy_builder<S: ProtectedResource + GuardedServer>() -> PolicyBuilder {
    let d = S::DESCRIPTOR;
    let visibility = if d.hide_unauthorized {
        Visibility::Hidden
    } else {
        Visibility::Listed
    };
    Policy::builder()
        .catalogue(d.catalogue)
        .default_visibility(visibility)
        .all_tools(
            S::declared_tools()
                .into_iter()
                .map(|(t, r)| (t.name.into_owned(), r)),
        )
        .all_prompts(S::declared_prompts().into_iter().map(|(p, r)| (p.name, r)))
}

/// The whole server's authorization manifest as JSON: the scope catalogue (with docs,
/// implications and baseline marks) and each tool's and prompt's requirement. For review,
/// and for configuring the identity provider's scopes.
pub fn manifest<S: ProtectedResource + GuardedServer>() -> Value {
    let d = S::DESCRIPTOR;
    let scopes: Vec<Value> = d
        .catalogue
        .iter()
        .map(|e| json!({ "scope": e.scope, "description": e.doc, "implies": e.implies, "baseline": e.baseline }))
        .collect();
    let entry = |name: &str, req: Option<Requirement>| -> Value {
        json!({
            "name": name,
            "requirement": match &req {
                Some(r) => serde_json::to_value(r).expect("requirements serialize"),
                None => json!({ "default": "baseline scopes" }),
            },
            "securitySchemes": req.map(|r| r.security_schemes()),
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
        "authorization_servers": d.authorization_servers,
        "scopes": scopes,
        "tools": tools,
        "prompts": prompts,
    })
}
