//! `fastraid._core.RaidArray` (an assembled md array, read-only or read-write) and
//! `fastraid._core.examine`. Argument conversion only: the work is in
//! [`crate::assemble`], [`crate::array`] and [`crate::writer`].

use std::path::PathBuf;
use std::sync::Mutex;

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};

use super::buffers::{Exports, Name};
use super::errors::{invalid, raise, to_py};
use crate::array::{ArrayReader, Trust};
use crate::assemble::{self, AssembleOptions, MemberState};
use crate::layout::Layout;
use crate::md::{self, Found, MemberInfo};
use crate::writer::{self, Writer};

/// Run `f` without the GIL (all of this is file I/O), turning a panic into InternalError.
fn detached<T: Send>(py: Python<'_>, f: impl FnOnce() -> crate::Result<T> + Send) -> PyResult<T> {
    py.detach(|| std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)))
        .map_err(|_| {
            raise(
                py,
                "InternalError",
                "internal error: panic while reading the array",
            )
        })
        .and_then(|r| r.map_err(|e| to_py(py, e)))
}

/// An md array assembled from its members. `frozen`: the reader lives in a `Mutex`
/// because reads release the GIL (and free-threaded Python has none), so two threads may
/// call in at once; they take turns.
#[pyclass(frozen, name = "RaidArray", module = "fastraid._core")]
pub(crate) struct RaidArray {
    inner: Mutex<Option<State>>,
    size: u64,
}

/// The reader, and the write state when opened read-write.
struct State {
    reader: ArrayReader,
    writer: Option<Writer>,
}

impl RaidArray {
    fn with<T>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&mut ArrayReader) -> PyResult<T>,
    ) -> PyResult<T> {
        self.with_state(py, |s| f(&mut s.reader))
    }

    fn with_state<T>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&mut State) -> PyResult<T>,
    ) -> PyResult<T> {
        let mut g = self.inner.lock().map_err(|_| {
            raise(
                py,
                "InternalError",
                "array lock poisoned by an earlier panic",
            )
        })?;
        match g.as_mut() {
            Some(r) => f(r),
            None => Err(invalid(py, "the array is closed")),
        }
    }

    /// Close this handle and hand its reader and writer over (read-write arrays only),
    /// flushed: whatever the membership change then does or refuses, the array on disk is
    /// clean.
    fn take_writable(&self, py: Python<'_>) -> PyResult<(ArrayReader, Writer)> {
        let mut g = self
            .inner
            .lock()
            .map_err(|_| raise(py, "InternalError", "array lock poisoned"))?;
        match g.take() {
            Some(State {
                mut reader,
                writer: Some(mut w),
            }) => {
                detached(py, || w.flush(&mut reader))?;
                Ok((reader, w))
            }
            Some(st) => {
                *g = Some(st);
                Err(raise(py, "ReadOnlyError", "the array was opened read-only"))
            }
            None => Err(invalid(py, "the array is closed")),
        }
    }

    /// `offset` and the number of bytes to read from it (clamped to the array's end).
    fn span(&self, py: Python<'_>, offset: i64, want: u64) -> PyResult<(u64, u64)> {
        let offset = u64::try_from(offset)
            .map_err(|_| invalid(py, format!("offset: must not be negative, got {offset}")))?;
        Ok((offset, want.min(self.size.saturating_sub(offset))))
    }
}

#[pymethods]
impl RaidArray {
    /// Assemble the array whose members are `members` (paths, any order); `writable`
    /// opens the members read-write and resyncs what an unclean stop left dirty.
    #[new]
    #[pyo3(signature = (members, *, force = false, backup_file = None, writable = false))]
    fn new(
        py: Python<'_>,
        members: Vec<PathBuf>,
        force: bool,
        backup_file: Option<PathBuf>,
        writable: bool,
    ) -> PyResult<Self> {
        if writable && backup_file.is_some() {
            return Err(invalid(
                py,
                "backup_file: only for reading an interrupted reshape (readonly=True)",
            ));
        }
        let state = detached(py, || {
            if writable {
                let (reader, writer) = writer::open(&members, force)?;
                return Ok(State {
                    reader,
                    writer: Some(writer),
                });
            }
            let asm = assemble::assemble_with_backup(
                &members,
                AssembleOptions {
                    force,
                    writable: false,
                },
                backup_file.as_deref(),
            )?;
            Ok(State {
                reader: ArrayReader::new(asm)?,
                writer: None,
            })
        })?;
        let size = state.reader.size();
        Ok(RaidArray {
            inner: Mutex::new(Some(state)),
            size,
        })
    }

