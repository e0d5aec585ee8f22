//! Long operations (create's initial sync, rebuild, scrub) run with the GIL released and
//! report progress through an optional Python callback. One helper does it for all: it
//! re-takes the GIL for each report, checks for Ctrl-C, calls the callback, and turns an
//! exception from either into a stop request (`ControlFlow::Break`) that the core honours at
//! its next checkpoint. The caller's exception is what Python then sees, with the core's
//! own account of where it stopped added as a note (PEP 678).

use super::errors::{invalid, raise, to_py};
use pyo3::call::PyCallArgs;
use pyo3::prelude::*;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, Ordering};

/// A plan runs once: the first call sets `executed`, later ones get InvalidArgumentError.
pub(crate) fn execute_once(py: Python<'_>, executed: &AtomicBool) -> PyResult<()> {
    if executed.swap(true, Ordering::SeqCst) {
        return Err(invalid(
            py,
            "this plan was already executed; make a new one",
        ));
    }
    Ok(())
}

/// What the core calls between batches.
pub(crate) struct Reporter<'a> {
    progress: Option<&'a Py<PyAny>>,
    failure: Option<PyErr>,
}

impl Reporter<'_> {
    /// `progress(*args)`; `Break` when it raised or Ctrl-C was pressed.
    pub(crate) fn report<A>(&mut self, args: A) -> ControlFlow<()>
    where
        A: for<'py> PyCallArgs<'py>,
    {
        let progress = self.progress;
        let outcome = Python::attach(|py| {
            py.check_signals().and_then(|()| match progress {
                Some(f) => f.call1(py, args).map(|_| ()),
                None => Ok(()),
            })
        });
        match outcome {
            Ok(()) => ControlFlow::Continue(()),
            Err(e) => {
                self.failure = Some(e);
                ControlFlow::Break(())
            }
        }
    }
}

/// Run `work` without the GIL. `what` completes "internal error: panic while ...".
pub(crate) fn detach_with_progress<T: Send>(
    py: Python<'_>,
    progress: Option<&Py<PyAny>>,
    what: &str,
    work: impl FnOnce(&mut Reporter<'_>) -> crate::Result<T> + Send,
) -> PyResult<T> {
    let mut reporter = Reporter {
        progress,
        failure: None,
    };
    let result = py
        .detach(|| std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(&mut reporter))));
    match result {
        Err(_) => Err(raise(
            py,
            "InternalError",
            format!("internal error: panic while {what}"),
        )),
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(match reporter.failure.take() {
            Some(caller) => {
                // Keep the caller's exception (KeyboardInterrupt, their own error) and say
                // what the core did about it, e.g. where to resume.
                let _ = caller.value(py).call_method1("add_note", (e.to_string(),));
                caller
            }
            None => to_py(py, e),
        }),
    }
}
