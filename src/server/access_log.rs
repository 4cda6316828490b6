//! The request log: one JSON line per API request, to stderr or appended to a file; and the writer of
//! JSON lines it shares with the audit log ([`super::audit`]).
//!
//! Lines are handed to a writer thread through a bounded queue, so that a request never waits on the
//! request log's I/O (a full pipe on stderr, a slow disk) and a failed write never fails a request: a line
//! that finds the queue full, or whose write fails, is counted in the metrics
//! (`bedrock_sessions_log_lines_dropped_total`) and lost. The audit log loses no line to a full queue: a
//! request waits for room instead. The writer flushes whenever the queue is empty; stopping the server
//! waits (a bounded time) for the lines already queued to be written.

use std::fs::OpenOptions;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::time::Duration;

use serde::Serialize;

use super::metrics::Metrics;

/// Lines queued for the writer before new ones are dropped.
const QUEUE: usize = 16 * 1024;
/// Most lines written between two flushes.
const BATCH: usize = 1024;

/// Where the request log goes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum LogTarget {
    #[default]
    Off,
    Stderr,
    /// Appended to (created if missing).
    File(PathBuf),
}

/// One request, as its log line says it.
#[derive(Debug, Serialize)]
pub struct LogLine<'a> {
    /// When the request's first byte arrived (RFC 3339, UTC, microseconds).
    pub time: String,
    pub request_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation: Option<&'static str>,
    /// Method and raw path, only for a request that names no operation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<&'a str>,
    /// 0: no answer, the connection was dropped (an injected fault).
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fault: Option<&'static str>,
    pub latency_ms: f64,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

/// The sending side, kept by the server while it runs.
pub struct RequestLog {
    tx: SyncSender<String>,
    metrics: Arc<Metrics>,
    /// A full queue makes the request wait (the audit log) rather than lose the line.
    lossless: bool,
}

/// The writing side: a thread, and word of its end.
pub struct LogWriter {
    done: Receiver<()>,
}

impl RequestLog {
    /// Opens the target (a file is created or appended to) and starts its writer; `None` when off. `name`: the
    /// log's name in errors; `lossless`: a line waits for room in the queue rather than be lost.
    pub fn open(
        target: &LogTarget,
        metrics: Arc<Metrics>,
        name: &str,
        lossless: bool,
    ) -> std::io::Result<Option<(RequestLog, LogWriter)>> {
        let sink: Box<dyn Write + Send> = match target {
            LogTarget::Off => return Ok(None),
            LogTarget::Stderr => Box::new(std::io::stderr()),
            LogTarget::File(path) => Box::new(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| {
                        std::io::Error::new(
                            e.kind(),
                            format!("cannot open the {name} {}: {e}", path.display()),
                        )
                    })?,
            ),
        };
        let (tx, rx) = std::sync::mpsc::sync_channel::<String>(QUEUE);
        let (done_tx, done) = std::sync::mpsc::sync_channel::<()>(1);
        let writer_metrics = metrics.clone();
        std::thread::Builder::new()
            .name("bedrock-sessions-log".into())
            .spawn(move || {
                write_lines(rx, sink, &writer_metrics);
                let _ = done_tx.send(());
            })?;
        let log = RequestLog {
            tx,
            metrics,
            lossless,
        };
        Ok(Some((log, LogWriter { done })))
    }

    /// Queues one line; never fails (a line that cannot be queued is counted as dropped). Waits for room in
    /// the queue only when lossless.
    pub fn write(&self, line: &impl Serialize) {
        let Ok(mut text) = serde_json::to_string(line) else {
            self.metrics.log_line_dropped();
            return;
        };
        text.push('\n');
        let sent = match self.tx.try_send(text) {
            Ok(()) => true,
            Err(TrySendError::Full(text)) if self.lossless => {
                let send = || self.tx.send(text).is_ok();
                // Waiting blocks this thread: tell a multi-threaded runtime, so that it moves its other tasks.
                match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
                    Ok(tokio::runtime::RuntimeFlavor::MultiThread) => {
                        tokio::task::block_in_place(send)
                    }
                    _ => send(),
                }
            }
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => false,
        };
        if !sent {
            self.metrics.log_line_dropped();
        }
    }
}

