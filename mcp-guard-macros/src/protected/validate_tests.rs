//! The checks of `#[protected]` and `#[public]` on their own: the model they build and the
//! errors they report.

use proc_macro2::TokenStream;
use quote::quote;

use super::model::{Actor, Kind, Protected, RmcpArg, Test, TokenKind, Value, Visibility};
use super::parse::Stage2;
use super::validate;

fn catalogue() -> Vec<(String, String)> {
    [("files:read", "FILES_READ"), ("files:write", "FILES_WRITE")]
        .iter()
        .map(|(s, n)| ((*s).to_owned(), (*n).to_owned()))
        .collect()
}

fn tool() -> TokenStream {
    quote! {
        #[tool]
        async fn write(&self, Parameters(args): Parameters<WriteArgs>) -> String { args.path }
    }
}

fn check(attr: TokenStream, item: TokenStream) -> syn::Result<Protected> {
    validate::protected(Stage2 {
        catalogue: catalogue(),
        attr,
        item,
    })
}

/// Every message of a failed check, in order.
fn errors<T>(result: syn::Result<T>) -> Vec<String> {
    match result {
        Ok(_) => panic!("expected errors"),
        Err(e) => e.into_iter().map(|e| e.to_string()).collect(),
    }
}

#[test]
fn scopes_resolve_to_their_strings() {
    let m = check(
        quote!(
            scopes = [FILES_READ, "files:write"],
            any_of = [Scopes::FILES_READ, "files:write"]
        ),
        tool(),
    )
    .unwrap();
    assert_eq!(m.kind, Kind::Tool);
    assert_eq!(m.requirement.scopes, ["files:read", "files:write"]);
    assert_eq!(
        m.requirement.any_of,
        [
            vec!["files:read".to_owned()],
            vec!["files:write".to_owned()]
        ]
    );
    assert!(m.requirement.arguments.is_none());
}

#[test]
fn roles_token_and_visibility() {
    let m = check(
        quote!(roles = ["admin", "ops"], token = "app", hidden),
        tool(),
    )
    .unwrap();
    assert_eq!(m.requirement.roles, ["admin", "ops"]);
    assert_eq!(m.requirement.token, Some(TokenKind::App));
    assert_eq!(m.requirement.visibility, Some(Visibility::Hidden));
}

#[test]
fn actor_modes_and_subjects() {
    let modes = [
        (quote!(actor = "required"), Actor::Required),
        (quote!(actor = "forbidden"), Actor::Forbidden),
        (
            quote!(actor = ["agent-a", "agent-b",]),
            Actor::OneOf(vec!["agent-a".to_owned(), "agent-b".to_owned()]),
        ),
    ];
    for (attr, expected) in modes {
        assert_eq!(
            check(attr, tool()).unwrap().requirement.actor,
            Some(expected)
        );
    }
    assert_eq!(check(quote!(), tool()).unwrap().requirement.actor, None);
    assert_eq!(
        errors(check(quote!(actor = "agents", actor = "required"), tool())),
        [
            "unknown actor requirement `agents`; expected `\"required\"`, `\"forbidden\"` or a list of actor subjects `[\"agents\"]`",
            "`actor` is given twice",
        ]
    );
    assert_eq!(
        errors(check(quote!(actor = []), tool())),
        [
            "`actor = []` accepts no actor; name at least one actor subject, or write `actor = \"forbidden\"`"
        ]
    );
    assert_eq!(
        errors(check(quote!(actor = ["a", "", "a"]), tool())),
        ["empty actor subject", "actor `a` is listed twice"]
    );
    assert_eq!(
        errors(check(quote!(actor = required), tool())),
        [
            "expected `actor = \"required\"`, `actor = \"forbidden\"` or a list of actor subjects `actor = [\"agent-a\", ...]`"
        ]
    );
}

#[test]
fn when_rules_name_their_field_and_test() {
    let m = check(
        quote!(
            when(opts.path.under("/srv"), scopes = FILES_WRITE),
            when(count == 3u8, scopes = "files:read")
        ),
        tool(),
    )
    .unwrap();
    let rules = m.requirement.arguments.expect("two rules").rules;
    let fields: Vec<Vec<String>> = rules
        .iter()
        .map(|w| w.field.iter().map(ToString::to_string).collect())
        .collect();
    assert_eq!(fields, [vec!["opts", "path"], vec!["count"]]);
    assert!(matches!(&rules[0].test, Test::Under(p) if p.value() == "/srv"));
    match &rules[1].test {
        Test::Equals {
            text,
            value: Value::Int(i),
        } => {
            assert_eq!(text, "3u8");
            assert_eq!(i.to_string(), "3");
        }
        _ => panic!("expected an integer comparison"),
    }
    assert_eq!(rules[1].scopes, ["files:read"]);
}

