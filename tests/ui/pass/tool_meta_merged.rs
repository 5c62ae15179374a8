//! A `meta = ...` the user gives `#[tool]` is kept; mcp-guard adds its keys beside it.

use mcp_guard::{ProtectedResource, guarded, protected, public};
use rmcp::model::MetaObject;
use rmcp::{ServerHandler, tool, tool_handler, tool_router};

mcp_guard::scopes! {
    pub Scopes {
        FILES_READ = "files:read",
    }
}

#[derive(ProtectedResource)]
#[protected_resource(scopes = Scopes)]
pub struct Server;

fn ui_meta() -> MetaObject {
    let mut meta = MetaObject::default();
    meta.insert("ui/resourceUri".into(), "ui://files/list.html".into());
    meta
}

#[guarded]
#[tool_router]
impl Server {
    /// Lists files; the user's meta is merged.
    #[protected(scopes = FILES_READ)]
    #[tool(name = "list", meta = ui_meta(), annotations(read_only_hint = true))]
    async fn list_files(&self) -> String {
        String::new()
    }

    /// Public, with the user's meta too.
    #[public]
    #[tool(meta = ui_meta())]
    async fn about(&self) -> String {
        String::new()
    }
}

#[guarded]
#[tool_handler]
impl ServerHandler for Server {}

fn main() {
    let tools = <Server as mcp_guard::DeclaredOperations>::declared_tools();
    for name in ["list", "about"] {
        let (tool, _) = tools
            .iter()
            .find(|(t, _)| t.name == name)
            .expect("the tool is routed");
        let meta = tool.meta.as_ref().expect("the tool has meta");
        assert_eq!(meta.get("ui/resourceUri").unwrap(), "ui://files/list.html");
        assert!(meta.get("securitySchemes").is_some());
        assert_eq!(meta.len(), 2);
    }
    let policy = mcp_guard::policy_builder::<Server>().build().unwrap();
    assert!(
        policy
            .tool_requirement("list")
            .scopes
            .contains("files:read")
    );
    assert!(policy.tool_requirement("about").public);
}
