//! The Python module `fastraid._core`: argument conversion only; the work is in
//! [`crate::parity`]. Heavy calls release the GIL.

mod array;
mod buffers;
mod create;
mod errors;
mod progress;
mod rebuild;
mod reshape;
mod scrub;

use crate::kernels::Kernel;
use crate::parity::{self, Options};
use buffers::{Exports, Name};
use errors::{buffer_type, guard, invalid, to_py};
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyDict, PyList, PyMemoryView, PyTuple};
use smallvec::SmallVec;

/// Below this many bytes touched, releasing and re-taking the GIL costs more than it saves.
const DETACH_BYTES: usize = 16 * 1024;

fn options(py: Python<'_>, threads: Option<i64>, kernel: Option<&str>) -> PyResult<Options> {
    let kernel = match kernel {
        Some(name) => Kernel::by_name(name),
        None => Kernel::active(),
    }
    .map_err(|e| to_py(py, e))?;
    let threads = match threads {
        None => 0,
        Some(t) if (1..=1024).contains(&t) => t as usize,
        Some(t) => {
            return Err(invalid(
                py,
                format!("threads: must be between 1 and 1024 (or None), got {t}"),
            ))
        }
    };
    Ok(Options { kernel, threads })
}

/// Run `f` with the GIL released when the work is large enough to be worth it.
fn run<T: Send>(
    py: Python<'_>,
    bytes: usize,
    f: impl FnOnce() -> crate::Result<T> + Send,
) -> PyResult<T> {
    if bytes >= DETACH_BYTES {
        py.detach(|| std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)))
            .map_err(|_| errors::raise(py, "InternalError", "internal error: panic in kernel"))
            .and_then(|r| r.map_err(|e| to_py(py, e)))
    } else {
        guard(py, f)
    }
}

/// Blocks per call kept on the stack; more spill to the heap.
const INLINE: usize = 16;
type Indices = SmallVec<[Option<usize>; INLINE]>;

/// Export every item of the sequence `data` as an input; `None` items (allowed only when
/// `allow_none`) give `None`. Returns the export index of each item.
fn export_data(ex: &mut Exports, data: &Bound<'_, PyAny>, allow_none: bool) -> PyResult<Indices> {
    let py = data.py();
    if data.is_instance_of::<PyBytes>()
        || data.is_instance_of::<PyByteArray>()
        || data.is_instance_of::<PyMemoryView>()
    {
        return Err(buffer_type(
            py,
            "data: expected a sequence of buffers (one per block), got a single buffer",
        ));
    }
    let mut idx = Indices::new();
    let mut one = |i: usize, item: &Bound<'_, PyAny>| -> PyResult<()> {
        if item.is_none() {
            if !allow_none {
                return Err(buffer_type(
                    py,
                    format!("data[{i}]: None marks a lost block, only recover() takes it"),
                ));
            }
            idx.push(None);
        } else {
            idx.push(Some(ex.add(item, Name::Data(i), false)?));
        }
        Ok(())
    };
    // Lists and tuples (the usual case) without the generic iterator protocol.
    if let Ok(list) = data.cast::<PyList>() {
        for (i, item) in list.iter().enumerate() {
            one(i, &item)?;
        }
    } else if let Ok(tuple) = data.cast::<PyTuple>() {
        for (i, item) in tuple.iter().enumerate() {
            one(i, &item)?;
        }
    } else {
        let iter = data
            .try_iter()
            .map_err(|_| buffer_type(py, "data: expected a sequence of buffers (one per block)"))?;
        for (i, item) in iter.enumerate() {
            one(i, &item?)?;
        }
    }
    Ok(idx)
}

/// A new zero-filled bytearray of `n` bytes.
fn new_bytearray(py: Python<'_>, n: usize) -> PyResult<Bound<'_, PyAny>> {
    Ok(PyByteArray::new_with(py, n, |_| Ok(()))?.into_any())
}

/// The slices of the exported data blocks (all present).
fn slices<'a>(ex: &'a Exports, idx: &[Option<usize>]) -> SmallVec<[&'a [u8]; INLINE]> {
    idx.iter().flatten().map(|&i| ex.bytes(i)).collect()
}

