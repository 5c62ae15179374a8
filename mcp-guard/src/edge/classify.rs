//! What a request asks for: the JSON-RPC method and its target (tool name, resource URI,
//! prompt name), from the `Mcp-Method`/`Mcp-Name` headers of 2026-07-28 requests or from a
//! bounded peek at the body of older ones.

use std::borrow::Cow;

use base64::Engine as _;
use http::{HeaderMap, HeaderName};
use serde::Deserialize;
use serde_json::value::RawValue;

/// Protocol revisions whose `Mcp-Method`/`Mcp-Name` headers rmcp checks against the body
/// (SEP-2243). Only for these are the headers trusted; for every other revision the body is
/// read, because a client could send headers that disagree with it.
pub const HEADER_VALIDATED_VERSIONS: &[&str] = &["2026-07-28"];

// Header names parsed once: a `&str` key is parsed again on every look-up.
static PROTOCOL_VERSION: HeaderName = HeaderName::from_static("mcp-protocol-version");
static MCP_METHOD: HeaderName = HeaderName::from_static("mcp-method");
static MCP_NAME: HeaderName = HeaderName::from_static("mcp-name");

/// One JSON-RPC message of a request, borrowed from the body or the headers it was read from
/// (copied only where JSON escapes or the `=?base64?…?=` form had to be decoded).
#[derive(Debug, Clone, Default)]
pub struct Operation<'a> {
    /// The method (`tools/call`, `initialize`, …); `None` for responses from the client.
    pub method: Option<Cow<'a, str>>,
    /// `params.name` of `tools/call` and `prompts/get`, `params.uri` of `resources/read`.
    pub target: Option<Cow<'a, str>>,
    /// The request `id`, as sent (absent for notifications and header-only classification).
    pub id: Option<&'a RawValue>,
    /// `params.arguments` of `tools/call` and `prompts/get`, as sent.
    pub arguments: Option<&'a RawValue>,
}

/// The operations of one request, in order: none, one message (kept inline: most requests),
/// or a batch's.
#[derive(Debug, Clone)]
pub struct Operations<'a>(Ops<'a>);

#[derive(Debug, Clone)]
enum Ops<'a> {
    One(Operation<'a>),
    Batch(Vec<Operation<'a>>),
}

impl<'a> Operations<'a> {
    /// No operation (a request that is not a `POST`).
    pub fn none() -> Self {
        Self(Ops::Batch(Vec::new()))
    }

    /// One operation.
    pub fn one(op: Operation<'a>) -> Self {
        Self(Ops::One(op))
    }
}

impl<'a> std::ops::Deref for Operations<'a> {
    type Target = [Operation<'a>];

    fn deref(&self) -> &[Operation<'a>] {
        match &self.0 {
            Ops::One(op) => std::slice::from_ref(op),
            Ops::Batch(ops) => ops,
        }
    }
}

impl<'o, 'a> IntoIterator for &'o Operations<'a> {
    type Item = &'o Operation<'a>;
    type IntoIter = std::slice::Iter<'o, Operation<'a>>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl Operation<'_> {
    /// The tool a `tools/call` names.
    pub fn tool(&self) -> Option<&str> {
        (self.method.as_deref() == Some("tools/call"))
            .then_some(self.target.as_deref())
            .flatten()
    }

    /// Whether this message reaches what tokens protect although it names no tool, prompt or
    /// resource the policy decides: completions (whose `ref` names prompts and resource
    /// templates), tasks, and resource subscriptions before 2026-07-28 (`modern`: a
    /// header-validated request; that revision has no `resources/subscribe`, and rmcp answers
    /// it as an unknown method). Without a token (the anonymous posture) such a message is
    /// challenged; every other method keeps rmcp's own answer (discovery, notifications,
    /// unknown or malformed methods).
    pub(crate) fn reaches_protected_data(&self, modern: bool) -> bool {
        match self.method.as_deref() {
            Some("completion/complete") => true,
            Some(m) if m.starts_with("tasks/") => true,
            Some("resources/subscribe") => !modern,
            _ => false,
        }
    }

    /// What the policy decides on: the tool, prompt or resource this message asks for.
    pub fn policy_target(&self) -> Option<crate::policy::Target<'_>> {
        use crate::policy::Target;
        let target = self.target.as_deref()?;
        match self.method.as_deref()? {
            "tools/call" => Some(Target::Tool(target)),
            "prompts/get" => Some(Target::Prompt(target)),
            "resources/read" => Some(Target::Resource(target)),
            _ => None,
        }
    }

    /// The arguments as rmcp reads them: absent or `null` is `Ok(None)` (the tool reads
    /// `{}`), an object `Ok(Some(_))`, anything else an error (rmcp refuses such a request).
    pub fn arguments_object(
        &self,
    ) -> Result<Option<serde_json::Map<String, serde_json::Value>>, serde_json::Error> {
        match &self.arguments {
            None => Ok(None),
            Some(raw) => serde_json::from_str(raw.get()),
        }
    }
}

/// Why a body could not be classified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClassifyError {
    /// Not JSON-RPC: bad JSON, a duplicate key, or a target of the wrong type.
    #[error("the request body is not a valid JSON-RPC message")]
    Invalid,
    /// `params` is present but not an object: MCP's methods take named parameters only, and
    /// a positional array could be read differently here and by the server.
    #[error("`params` must be a JSON object")]
    ParamsNotObject,
}

