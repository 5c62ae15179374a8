//! `WWW-Authenticate: Bearer …` and `DPoP …` challenges (RFC 6750 §3, RFC 9449 §7.1,
//! RFC 9728 §5.1): building, and parsing for tests and clients; and [`ToolCallChallenge`], the form a refused tool call's
//! challenge takes.

use std::fmt::Write as _;

use http::HeaderValue;

use crate::scope::ScopeSet;

/// The RFC 6750 §3.1 error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorCode {
    /// The request is malformed (400).
    InvalidRequest,
    /// The token is expired, revoked, malformed or otherwise invalid (401).
    InvalidToken,
    /// The token lacks the scope the operation needs (403).
    InsufficientScope,
    /// The DPoP proof is invalid (401, RFC 9449 §7.1).
    InvalidDpopProof,
    /// The DPoP proof must carry a nonce the server issued (401, RFC 9449 §9).
    UseDpopNonce,
}

impl ErrorCode {
    /// The code as written in the challenge.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidToken => "invalid_token",
            ErrorCode::InsufficientScope => "insufficient_scope",
            ErrorCode::InvalidDpopProof => "invalid_dpop_proof",
            ErrorCode::UseDpopNonce => "use_dpop_nonce",
        }
    }
}

/// The form in which a `tools/call` refused for want of a token (the anonymous posture) or
/// of scopes carries its challenge. Every other refusal, and every refusal of another
/// operation, is answered over HTTP whatever this says.
///
/// Clients disagree on what starts their sign-in: those that follow the MCP authorization
/// specification (Claude, VS Code, Cursor, the official SDKs) react to the HTTP 401/403 and
/// its `WWW-Authenticate` header, and ignore a tool result; ChatGPT reacts only to a `200`
/// tool result with `isError: true` whose `_meta["mcp/www_authenticate"]` lists the
/// challenges (OpenAI Apps SDK, "Triggering authentication UI",
/// <https://developers.openai.com/apps-sdk/build/auth#triggering-authentication-ui>; MCP
/// SEP-1489, draft, <https://github.com/modelcontextprotocol/modelcontextprotocol/issues/1489>).
/// The tool result carries exactly the challenge the HTTP answer would have, and the same
/// `WWW-Authenticate` header rides on the `200` too (RFC 9110 §11.6.1 allows it on any
/// response), so nothing is lost for a client that reads headers.
///
/// ```
/// use mcp_guard::challenge::ToolCallChallenge;
/// assert_eq!("tool_result".parse::<ToolCallChallenge>(), Ok(ToolCallChallenge::ToolResult));
/// assert_eq!(ToolCallChallenge::default(), ToolCallChallenge::Http);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ToolCallChallenge {
    /// HTTP 401 or 403 with the `WWW-Authenticate` challenge, as the MCP authorization
    /// specification says (the default).
    #[default]
    Http,
    /// A `200` tool result, `isError: true`, with `_meta["mcp/www_authenticate"]`, for every
    /// client. Spec clients then see a failed tool call and do not sign in: choose it only for
    /// servers used by tool-result clients alone.
    ToolResult,
    /// The tool result for clients identified as reacting only to it (by the product name
    /// their `User-Agent` starts with, see
    /// [`GuardBuilder::tool_result_clients`](crate::GuardBuilder::tool_result_clients);
    /// ChatGPT's `openai-mcp` by default), the HTTP challenge for every other client.
    Auto,
}

impl ToolCallChallenge {
    /// The name as the command-line flags spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            ToolCallChallenge::Http => "http",
            ToolCallChallenge::ToolResult => "tool_result",
            ToolCallChallenge::Auto => "auto",
        }
    }
}

impl std::fmt::Display for ToolCallChallenge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A challenge form name that is none of `http`, `tool_result` (or `tool-result`) and `auto`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown tool-call challenge form `{0}`; expected `http`, `tool_result` or `auto`")]
pub struct UnknownChallengeForm(pub String);

impl std::str::FromStr for ToolCallChallenge {
    type Err = UnknownChallengeForm;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "http" => Ok(ToolCallChallenge::Http),
            "tool_result" | "tool-result" => Ok(ToolCallChallenge::ToolResult),
            "auto" => Ok(ToolCallChallenge::Auto),
            other => Err(UnknownChallengeForm(other.to_owned())),
        }
    }
}

/// The `_meta` key of a tool result's challenges ([`ToolCallChallenge::ToolResult`]): one
/// `WWW-Authenticate` value per array element.
pub const TOOL_RESULT_META_KEY: &str = "mcp/www_authenticate";