    /// Write `data` (any buffer) at `offset`; returns the bytes written.
    fn write(&self, py: Python<'_>, offset: i64, data: &Bound<'_, PyAny>) -> PyResult<usize> {
        let offset = u64::try_from(offset)
            .map_err(|_| invalid(py, format!("offset: must not be negative, got {offset}")))?;
        let mut ex = Exports::with_capacity(1);
        let i = ex.add(data, Name::Data(0), false)?;
        let src = ex.bytes(i);
        self.with_state(py, |s| {
            let State { reader, writer } = s;
            let w = writer
                .as_mut()
                .ok_or_else(|| raise(py, "ReadOnlyError", "the array was opened read-only"))?;
            detached(py, || w.write_at(reader, offset, src))?;
            Ok(src.len())
        })
    }

    /// Make the writes durable and mark the array clean (a no-op when read-only).
    fn flush(&self, py: Python<'_>) -> PyResult<()> {
        self.with_state(py, |s| {
            let State { reader, writer } = s;
            match writer.as_mut() {
                Some(w) => detached(py, || w.flush(reader)),
                None => Ok(()),
            }
        })
    }

    /// Mark the member of `slot` faulty (`mdadm --fail`); returns its path. This handle is
    /// closed afterwards (the array is re-opened to go on), also when it fails.
    fn fail(&self, py: Python<'_>, slot: u32) -> PyResult<String> {
        let (reader, writer) = self.take_writable(py)?;
        detached(py, || writer.fail(reader, slot))
    }

    /// Remove the failed, stale or spare device `path` (`mdadm --remove`); returns its
    /// device number. This handle is closed afterwards, also when it fails.
    fn remove_device(&self, py: Python<'_>, path: PathBuf) -> PyResult<u32> {
        let (reader, writer) = self.take_writable(py)?;
        detached(py, || writer.remove(reader, &path))
    }

