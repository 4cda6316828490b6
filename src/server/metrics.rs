//! The local server's metrics, counted with atomics and served as Prometheus text (exposition format
//! 0.0.4) at `GET /metrics` and `GET /_bedrock_sessions/metrics`.
//!
//! Every API request is counted once, when its answer is ready (before it is sent: a client holding its
//! answer finds it counted), by operation, status and error code; its duration goes into a histogram
//! per operation. Requests that name no operation (no route at that method and path, or refused before
//! routing) have the operation `unknown`; a connection dropped by an injected fault has the status `0`
//! (no answer). The health, stats and metrics routes are not counted. Counters only grow: resetting the
//! stats (`DELETE /_bedrock_sessions/stats`) leaves them alone.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use super::Fault;
use crate::ops::Operation;

/// Upper bounds of the duration histogram's buckets, in seconds, with their text in `le` (`+Inf` follows).
pub const BUCKETS: [(f64, &str); 14] = [
    (0.0005, "0.0005"),
    (0.001, "0.001"),
    (0.0025, "0.0025"),
    (0.005, "0.005"),
    (0.01, "0.01"),
    (0.025, "0.025"),
    (0.05, "0.05"),
    (0.1, "0.1"),
    (0.25, "0.25"),
    (0.5, "0.5"),
    (1.0, "1"),
    (2.5, "2.5"),
    (5.0, "5"),
    (10.0, "10"),
];

/// The `operation` label of requests that name no operation.
pub const UNKNOWN_OPERATION: &str = "unknown";

/// Error codes the server answers with: the core's, and the router's own.
const ERROR_CODES: [&str; 9] = [
    "ValidationException",
    "ResourceNotFoundException",
    "ConflictException",
    "ServiceQuotaExceededException",
    "AccessDeniedException",
    "ThrottlingException",
    "InternalServerException",
    "UnknownOperationException",
    // Any other code (none is answered today): counted, not lost.
    "Other",
];

const FAULTS: [Fault; 4] = [
    Fault::Throttle,
    Fault::Internal,
    Fault::DropBefore,
    Fault::DropAfter,
];

/// The 14 operations, then `unknown`.
const OPS: usize = Operation::ALL.len() + 1;
/// Statuses 0 (no answer) to 599.
const STATUSES: usize = 600;
/// Per operation: one slot per bucket, then one for past the last bound (+Inf).
const SLOTS: usize = BUCKETS.len() + 1;

/// One answered API request, as the metrics count it.
#[derive(Debug, Clone)]
pub struct Observation<'a> {
    pub operation: Option<Operation>,
    /// The HTTP status answered; 0 when the connection was dropped instead.
    pub status: u16,
    /// The error code answered (`x-amzn-ErrorType`), if any.
    pub error: Option<&'a str>,
    pub fault: Option<Fault>,
    pub duration: Duration,
    /// Body bytes received and answered.
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// A PutInvocationStep that stored its step.
    pub step_written: bool,
}

/// The server's counters. Each is one atomic: counting takes no lock and never waits.
#[derive(Debug)]
pub struct Metrics {
    /// `OPS * STATUSES`.
    requests: Vec<AtomicU64>,
    /// `OPS * ERROR_CODES.len()`.
    errors: Vec<AtomicU64>,
    /// `OPS * SLOTS`, each request in one slot (not cumulative; the text is).
    duration_slots: Vec<AtomicU64>,
    /// `OPS`, nanoseconds.
    duration_sum_ns: Vec<AtomicU64>,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    steps_written: AtomicU64,
    in_flight: AtomicU64,
    faults: [AtomicU64; FAULTS.len()],
    log_lines_dropped: AtomicU64,
}

fn counters(n: usize) -> Vec<AtomicU64> {
    (0..n).map(|_| AtomicU64::new(0)).collect()
}

fn op_index(op: Option<Operation>) -> usize {
    op.and_then(|op| Operation::ALL.iter().position(|o| *o == op))
        .unwrap_or(OPS - 1)
}

