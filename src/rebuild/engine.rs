//! The rebuild's workers: each takes a batch position, reads the survivors' bytes for it,
//! turns them into the lost member's bytes and writes them to the new member ([`spawn`]);
//! the caller's thread hands out positions and checkpoints what is written (see
//! `Plan::recover`). Each worker keeps its buffers, so nothing is allocated after its first
//! batch.
//!
//! What a batch needs, by level:
//!
//! * RAID-1: the same bytes from any in-sync member (read straight into the output).
//! * RAID-10: chunk by chunk, the array block this member held ([`Geometry::reverse`]) and
//!   another copy of it ([`Geometry::copies_of`]); a piece past the used rows is zeros.
//! * RAID-4/5/6: every member's bytes at the same device offsets (a stripe occupies the
//!   same chunk on every member), then per stripe: XOR for one unknown; for RAID-6 the
//!   data blocks in *syndrome slot* order ([`StripeRoles::members_by_slot`], which differs
//!   from the logical order in the asymmetric layouts; DDF's P/Q slots count as zeros) and
//!   [`parity::recover`] / [`parity::pq_gen`] for up to two unknowns.
//! * Replace: the old member's own bytes where they are readable; otherwise as above.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::Scope;

use crate::assemble::SlotMember;
use crate::error::{Error, Result};
use crate::layout::{Content, Geometry, Level, Role, StripeRoles, SECTOR_SIZE};
use crate::parity::{self, Options};

/// What the pipeline rebuilds.
pub(super) struct Job<'a> {
    pub geometry: &'a Geometry,
    pub slots: &'a [Option<SlotMember>],
    /// The slot being rebuilt (never read, except the old member of a replace).
    pub slot: u32,
    /// Replace: copy the old member of `slot` where it is readable.
    pub copy_from_old: bool,
    /// End of the data-area bytes to produce.
    pub end: u64,
    /// Bytes per batch (a sector multiple).
    pub batch: u64,
    /// Where batches go: the new member, its path (for errors) and its data offset.
    pub target: (&'a File, &'a Path, u64),
    pub parity: Options,
    /// Set by the caller when it stops early: the workers skip the batches still queued.
    pub stop: &'a AtomicBool,
}

/// One batch: `out[..len]` becomes data-area bytes `start .. start + len` of the new member.
#[derive(Default)]
struct Batch {
    start: u64,
    len: usize,
    out: Vec<u8>,
    /// RAID-4/5/6: every member's bytes at the same offsets (index = slot).
    srcs: Vec<Vec<u8>>,
    /// Whether `srcs[slot]` was read.
    have: Vec<bool>,
    /// `out` already holds the result (a copy).
    ready: bool,
    /// RAID-6 with only the rebuilt slot lost in this batch: the parity block a stripe
    /// does not need ([`unneeded`]) was not read.
    single: bool,
}

/// RAID-6, one slot lost: the parity member a stripe's rebuild does not read. A lost data
/// block or P comes from P and the data (XOR), so Q is not needed; a lost Q is computed
/// from the data alone, so P is not.
fn unneeded(job: &Job<'_>, roles: &StripeRoles) -> Option<u32> {
    match roles.roles.get(job.slot as usize)? {
        Role::Q => Some(roles.p_member),
        Role::Data { .. } | Role::P => roles.q_member,
    }
}

/// A batch a worker has written: data-area bytes `[start, start + len)` of the new member.
pub(super) type Written = Result<(u64, u64)>;

/// Most workers: each holds a batch of every member (a 24-member array, 1 MiB batches: 25
/// MiB), and the writes to one new member take turns in the kernel anyway.
const MAX_WORKERS: usize = 8;

/// How many workers [`spawn`] starts: one per rayon thread (the machine's cores, or
/// `RAYON_NUM_THREADS`), at least two so that one computes while another waits for I/O, at
/// most [`MAX_WORKERS`].
pub(super) fn workers() -> usize {
    rayon::current_num_threads().clamp(2, MAX_WORKERS)
}