#[derive(Deserialize)]
struct Message<'a> {
    #[serde(borrow, default)]
    method: Option<Borrowed<'a>>,
    #[serde(borrow, default)]
    params: Option<&'a RawValue>,
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
}

/// A string borrowed from the body unless it holds escapes: serde borrows a `Cow` field, but
/// not a `Cow` inside an `Option`.
#[derive(Deserialize)]
struct Borrowed<'a>(#[serde(borrow)] Cow<'a, str>);

#[derive(Deserialize)]
struct NamedParams<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(borrow, default)]
    arguments: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct UriParams<'a> {
    #[serde(borrow)]
    uri: Cow<'a, str>,
}

/// Classifies a JSON-RPC body (one message or a batch).
///
/// ```
/// let ops = mcp_guard::__internals::classify::classify_body(
///     br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"write_file","arguments":{}}}"#,
/// ).unwrap();
/// assert_eq!(ops[0].tool(), Some("write_file"));
/// ```
pub fn classify_body(body: &[u8]) -> Result<Operations<'_>, ClassifyError> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'[') {
        let batch: Vec<&RawValue> =
            serde_json::from_slice(body).map_err(|_| ClassifyError::Invalid)?;
        let ops = batch
            .into_iter()
            .map(|m| classify_message(m.get().as_bytes()))
            .collect::<Result<_, _>>()?;
        Ok(Operations(Ops::Batch(ops)))
    } else {
        Ok(Operations::one(classify_message(body)?))
    }
}

fn classify_message(bytes: &[u8]) -> Result<Operation<'_>, ClassifyError> {
    // A JSON-RPC message is an object (serde would also read a struct from an array).
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ClassifyError::Invalid);
    }
    let msg: Message<'_> = serde_json::from_slice(bytes).map_err(|_| ClassifyError::Invalid)?;
    if msg
        .params
        .is_some_and(|p| p.get().trim_start().as_bytes().first() != Some(&b'{'))
    {
        return Err(ClassifyError::ParamsNotObject);
    }
    let method = msg.method.map(|m| m.0);
    let (target, arguments) = match (method.as_deref(), msg.params) {
        (Some("tools/call" | "prompts/get"), Some(p)) => {
            let named: NamedParams<'_> =
                serde_json::from_str(p.get()).map_err(|_| ClassifyError::Invalid)?;
            (Some(named.name), named.arguments)
        }
        (Some("resources/read"), Some(p)) => {
            let params: UriParams<'_> =
                serde_json::from_str(p.get()).map_err(|_| ClassifyError::Invalid)?;
            (Some(params.uri), None)
        }
        (Some("tools/call" | "prompts/get" | "resources/read"), None) => {
            return Err(ClassifyError::Invalid);
        }
        _ => (None, None),
    };
    Ok(Operation {
        method,
        target,
        id: msg.id,
        arguments,
    })
}

/// The protocol revision a request declares in `MCP-Protocol-Version`.
pub fn protocol_version(headers: &HeaderMap) -> Option<&str> {
    headers.get(&PROTOCOL_VERSION).and_then(|v| v.to_str().ok())
}

/// Whether the request's headers may be trusted for classification.
pub fn headers_are_validated(headers: &HeaderMap) -> bool {
    protocol_version(headers).is_some_and(|v| HEADER_VALIDATED_VERSIONS.contains(&v))
}

/// Classifies a request of a header-validated revision from `Mcp-Method` and `Mcp-Name`
/// (decoding the SEP-2243 `=?base64?…?=` form). `None` when `Mcp-Method` is missing or not
/// valid; the transport then refuses the request itself.
pub fn classify_headers(headers: &HeaderMap) -> Option<Operation<'_>> {
    let method = Cow::Borrowed(headers.get(&MCP_METHOD)?.to_str().ok()?);
    let target = match headers.get(&MCP_NAME) {
        None => None,
        Some(v) => Some(decode_header_value(v.to_str().ok()?)?),
    };
    Some(Operation {
        method: Some(method),
        target,
        ..Operation::default()
    })
}

/// One SEP-2243 `Mcp-Param-*` header (`name` in lowercase), read as rmcp reads it when it
/// checks the header against the body: exactly one value, text, decoded from the
/// `=?base64?…?=` form. Only meaningful for a header-validated revision.
pub(crate) fn param_header(headers: &HeaderMap, name: &str) -> crate::policy::ParamHeader {
    use crate::policy::ParamHeader;
    let mut values = headers.get_all(name).iter();
    let Some(value) = values.next() else {
        return ParamHeader::Absent;
    };
    if values.next().is_some() {
        return ParamHeader::Unusable;
    }
    match value.to_str().ok().and_then(decode_header_value) {
        Some(v) => ParamHeader::Value(v.into_owned()),
        None => ParamHeader::Unusable,
    }
}

