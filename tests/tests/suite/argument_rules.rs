//! Argument rules (`#[protected(when(...))]`) are decided on the arguments as the tool
//! deserializes them: serde's `rename_all`, `alias`, `flatten`, `Option` and enums, through
//! the HTTP layer in both wire formats and through the in-process guard with the layer
//! bypassed. Arguments the tool cannot read are refused, never allowed. Tools that declare
//! nothing are guarded in-process too.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use mcp_guard::{Guard, Issuer, Principal, ProtectedResource, guarded, protected, public};
use mcp_guard_tests::server::{STATELESS, bind, post_stateless, stateless_body};
use mcp_guard_tests::{Answer, TestIssuer, TestKey, TestServer, claims};
use rmcp::handler::server::router::prompt::PromptRouter;
use rmcp::handler::server::{router::tool::ToolRouter, wrapper::Parameters};
use rmcp::model::{PromptMessage, Role};
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ServerHandler, prompt, prompt_handler, prompt_router, tool, tool_handler, tool_router};
use serde::Deserialize;
use serde_json::{Value, json};

mcp_guard::scopes! {
    /// A deployment service's scopes.
    pub Scopes {
        /// Use the service.
        #[baseline]
        DEPLOY = "deploy",
        /// Write under `/shared`.
        SHARED = "files:shared",
        /// Deploy to production.
        PROD = "deploy:prod",
        /// Force a deployment.
        FORCE = "deploy:force",
    }
}

/// `write`'s arguments in the usual MCP shape: `filePath` on the wire.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WriteArgs {
    /// Where to write.
    pub file_path: String,
}

/// `touch`'s arguments: `path`, or `p` for short.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct TouchArgs {
    /// What to touch.
    #[serde(alias = "p")]
    pub path: String,
}

/// Where a deployment goes.
#[derive(Debug, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    /// Staging.
    Staging,
    /// Production.
    Production,
}

/// The target of a deployment, flattened into `deploy`'s arguments.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct Target {
    /// The environment; `env` on the wire.
    #[serde(rename = "env")]
    pub environment: Environment,
}

/// `deploy`'s arguments: `{"env": "...", "force": true}`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct DeployArgs {
    /// Where to.
    #[serde(flatten)]
    pub target: Target,
    /// Skip the checks.
    #[serde(default)]
    pub force: Option<bool>,
}

/// How many times each tool body ran.
#[derive(Debug, Default)]
pub struct Runs(AtomicUsize);

/// The service.
#[derive(Clone, ProtectedResource)]
#[protected_resource(scopes = Scopes, name = "deployments")]
pub struct Deployments {
    tool_router: ToolRouter<Self>,
    prompt_router: PromptRouter<Self>,
    runs: Arc<Runs>,
}

/// `release_notes`' arguments: `stage` on the wire.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct NotesArgs {
    /// For which environment.
    #[serde(rename = "stage")]
    pub environment: Environment,
}

impl Deployments {
    fn new(runs: Arc<Runs>) -> Self {
        Self {
            tool_router: Self::tool_router(),
            prompt_router: Self::prompt_router(),
            runs,
        }
    }

    fn ran(&self, what: String) -> String {
        self.runs.0.fetch_add(1, Ordering::SeqCst);
        what
    }
}

#[guarded]
#[tool_router]
impl Deployments {
    /// Writes a file; under `/shared` it needs `files:shared`.
    #[protected(scopes = DEPLOY, when(file_path.under("/shared"), scopes = SHARED))]
    #[tool]
    async fn write(&self, Parameters(args): Parameters<WriteArgs>) -> String {
        self.ran(format!("wrote {}", args.file_path))
    }

    /// Touches a file; under `/shared` it needs `files:shared`.
    #[protected(scopes = DEPLOY, when(path.under("/shared"), scopes = SHARED))]
    #[tool]
    async fn touch(&self, Parameters(args): Parameters<TouchArgs>) -> String {
        self.ran(format!("touched {}", args.path))
    }