/// Start [`workers`] worker threads. Each takes a batch position from the returned sender,
/// reads the batch, rebuilds it and writes it to the new member at its place, then reports
/// it on the returned receiver; batches finish in any order. Closing the sender (after
/// setting `job.stop`, which makes the workers skip what is still queued) ends them.
///
/// Whole batches per worker, rather than a reader, a compute and a writer thread, so that
/// every core does whichever work there is: on 2 vCPUs the stage threads left one stage
/// (the survivor reads of a wide RAID-6, or the writes) the bottleneck while the other core
/// idled or switched between threads. Writes to one file still take turns in the kernel
/// (its inode lock); the reads and the parity of other batches overlap them.
pub(super) fn spawn<'scope, 'env>(
    scope: &'scope Scope<'scope, 'env>,
    job: &'env Job<'env>,
) -> (SyncSender<u64>, Receiver<Written>) {
    let n = workers();
    let (pos_tx, pos_rx) = sync_channel::<u64>(2 * n);
    let (done_tx, done_rx) = sync_channel::<Written>(2 * n);
    let pos_rx = Arc::new(Mutex::new(pos_rx));
    for _ in 0..n {
        let pos_rx = Arc::clone(&pos_rx);
        let done_tx = done_tx.clone();
        scope.spawn(move || {
            let mut b = Batch::default();
            let mut scratch = Scratch::default();
            loop {
                let next = match pos_rx.lock() {
                    Ok(rx) => rx.recv(),
                    Err(_) => break,
                };
                let Ok(pos) = next else { break };
                if job.stop.load(Ordering::SeqCst) {
                    continue; // skip what was queued before the stop
                }
                let len = job.batch.min(job.end - pos);
                let r = one_batch(job, &mut b, &mut scratch, pos, len as usize);
                if done_tx.send(r.map(|()| (pos, len))).is_err() {
                    break;
                }
            }
        });
    }
    (pos_tx, done_rx)
}

/// Read, rebuild and write the batch at `pos`.
fn one_batch(
    job: &Job<'_>,
    b: &mut Batch,
    scratch: &mut Scratch,
    pos: u64,
    len: usize,
) -> Result<()> {
    read_batch(job, b, pos, len)?;
    if !b.ready {
        compute(job, b, scratch)?;
    }
    let (file, path, offset) = job.target;
    let at = offset + pos;
    file.write_all_at(&b.out[..len], at)
        .map_err(|e| super::io_err(path, "write failed", &e))?;
    // Writeback starts now, overlapping the next batches, so the checkpoint's fdatasync
    // does not find the whole member still dirty.
    crate::io::start_writeback(file, at, len as u64);
    Ok(())
}

fn grow(v: &mut Vec<u8>, len: usize) {
    if v.len() < len {
        v.resize(len, 0);
    }
}

/// The member of `slot` if it can serve all `len` bytes at data-area offset `off`.
fn usable<'a>(job: &Job<'a>, slot: u32, off: u64, len: u64) -> Option<&'a SlotMember> {
    let m = job.slots.get(slot as usize)?.as_ref()?;
    let (ok, run) = m.usable(off, len);
    (ok && run >= len).then_some(m)
}

fn read(m: &SlotMember, buf: &mut [u8], off: u64) -> Result<()> {
    m.device.read_exact_at(buf, m.data_offset + off)
}