fn op_label(i: usize) -> &'static str {
    Operation::ALL
        .get(i)
        .map_or(UNKNOWN_OPERATION, |op| op.name())
}

fn code_index(code: &str) -> usize {
    ERROR_CODES
        .iter()
        .position(|c| *c == code)
        .unwrap_or(ERROR_CODES.len() - 1)
}

/// A label value as the text format wants it: backslash, double quote and line feed escaped.
pub fn escape_label_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// `{k="v",...}` with escaped values.
fn labels(pairs: &[(&str, &str)]) -> String {
    let inner: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape_label_value(v)))
        .collect();
    format!("{{{}}}", inner.join(","))
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A float as the text format reads it (Rust never writes an exponent, and whole numbers get no `.0`).
fn float(x: f64) -> String {
    if x.is_nan() {
        "NaN".into()
    } else if x.is_infinite() {
        if x > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{x}")
    }
}

/// Counts a request in flight until dropped.
pub struct InFlight<'a>(&'a Metrics);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Relaxed);
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            requests: counters(OPS * STATUSES),
            errors: counters(OPS * ERROR_CODES.len()),
            duration_slots: counters(OPS * SLOTS),
            duration_sum_ns: counters(OPS),
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            steps_written: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            faults: Default::default(),
            log_lines_dropped: AtomicU64::new(0),
        }
    }
}

