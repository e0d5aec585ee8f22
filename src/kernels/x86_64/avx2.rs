//! AVX2: 32 bytes per vector; constant multiplication with `vpshufb` on nibble tables
//! broadcast to both 128-bit lanes.
//!
//! Soundness of the `unsafe` blocks in this file: a [`V256`] is only created inside the
//! `#[target_feature(enable = "avx2")]` entry points of `kernels/mod.rs`, which the
//! dispatcher calls only after `is_x86_feature_detected!("avx2")`. Loads and stores are
//! unaligned and stay inside the ranges the caller guarantees (see `kernels/generic.rs`).

use crate::gf256::nibble_tables;
use crate::kernels::generic::Vector;
use std::arch::x86_64::*;

#[derive(Clone, Copy)]
pub(crate) struct V256(__m256i);

#[derive(Clone, Copy)]
pub(crate) struct Tables {
    lo: __m256i,
    hi: __m256i,
}

impl Vector for V256 {
    const BYTES: usize = 32;
    type Mul = Tables;

    #[inline(always)]
    unsafe fn load(ptr: *const u8) -> Self {
        V256(_mm256_loadu_si256(ptr as *const __m256i))
    }
    #[inline(always)]
    unsafe fn store(self, ptr: *mut u8) {
        _mm256_storeu_si256(ptr as *mut __m256i, self.0)
    }
    #[inline(always)]
    fn zero() -> Self {
        // SAFETY: see the module comment.
        V256(unsafe { _mm256_setzero_si256() })
    }
    #[inline(always)]
    fn xor(self, o: Self) -> Self {
        // SAFETY: see the module comment.
        V256(unsafe { _mm256_xor_si256(self.0, o.0) })
    }
    #[inline(always)]
    fn mul2(self) -> Self {
        // SAFETY: see the module comment.
        unsafe {
            let mask = _mm256_cmpgt_epi8(_mm256_setzero_si256(), self.0);
            let twice = _mm256_add_epi8(self.0, self.0);
            V256(_mm256_xor_si256(
                twice,
                _mm256_and_si256(mask, _mm256_set1_epi8(0x1d)),
            ))
        }
    }
    #[inline(always)]
    fn mul_table(c: u8) -> Tables {
        let (lo, hi) = nibble_tables(c);
        // SAFETY: unaligned 16-byte loads of stack arrays, broadcast to both lanes.
        unsafe {
            Tables {
                lo: _mm256_broadcastsi128_si256(_mm_loadu_si128(lo.as_ptr() as *const __m128i)),
                hi: _mm256_broadcastsi128_si256(_mm_loadu_si128(hi.as_ptr() as *const __m128i)),
            }
        }
    }
    #[inline(always)]
    fn mulc(self, t: Tables) -> Self {
        // SAFETY: see the module comment.
        unsafe {
            let nib = _mm256_set1_epi8(0x0f);
            let lo = _mm256_and_si256(self.0, nib);
            let hi = _mm256_and_si256(_mm256_srli_epi16(self.0, 4), nib);
            V256(_mm256_xor_si256(
                _mm256_shuffle_epi8(t.lo, lo),
                _mm256_shuffle_epi8(t.hi, hi),
            ))
        }
    }
}
