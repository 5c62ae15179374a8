//! Diagnostics shared by the macros: error collection, "did you mean", scope grammar.

/// Collects errors so that one build reports all of them.
#[derive(Default)]
pub(crate) struct Errors(Option<syn::Error>);

impl Errors {
    pub(crate) fn push(&mut self, e: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(e),
            None => self.0 = Some(e),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    pub(crate) fn finish(self) -> syn::Result<()> {
        self.0.map_or(Ok(()), Err)
    }
}

/// RFC 6749 §3.3 `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`.
pub(crate) fn scope_grammar_error(scope: &str) -> Result<(), String> {
    if scope.is_empty() {
        return Err("empty scope; a scope token has at least one character".to_owned());
    }
    match scope
        .chars()
        .find(|c| !matches!(c, '\x21' | '\x23'..='\x5B' | '\x5D'..='\x7E'))
    {
        None => Ok(()),
        Some(c) => Err(format!(
            "invalid character {c:?} in scope `{}`; scope tokens are visible ASCII without `\"` or `\\` (RFC 6749 section 3.3)",
            scope.escape_debug()
        )),
    }
}

/// `; did you mean `x`?` for the closest candidate within a small edit distance, else "".
pub(crate) fn did_you_mean(input: &str, candidates: &[String]) -> String {
    let best = candidates
        .iter()
        .map(|c| (distance(input, c), c))
        .min_by_key(|(d, _)| *d);
    match best {
        Some((d, c)) if d <= 2.max(input.len() / 4) => format!("; did you mean `{c}`?"),
        _ => String::new(),
    }
}

fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        let c = vec!["files:read".to_owned(), "files:write".to_owned()];
        assert_eq!(
            did_you_mean("files:raed", &c),
            "; did you mean `files:read`?"
        );
        assert_eq!(did_you_mean("mail:send", &c), "");
    }
}