    /// Add `path` as a spare (`mdadm --add`); returns `{"dev_number", "created", "events",
    /// "notes"}`. This handle is closed afterwards, also when it fails.
    #[pyo3(signature = (path, *, force = false))]
    fn add_spare<'py>(
        &self,
        py: Python<'py>,
        path: PathBuf,
        force: bool,
    ) -> PyResult<Bound<'py, PyDict>> {
        let (reader, writer) = self.take_writable(py)?;
        let r = detached(py, || writer.add_spare(reader, &path, force))?;
        let d = PyDict::new(py);
        d.set_item("dev_number", r.dev_number)?;
        d.set_item("created", r.created)?;
        d.set_item("events", r.events)?;
        d.set_item("notes", r.notes)?;
        Ok(d)
    }

    #[getter]
    fn writable(&self, py: Python<'_>) -> PyResult<bool> {
        self.with_state(py, |s| Ok(s.writer.is_some()))
    }

    /// `length` bytes from `offset` (fewer at the end of the array).
    #[pyo3(signature = (offset, length, *, strict = true))]
    fn read<'py>(
        &self,
        py: Python<'py>,
        offset: i64,
        length: i64,
        strict: bool,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let length = u64::try_from(length)
            .map_err(|_| invalid(py, format!("length: must not be negative, got {length}")))?;
        let (offset, n) = self.span(py, offset, length)?;
        let n = usize::try_from(n).map_err(|_| invalid(py, "length: too large"))?;
        self.with(py, |r| {
            PyBytes::new_with(py, n, |out| detached(py, || r.read_at(offset, out, strict)))
        })
    }

    /// Fill `buffer` (any writable buffer) from `offset`; returns the bytes read (fewer
    /// than `len(buffer)` at the end of the array).
    #[pyo3(signature = (offset, buffer, *, strict = true))]
    fn readinto(
        &self,
        py: Python<'_>,
        offset: i64,
        buffer: &Bound<'_, PyAny>,
        strict: bool,
    ) -> PyResult<usize> {
        let mut ex = Exports::with_capacity(1);
        let i = ex.add(buffer, Name::Out, true)?;
        let (offset, n) = self.span(py, offset, ex.len(i) as u64)?;
        // SAFETY: one writable export, kept alive (and unresizable) by `ex` until the end of
        // this function; no other slice of it exists.
        let dst = unsafe { ex.bytes_mut(i) };
        let dst = &mut dst[..n as usize];
        self.with(py, |r| detached(py, || r.read_at(offset, dst, strict)))?;
        Ok(n as usize)
    }

    #[getter]
    fn level(&self, py: Python<'_>) -> PyResult<String> {
        self.with(py, |r| Ok(r.geometry().level().name().to_owned()))
    }

    /// mdadm's layout name, or None for levels without one.
    #[getter]
    fn layout(&self, py: Python<'_>) -> PyResult<Option<String>> {
        self.with(py, |r| Ok(layout_name(r.geometry().layout())))
    }

    /// Chunk size in bytes (0 for RAID1).
    #[getter]
    fn chunk(&self, py: Python<'_>) -> PyResult<u64> {
        self.with(py, |r| Ok(u64::from(r.geometry().chunk_sectors()) * 512))
    }

    #[getter]
    fn raid_devices(&self, py: Python<'_>) -> PyResult<u32> {
        self.with(py, |r| Ok(r.geometry().raid_disks()))
    }

    /// Array size in bytes.
    #[getter]
    fn size(&self) -> u64 {
        self.size
    }

    /// The path serving each slot, None where the slot is missing.
    #[getter]
    fn members(&self, py: Python<'_>) -> PyResult<Vec<Option<String>>> {
        self.with(py, |r| {
            let a = r.assembly();
            Ok(a.slots
                .iter()
                .map(|s| s.as_ref().map(|m| a.reports[m.report].path.clone()))
                .collect())
        })
    }

    #[getter]
    fn state(&self, py: Python<'_>) -> PyResult<String> {
        self.with_state(py, |s| Ok(state_of(s)))
    }

    #[getter]
    fn degraded(&self, py: Python<'_>) -> PyResult<bool> {
        self.with(py, |r| Ok(r.assembly().degraded()))
    }

    #[getter]
    fn closed(&self, py: Python<'_>) -> PyResult<bool> {
        Ok(self
            .inner
            .lock()
            .map_err(|_| raise(py, "InternalError", "array lock poisoned"))?
            .is_none())
    }

    /// Everything assembly decided, as a dict (see `fastraid detail --json`).
    fn detail<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        self.with_state(py, |s| {
            let d = detail_dict(py, &s.reader)?;
            d.set_item("writable", s.writer.is_some())?;
            if let Some(w) = &s.writer {
                d.set_item("events", w.events())?;
                d.set_item("clean", !w.is_dirty())?;
                d.set_item("state", state_of(s))?;
                let notes = d.get_item("notes")?;
                if let Some(n) = notes.as_ref().and_then(|n| n.cast::<PyList>().ok()) {
                    for note in w.notes() {
                        n.append(note)?;
                    }
                }
                let r = w.open_report();
                let rs = PyDict::new(py);
                rs.set_item("how", (!r.how.is_empty()).then_some(r.how))?;
                rs.set_item("bytes", r.resynced_bytes)?;
                rs.set_item("regions", r.regions)?;
                rs.set_item("mismatch_sectors", r.mismatch_sectors)?;
                d.set_item("resync", rs)?;
            }
            Ok(d)
        })
    }

    /// The array ranges read so far and where their bytes came from: a list of
    /// `{"offset", "length", "kind"}` with kind `clean`, `rebuilt`, `uncertain` or
    /// `unreadable`, sorted and merged.
    fn trust_map<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        self.with(py, |r| {
            let list = PyList::empty(py);
            for t in r.trust_map().normalised() {
                let d = PyDict::new(py);
                d.set_item("offset", t.offset)?;
                d.set_item("length", t.len)?;
                d.set_item("kind", t.trust.name())?;
                list.append(d)?;
            }
            Ok(list)
        })
    }

    /// Bytes read so far per trust kind.
    fn trust_totals<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        self.with(py, |r| {
            let d = PyDict::new(py);
            for t in [
                Trust::Clean,
                Trust::Rebuilt,
                Trust::Uncertain,
                Trust::Unreadable,
            ] {
                d.set_item(t.name(), r.trust_map().totals[t as usize])?;
            }
            Ok(d)
        })
    }

    /// Forget the trust map recorded so far.
    fn clear_trust_map(&self, py: Python<'_>) -> PyResult<()> {
        self.with(py, |r| {
            r.clear_trust_map();
            Ok(())
        })
    }

    /// Flush (read-write) and close the member files. Further calls raise; closing twice
    /// is fine. A failing flush still closes, and raises.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let mut g = self
            .inner
            .lock()
            .map_err(|_| raise(py, "InternalError", "array lock poisoned"))?;
        let Some(State { mut reader, writer }) = g.take() else {
            return Ok(());
        };
        match writer {
            Some(mut w) => detached(py, || w.flush(&mut reader)),
            None => Ok(()),
        }
    }
}

