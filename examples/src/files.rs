//! A small in-memory file store served over MCP, protected by mcp-guard.
//!
//! Tools and what they need:
//!
//! | tool | requirement |
//! |---|---|
//! | `echo` | any authenticated caller |
//! | `whoami` | any authenticated caller |
//! | `list_files`, `read_file` | `files:read` |
//! | `write_file` | `files:write` |
//! | `reset_store` | `files:admin` |
//!
//! `files:admin` implies `files:read` and `files:write`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use mcp_guard::{Policy, Principal, Requirement};
use rmcp::handler::server::{router::tool::ToolRouter, wrapper::Parameters};
use rmcp::{ServerHandler, tool, tool_handler, tool_router};
use serde::Deserialize;

/// The scope that reads files.
pub const FILES_READ: &str = "files:read";
/// The scope that writes files.
pub const FILES_WRITE: &str = "files:write";
/// The scope that administers the store; implies read and write.
pub const FILES_ADMIN: &str = "files:admin";

/// The server's authorization policy.
pub fn policy() -> Policy {
    Policy::builder()
        .scope(FILES_READ)
        .scope(FILES_WRITE)
        .scope_implying(FILES_ADMIN, [FILES_READ, FILES_WRITE])
        .baseline([FILES_READ])
        .tool(
            "list_files",
            Requirement::scopes([FILES_READ]).expect("valid scope"),
        )
        .tool(
            "read_file",
            Requirement::scopes([FILES_READ]).expect("valid scope"),
        )
        .tool(
            "write_file",
            Requirement::scopes([FILES_WRITE]).expect("valid scope"),
        )
        .tool(
            "reset_store",
            Requirement::scopes([FILES_ADMIN]).expect("valid scope"),
        )
        .build()
        .expect("the example policy is valid")
}

/// The store shared by every session.
pub type Store = Arc<Mutex<BTreeMap<String, String>>>;

/// The MCP server.
#[derive(Clone)]
pub struct FileServer {
    store: Store,
    tool_router: ToolRouter<Self>,
}

/// Arguments of `echo`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct EchoArgs {
    /// Text to send back.
    pub text: String,
}

/// Arguments naming one file.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct PathArgs {
    /// The file's path, e.g. `/notes/todo.txt`.
    pub path: String,
}

/// Arguments of `write_file`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct WriteArgs {
    /// The file's path.
    pub path: String,
    /// The new content.
    pub content: String,
}

impl FileServer {
    /// A server over a shared store.
    pub fn new(store: Store) -> Self {
        Self {
            store,
            tool_router: Self::tool_router(),
        }
    }

    fn files(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, String>> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[tool_router]
impl FileServer {
    /// Sends the text back.
    #[tool]
    async fn echo(&self, _caller: Principal, Parameters(args): Parameters<EchoArgs>) -> String {
        args.text
    }

    /// The caller's subject, client and scopes.
    #[tool]
    async fn whoami(&self, caller: Principal) -> String {
        serde_json::json!({
            "sub": caller.subject(),
            "client_id": caller.client_id(),
            "scopes": caller.scopes().to_vec(),
        })
        .to_string()
    }

    /// Lists the stored files.
    #[tool(annotations(read_only_hint = true))]
    async fn list_files(&self, _caller: Principal) -> String {
        self.files().keys().cloned().collect::<Vec<_>>().join("\n")
    }

    /// Reads one file.
    #[tool(annotations(read_only_hint = true))]
    async fn read_file(
        &self,
        _caller: Principal,
        Parameters(args): Parameters<PathArgs>,
    ) -> Result<String, String> {
        self.files()
            .get(&args.path)
            .cloned()
            .ok_or_else(|| format!("no such file: {}", args.path))
    }

    /// Creates or replaces one file.
    #[tool]
    async fn write_file(
        &self,
        caller: Principal,
        Parameters(args): Parameters<WriteArgs>,
    ) -> String {
        let len = args.content.len();
        self.files().insert(args.path.clone(), args.content);
        format!("{} wrote {len} bytes to {}", caller.subject(), args.path)
    }

    /// Deletes every file.
    #[tool(annotations(destructive_hint = true))]
    async fn reset_store(&self, _caller: Principal) -> String {
        let mut files = self.files();
        let n = files.len();
        files.clear();
        format!("deleted {n} files")
    }
}

#[tool_handler(router = self.tool_router, name = "mcp-guard-files", version = "0.1.0")]
impl ServerHandler for FileServer {}
