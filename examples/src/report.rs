//! How the example binaries end on an error: `error: <message>` and one `caused by: <cause>`
//! line per source the message does not already include, on stderr, then exit status 1.

use std::error::Error;
use std::process::ExitCode;

/// The exit of a binary whose body returned `result`: success, or the error reported on
/// stderr as [`chain`] writes it and status 1.
pub fn exit(result: Result<(), Box<dyn Error + Send + Sync>>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{}", chain(&*e));
            ExitCode::FAILURE
        }
    }
}

/// The error as a person reads it: `error: <Display>`, then `caused by: <Display>` for each
/// [`Error::source`] whose text the line above does not already contain (many errors quote
/// their cause in their own message).
pub fn chain(error: &(dyn Error + 'static)) -> String {
    let mut out = format!("error: {error}");
    let mut last = error.to_string();
    let mut cause = error.source();
    // Bounded: a source chain is finite, but a buggy one could loop.
    for _ in 0..32 {
        let Some(c) = cause else { break };
        let text = c.to_string();
        if !last.contains(&text) {
            out.push_str("\ncaused by: ");
            out.push_str(&text);
        }
        last = text;
        cause = c.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("the server could not start")]
    struct Outer(#[source] std::io::Error);

    #[derive(Debug, thiserror::Error)]
    #[error("config: {0}")]
    struct Quoting(#[source] std::io::Error);

    #[test]
    fn each_cause_on_its_own_line_unless_already_quoted() {
        let io = || std::io::Error::other("address in use");
        assert_eq!(
            chain(&Outer(io())),
            "error: the server could not start\ncaused by: address in use"
        );
        assert_eq!(chain(&Quoting(io())), "error: config: address in use");
        let boxed: Box<dyn Error + Send + Sync> = "plain".into();
        assert_eq!(chain(boxed.as_ref()), "error: plain");
    }
}
