//! Argument rules decided from the values a 2026-07-28 request mirrors into SEP-2243
//! `Mcp-Param-*` headers: which top-level properties a tool's input schema mirrors into which
//! header, and each rule's outcome from those values, given only where it is the outcome on
//! the body.
//!
//! Why the outcome is the body's. rmcp 3.11 checks every `Mcp-Param-*` header its tool
//! schema annotates against the body before the tool is dispatched, on every request that
//! declares a revision of at least 2026-07-28 (`validate_standard_headers`,
//! `validate_request_headers`), and refuses a disagreement with HTTP 400 / -32020:
//! - a header sent twice, or not visible ASCII, is refused;
//! - a header for an absent or `null` property is refused, and so is a missing header for a
//!   property that holds a string, a number or a boolean (an array or object needs none);
//! - otherwise the header, decoded from its `=?base64?…?=` form, must equal the property's
//!   JSON text: a string as is, a number as serde_json prints it, `true` or `false`.
//!
//! It compares text, not types: the header `5` agrees with the body's `5` and with its `"5"`.
//! So a rule's test runs here on every body value that agrees with the header (the text as a
//! string; as a number or a boolean when it is one's JSON spelling), each deserialized through
//! the tool's own argument type beside the other headers' values (typed as the schema types
//! them) and placeholders for the properties no header gives, twice with different
//! placeholders. A value the type does not read is left out: a body holding it never reaches
//! the tool (the in-process check and rmcp refuse it as invalid params). The outcome is used
//! only when every value read gives the same one and the field the rule reads holds that very
//! value each time, which fails for a field read from another property (a serde rename onto a
//! mirrored name, a default, a conversion). Everything else reads the body: a header that is
//! absent, duplicated, undecodable or not in its schema type's spelling, a nested field, a
//! comparison with a value of the field's own type.
//!
//! What this relies on besides rmcp's check: the schema rmcp checks is the one declared
//! (`#[tool_handler]`'s `get_tool` serves the router's tools, so the table is built only when
//! `#[guarded]` saw no `get_tool` of the server's own), rmcp reads a single message (a batch
//! is refused before any tool runs), and the argument type reads each field from its own
//! properties (as serde's derive does, duplicates refused), so placeholders stand in for what
//! the field does not read.

use serde_json::{Map, Value};

use super::{ArgProbe, ArgRule};

/// One `Mcp-Param-*` header of a request, as the HTTP edge read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ParamHeader {
    /// Not sent.
    Absent,
    /// Sent once; the value decoded from the SEP-2243 `=?base64?…?=` form where used.
    Value(String),
    /// Sent more than once, not text, or not valid Base64: rmcp refuses such a request.
    Unusable,
}

/// A JSON type, as a schema's `type` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    String,
    Integer,
    Number,
    Boolean,
    Array,
    Object,
    Null,
}

#[derive(Debug, Clone, PartialEq)]
struct Property {
    name: String,
    /// The lowercase header name (`mcp-param-region`) of a mirrored property.
    header: Option<String>,
    kind: Option<Kind>,
    /// `enum` / `const` members.
    members: Vec<Value>,
}

/// A tool's top-level properties and the headers its schema mirrors them into.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct MirroredArgs {
    properties: Vec<Property>,
}

impl MirroredArgs {
    /// The table of a tool's input schema; `None` when it mirrors no top-level property, or
    /// when its annotations are ones rmcp and this table could read differently (on the root,
    /// not a header token, two properties in one header).
    pub(crate) fn from_schema(schema: &Map<String, Value>) -> Option<Self> {
        if schema.contains_key("x-mcp-header") {
            return None;
        }
        let mut headers = Vec::new();
        collect_headers(schema.get("properties"), &mut headers);
        let mut seen = std::collections::HashSet::new();
        for h in &headers {
            let Some(h) = h else { return None };
            if !seen.insert(h.clone()) {
                return None;
            }
        }
        let properties: Vec<Property> = schema
            .get("properties")?
            .as_object()?
            .iter()
            .map(|(name, s)| Property {
                name: name.clone(),
                header: s.get("x-mcp-header").and_then(header_name),
                kind: kind(s),
                members: members(s),
            })
            .collect();
        properties
            .iter()
            .any(|p| p.header.is_some())
            .then_some(Self { properties })
    }