    /// Deploys; production needs `deploy:prod`, forcing needs `deploy:force`.
    #[protected(
        scopes = DEPLOY,
        when(target.environment == Environment::Production, scopes = PROD),
        when(force, scopes = FORCE),
    )]
    #[tool]
    async fn deploy(&self, Parameters(args): Parameters<DeployArgs>) -> String {
        self.ran(format!("deployed to {:?}", args.target.environment))
    }

    /// Needs the `operator` role.
    #[protected(scopes = DEPLOY, roles = "operator")]
    #[tool]
    async fn rollback(&self) -> String {
        self.ran("rolled back".to_owned())
    }

    /// Needs an app-only token.
    #[protected(scopes = DEPLOY, token = "app")]
    #[tool]
    async fn rotate(&self) -> String {
        self.ran("rotated".to_owned())
    }

    /// Declares nothing: needs the baseline, on every path.
    #[tool]
    async fn status(&self) -> String {
        self.ran("all green".to_owned())
    }

    /// Needs no token.
    #[public]
    #[tool]
    async fn version(&self) -> String {
        "1".to_owned()
    }
}

// rmcp's `#[prompt]` generates an undocumented `pub fn release_notes_prompt_attr`.
#[allow(missing_docs)]
#[guarded]
#[prompt_router]
impl Deployments {
    /// Release notes; production's need `deploy:prod`.
    #[protected(scopes = DEPLOY, when(environment == Environment::Production, scopes = PROD))]
    #[prompt]
    async fn release_notes(&self, Parameters(args): Parameters<NotesArgs>) -> Vec<PromptMessage> {
        let text = self.ran(format!("notes for {:?}", args.environment));
        vec![PromptMessage::new_text(Role::User, text)]
    }
}

#[guarded]
#[tool_handler(router = self.tool_router, name = "deployments", version = "0.1.0")]
#[prompt_handler(router = self.prompt_router)]
impl ServerHandler for Deployments {
    fn get_info(&self) -> rmcp::model::ServerConfig {
        rmcp::model::ServerConfig::new(
            rmcp::model::ServerCapabilities::builder()
                .enable_tools()
                .enable_prompts()
                .build(),
        )
    }
}

/// The service behind the real guard layer, as the example binaries serve theirs.
async fn behind_the_layer(issuer: &TestIssuer, runs: Arc<Runs>) -> TestServer {
    let jwks = issuer.jwks_uri();
    let iss = issuer.issuer.clone();
    TestServer::serve(
        bind().await,
        &issuer.issuer,
        |_| {},
        move |options| {
            Guard::builder()
                .server::<Deployments>()
                .resource(&options.resource)
                .issuer(Issuer::with_jwks_uri(&iss, jwks))
                .build()
                .expect("guard builds")
        },
        move || Deployments::new(runs.clone()),
    )
}

/// The service with no guard layer deciding anything: a layer hands rmcp the policy and the
/// caller (`None`: neither), so only the in-process guards stand between a call and a tool.
async fn in_process_only(
    scope: Option<&str>,
    runs: Arc<Runs>,
) -> (String, tokio::task::JoinHandle<()>) {
    let listener = bind().await;
    let url = format!("http://{}/mcp", listener.local_addr().expect("addr"));
    let service = StreamableHttpService::new(
        move || Ok(Deployments::new(runs.clone())),
        Arc::new(NeverSessionManager::default()),
        StreamableHttpServerConfig::default()
            .with_legacy_session_mode(false)
            .with_json_response(true),
    );
    let mut app = axum::Router::new().route_service("/mcp", service);
    if let Some(scope) = scope {
        let policy = Arc::new(
            mcp_guard::policy_builder::<Deployments>()
                .build()
                .expect("policy"),
        );
        let c = json!({"sub": "mallory", "iss": "i", "exp": 1, "scope": scope});
        let caller = Principal::from_claims(c.as_object().unwrap().clone()).unwrap();
        app = app.layer(axum::middleware::map_request(
            move |mut req: axum::extract::Request| {
                let (policy, caller) = (policy.clone(), caller.clone());
                async move {
                    mcp_guard::testing::leave_for_in_process_checks(
                        req.extensions_mut(),
                        policy,
                        Some(caller),
                    );
                    req
                }
            },
        ));
    }
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, task)
}

