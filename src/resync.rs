//! Make the redundancy of an md array agree with its data: recompute parity (P, or P and
//! Q) for RAID4/5/6, copy mirrors for RAID1/RAID10, over a range of the array.
//!
//! This is what md calls a *resync* (and, in check mode, a *scrub*). `create` runs it over
//! members that are not known to be zero (`shared/docs/md-format.md` §8.7 item 9: the
//! kernel never verifies that a clean array is consistent), and an array stopped
//! uncleanly needs it from its `resync_offset` on (§8.2).
//!
//! Units follow md's `resync_offset`: **per-member sectors** (relative to `data_offset`)
//! for RAID1/4/5/6 and **array sectors** for RAID10; [`span_sectors`] is the whole range.
//! RAID0 and linear have no redundancy and a span of 0.
//!
//! I/O is done in batches of several stripes (by default about 4 MiB per member), read
//! with one positioned read per member, and only what differs is written back (so a
//! resync of an already consistent array only reads). Mismatches are counted in 4 KiB
//! pages of 8 sectors, the unit md's `mismatch_cnt` grows by.
//!
//! RAID6 detail: Q weighs each data block by `g^slot`, and the slot order is by member
//! position as [`StripeRoles::members_by_slot`] gives it, not by logical data index; the
//! two differ for the asymmetric layouts.
//!
//! Missing members: a resync after an unclean stop must not run degraded (a missing data
//! block cannot be told from the parity that is being questioned; the kernel refuses to
//! start such an array), so [`Missing::Refuse`] is the default. `create` passes
//! [`Missing::Zero`]: a missing data block is *defined* as zeros, the parity present is
//! written to match, and the kernel then reads zeros in its place.

use std::fs::File;
use std::ops::{ControlFlow, Range};
use std::os::unix::fs::FileExt;

use crate::error::{invalid, Error, Result};
use crate::layout::{Geometry, Level, Role, SECTOR_SIZE};
use crate::parity::{self, Options};

/// Bytes compared as one unit when counting mismatches (md's `STRIPE_SIZE`).
pub const MISMATCH_UNIT: usize = 4096;

/// Default bytes read per member per batch.
pub const DEFAULT_BATCH_BYTES: usize = 4 * 1024 * 1024;

/// One member as the resync sees it.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub file: &'a File,
    /// Byte offset of the member's data area (`data_offset × 512`).
    pub data_offset: u64,
}

/// What to do about members given as `None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Missing {
    /// Refuse to run (a degraded resync cannot tell good data from bad).
    #[default]
    Refuse,
    /// Treat missing data as zeros and make the parity present match (array creation).
    Zero,
}

/// How a resync runs.
#[derive(Debug, Clone, Copy)]
pub struct ResyncOptions {
    /// Write what differs (`true`, md's "repair"/resync) or only count it (md's "check").
    pub repair: bool,
    pub missing: Missing,
    pub parity: Options,
    /// Approximate bytes read per member per batch (rounded to whole chunks/stripes).
    pub batch_bytes: usize,
}

impl ResyncOptions {
    /// Repair, refuse missing members, the default parity kernel, 4 MiB batches.
    pub fn new() -> Result<ResyncOptions> {
        Ok(ResyncOptions {
            repair: true,
            missing: Missing::Refuse,
            parity: Options::new()?,
            batch_bytes: DEFAULT_BATCH_BYTES,
        })
    }
}

/// What a resync did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResyncStats {
    /// Bytes of the span covered (span units × 512).
    pub bytes_done: u64,
    /// Sectors found inconsistent, counted in 8-sector pages like md's `mismatch_cnt`.
    pub mismatch_sectors: u64,
    /// Bytes written back to members.
    pub bytes_written: u64,
}

