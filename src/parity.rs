//! The parity operations users call: argument validation, then the chosen kernel, split
//! across threads (rayon) for large blocks.
//!
//! Conventions follow Linux md and ISA-L: P is the XOR of the data blocks, Q is
//! `Σ g^j·D_j` over GF(2^8) (0x11d, g = {02}) where j is the block's index (syndrome slot).

use crate::error::{invalid, Error, Result};
use crate::kernels::Kernel;
use rayon::prelude::*;

/// Q's coefficients g^j repeat with period 255, so Q identifies at most 255 slots.
pub const MAX_Q_BLOCKS: usize = 255;

/// Bytes touched per thread below which splitting does not pay. Measured on the 2-vCPU
/// AMD EPYC (Zen 4) dev/CI machine with the AVX-512 kernels: in cache (up to 1 MiB blocks)
/// a second thread always lost (0.15x-0.9x: the hand-off costs more than the work, and the
/// two vCPUs share caches); at 4-8 MiB per thread results went either way (0.9x-1.6x from
/// run to run); from 16 MiB per thread, where the work is memory-bound, it won or tied.
const MIN_BYTES_PER_THREAD: usize = 16 * 1024 * 1024;
/// Chunk boundaries are kept on a 4 KiB multiple so every chunk runs the vector loop.
const CHUNK_ALIGN: usize = 4096;

/// How an operation runs.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub kernel: Kernel,
    /// Number of threads; 0 picks by size (one per core for large blocks).
    pub threads: usize,
}

impl Options {
    /// The process default kernel, automatic threads.
    pub fn new() -> Result<Options> {
        Ok(Options {
            kernel: Kernel::active()?,
            threads: 0,
        })
    }

    /// Chunk length for blocks of `n` bytes: `n` itself when the work stays on one thread,
    /// and then callers must not go through rayon at all (even one task handed to the pool
    /// costs a cross-thread wake-up of several microseconds).
    fn chunk_len(&self, n: usize, blocks: usize) -> usize {
        let t = match self.threads {
            0 => rayon::current_num_threads()
                .min(n.saturating_mul(blocks.max(1)) / MIN_BYTES_PER_THREAD)
                .min(n / CHUNK_ALIGN),
            t => t,
        };
        if t <= 1 || n == 0 {
            return n.max(1);
        }
        n.div_ceil(t).div_ceil(CHUNK_ALIGN).max(1) * CHUNK_ALIGN
    }
}

fn sub<'a>(srcs: &[&'a [u8]], off: usize, len: usize) -> Vec<&'a [u8]> {
    srcs.iter().map(|s| &s[off..off + len]).collect()
}

fn sub_opt<'a>(srcs: &[Option<&'a [u8]>], off: usize, len: usize) -> Vec<Option<&'a [u8]>> {
    srcs.iter().map(|s| s.map(|s| &s[off..off + len])).collect()
}

/// Validate a list of data blocks: at least `min` of them, all of length `n`.
fn check_data(data: &[&[u8]], min: usize) -> Result<usize> {
    if data.len() < min {
        return Err(invalid!(
            "data: need at least {min} blocks, got {}",
            data.len()
        ));
    }
    let n = data[0].len();
    for (i, d) in data.iter().enumerate() {
        if d.len() != n {
            return Err(invalid!(
                "data[{i}]: length {} differs from data[0] length {n}",
                d.len()
            ));
        }
    }
    Ok(n)
}

fn check_len(name: &str, b: &[u8], n: usize) -> Result<()> {
    if b.len() != n {
        return Err(invalid!(
            "{name}: length {} differs from the data blocks' length {n}",
            b.len()
        ));
    }
    Ok(())
}

fn check_q_slots(k: usize) -> Result<()> {
    if k > MAX_Q_BLOCKS {
        return Err(invalid!(
            "data: Q covers at most {MAX_Q_BLOCKS} blocks, got {k}"
        ));
    }
    Ok(())
}

/// XOR (RAID-4/5 parity) of `srcs` into `dst`, without the two-block minimum.
fn xor_into(o: &Options, srcs: &[&[u8]], dst: &mut [u8]) -> Result<()> {
    let chunk = o.chunk_len(dst.len(), srcs.len());
    if chunk >= dst.len() {
        return o.kernel.xor_gen(srcs, dst);
    }
    dst.par_chunks_mut(chunk)
        .enumerate()
        .try_for_each(|(c, d)| o.kernel.xor_gen(&sub(srcs, c * chunk, d.len()), d))
}