impl LogWriter {
    /// Waits up to `timeout` for the writer to write what was queued and end (once every [`RequestLog`]
    /// is dropped). `false` if it did not (it is left to finish on its own).
    pub fn finish(self, timeout: Duration) -> bool {
        match self.done.recv_timeout(timeout) {
            Ok(()) | Err(RecvTimeoutError::Disconnected) => true,
            Err(RecvTimeoutError::Timeout) => false,
        }
    }
}

fn write_lines(rx: Receiver<String>, sink: Box<dyn Write + Send>, metrics: &Metrics) {
    let mut out = BufWriter::with_capacity(64 * 1024, sink);
    while let Ok(first) = rx.recv() {
        // Lines in the buffer since the last flush: lost if the flush fails.
        let mut buffered = 0u64;
        let batch = std::iter::once(first).chain(std::iter::from_fn(|| rx.try_recv().ok()));
        // Flushed at least every BATCH lines, so that a steady stream still reaches the sink.
        for line in batch.take(BATCH) {
            if out.write_all(line.as_bytes()).is_ok() {
                buffered += 1;
            } else {
                metrics.log_line_dropped();
            }
        }
        if out.flush().is_err() {
            for _ in 0..buffered {
                metrics.log_line_dropped();
            }
            // Lines counted as lost are not written later: start again with an empty buffer.
            let (sink, _lost) = out.into_parts();
            out = BufWriter::with_capacity(64 * 1024, sink);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(request_id: &str) -> LogLine<'_> {
        LogLine {
            time: "2025-01-02T03:04:05.123456Z".into(),
            request_id,
            operation: Some("GetSession"),
            method: None,
            path: None,
            session: Some("s-1"),
            status: 404,
            error: Some("ResourceNotFoundException"),
            fault: None,
            latency_ms: 1.25,
            bytes_in: 0,
            bytes_out: 80,
        }
    }

    #[test]
    fn lines_are_json_and_reach_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("requests.log");
        std::fs::write(&path, "kept\n").unwrap();
        let metrics = Arc::new(Metrics::default());
        let (log, writer) = RequestLog::open(
            &LogTarget::File(path.clone()),
            metrics.clone(),
            "request log",
            false,
        )
        .unwrap()
        .unwrap();
        log.write(&line("r-1"));
        log.write(&line("r-2"));
        drop(log);
        assert!(writer.finish(Duration::from_secs(10)));
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert_eq!(lines[0], "kept", "appended, not truncated");
        let v: serde_json::Value = serde_json::from_str(lines[1]).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "time": "2025-01-02T03:04:05.123456Z", "request_id": "r-1", "operation": "GetSession",
                "session": "s-1", "status": 404, "error": "ResourceNotFoundException", "latency_ms": 1.25,
                "bytes_in": 0, "bytes_out": 80,
            })
        );
        assert!(
            metrics
                .render()
                .contains("\nbedrock_sessions_log_lines_dropped_total 0\n")
        );
    }

    #[test]
    fn off_opens_nothing_and_a_bad_path_is_an_error() {
        let metrics = Arc::new(Metrics::default());
        assert!(
            RequestLog::open(&LogTarget::Off, metrics.clone(), "request log", false)
                .unwrap()
                .is_none()
        );
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("missing-dir").join("x.log");
        let err = RequestLog::open(&LogTarget::File(bad), metrics, "request log", false)
            .err()
            .unwrap();
        assert!(err.to_string().contains("cannot open the request log"));
    }

    #[test]
    fn a_failing_sink_never_fails_the_writer_and_counts_drops() {
        struct Broken;
        impl Write for Broken {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::Error::other("disk full"))
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Err(std::io::Error::other("disk full"))
            }
        }
        let metrics = Arc::new(Metrics::default());
        let (tx, rx) = std::sync::mpsc::sync_channel::<String>(4);
        let log = RequestLog {
            tx,
            metrics: metrics.clone(),
            lossless: false,
        };
        log.write(&line("a"));
        log.write(&line("b"));
        drop(log);
        write_lines(rx, Box::new(Broken), &metrics);
        assert!(
            metrics
                .render()
                .contains("\nbedrock_sessions_log_lines_dropped_total 2\n"),
            "{}",
            metrics.render()
        );
    }
}
