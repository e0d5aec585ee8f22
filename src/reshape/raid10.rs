//! RAID-10 in the reshape engine of [`super`]: what md allows, where a geometry's bytes
//! sit on the member rows, and the writer of every copy.
//!
//! md reshapes RAID-10 only by moving the data (`raid10.c: raid10_check_reshape`,
//! `raid10_start_reshape`; mdadm `Grow.c: raid10_reshape`): near and offset layouts, more
//! members, another chunk, near <-> offset with the same number of copies. Far layouts
//! cannot be reshaped nor reached, the number of copies never changes, the array size
//! must be a multiple of the new chunk. The new data sits `new_offset` sectors from the
//! old, and `raid10.c: run` refuses to resume unless that distance is at least
//! `max(C_old * fc_old, C_new * fc_new)` (md-format.md §6.3, §8.5). fastraid uses all
//! the free space, as for the parity levels (never less than that minimum), forwards when
//! there is room before the data, otherwise backwards.
//!
//! The engine's safety rule is md's (`raid10.c: reshape_request`, `first_dev_address`,
//! `last_dev_address`), in member rows: a new chunk is written only where no old data
//! still needed by the on-disk checkpoint lives. [`Rows`] states both directions of it for
//! any geometry the engine handles (a RAID-4/5/6 stripe is the case of one near copy over
//! the data disks), so the parity levels go through the same arithmetic.
//!
//! fastraid's reader does not second-guess a RAID-10 checkpoint (there is no parity to
//! judge the data by), so the engine records the checkpoint right where its durable writes
//! end, at new-chunk granularity, instead of one reader unit behind. Each new chunk is
//! written to all its copies ([`lay_out`]), so the array is consistent (scrub
//! `mismatch_cnt` 0) at every checkpoint and at the end. A grow also resizes the
//! write-intent bitmap to the new array size (RAID-10 bitmaps count array sectors), as
//! `md_bitmap_resize` does at the start of md's reshape: same space, the chunk doubled
//! until the bits fit.
//!
//! `--revert` turns a RAID-10 reshape around as md's revert-reshape does (revert.rs,
//! `decide_raid10`); the reverse of a grow is the only RAID-10 shrink the engine runs.
//!
//! Linux 6.1 cannot itself *continue* a near -> offset change: it writes the far copies
//! past the end of the members (observed with mdadm `--grow --layout=o2`; the new
//! geometry seems to keep the near layout's stride). fastraid's plan says so; finish such
//! a reshape with fastraid (`grow --continue`).

use super::{Engine, Plan, Target, Writer};
use crate::error::{invalid, Error, Result};
use crate::layout::{Geometry, Layout, Raid10Layout, SECTOR_SIZE};
use crate::md::bitmap::{BitmapHeader, HEADER_BYTES};

/// Where a geometry's array bytes sit on the rows of its members, in md's terms: array
/// chunk `k` starts at position `k × near` of a row of `width` members, and each row of
/// data is followed by `far − 1` rows of its offset copies. RAID-4/5/6: one near copy over
/// the data disks, no offset copies (a stripe is a row).
#[derive(Debug, Clone, Copy)]
pub(super) struct Rows {
    /// Chunk bytes.
    chunk: u64,
    near: u64,
    width: u64,
    /// Member rows per row of data (offset layouts: the far copies; otherwise 1).
    far: u64,
}

impl Rows {
    pub(super) fn of(g: &Geometry) -> Rows {
        let chunk = u64::from(g.chunk_sectors()) * SECTOR_SIZE;
        match g.layout() {
            Layout::Raid10(l) => Rows {
                chunk,
                near: u64::from(l.near),
                width: u64::from(g.raid_disks()),
                far: if l.offset { u64::from(l.far) } else { 1 },
            },
            _ => Rows {
                chunk,
                near: 1,
                width: u64::from(g.data_disks().unwrap_or(1)),
                far: 1,
            },
        }
    }

    /// Member sectors of one row of chunks times its copy rows.
    fn row_group(&self) -> u64 {
        self.far * (self.chunk / SECTOR_SIZE)
    }

    /// The first member sector (from the start of the data) holding any array byte at or
    /// after `x` (md's `first_dev_address`).
    pub(super) fn start(&self, x: u64) -> u64 {
        (x / self.chunk * self.near / self.width).saturating_mul(self.row_group())
    }

    /// The member sector past the last one holding any array byte below `x` (md's
    /// `last_dev_address`).
    pub(super) fn end(&self, x: u64) -> u64 {
        (x.div_ceil(self.chunk) * self.near)
            .div_ceil(self.width)
            .saturating_mul(self.row_group())
    }