/// mdadm-style state; a read-write array is `active` while writes are not yet flushed.
fn state_of(s: &State) -> String {
    let st = s.reader.assembly().state();
    match &s.writer {
        Some(w) => {
            let rest = st.split_once(',').map_or("", |(_, r)| r);
            let head = if w.is_dirty() { "active" } else { "clean" };
            if rest.is_empty() {
                head.to_string()
            } else {
                format!("{head},{rest}")
            }
        }
        None => st,
    }
}

fn layout_name(l: Layout) -> Option<String> {
    match l {
        Layout::None => None,
        other => Some(other.name()),
    }
}

fn uuid_opt(u: Option<[u8; 16]>) -> Option<String> {
    u.map(|u| md::format_uuid(&u))
}

/// The superblock fields, as `mdadm --examine` shows them.
fn info_dict<'py>(py: Python<'py>, i: &MemberInfo) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("metadata", i.version.version())?;
    d.set_item("uuid", md::format_uuid(&i.array_uuid))?;
    d.set_item("name", &i.name)?;
    d.set_item("device_uuid", uuid_opt(i.device_uuid))?;
    d.set_item(
        "level",
        md::level_name(i.level).map_or_else(|| i.level.to_string(), str::to_owned),
    )?;
    d.set_item("level_number", i.level)?;
    let layout = crate::layout::Level::from_md(i.level)
        .ok()
        .and_then(|l| Layout::from_md(l, i.layout).ok())
        .and_then(layout_name);
    d.set_item("layout", layout)?;
    d.set_item("layout_number", i.layout)?;
    d.set_item("chunk", i.chunk_bytes)?;
    d.set_item("raid_devices", i.raid_disks)?;
    d.set_item("dev_number", i.dev_number)?;
    d.set_item("role", i.role.to_string())?;
    d.set_item("slot", i.role.slot())?;
    d.set_item("events", i.events)?;
    d.set_item("dev_sectors", i.dev_sectors)?;
    d.set_item("data_offset", i.data_offset)?;
    d.set_item("data_size", i.data_size)?;
    d.set_item("super_offset", i.super_offset)?;
    d.set_item("recovery_offset", i.recovery_offset)?;
    d.set_item(
        "resync_offset",
        (i.resync_offset != md::MAX_SECTOR).then_some(i.resync_offset),
    )?;
    d.set_item("clean", i.is_clean())?;
    d.set_item("replacement", i.replacement)?;
    d.set_item("ctime", i.ctime.seconds)?;
    d.set_item("utime", i.utime.seconds)?;
    d.set_item("array_state", i.array_state_string())?;
    d.set_item("feature_map", i.feature_map.map(|f| f.to_string()))?;
    d.set_item("bitmap_offset", i.bitmap_offset)?;
    d.set_item("bad_blocks", i.bad_block_log.is_some_and(|b| b.has_entries))?;
    match &i.reshape {
        None => d.set_item("reshape", py.None())?,
        Some(r) => {
            let rd = PyDict::new(py);
            rd.set_item("position", r.position)?;
            rd.set_item("new_level", r.new_level)?;
            rd.set_item("new_layout", r.new_layout)?;
            rd.set_item("new_chunk", r.new_chunk_bytes)?;
            rd.set_item("delta_disks", r.delta_disks)?;
            rd.set_item("new_offset", r.new_offset)?;
            rd.set_item("backwards", r.backwards)?;
            d.set_item("reshape", rd)?;
        }
    }
    Ok(d)
}