/// XOR of the equal-length buffers in `data` (RAID-4/5 parity) into `out`.
#[pyfunction]
#[pyo3(signature = (data, out=None, *, threads=None, kernel=None))]
fn xor_gen<'py>(
    py: Python<'py>,
    data: &Bound<'py, PyAny>,
    out: Option<Bound<'py, PyAny>>,
    threads: Option<i64>,
    kernel: Option<&str>,
) -> PyResult<Bound<'py, PyAny>> {
    let o = options(py, threads, kernel)?;
    let mut ex = Exports::with_capacity(16);
    let idx = export_data(&mut ex, data, false)?;
    let n = idx.first().map_or(0, |_| ex.len(0));
    let out = match out {
        Some(out) => out,
        None => new_bytearray(py, n)?,
    };
    let oi = ex.add(&out, Name::Out, true)?;
    ex.check_no_overlap(py)?;
    let srcs = slices(&ex, &idx);
    // SAFETY: a writable export, no overlap (checked above), one slice.
    let dst = unsafe { ex.bytes_mut(oi) };
    run(py, dst.len() * (srcs.len() + 1), || {
        parity::xor_gen(&o, &srcs, dst)
    })?;
    Ok(out)
}

/// RAID-6 P and Q of `data` as Linux md computes them.
#[pyfunction]
#[pyo3(signature = (data, p=None, q=None, *, threads=None, kernel=None))]
fn pq_gen<'py>(
    py: Python<'py>,
    data: &Bound<'py, PyAny>,
    p: Option<Bound<'py, PyAny>>,
    q: Option<Bound<'py, PyAny>>,
    threads: Option<i64>,
    kernel: Option<&str>,
) -> PyResult<Bound<'py, PyTuple>> {
    let o = options(py, threads, kernel)?;
    let mut ex = Exports::with_capacity(16);
    let idx = export_data(&mut ex, data, false)?;
    let n = idx.first().map_or(0, |_| ex.len(0));
    let p = match p {
        Some(p) => p,
        None => new_bytearray(py, n)?,
    };
    let q = match q {
        Some(q) => q,
        None => new_bytearray(py, n)?,
    };
    let pi = ex.add(&p, Name::P, true)?;
    let qi = ex.add(&q, Name::Q, true)?;
    ex.check_no_overlap(py)?;
    let srcs = slices(&ex, &idx);
    // SAFETY: writable exports overlapping nothing (checked above), one slice each.
    let (pd, qd) = unsafe { (ex.bytes_mut(pi), ex.bytes_mut(qi)) };
    run(py, pd.len() * (srcs.len() + 2), || {
        parity::pq_gen(&o, &srcs, pd, qd)
    })?;
    PyTuple::new(py, [p, q])
}

/// Whether `p` is the XOR of `data`.
#[pyfunction]
#[pyo3(signature = (data, p, *, kernel=None))]
fn xor_check(
    py: Python<'_>,
    data: &Bound<'_, PyAny>,
    p: &Bound<'_, PyAny>,
    kernel: Option<&str>,
) -> PyResult<bool> {
    let o = options(py, None, kernel)?;
    let mut ex = Exports::with_capacity(16);
    let idx = export_data(&mut ex, data, false)?;
    let pi = ex.add(p, Name::P, false)?;
    let srcs = slices(&ex, &idx);
    let pd = ex.bytes(pi);
    run(py, pd.len() * (srcs.len() + 1), || {
        parity::xor_check(&o, &srcs, pd)
    })
}

/// Whether P and Q match `data`: `(p_ok, q_ok)`.
#[pyfunction]
#[pyo3(signature = (data, p, q, *, kernel=None))]
fn pq_check(
    py: Python<'_>,
    data: &Bound<'_, PyAny>,
    p: &Bound<'_, PyAny>,
    q: &Bound<'_, PyAny>,
    kernel: Option<&str>,
) -> PyResult<(bool, bool)> {
    let o = options(py, None, kernel)?;
    let mut ex = Exports::with_capacity(16);
    let idx = export_data(&mut ex, data, false)?;
    let pi = ex.add(p, Name::P, false)?;
    let qi = ex.add(q, Name::Q, false)?;
    let srcs = slices(&ex, &idx);
    let (pd, qd) = (ex.bytes(pi), ex.bytes(qi));
    run(py, pd.len() * (srcs.len() + 2), || {
        parity::pq_check(&o, &srcs, pd, qd)
    })
}