    /// The largest `x` (whole chunks) with `end(x) ≤ r`.
    pub(super) fn max_end(&self, r: u64) -> u64 {
        (r / self.row_group() * self.width / self.near).saturating_mul(self.chunk)
    }

    /// The smallest `x` (whole chunks) with `start(x) ≥ r`.
    pub(super) fn min_start(&self, r: u64) -> u64 {
        (r.div_ceil(self.row_group()) * self.width)
            .div_ceil(self.near)
            .saturating_mul(self.chunk)
    }
}

fn layout_of(g: &Geometry) -> Raid10Layout {
    match g.layout() {
        Layout::Raid10(l) => l,
        _ => Raid10Layout::near(1),
    }
}

fn is_far(l: Raid10Layout) -> bool {
    l.far > 1 && !l.offset
}

/// md's refusals (`raid10_check_reshape`), and fastraid's own (shrinking).
pub(super) fn check_start(old: &Geometry, new: &Geometry, old_size: u64) -> Result<()> {
    let (lo, ln) = (layout_of(old), layout_of(new));
    if is_far(lo) {
        return Err(Error::Unsupported(format!(
            "a RAID-10 with a far layout ({lo}) cannot be reshaped (md refuses it too); only \
             near and offset layouts can"
        )));
    }
    if is_far(ln) {
        return Err(Error::Unsupported(format!(
            "a RAID-10 cannot be reshaped to a far layout ({ln}); md allows near and offset \
             layouts only"
        )));
    }
    if lo.far_set != 0 || ln.far_set != 0 {
        return Err(Error::Unsupported(
            "RAID-10 far-set layout variants cannot be reshaped".into(),
        ));
    }
    if lo.copies() != ln.copies() {
        return Err(Error::Unsupported(format!(
            "a RAID-10 reshape keeps the number of copies (md: {lo} has {}, {ln} has {}): \
             choose a layout with {} copies",
            lo.copies(),
            ln.copies(),
            lo.copies()
        )));
    }
    if new.raid_disks() < old.raid_disks() {
        return Err(Error::Unsupported(format!(
            "shrinking a RAID-10 ({} -> {} members) is not supported by fastraid",
            old.raid_disks(),
            new.raid_disks()
        )));
    }
    let c = u64::from(new.chunk_sectors()) * SECTOR_SIZE;
    if !old_size.is_multiple_of(c) {
        return Err(Error::Unsupported(format!(
            "the array size ({old_size} bytes) is not a multiple of the new chunk ({c} \
             bytes): md refuses this RAID-10 reshape"
        )));
    }
    Ok(())
}

/// The smallest data-offset change md resumes from (`raid10.c: run`), in sectors.
pub(super) fn min_offset(old: &Geometry, new: &Geometry) -> u64 {
    let len = |g: &Geometry| {
        let l = layout_of(g);
        u64::from(g.chunk_sectors()) * if l.far > 1 { u64::from(l.far) } else { 1 }
    };
    len(old).max(len(new))
}

/// Free sectors the engine needs: md's minimum, and enough for progress from every
/// checkpoint. With the same copies on at least as many members, the new rows hold at
/// least as much data as the old, so what the rows of one side run ahead of the other is
/// rounding: a chunk row and its offset copies of each geometry, and one new chunk (the
/// step) more backwards.
pub(super) fn need_rows(old: &Geometry, new: &Geometry) -> u64 {
    let (ro, rn) = (Rows::of(old), Rows::of(new));
    let (co, cn) = (ro.chunk / SECTOR_SIZE, rn.chunk / SECTOR_SIZE);
    min_offset(old, new).max(co + ro.row_group() + 2 * cn + rn.row_group())
}

/// A note for the plan where the kernel cannot take over (see the module docs).
pub(super) fn takeover_note(old: &Geometry, new: &Geometry) -> Option<String> {
    let (lo, ln) = (layout_of(old), layout_of(new));
    (!lo.offset && ln.offset).then(|| {
        "Linux 6.1 cannot continue a near -> offset change itself (it writes far copies past \
         the members' end): if this reshape is interrupted, finish it with fastraid \
         (grow --continue), not by assembling it in the kernel"
            .to_string()
    })
}

