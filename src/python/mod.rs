//! The Python bindings: `bedrock_sessions._core`.

use pyo3::prelude::*;

mod client;
mod convert;
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
