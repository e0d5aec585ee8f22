//! SSE2: 16 bytes per vector. SSE2 has no byte shuffle, so multiplication by a constant is
//! bit-serial (up to 8 doublings); XOR, P and Q need only SSE2 and are fast.
//!
//! Soundness of the `unsafe` blocks in this file: a [`V128`] is only created inside the
//! `#[target_feature(enable = "sse2")]` entry points of `kernels/mod.rs`, which the
//! dispatcher calls only after `is_x86_feature_detected!("sse2")` (always true on x86-64).
//! The intrinsics therefore run on a CPU that has them; loads and stores are unaligned and
//! stay inside the ranges the caller guarantees (see `kernels/generic.rs`).

use crate::kernels::generic::Vector;
use std::arch::x86_64::*;

#[derive(Clone, Copy)]
pub(crate) struct V128(pub(crate) __m128i);

#[inline(always)]
pub(crate) fn mul2_128(v: __m128i) -> __m128i {
    // SAFETY: see the module comment (SSE2 present).
    unsafe {
        // Bytes with the top bit set compare "less than zero" as signed: all-ones mask.
        let mask = _mm_cmpgt_epi8(_mm_setzero_si128(), v);
        let twice = _mm_add_epi8(v, v);
        _mm_xor_si128(twice, _mm_and_si128(mask, _mm_set1_epi8(0x1d)))
    }
}

impl Vector for V128 {
    const BYTES: usize = 16;
    type Mul = u8;

    #[inline(always)]
    unsafe fn load(ptr: *const u8) -> Self {
        V128(_mm_loadu_si128(ptr as *const __m128i))
    }
    #[inline(always)]
    unsafe fn store(self, ptr: *mut u8) {
        _mm_storeu_si128(ptr as *mut __m128i, self.0)
    }
    #[inline(always)]
    fn zero() -> Self {
        // SAFETY: see the module comment.
        V128(unsafe { _mm_setzero_si128() })
    }
    #[inline(always)]
    fn xor(self, o: Self) -> Self {
        // SAFETY: see the module comment.
        V128(unsafe { _mm_xor_si128(self.0, o.0) })
    }
    #[inline(always)]
    fn mul2(self) -> Self {
        V128(mul2_128(self.0))
    }
    #[inline(always)]
    fn mul_table(c: u8) -> u8 {
        c
    }
    #[inline(always)]
    fn mulc(self, c: u8) -> Self {
        let mut r = Self::zero();
        let mut x = self;
        for bit in 0..8 {
            if c >> bit & 1 != 0 {
                r = r.xor(x);
            }
            x = x.mul2();
        }
        r
    }
}