fn decode_header_value(v: &str) -> Option<Cow<'_, str>> {
    match v
        .strip_prefix("=?base64?")
        .and_then(|r| r.strip_suffix("?="))
    {
        Some(b64) => {
            let bytes = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
            String::from_utf8(bytes).ok().map(Cow::Owned)
        }
        None => Some(Cow::Borrowed(v)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn shapes() {
        let ops = classify_body(br#"[{"jsonrpc":"2.0","id":1,"method":"tools/list"},{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"a"}}]"#).unwrap();
        assert_eq!(ops.len(), 2);
        assert_eq!(ops[1].tool(), Some("a"));
        let r =
            classify_body(br#"{"method":"resources/read","params":{"uri":"file:///x"}}"#).unwrap();
        assert_eq!(r[0].target.as_deref(), Some("file:///x"));
        let resp = classify_body(br#"{"jsonrpc":"2.0","id":1,"result":{}}"#).unwrap();
        assert_eq!(resp[0].method, None);
        let init =
            classify_body(br#"{"method":"initialize","params":{"clientInfo":{"name":{"x":1}}}}"#)
                .unwrap();
        assert_eq!(init[0].method.as_deref(), Some("initialize"));
    }

    #[test]
    fn names_are_borrowed_from_the_body_and_escapes_decoded() {
        let ops = classify_body(
            br#"{"method":"tools/call","id":7,"params":{"name":"echo","arguments":{"a":1}}}"#,
        )
        .unwrap();
        assert!(matches!(ops[0].method, Some(Cow::Borrowed("tools/call"))));
        assert!(matches!(ops[0].target, Some(Cow::Borrowed("echo"))));
        assert_eq!(ops[0].id.map(RawValue::get), Some("7"));
        let escaped =
            classify_body(br#"{"method":"tools\/call","params":{"name":"ec\u0068o"}}"#).unwrap();
        assert_eq!(escaped[0].method.as_deref(), Some("tools/call"));
        assert_eq!(escaped[0].tool(), Some("echo"));
        let null = classify_body(br#"{"method":null,"id":1,"result":{}}"#).unwrap();
        assert_eq!(null[0].method, None);
    }

    #[test]
    fn ambiguity_is_refused() {
        for bad in [
            &br#"{"method":"tools/call","method":"ping","params":{"name":"a"}}"#[..],
            br#"{"method":"tools/call","params":{"name":"a","name":"b"}}"#,
            br#"{"method":"tools/call","params":{"name":7}}"#,
            br#"{"method":"tools/call"}"#,
            b"not json",
            b"",
            br#"[["tools/call",{"name":"x"},1]]"#,
        ] {
            assert!(
                classify_body(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn positional_params_are_refused_for_every_method() {
        for bad in [
            &br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":["write_file",{"path":"/shared/x"}]}"#[..],
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":[]}"#,
            br#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":"x"}"#,
            br#"[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","id":2,"method":"prompts/get","params":[1]}]"#,
        ] {
            assert_eq!(
                classify_body(bad).unwrap_err(),
                ClassifyError::ParamsNotObject,
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn base64_names() {
        let mut h = HeaderMap::new();
        h.insert("mcp-method", "tools/call".parse().unwrap());
        h.insert("mcp-name", "=?base64?w6ljaG8=?=".parse().unwrap());
        assert_eq!(
            classify_headers(&h).unwrap().target.as_deref(),
            Some("écho")
        );
    }

    #[test]
    fn param_headers_are_read_as_rmcp_reads_them() {
        use crate::policy::ParamHeader;
        let mut h = HeaderMap::new();
        h.insert("mcp-param-path", "/a".parse().unwrap());
        h.insert("mcp-param-b64", "=?base64?w6ljaG8=?=".parse().unwrap());
        h.insert("mcp-param-bad", "=?base64?***?=".parse().unwrap());
        h.append("mcp-param-twice", "x".parse().unwrap());
        h.append("mcp-param-twice", "x".parse().unwrap());
        h.insert(
            "mcp-param-latin",
            http::HeaderValue::from_bytes(b"\xe9").unwrap(),
        );
        assert_eq!(
            param_header(&h, "mcp-param-path"),
            ParamHeader::Value("/a".into())
        );
        assert_eq!(
            param_header(&h, "mcp-param-b64"),
            ParamHeader::Value("écho".into())
        );
        assert_eq!(param_header(&h, "mcp-param-none"), ParamHeader::Absent);
        for unusable in ["mcp-param-bad", "mcp-param-twice", "mcp-param-latin"] {
            assert_eq!(
                param_header(&h, unusable),
                ParamHeader::Unusable,
                "{unusable}"
            );
        }
    }

    proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = classify_body(&bytes);
        }
    }
}
