//! `fastraid._core.plan_create` and `fastraid._core.CreatePlan`: argument conversion for
//! [`crate::create`]. Planning only reads; `CreatePlan.execute` writes, with the GIL
//! released, calling the Python progress callback (and checking for Ctrl-C) between
//! batches.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use super::progress::{detach_with_progress, execute_once};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use super::errors::{invalid, to_py};
use crate::create::{self, CreateOptions, InitialSync, Plan};
use crate::layout::{Layout, Level};
use crate::md::{format_uuid, Location};

/// A level given as md's number (5, -1) or mdadm's name ("raid5", "linear").
fn level_arg(py: Python<'_>, level: &Bound<'_, PyAny>) -> PyResult<Level> {
    let parsed = if let Ok(n) = level.extract::<i32>() {
        Level::from_md(n).map_err(|e| e.to_string())
    } else if let Ok(s) = level.extract::<String>() {
        s.parse::<Level>().map_err(|e| e.to_string())
    } else {
        Err("expected an int or a str".to_owned())
    };
    parsed.map_err(|e| invalid(py, format!("level: {e}")))
}

/// A layout given as mdadm's name ("left-symmetric", "n2") or md's number.
fn layout_arg(py: Python<'_>, level: Level, layout: &Bound<'_, PyAny>) -> PyResult<Layout> {
    let parsed = if let Ok(n) = layout.extract::<u32>() {
        Layout::from_md(level, n).map_err(|e| e.to_string())
    } else if let Ok(s) = layout.extract::<String>() {
        Layout::from_name(level, &s).map_err(|e| e.to_string())
    } else {
        Err("expected a str or an int".to_owned())
    };
    parsed.map_err(|e| invalid(py, format!("layout: {e}")))
}

fn metadata_arg(py: Python<'_>, metadata: &str) -> PyResult<Location> {
    Ok(match metadata {
        "1.2" | "1" | "default" => Location::V1_2,
        "1.1" => Location::V1_1,
        "1.0" => Location::V1_0,
        other => {
            return Err(invalid(
                py,
                format!("metadata: one of \"1.0\", \"1.1\", \"1.2\", got {other:?}"),
            ))
        }
    })
}

/// A planned array creation; `str()` describes it, `execute()` writes it (once).
#[pyclass(frozen, name = "CreatePlan", module = "fastraid._core")]
pub(crate) struct CreatePlan {
    plan: Plan,
    executed: AtomicBool,
}

#[pymethods]
impl CreatePlan {
    fn __str__(&self) -> String {
        self.plan.to_string()
    }

    fn __repr__(&self) -> String {
        format!(
            "<CreatePlan {} {} devices, UUID {}>",
            self.plan.geometry.level(),
            self.plan.geometry.raid_disks(),
            format_uuid(&self.plan.set_uuid)
        )
    }

    /// The plan as a dict (for `--json`).
    fn describe<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let p = &self.plan;
        let g = &p.geometry;
        let d = PyDict::new(py);
        d.set_item("uuid", format_uuid(&p.set_uuid))?;
        d.set_item("name", &p.name)?;
        d.set_item("level", g.level().name())?;
        d.set_item("layout", p.layout.name())?;
        d.set_item("layout_number", p.layout.md_number())?;
        d.set_item("chunk", u64::from(g.chunk_sectors()) * 512)?;
        d.set_item("raid_devices", g.raid_disks())?;
        d.set_item("metadata", p.options.metadata.version())?;
        d.set_item("array_size", g.array_bytes())?;
        d.set_item("component_size", g.dev_sectors() * 512)?;
        d.set_item("data_offset", p.data_offset * 512)?;
        d.set_item("ctime", p.ctime.seconds)?;
        d.set_item(
            "initial_sync",
            match p.sync {
                InitialSync::NoRedundancy => "none",
                InitialSync::AllZero => "zeros",
                InitialSync::Resync { .. } => "resync",
            },
        )?;
        let members = PyList::empty(py);
        for m in &p.members {
            let md = PyDict::new(py);
            md.set_item("slot", m.slot)?;
            md.set_item("path", m.path.as_ref().map(|p| p.display().to_string()))?;
            md.set_item("create", m.create)?;
            md.set_item("block_device", m.block_device)?;
            md.set_item("size", m.device_bytes)?;
            let found: Vec<String> = m.found.iter().map(|s| s.to_string()).collect();
            md.set_item("found", found)?;
            md.set_item(
                "superblock_offset",
                m.superblock.as_ref().map(|s| s.super_offset * 512),
            )?;
            members.append(md)?;
        }
        d.set_item("members", members)?;
        Ok(d)
    }

    /// Write the array. `progress(done, total)` (bytes of the initial sync) is called
    /// between batches; an exception it raises (or Ctrl-C) stops the creation before any
    /// superblock is written, and is re-raised.
    #[pyo3(signature = (progress = None))]
    fn execute<'py>(
        &self,
        py: Python<'py>,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        execute_once(py, &self.executed)?;
        let report = detach_with_progress(py, progress.as_ref(), "creating the array", |r| {
            self.plan
                .execute(&mut |done: u64, total: u64| r.report((done, total)))
        })?;
        let d = PyDict::new(py);
        d.set_item("uuid", format_uuid(&report.set_uuid))?;
        d.set_item("array_size", report.array_bytes)?;
        let created: Vec<String> = report
            .created
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        d.set_item("created", created)?;
        match report.resync {
            Some(s) => {
                let r = PyDict::new(py);
                r.set_item("bytes_done", s.bytes_done)?;
                r.set_item("mismatch_sectors", s.mismatch_sectors)?;
                r.set_item("bytes_written", s.bytes_written)?;
                d.set_item("resync", r)?;
            }
            None => d.set_item("resync", py.None())?,
        }
        let wiped: Vec<(String, u64, u64)> = report
            .wiped
            .iter()
            .map(|(p, o, n)| (p.display().to_string(), *o, *n))
            .collect();
        d.set_item("wiped", wiped)?;
        Ok(d)
    }
}

/// Plan the creation of an md array over `members` (paths; `None` = missing slot). Reads
/// only.
#[pyfunction]
#[pyo3(signature = (members, *, level, chunk = 524288, layout = None, size = None, name = None, force = false, metadata = "1.2"))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn plan_create(
    py: Python<'_>,
    members: Vec<Option<PathBuf>>,
    level: &Bound<'_, PyAny>,
    chunk: i64,
    layout: Option<&Bound<'_, PyAny>>,
    size: Option<i64>,
    name: Option<String>,
    force: bool,
    metadata: &str,
) -> PyResult<CreatePlan> {
    let level = level_arg(py, level)?;
    let mut opts = CreateOptions::new(level);
    opts.layout = layout.map(|l| layout_arg(py, level, l)).transpose()?;
    opts.chunk_bytes = u64::try_from(chunk)
        .ok()
        .filter(|&c| c > 0)
        .ok_or_else(|| invalid(py, format!("chunk: must be positive, got {chunk}")))?;
    opts.size = size
        .map(|s| {
            u64::try_from(s)
                .ok()
                .filter(|&s| s > 0)
                .ok_or_else(|| invalid(py, format!("size: must be positive, got {s}")))
        })
        .transpose()?;
    opts.name = name;
    opts.force = force;
    opts.metadata = metadata_arg(py, metadata)?;
    let plan = py
        .detach(|| create::plan(&members, &opts))
        .map_err(|e| to_py(py, e))?;
    Ok(CreatePlan {
        plan,
        executed: AtomicBool::new(false),
    })
}