#[test]
fn user_meta_is_kept_apart() {
    let m = check(
        quote!(scopes = FILES_READ),
        quote! {
            #[doc = "x"]
            #[rmcp::prompt(name = "p", meta = my_meta())]
            async fn p(&self) {}
        },
    )
    .unwrap();
    assert_eq!(m.kind, Kind::Prompt);
    assert_eq!(m.rmcp.index, 1);
    let args = m.rmcp.args.expect("a list");
    assert!(matches!(&args[0], RmcpArg::Other(_)));
    assert!(matches!(&args[1], RmcpArg::Meta(_)));
}

#[test]
fn unknown_scopes_suggest_the_declared_ones() {
    assert_eq!(
        errors(check(quote!(scopes = ["files:raed", FILES_RAED]), tool())),
        [
            "unknown scope `files:raed`; declared scopes are `files:read`, `files:write`; did you mean `files:read`?",
            "unknown scope name `FILES_RAED`; declared names are `FILES_READ`, `FILES_WRITE`; did you mean `FILES_READ`?",
        ]
    );
}

#[test]
fn every_mistake_is_reported() {
    assert_eq!(
        errors(check(
            quote!(
                scopes = "files:read files:read",
                any_of = [FILES_READ],
                roles = ["", "a", "a"],
                token = "robot",
                scopes = FILES_WRITE,
                hidden,
                listed
            ),
            quote!(
                #[tool]
                fn sync(&self) {}
            ),
        )),
        [
            "`#[protected]` needs an `async fn`: its guard runs as an extractor of rmcp's async handlers",
            "scope `files:read` is listed twice",
            "`any_of` needs at least two alternatives",
            "empty role",
            "role `a` is listed twice",
            "unknown token kind `robot`; expected `\"user\"` or `\"app\"`",
            "`scopes` is given twice",
            "`hidden` and `listed` contradict each other",
        ]
    );
}

#[test]
fn conditions_are_checked() {
    let shape = "unsupported condition; expected `field`, `field == value`, `field.under(\"/path\")` or `field.starts_with(\"prefix\")` (fields may be nested: `a.b`)";
    assert_eq!(
        errors(check(
            quote!(
                when(path.under("/srv/"), scopes = FILES_READ),
                when(path.starts_with(prefix), scopes = FILES_READ),
                when(f(x), scopes = FILES_READ),
                when(flag == b'x', scopes = FILES_READ)
            ),
            tool(),
        )),
        [
            "`under` takes a normalised absolute path: it starts with `/`, has no empty, `.` or `..` segment and no trailing `/`",
            "`starts_with` takes a string literal",
            shape,
            "compare with a string, a number, a boolean or a value of the field's type",
        ]
    );
    assert_eq!(
        errors(check(
            quote!(when(flag, scopes = FILES_READ)),
            quote!(
                #[tool]
                async fn f(&self) {}
            ),
        )),
        ["`when(...)` reads the call's arguments: the method needs a `Parameters<T>` parameter"]
    );
}

#[test]
fn placement_is_checked() {
    let below = "`#[protected]` applies to a method with `#[tool]` or `#[prompt]` and must be written above that attribute: it rewrites it, so it has to expand first";
    assert_eq!(
        errors(validate::stage_one(quote!(
            async fn f(&self) {}
        ))),
        [below]
    );
    assert_eq!(
        errors(validate::stage_one(quote!(
            struct S;
        ))),
        ["`#[protected]` applies to rmcp `#[tool]` and `#[prompt]` methods"]
    );
    assert_eq!(
        errors(check(
            quote!(scopes = FILES_READ),
            quote!(
                #[tool]
                #[public]
                async fn f(&self) {}
            ),
        )),
        ["only one `#[protected]` or `#[public]` per method"]
    );
}

#[test]
fn public_is_checked() {
    let item = quote!(
        #[tool]
        async fn f(&self) {}
    );
    assert_eq!(
        errors(validate::public(&quote!(scopes = FILES_READ), item.clone())),
        ["`#[public]` takes no arguments"]
    );
    assert_eq!(
        errors(validate::public(
            &TokenStream::new(),
            quote!(
                #[tool]
                #[protected(scopes = FILES_READ)]
                async fn f(&self) {}
            ),
        )),
        ["a method is either `#[public]` or `#[protected]`, not both"]
    );
    let m = validate::public(&TokenStream::new(), item).unwrap();
    assert_eq!(m.rmcp.index, 0);
    assert!(m.rmcp.args.is_none());
}
