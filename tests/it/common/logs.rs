//! Captures everything the broker logs in this test process, at debug level, so a test
//! can search it for secrets. Tests in one binary share the capture: stricter, not looser.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();

struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Starts capturing (once per process); call before the app starts.
pub fn capture() {
    LOGS.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = buffer.clone();
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(move || Sink(writer.clone()))
            .try_init()
            .expect("no other subscriber in this test binary");
        buffer
    });
}

/// Everything logged so far.
pub fn text() -> String {
    let buffer = LOGS.get().expect("capture() was called");
    String::from_utf8_lossy(&buffer.lock().unwrap()).into_owned()
}
