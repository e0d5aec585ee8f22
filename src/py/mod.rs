//! The Python module `fastraid._core`: argument conversion only; the work is in
//! [`crate::parity`]. Heavy calls release the GIL.

mod buffers;
mod errors;

use crate::kernels::Kernel;
use crate::parity::{self, Options};
use buffers::{check_no_overlap, Buf};
use errors::{buffer_type, guard, invalid, to_py};
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyDict, PyList, PyTuple};

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

/// The buffers of the sequence `data` (`None` items allowed when `allow_none`).
fn data_buffers(data: &Bound<'_, PyAny>, allow_none: bool) -> PyResult<Vec<Option<Buf>>> {
    let py = data.py();
    if data.is_instance_of::<pyo3::types::PyBytes>()
        || data.is_instance_of::<PyByteArray>()
        || data.is_instance_of::<pyo3::types::PyMemoryView>()
    {
        return Err(buffer_type(
            py,
            "data: expected a sequence of buffers (one per block), got a single buffer",
        ));
    }
    let iter = data
        .try_iter()
        .map_err(|_| buffer_type(py, "data: expected a sequence of buffers (one per block)"))?;
    let mut out = Vec::new();
    for (i, item) in iter.enumerate() {
        let item = item?;
        let name = format!("data[{i}]");
        if item.is_none() {
            if !allow_none {
                return Err(buffer_type(
                    py,
                    format!("{name}: None is only allowed in recover()"),
                ));
            }
            out.push(None);
        } else {
            out.push(Some(Buf::input(&item, &name)?));
        }
    }
    Ok(out)
}

fn present(v: &[Option<Buf>]) -> Vec<&Buf> {
    v.iter().flatten().collect()
}

/// A new zero-filled bytearray of `n` bytes.
fn new_bytearray(py: Python<'_>, n: usize) -> PyResult<Bound<'_, PyAny>> {
    Ok(PyByteArray::new_with(py, n, |_| Ok(()))?.into_any())
}

fn first_len(bufs: &[&Buf]) -> usize {
    bufs.first().map_or(0, |b| b.len())
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
    let data = data_buffers(data, false)?;
    let ins = present(&data);
    let out = match out {
        Some(out) => out,
        None => new_bytearray(py, first_len(&ins))?,
    };
    let ob = Buf::output(&out, "out")?;
    check_no_overlap(py, &ins, &[&ob])?;
    let srcs: Vec<&[u8]> = ins.iter().map(|b| b.bytes()).collect();
    // SAFETY: `ob` is a writable export that overlaps no input (checked above).
    let dst = unsafe { ob.bytes_mut() };
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
    let data = data_buffers(data, false)?;
    let ins = present(&data);
    let n = first_len(&ins);
    let p = match p {
        Some(p) => p,
        None => new_bytearray(py, n)?,
    };
    let q = match q {
        Some(q) => q,
        None => new_bytearray(py, n)?,
    };
    let (pb, qb) = (Buf::output(&p, "p")?, Buf::output(&q, "q")?);
    check_no_overlap(py, &ins, &[&pb, &qb])?;
    let srcs: Vec<&[u8]> = ins.iter().map(|b| b.bytes()).collect();
    // SAFETY: writable exports that overlap no input and not each other (checked above).
    let (pd, qd) = unsafe { (pb.bytes_mut(), qb.bytes_mut()) };
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
    let data = data_buffers(data, false)?;
    let srcs: Vec<&[u8]> = present(&data).iter().map(|b| b.bytes()).collect();
    let pb = Buf::input(p, "p")?;
    let pd = pb.bytes();
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
    let data = data_buffers(data, false)?;
    let srcs: Vec<&[u8]> = present(&data).iter().map(|b| b.bytes()).collect();
    let (pb, qb) = (Buf::input(p, "p")?, Buf::input(q, "q")?);
    let (pd, qd) = (pb.bytes(), qb.bytes());
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
    let data = data_buffers(data, true)?;
    let pb = p.as_ref().map(|p| Buf::input(p, "p")).transpose()?;
    let qb = q.as_ref().map(|q| Buf::input(q, "q")).transpose()?;
    let lost = data.iter().filter(|d| d.is_none()).count();
    let mut ins = present(&data);
    ins.extend(pb.iter().chain(qb.iter()));
    let n = first_len(&ins);
    let outs: Vec<Bound<'py, PyAny>> = match out {
        Some(out) => {
            let iter = out
                .try_iter()
                .map_err(|_| buffer_type(py, "out: expected a sequence of writable buffers"))?;
            iter.collect::<PyResult<_>>()?
        }
        None => (0..lost)
            .map(|_| new_bytearray(py, n))
            .collect::<PyResult<_>>()?,
    };
    let obufs: Vec<Buf> = outs
        .iter()
        .enumerate()
        .map(|(i, o)| Buf::output(o, &format!("out[{i}]")))
        .collect::<PyResult<_>>()?;
    let orefs: Vec<&Buf> = obufs.iter().collect();
    check_no_overlap(py, &ins, &orefs)?;
    let srcs: Vec<Option<&[u8]>> = data.iter().map(|d| d.as_ref().map(|b| b.bytes())).collect();
    let (pd, qd) = (
        pb.as_ref().map(|b| b.bytes()),
        qb.as_ref().map(|b| b.bytes()),
    );
    // SAFETY: writable exports, each made into a slice once, overlapping nothing (checked).
    let mut dsts: Vec<&mut [u8]> = obufs.iter().map(|b| unsafe { b.bytes_mut() }).collect();
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
    Ok(())
}
