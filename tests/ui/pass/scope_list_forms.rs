//! The forms a scope list takes: a string of space-separated scopes, a name, a qualified
//! name, and a list mixing names and strings.

use mcp_guard::{ProtectedResource, guarded, protected};
use rmcp::{ServerHandler, tool, tool_handler, tool_router};

mcp_guard::scopes! {
    pub Scopes {
        #[baseline]
        MAIL_READ = "mail:read",
        MAIL_SEND = "mail:send",
        CONTACTS_READ = "contacts.read",
        ADMIN = "https://example.com/admin",
    }
}

#[derive(ProtectedResource)]
#[protected_resource(scopes = Scopes)]
pub struct Mail;

#[guarded]
#[tool_router]
impl Mail {
    /// Two scopes in one string.
    #[protected(scopes = "mail:read contacts.read")]
    #[tool]
    async fn search(&self) -> String {
        String::new()
    }

    /// A name and a string together.
    #[protected(scopes = [MAIL_SEND, "contacts.read"])]
    #[tool]
    async fn send(&self) -> String {
        String::new()
    }

    /// A qualified name; a URI scope.
    #[protected(scopes = [Scopes::MAIL_READ, "https://example.com/admin"])]
    #[tool]
    async fn purge(&self) -> String {
        String::new()
    }

    /// Alternatives, each a string of several scopes or a name.
    #[protected(any_of = ["mail:read mail:send", ADMIN])]
    #[tool]
    async fn forward(&self) -> String {
        String::new()
    }
}

#[guarded]
#[tool_handler(name = "mail", version = "0.1.0")]
impl ServerHandler for Mail {}

fn main() {
    let policy = mcp_guard::policy_builder::<Mail>().build().unwrap();
    let scopes = |tool: &str| policy.tool_requirement(tool).scopes.to_vec();
    assert_eq!(scopes("search").len(), 2);
    assert!(scopes("search").iter().any(|s| s == "contacts.read"));
    assert_eq!(scopes("send").len(), 2);
    assert!(
        scopes("purge")
            .iter()
            .any(|s| s == "https://example.com/admin")
    );
    let forward = &policy.tool_requirement("forward").any_of;
    assert_eq!(forward.len(), 2);
    assert_eq!(forward[0].len(), 2);
}