    /// Each rule's outcome, from the headers `header` reads (by lowercase name); `None` when
    /// any outcome is not provably the body's, and the body must be read.
    pub(crate) fn outcomes(
        &self,
        rules: &[ArgRule],
        header: &dyn Fn(&str) -> ParamHeader,
    ) -> Option<Vec<bool>> {
        // Each sent header: its text and its value typed as the schema types it.
        let mut sent = Map::new();
        let mut texts = Vec::new();
        for p in &self.properties {
            let Some(name) = &p.header else { continue };
            match header(name) {
                ParamHeader::Absent => {}
                ParamHeader::Unusable => return None,
                ParamHeader::Value(v) => {
                    sent.insert(p.name.clone(), typed(p.kind?, &v)?);
                    texts.push((p.name.as_str(), v));
                }
            }
        }
        rules
            .iter()
            .map(|rule| {
                let [field] = rule.field.as_slice() else {
                    return None;
                };
                let field = field.strip_prefix("r#").unwrap_or(field);
                let (_, text) = texts.iter().find(|(name, _)| *name == field)?;
                self.outcome(rule.probe?, field, text, &sent)
            })
            .collect()
    }

    /// A rule's outcome on every body value of `field` that agrees with the header `text`.
    fn outcome(
        &self,
        probe: ArgProbe,
        field: &str,
        text: &str,
        sent: &Map<String, Value>,
    ) -> Option<bool> {
        let mut outcome = None;
        for candidate in agreeing(text) {
            for round in 0..2 {
                let mut args = sent.clone();
                args.insert(field.to_owned(), candidate.clone());
                for p in &self.properties {
                    if !args.contains_key(&p.name)
                        && let Some(v) = placeholder(p, text, round)
                    {
                        args.insert(p.name.clone(), v);
                    }
                }
                match probe(&args, &candidate) {
                    // Not read by the tool's type: such a body never reaches the tool.
                    Err(_) => {}
                    // The field is not (only) this property's value.
                    Ok(None) => return None,
                    Ok(Some(applies)) => {
                        if outcome.replace(applies).is_some_and(|o| o != applies) {
                            return None;
                        }
                    }
                }
            }
        }
        outcome
    }
}

/// Every annotation along `properties` chains (nested ones included, as rmcp checks them):
/// its lowercase header name, `None` for one that is not a non-empty header token.
fn collect_headers(properties: Option<&Value>, out: &mut Vec<Option<String>>) {
    let Some(Value::Object(properties)) = properties else {
        return;
    };
    for schema in properties.values() {
        if let Some(h) = schema.get("x-mcp-header") {
            out.push(header_name(h));
        }
        collect_headers(schema.get("properties"), out);
    }
}

fn header_name(annotation: &Value) -> Option<String> {
    let token = annotation.as_str()?;
    let tchar = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    (!token.is_empty() && token.chars().all(tchar))
        .then(|| format!("mcp-param-{}", token.to_ascii_lowercase()))
}

/// The one JSON type a schema allows besides `null` (`Option<T>` is `["string", "null"]`).
fn kind(schema: &Value) -> Option<Kind> {
    let one = |t: &str| match t {
        "string" => Some(Kind::String),
        "integer" => Some(Kind::Integer),
        "number" => Some(Kind::Number),
        "boolean" => Some(Kind::Boolean),
        "array" => Some(Kind::Array),
        "object" => Some(Kind::Object),
        "null" => Some(Kind::Null),
        _ => None,
    };
    match schema.get("type")? {
        Value::String(t) => one(t),
        Value::Array(types) => {
            let named: Vec<&str> = types.iter().filter_map(Value::as_str).collect();
            match named.iter().filter(|t| **t != "null").collect::<Vec<_>>()[..] {
                [t] => one(t),
                [] if !named.is_empty() => Some(Kind::Null),
                _ => None,
            }
        }
        _ => None,
    }
}

