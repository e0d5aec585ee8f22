//! `fastraid._core.plan_reshape` and `fastraid._core.ReshapePlan`: argument conversion for
//! [`crate::reshape`]. Planning only reads; `ReshapePlan.execute` writes with the GIL
//! released, calling the Python progress callback (and checking for Ctrl-C) after every
//! batch; an exception there stops the reshape at a checkpoint and is re-raised with a note.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use super::errors::{invalid, to_py};
use super::progress::{detach_with_progress, execute_once};
use crate::layout::{Layout, Level};
use crate::md::format_uuid;
use crate::reshape::{self, Kind, Plan, ReshapeOptions, RevertStep};

/// A planned reshape; `str()` lists its steps, `execute()` does it (once).
#[pyclass(frozen, name = "ReshapePlan", module = "fastraid._core")]
pub(crate) struct ReshapePlan {
    plan: Plan,
    executed: AtomicBool,
}

fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::Start => "start",
        Kind::Continue => "continue",
        Kind::FinishSuperblocks => "finish-superblocks",
        Kind::Revert(RevertStep::Superblocks) => "revert-superblocks",
        Kind::Revert(_) => "revert",
    }
}

#[pymethods]
impl ReshapePlan {
    fn __str__(&self) -> String {
        self.plan.to_string()
    }

    fn __repr__(&self) -> String {
        format!(
            "<ReshapePlan {} {} -> {} members>",
            kind_name(self.plan.kind),
            self.plan.old_disks,
            self.plan.new_disks
        )
    }

    /// The plan as a dict (for `--json` and tests).
    fn describe<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let p = &self.plan;
        let d = PyDict::new(py);
        d.set_item("kind", kind_name(p.kind))?;
        d.set_item("uuid", format_uuid(&p.uuid))?;
        d.set_item("level", p.level.name())?;
        d.set_item("old_raid_devices", p.old_disks)?;
        d.set_item("raid_devices", p.new_disks)?;
        d.set_item("old_layout", p.old_layout.name())?;
        d.set_item("layout", p.new_layout.name())?;
        d.set_item("old_chunk", p.old_chunk_bytes)?;
        d.set_item("chunk", p.new_chunk_bytes)?;
        d.set_item("new_offset_sectors", p.new_offset)?;
        d.set_item("space_needed", p.new_offset.unsigned_abs() * 512)?;
        d.set_item("start", p.start)?;
        d.set_item("checkpoint", p.checkpoint)?;
        d.set_item("old_size", p.old_size)?;
        d.set_item("size", p.new_size)?;
        d.set_item("events", p.events)?;
        d.set_item("members", PyList::new(py, &p.members)?)?;
        d.set_item("notes", PyList::new(py, &p.notes)?)?;
        if let Kind::Revert(step) = p.kind {
            d.set_item("revert_step", step.name())?;
        }
        Ok(d)
    }

    /// Reshape. `progress(done, total, rate)` after every batch; an exception it raises
    /// (or Ctrl-C) stops at a checkpoint and is re-raised. Returns a dict.
    #[pyo3(signature = (progress = None))]
    fn execute<'py>(
        &self,
        py: Python<'py>,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        execute_once(py, &self.executed)?;
        let report = detach_with_progress(py, progress.as_ref(), "reshaping", |r| {
            self.plan
                .execute(&mut |p: &reshape::Progress| r.report((p.done, p.total, p.rate)))
        })?;
        let d = PyDict::new(py);
        d.set_item("resumed_from", report.resumed_from)?;
        d.set_item("bytes_written", report.bytes_written)?;
        d.set_item("total", report.total)?;
        d.set_item("checkpoints", report.checkpoints)?;
        d.set_item("events", report.events)?;
        d.set_item("size", report.size)?;
        d.set_item("seconds", report.seconds)?;
        Ok(d)
    }
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

/// Plan a reshape of the md array whose members are `members` (reads only). With no
/// geometry argument, a reshape in progress is continued; with `revert`, turned around and
/// run back to the geometry it started from.
#[pyfunction]
#[pyo3(signature = (members, *, raid_devices = None, level = None, chunk = None, layout = None, continue_only = false, force = false, backup_file = None, speed_limit = None, batch_bytes = None, checkpoint_bytes = None, array_size = None, revert = false))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn plan_reshape(
    py: Python<'_>,
    members: Vec<PathBuf>,
    raid_devices: Option<i64>,
    level: Option<i64>,
    chunk: Option<i64>,
    layout: Option<String>,
    continue_only: bool,
    force: bool,
    backup_file: Option<PathBuf>,
    speed_limit: Option<i64>,
    batch_bytes: Option<i64>,
    checkpoint_bytes: Option<i64>,
    array_size: Option<i64>,
    revert: bool,
) -> PyResult<ReshapePlan> {
    let mut o = ReshapeOptions {
        continue_only: continue_only || revert,
        revert,
        force,
        backup_file,
        ..ReshapeOptions::default()
    };
    o.raid_disks = positive(py, "raid_devices", raid_devices, false)?
        .map(|v| u32::try_from(v).unwrap_or(u32::MAX));
    o.level = level
        .map(|l| {
            i32::try_from(l).map_err(|_| invalid(py, format!("level: {l} is not an md level")))
        })
        .transpose()?;
    o.chunk_bytes = positive(py, "chunk", chunk, false)?;
    o.array_size = positive(py, "array_size", array_size, true)?;
    if let Some(name) = layout {
        // The level the layout belongs to: the requested one, else the array's (read).
        let lv = match o.level {
            Some(l) => l,
            None => {
                let asm = py
                    .detach(|| crate::assemble::assemble(&members, Default::default()))
                    .map_err(|e| to_py(py, e))?;
                asm.reference.level
            }
        };
        let lvl = Level::from_md(lv).map_err(|e| invalid(py, format!("level: {e}")))?;
        let l = match name.parse::<u32>() {
            Ok(n) => Layout::from_md(lvl, n),
            Err(_) => Layout::from_name(lvl, &name),
        }
        .map_err(|e| invalid(py, format!("layout: {e}")))?;
        o.layout = Some(l.md_number());
    }
    o.speed_limit = positive(py, "speed_limit", speed_limit, false)?;
    if let Some(b) = positive(py, "batch_bytes", batch_bytes, false)? {
        o.batch_bytes = b.min(1 << 30);
    }
    if let Some(c) = positive(py, "checkpoint_bytes", checkpoint_bytes, true)? {
        o.checkpoint_bytes = c;
        if c == 0 {
            o.checkpoint_interval = std::time::Duration::ZERO;
        }
    }
    let plan = py
        .detach(|| {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| reshape::plan(&members, &o)))
        })
        .map_err(|_| {
            super::errors::raise(
                py,
                "InternalError",
                "internal error: panic while planning a reshape",
            )
        })?
        .map_err(|e| to_py(py, e))?;
    Ok(ReshapePlan {
        plan,
        executed: AtomicBool::new(false),
    })
}