async fn raw_call(url: &str, tool: &str, arguments: Value) -> Answer {
    let params = json!({"name": tool, "arguments": arguments});
    post_stateless(url, "tools/call", tool, params).await
}

/// What the attacker sends, and the scope that call needs beyond `deploy`.
fn needs_more() -> Vec<(&'static str, Value, &'static str)> {
    vec![
        // `rename_all = "camelCase"`: the wire key is `filePath`.
        ("write", json!({"filePath": "/shared/x"}), "files:shared"),
        ("write", json!({"filePath": "//shared/./x"}), "files:shared"),
        (
            "write",
            json!({"filePath": "/notes/../shared/x"}),
            "files:shared",
        ),
        ("write", json!({"filePath": "shared/x"}), "files:shared"),
        // `alias = "p"`, and the field's own name.
        ("touch", json!({"p": "/shared/x"}), "files:shared"),
        ("touch", json!({"path": "/shared/x"}), "files:shared"),
        // `flatten` + `rename`, and an enum compared as an enum.
        ("deploy", json!({"env": "production"}), "deploy:prod"),
        // `Option<bool>`, present and true.
        (
            "deploy",
            json!({"env": "staging", "force": true}),
            "deploy:force",
        ),
    ]
}

/// Calls the tools would refuse to read: the tool never runs.
fn unreadable() -> Vec<(&'static str, Value)> {
    vec![
        // The Rust field name is not the wire name.
        ("write", json!({"file_path": "/shared/x"})),
        ("write", json!({})),
        ("write", Value::Null),
        ("write", json!({"filePath": 7})),
        ("touch", json!({"path": ["/shared/x"]})),
        ("deploy", json!({"env": "PRODUCTION"})),
        ("deploy", json!({"environment": "production"})),
        ("deploy", json!({"env": "staging", "force": "yes"})),
    ]
}

/// Calls a `deploy` token may make: the tool runs.
fn allowed() -> Vec<(&'static str, Value, &'static str)> {
    vec![
        ("write", json!({"filePath": "/notes/x"}), "wrote /notes/x"),
        // A Rust-named key is ignored by serde, so it cannot smuggle a value past the rule.
        (
            "write",
            json!({"filePath": "/notes/x", "file_path": "/shared/x"}),
            "wrote /notes/x",
        ),
        ("touch", json!({"p": "/sharedness"}), "touched /sharedness"),
        ("deploy", json!({"env": "staging"}), "deployed to Staging"),
        (
            "deploy",
            json!({"env": "staging", "force": false}),
            "deployed to Staging",
        ),
        ("status", json!({}), "all green"),
    ]
}

fn error_code(a: &Answer) -> Option<i64> {
    a.json()["error"]["code"].as_i64()
}

