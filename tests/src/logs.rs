//! Every `tracing` event of the current thread, captured as text (to check what is logged,
//! and that no token ever is). Use with a current-thread runtime so that the server's tasks
//! log into it too.

use std::io::Write;
use std::sync::{Arc, Mutex};

#[derive(Clone, Default)]
struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Captures all events, every level and target, while it lives.
pub struct CapturedLogs {
    sink: Sink,
    _default: tracing::subscriber::DefaultGuard,
}

impl CapturedLogs {
    /// Starts capturing on this thread.
    pub fn start() -> Self {
        let sink = Sink::default();
        let writer = sink.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        Self {
            sink,
            _default: tracing::subscriber::set_default(subscriber),
        }
    }

    /// Everything logged so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.sink.0.lock().expect("log buffer")).into_owned()
    }
}