/// Rebuild the lost (`None`) data blocks of a stripe from the survivors and P and/or Q.
#[pyfunction]
#[pyo3(signature = (data, p=None, q=None, out=None, *, threads=None, kernel=None))]
fn recover<'py>(
    py: Python<'py>,
    data: &Bound<'py, PyAny>,
    p: Option<Bound<'py, PyAny>>,
    q: Option<Bound<'py, PyAny>>,
    out: Option<Bound<'py, PyAny>>,
    threads: Option<i64>,
    kernel: Option<&str>,
) -> PyResult<Bound<'py, PyList>> {
    let o = options(py, threads, kernel)?;
    let mut ex = Exports::with_capacity(16);
    let idx = export_data(&mut ex, data, true)?;
    let pi = p.as_ref().map(|p| ex.add(p, Name::P, false)).transpose()?;
    let qi = q.as_ref().map(|q| ex.add(q, Name::Q, false)).transpose()?;
    let lost = idx.iter().filter(|d| d.is_none()).count();
    // The block length of the survivors (the core checks that they agree).
    let n = idx
        .iter()
        .flatten()
        .chain(pi.iter())
        .chain(qi.iter())
        .next()
        .map_or(0, |&i| ex.len(i));
    let outs: Vec<Bound<'py, PyAny>> = match out {
        Some(out) => out
            .try_iter()
            .map_err(|_| buffer_type(py, "out: expected a sequence of writable buffers"))?
            .collect::<PyResult<_>>()?,
        None => (0..lost)
            .map(|_| new_bytearray(py, n))
            .collect::<PyResult<_>>()?,
    };
    let oidx: Vec<usize> = outs
        .iter()
        .enumerate()
        .map(|(i, o)| ex.add(o, Name::OutAt(i), true))
        .collect::<PyResult<_>>()?;
    ex.check_no_overlap(py)?;
    let srcs: SmallVec<[Option<&[u8]>; INLINE]> =
        idx.iter().map(|d| d.map(|i| ex.bytes(i))).collect();
    let (pd, qd) = (pi.map(|i| ex.bytes(i)), qi.map(|i| ex.bytes(i)));
    // SAFETY: writable exports overlapping nothing (checked above), one slice each.
    let mut dsts: SmallVec<[&mut [u8]; 2]> =
        oidx.iter().map(|&i| unsafe { ex.bytes_mut(i) }).collect();
    run(py, n * (srcs.len() + 2), || {
        parity::recover(&o, &srcs, pd, qd, &mut dsts)
    })?;
    PyList::new(py, outs)
}

/// The kernels this CPU can run and the one used by default.
#[pyfunction]
fn kernels(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let d = PyDict::new(py);
    let names: Vec<&str> = Kernel::available().into_iter().map(Kernel::name).collect();
    d.set_item("available", names)?;
    d.set_item("active", Kernel::active().map_err(|e| to_py(py, e))?.name())?;
    Ok(d)
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(xor_gen, m)?)?;
    m.add_function(wrap_pyfunction!(pq_gen, m)?)?;
    m.add_function(wrap_pyfunction!(xor_check, m)?)?;
    m.add_function(wrap_pyfunction!(pq_check, m)?)?;
    m.add_function(wrap_pyfunction!(recover, m)?)?;
    m.add_function(wrap_pyfunction!(kernels, m)?)?;
    m.add_class::<array::RaidArray>()?;
    m.add_function(wrap_pyfunction!(array::examine, m)?)?;
    m.add_class::<create::CreatePlan>()?;
    m.add_function(wrap_pyfunction!(create::plan_create, m)?)?;
    m.add_class::<rebuild::RebuildPlan>()?;
    m.add_function(wrap_pyfunction!(rebuild::plan_rebuild, m)?)?;
    m.add_class::<reshape::ReshapePlan>()?;
    m.add_function(wrap_pyfunction!(reshape::plan_reshape, m)?)?;
    m.add_function(wrap_pyfunction!(scrub::scrub_members, m)?)?;
    Ok(())
}
