//! `fastraid._core.scrub`: argument conversion for [`crate::scrub`]. The scrub runs with the
//! GIL released; the Python progress callback (and a Ctrl-C check) runs between batches.

use std::path::PathBuf;
use std::time::Duration;

use super::progress::detach_with_progress;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use super::errors::{invalid, to_py};
use crate::kernels::Kernel;
use crate::scrub::{self, Checkpoint, Report, ScrubOptions, Unresolved};

fn report_dict<'py>(py: Python<'py>, r: &Report) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("mode", if r.repair { "repair" } else { "check" })?;
    d.set_item("uuid", &r.uuid)?;
    d.set_item("level", &r.level)?;
    d.set_item("raid_disks", r.raid_disks)?;
    d.set_item("unit_bytes", r.unit_bytes)?;
    d.set_item("units", r.units)?;
    d.set_item("mismatch_cnt", r.mismatch_cnt)?;
    d.set_item("findings_dropped", r.findings_dropped)?;
    d.set_item("units_unchecked", r.units_unchecked)?;
    d.set_item("bytes_unchecked", r.bytes_unchecked)?;
    d.set_item("bytes_written", r.bytes_written)?;
    d.set_item("bytes_read", r.bytes_read)?;
    d.set_item("seconds", r.seconds)?;
    d.set_item("resumed_at", r.resumed_at)?;
    d.set_item(
        "checkpoint",
        r.checkpoint.as_ref().map(|p| p.display().to_string()),
    )?;
    d.set_item("notes", &r.notes)?;
    let findings = PyList::empty(py);
    for f in &r.findings {
        let fd = PyDict::new(py);
        fd.set_item("unit", f.unit)?;
        fd.set_item("verdict", f.verdict.name())?;
        fd.set_item("reason", &f.reason)?;
        fd.set_item("suspects", &f.suspects)?;
        fd.set_item("locations", &f.locations)?;
        let ranges = PyList::empty(py);
        for b in &f.ranges {
            ranges.append((b.member, b.offset, b.len))?;
        }
        fd.set_item("ranges", ranges)?;
        fd.set_item("ranges_truncated", f.ranges_truncated)?;
        fd.set_item("mismatch_sectors", f.mismatch_sectors)?;
        fd.set_item("rewritten", &f.rewritten)?;
        fd.set_item("action", &f.action)?;
        findings.append(fd)?;
    }
    d.set_item("findings", findings)?;
    Ok(d)
}

/// Check (or, with `repair=True`, repair) the md array whose members are `members`.
#[pyfunction]
#[pyo3(name = "scrub", signature = (members, *, repair = false, prefer = None, unresolved = None, checkpoint = None, resume = false, checkpoint_interval = 5.0, speed_limit = None, batch_bytes = 1048576, max_findings = 100000, max_ranges = 1024, force = false, kernel = None, progress = None))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn scrub_members<'py>(
    py: Python<'py>,
    members: Vec<PathBuf>,
    repair: bool,
    prefer: Option<i64>,
    unresolved: Option<&str>,
    checkpoint: Option<&Bound<'py, PyAny>>,
    resume: bool,
    checkpoint_interval: f64,
    speed_limit: Option<i64>,
    batch_bytes: i64,
    max_findings: i64,
    max_ranges: i64,
    force: bool,
    kernel: Option<&str>,
    progress: Option<Py<PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let mut o = ScrubOptions::new().map_err(|e| to_py(py, e))?;
    o.repair = repair;
    o.prefer = prefer
        .map(|p| {
            u32::try_from(p).map_err(|_| invalid(py, format!("prefer: a member index, got {p}")))
        })
        .transpose()?;
    o.unresolved = match unresolved {
        None => None,
        Some("leave") => Some(Unresolved::Leave),
        Some("md") => Some(Unresolved::Md),
        Some(other) => {
            return Err(invalid(
                py,
                format!("unresolved: \"leave\", \"md\" or None, got {other:?}"),
            ))
        }
    };
    o.checkpoint = match checkpoint {
        None => Checkpoint::Default,
        Some(c) => {
            if let Ok(b) = c.extract::<bool>() {
                if b {
                    Checkpoint::Default
                } else {
                    Checkpoint::Off
                }
            } else {
                Checkpoint::Path(c.extract::<PathBuf>().map_err(|_| {
                    invalid(
                        py,
                        "checkpoint: a path, True (default place) or False (none)",
                    )
                })?)
            }
        }
    };
    o.resume = resume;
    if !(checkpoint_interval.is_finite() && checkpoint_interval >= 0.0) {
        return Err(invalid(
            py,
            format!("checkpoint_interval: seconds >= 0, got {checkpoint_interval}"),
        ));
    }
    o.checkpoint_interval = Duration::from_secs_f64(checkpoint_interval);
    o.speed_limit = match speed_limit {
        None => None,
        Some(s) if s > 0 => Some(s as u64),
        Some(s) => {
            return Err(invalid(
                py,
                format!("speed_limit: bytes per second > 0 (or None), got {s}"),
            ))
        }
    };
    let positive = |name: &str, v: i64| -> PyResult<usize> {
        usize::try_from(v)
            .ok()
            .filter(|&v| v > 0)
            .ok_or_else(|| invalid(py, format!("{name}: must be positive, got {v}")))
    };
    o.batch_bytes = positive("batch_bytes", batch_bytes)?;
    o.max_findings = usize::try_from(max_findings).map_err(|_| {
        invalid(
            py,
            format!("max_findings: must be >= 0, got {max_findings}"),
        )
    })?;
    o.max_ranges = positive("max_ranges", max_ranges)?;
    o.force = force;
    if let Some(k) = kernel {
        o.kernel = Kernel::by_name(k).map_err(|e| to_py(py, e))?;
    }
    let report = detach_with_progress(py, progress.as_ref(), "scrubbing", |r| {
        let mut cb = |p: &scrub::Progress| r.report((p.done, p.total, p.rate));
        if o.repair {
            scrub::repair(&members, &o, &mut cb)
        } else {
            scrub::check(&members, &o, &mut cb)
        }
    })?;
    report_dict(py, &report)
}
