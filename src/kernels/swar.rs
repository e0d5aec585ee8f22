//! Portable word-at-a-time kernel: eight bytes per `u64`, no SIMD instructions, so it runs
//! on any CPU and is what non-x86 machines get.

use super::generic::Vector;

/// Eight bytes in a machine word.
#[derive(Clone, Copy)]
pub(crate) struct W64(u64);

const LSB: u64 = 0x0101_0101_0101_0101;

impl Vector for W64 {
    const BYTES: usize = 8;
    /// Multiplication by a constant is done bit-serially (shift-and-add over its set bits),
    /// so the table is just the constant.
    type Mul = u8;

    #[inline(always)]
    unsafe fn load(ptr: *const u8) -> Self {
        // SAFETY: the caller guarantees 8 readable bytes; read_unaligned needs no alignment.
        W64(std::ptr::read_unaligned(ptr as *const u64))
    }
    #[inline(always)]
    unsafe fn store(self, ptr: *mut u8) {
        // SAFETY: the caller guarantees 8 writable bytes; write_unaligned needs no alignment.
        std::ptr::write_unaligned(ptr as *mut u64, self.0)
    }
    #[inline(always)]
    fn zero() -> Self {
        W64(0)
    }
    #[inline(always)]
    fn xor(self, o: Self) -> Self {
        W64(self.0 ^ o.0)
    }
    #[inline(always)]
    fn mul2(self) -> Self {
        // Shift each byte left within its lane, then reduce the lanes whose top bit fell out:
        // (top bit as 0/1 per byte) * 0x1d never carries across bytes.
        let hi = (self.0 >> 7) & LSB;
        W64(((self.0 << 1) & !LSB) ^ (hi * 0x1d))
    }
    #[inline(always)]
    fn mul_table(c: u8) -> u8 {
        c
    }
    #[inline(always)]
    fn mulc(self, c: u8) -> Self {
        let mut r = 0;
        let mut x = self;
        for bit in 0..8 {
            if c >> bit & 1 != 0 {
                r ^= x.0;
            }
            x = x.mul2();
        }
        W64(r)
    }
}
