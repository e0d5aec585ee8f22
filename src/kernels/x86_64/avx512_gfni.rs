//! AVX-512 (F + BW) with GFNI: 64 bytes per vector, and every GF(2^8) multiplication —
//! the doubling of Horner's rule as much as a recovery constant — is one
//! `vgf2p8affineqb` with the constant's bit matrix ([`crate::gf256::gfni_matrix`]),
//! instead of the 4–5 instructions of the shuffle and compare forms.
//!
//! Soundness of the `unsafe` blocks in this file: a [`V512g`] is only created inside the
//! `#[target_feature(enable = "avx512f,avx512bw,gfni")]` entry points of `kernels/mod.rs`,
//! which the dispatcher calls only after detecting all three features. Loads and stores
//! are unaligned and stay inside the ranges the caller guarantees (see `kernels/generic.rs`).

use crate::gf256::gfni_matrix;
use crate::kernels::generic::Vector;
use std::arch::x86_64::*;

#[derive(Clone, Copy)]
pub(crate) struct V512g(__m512i);

/// A constant's bit matrix, broadcast to every 64-bit lane.
#[derive(Clone, Copy)]
pub(crate) struct Matrix(__m512i);

impl Vector for V512g {
    const BYTES: usize = 64;
    type Mul = Matrix;

    #[inline(always)]
    unsafe fn load(ptr: *const u8) -> Self {
        V512g(_mm512_loadu_si512(ptr as *const _))
    }
    #[inline(always)]
    unsafe fn store(self, ptr: *mut u8) {
        _mm512_storeu_si512(ptr as *mut _, self.0)
    }
    #[inline(always)]
    fn zero() -> Self {
        // SAFETY: see the module comment.
        V512g(unsafe { _mm512_setzero_si512() })
    }
    #[inline(always)]
    fn xor(self, o: Self) -> Self {
        // SAFETY: see the module comment.
        V512g(unsafe { _mm512_xor_si512(self.0, o.0) })
    }
    #[inline(always)]
    fn mul2(self) -> Self {
        const MUL2: i64 = gfni_matrix(2) as i64;
        // SAFETY: see the module comment.
        unsafe { self.mulc(Matrix(_mm512_set1_epi64(MUL2))) }
    }
    #[inline(always)]
    fn mul_table(c: u8) -> Matrix {
        // SAFETY: see the module comment.
        Matrix(unsafe { _mm512_set1_epi64(gfni_matrix(c) as i64) })
    }
    #[inline(always)]
    fn mulc(self, m: Matrix) -> Self {
        // SAFETY: see the module comment.
        V512g(unsafe { _mm512_gf2p8affine_epi64_epi8::<0>(self.0, m.0) })
    }
}
