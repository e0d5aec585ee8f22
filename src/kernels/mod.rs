//! Parity and recovery kernels, and the one place that chooses between them.
//!
//! | kernel   | width    | needs            | constant multiply      |
//! |----------|----------|------------------|------------------------|
//! | `scalar` | 1 byte   | nothing          | log/exp tables         |
//! | `swar`   | 8 bytes  | nothing          | bit-serial doublings   |
//! | `sse2`   | 16 bytes | SSE2             | bit-serial doublings   |
//! | `ssse3`  | 16 bytes | SSSE3            | `pshufb` nibble tables |
//! | `avx2`   | 32 bytes | AVX2             | `vpshufb` nibble tables|
//! | `avx512` | 64 bytes | AVX-512 F + BW   | `vpshufb` nibble tables|
//! | `avx512gfni` | 64 bytes | AVX-512 F + BW, GFNI | one `vgf2p8affineqb` |
//!
//! `scalar` is the oracle; every other kernel is the single template in `generic.rs`
//! instantiated for its vector type inside a `#[target_feature]` function, with the tail
//! handled by a one-vector instance and then by `scalar`.
//!
//! [`Kernel::active`] is chosen once per process: `FASTRAID_KERNEL=<name>` if set, otherwise
//! the fastest available kernel measured on a short in-cache P+Q and XOR run (on AMD Zen,
//! 128-bit kernels can beat 256-bit ones, so "widest wins" is not a safe rule).
//!
//! Every entry point checks that the kernel is available on this CPU and that all slices
//! have the output's length; that is what makes the `unsafe` calls below sound.

mod generic;
mod scalar;
mod swar;
#[cfg(target_arch = "x86_64")]
mod x86_64 {
    pub(crate) mod avx2;
    pub(crate) mod avx512;
    pub(crate) mod avx512_gfni;
    pub(crate) mod sse2;
    pub(crate) mod ssse3;
}

use crate::error::{invalid, Error, Result};
use crate::gf256;
use std::sync::OnceLock;
use std::time::Instant;

/// One implementation of the parity maths.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kernel {
    Scalar,
    Swar,
    Sse2,
    Ssse3,
    Avx2,
    Avx512,
    Avx512Gfni,
}

