//! The request records (`crate::observe`) handed to Python's `logging`, logger `bedrock_sessions.requests`:
//! a DEBUG record per request, a WARNING record per retried attempt.
//!
//! Why not `pyo3-log` (the `log` crate's bridge): it caches a logger's level on first use and never sees a
//! later `setLevel` unless told, and it takes the GIL on whatever thread logs, which deadlocks when that
//! thread is a runtime task awaited by a caller that keeps the GIL (the in-memory store's calls do). Here:
//!
//! - which records are wanted is read at every call from Python, where the GIL is held anyway ([`refresh`]):
//!   a look into the logger's own level cache (`Logger._cache`, cleared by `logging` on every level change),
//!   a dict lookup, with `isEnabledFor` when it has no answer; runtime threads read the answer from an
//!   atomic and never take the GIL to log;
//! - a record is formatted and queued only when wanted, and the queue is handed to `logging` when a call
//!   returns to Python, still under its GIL ([`drain`]): at the end of a sync call, or where an async call's
//!   result is set. A deferred saver's background writes are thus logged when the next call returns.

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, LazyLock, Mutex};

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple};

use crate::observe::{Event, Recorder, Wants};

pub(super) const LOGGER: &str = "bedrock_sessions.requests";
const DEBUG: i32 = 10;
const WARNING: i32 = 30;
const REQUESTS: u8 = 1;
const RETRIES: u8 = 2;

/// The records waiting for the GIL, with the process they were made in (a forked child drops its parent's).
#[derive(Debug, Default)]
struct Queue {
    pid: u32,
    events: Vec<Event>,
}

/// The recorder of every store opened for Python.
#[derive(Debug, Default)]
pub(super) struct PyRecorder {
    wants: AtomicU8,
    pending: AtomicBool,
    queue: Mutex<Queue>,
}

impl Recorder for PyRecorder {
    fn wants(&self) -> Wants {
        let w = self.wants.load(Ordering::Relaxed);
        Wants {
            requests: w & REQUESTS != 0,
            retries: w & RETRIES != 0,
        }
    }

    fn record(&self, event: Event) {
        let pid = std::process::id();
        let mut q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        if q.pid != pid {
            q.pid = pid;
            q.events.clear();
        }
        q.events.push(event);
        self.pending.store(true, Ordering::Release);
    }
}

static RECORDER: LazyLock<Arc<PyRecorder>> = LazyLock::new(Default::default);

/// The recorder to observe stores with.
pub(super) fn recorder() -> Arc<dyn Recorder> {
    RECORDER.clone()
}

/// The Python logger, and its level cache when it has one (CPython's `Logger._cache`: level → enabled).
struct PyLogger {
    logger: Py<PyAny>,
    cache: Option<Py<PyDict>>,
}

static PY_LOGGER: PyOnceLock<Option<PyLogger>> = PyOnceLock::new();

fn py_logger(py: Python<'_>) -> Option<&PyLogger> {
    PY_LOGGER
        .get_or_init(py, || {
            let logger = py
                .import("logging")
                .and_then(|m| m.call_method1("getLogger", (LOGGER,)))
                .ok()?;
            let cache = logger
                .getattr("_cache")
                .ok()
                .and_then(|c| c.cast_into::<PyDict>().ok())
                .map(Bound::unbind);
            Some(PyLogger {
                logger: logger.unbind(),
                cache,
            })
        })
        .as_ref()
}

fn enabled_for(py: Python<'_>, l: &PyLogger, level: i32) -> bool {
    if let Some(cache) = &l.cache {
        if let Ok(Some(v)) = cache.bind(py).get_item(level) {
            return v.is_truthy().unwrap_or(false);
        }
    }
    l.logger
        .bind(py)
        .call_method1(intern!(py, "isEnabledFor"), (level,))
        .and_then(|v| v.is_truthy())
        .unwrap_or(false)
}

/// Whether a store that retries (the Bedrock backend) was opened in this process: until then the WARNING
/// level is not looked up.
static RETRYING: AtomicBool = AtomicBool::new(false);

/// For a store that retries, when opened.
pub(super) fn retrying_store_opened() {
    RETRYING.store(true, Ordering::Relaxed);
}

/// Reads which records the logger takes now, at each call from Python: a dict lookup (two once the Bedrock
/// backend is in use, whose retries are logged at WARNING).
pub(super) fn refresh(py: Python<'_>) {
    let wants = match py_logger(py) {
        None => 0,
        Some(l) => {
            if enabled_for(py, l, DEBUG) {
                REQUESTS | RETRIES
            } else if RETRYING.load(Ordering::Relaxed) && enabled_for(py, l, WARNING) {
                RETRIES
            } else {
                0
            }
        }
    };
    RECORDER.wants.store(wants, Ordering::Relaxed);
}

/// Whether request records are wanted (as of the last [`refresh`]).
pub(super) fn requests_wanted() -> bool {
    RECORDER.wants.load(Ordering::Relaxed) & REQUESTS != 0
}

/// Hands the queued records to `logging` (a flag check when there are none).
pub(super) fn drain(py: Python<'_>) {
    if !RECORDER.pending.load(Ordering::Acquire) {
        return;
    }
    let events = {
        let mut q = RECORDER.queue.lock().unwrap_or_else(|p| p.into_inner());
        RECORDER.pending.store(false, Ordering::Release);
        if q.pid != std::process::id() {
            q.events.clear();
        }
        std::mem::take(&mut q.events)
    };
    let Some(l) = py_logger(py) else {
        return;
    };
    // A handler's failure is logging's to report (Handler.handleError); one of ours must not fail the call.
    let earlier = PyErr::take(py);
    let mut levels: [Option<bool>; 2] = [None, None];
    for event in &events {
        let (slot, level) = match event {
            Event::Request(_) => (0, DEBUG),
            Event::Retry(_) => (1, WARNING),
        };
        if !*levels[slot].get_or_insert_with(|| enabled_for(py, l, level)) {
            continue;
        }
        let _ = emit(py, l.logger.bind(py), level, event);
    }
    if let Some(e) = earlier {
        e.restore(py);
    }
}

fn emit(py: Python<'_>, logger: &Bound<'_, PyAny>, level: i32, event: &Event) -> PyResult<()> {
    let extra = PyDict::new(py);
    let msg = match event {
        Event::Request(r) => {
            extra.set_item("operation", r.operation)?;
            extra.set_item("request_id", &r.request_id)?;
            extra.set_item("session", r.session.as_deref())?;
            extra.set_item("status", r.status())?;
            extra.set_item("latency_ms", r.latency_ms())?;
            extra.set_item("attempts", r.attempts)?;
            r.to_string()
        }
        Event::Retry(r) => {
            extra.set_item("operation", r.operation)?;
            extra.set_item("request_id", &r.request_id)?;
            extra.set_item("session", r.session.as_deref())?;
            extra.set_item("status", r.error.as_str())?;
            extra.set_item("attempt", r.attempt)?;
            extra.set_item("max_attempts", r.max_attempts)?;
            extra.set_item("delay_ms", r.delay.as_secs_f64() * 1000.0)?;
            extra.set_item("reason", &r.message)?;
            r.to_string()
        }
    };
    let none = py.None();
    let record = logger.call_method1(
        intern!(py, "makeRecord"),
        (
            LOGGER,
            level,
            "bedrock_sessions/_core",
            0,
            msg,
            PyTuple::empty(py),
            &none,
            &none,
            extra,
        ),
    )?;
    logger.call_method1(intern!(py, "handle"), (record,))?;
    Ok(())
}