impl Metrics {
    /// A request has begun (its head has arrived); it stays in flight until the guard is dropped.
    pub fn begin(&self) -> InFlight<'_> {
        self.in_flight.fetch_add(1, Relaxed);
        InFlight(self)
    }

    /// Counts an answered request.
    pub fn observe(&self, o: &Observation<'_>) {
        let op = op_index(o.operation);
        let status = usize::from(o.status).min(STATUSES - 1);
        self.requests[op * STATUSES + status].fetch_add(1, Relaxed);
        if let Some(code) = o.error {
            self.errors[op * ERROR_CODES.len() + code_index(code)].fetch_add(1, Relaxed);
        }
        let secs = o.duration.as_secs_f64();
        let slot = BUCKETS
            .iter()
            .position(|(le, _)| secs <= *le)
            .unwrap_or(BUCKETS.len());
        self.duration_slots[op * SLOTS + slot].fetch_add(1, Relaxed);
        let ns = u64::try_from(o.duration.as_nanos()).unwrap_or(u64::MAX);
        self.duration_sum_ns[op].fetch_add(ns, Relaxed);
        self.bytes_in.fetch_add(o.bytes_in, Relaxed);
        self.bytes_out.fetch_add(o.bytes_out, Relaxed);
        if o.step_written {
            self.steps_written.fetch_add(1, Relaxed);
        }
        if let Some(f) = o.fault {
            if let Some(i) = FAULTS.iter().position(|x| *x == f) {
                self.faults[i].fetch_add(1, Relaxed);
            }
        }
    }

    /// A request-log line lost (the writer fell behind, or its write failed).
    pub fn log_line_dropped(&self) {
        self.log_lines_dropped.fetch_add(1, Relaxed);
    }

    /// Everything, in the Prometheus text exposition format 0.0.4. Series of labelled counters appear once
    /// counted; the histogram's `_count` is its `+Inf` bucket.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        let load = |v: &AtomicU64| v.load(Relaxed);

        let name = "bedrock_sessions_requests_total";
        header(
            &mut out,
            name,
            "counter",
            "API requests answered, by operation and HTTP status (0: the connection was dropped).",
        );
        for op in 0..OPS {
            for status in 0..STATUSES {
                let n = load(&self.requests[op * STATUSES + status]);
                if n > 0 {
                    let status = status.to_string();
                    let l = labels(&[("operation", op_label(op)), ("status", &status)]);
                    let _ = writeln!(out, "{name}{l} {n}");
                }
            }
        }

        let name = "bedrock_sessions_errors_total";
        header(
            &mut out,
            name,
            "counter",
            "API requests answered with an error, by operation and error code.",
        );
        for op in 0..OPS {
            for (c, code) in ERROR_CODES.iter().enumerate() {
                let n = load(&self.errors[op * ERROR_CODES.len() + c]);
                if n > 0 {
                    let l = labels(&[("operation", op_label(op)), ("code", code)]);
                    let _ = writeln!(out, "{name}{l} {n}");
                }
            }
        }

        let name = "bedrock_sessions_request_duration_seconds";
        header(
            &mut out,
            name,
            "histogram",
            "Time from a request's first byte to its answer being ready, by operation.",
        );
        for op in 0..OPS {
            let slots: Vec<u64> = (0..SLOTS)
                .map(|s| load(&self.duration_slots[op * SLOTS + s]))
                .collect();
            let count: u64 = slots.iter().sum();
            if count == 0 {
                continue;
            }
            let opl = op_label(op);
            let mut cumulative = 0;
            for (i, (_, le)) in BUCKETS.iter().enumerate() {
                cumulative += slots[i];
                let l = labels(&[("operation", opl), ("le", le)]);
                let _ = writeln!(out, "{name}_bucket{l} {cumulative}");
            }
            let l = labels(&[("operation", opl), ("le", "+Inf")]);
            let _ = writeln!(out, "{name}_bucket{l} {count}");
            let sum = load(&self.duration_sum_ns[op]) as f64 / 1e9;
            let l = labels(&[("operation", opl)]);
            let _ = writeln!(out, "{name}_sum{l} {}", float(sum));
            let _ = writeln!(out, "{name}_count{l} {count}");
        }

        let name = "bedrock_sessions_request_bytes_total";
        header(
            &mut out,
            name,
            "counter",
            "Body bytes of API requests (in) and of their answers (out).",
        );
        let _ = writeln!(
            out,
            "{name}{} {}",
            labels(&[("direction", "in")]),
            load(&self.bytes_in)
        );
        let _ = writeln!(
            out,
            "{name}{} {}",
            labels(&[("direction", "out")]),
            load(&self.bytes_out)
        );

        let name = "bedrock_sessions_steps_written_total";
        header(
            &mut out,
            name,
            "counter",
            "Invocation steps stored by PutInvocationStep.",
        );
        let _ = writeln!(out, "{name} {}", load(&self.steps_written));

        let name = "bedrock_sessions_faults_injected_total";
        header(&mut out, name, "counter", "Faults injected, by fault.");
        for (i, f) in FAULTS.iter().enumerate() {
            let l = labels(&[("fault", f.name())]);
            let _ = writeln!(out, "{name}{l} {}", load(&self.faults[i]));
        }

        let name = "bedrock_sessions_in_flight";
        header(
            &mut out,
            name,
            "gauge",
            "API requests received and not yet answered.",
        );
        let _ = writeln!(out, "{name} {}", load(&self.in_flight));

        let name = "bedrock_sessions_log_lines_dropped_total";
        header(
            &mut out,
            name,
            "counter",
            "Request-log lines lost (the log writer fell behind, or a write failed).",
        );
        let _ = writeln!(out, "{name} {}", load(&self.log_lines_dropped));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(op: Option<Operation>, status: u16, ms: u64) -> Observation<'static> {
        Observation {
            operation: op,
            status,
            error: None,
            fault: None,
            duration: Duration::from_millis(ms),
            bytes_in: 10,
            bytes_out: 100,
            step_written: false,
        }
    }

    /// The value of the series `series` (name and labels, as written) in `text`.
    fn value(text: &str, series: &str) -> Option<String> {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .map(str::to_string)
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label_value(r#"a\b"c"#), r#"a\\b\"c"#);
        assert_eq!(escape_label_value("x\ny"), "x\\ny");
        assert_eq!(escape_label_value("plain"), "plain");
        assert_eq!(labels(&[("k", "v\"1"), ("l", "2")]), r#"{k="v\"1",l="2"}"#);
    }

    #[test]
    fn exposition_text() {
        let m = Metrics::default();
        let empty = m.render();
        assert!(empty.contains("# TYPE bedrock_sessions_requests_total counter\n"));
        assert!(empty.contains("# TYPE bedrock_sessions_request_duration_seconds histogram\n"));
        assert!(empty.contains("# TYPE bedrock_sessions_in_flight gauge\n"));
        assert!(!empty.contains("bedrock_sessions_requests_total{"));
        assert_eq!(
            value(&empty, "bedrock_sessions_steps_written_total").as_deref(),
            Some("0")
        );

        let guard = m.begin();
        assert_eq!(
            value(&m.render(), "bedrock_sessions_in_flight").as_deref(),
            Some("1")
        );
        drop(guard);

        let put = Some(Operation::PutInvocationStep);
        m.observe(&Observation {
            step_written: true,
            ..obs(put, 201, 2)
        });
        m.observe(&obs(put, 201, 2000));
        m.observe(&Observation {
            error: Some("ResourceNotFoundException"),
            ..obs(Some(Operation::GetSession), 404, 0)
        });
        m.observe(&Observation {
            fault: Some(Fault::DropBefore),
            ..obs(put, 0, 20_000)
        });
        m.observe(&Observation {
            error: Some("UnknownOperationException"),
            ..obs(None, 404, 1)
        });
        let t = m.render();
        let v = |s: &str| value(&t, s).unwrap_or_else(|| panic!("no {s} in\n{t}"));
        assert_eq!(
            v(r#"bedrock_sessions_requests_total{operation="PutInvocationStep",status="201"}"#),
            "2"
        );
        assert_eq!(
            v(r#"bedrock_sessions_requests_total{operation="PutInvocationStep",status="0"}"#),
            "1"
        );
        assert_eq!(
            v(
                r#"bedrock_sessions_errors_total{operation="GetSession",code="ResourceNotFoundException"}"#
            ),
            "1"
        );
        assert_eq!(
            v(
                r#"bedrock_sessions_errors_total{operation="unknown",code="UnknownOperationException"}"#
            ),
            "1"
        );
        assert_eq!(v("bedrock_sessions_in_flight"), "0");
        assert_eq!(v("bedrock_sessions_steps_written_total"), "1");
        assert_eq!(
            v(r#"bedrock_sessions_faults_injected_total{fault="drop-before"}"#),
            "1"
        );
        assert_eq!(
            v(r#"bedrock_sessions_request_bytes_total{direction="in"}"#),
            "50"
        );
        assert_eq!(
            v(r#"bedrock_sessions_request_bytes_total{direction="out"}"#),
            "500"
        );
        // Buckets are cumulative, `le` inclusive: 2 ms is in le=0.0025, 2 s in le=2.5, 20 s only in +Inf.
        let h = "bedrock_sessions_request_duration_seconds";
        let b = |le: &str| {
            v(&format!(
                r#"{h}_bucket{{operation="PutInvocationStep",le="{le}"}}"#
            ))
        };
        assert_eq!(b("0.001"), "0");
        assert_eq!(b("0.0025"), "1");
        assert_eq!(b("1"), "1");
        assert_eq!(b("2.5"), "2");
        assert_eq!(b("10"), "2");
        assert_eq!(b("+Inf"), "3");
        assert_eq!(
            v(&format!(r#"{h}_count{{operation="PutInvocationStep"}}"#)),
            "3"
        );
        assert_eq!(
            v(&format!(r#"{h}_sum{{operation="PutInvocationStep"}}"#)),
            "22.002"
        );
        assert_eq!(
            v(&format!(
                r#"{h}_bucket{{operation="GetSession",le="0.0005"}}"#
            )),
            "1"
        );
        // Operations never seen have no series.
        assert!(!t.contains(r#"operation="ListSessions""#));
        // Every line is a comment or `name{labels} value`, values numbers.
        for line in t.lines().filter(|l| !l.starts_with('#')) {
            let (_, val) = line.rsplit_once(' ').unwrap();
            assert!(val == "+Inf" || val.parse::<f64>().is_ok(), "{line}");
        }
        assert!(t.ends_with('\n'));
    }
}
