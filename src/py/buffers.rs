//! Zero-copy access to Python buffers (bytes, bytearray, memoryview, numpy, mmap ...).
//!
//! A [`Buf`] holds a `Py_buffer` export for as long as it lives, so the memory it points to
//! cannot be freed or resized (a bytearray with an export refuses to resize). Any format is
//! accepted and read as raw bytes; non-contiguous views are refused, outputs must be
//! writable, and outputs may not overlap any input or each other ([`check_no_overlap`]).
//!
//! The kernels run with the GIL released. Another Python thread could still write into an
//! input while we read it; the result would then be garbage for that stripe, as with any C
//! extension that releases the GIL (hashlib, blake3-py make the same trade), but no memory
//! outside the exported ranges is touched.

use super::errors::{buffer_type, invalid};
use pyo3::buffer::PyUntypedBuffer;
use pyo3::prelude::*;

pub(crate) struct Buf {
    buf: PyUntypedBuffer,
    pub(crate) name: String,
}

impl Buf {
    fn get(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<Buf> {
        let py = obj.py();
        let buf = PyUntypedBuffer::get(obj).map_err(|_| {
            buffer_type(
                py,
                format!(
                    "{name}: expected a bytes-like object (buffer protocol), got {}",
                    obj.get_type()
                        .name()
                        .map(|n| n.to_string())
                        .unwrap_or_else(|_| "?".into())
                ),
            )
        })?;
        if !buf.is_c_contiguous() {
            return Err(buffer_type(
                py,
                format!("{name}: buffer is not C-contiguous"),
            ));
        }
        Ok(Buf {
            buf,
            name: name.to_string(),
        })
    }

    /// A buffer to read from.
    pub(crate) fn input(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<Buf> {
        Buf::get(obj, name)
    }

    /// A buffer to write into: also writable.
    pub(crate) fn output(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<Buf> {
        let b = Buf::get(obj, name)?;
        if b.buf.readonly() {
            return Err(buffer_type(
                obj.py(),
                format!("{name}: buffer is read-only"),
            ));
        }
        Ok(b)
    }

    pub(crate) fn len(&self) -> usize {
        self.buf.len_bytes()
    }

    fn range(&self) -> (usize, usize) {
        let start = self.buf.buf_ptr() as usize;
        (start, start + self.len())
    }

    /// The bytes, read-only.
    pub(crate) fn bytes(&self) -> &[u8] {
        if self.len() == 0 {
            return &[];
        }
        // SAFETY: the export is C-contiguous (checked in `get`) and spans `len_bytes()`
        // bytes from `buf_ptr()`; it stays valid while `self.buf` holds it.
        unsafe { std::slice::from_raw_parts(self.buf.buf_ptr() as *const u8, self.len()) }
    }

    /// The bytes, writable.
    ///
    /// # Safety
    /// `self` was made by [`Buf::output`] (writable) and, for as long as the returned slice
    /// lives, no other slice of the same memory exists: [`check_no_overlap`] must have
    /// passed for all the buffers of the call, and this is called once per buffer.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn bytes_mut(&self) -> &mut [u8] {
        if self.len() == 0 {
            return &mut [];
        }
        std::slice::from_raw_parts_mut(self.buf.buf_ptr() as *mut u8, self.len())
    }
}

/// Refuse any output that shares memory with an input or another output.
pub(crate) fn check_no_overlap(py: Python<'_>, inputs: &[&Buf], outputs: &[&Buf]) -> PyResult<()> {
    for (i, o) in outputs.iter().enumerate() {
        let (os, oe) = o.range();
        let others = inputs.iter().chain(outputs[i + 1..].iter());
        for other in others {
            let (s, e) = other.range();
            if o.len() > 0 && other.len() > 0 && os < e && s < oe {
                return Err(invalid(
                    py,
                    format!("{}: overlaps {} in memory", o.name, other.name),
                ));
            }
        }
    }
    Ok(())
}
