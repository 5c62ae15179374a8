//! Expansion snapshots: each macro's output, pretty-printed.

use proc_macro2::TokenStream;
use quote::quote;

fn pretty(tokens: TokenStream) -> String {
    // Impl items are not a file; wrap them in an impl block to print them.
    let file: syn::File = syn::parse2(tokens.clone())
        .or_else(|_| syn::parse2(quote!(impl Server { #tokens })))
        .unwrap_or_else(|e| panic!("expansion does not parse: {e}\n{tokens}"));
    prettyplease::unparse(&file)
}

fn stage2(catalogue: TokenStream, attr: TokenStream, item: TokenStream) -> String {
    let input: crate::protected::Stage2 =
        syn::parse2(quote!([#catalogue] { #attr } { #item })).expect("stage-two input parses");
    pretty(crate::protected::expand_stage2(input))
}

fn catalogue() -> TokenStream {
    quote!(("files:read", FILES_READ)("files:write", FILES_WRITE)(
        "files:shared",
        FILES_SHARED
    ))
}

#[test]
fn scopes_catalogue() {
    let cat: crate::scopes::Catalogue = syn::parse2(quote! {
        /// The file store's scopes.
        pub Scopes {
            /// Read files.
            #[baseline]
            FILES_READ = "files:read",
            /// Write files.
            FILES_WRITE = "files:write",
            /// Administer.
            FILES_ADMIN = "files:admin" => [FILES_READ, FILES_WRITE],
        }
    })
    .unwrap();
    crate::scopes::validate(&cat).unwrap();
    insta::assert_snapshot!(pretty(crate::scopes::expand(&cat)));
}

#[test]
fn protected_stage_one_hands_over_to_the_catalogue() {
    let out = crate::protected::protected(
        quote!(scopes = "files:read"),
        quote! {
            #[tool]
            async fn read_file(&self) -> String { String::new() }
        },
    );
    insta::assert_snapshot!(out.to_string());
}

#[test]
fn protected_tool_with_scopes() {
    insta::assert_snapshot!(stage2(
        catalogue(),
        quote!(scopes = FILES_READ),
        quote! {
            /// Reads one file.
            #[tool(annotations(read_only_hint = true))]
            async fn read_file(&self, Parameters(args): Parameters<PathArgs>) -> String { args.path }
        },
    ));
}

#[test]
fn protected_tool_with_argument_rule_and_user_meta() {
    insta::assert_snapshot!(stage2(
        catalogue(),
        quote!(
            scopes = "files:write",
            when(path.starts_with("/shared"), scopes = [FILES_SHARED]),
            hidden
        ),
        quote! {
            #[tool(meta = my_meta())]
            async fn write_file(&self, Parameters(args): Parameters<WriteArgs>) -> String { args.path }
        },
    ));
}

#[test]
fn protected_prompt_with_alternatives_roles_and_kind() {
    insta::assert_snapshot!(stage2(
        catalogue(),
        quote!(
            any_of = ["files:read", FILES_WRITE],
            roles = ["reviewer"],
            token = "user"
        ),
        quote! {
            #[prompt]
            async fn review(&self) -> Vec<PromptMessage> { Vec::new() }
        },
    ));
}

#[test]
fn public_tool() {
    insta::assert_snapshot!(pretty(crate::protected::public(
        TokenStream::new(),
        quote! {
            #[tool]
            async fn about(&self) -> String { String::new() }
        },
    )));
}

#[test]
fn guarded_handler() {
    insta::assert_snapshot!(pretty(crate::guarded::guarded(
        TokenStream::new(),
        quote! {
            #[tool_handler(router = self.tool_router, name = "files", version = "0.1.0")]
            #[prompt_handler(router = self.prompt_router)]
            impl ServerHandler for FileServer {}
        },
    )));
}

#[test]
fn protected_resource_derive() {
    insta::assert_snapshot!(pretty(crate::resource::derive(quote! {
        #[protected_resource(
            scopes = Scopes,
            resource = "https://mcp.example.com/mcp",
            authorization_servers = ["https://auth.example.com"],
            name = "Files",
            hidden
        )]
        struct FileServer;
    })));
}

#[test]
fn guarded_router() {
    insta::assert_snapshot!(pretty(crate::guarded::guarded(
        TokenStream::new(),
        quote! {
            #[tool_router]
            impl FileServer {
                #[public]
                #[tool]
                async fn about(&self) -> String { String::new() }
                #[protected(scopes = "files:read")]
                #[tool]
                async fn read_file(&self) -> String { String::new() }
                /// Declares nothing: guarded with the default requirement.
                #[tool]
                async fn echo(&self, Parameters(args): Parameters<EchoArgs>) -> String { args.text }
                fn helper(&self) {}
            }
        },
    )));
}

/// `expand` on its own, from a model built by hand: every test of `when(...)`, a path-qualified
/// rmcp attribute with arguments, and the kinds `validate` cannot reach together.
#[test]
fn expand_protected_model() {
    use crate::protected::model::*;
    let rule = |field: &str, test: Test| When {
        field: field
            .split('.')
            .map(|f| quote::format_ident!("{f}"))
            .collect(),
        test,
        scopes: vec!["files:write".to_owned()],
    };
    let equals = |text: &str, value: Value| Test::Equals {
        text: text.to_owned(),
        value,
    };
    let model = Protected {
        method: syn::parse_quote! {
            #[rmcp::tool(name = "write", description = "Writes.")]
            async fn write(Parameters(args): Parameters<WriteArgs>) -> String { args.path }
        },
        rmcp: RmcpAttr {
            index: 0,
            path: syn::parse_quote!(rmcp::tool),
            args: Some(vec![
                RmcpArg::Other(syn::parse_quote!(name = "write")),
                RmcpArg::Other(syn::parse_quote!(description = "Writes.")),
            ]),
        },
        kind: Kind::Tool,
        requirement: Requirement {
            scopes: vec!["files:read".to_owned()],
            any_of: Vec::new(),
            roles: vec!["ops".to_owned()],
            token: Some(TokenKind::App),
            actor: Some(Actor::OneOf(vec!["agent-a".to_owned()])),
            arguments: Some(ArgumentRules {
                params: syn::parse_quote!(WriteArgs),
                rules: vec![
                    rule("opts.force", Test::Truthy),
                    rule("path", Test::Under(syn::parse_quote!("/srv"))),
                    rule("path", Test::StartsWith(syn::parse_quote!("tmp-"))),
                    rule("name", equals("\"a\"", Value::Str(syn::parse_quote!("a")))),
                    rule("dry", equals("true", Value::Bool(syn::parse_quote!(true)))),
                    rule("count", equals("3", Value::Int(syn::parse_quote!(3)))),
                    rule("ratio", equals("0.5", Value::Float(syn::parse_quote!(0.5)))),
                    rule(
                        "mode",
                        equals(
                            "Mode :: Overwrite",
                            Value::Expr(syn::parse_quote!(Mode::Overwrite)),
                        ),
                    ),
                ],
            }),
            visibility: Some(Visibility::Listed),
        },
    };
    insta::assert_snapshot!(pretty(crate::protected::expand::protected(&model)));
}

/// `expand` of `#[public]` from a model: the user's `meta` is merged, not replaced.
#[test]
fn expand_public_model() {
    use crate::protected::model::*;
    let model = Public {
        method: syn::parse_quote! {
            #[prompt(name = "about", meta = my_meta())]
            async fn about(&self) -> Vec<PromptMessage> { Vec::new() }
        },
        rmcp: RmcpAttr {
            index: 0,
            path: syn::parse_quote!(prompt),
            args: Some(vec![
                RmcpArg::Other(syn::parse_quote!(name = "about")),
                RmcpArg::Meta(syn::parse_quote!(my_meta())),
            ]),
        },
    };
    insta::assert_snapshot!(pretty(crate::protected::expand::public(&model)));
}
