//! AVX-512 (F + BW): 64 bytes per vector. The top-bit test of the doubling uses a mask
//! register (`vpmovb2m`) instead of a compare; constant multiplication is `vpshufb` on
//! nibble tables broadcast to all four 128-bit lanes.
//!
//! Soundness of the `unsafe` blocks in this file: a [`V512`] is only created inside the
//! `#[target_feature(enable = "avx512f,avx512bw")]` entry points of `kernels/mod.rs`, which
//! the dispatcher calls only after detecting both features. Loads and stores are unaligned
//! and stay inside the ranges the caller guarantees (see `kernels/generic.rs`).

use crate::gf256::nibble_tables;
use crate::kernels::generic::Vector;
use std::arch::x86_64::*;

#[derive(Clone, Copy)]
pub(crate) struct V512(__m512i);

#[derive(Clone, Copy)]
pub(crate) struct Tables {
    lo: __m512i,
    hi: __m512i,
}

impl Vector for V512 {
    const BYTES: usize = 64;
    type Mul = Tables;

    #[inline(always)]
    unsafe fn load(ptr: *const u8) -> Self {
        V512(_mm512_loadu_si512(ptr as *const _))
    }
    #[inline(always)]
    unsafe fn store(self, ptr: *mut u8) {
        _mm512_storeu_si512(ptr as *mut _, self.0)
    }
    #[inline(always)]
    fn zero() -> Self {
        // SAFETY: see the module comment.
        V512(unsafe { _mm512_setzero_si512() })
    }
    #[inline(always)]
    fn xor(self, o: Self) -> Self {
        // SAFETY: see the module comment.
        V512(unsafe { _mm512_xor_si512(self.0, o.0) })
    }
    #[inline(always)]
    fn mul2(self) -> Self {
        // SAFETY: see the module comment.
        unsafe {
            let top = _mm512_movepi8_mask(self.0);
            let twice = _mm512_add_epi8(self.0, self.0);
            V512(_mm512_xor_si512(
                twice,
                _mm512_maskz_mov_epi8(top, _mm512_set1_epi8(0x1d)),
            ))
        }
    }
    #[inline(always)]
    fn mul_table(c: u8) -> Tables {
        let (lo, hi) = nibble_tables(c);
        // SAFETY: unaligned 16-byte loads of stack arrays, broadcast to all lanes.
        unsafe {
            Tables {
                lo: _mm512_broadcast_i32x4(_mm_loadu_si128(lo.as_ptr() as *const __m128i)),
                hi: _mm512_broadcast_i32x4(_mm_loadu_si128(hi.as_ptr() as *const __m128i)),
            }
        }
    }
    #[inline(always)]
    fn mulc(self, t: Tables) -> Self {
        // SAFETY: see the module comment.
        unsafe {
            let nib = _mm512_set1_epi8(0x0f);
            let lo = _mm512_and_si512(self.0, nib);
            let hi = _mm512_and_si512(_mm512_srli_epi16(self.0, 4), nib);
            V512(_mm512_xor_si512(
                _mm512_shuffle_epi8(t.lo, lo),
                _mm512_shuffle_epi8(t.hi, hi),
            ))
        }
    }
}
