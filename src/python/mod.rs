//! The Python bindings: `bedrock_sessions._core`.

use pyo3::prelude::*;

mod client;
mod convert;
mod runtime;
mod saver;
mod server;

#[pymodule]
#[pyo3(name = "_core")]
fn core_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<client::PyNativeClient>()?;
    m.add_class::<client::PyManualClock>()?;
    m.add_class::<saver::PyNativeSaver>()?;
    m.add_class::<saver::PyListCursor>()?;
    m.add_class::<server::PyNativeServer>()?;
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
