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
    /// `{name}`: one path segment.
    Segment(String),
    /// `{+name}`: the rest.
    Rest(String),
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
            parts.push(match var.strip_prefix('+') {
                Some(name) => TemplatePart::Rest(name.to_owned()),
                None => TemplatePart::Segment(var.to_owned()),
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
        self.captures(uri).is_some()
    }

    /// The names of the template's variables, in order.
    pub fn variables(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            TemplatePart::Segment(n) | TemplatePart::Rest(n) => Some(n.as_str()),
            TemplatePart::Literal(_) => None,
        })
    }

    /// The value of each variable in a matching URI, as `(name, value)` in template order
    /// (the longest match for each variable, left to right); `None` when the URI does not
    /// match.
    pub fn captures<'u>(&self, uri: &'u str) -> Option<Vec<(&str, &'u str)>> {
        fn go<'p, 'u>(
            parts: &'p [TemplatePart],
            uri: &'u str,
            out: &mut Vec<(&'p str, &'u str)>,
        ) -> bool {
            let mut take = |name: &'p str, ends: &mut dyn Iterator<Item = usize>, rest| {
                for i in ends {
                    out.push((name, &uri[..i]));
                    if go(rest, &uri[i..], out) {
                        return true;
                    }
                    out.pop();
                }
                false
            };
            match parts.split_first() {
                None => uri.is_empty(),
                Some((TemplatePart::Literal(l), rest)) => uri
                    .strip_prefix(l.as_str())
                    .is_some_and(|u| go(rest, u, out)),
                Some((TemplatePart::Segment(name), rest)) => {
                    let end = uri.find(['/', '?', '#']).unwrap_or(uri.len());
                    take(name, &mut (1..=end).rev(), rest)
                }
                Some((TemplatePart::Rest(name), rest)) => take(
                    name,
                    &mut (1..=uri.len()).rev().filter(|i| uri.is_char_boundary(*i)),
                    rest,
                ),
            }
        }
        let mut out = Vec::new();
        go(&self.parts, uri, &mut out).then_some(out)
    }
}
