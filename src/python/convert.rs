//! Python objects ⇄ [`Value`], and core errors → the exception classes of `bedrock_sessions.exceptions`.

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{
    PyBool, PyByteArray, PyBytes, PyDict, PyFloat, PyInt, PyList, PyMemoryView, PyString, PyTuple,
};

use crate::error::Error;
use crate::value::Value;

struct DateTimeApi {
    datetime: Py<PyAny>,
    utc: Py<PyAny>,
    epoch: Py<PyAny>,
    one_us: Py<PyAny>,
    timedelta: Py<PyAny>,
}

static DATETIME: PyOnceLock<DateTimeApi> = PyOnceLock::new();
static EXCEPTIONS: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

fn dt_api(py: Python<'_>) -> PyResult<&DateTimeApi> {
    DATETIME.get_or_try_init(py, || {
        let m = py.import("datetime")?;
        let datetime = m.getattr("datetime")?;
        let timedelta = m.getattr("timedelta")?;
        let utc = m.getattr("timezone")?.getattr("utc")?;
        let kwargs = PyDict::new(py);
        kwargs.set_item("tzinfo", &utc)?;
        let epoch = datetime.call((1970, 1, 1), Some(&kwargs))?;
        let us = PyDict::new(py);
        us.set_item("microseconds", 1)?;
        let one_us = timedelta.call((), Some(&us))?;
        Ok(DateTimeApi {
            datetime: datetime.unbind(),
            utc: utc.unbind(),
            epoch: epoch.unbind(),
            one_us: one_us.unbind(),
            timedelta: timedelta.unbind(),
        })
    })
}

/// A datetime (naive means UTC, as botocore assumes) → microseconds since the epoch (exact: a datetime
/// has microseconds).
pub fn datetime_to_us(obj: &Bound<'_, PyAny>) -> PyResult<Option<i64>> {
    let py = obj.py();
    let api = dt_api(py)?;
    if !obj.is_instance(api.datetime.bind(py))? {
        return Ok(None);
    }
    let aware = if obj.getattr("tzinfo")?.is_none() {
        let kwargs = PyDict::new(py);
        kwargs.set_item("tzinfo", api.utc.bind(py))?;
        obj.call_method("replace", (), Some(&kwargs))?
    } else {
        obj.clone()
    };
    let delta = aware.call_method1("__sub__", (api.epoch.bind(py),))?;
    let us = delta.call_method1("__floordiv__", (api.one_us.bind(py),))?;
    Ok(Some(us.extract::<i64>()?))
}

pub fn us_to_datetime<'py>(py: Python<'py>, us: i64) -> PyResult<Bound<'py, PyAny>> {
    let api = dt_api(py)?;
    let kwargs = PyDict::new(py);
    kwargs.set_item("microseconds", us)?;
    let delta = api.timedelta.bind(py).call((), Some(&kwargs))?;
    api.epoch.bind(py).call_method1("__add__", (delta,))
}

/// Converts keyword arguments (and nested values) to a [`Value`]. Types the API has no use for become
/// `Value::Unsupported` so that the request parser can name the field.
pub fn py_to_value(obj: &Bound<'_, PyAny>) -> PyResult<Value> {
    if obj.is_none() {
        return Ok(Value::Null);
    }
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if obj.is_instance_of::<PyInt>() {
        return Ok(match obj.extract::<i64>() {
            Ok(i) => Value::Int(i),
            Err(_) => Value::Unsupported("int (out of range)".into()),
        });
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        return Ok(Value::Float(f.value()));
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Value::Str(s.to_str()?.to_owned()));
    }
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(Value::Bytes(b.as_bytes().to_vec()));
    }
    if let Ok(b) = obj.cast::<PyByteArray>() {
        return Ok(Value::Bytes(b.to_vec()));
    }
    if obj.is_instance_of::<PyMemoryView>() {
        let b = obj.py().get_type::<PyBytes>().call1((obj,))?;
        return Ok(Value::Bytes(b.cast::<PyBytes>()?.as_bytes().to_vec()));
    }
    if let Some(us) = datetime_to_us(obj)? {
        return Ok(Value::Timestamp(us));
    }
    if let Ok(d) = obj.cast::<PyDict>() {
        let mut items = Vec::with_capacity(d.len());
        for (k, v) in d.iter() {
            let key = match k.cast::<PyString>() {
                Ok(s) => s.to_str()?.to_owned(),
                Err(_) => {
                    return Ok(Value::Unsupported(format!(
                        "dict with {} keys",
                        k.get_type().name()?
                    )));
                }
            };
            items.push((key, py_to_value(&v)?));
        }
        return Ok(Value::Map(items));
    }
    if obj.is_instance_of::<PyList>() || obj.is_instance_of::<PyTuple>() {
        let mut items = Vec::new();
        for v in obj.try_iter()? {
            items.push(py_to_value(&v?)?);
        }
        return Ok(Value::List(items));
    }
    Ok(Value::Unsupported(obj.get_type().name()?.to_string()))
}

pub fn value_to_py<'py>(py: Python<'py>, v: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Int(i) => i.into_pyobject(py)?.into_any(),
        Value::Float(f) => PyFloat::new(py, *f).into_any(),
        Value::Str(s) => PyString::new(py, s).into_any(),
        Value::Bytes(b) => PyBytes::new(py, b).into_any(),
        Value::Timestamp(us) => us_to_datetime(py, *us)?,
        Value::List(items) => {
            let list = PyList::empty(py);
            for it in items {
                list.append(value_to_py(py, it)?)?;
            }
            list.into_any()
        }
        Value::Map(items) => {
            let d = PyDict::new(py);
            for (k, it) in items {
                d.set_item(k, value_to_py(py, it)?)?;
            }
            d.into_any()
        }
        Value::Unsupported(t) => {
            return Err(PyRuntimeError::new_err(format!(
                "cannot return a value of type {t}"
            )));
        }
    })
}

/// Builds the exception for a core error through `bedrock_sessions.exceptions._from_core`, so that it is
/// a botocore-style `ClientError` with the AWS code.
pub fn error_to_py(py: Python<'_>, err: &Error, operation: &str, request_id: &str) -> PyErr {
    let make = || -> PyResult<PyErr> {
        let f = EXCEPTIONS.get_or_try_init(py, || {
            Ok::<_, PyErr>(
                py.import("bedrock_sessions.exceptions")?
                    .getattr("_from_core")?
                    .unbind(),
            )
        })?;
        let exc = f.bind(py).call1((
            err.code.as_str(),
            err.message.as_str(),
            operation,
            request_id,
            err.code.http_status(),
            err.reason.name(),
        ))?;
        Ok(PyErr::from_value(exc))
    };
    make().unwrap_or_else(|e| e)
}