fn detail_dict<'py>(py: Python<'py>, r: &ArrayReader) -> PyResult<Bound<'py, PyDict>> {
    let a = r.assembly();
    let g = r.geometry();
    let i = &a.reference;
    let d = PyDict::new(py);
    d.set_item("level", g.level().name())?;
    d.set_item("layout", layout_name(g.layout()))?;
    d.set_item("layout_number", g.layout().md_number())?;
    d.set_item("chunk", u64::from(g.chunk_sectors()) * 512)?;
    d.set_item("raid_devices", g.raid_disks())?;
    d.set_item("size", a.size())?;
    d.set_item("dev_size", g.dev_sectors() * 512)?;
    d.set_item("metadata", i.version.version())?;
    d.set_item("uuid", md::format_uuid(&i.array_uuid))?;
    d.set_item("name", &i.name)?;
    d.set_item("events", i.events)?;
    d.set_item("ctime", i.ctime.seconds)?;
    d.set_item("utime", i.utime.seconds)?;
    d.set_item("state", a.state())?;
    d.set_item("clean", i.is_clean())?;
    d.set_item("degraded", a.degraded())?;
    d.set_item("missing_slots", a.missing())?;
    d.set_item("force", a.force)?;
    d.set_item("reference", &a.reports[a.reference_report].path)?;
    d.set_item("backup_file", a.backup.as_ref().map(|b| b.path.clone()))?;
    let members = PyList::empty(py);
    for (k, rep) in a.reports.iter().enumerate() {
        let m = PyDict::new(py);
        m.set_item("path", &rep.path)?;
        m.set_item("slot", rep.slot)?;
        m.set_item("state", rep.state.name())?;
        m.set_item("used", rep.used)?;
        m.set_item("reason", &rep.reason)?;
        m.set_item("reference", k == a.reference_report)?;
        let behind = match rep.state {
            MemberState::Stale { behind, .. } => Some(behind),
            _ => None,
        };
        m.set_item("events_behind", behind)?;
        match &rep.info {
            Some(info) => {
                m.set_item("events", info.events)?;
                m.set_item("dev_number", info.dev_number)?;
                m.set_item("role", info.role.to_string())?;
                m.set_item("data_offset", info.data_offset)?;
                m.set_item("super_offset", info.super_offset)?;
                m.set_item("device_uuid", uuid_opt(info.device_uuid))?;
                m.set_item("recovery_offset", info.recovery_offset)?;
            }
            None => {
                m.set_item("events", py.None())?;
            }
        }
        members.append(m)?;
    }
    d.set_item("members", members)?;
    d.set_item("notes", &a.notes)?;
    let parts = PyList::empty(py);
    for p in &a.parts {
        let pd = PyDict::new(py);
        pd.set_item("start", p.start)?;
        pd.set_item("end", p.end)?;
        pd.set_item("geometry", p.name)?;
        pd.set_item("raid_devices", p.geometry.raid_disks())?;
        pd.set_item("layout", layout_name(p.geometry.layout()))?;
        pd.set_item("chunk", u64::from(p.geometry.chunk_sectors()) * 512)?;
        pd.set_item("data_offset_shift", p.shift)?;
        parts.append(pd)?;
    }
    d.set_item("parts", parts)?;
    match &i.reshape {
        None => d.set_item("reshape", py.None())?,
        Some(r) => {
            let rd = PyDict::new(py);
            rd.set_item("position", r.position)?;
            rd.set_item("delta_disks", r.delta_disks)?;
            rd.set_item("new_layout", r.new_layout)?;
            rd.set_item("new_chunk", r.new_chunk_bytes)?;
            rd.set_item("new_offset", r.new_offset)?;
            rd.set_item("backwards", r.backwards)?;
            d.set_item("reshape", rd)?;
        }
    }
    Ok(d)
}

fn found_dict<'py>(py: Python<'py>, f: &Found) -> PyResult<Bound<'py, PyDict>> {
    let d = match f.member_info() {
        Some(i) => info_dict(py, &i)?,
        None => PyDict::new(py),
    };
    d.set_item("location", f.location.version())?;
    d.set_item("sector", f.sector)?;
    d.set_item("valid", f.is_valid())?;
    d.set_item("checksum_ok", f.checksum_ok)?;
    let problems: Vec<String> = f.problems.iter().map(ToString::to_string).collect();
    d.set_item("problems", problems)?;
    d.set_item("device_size", f.device_sectors * 512)?;
    Ok(d)
}

/// Every md superblock found on one device or image (`mdadm --examine`): a list of dicts,
/// one per location holding the md magic, valid or not; empty when there is none.
#[pyfunction]
pub(crate) fn examine<'py>(py: Python<'py>, path: PathBuf) -> PyResult<Bound<'py, PyList>> {
    let (_, found) = detached(py, || assemble::examine(&path))?;
    let preferred = md::preferred(&found).map(|f| f.location);
    let list = PyList::empty(py);
    for f in &found {
        let d = found_dict(py, f)?;
        d.set_item("preferred", Some(f.location) == preferred)?;
        list.append(d)?;
    }
    Ok(list)
}
