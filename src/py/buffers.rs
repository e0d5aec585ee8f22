//! Zero-copy access to Python buffers (bytes, bytearray, memoryview, numpy, mmap ...).
//!
//! This is the I/O primitive at the Python boundary, and it is deliberately lean: a call on
//! 4 KiB blocks spends more time here than in the kernel, so each buffer costs one
//! `PyObject_GetBuffer` into a preallocated `Py_buffer` and one `PyBuffer_Release`, with no
//! per-buffer allocation or string formatting (names are formatted only for errors).
//!
//! Inputs are requested with `PyBUF_SIMPLE` and outputs with `PyBUF_WRITABLE`: both ask the
//! exporter for one contiguous run of bytes, so a non-contiguous view or a read-only
//! output is refused by the exporter itself; on failure [`diagnose`] works out which it
//! was, for the message. Any item format is read as raw bytes.
//!
//! The kernels run with the GIL released. Another Python thread could still write into an
//! input while we read it; the result would then be garbage for those bytes, as with any C
//! extension that releases the GIL (hashlib and blake3-py make the same trade), but no
//! memory outside the exported ranges is touched, and the exports keep every buffer alive
//! and unresizable until [`Exports`] is dropped.

use super::errors::{buffer_type, invalid};
use pyo3::buffer::PyUntypedBuffer;
use pyo3::ffi;
use pyo3::prelude::*;
use smallvec::SmallVec;
use std::fmt;

/// What an argument is called in messages.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Name {
    Data(usize),
    Out,
    OutAt(usize),
    P,
    Q,
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Name::Data(i) => write!(f, "data[{i}]"),
            Name::Out => f.write_str("out"),
            Name::OutAt(i) => write!(f, "out[{i}]"),
            Name::P => f.write_str("p"),
            Name::Q => f.write_str("q"),
        }
    }
}

struct View {
    raw: ffi::Py_buffer,
    name: Name,
    writable: bool,
}

/// The buffer exports of one call, released together (with the GIL held) on drop.
/// `!Send` (it holds raw pointers), so it cannot travel into a GIL-free closure: take the
/// slices out first.
pub(crate) struct Exports {
    views: SmallVec<[View; 18]>,
}

impl Exports {
    /// Room for `n` exports; up to 18 live on the stack.
    pub(crate) fn with_capacity(n: usize) -> Exports {
        Exports {
            views: SmallVec::with_capacity(n),
        }
    }

    /// Export `obj`; returns its index for [`Exports::bytes`] / [`Exports::bytes_mut`].
    pub(crate) fn add(
        &mut self,
        obj: &Bound<'_, PyAny>,
        name: Name,
        writable: bool,
    ) -> PyResult<usize> {
        let flags = if writable {
            ffi::PyBUF_WRITABLE
        } else {
            ffi::PyBUF_SIMPLE
        };
        let mut raw = ffi::Py_buffer::new();
        // SAFETY: `obj` is a live object (we hold a reference and the GIL); `raw` is a valid
        // Py_buffer to fill. On success we own one export, released in `Drop`.
        let rc = unsafe { ffi::PyObject_GetBuffer(obj.as_ptr(), &mut raw, flags) };
        if rc != 0 {
            // Replace the exporter's message with one that names the argument.
            drop(PyErr::fetch(obj.py()));
            return Err(diagnose(obj, name, writable));
        }
        self.views.push(View {
            raw,
            name,
            writable,
        });
        Ok(self.views.len() - 1)
    }

    pub(crate) fn len(&self, i: usize) -> usize {
        self.views[i].raw.len as usize
    }

    fn range(&self, i: usize) -> (usize, usize) {
        let start = self.views[i].raw.buf as usize;
        (start, start + self.len(i))
    }

    /// The bytes of export `i`, read-only.
    pub(crate) fn bytes(&self, i: usize) -> &[u8] {
        let v = &self.views[i].raw;
        if v.len == 0 {
            return &[];
        }
        // SAFETY: a PyBUF_SIMPLE/WRITABLE export is one contiguous run of `len` bytes at
        // `buf`, valid until released in Drop, which needs `&mut self`.
        unsafe { std::slice::from_raw_parts(v.buf as *const u8, v.len as usize) }
    }

    /// The bytes of export `i`, writable.
    ///
    /// # Safety
    /// Export `i` was added with `writable = true`, [`Exports::check_no_overlap`] passed
    /// after the last `add`, and this is called at most once per export while the
    /// returned slice lives (so no other slice of that memory exists).
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn bytes_mut(&self, i: usize) -> &mut [u8] {
        let v = &self.views[i].raw;
        debug_assert!(self.views[i].writable);
        if v.len == 0 {
            return &mut [];
        }
        std::slice::from_raw_parts_mut(v.buf as *mut u8, v.len as usize)
    }

    /// Refuse any writable export that shares memory with any other export.
    pub(crate) fn check_no_overlap(&self, py: Python<'_>) -> PyResult<()> {
        for (i, v) in self.views.iter().enumerate() {
            if !v.writable || v.raw.len == 0 {
                continue;
            }
            let (s, e) = self.range(i);
            for (j, w) in self.views.iter().enumerate() {
                let (ws, we) = self.range(j);
                if j != i && w.raw.len > 0 && s < we && ws < e && (!w.writable || j > i) {
                    return Err(invalid(
                        py,
                        format!("{}: overlaps {} in memory", v.name, w.name),
                    ));
                }
            }
        }
        Ok(())
    }
}

impl Drop for Exports {
    fn drop(&mut self) {
        for v in &mut self.views {
            // SAFETY: each view holds one successful export. Exports is !Send and lives in
            // a #[pyfunction] frame, so it is dropped on the thread that holds the GIL.
            unsafe { ffi::PyBuffer_Release(&mut v.raw) };
        }
    }
}

/// Why `obj` could not be exported as asked (the slow path, for the message only).
fn diagnose(obj: &Bound<'_, PyAny>, name: Name, writable: bool) -> PyErr {
    let py = obj.py();
    match PyUntypedBuffer::get(obj) {
        Err(_) => buffer_type(
            py,
            format!(
                "{name}: expected a bytes-like object (buffer protocol), got {}",
                obj.get_type()
                    .name()
                    .map(|n| n.to_string())
                    .unwrap_or_else(|_| "?".into())
            ),
        ),
        Ok(b) if !b.is_c_contiguous() => {
            buffer_type(py, format!("{name}: buffer is not C-contiguous"))
        }
        Ok(b) if writable && b.readonly() => {
            buffer_type(py, format!("{name}: buffer is read-only"))
        }
        Ok(_) => buffer_type(py, format!("{name}: buffer cannot be exported as bytes")),
    }
}