impl Kernel {
    /// Every kernel this build knows, slowest first.
    pub const ALL: [Kernel; 7] = [
        Kernel::Scalar,
        Kernel::Swar,
        Kernel::Sse2,
        Kernel::Ssse3,
        Kernel::Avx2,
        Kernel::Avx512,
        Kernel::Avx512Gfni,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kernel::Scalar => "scalar",
            Kernel::Swar => "swar",
            Kernel::Sse2 => "sse2",
            Kernel::Ssse3 => "ssse3",
            Kernel::Avx2 => "avx2",
            Kernel::Avx512 => "avx512",
            Kernel::Avx512Gfni => "avx512gfni",
        }
    }

    /// Whether this CPU can run the kernel.
    pub fn is_available(self) -> bool {
        match self {
            Kernel::Scalar | Kernel::Swar => true,
            #[cfg(target_arch = "x86_64")]
            Kernel::Sse2 => is_x86_feature_detected!("sse2"),
            #[cfg(target_arch = "x86_64")]
            Kernel::Ssse3 => is_x86_feature_detected!("ssse3"),
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => is_x86_feature_detected!("avx2"),
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => {
                is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512bw")
            }
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512Gfni => Kernel::Avx512.is_available() && is_x86_feature_detected!("gfni"),
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// The kernels this CPU can run, slowest first.
    pub fn available() -> Vec<Kernel> {
        Kernel::ALL
            .into_iter()
            .filter(|k| k.is_available())
            .collect()
    }

    /// The kernel called `name`, if it exists and this CPU can run it.
    pub fn by_name(name: &str) -> Result<Kernel> {
        let k = Kernel::ALL
            .into_iter()
            .find(|k| k.name() == name)
            .ok_or_else(|| {
                Error::UnknownKernel(format!(
                    "kernel: unknown kernel {name:?} (known: {})",
                    Kernel::ALL.map(Kernel::name).join(", ")
                ))
            })?;
        if !k.is_available() {
            return Err(Error::UnknownKernel(format!(
                "kernel: {name:?} is not supported by this CPU"
            )));
        }
        Ok(k)
    }

    /// The process-wide default: `FASTRAID_KERNEL` if set, else the fastest measured.
    /// An unusable `FASTRAID_KERNEL` is an error every time it is consulted.
    pub fn active() -> Result<Kernel> {
        static ACTIVE: OnceLock<Result<Kernel>> = OnceLock::new();
        ACTIVE
            .get_or_init(|| match std::env::var("FASTRAID_KERNEL") {
                Ok(name) if !name.is_empty() => Kernel::by_name(&name)
                    .map_err(|e| Error::UnknownKernel(format!("FASTRAID_KERNEL: {e}"))),
                _ => Ok(Kernel::fastest()),
            })
            .clone()
    }

    /// Measure every available vector kernel on an in-cache stripe and return the fastest.
    ///
    /// Rounds are interleaved (kernel A, B, C, A, B, C, ...) and each kernel keeps its best
    /// round, so a burst of load from another process hits all candidates alike; a kernel
    /// later in [`Kernel::ALL`] (wider, newer) wins unless an earlier one is more than 5%
    /// faster. The whole measurement takes about a millisecond.
    fn fastest() -> Kernel {
        const K: usize = 6;
        const LEN: usize = 16 * 1024;
        let data: Vec<Vec<u8>> = (0..K)
            .map(|j| (0..LEN).map(|i| (i * 31 + j * 7) as u8).collect())
            .collect();
        let srcs: Vec<&[u8]> = data.iter().map(|d| d.as_slice()).collect();
        let (mut p, mut q) = (vec![0u8; LEN], vec![0u8; LEN]);
        let candidates: Vec<Kernel> = Kernel::available()
            .into_iter()
            .filter(|k| *k != Kernel::Scalar)
            .collect();
        let mut best = vec![f64::INFINITY; candidates.len()];
        for _ in 0..8 {
            for (k, b) in candidates.iter().zip(best.iter_mut()) {
                let start = Instant::now();
                for _ in 0..4 {
                    // Cannot fail: lengths are equal and the kernel is available.
                    let _ = k.pq_gen(&srcs, &mut p, &mut q);
                    let _ = k.xor_gen(&srcs, &mut p);
                }
                *b = b.min(start.elapsed().as_secs_f64());
            }
        }
        let mut choice = (Kernel::Swar, f64::INFINITY);
        for (k, t) in candidates.into_iter().zip(best) {
            if t < choice.1 * 1.05 {
                choice = (k, t.min(choice.1));
            }
        }
        choice.0
    }

    fn check_available(self) -> Result<()> {
        if self.is_available() {
            Ok(())
        } else {
            Err(Error::UnknownKernel(format!(
                "kernel: {:?} is not supported by this CPU",
                self.name()
            )))
        }
    }

    /// `dst = ⊕ srcs`. All slices must have `dst`'s length; `srcs` must be non-empty.
    pub fn xor_gen(self, srcs: &[&[u8]], dst: &mut [u8]) -> Result<()> {
        self.check_available()?;
        check_lengths(srcs.iter().copied(), dst.len())?;
        if srcs.is_empty() {
            return Err(invalid!("data: no blocks"));
        }
        // SAFETY (every arm): availability and lengths were checked just above.
        match self {
            Kernel::Scalar => scalar::xor_gen(srcs, dst, 0),
            Kernel::Swar => unsafe { isa::swar::xor_gen(srcs, dst) },
            #[cfg(target_arch = "x86_64")]
            Kernel::Sse2 => unsafe { isa::sse2::xor_gen(srcs, dst) },
            #[cfg(target_arch = "x86_64")]
            Kernel::Ssse3 => unsafe { isa::ssse3::xor_gen(srcs, dst) },
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => unsafe { isa::avx2::xor_gen(srcs, dst) },
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => unsafe { isa::avx512::xor_gen(srcs, dst) },
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512Gfni => unsafe { isa::avx512gfni::xor_gen(srcs, dst) },
            #[cfg(not(target_arch = "x86_64"))]
            _ => unreachable_unavailable(),
        }
        Ok(())
    }

    /// P and Q of `srcs` (syndrome slot j = index in `srcs`).
    pub fn pq_gen(self, srcs: &[&[u8]], p: &mut [u8], q: &mut [u8]) -> Result<()> {
        self.check_available()?;
        check_lengths(srcs.iter().copied(), p.len())?;
        check_lengths(std::iter::once(&*q), p.len())?;
        if srcs.is_empty() {
            return Err(invalid!("data: no blocks"));
        }
        // SAFETY (every arm): availability and lengths were checked just above.
        match self {
            Kernel::Scalar => scalar::pq_gen(srcs, p, q, 0),
            Kernel::Swar => unsafe { isa::swar::pq_gen(srcs, p, q) },
            #[cfg(target_arch = "x86_64")]
            Kernel::Sse2 => unsafe { isa::sse2::pq_gen(srcs, p, q) },
            #[cfg(target_arch = "x86_64")]
            Kernel::Ssse3 => unsafe { isa::ssse3::pq_gen(srcs, p, q) },
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => unsafe { isa::avx2::pq_gen(srcs, p, q) },
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => unsafe { isa::avx512::pq_gen(srcs, p, q) },
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512Gfni => unsafe { isa::avx512gfni::pq_gen(srcs, p, q) },
            #[cfg(not(target_arch = "x86_64"))]
            _ => unreachable_unavailable(),
        }
        Ok(())
    }

    /// Rebuild the data blocks in syndrome slots `x < y` (the two `None`s of `srcs`) from the
    /// survivors and P, Q.
    #[allow(clippy::too_many_arguments)]
    pub fn recov_2data(
        self,
        srcs: &[Option<&[u8]>],
        p: &[u8],
        q: &[u8],
        x: usize,
        y: usize,
        dx: &mut [u8],
        dy: &mut [u8],
    ) -> Result<()> {
        self.check_available()?;
        let n = dx.len();
        check_lengths(srcs.iter().flatten().copied(), n)?;
        check_lengths([p, q, &*dy], n)?;
        if !(x < y && y < srcs.len() && srcs[x].is_none() && srcs[y].is_none()) || y >= 255 {
            return Err(invalid!(
                "data: lost slots {x} and {y} do not match the blocks given"
            ));
        }
        let (a, b) = gf256::two_data_coefficients(x, y);
        // SAFETY (every arm): availability and lengths were checked just above.
        match self {
            Kernel::Scalar => scalar::recov_2data(srcs, p, q, dx, dy, a, b, 0),
            Kernel::Swar => unsafe { isa::swar::recov_2data(srcs, p, q, dx, dy, a, b) },
            #[cfg(target_arch = "x86_64")]
            Kernel::Sse2 => unsafe { isa::sse2::recov_2data(srcs, p, q, dx, dy, a, b) },
            #[cfg(target_arch = "x86_64")]
            Kernel::Ssse3 => unsafe { isa::ssse3::recov_2data(srcs, p, q, dx, dy, a, b) },
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => unsafe { isa::avx2::recov_2data(srcs, p, q, dx, dy, a, b) },
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => unsafe { isa::avx512::recov_2data(srcs, p, q, dx, dy, a, b) },
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512Gfni => unsafe { isa::avx512gfni::recov_2data(srcs, p, q, dx, dy, a, b) },
            #[cfg(not(target_arch = "x86_64"))]
            _ => unreachable_unavailable(),
        }
        Ok(())
    }

    /// Rebuild the data block in syndrome slot `x` (the one `None` of `srcs`) from the
    /// survivors and Q alone.
    pub fn recov_datap(
        self,
        srcs: &[Option<&[u8]>],
        q: &[u8],
        x: usize,
        dx: &mut [u8],
    ) -> Result<()> {
        self.check_available()?;
        let n = dx.len();
        check_lengths(srcs.iter().flatten().copied(), n)?;
        check_lengths([q], n)?;
        if !(x < srcs.len() && srcs[x].is_none()) || x >= 255 {
            return Err(invalid!(
                "data: lost slot {x} does not match the blocks given"
            ));
        }
        let c = gf256::inv(gf256::pow2(x));
        // SAFETY (every arm): availability and lengths were checked just above.
        match self {
            Kernel::Scalar => scalar::recov_datap(srcs, q, dx, c, 0),
            Kernel::Swar => unsafe { isa::swar::recov_datap(srcs, q, dx, c) },
            #[cfg(target_arch = "x86_64")]
            Kernel::Sse2 => unsafe { isa::sse2::recov_datap(srcs, q, dx, c) },
            #[cfg(target_arch = "x86_64")]
            Kernel::Ssse3 => unsafe { isa::ssse3::recov_datap(srcs, q, dx, c) },
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => unsafe { isa::avx2::recov_datap(srcs, q, dx, c) },
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => unsafe { isa::avx512::recov_datap(srcs, q, dx, c) },
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512Gfni => unsafe { isa::avx512gfni::recov_datap(srcs, q, dx, c) },
            #[cfg(not(target_arch = "x86_64"))]
            _ => unreachable_unavailable(),
        }
        Ok(())
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn unreachable_unavailable() {
    // check_available() returned early for every kernel this architecture lacks.
}

fn check_lengths<'a>(blocks: impl IntoIterator<Item = &'a [u8]>, n: usize) -> Result<()> {
    for (i, b) in blocks.into_iter().enumerate() {
        if b.len() != n {
            return Err(invalid!(
                "block {i}: length {} differs from the output length {n}",
                b.len()
            ));
        }
    }
    Ok(())
}

/// Per-ISA entry points: the generic template instantiated for a vector type, first `U`
/// vectors per iteration, then one, then the scalar tail.
macro_rules! isa_entry {
    ($name:ident, $V:ty, $U:literal, $RU:literal $(, $feat:literal)?) => {
        pub(super) mod $name {
            use super::super::{generic, scalar};
            use generic::Vector;
            type V = $V;

            /// # Safety
            /// The CPU supports the kernel and all slices have `dst`'s length.
            $(#[target_feature(enable = $feat)])?
            pub(crate) unsafe fn xor_gen(srcs: &[&[u8]], dst: &mut [u8]) {
                let i = generic::xor_gen::<V, $U>(srcs, dst, 0);
                let i = generic::xor_gen::<V, 1>(srcs, dst, i);
                scalar::xor_gen(srcs, dst, i);
            }

            /// # Safety
            /// As for `xor_gen`.
            $(#[target_feature(enable = $feat)])?
            pub(crate) unsafe fn pq_gen(srcs: &[&[u8]], p: &mut [u8], q: &mut [u8]) {
                let i = generic::pq_gen::<V, $U>(srcs, p, q, 0);
                let i = generic::pq_gen::<V, 1>(srcs, p, q, i);
                scalar::pq_gen(srcs, p, q, i);
            }

            /// # Safety
            /// As for `xor_gen`.
            $(#[target_feature(enable = $feat)])?
            pub(crate) unsafe fn recov_2data(
                srcs: &[Option<&[u8]>],
                p: &[u8],
                q: &[u8],
                dx: &mut [u8],
                dy: &mut [u8],
                a: u8,
                b: u8,
            ) {
                let (ta, tb) = (V::mul_table(a), V::mul_table(b));
                let i = generic::recov_2data::<V, $RU>(srcs, p, q, dx, dy, ta, tb, 0);
                let i = generic::recov_2data::<V, 1>(srcs, p, q, dx, dy, ta, tb, i);
                scalar::recov_2data(srcs, p, q, dx, dy, a, b, i);
            }

            /// # Safety
            /// As for `xor_gen`.
            $(#[target_feature(enable = $feat)])?
            pub(crate) unsafe fn recov_datap(
                srcs: &[Option<&[u8]>],
                q: &[u8],
                dx: &mut [u8],
                c: u8,
            ) {
                let t = V::mul_table(c);
                let i = generic::recov_datap::<V, $RU>(srcs, q, dx, t, 0);
                let i = generic::recov_datap::<V, 1>(srcs, q, dx, t, i);
                scalar::recov_datap(srcs, q, dx, c, i);
            }
        }
    };
}

mod isa {
    isa_entry!(swar, super::super::swar::W64, 4, 2);
    #[cfg(target_arch = "x86_64")]
    isa_entry!(sse2, crate::kernels::x86_64::sse2::V128, 4, 2, "sse2");
    #[cfg(target_arch = "x86_64")]
    isa_entry!(ssse3, crate::kernels::x86_64::ssse3::V128s, 4, 2, "ssse3");
    #[cfg(target_arch = "x86_64")]
    isa_entry!(avx2, crate::kernels::x86_64::avx2::V256, 4, 2, "avx2");
    #[cfg(target_arch = "x86_64")]
    isa_entry!(
        avx512,
        crate::kernels::x86_64::avx512::V512,
        4,
        2,
        "avx512f,avx512bw"
    );
    #[cfg(target_arch = "x86_64")]
    isa_entry!(
        avx512gfni,
        crate::kernels::x86_64::avx512_gfni::V512g,
        4,
        4,
        "avx512f,avx512bw,gfni"
    );
}
