//! The Python bindings: `bedrock_sessions._core`.

use pyo3::prelude::*;

mod client;
mod convert;
mod door;
mod llama;
mod log;
mod runtime;
mod saver;
mod server;

/// The envelope JSON of a stored text block of the saver's layout (inflates a compressed one).
#[pyfunction]
fn unpack_envelope(text: &str) -> PyResult<String> {
    crate::saver::layout::unpack(text)
        .map(|c| c.into_owned())
        .map_err(|e| pyo3::exceptions::PyValueError::new_err(e.message))
}

/// The LlamaIndex stores' ids (layout "li1", see `crate::ids::li1`) of one kind and namespace.
#[pyclass(name = "Li1Ids", frozen, module = "bedrock_sessions._core")]
struct PyLi1Ids {
    kind: String,
    ns: String,
    steps: crate::ids::li1::StepIds,
}

#[pymethods]
impl PyLi1Ids {
    #[new]
    fn new(kind: String, ns: String) -> Self {
        let steps = crate::ids::li1::StepIds::new(&kind, &ns);
        PyLi1Ids { kind, ns, steps }
    }

    /// The invocation of the log (no run) or of a workflow run.
    #[pyo3(signature = (run=None))]
    fn invocation_id(&self, run: Option<&str>) -> String {
        crate::ids::li1::invocation_id(&self.kind, &self.ns, run)
    }

    fn marker_key(&self) -> String {
        crate::ids::li1::marker_key(&self.kind, &self.ns)
    }

    fn log_step_id(&self, seq: u64) -> PyResult<String> {
        self.steps.log_step(seq).ok_or_else(|| {
            pyo3::exceptions::PyValueError::new_err(format!("step number {seq} is beyond 2**48"))
        })
    }

    fn log_seq_of(&self, step_id: &str) -> Option<u64> {
        self.steps.log_seq(step_id)
    }

    fn part_step_id(&self, nonce: [u8; 5], part: u8, count: u8) -> String {
        self.steps.part_step(nonce, part, count)
    }

    /// The thread id of a key's generation.
    fn thread_id(&self, key: &str, generation: u64) -> String {
        crate::llama::thread_id(&self.kind, &self.ns, key, generation)
    }

    /// (nonce, part, count) of a part's step id, or None.
    fn part_of<'py>(
        &self,
        py: Python<'py>,
        step_id: &str,
    ) -> Option<(Bound<'py, pyo3::types::PyBytes>, u8, u8)> {
        self.steps
            .part_of(step_id)
            .map(|(nonce, p, n)| (pyo3::types::PyBytes::new(py, &nonce), p, n))
    }
}

/// Waits until no async call is in flight (at most `timeout` seconds); registered with `atexit`.
#[pyfunction]
#[pyo3(signature = (timeout=5.0))]
fn quiesce(py: Python<'_>, timeout: f64) -> bool {
    let t = std::time::Duration::from_secs_f64(timeout.clamp(0.0, 3600.0));
    py.detach(|| runtime::quiesce(t))
}

#[pymodule]
#[pyo3(name = "_core")]
fn core_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<client::PyNativeClient>()?;
    m.add_class::<client::PyManualClock>()?;
    m.add_class::<saver::PyNativeSaver>()?;
    m.add_class::<saver::PyListCursor>()?;
    m.add_class::<server::PyNativeServer>()?;
    m.add_class::<PyLi1Ids>()?;
    m.add_class::<llama::PyChatLog>()?;
    m.add_class::<llama::PyWorkflowLog>()?;
    m.add_function(wrap_pyfunction!(unpack_envelope, m)?)?;
    m.add_function(wrap_pyfunction!(quiesce, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("SCHEMA_VERSION", crate::store::sqlite::SCHEMA_VERSION)?;
    m.add(
        "OPERATIONS",
        crate::ops::Operation::ALL
            .iter()
            .map(|o| o.name())
            .collect::<Vec<_>>(),
    )?;
    Ok(())
}