/// Whether the engine's RAID-10 step (`Plan::execute`, step 4: every new chunk written
/// only where no old data still needed lies, the checkpoint recorded right where the
/// writes end) gets from `start` to its end without stopping with "no progress possible",
/// for the geometries `old` -> `new` of the reverse reshape, `off` sectors apart. The
/// engine is blocked at `pos` only where it would be with its checkpoint at `pos` (the
/// worst case: it records the checkpoint there and tries again), so every chunk on the
/// way is checked.
pub(super) fn reverse_progresses(
    old: &Geometry,
    new: &Geometry,
    off: u64,
    start: u64,
    n_end: u64,
    back: bool,
) -> bool {
    let (ro, rn) = (Rows::of(old), Rows::of(new));
    let s_n = rn.chunk;
    if s_n == 0 || !start.is_multiple_of(s_n) {
        return false;
    }
    let old_size = old.array_bytes();
    if back {
        let mut pos = start;
        while pos > 0 {
            let need = ro.end(pos);
            let limit = if need <= off {
                0
            } else {
                rn.min_start(need - off).div_ceil(s_n).saturating_mul(s_n)
            };
            if limit >= pos {
                return false;
            }
            pos -= s_n;
        }
    } else {
        let mut pos = start;
        while pos < n_end {
            if pos < old_size && rn.max_end(ro.start(pos) + off) / s_n * s_n <= pos {
                return false;
            }
            pos = pos.saturating_add(s_n);
        }
    }
    true
}

/// The bitmap header after a grow to `sync_size` array sectors: md's `md_bitmap_resize`
/// keeps the space the bits had (whole sectors) and doubles the chunk until they fit.
pub(super) fn resized_bitmap(h: &BitmapHeader, sync_size: u64) -> BitmapHeader {
    let space = (HEADER_BYTES as u64 + h.bits_bytes()).div_ceil(SECTOR_SIZE) * SECTOR_SIZE;
    let mut n = h.clone();
    n.sync_size = sync_size;
    while HEADER_BYTES as u64 + n.bits_bytes() > space && n.chunksize < 1 << 30 {
        n.chunksize *= 2;
    }
    n
}

/// Resize every bitmap header of a grow (written with the first superblocks).
pub(super) fn resize_bitmaps(targets: &mut [Target], sync_size: u64) {
    for t in targets {
        if let Some((_, h)) = &mut t.bitmap {
            *h = resized_bitmap(h, sync_size);
        }
    }
}

/// Set (or clear) the bitmap bits of array sectors `[from, to)` on every member. At the
/// start of a grow (`fresh`) the bits are cleared first (the array is clean, and the chunk
/// may have changed) and those of the added space set, as `md_bitmap_resize` marks new
/// space: if the kernel takes over, its resync after the reshape covers that space, which
/// fastraid fills (every copy) only when its reshape gets there. The finish clears them.
pub(super) fn mark_bits(eng: &Engine, from: u64, to: u64, set: bool, fresh: bool) -> Result<()> {
    for (t, d) in eng.targets.iter().zip(&eng.devs) {
        let Some((at, h)) = &t.bitmap else {
            continue;
        };
        let head = HEADER_BYTES as u64;
        let len = (head + h.bits_bytes()).div_ceil(SECTOR_SIZE) * SECTOR_SIZE - head;
        let mut bits = vec![0u8; len as usize];
        if !fresh {
            d.read_exact_at(&mut bits, at + head)?;
        }
        let c = h.chunk_sectors().max(1);
        if to > from {
            for i in from / c..=(to - 1) / c {
                if let Some(b) = bits.get_mut((i / 8) as usize) {
                    let m = 1u8 << (i % 8);
                    *b = if set { *b | m } else { *b & !m };
                }
            }
        }
        d.write_all_at(&bits, at + head)?;
    }
    Ok(())
}

