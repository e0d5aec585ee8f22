//! The portable byte-at-a-time kernel: the oracle every other kernel is tested against,
//! and the tail handler of the vector kernels (hence the `start` offsets). Written for
//! clarity with safe indexing; callers guarantee equal lengths.

use crate::gf256::{mul, mul2};

pub(crate) fn xor_gen(srcs: &[&[u8]], dst: &mut [u8], start: usize) {
    for i in start..dst.len() {
        dst[i] = srcs.iter().fold(0, |acc, s| acc ^ s[i]);
    }
}

pub(crate) fn pq_gen(srcs: &[&[u8]], p: &mut [u8], q: &mut [u8], start: usize) {
    for i in start..p.len() {
        let (mut pb, mut qb) = (0u8, 0u8);
        for s in srcs.iter().rev() {
            pb ^= s[i];
            qb = mul2(qb) ^ s[i];
        }
        p[i] = pb;
        q[i] = qb;
    }
}

fn partial_syndrome(srcs: &[Option<&[u8]>], i: usize) -> (u8, u8) {
    let (mut pb, mut qb) = (0u8, 0u8);
    for s in srcs.iter().rev() {
        qb = mul2(qb);
        if let Some(s) = s {
            pb ^= s[i];
            qb ^= s[i];
        }
    }
    (pb, qb)
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn recov_2data(
    srcs: &[Option<&[u8]>],
    p: &[u8],
    q: &[u8],
    dx: &mut [u8],
    dy: &mut [u8],
    a: u8,
    b: u8,
    start: usize,
) {
    for i in start..dx.len() {
        let (pp, qq) = partial_syndrome(srcs, i);
        let dp = p[i] ^ pp;
        let y = mul(a, dp) ^ mul(b, q[i] ^ qq);
        dy[i] = y;
        dx[i] = y ^ dp;
    }
}

pub(crate) fn recov_datap(srcs: &[Option<&[u8]>], q: &[u8], dx: &mut [u8], c: u8, start: usize) {
    for i in start..dx.len() {
        let (_, qq) = partial_syndrome(srcs, i);
        dx[i] = mul(c, q[i] ^ qq);
    }
}