fn members(schema: &Value) -> Vec<Value> {
    match (schema.get("enum"), schema.get("const")) {
        (Some(Value::Array(m)), _) => m.clone(),
        (_, Some(c)) => vec![c.clone()],
        _ => Vec::new(),
    }
}

/// The JSON text rmcp compares a header with: a string as is, a number as serde_json prints
/// it, `true` or `false`; `None` for other values (rmcp wants no header for them).
fn text_of(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Every body value rmcp lets through with a header reading `text`: the string, and the
/// number or boolean whose JSON text it is.
fn agreeing(text: &str) -> Vec<Value> {
    let mut values = vec![Value::String(text.to_owned())];
    match text {
        "true" => values.push(Value::Bool(true)),
        "false" => values.push(Value::Bool(false)),
        _ => {
            if let Ok(n) = text.parse::<serde_json::Number>()
                && n.to_string() == text
            {
                values.push(Value::Number(n));
            }
        }
    }
    values
}

/// A header's value as the schema's type reads it: text as is; an integer or a boolean only
/// in the one spelling a JSON number or boolean prints as (any other spelling rmcp would
/// compare with a string property's text, which the schema does not expect).
fn typed(kind: Kind, text: &str) -> Option<Value> {
    let value = match kind {
        Kind::String => return Some(Value::String(text.to_owned())),
        Kind::Integer => agreeing(text)
            .pop()
            .filter(|v| v.as_i64().is_some() || v.as_u64().is_some())?,
        Kind::Boolean => agreeing(text).pop().filter(Value::is_boolean)?,
        _ => return None,
    };
    Some(value)
}

/// A value for a property no header gives, of its type, whose JSON text is not the tested
/// header's `text`, different in each `round` where the type allows.
fn placeholder(p: &Property, text: &str, round: usize) -> Option<Value> {
    let others = |values: Vec<Value>| {
        let fit: Vec<Value> = values
            .into_iter()
            .filter(|v| text_of(v).as_deref() != Some(text))
            .collect();
        fit.get(round).or(fit.first()).cloned()
    };
    if !p.members.is_empty() {
        return others(p.members.clone());
    }
    match p.kind? {
        Kind::String => others(vec![
            "mcp-guard placeholder".into(),
            "mcp-guard other placeholder".into(),
            "mcp-guard third placeholder".into(),
        ]),
        Kind::Integer => others(vec![7.into(), 8.into(), 9.into()]),
        Kind::Number => others(vec![7.5.into(), 8.5.into(), 9.5.into()]),
        Kind::Boolean => others(vec![Value::Bool(round == 0), Value::Bool(round != 0)]),
        Kind::Array => Some(Value::Array(Vec::new())),
        Kind::Object => Some(Value::Object(Map::new())),
        Kind::Null => Some(Value::Null),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn table(schema: Value) -> Option<MirroredArgs> {
        MirroredArgs::from_schema(schema.as_object().unwrap())
    }

    #[test]
    fn reads_the_top_level_annotations() {
        let t = table(
            json!({"type": "object", "required": ["path", "content"], "properties": {
                "path": {"type": "string", "x-mcp-header": "Path"},
                "content": {"type": "string"},
                "count": {"type": ["integer", "null"], "x-mcp-header": "Count"},
            }}),
        )
        .unwrap();
        let path = t.properties.iter().find(|p| p.name == "path").unwrap();
        assert_eq!(path.header.as_deref(), Some("mcp-param-path"));
        let content = t.properties.iter().find(|p| p.name == "content").unwrap();
        assert_eq!(content.header, None);
        let count = t.properties.iter().find(|p| p.name == "count").unwrap();
        assert_eq!(count.kind, Some(Kind::Integer));
        assert_eq!(count.header.as_deref(), Some("mcp-param-count"));
    }

    #[test]
    fn ambiguous_annotations_disable_the_table() {
        for schema in [
            json!({"properties": {"a": {"type": "string"}}}),
            json!({"x-mcp-header": "Root", "properties": {"a": {"type": "string", "x-mcp-header": "A"}}}),
            json!({"properties": {"a": {"type": "string", "x-mcp-header": "bad:name"}}}),
            json!({"properties": {"a": {"type": "string", "x-mcp-header": "A"}, "b": {"type": "string", "x-mcp-header": "a"}}}),
            json!({"properties": {"a": {"type": "string", "x-mcp-header": "A"}, "o": {"type": "object", "properties": {"b": {"type": "string", "x-mcp-header": "A"}}}}}),
        ] {
            assert_eq!(table(schema.clone()), None, "{schema}");
        }
    }

    #[test]
    fn header_values_are_typed_in_json_spelling_only() {
        assert_eq!(typed(Kind::Integer, "42"), Some(json!(42)));
        assert_eq!(typed(Kind::Integer, "-3"), Some(json!(-3)));
        for odd in [
            "042",
            "+4",
            "4.0",
            "1e3",
            "x",
            "",
            "-0",
            "18446744073709551616",
        ] {
            assert_eq!(typed(Kind::Integer, odd), None, "{odd}");
        }
        assert_eq!(typed(Kind::Boolean, "true"), Some(json!(true)));
        assert_eq!(typed(Kind::Boolean, "True"), None);
        assert_eq!(typed(Kind::Number, "1.5"), None);
        assert_eq!(typed(Kind::String, "5"), Some(json!("5")));
    }

    #[test]
    fn every_body_value_rmcp_lets_through_is_tried() {
        // rmcp compares the header with the body value's JSON text, whatever its type.
        assert_eq!(agreeing("/a"), vec![json!("/a")]);
        assert_eq!(agreeing("5"), vec![json!("5"), json!(5)]);
        assert_eq!(agreeing("-3"), vec![json!("-3"), json!(-3)]);
        assert_eq!(agreeing("1.5"), vec![json!("1.5"), json!(1.5)]);
        assert_eq!(agreeing("true"), vec![json!("true"), json!(true)]);
        // Spellings no JSON number prints as agree with a string only.
        for text in ["05", "+5", "1e3", "5.", "-0", "True", "null"] {
            assert_eq!(agreeing(text), vec![json!(text)], "{text}");
        }
        for v in agreeing("5").iter().chain(&agreeing("true")) {
            let text = text_of(v).unwrap();
            assert!(["5", "true"].contains(&text.as_str()), "{v}");
        }
    }

    #[test]
    fn placeholders_differ_from_the_header_and_between_rounds() {
        let p = |kind, members: Vec<Value>| Property {
            name: "x".into(),
            header: None,
            kind: Some(kind),
            members,
        };
        for (prop, text) in [
            (p(Kind::String, vec![]), "mcp-guard placeholder"),
            (p(Kind::Integer, vec![]), "7"),
            (p(Kind::Integer, vec![]), "8"),
            (p(Kind::Number, vec![]), "7.5"),
            (
                p(Kind::String, vec![json!("a"), json!("b"), json!("c")]),
                "a",
            ),
        ] {
            let (a, b) = (placeholder(&prop, text, 0), placeholder(&prop, text, 1));
            assert_ne!(a, b, "{text}");
            for v in [a, b] {
                assert_ne!(text_of(&v.unwrap()).as_deref(), Some(text));
            }
        }
        for text in ["true", "false"] {
            let v = placeholder(&p(Kind::Boolean, vec![]), text, 0).unwrap();
            assert_ne!(v.to_string(), text);
        }
        // No value of the type other than the header's: none.
        assert_eq!(
            placeholder(&p(Kind::String, vec![json!("a")]), "a", 0),
            None
        );
        // An integer placeholder skips the number the header spells.
        assert_eq!(
            placeholder(&p(Kind::Integer, vec![]), "7", 0),
            Some(json!(8))
        );
    }
}