/// Whether a `User-Agent` names one of `clients` as its first product (`name/version …`),
/// compared without regard to ASCII case.
pub(crate) fn user_agent_is_one_of(user_agent: &[u8], clients: &[String]) -> bool {
    let Ok(ua) = std::str::from_utf8(user_agent) else {
        return false;
    };
    let product = ua
        .trim_start()
        .split(['/', ' ', '\t'])
        .next()
        .unwrap_or_default();
    !product.is_empty() && clients.iter().any(|c| c.eq_ignore_ascii_case(product))
}

/// One `Bearer` challenge, or with [`Challenge::dpop`] one `DPoP` challenge. Every
/// parameter appears at most once; values are quoted strings.
///
/// ```
/// use mcp_guard::challenge::{Challenge, ErrorCode};
/// use mcp_guard::ScopeSet;
/// let scope = ScopeSet::parse("files:write").unwrap();
/// let c = Challenge::new("https://mcp.example.com/.well-known/oauth-protected-resource/mcp")
///     .error(ErrorCode::InsufficientScope)
///     .scope(&scope);
/// assert_eq!(
///     c.to_string(),
///     "Bearer error=\"insufficient_scope\", scope=\"files:write\", \
///      resource_metadata=\"https://mcp.example.com/.well-known/oauth-protected-resource/mcp\""
/// );
/// assert_eq!(
///     Challenge::new("https://mcp.example.com/.well-known/oauth-protected-resource/mcp")
///         .dpop("ES256 EdDSA")
///         .to_string(),
///     "DPoP algs=\"ES256 EdDSA\", \
///      resource_metadata=\"https://mcp.example.com/.well-known/oauth-protected-resource/mcp\""
/// );
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Challenge<'a> {
    resource_metadata: &'a str,
    /// `Some(algs)` for a `DPoP` challenge.
    dpop_algs: Option<&'a str>,
    error: Option<ErrorCode>,
    description: Option<&'a str>,
    scope: Option<&'a ScopeSet>,
}

impl<'a> Challenge<'a> {
    /// A challenge pointing at the protected resource metadata URL (absolute).
    pub fn new(resource_metadata: &'a str) -> Self {
        Self {
            resource_metadata,
            dpop_algs: None,
            error: None,
            description: None,
            scope: None,
        }
    }

    /// The same challenge in the `DPoP` scheme (RFC 9449 §7.1), naming the proof algorithms
    /// accepted (`algs`, space-separated).
    pub fn dpop(mut self, algs: &'a str) -> Self {
        self.dpop_algs = Some(algs);
        self
    }

    /// The same challenge without its `error` and `error_description`.
    pub fn without_error(mut self) -> Self {
        self.error = None;
        self.description = None;
        self
    }

    /// Sets the `error` code.
    pub fn error(mut self, code: ErrorCode) -> Self {
        self.error = Some(code);
        self
    }

    /// Sets a human-readable `error_description` (characters outside RFC 6750's set are
    /// replaced). Never put a token or other secret here.
    pub fn description(mut self, description: &'a str) -> Self {
        self.description = Some(description);
        self
    }

    /// Sets the `scope` parameter; an empty set leaves it out.
    pub fn scope(mut self, scope: &'a ScopeSet) -> Self {
        self.scope = (!scope.is_empty()).then_some(scope);
        self
    }

    /// The header value.
    pub fn to_header_value(&self) -> HeaderValue {
        // Every character written is visible ASCII or a space: quoting escapes `"` and `\`,
        // the description is filtered, scope tokens are validated, and the metadata URL is
        // filtered the same way as the description.
        HeaderValue::from_str(&self.to_string())
            .unwrap_or_else(|_| HeaderValue::from_static("Bearer"))
    }
}

impl std::fmt::Display for Challenge<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut out = String::with_capacity(160);
        out.push_str(if self.dpop_algs.is_some() {
            "DPoP "
        } else {
            "Bearer "
        });
        let mut first = true;
        let mut param = |out: &mut String, name: &str, value: &str| {
            if !first {
                out.push_str(", ");
            }
            first = false;
            out.push_str(name);
            out.push_str("=\"");
            for c in value.chars() {
                match c {
                    '"' | '\\' => {
                        out.push('\\');
                        out.push(c);
                    }
                    ' '..='~' => out.push(c),
                    _ => out.push('?'),
                }
            }
            out.push('"');
        };
        if let Some(code) = self.error {
            param(&mut out, "error", code.as_str());
        }
        if let Some(d) = self.description {
            let cleaned: String = d
                .chars()
                .map(|c| {
                    if matches!(c, ' ' | '!' | '#'..='[' | ']'..='~') {
                        c
                    } else {
                        '\''
                    }
                })
                .collect();
            param(&mut out, "error_description", &cleaned);
        }
        if let Some(scope) = self.scope {
            let mut s = String::new();
            let _ = write!(s, "{scope}");
            param(&mut out, "scope", &s);
        }
        if let Some(algs) = self.dpop_algs {
            param(&mut out, "algs", algs);
        }
        param(&mut out, "resource_metadata", self.resource_metadata);
        f.write_str(&out)
    }
}