fn read_batch(job: &Job<'_>, b: &mut Batch, pos: u64, len: usize) -> Result<()> {
    b.start = pos;
    b.len = len;
    b.ready = false;
    grow(&mut b.out, len);
    let l = len as u64;
    if job.copy_from_old {
        if let Some(m) = usable(job, job.slot, pos, l) {
            read(m, &mut b.out[..len], pos)?;
            b.ready = true;
            return Ok(());
        }
    }
    let g = job.geometry;
    let n = g.raid_disks();
    match g.level() {
        Level::Raid1 => {
            let src = (0..n)
                .filter(|&s| s != job.slot)
                .find_map(|s| usable(job, s, pos, l))
                .ok_or_else(|| {
                    Error::TooManyFailures(format!(
                        "no readable copy of member bytes {pos}..{} is left",
                        pos + l
                    ))
                })?;
            read(src, &mut b.out[..len], pos)?;
            b.ready = true;
        }
        Level::Raid10 => {
            let c = u64::from(g.chunk_sectors()) * SECTOR_SIZE;
            let mut off = pos;
            while off < pos + l {
                let piece_end = ((off / c + 1) * c).min(pos + l);
                let plen = piece_end - off;
                let dst = &mut b.out[(off - pos) as usize..(piece_end - pos) as usize];
                match g
                    .reverse(job.slot, off / SECTOR_SIZE)
                    .map_err(Error::from)?
                {
                    Content::Data { array_sector } => {
                        let copies = g.copies_of(array_sector).map_err(Error::from)?;
                        let src = copies
                            .iter()
                            .filter(|loc| loc.member != job.slot)
                            .find_map(|loc| {
                                let at = loc.dev_sector * SECTOR_SIZE;
                                usable(job, loc.member, at, plen).map(|m| (m, at))
                            })
                            .ok_or_else(|| {
                                Error::TooManyFailures(format!(
                                    "array sector {array_sector}: no other copy is readable"
                                ))
                            })?;
                        read(src.0, dst, src.1)?;
                    }
                    _ => dst.fill(0),
                }
                off = piece_end;
            }
            b.ready = true;
        }
        Level::Raid4 | Level::Raid5 | Level::Raid6 => {
            b.srcs.resize_with(n as usize, Vec::new);
            b.have.clear();
            b.have.resize(n as usize, false);
            b.single = g.level() == Level::Raid6
                && (0..n).all(|s| s == job.slot || usable(job, s, pos, l).is_some());
            let sources: Vec<Option<&SlotMember>> = (0..n)
                .map(|s| (s != job.slot).then(|| usable(job, s, pos, l)).flatten())
                .collect();
            let single = b.single;
            for (s, (buf, m)) in b.srcs.iter_mut().zip(&sources).enumerate() {
                if let Some(m) = m {
                    grow(buf, len);
                    read_source(job, m, s as u32, buf, pos, len, single)?;
                }
            }
            for (h, m) in b.have.iter_mut().zip(&sources) {
                *h = m.is_some();
            }
        }
        other => {
            return Err(Error::Unsupported(format!(
                "{other} has no redundancy to rebuild from"
            )))
        }
    }
    Ok(())
}

/// RAID-4/5/6: survivor `s`'s bytes `[pos, pos + len)` into `buf`.
fn read_source(
    job: &Job<'_>,
    m: &SlotMember,
    s: u32,
    buf: &mut [u8],
    pos: u64,
    len: usize,
    single: bool,
) -> Result<()> {
    let g = job.geometry;
    let l = len as u64;
    if !single {
        return read(m, &mut buf[..len], pos);
    }
    // RAID-6 with only this slot lost: each stripe needs one parity block of the two
    // ([`unneeded`]), so read stripe by stripe and skip the other.
    let c = u64::from(g.chunk_sectors()) * SECTOR_SIZE;
    let mut off = pos;
    while off < pos + l {
        let end = ((off / c + 1) * c).min(pos + l);
        let roles = g.stripe_roles(off / c).map_err(Error::from)?;
        if unneeded(job, &roles) != Some(s) {
            let (lo, hi) = ((off - pos) as usize, (end - pos) as usize);
            read(m, &mut buf[lo..hi], off)?;
        }
        off = end;
    }
    Ok(())
}

/// Per-thread temporaries of the compute stage.
#[derive(Default)]
struct Scratch {
    zero: Vec<u8>,
    other: Vec<u8>,
    p: Vec<u8>,
}

fn unavailable(stripe: u64, missing: &[u32], level: Level) -> Error {
    let list: Vec<String> = missing.iter().map(u32::to_string).collect();
    Error::TooManyFailures(format!(
        "stripe {stripe}: slots {} are unavailable; {level} rebuilds at most {} per stripe",
        list.join(", "),
        level.parity_disks()
    ))
}

