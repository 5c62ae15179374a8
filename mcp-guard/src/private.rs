//! Not public API: what the macros' generated code names.

pub use crate::policy::Visibility;
pub use crate::principal::TokenKind;
pub use crate::rmcp::{PromptGuard, ToolGuard, list_tools};
pub use mcp_guard_macros::protected_expand;
pub use rmcp;

use crate::policy::{ArgRule, ArgTest, Requirement};
use crate::scope::ScopeSet;

/// A requirement as `#[protected]` writes it: constant data.
#[derive(Debug, Clone, Copy)]
pub struct RequirementSpec {
    pub scopes: &'static [&'static str],
    pub any_of: &'static [&'static [&'static str]],
    pub roles: &'static [&'static str],
    pub token_kind: Option<TokenKind>,
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
        when: &[],
        visibility: None,
        public: true,
    };
}

/// One `when(...)` rule.
#[derive(Debug, Clone, Copy)]
pub struct WhenSpec {
    pub field: &'static [&'static str],
    pub test: TestSpec,
    pub scopes: &'static [&'static str],
}

/// The test of a `when(...)` rule; `Equals` holds JSON text.
#[derive(Debug, Clone, Copy)]
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
            when: self
                .when
                .iter()
                .map(|w| ArgRule {
                    field: w.field.iter().map(|s| (*s).to_owned()).collect(),
                    test: match w.test {
                        TestSpec::StartsWith(p) => ArgTest::StartsWith(p.to_owned()),
                        TestSpec::Under(p) => ArgTest::Under(p.to_owned()),
                        TestSpec::Equals(json) => ArgTest::Equals(
                            serde_json::from_str(json).expect("the macro writes valid JSON"),
                        ),
                        TestSpec::Truthy => ArgTest::Truthy,
                    },
                    scopes: set(w.scopes),
                })
                .collect(),
            visibility: self.visibility,
            public: self.public,
        }
    }
}

/// The `_meta` `#[protected]` and `#[public]` put on a tool or prompt.
pub fn spec_meta(
    spec: &RequirementSpec,
    user: Option<rmcp::model::MetaObject>,
) -> rmcp::model::MetaObject {
    crate::rmcp::requirement_meta(&spec.requirement(), user)
}

/// What `#[guarded]` hands to rmcp's `#[prompt_handler]` as its router: the prompts, listed
/// without mcp-guard's internal requirement in their `_meta`.
pub struct GuardedPrompts<'a, S>(pub &'a rmcp::handler::server::router::prompt::PromptRouter<S>);

impl<S: Send + Sync + 'static> GuardedPrompts<'_, S> {
    /// Every prompt, with only the public `securitySchemes` in `_meta`.
    pub fn list_all(&self) -> Vec<rmcp::model::Prompt> {
        let mut prompts = self.0.list_all();
        for p in &mut prompts {
            if let Some(meta) = p.meta.as_mut() {
                meta.remove(crate::rmcp::REQUIREMENT_META_KEY);
            }
        }
        prompts
    }

    /// Runs the prompt.
    pub async fn get_prompt(
        &self,
        context: rmcp::handler::server::prompt::PromptContext<'_, S>,
    ) -> Result<rmcp::model::GetPromptResponse, rmcp::ErrorData> {
        self.0.get_prompt(context).await
    }
}