/// `out = data[0] ⊕ data[1] ⊕ …` (at least two blocks).
pub fn xor_gen(o: &Options, data: &[&[u8]], out: &mut [u8]) -> Result<()> {
    let n = check_data(data, 2)?;
    check_len("out", out, n)?;
    xor_into(o, data, out)
}

/// RAID-6 P and Q of `data` (at least two blocks, at most 255).
pub fn pq_gen(o: &Options, data: &[&[u8]], p: &mut [u8], q: &mut [u8]) -> Result<()> {
    let n = check_data(data, 2)?;
    check_q_slots(data.len())?;
    check_len("p", p, n)?;
    check_len("q", q, n)?;
    let chunk = o.chunk_len(n, data.len());
    if chunk >= n {
        return o.kernel.pq_gen(data, p, q);
    }
    p.par_chunks_mut(chunk)
        .zip(q.par_chunks_mut(chunk))
        .enumerate()
        .try_for_each(|(c, (pc, qc))| o.kernel.pq_gen(&sub(data, c * chunk, pc.len()), pc, qc))
}

/// Work in cache-sized tiles when checking, so no full-size temporary is allocated.
const CHECK_TILE: usize = 64 * 1024;

/// Whether `p` is the XOR of `data`.
pub fn xor_check(o: &Options, data: &[&[u8]], p: &[u8]) -> Result<bool> {
    let n = check_data(data, 2)?;
    check_len("p", p, n)?;
    let mut tmp = vec![0u8; CHECK_TILE.min(n)];
    for off in (0..n).step_by(CHECK_TILE) {
        let len = CHECK_TILE.min(n - off);
        o.kernel.xor_gen(&sub(data, off, len), &mut tmp[..len])?;
        if tmp[..len] != p[off..off + len] {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Whether `p` and `q` match `data`: `(p_ok, q_ok)`.
pub fn pq_check(o: &Options, data: &[&[u8]], p: &[u8], q: &[u8]) -> Result<(bool, bool)> {
    let n = check_data(data, 2)?;
    check_q_slots(data.len())?;
    check_len("p", p, n)?;
    check_len("q", q, n)?;
    let t = CHECK_TILE.min(n);
    let (mut tp, mut tq) = (vec![0u8; t], vec![0u8; t]);
    let (mut p_ok, mut q_ok) = (true, true);
    for off in (0..n).step_by(CHECK_TILE) {
        let len = CHECK_TILE.min(n - off);
        o.kernel
            .pq_gen(&sub(data, off, len), &mut tp[..len], &mut tq[..len])?;
        p_ok &= tp[..len] == p[off..off + len];
        q_ok &= tq[..len] == q[off..off + len];
        if !p_ok && !q_ok {
            break;
        }
    }
    Ok((p_ok, q_ok))
}

/// Rebuild the lost data blocks (the `None`s of `data`, in index order) into `outs`.
///
/// Up to two losses among data, P and Q are covered: one data block from P (or from Q when
/// P is lost too), two data blocks from P and Q. P or Q themselves are not rebuilt here:
/// they are `pq_gen` of the completed data.
pub fn recover(
    o: &Options,
    data: &[Option<&[u8]>],
    p: Option<&[u8]>,
    q: Option<&[u8]>,
    outs: &mut [&mut [u8]],
) -> Result<()> {
    if data.len() < 2 {
        return Err(invalid!("data: need at least 2 blocks, got {}", data.len()));
    }
    // At most two lost blocks are rebuildable; count them all but keep only the first two.
    let mut lost_at = [0usize; 2];
    let mut lost_count = 0;
    for (i, _) in data.iter().enumerate().filter(|(_, d)| d.is_none()) {
        if lost_count < 2 {
            lost_at[lost_count] = i;
        }
        lost_count += 1;
    }
    let lost = &lost_at[..lost_count.min(2)];
    let lost_total = lost_count + usize::from(p.is_none()) + usize::from(q.is_none());
    let parity_left = usize::from(p.is_some()) + usize::from(q.is_some());
    if lost_count > parity_left || lost_total > 2 {
        return Err(Error::TooManyFailures(format!(
            "data: {} data block(s) lost{}{}: P and Q rebuild at most two losses in all",
            lost_count,
            if p.is_none() { ", P lost" } else { "" },
            if q.is_none() { ", Q lost" } else { "" },
        )));
    }
    // The block length comes from the survivors, which must agree. (Names are formatted
    // only on error: this runs on every call.)
    let mut n = None;
    let survivors = data
        .iter()
        .enumerate()
        .filter_map(|(i, d)| d.map(|d| (Some(i), "data", d)));
    let parity = [("p", p), ("q", q)]
        .into_iter()
        .filter_map(|(name, b)| b.map(|b| (None, name, b)));
    for (i, name, b) in survivors.chain(parity) {
        match n {
            None => n = Some(b.len()),
            Some(n) if b.len() != n => {
                let name = i.map_or(name.to_string(), |i| format!("{name}[{i}]"));
                return Err(invalid!(
                    "{name}: length {} differs from the other blocks' length {n}",
                    b.len()
                ));
            }
            Some(_) => {}
        }
    }
    let n = n.unwrap_or(0);
    if outs.len() != lost.len() {
        return Err(invalid!(
            "out: expected {} buffer(s), one per lost data block, got {}",
            lost.len(),
            outs.len()
        ));
    }
    if let Some(i) = outs.iter().position(|o| o.len() != n) {
        check_len(&format!("out[{i}]"), outs[i], n)?;
    }

    if lost.is_empty() {
        return Ok(());
    }
    match (lost, p, q) {
        // One data block and P survives: XOR of the surviving data and P.
        ([_], Some(p), _) => {
            let srcs: Vec<&[u8]> = data.iter().flatten().copied().chain([p]).collect();
            xor_into(o, &srcs, outs[0])
        }
        // One data block and P lost: from Q alone.
        (&[x], None, Some(q)) => {
            check_q_slots(data.len())?;
            let chunk = o.chunk_len(n, data.len());
            if chunk >= n {
                return o.kernel.recov_datap(data, q, x, outs[0]);
            }
            outs[0]
                .par_chunks_mut(chunk)
                .enumerate()
                .try_for_each(|(c, d)| {
                    let off = c * chunk;
                    o.kernel
                        .recov_datap(&sub_opt(data, off, d.len()), &q[off..off + d.len()], x, d)
                })
        }
        // Two data blocks: from P and Q.
        (&[x, y], Some(p), Some(q)) => {
            check_q_slots(data.len())?;
            let chunk = o.chunk_len(n, data.len());
            let (first, rest) = outs.split_at_mut(1);
            if chunk >= n {
                return o.kernel.recov_2data(data, p, q, x, y, first[0], rest[0]);
            }
            first[0]
                .par_chunks_mut(chunk)
                .zip(rest[0].par_chunks_mut(chunk))
                .enumerate()
                .try_for_each(|(c, (dx, dy))| {
                    let (off, len) = (c * chunk, dx.len());
                    o.kernel.recov_2data(
                        &sub_opt(data, off, len),
                        &p[off..off + len],
                        &q[off..off + len],
                        x,
                        y,
                        dx,
                        dy,
                    )
                })
        }
        // Excluded by the loss count above.
        _ => Err(Error::TooManyFailures(
            "data: too many blocks lost".to_string(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn opts(kernel: Kernel, threads: usize) -> Options {
        Options { kernel, threads }
    }

    /// Random stripe: k blocks of n bytes.
    fn stripe(k: usize, n: usize, seed: u64) -> Vec<Vec<u8>> {
        let mut x = seed | 1;
        (0..k)
            .map(|_| {
                (0..n)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        x as u8
                    })
                    .collect()
            })
            .collect()
    }

    fn refs(v: &[Vec<u8>]) -> Vec<&[u8]> {
        v.iter().map(|b| b.as_slice()).collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Every kernel, every thread count, unaligned starts: P, Q and every one- and
        /// two-block recovery equal the scalar kernel's results and the original data.
        #[test]
        fn every_kernel_matches_scalar(
            k in 2usize..34,
            n in prop_oneof![0usize..300, 300usize..5000],
            skew in 0usize..64,
            seed in any::<u64>(),
            threads in 0usize..4,
        ) {
            let raw = stripe(k, n + skew, seed);
            let data: Vec<&[u8]> = raw.iter().map(|b| &b[skew..]).collect();
            let s = opts(Kernel::Scalar, 1);
            let (mut p0, mut q0) = (vec![0u8; n], vec![0u8; n]);
            pq_gen(&s, &data, &mut p0, &mut q0).unwrap();
            let mut x0 = vec![0u8; n];
            xor_gen(&s, &data, &mut x0).unwrap();
            prop_assert_eq!(&x0, &p0);
            for kern in Kernel::available() {
                let o = opts(kern, threads);
                let (mut p, mut q) = (vec![0u8; n + 1], vec![0u8; n + 1]);
                pq_gen(&o, &data, &mut p[1..], &mut q[1..]).unwrap();
                prop_assert_eq!(&p[1..], &p0[..], "P {:?}", kern);
                prop_assert_eq!(&q[1..], &q0[..], "Q {:?}", kern);
                let mut x = vec![0u8; n];
                xor_gen(&o, &data, &mut x).unwrap();
                prop_assert_eq!(&x, &p0);
                prop_assert!(xor_check(&o, &data, &p0).unwrap());
                prop_assert_eq!(pq_check(&o, &data, &p0, &q0).unwrap(), (true, true));
                let a = (seed as usize) % k;
                let b = (a + 1 + (seed as usize >> 8) % (k - 1)) % k;
                let (a, b) = (a.min(b), a.max(b));
                let mut lost: Vec<Option<&[u8]>> = data.iter().map(|d| Some(*d)).collect();
                lost[a] = None;
                // one data block via P, via Q
                let mut r = vec![0u8; n];
                recover(&o, &lost, Some(&p0), None, &mut [&mut r]).unwrap();
                prop_assert_eq!(&r[..], data[a]);
                let mut r = vec![0u8; n];
                recover(&o, &lost, None, Some(&q0), &mut [&mut r]).unwrap();
                prop_assert_eq!(&r[..], data[a], "datap {:?} slot {}", kern, a);
                // two data blocks
                lost[b] = None;
                let (mut ra, mut rb) = (vec![0u8; n], vec![0u8; n]);
                recover(&o, &lost, Some(&p0), Some(&q0), &mut [&mut ra, &mut rb]).unwrap();
                prop_assert_eq!(&ra[..], data[a], "2data {:?} {} {}", kern, a, b);
                prop_assert_eq!(&rb[..], data[b]);
            }
        }
    }

    #[test]
    fn every_pair_of_losses_up_to_32_blocks() {
        let n = 200;
        for k in 2..=32 {
            let raw = stripe(k, n, k as u64);
            let data = refs(&raw);
            let (mut p, mut q) = (vec![0u8; n], vec![0u8; n]);
            let o = Options::new().unwrap();
            pq_gen(&o, &data, &mut p, &mut q).unwrap();
            for x in 0..k {
                for y in x + 1..k {
                    let mut lost: Vec<Option<&[u8]>> = data.iter().map(|d| Some(*d)).collect();
                    lost[x] = None;
                    lost[y] = None;
                    let (mut rx, mut ry) = (vec![0u8; n], vec![0u8; n]);
                    recover(&o, &lost, Some(&p), Some(&q), &mut [&mut rx, &mut ry]).unwrap();
                    assert_eq!((&rx[..], &ry[..]), (data[x], data[y]), "k={k} {x},{y}");
                }
            }
        }
    }

    #[test]
    fn checks_detect_corruption() {
        let raw = stripe(5, 4096, 9);
        let data = refs(&raw);
        let o = Options::new().unwrap();
        let (mut p, mut q) = (vec![0u8; 4096], vec![0u8; 4096]);
        pq_gen(&o, &data, &mut p, &mut q).unwrap();
        q[4000] ^= 1;
        assert_eq!(pq_check(&o, &data, &p, &q).unwrap(), (true, false));
        p[5] ^= 0x80;
        assert!(!xor_check(&o, &data, &p).unwrap());
        assert_eq!(pq_check(&o, &data, &p, &q).unwrap(), (false, false));
    }

    #[test]
    fn bad_arguments_are_errors() {
        let o = Options::new().unwrap();
        let a = [1u8; 8];
        let b = [2u8; 9];
        let mut out = [0u8; 8];
        assert!(xor_gen(&o, &[&a], &mut out).is_err());
        assert!(xor_gen(&o, &[&a, &b], &mut out).is_err());
        assert!(xor_gen(&o, &[&a, &a], &mut [0u8; 7]).is_err());
        let many: Vec<&[u8]> = vec![&a; 256];
        assert!(pq_gen(&o, &many, &mut [0u8; 8], &mut [0u8; 8]).is_err());
        let lost = [None, None, Some(&a[..])];
        let err = recover(
            &o,
            &lost,
            Some(&a),
            None,
            &mut [&mut [0u8; 8], &mut [0u8; 8]],
        );
        assert!(matches!(err, Err(Error::TooManyFailures(_))));
        let err = recover(&o, &[None, Some(&a[..])], Some(&a), Some(&a), &mut []);
        assert!(matches!(err, Err(Error::InvalidArgument(_))));
        assert!(Kernel::by_name("nonesuch").is_err());
    }
}