/// The resync span of a geometry in its units (see the module doc): per-member used
/// sectors for RAID1/4/5/6, array sectors for RAID10, 0 for RAID0 and linear.
pub fn span_sectors(geom: &Geometry) -> u64 {
    match geom.level() {
        Level::Raid4 | Level::Raid5 | Level::Raid6 => {
            geom.stripes().unwrap_or(0) * u64::from(geom.chunk_sectors())
        }
        Level::Raid1 => geom.dev_sectors(),
        Level::Raid10 => geom.array_sectors(),
        Level::Raid0 | Level::Linear => 0,
    }
}

/// Resync `range` (span units, see the module doc; rounded outwards to whole chunks and
/// clipped to [`span_sectors`]) of the array `geom` over `members` (indexed by slot).
/// `progress(done, total)` is called in bytes of the span after every batch; returning
/// `ControlFlow::Break` stops the resync with [`Error::Cancelled`] after the batch (whatever
/// was written stays written and is consistent).
///
/// The caller makes the writes durable (`File::sync_all`) before recording the array as
/// clean.
pub fn resync(
    geom: &Geometry,
    members: &[Option<Target<'_>>],
    range: Range<u64>,
    opts: &ResyncOptions,
    progress: &mut dyn FnMut(u64, u64) -> ControlFlow<()>,
) -> Result<ResyncStats> {
    if members.len() != geom.raid_disks() as usize {
        return Err(invalid!(
            "members: {} given for an array of {} devices",
            members.len(),
            geom.raid_disks()
        ));
    }
    let missing = members.iter().filter(|m| m.is_none()).count();
    if missing > 0 && opts.missing == Missing::Refuse {
        return Err(invalid!(
            "members: {missing} missing; a resync of a degraded array cannot tell good data \
             from bad (md refuses to start a dirty degraded array)"
        ));
    }
    let span = span_sectors(geom);
    let c = u64::from(geom.chunk_sectors()).max(1);
    let start = (range.start / c * c).min(span);
    let end = range.end.div_ceil(c).saturating_mul(c).min(span);
    let mut stats = ResyncStats::default();
    if start >= end {
        return Ok(stats);
    }
    let total = (end - start) * SECTOR_SIZE;
    let mut report = |stats: &mut ResyncStats, done_sectors: u64| -> Result<()> {
        stats.bytes_done = done_sectors * SECTOR_SIZE;
        match progress(stats.bytes_done, total) {
            ControlFlow::Continue(()) => Ok(()),
            ControlFlow::Break(()) => Err(Error::Cancelled(format!(
                "resync stopped by the caller after {} of {total} bytes",
                stats.bytes_done
            ))),
        }
    };
    match geom.level() {
        Level::Raid4 | Level::Raid5 | Level::Raid6 => {
            let per_batch = (opts.batch_bytes as u64 / (c * SECTOR_SIZE)).max(1);
            let (s0, s1) = (start / c, end / c);
            let mut s = s0;
            while s < s1 {
                let n = per_batch.min(s1 - s);
                parity_batch(geom, members, s, n, opts, &mut stats)?;
                s += n;
                report(&mut stats, (s - s0) * c)?;
            }
        }
        Level::Raid1 => {
            let per_batch = (opts.batch_bytes as u64 / SECTOR_SIZE).max(c);
            let mut a = start;
            while a < end {
                let n = per_batch.min(end - a);
                raid1_batch(members, a, n, opts, &mut stats)?;
                a += n;
                report(&mut stats, a - start)?;
            }
        }
        Level::Raid10 => {
            let per_batch = (opts.batch_bytes as u64 / SECTOR_SIZE / c).max(1) * c;
            let mut a = start;
            while a < end {
                let n = per_batch.min(end - a);
                raid10_batch(geom, members, a, n, opts, &mut stats)?;
                a += n;
                report(&mut stats, a - start)?;
            }
        }
        Level::Raid0 | Level::Linear => {}
    }
    Ok(stats)
}

// ================================================================================
// Helpers
// ================================================================================

fn io_err(what: &str, member: usize, offset: u64, e: std::io::Error) -> Error {
    Error::Io(format!(
        "member {member}: {what} at byte {offset} failed: {e}"
    ))
}

fn read_at(t: &Target<'_>, member: usize, buf: &mut [u8], dev_byte: u64) -> Result<()> {
    let off = t.data_offset + dev_byte;
    t.file
        .read_exact_at(buf, off)
        .map_err(|e| io_err("read", member, off, e))
}

fn write_at(t: &Target<'_>, member: usize, buf: &[u8], dev_byte: u64) -> Result<()> {
    let off = t.data_offset + dev_byte;
    t.file
        .write_all_at(buf, off)
        .map_err(|e| io_err("write", member, off, e))
}

/// Number of [`MISMATCH_UNIT`] pages in which `a` and `b` differ.
fn differing_pages(a: &[u8], b: &[u8]) -> u64 {
    a.chunks(MISMATCH_UNIT)
        .zip(b.chunks(MISMATCH_UNIT))
        .filter(|(x, y)| x != y)
        .count() as u64
}

/// Make `dst` (read from `target` at `dev_byte`) equal to `want`: count the differing
/// pages and, when repairing, write back each differing run of pages.
fn reconcile(
    target: &Target<'_>,
    member: usize,
    dev_byte: u64,
    dst: &[u8],
    want: &[u8],
    repair: bool,
    stats: &mut ResyncStats,
) -> Result<()> {
    let pages = differing_pages(dst, want);
    if pages == 0 {
        return Ok(());
    }
    stats.mismatch_sectors += pages * (MISMATCH_UNIT as u64 / SECTOR_SIZE);
    if !repair {
        return Ok(());
    }
    // Coalesce runs of differing pages into one write each.
    let mut i = 0;
    let len = dst.len();
    while i < len {
        let e = (i + MISMATCH_UNIT).min(len);
        if dst[i..e] == want[i..e] {
            i = e;
            continue;
        }
        let mut j = e;
        while j < len {
            let f = (j + MISMATCH_UNIT).min(len);
            if dst[j..f] == want[j..f] {
                break;
            }
            j = f;
        }
        write_at(target, member, &want[i..j], dev_byte + i as u64)?;
        stats.bytes_written += (j - i) as u64;
        i = j;
    }
    Ok(())
}

// ================================================================================
// RAID4/5/6
// ================================================================================

/// Stripes `s0 .. s0 + n`: one read per present member, parity per stripe, writes of the
/// parity chunks that differ.
fn parity_batch(
    geom: &Geometry,
    members: &[Option<Target<'_>>],
    s0: u64,
    n: u64,
    opts: &ResyncOptions,
    stats: &mut ResyncStats,
) -> Result<()> {
    let cb = geom.chunk_sectors() as usize * SECTOR_SIZE as usize;
    let dev_byte = s0 * cb as u64;
    let len = n as usize * cb;
    let mut bufs: Vec<Option<Vec<u8>>> = Vec::with_capacity(members.len());
    for (m, t) in members.iter().enumerate() {
        bufs.push(match t {
            Some(t) => {
                let mut b = vec![0u8; len];
                read_at(t, m, &mut b, dev_byte)?;
                Some(b)
            }
            None => None,
        });
    }
    let zero = vec![0u8; cb];
    let (mut p, mut q) = (vec![0u8; cb], vec![0u8; cb]);
    for j in 0..n as usize {
        let roles = geom.stripe_roles(s0 + j as u64)?;
        let r = j * cb..(j + 1) * cb;
        let chunk_of = |m: u32| -> &[u8] {
            match &bufs[m as usize] {
                Some(b) => &b[r.clone()],
                None => &zero, // Missing::Zero: a missing data block counts as zeros.
            }
        };
        let p_present = bufs[roles.p_member as usize].is_some();
        let q_present = roles.q_member.is_some_and(|qm| bufs[qm as usize].is_some());
        if !p_present && !q_present {
            continue;
        }
        match roles.q_member {
            None => {
                let data: Vec<&[u8]> = roles
                    .roles
                    .iter()
                    .zip(0u32..)
                    .filter(|(role, _)| matches!(role, Role::Data { .. }))
                    .map(|(_, m)| chunk_of(m))
                    .collect();
                if data.len() >= 2 {
                    parity::xor_gen(&opts.parity, &data, &mut p)?;
                } else if let Some(d) = data.first() {
                    p.copy_from_slice(d); // two-disk RAID4/5: P is a mirror
                } else {
                    p.fill(0);
                }
            }
            Some(_) => {
                // Syndrome slots in md's member order; DDF slots of P and Q are zero blocks.
                let data: Vec<&[u8]> = roles
                    .members_by_slot()
                    .into_iter()
                    .map(|m| m.map_or(&zero[..], chunk_of))
                    .collect();
                parity::pq_gen(&opts.parity, &data, &mut p, &mut q)?;
            }
        }
        let at = dev_byte + (j * cb) as u64;
        let pm = roles.p_member as usize;
        if let (Some(t), Some(b)) = (&members[pm], &bufs[pm]) {
            reconcile(t, pm, at, &b[r.clone()], &p, opts.repair, stats)?;
        }
        if let Some(qm) = roles.q_member.map(|q| q as usize) {
            if let (Some(t), Some(b)) = (&members[qm], &bufs[qm]) {
                reconcile(t, qm, at, &b[r.clone()], &q, opts.repair, stats)?;
            }
        }
    }
    Ok(())
}

// ================================================================================
// RAID1
// ================================================================================

/// Member sectors `a .. a + n`: the first present member is the source.
fn raid1_batch(
    members: &[Option<Target<'_>>],
    a: u64,
    n: u64,
    opts: &ResyncOptions,
    stats: &mut ResyncStats,
) -> Result<()> {
    let len = (n * SECTOR_SIZE) as usize;
    let dev_byte = a * SECTOR_SIZE;
    let mut present = members
        .iter()
        .enumerate()
        .filter_map(|(m, t)| t.map(|t| (m, t)));
    let Some((m0, src)) = present.next() else {
        return Ok(());
    };
    let mut want = vec![0u8; len];
    read_at(&src, m0, &mut want, dev_byte)?;
    let mut got = vec![0u8; len];
    for (m, t) in present {
        read_at(&t, m, &mut got, dev_byte)?;
        reconcile(&t, m, dev_byte, &got, &want, opts.repair, stats)?;
    }
    Ok(())
}

// ================================================================================
// RAID10
// ================================================================================

/// Array sectors `a .. a + n` (whole chunks): for each chunk, the first present copy (in
/// md's copy order) is the source. A chunk is contiguous on every member that holds it.
fn raid10_batch(
    geom: &Geometry,
    members: &[Option<Target<'_>>],
    a: u64,
    n: u64,
    opts: &ResyncOptions,
    stats: &mut ResyncStats,
) -> Result<()> {
    let c = u64::from(geom.chunk_sectors());
    let cb = (c * SECTOR_SIZE) as usize;
    let (mut want, mut got) = (vec![0u8; cb], vec![0u8; cb]);
    let mut chunk = a / c;
    while chunk * c < a + n {
        let copies = geom.copies_of(chunk * c)?;
        let mut present = copies
            .iter()
            .filter_map(|l| members[l.member as usize].map(|t| (l, t)));
        let Some((l0, src)) = present.next() else {
            return Err(Error::TooManyFailures(format!(
                "every copy of array chunk {chunk} is on a missing member"
            )));
        };
        read_at(
            &src,
            l0.member as usize,
            &mut want,
            l0.dev_sector * SECTOR_SIZE,
        )?;
        for (l, t) in present {
            let at = l.dev_sector * SECTOR_SIZE;
            read_at(&t, l.member as usize, &mut got, at)?;
            reconcile(&t, l.member as usize, at, &got, &want, opts.repair, stats)?;
        }
        chunk += 1;
    }
    Ok(())
}
