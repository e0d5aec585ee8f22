//! Arithmetic in GF(2^8) as Linux md's RAID-6 uses it: reduction polynomial
//! x^8 + x^4 + x^3 + x^2 + 1 (0x11d), generator g = {02}
//! (../shared/docs/md-format.md §5.4; the same field as ISA-L, OpenZFS and SnapRAID).
//!
//! All tables are built at compile time by `const fn`s, so there is no start-up cost and
//! nothing to get out of sync.

/// Low byte of the reduction polynomial 0x11d.
pub const POLY: u8 = 0x1d;

/// Multiply by the generator {02}: shift left and reduce.
#[inline(always)]
pub const fn mul2(a: u8) -> u8 {
    (a << 1) ^ if a & 0x80 != 0 { POLY } else { 0 }
}

const fn build_exp() -> [u8; 512] {
    let mut t = [0u8; 512];
    let mut x: u8 = 1;
    let mut i = 0;
    while i < 512 {
        t[i] = x;
        x = mul2(x);
        i += 1;
    }
    t
}

const fn build_log() -> [u8; 256] {
    let exp = build_exp();
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 255 {
        t[exp[i] as usize] = i as u8;
        i += 1;
    }
    t
}

/// `EXP[i] = g^i`, doubled in length so that `EXP[log a + log b]` needs no reduction mod 255.
pub static EXP: [u8; 512] = build_exp();
/// `LOG[a]` for a != 0 (LOG[0] is meaningless and set to 0).
pub static LOG: [u8; 256] = build_log();

/// Product of two field elements.
#[inline]
pub fn mul(a: u8, b: u8) -> u8 {
    if a == 0 || b == 0 {
        0
    } else {
        EXP[LOG[a as usize] as usize + LOG[b as usize] as usize]
    }
}

/// Multiplicative inverse; `inv(0)` is defined as 0 (callers never divide by zero: the
/// recovery coefficients below are only formed for distinct slots).
#[inline]
pub fn inv(a: u8) -> u8 {
    if a == 0 {
        0
    } else {
        EXP[255 - LOG[a as usize] as usize]
    }
}

/// g^e for any exponent (reduced mod 255, the order of g).
#[inline]
pub fn pow2(e: usize) -> u8 {
    EXP[e % 255]
}

/// Coefficients for rebuilding two lost data blocks in syndrome slots x < y
/// from Δp = P ⊕ P' and Δq = Q ⊕ Q' (P', Q' computed with the lost slots as zero):
///
/// ```text
/// Δp = Dx ⊕ Dy,  Δq = g^x·Dx ⊕ g^y·Dy
/// Dy = Δp · (g^(y−x) ⊕ 1)^−1  ⊕  Δq · (g^x ⊕ g^y)^−1,   Dx = Dy ⊕ Δp
/// ```
///
/// Returns `(a, b)` with `Dy = a·Δp ⊕ b·Δq` (Anvin, "The mathematics of RAID-6").
pub fn two_data_coefficients(x: usize, y: usize) -> (u8, u8) {
    debug_assert!(x < y && y < 255);
    let a = inv(pow2(y - x) ^ 1);
    let b = inv(pow2(x) ^ pow2(y));
    (a, b)
}

/// Split-nibble product tables for multiplying by the constant `c`:
/// `c·v = lo[v & 15] ⊕ hi[v >> 4]` (multiplication distributes over ⊕). This is the
/// form a byte shuffle (pshufb) evaluates 16 or 32 bytes at a time.
pub fn nibble_tables(c: u8) -> ([u8; 16], [u8; 16]) {
    let mut lo = [0u8; 16];
    let mut hi = [0u8; 16];
    for i in 0..16u8 {
        lo[i as usize] = mul(c, i);
        hi[i as usize] = mul(c, i << 4);
    }
    (lo, hi)
}

/// The 8×8 bit matrix of "multiply by `c`" in the operand layout of the GFNI instruction
/// `gf2p8affineqb` (result bit i = parity(byte (7 − i) of the matrix AND x)). Multiplying
/// by a constant is linear over GF(2) whatever the polynomial, so one affine instruction
/// multiplies by any constant of our 0x11d field (the instruction's own `gf2p8mulb` is
/// hard-wired to AES's 0x11b and cannot be used).
pub const fn gfni_matrix(c: u8) -> u64 {
    // Column j of the matrix is c·2^j; row i collects bit i of every column.
    let mut cols = [0u8; 8];
    let mut col = c;
    let mut j = 0;
    while j < 8 {
        cols[j] = col;
        col = mul2(col);
        j += 1;
    }
    let mut m = 0u64;
    let mut i = 0;
    while i < 8 {
        let mut row = 0u8;
        let mut j = 0;
        while j < 8 {
            row |= ((cols[j] >> i) & 1) << j;
            j += 1;
        }
        m |= (row as u64) << (8 * (7 - i));
        i += 1;
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slow_mul(mut a: u8, mut b: u8) -> u8 {
        let mut r = 0u8;
        while b != 0 {
            if b & 1 != 0 {
                r ^= a;
            }
            a = mul2(a);
            b >>= 1;
        }
        r
    }

    #[test]
    fn tables_agree_with_shift_and_add() {
        for a in 0..=255u8 {
            for b in 0..=255u8 {
                assert_eq!(mul(a, b), slow_mul(a, b), "{a} * {b}");
            }
        }
    }

    #[test]
    fn inverse_and_generator() {
        for a in 1..=255u8 {
            assert_eq!(mul(a, inv(a)), 1);
        }
        // g generates the whole multiplicative group: 255 distinct powers.
        let mut seen = [false; 256];
        for e in 0..255 {
            seen[pow2(e) as usize] = true;
        }
        assert_eq!(seen.iter().filter(|s| **s).count(), 255);
        assert!(!seen[0]);
    }

    #[test]
    fn nibble_tables_multiply() {
        for c in [0u8, 1, 2, 0x1d, 0x8e, 0xff] {
            let (lo, hi) = nibble_tables(c);
            for v in 0..=255u8 {
                assert_eq!(lo[(v & 15) as usize] ^ hi[(v >> 4) as usize], mul(c, v));
            }
        }
    }

    /// A software model of `gf2p8affineqb` (Intel SDM) applied to the matrix.
    #[test]
    fn gfni_matrix_multiplies() {
        for c in 0..=255u8 {
            let m = gfni_matrix(c);
            for x in 0..=255u8 {
                let mut y = 0u8;
                for i in 0..8 {
                    let row = (m >> (8 * (7 - i))) as u8;
                    y |= (((row & x).count_ones() & 1) as u8) << i;
                }
                assert_eq!(y, mul(c, x), "{c} * {x}");
            }
        }
    }

    #[test]
    fn two_data_coefficients_solve_the_system() {
        for x in 0..20 {
            for y in x + 1..21 {
                let (a, b) = two_data_coefficients(x, y);
                for (dx, dy) in [(1u8, 2u8), (0x55, 0xaa), (0, 7), (9, 0)] {
                    let dp = dx ^ dy;
                    let dq = mul(pow2(x), dx) ^ mul(pow2(y), dy);
                    let ry = mul(a, dp) ^ mul(b, dq);
                    assert_eq!(ry, dy);
                    assert_eq!(ry ^ dp, dx);
                }
            }
        }
    }
}