/// The answer rmcp gives a tool's undeserializable arguments: a tool error naming the
/// problem, so that the model can correct the call.
fn assert_unreadable(a: &Answer, why: &str) {
    assert_eq!(a.status, 200, "{why}: {a:?}");
    let v = a.json();
    assert_eq!(v["result"]["isError"], true, "{why}: {a:?}");
    let text = v["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default();
    assert!(
        text.starts_with("failed to deserialize parameters:"),
        "{why}: {a:?}"
    );
}

#[tokio::test]
async fn renamed_aliased_and_flattened_arguments_are_ruled_on_as_the_tool_reads_them_through_the_layer()
 {
    let key = TestKey::rsa1();
    let issuer = TestIssuer::start(vec![key.jwk()]).await;
    let runs = Arc::new(Runs::default());
    let server = behind_the_layer(&issuer, runs.clone()).await;
    let deploy = key.sign(&claims(&issuer.issuer, &server.mcp_url, "deploy"));

    for (tool, args, missing) in needs_more() {
        let a = server.call(&deploy, tool, args.clone()).await;
        assert_eq!(a.status, 403, "{tool} {args}: {a:?}");
        let c = a.challenge();
        assert_eq!(
            c.param("error"),
            Some("insufficient_scope"),
            "{tool} {args}"
        );
        let scope = c.param("scope").unwrap_or_default();
        assert!(
            scope.split(' ').any(|s| s == missing),
            "{tool} {args}: the challenge asks for {missing}: {scope}"
        );
    }
    for (tool, args) in unreadable() {
        let a = server.call(&deploy, tool, args.clone()).await;
        assert_unreadable(&a, &format!("{tool} {args}"));
    }
    // `arguments` that are not an object at all: rmcp refuses the request itself.
    for args in [json!("/shared/x"), json!(["/shared/x"]), json!(5)] {
        let a = server.call(&deploy, "write", args.clone()).await;
        assert!(
            a.status >= 400 || a.json()["error"].is_object(),
            "{args}: refused, not run: {a:?}"
        );
    }
    // Headers that name another tool than the body: the body's tool is decided, and rmcp
    // refuses the mismatch.
    let body = stateless_body(
        "tools/call",
        json!({"name": "write", "arguments": {"filePath": "/shared/x"}}),
    );
    let a = server
        .post(
            &[
                ("authorization", &format!("Bearer {deploy}")),
                ("mcp-protocol-version", STATELESS),
                ("mcp-method", "tools/call"),
                ("mcp-name", "status"),
            ],
            &body,
        )
        .await;
    assert!(
        a.status >= 400 || a.json()["error"].is_object(),
        "mismatched headers: {a:?}"
    );
    assert_eq!(runs.0.load(Ordering::SeqCst), 0, "no refused call ran");

    for (tool, args, text) in allowed() {
        let a = server.call(&deploy, tool, args.clone()).await;
        assert_eq!(a.status, 200, "{tool} {args}: {a:?}");
        assert_eq!(a.tool_text(), text, "{tool} {args}");
    }
    assert_eq!(runs.0.load(Ordering::SeqCst), allowed().len());

    let all = key.sign(&claims(
        &issuer.issuer,
        &server.mcp_url,
        "deploy files:shared deploy:prod deploy:force",
    ));
    for (tool, args, _) in needs_more() {
        let a = server.call(&all, tool, args.clone()).await;
        assert_eq!(a.status, 200, "{tool} {args}: {a:?}");
        assert!(
            a.json()["result"]["isError"] != true,
            "{tool} {args}: {a:?}"
        );
    }
}

#[tokio::test]
async fn the_legacy_wire_format_is_ruled_on_the_same_way() {
    let key = TestKey::rsa1();
    let issuer = TestIssuer::start(vec![key.jwk()]).await;
    let runs = Arc::new(Runs::default());
    let server = behind_the_layer(&issuer, runs.clone()).await;
    let deploy = key.sign(&claims(&issuer.issuer, &server.mcp_url, "deploy"));
    let session = server.open_session(&deploy).await;
    for (tool, args, missing) in needs_more() {
        let a = server
            .call_in_session(&deploy, &session, tool, args.clone())
            .await;
        assert_eq!(a.status, 403, "{tool} {args}: {a:?}");
        assert!(
            a.challenge()
                .param("scope")
                .unwrap_or_default()
                .contains(missing),
            "{tool} {args}: {a:?}"
        );
    }
    for (tool, args) in unreadable() {
        let a = server
            .call_in_session(&deploy, &session, tool, args.clone())
            .await;
        assert_unreadable(&a, &format!("{tool} {args}"));
    }
    assert_eq!(runs.0.load(Ordering::SeqCst), 0, "no refused call ran");
}

#[tokio::test]
async fn renamed_aliased_and_flattened_arguments_are_ruled_on_in_process_with_the_layer_bypassed() {
    let runs = Arc::new(Runs::default());
    let (url, task) = in_process_only(Some("deploy"), runs.clone()).await;
    for (tool, args, missing) in needs_more() {
        let a = raw_call(&url, tool, args.clone()).await;
        assert_eq!(error_code(&a), Some(-32003), "{tool} {args}: {a:?}");
        assert!(
            a.json()["error"]["data"]["missing"]
                .to_string()
                .contains(missing),
            "{tool} {args}: {a:?}"
        );
    }
    for (tool, args) in unreadable() {
        let a = raw_call(&url, tool, args.clone()).await;
        assert_unreadable(&a, &format!("{tool} {args}"));
    }
    assert_eq!(runs.0.load(Ordering::SeqCst), 0, "no refused call ran");
    for (tool, args, text) in allowed() {
        let a = raw_call(&url, tool, args.clone()).await;
        assert_eq!(a.tool_text(), text, "{tool} {args}: {a:?}");
    }
    task.abort();
}

#[tokio::test]
async fn tools_that_declare_nothing_are_guarded_in_process_too() {
    // A caller without the baseline scope, past no layer: the undeclared tool refuses.
    let runs = Arc::new(Runs::default());
    let (url, task) = in_process_only(Some("files:shared"), runs.clone()).await;
    let a = raw_call(&url, "status", json!({})).await;
    assert_eq!(error_code(&a), Some(-32003), "{a:?}");
    assert!(a.body.contains("deploy"), "names the baseline: {a:?}");
    task.abort();

    // No policy and no caller at all (mounted without the layer, or another transport):
    // everything but the public tool is refused.
    let (url, task) = in_process_only(None, runs.clone()).await;
    for tool in ["status", "write", "deploy"] {
        let a = raw_call(&url, tool, json!({"filePath": "/a", "env": "staging"})).await;
        assert_eq!(error_code(&a), Some(-32001), "{tool}: {a:?}");
    }
    let a = raw_call(&url, "version", json!({})).await;
    assert_eq!(a.tool_text(), "1", "{a:?}");
    assert_eq!(runs.0.load(Ordering::SeqCst), 0, "no refused call ran");
    task.abort();
}

#[test]
fn the_table_lists_every_tool_with_its_declaration() {
    let tools = <Deployments as mcp_guard::DeclaredOperations>::declared_tools();
    let names: Vec<&str> = tools.iter().map(|(t, _)| t.name.as_ref()).collect();
    assert_eq!(
        names,
        [
            "write", "touch", "deploy", "rollback", "rotate", "status", "version"
        ]
    );
    let status = &tools[5];
    assert!(status.1.is_none(), "undeclared: the default applies");
    let policy = mcp_guard::policy_builder::<Deployments>()
        .build()
        .expect("policy");
    assert_eq!(
        policy.tool_requirement("status").scopes.to_string(),
        "deploy"
    );
    let deploy = policy.tool_requirement("deploy");
    assert_eq!(deploy.when.len(), 2);
    assert_eq!(deploy.when[0].field, ["target", "environment"]);
    let manifest = mcp_guard::manifest::<Deployments>();
    assert_eq!(
        manifest["tools"][2]["requirement"]["when"][0]["test"],
        json!({"equals": "Environment :: Production"})
    );
}

#[tokio::test]
async fn a_missing_role_or_token_kind_is_forbidden_not_an_insufficient_scope_challenge() {
    // RFC 6750 §3.1 keeps `insufficient_scope` for scopes that would help; no scope gives a
    // role or turns a user token into an app token, so the answer carries no step-up
    // challenge for a client to loop on.
    let key = TestKey::rsa1();
    let issuer = TestIssuer::start(vec![key.jwk()]).await;
    let runs = Arc::new(Runs::default());
    let server = behind_the_layer(&issuer, runs.clone()).await;
    let user = key.sign(&claims(&issuer.issuer, &server.mcp_url, "deploy"));
    for (tool, why) in [
        ("rollback", "requires the role `operator`"),
        ("rotate", "requires an app-only token"),
    ] {
        let a = server.call(&user, tool, json!({})).await;
        assert_eq!(a.status, 403, "{tool}: {a:?}");
        assert!(
            a.headers.get("www-authenticate").is_none(),
            "{tool}: no challenge: {a:?}"
        );
        assert_eq!(a.json()["error"], "forbidden", "{tool}: {a:?}");
        let description = a.json()["error_description"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(description.contains(tool), "{tool}: {description}");
        assert!(
            description.contains(why.split(' ').next_back().unwrap_or_default()),
            "{tool}: {description}"
        );
    }
    assert_eq!(runs.0.load(Ordering::SeqCst), 0);

    // With the layer bypassed the in-process guard refuses the same way, as JSON-RPC.
    let (url, task) = in_process_only(Some("deploy"), runs.clone()).await;
    for tool in ["rollback", "rotate"] {
        let a = raw_call(&url, tool, json!({})).await;
        assert_eq!(error_code(&a), Some(-32003), "{tool}: {a:?}");
        let message = a.json()["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(message.starts_with("forbidden:"), "{tool}: {message}");
    }
    assert_eq!(runs.0.load(Ordering::SeqCst), 0);
    task.abort();
}

#[tokio::test]
async fn the_rmcp_client_meets_the_same_rules() {
    use rmcp::ServiceExt as _;
    use rmcp::model::CallToolRequestParams;
    use rmcp::transport::StreamableHttpClientTransport;
    use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;

    let key = TestKey::rsa1();
    let issuer = TestIssuer::start(vec![key.jwk()]).await;
    let runs = Arc::new(Runs::default());
    let server = behind_the_layer(&issuer, runs.clone()).await;
    let token = key.sign(&claims(&issuer.issuer, &server.mcp_url, "deploy"));
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(server.mcp_url.clone()).auth_header(token),
    );
    let client = ().serve(transport).await.expect("client connects");
    let call = |tool: &'static str, args: Value| {
        CallToolRequestParams::new(tool).with_arguments(args.as_object().unwrap().clone())
    };
    let ok = client
        .call_tool(call("write", json!({"filePath": "/notes/x"})))
        .await
        .expect("a private path");
    assert_eq!(ok.content[0].as_text().unwrap().text, "wrote /notes/x");
    for (tool, args, _) in needs_more() {
        let refused = client.call_tool(call(tool, args.clone())).await;
        assert!(refused.is_err(), "{tool} {args}: {refused:?}");
    }
    assert_eq!(
        runs.0.load(Ordering::SeqCst),
        1,
        "only the allowed call ran"
    );
    client.cancel().await.expect("client closes");
}

async fn get_prompt(server: &TestServer, token: &str, arguments: Value) -> Answer {
    let body = stateless_body(
        "prompts/get",
        json!({"name": "release_notes", "arguments": arguments}),
    );
    server
        .post(
            &[
                ("authorization", &format!("Bearer {token}")),
                ("mcp-protocol-version", STATELESS),
                ("mcp-method", "prompts/get"),
                ("mcp-name", "release_notes"),
            ],
            &body,
        )
        .await
}

#[tokio::test]
async fn prompt_arguments_are_ruled_on_as_the_prompt_reads_them() {
    let key = TestKey::rsa1();
    let issuer = TestIssuer::start(vec![key.jwk()]).await;
    let runs = Arc::new(Runs::default());
    let server = behind_the_layer(&issuer, runs.clone()).await;
    let deploy = key.sign(&claims(&issuer.issuer, &server.mcp_url, "deploy"));

    // `stage` is the wire name of `environment`.
    let a = get_prompt(&server, &deploy, json!({"stage": "production"})).await;
    assert_eq!(a.status, 403, "{a:?}");
    assert!(
        a.challenge()
            .param("scope")
            .unwrap_or_default()
            .contains("deploy:prod"),
        "{a:?}"
    );
    // The Rust name, or a value the enum does not know: refused as rmcp refuses them.
    for args in [
        json!({"environment": "production"}),
        json!({"stage": "PROD"}),
    ] {
        let a = get_prompt(&server, &deploy, args.clone()).await;
        assert_eq!(error_code(&a), Some(-32602), "{args}: {a:?}");
        let message = a.json()["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(
            message.starts_with("Failed to parse parameters:"),
            "{message}"
        );
    }
    assert_eq!(runs.0.load(Ordering::SeqCst), 0);
    let a = get_prompt(&server, &deploy, json!({"stage": "staging"})).await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(
        a.json()["result"]["messages"][0]["content"]["text"],
        "notes for Staging",
        "{a:?}"
    );

    // The same with the layer bypassed.
    let (url, task) = in_process_only(Some("deploy"), runs.clone()).await;
    let params = json!({"name": "release_notes", "arguments": {"stage": "production"}});
    let v = post_stateless(&url, "prompts/get", "release_notes", params)
        .await
        .json();
    assert_eq!(v["error"]["code"], -32003, "{v}");
    assert_eq!(
        runs.0.load(Ordering::SeqCst),
        1,
        "only the staging notes were made"
    );
    task.abort();
}
