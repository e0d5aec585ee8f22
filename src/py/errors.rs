//! Core errors to Python exceptions. The classes live in `fastraid/_errors.py` (so that
//! they can derive from both `FastRaidError` and `ValueError`/`TypeError`); they are
//! looked up by name when an error is raised, which is rare, so nothing is cached.

use crate::error::Error;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::PyType;

/// An exception of class `fastraid._errors.<class>` with message `msg`.
pub(crate) fn raise(py: Python<'_>, class: &str, msg: impl Into<String>) -> PyErr {
    let msg = msg.into();
    let ty = PyModule::import(py, "fastraid._errors")
        .and_then(|m| m.getattr(class))
        .and_then(|c| c.cast_into::<PyType>().map_err(PyErr::from));
    match ty {
        Ok(ty) => PyErr::from_type(ty, msg),
        // Only if the package itself is broken.
        Err(e) => PyRuntimeError::new_err(format!("{msg} (and fastraid._errors failed: {e})")),
    }
}

pub(crate) fn invalid(py: Python<'_>, msg: impl Into<String>) -> PyErr {
    raise(py, "InvalidArgumentError", msg)
}

pub(crate) fn buffer_type(py: Python<'_>, msg: impl Into<String>) -> PyErr {
    raise(py, "BufferTypeError", msg)
}

pub(crate) fn to_py(py: Python<'_>, e: Error) -> PyErr {
    match e {
        Error::InvalidArgument(m) | Error::UnknownKernel(m) => invalid(py, m),
        Error::TooManyFailures(m) => raise(py, "TooManyFailuresError", m),
        Error::Io(m) => raise(py, "MemberError", m),
        Error::NotAnArray(m) => raise(py, "NotAnArrayError", m),
        Error::Assembly(m) => raise(py, "AssemblyError", m),
        Error::Unsupported(m) => raise(py, "NotSupportedError", m),
        Error::MemberInUse(m) => raise(py, "MemberInUseError", m),
        Error::Cancelled(m) => raise(py, "CancelledError", m),
    }
}

/// Run core code, turning a panic (a bug: core code returns `Result`) into
/// `fastraid.InternalError` instead of letting PyO3 raise a `BaseException`.
pub(crate) fn guard<T>(py: Python<'_>, f: impl FnOnce() -> crate::Result<T>) -> PyResult<T> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r.map_err(|e| to_py(py, e)),
        Err(p) => {
            let what = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            Err(raise(
                py,
                "InternalError",
                format!("internal error: {what}"),
            ))
        }
    }
}
