//! SSSE3: the SSE2 kernel plus `pshufb`, which multiplies 16 bytes by a constant with two
//! 16-entry nibble-table lookups (the technique of Linux `lib/raid6/recov_ssse3.c` and
//! ISA-L's `gf_vect_mul`).
//!
//! Soundness of the `unsafe` blocks in this file: a [`V128s`] is only created inside the
//! `#[target_feature(enable = "ssse3")]` entry points of `kernels/mod.rs`, which the
//! dispatcher calls only after `is_x86_feature_detected!("ssse3")`. Loads and stores are
//! unaligned and stay inside the ranges the caller guarantees (see `kernels/generic.rs`).

use super::sse2::mul2_128;
use crate::gf256::nibble_tables;
use crate::kernels::generic::Vector;
use std::arch::x86_64::*;

#[derive(Clone, Copy)]
pub(crate) struct V128s(__m128i);

/// Nibble tables for one constant.
#[derive(Clone, Copy)]
pub(crate) struct Tables {
    lo: __m128i,
    hi: __m128i,
}

impl Vector for V128s {
    const BYTES: usize = 16;
    type Mul = Tables;

    #[inline(always)]
    unsafe fn load(ptr: *const u8) -> Self {
        V128s(_mm_loadu_si128(ptr as *const __m128i))
    }
    #[inline(always)]
    unsafe fn store(self, ptr: *mut u8) {
        _mm_storeu_si128(ptr as *mut __m128i, self.0)
    }
    #[inline(always)]
    fn zero() -> Self {
        // SAFETY: see the module comment.
        V128s(unsafe { _mm_setzero_si128() })
    }
    #[inline(always)]
    fn xor(self, o: Self) -> Self {
        // SAFETY: see the module comment.
        V128s(unsafe { _mm_xor_si128(self.0, o.0) })
    }
    #[inline(always)]
    fn mul2(self) -> Self {
        V128s(mul2_128(self.0))
    }
    #[inline(always)]
    fn mul_table(c: u8) -> Tables {
        let (lo, hi) = nibble_tables(c);
        // SAFETY: unaligned loads of two 16-byte arrays on the stack.
        unsafe {
            Tables {
                lo: _mm_loadu_si128(lo.as_ptr() as *const __m128i),
                hi: _mm_loadu_si128(hi.as_ptr() as *const __m128i),
            }
        }
    }
    #[inline(always)]
    fn mulc(self, t: Tables) -> Self {
        // SAFETY: see the module comment (SSSE3 present).
        unsafe {
            let nib = _mm_set1_epi8(0x0f);
            let lo = _mm_and_si128(self.0, nib);
            let hi = _mm_and_si128(_mm_srli_epi16(self.0, 4), nib);
            V128s(_mm_xor_si128(
                _mm_shuffle_epi8(t.lo, lo),
                _mm_shuffle_epi8(t.hi, hi),
            ))
        }
    }
}