/// RAID-4/5/6: rebuild `b.out` from `b.srcs`, stripe piece by stripe piece.
fn compute(job: &Job<'_>, b: &mut Batch, scratch: &mut Scratch) -> Result<()> {
    let g = job.geometry;
    let c = u64::from(g.chunk_sectors()) * SECTOR_SIZE;
    let end = b.start + b.len as u64;
    let mut off = b.start;
    let Batch {
        out,
        srcs,
        have,
        single,
        ..
    } = b;
    while off < end {
        let stripe = off / c;
        let piece_end = ((stripe + 1) * c).min(end);
        let (lo, hi) = ((off - b.start) as usize, (piece_end - b.start) as usize);
        let roles = g.stripe_roles(stripe).map_err(Error::from)?;
        let skip = if *single { unneeded(job, &roles) } else { None };
        let blk = |m: u32| -> Option<&[u8]> {
            (m != job.slot && have[m as usize] && Some(m) != skip)
                .then(|| &srcs[m as usize][lo..hi])
        };
        let dst = &mut out[lo..hi];
        if g.level() == Level::Raid6 {
            raid6_piece(job, &roles, &blk, dst, scratch)?;
        } else {
            let mut blocks = Vec::with_capacity(roles.roles.len());
            let mut missing = vec![job.slot];
            for m in (0..g.raid_disks()).filter(|&m| m != job.slot) {
                match blk(m) {
                    Some(x) => blocks.push(x),
                    None => missing.push(m),
                }
            }
            if missing.len() > 1 {
                return Err(unavailable(stripe, &missing, g.level()));
            }
            if blocks.len() == 1 {
                dst.copy_from_slice(blocks[0]);
            } else {
                parity::xor_gen(&job.parity, &blocks, dst)?;
            }
        }
        off = piece_end;
    }
    Ok(())
}

fn raid6_piece<'s>(
    job: &Job<'_>,
    roles: &StripeRoles,
    blk: &dyn Fn(u32) -> Option<&'s [u8]>,
    dst: &mut [u8],
    scratch: &mut Scratch,
) -> Result<()> {
    let len = dst.len();
    let Scratch { zero, other, p } = scratch;
    grow(zero, len);
    grow(other, len);
    grow(p, len);
    let zero = &zero[..len];
    let other = &mut other[..len];
    let p_scratch = &mut p[..len];
    let by_slot = roles.members_by_slot();
    // Data in syndrome order; DDF's P/Q slots are zero blocks.
    let mut data: Vec<Option<&[u8]>> = by_slot
        .iter()
        .map(|m| match m {
            None => Some(zero),
            Some(m) => blk(*m),
        })
        .collect();
    let pb = blk(roles.p_member);
    let qb = roles.q_member.and_then(blk);
    let lost: Vec<usize> = (0..data.len()).filter(|&i| data[i].is_none()).collect();
    let mut missing: Vec<u32> = (0..roles.roles.len() as u32)
        .filter(|&m| blk(m).is_none())
        .collect();
    missing.sort_unstable();
    if missing.len() > 2 {
        return Err(unavailable(roles.stripe, &missing, Level::Raid6));
    }
    let o = &job.parity;
    match roles.roles.get(job.slot as usize) {
        Some(Role::Data { slot: js, .. }) => {
            let js = *js as usize;
            match lost.as_slice() {
                [_] => parity::recover(o, &data, pb, qb, &mut [dst])?,
                [a, _] => {
                    let mut outs: [&mut [u8]; 2] =
                        if *a == js { [dst, other] } else { [other, dst] };
                    parity::recover(o, &data, pb, qb, &mut outs)?;
                }
                _ => return Err(unavailable(roles.stripe, &missing, Level::Raid6)),
            }
        }
        Some(Role::P) => {
            if let [x] = lost.as_slice() {
                parity::recover(o, &data, None, qb, &mut [&mut *other])?;
                data[*x] = Some(other);
            } else if !lost.is_empty() {
                return Err(unavailable(roles.stripe, &missing, Level::Raid6));
            }
            let blocks: Vec<&[u8]> = by_slot
                .iter()
                .zip(&data)
                .filter(|(m, _)| m.is_some())
                .filter_map(|(_, d)| *d)
                .collect();
            if blocks.len() == 1 {
                dst.copy_from_slice(blocks[0]);
            } else {
                parity::xor_gen(o, &blocks, dst)?;
            }
        }
        Some(Role::Q) => {
            if let [x] = lost.as_slice() {
                parity::recover(o, &data, pb, None, &mut [&mut *other])?;
                data[*x] = Some(other);
            } else if !lost.is_empty() {
                return Err(unavailable(roles.stripe, &missing, Level::Raid6));
            }
            let blocks: Vec<&[u8]> = data.iter().flatten().copied().collect();
            parity::pq_gen(o, &blocks, p_scratch, dst)?;
        }
        None => {
            return Err(Error::InvalidArgument(format!(
                "slot {} is not in the stripe map",
                job.slot
            )))
        }
    }
    Ok(())
}
