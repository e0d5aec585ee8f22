//! `fastraid._core.plan_rebuild` and `fastraid._core.RebuildPlan`: argument conversion for
//! [`crate::rebuild`]. Planning only reads; `RebuildPlan.execute` writes with the GIL
//! released, calling the Python progress callback (and checking for Ctrl-C) on this thread
//! after every batch. An exception there stops the rebuild at a checkpoint and is
//! re-raised with a note saying how much is kept and how to resume.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use super::progress::{detach_with_progress, execute_once};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use super::errors::{invalid, to_py};
use crate::md::format_uuid;
use crate::rebuild::{self, Mode, Plan, RebuildOptions};

/// A planned rebuild or replace; `str()` describes it, `execute()` does it (once).
#[pyclass(frozen, name = "RebuildPlan", module = "fastraid._core")]
pub(crate) struct RebuildPlan {
    plan: Plan,
    executed: AtomicBool,
}

fn positive(py: Python<'_>, name: &str, v: Option<i64>, zero_ok: bool) -> PyResult<Option<u64>> {
    v.map(|v| {
        u64::try_from(v)
            .ok()
            .filter(|&v| zero_ok || v > 0)
            .ok_or_else(|| invalid(py, format!("{name}: must be positive, got {v}")))
    })
    .transpose()
}

#[pymethods]
impl RebuildPlan {
    fn __str__(&self) -> String {
        self.plan.to_string()
    }

    fn __repr__(&self) -> String {
        format!(
            "<RebuildPlan {} slot {} onto {:?}>",
            match self.plan.mode {
                Mode::Rebuild => "rebuild",
                Mode::Replace => "replace",
            },
            self.plan.slot,
            self.plan.target.display().to_string()
        )
    }

    /// The plan as a dict (for `--json` and tests).
    fn describe<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let p = &self.plan;
        let d = PyDict::new(py);
        d.set_item(
            "mode",
            match p.mode {
                Mode::Rebuild => "rebuild",
                Mode::Replace => "replace",
            },
        )?;
        d.set_item("uuid", format_uuid(&p.uuid))?;
        d.set_item("level", p.level.name())?;
        d.set_item("slot", p.slot)?;
        d.set_item("target", p.target.display().to_string())?;
        d.set_item("create", p.create)?;
        d.set_item("target_size", p.target_bytes)?;
        let found: Vec<String> = p.found.iter().map(ToString::to_string).collect();
        d.set_item("found", found)?;
        d.set_item("start", p.start)?;
        d.set_item("total", p.end)?;
        d.set_item("dev_number", p.dev_number)?;
        d.set_item("sources", PyList::new(py, &p.sources)?)?;
        d.set_item(
            "replaced",
            p.replaced.as_ref().map(|r| r.display().to_string()),
        )?;
        d.set_item("notes", PyList::new(py, &p.notes)?)?;
        Ok(d)
    }

    /// Rebuild. `progress(done, total, rate)` (bytes, bytes, bytes per second) is called
    /// after every batch; an exception it raises (or Ctrl-C) stops at a checkpoint and is
    /// re-raised. Returns a dict describing what was done.
    #[pyo3(signature = (progress = None))]
    fn execute<'py>(
        &self,
        py: Python<'py>,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        execute_once(py, &self.executed)?;
        let report = detach_with_progress(py, progress.as_ref(), "rebuilding", |r| {
            self.plan
                .execute(&mut |p: &rebuild::Progress| r.report((p.done, p.total, p.rate)))
        })?;
        let d = PyDict::new(py);
        d.set_item("slot", report.slot)?;
        d.set_item("target", report.target.display().to_string())?;
        d.set_item(
            "replaced",
            report.replaced.as_ref().map(|r| r.display().to_string()),
        )?;
        d.set_item("dev_number", report.dev_number)?;
        d.set_item("resumed_from", report.resumed_from)?;
        d.set_item("bytes_written", report.bytes_written)?;
        d.set_item("total", report.total)?;
        d.set_item("events", report.events)?;
        d.set_item("created", report.created)?;
        d.set_item("seconds", report.seconds)?;
        Ok(d)
    }
}

/// Plan a rebuild (or, with `replace`, a replace) of one member of the md array whose
/// members are `members`. Reads only.
#[pyfunction]
#[pyo3(signature = (members, *, slot = None, new = None, replace = false, force = false, speed_limit = None, batch_bytes = None, checkpoint_bytes = None))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn plan_rebuild(
    py: Python<'_>,
    members: Vec<PathBuf>,
    slot: Option<i64>,
    new: Option<PathBuf>,
    replace: bool,
    force: bool,
    speed_limit: Option<i64>,
    batch_bytes: Option<i64>,
    checkpoint_bytes: Option<i64>,
) -> PyResult<RebuildPlan> {
    let mut o = RebuildOptions::new().map_err(|e| to_py(py, e))?;
    o.slot = slot
        .map(|s| {
            u32::try_from(s).map_err(|_| invalid(py, format!("slot: must be 0 or more, got {s}")))
        })
        .transpose()?;
    o.new = new;
    o.replace = replace;
    o.force = force;
    o.speed_limit = positive(py, "speed_limit", speed_limit, false)?;
    if let Some(b) = positive(py, "batch_bytes", batch_bytes, false)? {
        o.batch_bytes = usize::try_from(b).unwrap_or(usize::MAX).min(1 << 30);
    }
    if let Some(c) = positive(py, "checkpoint_bytes", checkpoint_bytes, true)? {
        o.checkpoint_bytes = c;
        if c == 0 {
            o.checkpoint_interval = std::time::Duration::ZERO;
        }
    }
    let plan = py
        .detach(|| rebuild::plan(&members, &o))
        .map_err(|e| to_py(py, e))?;
    Ok(RebuildPlan {
        plan,
        executed: AtomicBool::new(false),
    })
}
