//! The example binaries' logging: `tracing` events formatted on the request's task and
//! written by a thread of their own, so that a request never waits on the terminal or the
//! pipe behind it.
//!
//! The hand-off is a bounded channel of whole lines. It loses nothing: when the writer falls
//! more than [`QUEUE_LINES`] lines behind, logging threads wait for it (as they would with a
//! synchronous writer) rather than drop an audit event. [`LogGuard`] flushes what is queued
//! when `main` returns.
//!
//! Default filters (`RUST_LOG` replaces them):
//! - [`SERVER_FILTER`] for the servers (`files`): start-up and shutdown lines, refusals
//!   (`mcp_guard::audit` at `info`), warnings; rmcp's per-request lines are off. Allowed
//!   decisions are `debug` events: `RUST_LOG=info,mcp_guard::audit=debug` logs them too (or
//!   record every decision through `GuardBuilder::audit_sink`).
//! - [`DEMO_FILTER`] for the demonstrations (`quickstart`, `tickets`, the conformance
//!   fixture): warnings and refusals only.

use std::io::Write;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;

/// The servers' default filter.
pub const SERVER_FILTER: &str = "info,rmcp=warn";

/// The demonstrations' default filter.
pub const DEMO_FILTER: &str = "warn,mcp_guard::audit=info";

/// Lines the writer thread may fall behind before logging waits for it.
pub const QUEUE_LINES: usize = 65_536;

/// Where the lines go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// Standard output.
    Stdout,
    /// Standard error (when standard output carries the protocol).
    Stderr,
}

enum Message {
    Line(Vec<u8>),
    Flush(SyncSender<()>),
}

/// Flushes the queued lines when dropped (keep it alive for the whole of `main`).
#[must_use = "the lines still queued are lost when the guard is dropped at once"]
pub struct LogGuard {
    queue: SyncSender<Message>,
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        let (done, flushed) = sync_channel(1);
        if self.queue.send(Message::Flush(done)).is_ok() {
            // Bounded: a stuck terminal does not keep the process from exiting.
            let _ = flushed.recv_timeout(Duration::from_secs(2));
        }
    }
}

/// Installs the global subscriber: `RUST_LOG`, or `default_filter` without it.
///
/// # Panics
/// If a global subscriber is already set, or the writer thread cannot be started.
pub fn init(default_filter: &str, output: Output) -> LogGuard {
    let (queue, lines) = sync_channel(QUEUE_LINES);
    std::thread::Builder::new()
        .name("log-writer".into())
        .spawn(move || write_lines(&lines, output))
        .expect("the log writer thread");
    tracing_subscriber::fmt()
        .with_writer(Lines {
            queue: queue.clone(),
        })
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| default_filter.into()),
        )
        .init();
    LogGuard { queue }
}

/// The writer thread: writes each line as it comes, flushing whenever the queue is empty.
fn write_lines(lines: &Receiver<Message>, output: Output) {
    let mut out: Box<dyn Write> = match output {
        Output::Stdout => Box::new(std::io::BufWriter::new(std::io::stdout())),
        Output::Stderr => Box::new(std::io::BufWriter::new(std::io::stderr())),
    };
    while let Ok(first) = lines.recv() {
        let mut next = Some(first);
        while let Some(message) = next.take() {
            match message {
                // A closed pipe or a full disk loses the log, never the server.
                Message::Line(line) => drop(out.write_all(&line)),
                Message::Flush(done) => {
                    let _ = out.flush();
                    let _ = done.send(());
                }
            }
            next = lines.try_recv().ok();
        }
        let _ = out.flush();
    }
}

/// The subscriber's writer factory: one [`Line`] per event.
struct Lines {
    queue: SyncSender<Message>,
}

impl<'a> MakeWriter<'a> for Lines {
    type Writer = Line;

    fn make_writer(&'a self) -> Line {
        Line {
            text: Vec::with_capacity(256),
            queue: self.queue.clone(),
        }
    }
}

/// One event's text, queued whole when the formatter is done with it.
struct Line {
    text: Vec<u8>,
    queue: SyncSender<Message>,
}

impl Write for Line {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.text.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for Line {
    fn drop(&mut self) {
        if !self.text.is_empty() {
            let _ = self
                .queue
                .send(Message::Line(std::mem::take(&mut self.text)));
        }
    }
}
