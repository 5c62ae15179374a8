//! RFC 6570 level 1/2 URI templates, as resource requirements are declared.

#[allow(unused_imports)]
use super::*;

/// A URI template of RFC 6570 level 1/2 shape: `{var}` matches one path segment, `{+var}`
/// matches the rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UriTemplate {
    source: String,
    parts: Vec<TemplatePart>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum TemplatePart {
    Literal(String),
    Segment,
    Rest,
}

impl UriTemplate {
    /// Parses a template; a URI without `{…}` matches only itself.
    pub fn parse(template: &str) -> Result<Self, PolicyError> {
        let mut parts = Vec::new();
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(TemplatePart::Literal(rest[..open].to_owned()));
            }
            let close = rest[open..]
                .find('}')
                .ok_or_else(|| PolicyError::InvalidTemplate(template.to_owned()))?;
            let var = &rest[open + 1..open + close];
            parts.push(if var.starts_with('+') {
                TemplatePart::Rest
            } else {
                TemplatePart::Segment
            });
            rest = &rest[open + close + 1..];
        }
        if !rest.is_empty() {
            parts.push(TemplatePart::Literal(rest.to_owned()));
        }
        Ok(Self {
            source: template.to_owned(),
            parts,
        })
    }

    /// The template as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether a URI matches.
    pub fn matches(&self, uri: &str) -> bool {
        fn go(parts: &[TemplatePart], uri: &str) -> bool {
            match parts.split_first() {
                None => uri.is_empty(),
                Some((TemplatePart::Literal(l), rest)) => {
                    uri.strip_prefix(l.as_str()).is_some_and(|u| go(rest, u))
                }
                Some((TemplatePart::Segment, rest)) => {
                    let end = uri.find(['/', '?', '#']).unwrap_or(uri.len());
                    (1..=end).rev().any(|i| go(rest, &uri[i..]))
                }
                Some((TemplatePart::Rest, rest)) => (1..=uri.len())
                    .rev()
                    .filter(|i| uri.is_char_boundary(*i))
                    .any(|i| go(rest, &uri[i..])),
            }
        }
        go(&self.parts, uri)
    }
}