/// `w.data` (array bytes `[a, e)`) written to every copy in the new geometry.
pub(super) fn lay_out(w: &Writer, plan: &Plan, eng: &Engine, a: u64, e: u64) -> Result<()> {
    const WINDOW: u64 = 16 << 20;
    let g = &plan.new_geo;
    if w.data.len() as u64 != e - a || e > g.array_bytes() {
        return Err(invalid!("reshape batch of the wrong length"));
    }
    let mut target_of = vec![usize::MAX; g.raid_disks() as usize];
    for (i, t) in eng.targets.iter().enumerate() {
        if let Some(x) = target_of.get_mut(t.slot as usize) {
            *x = i;
        }
    }
    if target_of.contains(&usize::MAX) {
        return Err(invalid!("a slot of the new geometry has no member"));
    }
    let mut pos = a;
    while pos < e {
        let len = (e - pos).min(WINDOW);
        for x in g.extents(pos, len).map_err(Error::from)? {
            let i = target_of[x.member as usize];
            let from = (x.array_offset - a) as usize;
            eng.devs[i].write_all_at(
                &w.data[from..from + x.len as usize],
                w.base[i] + x.dev_offset,
            )?;
        }
        pos += len;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::Level;

    fn r10(l: Raid10Layout, n: u32, chunk_sectors: u32) -> Geometry {
        Geometry::new(
            Level::Raid10,
            Layout::Raid10(l),
            n,
            chunk_sectors,
            1 << 16,
            &[],
        )
        .unwrap()
    }

    /// `start`/`end` against every copy the geometry itself maps, and `max_end`/`min_start`
    /// as their inverses.
    #[test]
    fn rows_bound_every_copy() {
        for (l, n) in [
            (Raid10Layout::near(2), 4),
            (Raid10Layout::near(2), 5),
            (Raid10Layout::near(3), 4),
            (Raid10Layout::offset(2), 3),
            (Raid10Layout::offset(3), 4),
        ] {
            let g = r10(l, n, 8);
            let rows = Rows::of(&g);
            let c = 8 * SECTOR_SIZE;
            for k in 0..64u64 {
                let secs: Vec<u64> = g
                    .copies_of(k * 8)
                    .unwrap()
                    .iter()
                    .map(|x| x.dev_sector)
                    .collect();
                let lo = *secs.iter().min().unwrap();
                let hi = secs.iter().max().unwrap() + 8;
                assert!(rows.start(k * c) <= lo, "{l} {n} chunk {k}");
                assert!(rows.end((k + 1) * c) >= hi, "{l} {n} chunk {k}");
                // Nothing of chunk k or later lies below start(k), nothing before it past end.
                for j in 0..k {
                    for x in g.copies_of(j * 8).unwrap() {
                        assert!(x.dev_sector + 8 <= rows.end(k * c));
                    }
                }
            }
            for r in 0..400u64 {
                let x = rows.max_end(r);
                assert!(
                    rows.end(x) <= r && rows.end(x + c) > r,
                    "{l} {n} max_end({r})"
                );
                let y = rows.min_start(r);
                assert!(rows.start(y) >= r, "{l} {n} min_start({r})");
                assert!(y == 0 || rows.start(y - c) < r, "{l} {n} min_start({r})");
            }
        }
    }

    #[test]
    fn parity_rows_are_stripes() {
        let g = Geometry::new(
            Level::Raid5,
            Layout::from_md(Level::Raid5, 2).unwrap(),
            4,
            8,
            1 << 16,
            &[],
        )
        .unwrap();
        let r = Rows::of(&g);
        let s = 3 * 8 * SECTOR_SIZE;
        assert_eq!(r.start(s + 1), 8);
        assert_eq!(r.end(s + 1), 16);
        assert_eq!(r.max_end(17), s * 2);
        assert_eq!(r.min_start(9), s * 2);
    }

    #[test]
    fn reverse_needs_room() {
        // n2 4 -> 5 reverted (5 -> 4, backwards), 64 KiB chunks, 8 MiB of data.
        let (g5, g4) = (
            r10(Raid10Layout::near(2), 5, 128),
            r10(Raid10Layout::near(2), 4, 128),
        );
        let at = 4 << 20;
        assert!(reverse_progresses(&g5, &g4, 256, at, 8 << 20, true));
        assert!(!reverse_progresses(&g5, &g4, 0, at, 8 << 20, true));
        // Not on a chunk boundary of the reverse: refused.
        assert!(!reverse_progresses(&g5, &g4, 256, at + 512, 8 << 20, true));
    }

    #[test]
    fn refusals_and_minimum() {
        let c = 1 << 20;
        let n2 = r10(Raid10Layout::near(2), 4, 128);
        let o2 = r10(Raid10Layout::offset(2), 4, 128);
        let f2 = r10(Raid10Layout::far(2), 4, 128);
        let n3 = r10(Raid10Layout::near(3), 4, 128);
        assert!(check_start(&n2, &o2, c).is_ok());
        assert!(check_start(&f2, &n2, c).is_err());
        assert!(check_start(&n2, &f2, c).is_err());
        assert!(check_start(&n2, &n3, c).is_err());
        assert!(check_start(&r10(Raid10Layout::near(2), 5, 128), &n2, c).is_err());
        assert!(check_start(&n2, &r10(Raid10Layout::near(2), 4, 256), c + 65536).is_err());
        assert_eq!(min_offset(&n2, &o2), 256);
        assert_eq!(min_offset(&n2, &n2), 128);
        let h = BitmapHeader::new([0; 16], 0, 1 << 20, 1 << 20);
        let g = resized_bitmap(&h, 1 << 30);
        assert!(HEADER_BYTES as u64 + g.bits_bytes() <= 512);
        assert_eq!(g.sync_size, 1 << 30);
    }
}