/// A parsed challenge: the scheme and its auth-params in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedChallenge {
    /// The auth-scheme, as written.
    pub scheme: String,
    /// `(name, value)` pairs, names lower-cased, values unquoted.
    pub params: Vec<(String, String)>,
}

impl ParsedChallenge {
    /// The value of a parameter, if it appears exactly once.
    pub fn param(&self, name: &str) -> Option<&str> {
        let mut it = self.params.iter().filter(|(n, _)| n == name);
        let first = it.next()?;
        it.next().is_none().then_some(first.1.as_str())
    }

    /// How often a parameter appears.
    pub fn count(&self, name: &str) -> usize {
        self.params.iter().filter(|(n, _)| n == name).count()
    }
}

/// Why a challenge could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed WWW-Authenticate challenge at byte {0}")]
pub struct ParseError(pub usize);

/// Parses one challenge: `scheme [ auth-param *( "," auth-param ) ]` (RFC 9110 §11.2).
///
/// ```
/// let c = mcp_guard::challenge::parse(r#"Bearer error="invalid_token", scope="a b""#).unwrap();
/// assert_eq!(c.scheme, "Bearer");
/// assert_eq!(c.param("scope"), Some("a b"));
/// ```
pub fn parse(value: &str) -> Result<ParsedChallenge, ParseError> {
    let b = value.as_bytes();
    let mut i = 0;
    let skip_ws = |i: &mut usize| {
        while *i < b.len() && (b[*i] == b' ' || b[*i] == b'\t') {
            *i += 1;
        }
    };
    let token = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && is_tchar(b[*i]) {
            *i += 1;
        }
        (start < *i).then(|| value[start..*i].to_owned())
    };
    skip_ws(&mut i);
    let scheme = token(&mut i).ok_or(ParseError(i))?;
    let mut params = Vec::new();
    skip_ws(&mut i);
    while i < b.len() {
        let name = token(&mut i).ok_or(ParseError(i))?.to_ascii_lowercase();
        skip_ws(&mut i);
        if b.get(i) != Some(&b'=') {
            return Err(ParseError(i));
        }
        i += 1;
        skip_ws(&mut i);
        let val = if b.get(i) == Some(&b'"') {
            i += 1;
            let mut v = String::new();
            loop {
                match b.get(i) {
                    None => return Err(ParseError(i)),
                    Some(b'"') => {
                        i += 1;
                        break;
                    }
                    Some(b'\\') => {
                        let c = value[i + 1..].chars().next().ok_or(ParseError(i))?;
                        v.push(c);
                        i += 1 + c.len_utf8();
                    }
                    Some(_) => {
                        let c = value[i..].chars().next().ok_or(ParseError(i))?;
                        v.push(c);
                        i += c.len_utf8();
                    }
                }
            }
            v
        } else {
            token(&mut i).ok_or(ParseError(i))?
        };
        params.push((name, val));
        skip_ws(&mut i);
        match b.get(i) {
            None => break,
            Some(b',') => {
                i += 1;
                skip_ws(&mut i);
            }
            Some(_) => return Err(ParseError(i)),
        }
    }
    Ok(ParsedChallenge { scheme, params })
}

fn is_tchar(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn no_error_challenge() {
        let scope = ScopeSet::parse("files:read").unwrap();
        let c = Challenge::new("http://127.0.0.1/.well-known/oauth-protected-resource/mcp")
            .scope(&scope);
        let parsed = parse(&c.to_string()).unwrap();
        assert_eq!(parsed.count("error"), 0);
        assert_eq!(parsed.param("scope"), Some("files:read"));
    }

    proptest! {
        #[test]
        fn round_trip(desc in "\\PC{0,40}", url in "[ -~]{1,60}", scopes in proptest::collection::vec("[!#-\\[\\]-~]{1,10}", 0..5)) {
            let scope = ScopeSet::try_from_iter(&scopes).unwrap();
            let c = Challenge::new(&url).error(ErrorCode::InvalidToken).description(&desc).scope(&scope);
            let header = c.to_header_value();
            let parsed = parse(header.to_str().unwrap()).unwrap();
            prop_assert_eq!(parsed.scheme.as_str(), "Bearer");
            prop_assert_eq!(parsed.param("error"), Some("invalid_token"));
            prop_assert_eq!(parsed.param("resource_metadata"), Some(url.as_str()));
            for name in ["error", "error_description", "scope", "resource_metadata"] {
                prop_assert!(parsed.count(name) <= 1);
            }
            if !scope.is_empty() {
                prop_assert_eq!(ScopeSet::parse(parsed.param("scope").unwrap()).unwrap(), scope);
            }
        }

        #[test]
        fn parse_never_panics(s in "\\PC*") {
            let _ = parse(&s);
        }
    }
}
