//! Every `tracing` event of the current thread, captured as text (to check what is logged,
//! and that no token ever is). Use with a current-thread runtime so that the server's tasks
//! log into it too.
//!
//! All tests share one process, and `tracing` caches per call site whether anyone listens,
//! so a subscriber set per thread would miss the call sites another thread reached first.
//! Instead one process-wide subscriber is installed on first use, and it writes each event
//! to the sink of the thread it happens on, if that thread is capturing.

use std::cell::RefCell;
use std::io::Write;
use std::sync::{Arc, Mutex, Once};

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::{Layer, filter};

#[derive(Clone, Default)]
struct Sink(Arc<Mutex<Vec<u8>>>);

thread_local! {
    static CAPTURING: RefCell<Option<Sink>> = const { RefCell::new(None) };
}

fn capturing() -> bool {
    CAPTURING.with(|s| s.borrow().is_some())
}

/// Writes to the current thread's sink, or nowhere.
struct ThreadSink;

struct ThreadWriter(Option<Sink>);

impl Write for ThreadWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Some(sink) = &self.0 {
            sink.0.lock().expect("log buffer").extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for ThreadSink {
    type Writer = ThreadWriter;
    fn make_writer(&'a self) -> ThreadWriter {
        ThreadWriter(CAPTURING.with(|s| s.borrow().clone()))
    }
}

fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let layer = tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .with_writer(ThreadSink)
            // Decided per event, never cached per call site (a `dynamic_filter_fn`; a plain
            // `filter_fn` would cache the answer of whichever thread reached a site first).
            .with_filter(filter::dynamic_filter_fn(|_, _| capturing()));
        tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer))
            .expect("no other global subscriber in the test process");
    });
}

/// Captures all events of this thread, every level and target, while it lives.
pub struct CapturedLogs {
    sink: Sink,
}

impl CapturedLogs {
    /// Starts capturing on this thread.
    pub fn start() -> Self {
        install();
        let sink = Sink::default();
        CAPTURING.with(|s| *s.borrow_mut() = Some(sink.clone()));
        Self { sink }
    }

    /// Everything logged so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.sink.0.lock().expect("log buffer")).into_owned()
    }
}

impl Drop for CapturedLogs {
    fn drop(&mut self) {
        CAPTURING.with(|s| *s.borrow_mut() = None);
    }
}
