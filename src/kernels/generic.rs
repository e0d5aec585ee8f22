//! The hot loops, written once over a [`Vector`] type and instantiated for each ISA inside a
//! `#[target_feature]` function (the memchr / Linux `int.uc` approach: one template, many
//! unrolled instances). Every function here processes whole groups of `U` vectors from byte
//! `start` and returns where it stopped; the caller finishes the tail with a narrower
//! instance and finally with the scalar kernel.
//!
//! # Safety contract (all functions)
//! The caller guarantees that every slice involved is at least as long as the output
//! slice(s) (the dispatcher in `kernels/mod.rs` checks this before calling) and that the
//! CPU supports the instructions of `V` (the dispatcher only builds a `V` after detection).
//! Under those conditions every pointer formed below stays inside its slice: the loops run
//! while `i + U * V::BYTES <= len`.

/// A register's worth of bytes and the GF(2^8) operations RAID-6 needs on it.
pub(crate) trait Vector: Copy {
    /// Bytes per vector.
    const BYTES: usize;
    /// Precomputed form of a constant multiplier.
    type Mul: Copy;
    /// # Safety
    /// `ptr..ptr + BYTES` must be readable; no alignment is required.
    unsafe fn load(ptr: *const u8) -> Self;
    /// # Safety
    /// `ptr..ptr + BYTES` must be writable; no alignment is required.
    unsafe fn store(self, ptr: *mut u8);
    fn zero() -> Self;
    fn xor(self, other: Self) -> Self;
    /// Multiply every byte by {02} in GF(2^8) mod 0x11d.
    fn mul2(self) -> Self;
    fn mul_table(c: u8) -> Self::Mul;
    /// Multiply every byte by the constant described by `t`.
    fn mulc(self, t: Self::Mul) -> Self;
}

/// `dst = srcs[0] ⊕ srcs[1] ⊕ …`, one pass: every source is read once, `dst` written once.
///
/// # Safety
/// See the module's safety contract; `srcs` is non-empty.
#[inline(always)]
pub(crate) unsafe fn xor_gen<V: Vector, const U: usize>(
    srcs: &[&[u8]],
    dst: &mut [u8],
    start: usize,
) -> usize {
    let Some((first, rest)) = srcs.split_first() else {
        return start;
    };
    let step = U * V::BYTES;
    let d = dst.as_mut_ptr();
    let mut i = start;
    while i + step <= dst.len() {
        let mut acc = [V::zero(); U];
        let f = first.as_ptr().add(i);
        for (u, a) in acc.iter_mut().enumerate() {
            *a = V::load(f.add(u * V::BYTES));
        }
        for s in rest {
            let sp = s.as_ptr().add(i);
            for (u, a) in acc.iter_mut().enumerate() {
                *a = a.xor(V::load(sp.add(u * V::BYTES)));
            }
        }
        for (u, a) in acc.iter().enumerate() {
            a.store(d.add(i + u * V::BYTES));
        }
        i += step;
    }
    i
}

/// P = ⊕ D_j and Q = Σ g^j·D_j by Horner's rule from the highest slot down
/// (`q = 2·q ⊕ D_j`), one pass over the sources.
///
/// # Safety
/// See the module's safety contract; `srcs` is non-empty.
#[inline(always)]
pub(crate) unsafe fn pq_gen<V: Vector, const U: usize>(
    srcs: &[&[u8]],
    p: &mut [u8],
    q: &mut [u8],
    start: usize,
) -> usize {
    let Some((top, rest)) = srcs.split_last() else {
        return start;
    };
    let step = U * V::BYTES;
    let (pp, qp) = (p.as_mut_ptr(), q.as_mut_ptr());
    let mut i = start;
    while i + step <= p.len() {
        let mut pa = [V::zero(); U];
        let mut qa = [V::zero(); U];
        let t = top.as_ptr().add(i);
        for u in 0..U {
            pa[u] = V::load(t.add(u * V::BYTES));
            qa[u] = pa[u];
        }
        for s in rest.iter().rev() {
            let sp = s.as_ptr().add(i);
            for u in 0..U {
                let d = V::load(sp.add(u * V::BYTES));
                pa[u] = pa[u].xor(d);
                qa[u] = qa[u].mul2().xor(d);
            }
        }
        for u in 0..U {
            pa[u].store(pp.add(i + u * V::BYTES));
            qa[u].store(qp.add(i + u * V::BYTES));
        }
        i += step;
    }
    i
}

/// P' and Q' of the surviving slots at byte `i` (lost slots count as zero blocks).
#[inline(always)]
unsafe fn partial_syndrome<V: Vector, const U: usize>(
    srcs: &[Option<&[u8]>],
    i: usize,
) -> ([V; U], [V; U]) {
    let mut pa = [V::zero(); U];
    let mut qa = [V::zero(); U];
    for s in srcs.iter().rev() {
        for q in qa.iter_mut() {
            *q = q.mul2();
        }
        if let Some(s) = s {
            let sp = s.as_ptr().add(i);
            for u in 0..U {
                let d = V::load(sp.add(u * V::BYTES));
                pa[u] = pa[u].xor(d);
                qa[u] = qa[u].xor(d);
            }
        }
    }
    (pa, qa)
}

/// Two lost data blocks in slots x < y, fused into one pass (Linux `raid6_2data_recov`
/// does the same in two): with Δp = P ⊕ P', Δq = Q ⊕ Q',
/// `Dy = a·Δp ⊕ b·Δq` and `Dx = Dy ⊕ Δp` (coefficients from
/// [`crate::gf256::two_data_coefficients`]).
///
/// # Safety
/// See the module's safety contract.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(crate) unsafe fn recov_2data<V: Vector, const U: usize>(
    srcs: &[Option<&[u8]>],
    p: &[u8],
    q: &[u8],
    dx: &mut [u8],
    dy: &mut [u8],
    a: V::Mul,
    b: V::Mul,
    start: usize,
) -> usize {
    let step = U * V::BYTES;
    let (xp, yp) = (dx.as_mut_ptr(), dy.as_mut_ptr());
    let mut i = start;
    while i + step <= dx.len() {
        let (pa, qa) = partial_syndrome::<V, U>(srcs, i);
        for u in 0..U {
            let o = i + u * V::BYTES;
            let dp = V::load(p.as_ptr().add(o)).xor(pa[u]);
            let dq = V::load(q.as_ptr().add(o)).xor(qa[u]);
            let y = dp.mulc(a).xor(dq.mulc(b));
            y.store(yp.add(o));
            y.xor(dp).store(xp.add(o));
        }
        i += step;
    }
    i
}

/// One lost data block (slot x) and a lost P: `Dx = (Q ⊕ Q')·g^(−x)`
/// (Linux `raid6_datap_recov`), one pass.
///
/// # Safety
/// See the module's safety contract.
#[inline(always)]
pub(crate) unsafe fn recov_datap<V: Vector, const U: usize>(
    srcs: &[Option<&[u8]>],
    q: &[u8],
    dx: &mut [u8],
    c: V::Mul,
    start: usize,
) -> usize {
    let step = U * V::BYTES;
    let xp = dx.as_mut_ptr();
    let mut i = start;
    while i + step <= dx.len() {
        let (_, qa) = partial_syndrome::<V, U>(srcs, i);
        for (u, qv) in qa.iter().enumerate() {
            let o = i + u * V::BYTES;
            V::load(q.as_ptr().add(o)).xor(*qv).mulc(c).store(xp.add(o));
        }
        i += step;
    }
    i
}
