//! Reading an assembled md array ([`crate::assemble::Assembly`]): the logical bytes, with
//! missing or out-of-sync pieces rebuilt from the mirrors or from parity.
//!
//! A read walks the array in windows of [`WINDOW`] bytes; each window is split into
//! per-member pieces by [`Geometry::extents`] (about one per chunk). Pieces whose member
//! is present and in sync for those bytes are read straight into the caller's buffer.
//! Otherwise:
//!
//! * RAID1/10 (and RAID0/linear, which have nothing else) try the other copies of the
//!   piece in md's order;
//! * RAID4/5/6 read the same member range of every other member of the stripe (data, P
//!   and Q sit at the same device offset in a stripe) into per-member scratch buffers,
//!   once per stripe, and rebuild the lost data with [`parity::recover`]. For RAID-6 the
//!   blocks are passed in *syndrome slot* order ([`StripeRoles::members_by_slot`]), which
//!   is not the logical data order for the asymmetric and `-6` layouts; DDF layouts have
//!   `n` slots of which P's and Q's count as zero blocks.
//!
//! Validity changes inside a piece (a rebuild checkpoint, a bad-block range, the end of a
//! truncated device) split the work at that offset, so every byte is taken from the best
//! source for it. A member that fails a read is treated as missing for that piece and the
//! piece is retried from redundancy.
//!
//! What each byte was made from is recorded in a [`TrustMap`]: clean (read from an in-sync
//! member), rebuilt (from parity or another copy after a failure), uncertain (rebuilt in a
//! region the array had not finished resyncing, so parity may be stale) or unreadable
//! (filled with zeros in lenient mode; strict reads fail instead).

use crate::assemble::{Assembly, SlotMember};
use crate::error::{Error, Result};
use crate::layout::{Extent, Geometry, Level, StripeRoles};
use crate::parity::{self, Options};

/// Array bytes mapped per step: bounds the extent list, not the caller's buffer.
pub const WINDOW: u64 = 16 * 1024 * 1024;

/// Longest member range rebuilt at once (bounds the scratch buffers for huge chunks).
const SCRATCH_MAX: u64 = 4 * 1024 * 1024;

// ================================================================================
// Trust map
// ================================================================================

/// Where a range of array bytes came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Trust {
    /// Read from an in-sync member.
    Clean,
    /// Rebuilt from parity or read from another copy.
    Rebuilt,
    /// Rebuilt where the array was not in sync: may be wrong.
    Uncertain,
    /// Could not be read or rebuilt (zeros were returned in lenient mode).
    Unreadable,
}

impl Trust {
    pub fn name(self) -> &'static str {
        match self {
            Trust::Clean => "clean",
            Trust::Rebuilt => "rebuilt",
            Trust::Uncertain => "uncertain",
            Trust::Unreadable => "unreadable",
        }
    }
}

/// A range of array bytes and where it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrustRange {
    pub offset: u64,
    pub len: u64,
    pub trust: Trust,
}

/// What every byte read so far was made from.
#[derive(Debug, Default, Clone)]
pub struct TrustMap {
    ranges: Vec<TrustRange>,
    /// Bytes recorded per kind (clean, rebuilt, uncertain, unreadable); a byte read twice
    /// counts twice.
    pub totals: [u64; 4],
}

impl TrustMap {
    fn record(&mut self, offset: u64, len: u64, trust: Trust) {
        if len == 0 {
            return;
        }
        self.totals[trust as usize] += len;
        if let Some(last) = self.ranges.last_mut() {
            if last.trust == trust && last.offset + last.len == offset {
                last.len += len;
                return;
            }
        }
        self.ranges.push(TrustRange { offset, len, trust });
        if self.ranges.len() > 1 << 20 {
            self.ranges = self.normalised();
        }
    }

    /// The ranges read so far, sorted and merged; where a range was read more than once
    /// the worst verdict wins.
    pub fn normalised(&self) -> Vec<TrustRange> {
        // Sweep over boundaries; at each point take the worst kind covering it.
        let mut points: Vec<(u64, bool, Trust)> = Vec::with_capacity(self.ranges.len() * 2);
        for r in &self.ranges {
            points.push((r.offset, true, r.trust));
            points.push((r.offset + r.len, false, r.trust));
        }
        points.sort_unstable_by_key(|&(p, start, t)| (p, start, t));
        let mut active = [0u64; 4];
        let mut out: Vec<TrustRange> = Vec::new();
        let mut prev: Option<u64> = None;
        for (p, start, t) in points {
            if let Some(q) = prev {
                if p > q {
                    if let Some(worst) = (0..4).rev().find(|&k| active[k] > 0) {
                        let trust = [
                            Trust::Clean,
                            Trust::Rebuilt,
                            Trust::Uncertain,
                            Trust::Unreadable,
                        ][worst];
                        match out.last_mut() {
                            Some(l) if l.trust == trust && l.offset + l.len == q => l.len += p - q,
                            _ => out.push(TrustRange {
                                offset: q,
                                len: p - q,
                                trust,
                            }),
                        }
                    }
                }
            }
            if start {
                active[t as usize] += 1;
            } else {
                active[t as usize] -= 1;
            }
            prev = Some(p);
        }
        out
    }

    /// Forget everything.
    pub fn clear(&mut self) {
        self.ranges.clear();
        self.totals = [0; 4];
    }
}

// ================================================================================
// Reader
// ================================================================================

/// Reads an assembled array.
#[derive(Debug)]
pub struct ArrayReader {
    asm: Assembly,
    opts: Options,
    /// Per member scratch (RAID4/5/6 rebuilds), grown on demand.
    scratch: Vec<Vec<u8>>,
    /// Rebuilt blocks (at most two).
    rebuilt: [Vec<u8>; 2],
    /// Zero block for the DDF slots of P and Q.
    zero: Vec<u8>,
    trust: TrustMap,
    /// The geometry of the part being read, its data offset shift, and its index.
    geo: Geometry,
    shift: i64,
    part: usize,
    /// Array byte ranges whose reshape geometry could not be decided (reported uncertain).
    undecided: Vec<(u64, u64)>,
    /// `(array byte start, length, backup file offset)` read from the reshape backup.
    backup_ranges: Vec<(u64, u64, u64)>,
}

/// What a unit next to the reshape boundary is, by its parity in the two geometries.
enum Step {
    /// Only the new geometry explains it: the kernel had rewritten it.
    New,
    /// Both explain it (or parity cannot tell them apart).
    Both,
    /// Neither does.
    Neither,
    /// The walk ends here.
    Stop,
}

/// What a stripe's parity says about one geometry (reshape boundary probing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    /// An equation the members could check does not hold.
    Fail,
    /// Too few members to check anything.
    Unknown,
    /// Every checkable equation holds; `q`: a Q equation was among them (in every stripe);
    /// `zero`: every block read was all zeros (which any geometry calls consistent, so such a
    /// pass is no evidence of where the data is).
    Pass { q: bool, zero: bool },
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a.max(1)
    } else {
        gcd(b, a % b)
    }
}

/// Byte offset on `m`'s device of data-area offset `off` in a geometry shifted by `shift`
/// bytes; `u64::MAX` (a read that fails) if it does not exist.
fn abs(m: &SlotMember, shift: i64, off: u64) -> u64 {
    m.data_offset
        .checked_add_signed(shift)
        .and_then(|b| b.checked_add(off))
        .unwrap_or(u64::MAX)
}

/// [`SlotMember::usable`] for a geometry whose data starts `shift` bytes from the member's
/// data offset (validity windows are relative to the data offset).
fn usable_at(m: &SlotMember, shift: i64, off: u64, len: u64) -> (bool, u64) {
    m.usable(off.saturating_add_signed(shift), len)
}

impl ArrayReader {
    pub fn new(asm: Assembly) -> Result<ArrayReader> {
        let n = asm.slots.len();
        let geo = asm
            .parts
            .first()
            .map_or_else(|| asm.geometry.clone(), |p| p.geometry.clone());
        let shift = asm.parts.first().map_or(0, |p| p.shift);
        let mut r = ArrayReader {
            asm,
            geo,
            shift,
            part: 0,
            opts: Options::new()?,
            scratch: vec![Vec::new(); n],
            rebuilt: [Vec::new(), Vec::new()],
            zero: Vec::new(),
            trust: TrustMap::default(),
            undecided: Vec::new(),
            backup_ranges: Vec::new(),
        };
        r.decide_reshape_boundary()?;
        Ok(r)
    }

    // ---------------------------------------------------------------- reshape boundary

    /// An interrupted reshape: check the superblock's checkpoint against the data. The
    /// kernel may have moved stripes past the checkpoint it last recorded; where the old
    /// geometry already overwritten by them, the array range is parity-consistent in the
    /// new geometry and not in the old one, so the boundary moves over it (and back, in the
    /// opposite case). Probing works in units holding whole stripes of both geometries and
    /// needs an equation left to check in each ([`Self::unit_check`]: a degraded RAID-6
    /// still has one, a degraded RAID-5 none, and where neither geometry can be checked the
    /// checkpoint is trusted). A unit inconsistent in both next to the boundary is recorded
    /// as undecided, and in place one consistent in both past it as ambiguous; their bytes
    /// are reported as uncertain.
    fn decide_reshape_boundary(&mut self) -> Result<()> {
        if self.asm.parts.len() != 2 || self.asm.geometry.level().parity_disks() == 0 {
            return Ok(());
        }
        if self.asm.pinned {
            // fastraid's own in-place reshape: the checkpoint is exact, and its journal
            // holds the logical bytes of the batch whose rows may be half rewritten (the
            // data cannot change during an offline reshape, so a journal behind the
            // checkpoint holds the same bytes as the members).
            self.backup_ranges = self
                .asm
                .backup
                .as_ref()
                .map_or(Vec::new(), |b| b.sections.clone());
            return Ok(());
        }
        let (lo, hi) = (&self.asm.parts[0], &self.asm.parts[1]);
        let new_is_low = lo.name == "new";
        let stripe_bytes = |g: &Geometry| {
            u64::from(g.chunk_sectors())
                * u64::from(g.data_disks().unwrap_or(1))
                * crate::layout::SECTOR_SIZE
        };
        let (a, b) = (stripe_bytes(&lo.geometry), stripe_bytes(&hi.geometry));
        let unit = a / gcd(a, b) * b;
        let size = hi.end;
        let boundary = lo.end;
        let (new_k, old_k) = if new_is_low { (0, 1) } else { (1, 0) };
        const LIMIT: usize = 4096;
        // Content comparison means something only when the new data lives apart from the
        // old (a moved data offset); in place, equal units are mere coincidences.
        let moved_offset = self.asm.parts[new_k].shift != 0;
        // In place with the same members, a unit sits on the same member rows in both
        // geometries and the kernel rewrites those rows themselves (the whole reshape is its
        // critical section, md.4): rows it had not reached hold the old layout, the others
        // the new one, and where parity holds in both nothing on the members says which.
        // (With other widths or a moved offset the new geometry's rows past its progress
        // hold other data, and the checkpoint is trusted where parity does not decide.)
        let same_rows = !moved_offset
            && self.asm.parts[0].shift == self.asm.parts[1].shift
            && lo.geometry.raid_disks() == hi.geometry.raid_disks();
        // With single parity as well (a RAID-4/5 chunk or layout change), parity cannot tell
        // the geometries apart at all: P is the XOR of the whole row in both, so every row
        // is consistent in both whatever wrote it (and a missing member hides nothing parity
        // could have said). RAID-6 is not blind: its P leaves out the Q member, which moves
        // with the layout.
        let parity_blind = same_rows
            && lo.geometry.level() == hi.geometry.level()
            && lo.geometry.level().parity_disks() == 1;
        if let Some(e) = moved_offset
            .then(|| self.content_boundary(new_k, old_k, new_is_low, boundary, unit, size))
            .transpose()?
            .flatten()
        {
            self.asm.notes.push(format!(
                "reshape boundary decided by content: array byte {e} instead of the \
                 checkpoint's {boundary} (the kernel had moved stripes past its checkpoint and \
                 overwritten their old copies; the stripes at the new boundary agree in both \
                 geometries)"
            ));
            self.asm.parts[0].end = e;
            self.asm.parts[1].start = e;
            self.geo = self.asm.parts[0].geometry.clone();
            self.shift = self.asm.parts[0].shift;
            self.part = 0;
            return Ok(());
        }
        let mut x = boundary;
        let mut moved = 0i64;
        let mut undecided = Vec::new();
        let mut ambiguous_units: Vec<u64> = Vec::new();
        // Towards the old side: units the kernel already rewrote in the new geometry are
        // consistent there and not in the old one. Units consistent in both (rows that sit
        // alike in both layouts, or rows the kernel has not reached) are stepped over; the
        // walk ends where the new geometry stops being consistent, and the boundary goes
        // after the last unit that only the new geometry explains.
        {
            let mut y = boundary;
            let budget = (256 * 1024 * 1024 / unit.max(1)).clamp(1, LIMIT as u64);
            for _ in 0..budget {
                let start = if new_is_low {
                    y
                } else {
                    y.saturating_sub(unit)
                };
                if (new_is_low && y + unit > size) || (!new_is_low && y < unit) {
                    break;
                }
                let next = if new_is_low { y + unit } else { y - unit };
                let step = match (
                    self.unit_check(new_k, start, unit),
                    self.unit_check(old_k, start, unit),
                ) {
                    // Parity cannot tell these geometries apart, whatever is missing.
                    (Check::Pass { .. } | Check::Unknown, Check::Pass { .. } | Check::Unknown)
                        if parity_blind =>
                    {
                        Step::Both
                    }
                    (Check::Pass { .. }, Check::Fail) => Step::New,
                    // Degraded: the old geometry has no equation left to check while the
                    // new one has. An equation the two shared would be checkable in both
                    // (same members, same rows), so what held in the new one is foreign to
                    // the old layout, and rows the kernel never rewrote fail it. Not rows
                    // of zeros, though: they hold in every geometry (free space the kernel
                    // never reached reads so), so they only say "either".
                    (Check::Pass { zero: false, .. }, Check::Unknown) => Step::New,
                    (Check::Pass { zero: true, .. }, Check::Unknown) => Step::Both,
                    // A recovering Q member written ahead of the checkpoint: where the new
                    // geometry's Q checks and the old one's does not, the kernel was there
                    // (again, zeros prove nothing).
                    (
                        Check::Pass {
                            q: true,
                            zero: false,
                        },
                        Check::Pass { q: false, .. },
                    ) => Step::New,
                    // Consistent in both: the kernel may or may not have been here.
                    (Check::Pass { .. }, Check::Pass { .. }) => Step::Both,
                    (Check::Fail, Check::Fail) => Step::Neither,
                    _ => Step::Stop,
                };
                match step {
                    Step::New => {
                        moved += (next.abs_diff(x) / unit) as i64;
                        x = next;
                    }
                    Step::Both if same_rows => ambiguous_units.push(start),
                    Step::Both => {}
                    Step::Neither if y == x || undecided.last().is_some() => {
                        // Inconsistent both ways next to the boundary: undecided (a run
                        // of them, where a backup file may help).
                        let touching = undecided.last().is_none_or(|&(s, e): &(u64, u64)| {
                            if new_is_low {
                                e == start
                            } else {
                                s == start + unit
                            }
                        });
                        if !touching {
                            break;
                        }
                        undecided.push((start, start + unit));
                    }
                    Step::Neither | Step::Stop => break,
                }
                y = next;
            }
        }
        // Towards the new side, only if nothing moved the other way: units that are still
        // old (a checkpoint ahead of the data: never written by the kernel, but cheap to check).
        if moved == 0 {
            for _ in 0..LIMIT {
                let start = if new_is_low {
                    x.saturating_sub(unit)
                } else {
                    x
                };
                if (new_is_low && x < unit) || (!new_is_low && x + unit > size) {
                    break;
                }
                match (
                    self.unit_consistent(new_k, start, unit),
                    self.unit_consistent(old_k, start, unit),
                ) {
                    (Some(false), Some(true)) => {
                        x = if new_is_low { x - unit } else { x + unit };
                        moved -= 1;
                    }
                    (Some(false), Some(false)) => {
                        undecided.push((start, start + unit));
                        break;
                    }
                    _ => break,
                }
            }
        }
        if moved != 0 {
            self.asm.notes.push(format!(
                "reshape boundary decided by parity: array byte {x} instead of the checkpoint's \
                 {boundary} ({} units of {unit} bytes {} the checkpoint)",
                moved.unsigned_abs(),
                if (moved > 0) == new_is_low {
                    "past"
                } else {
                    "before"
                },
            ));
            self.asm.parts[0].end = x;
            self.asm.parts[1].start = x;
        }
        // mdadm's backup is used only where the members cannot decide: it may have been
        // saved after the kernel had already rewritten some of its stripes.
        let backup: Vec<(u64, u64, u64)> = self
            .asm
            .backup
            .as_ref()
            .map_or(Vec::new(), |b| b.sections.clone());
        let mut overlay = Vec::new();
        undecided.retain(|&(s, e)| {
            match backup.iter().find(|&&(bs, bl, _)| bs <= s && e <= bs + bl) {
                Some(&(bs, _, fo)) => {
                    overlay.push((s, e - s, fo + (s - bs)));
                    false
                }
                None => true,
            }
        });
        if !backup.is_empty() {
            self.asm.notes.push(if overlay.is_empty() {
                "the reshape backup is not needed: the members decide every stripe".to_string()
            } else {
                format!(
                    "{} undecided unit(s) are read from the reshape backup",
                    overlay.len()
                )
            });
        }
        self.backup_ranges = overlay;
        // In place on the same rows, a unit consistent in both geometries past the boundary
        // may have been rewritten by the kernel ahead of its checkpoint or not: where the two
        // readings differ, parity cannot tell which holds the data (nor can the backup, which
        // may have been saved after the kernel rewrote its stripes). Those bytes are
        // uncertain.
        let ambiguous =
            self.ambiguous_ranges(&ambiguous_units, x, new_is_low, new_k, old_k, unit)?;
        if !ambiguous.is_empty() {
            let total: u64 = ambiguous.iter().map(|(s, e)| e - s).sum();
            self.asm.notes.push(format!(
                "{total} bytes past the reshape boundary read differently in the two \
                 geometries while parity cannot tell the two apart: undecidable, read in the \
                 old geometry and reported as uncertain"
            ));
        }
        for (s, e) in &undecided {
            self.asm.notes.push(format!(
                "array bytes {s}..{e} are parity-inconsistent in both geometries: undecided, \
                 read in the {} geometry and reported as uncertain",
                if (*s < x) == new_is_low { "new" } else { "old" }
            ));
        }
        undecided.extend(ambiguous);
        self.undecided = undecided;
        self.geo = self.asm.parts[0].geometry.clone();
        self.shift = self.asm.parts[0].shift;
        self.part = 0;
        Ok(())
    }

    /// The kernel can run ahead of the checkpoint it last wrote and overwrite the old copy
    /// of stripes past it. Where the new data sits apart from the old (a moved data
    /// offset), the stripes it has rewritten without yet overwriting their old copy read the
    /// same in both geometries; before them the old copies are overwritten (they differ),
    /// after them the new ones were never written (they differ). So walking from the
    /// checkpoint towards the old side, the first unit that reads the same in both
    /// geometries is the boundary — if one turns up within the scan budget and the new
    /// geometry's parity holds over the units skipped; otherwise `None`. Parity alone
    /// cannot tell the two apart when the member count does not change (a RAID-5 row is
    /// consistent whatever layout wrote it).
    fn content_boundary(
        &mut self,
        new_k: usize,
        old_k: usize,
        new_is_low: bool,
        boundary: u64,
        unit: u64,
        size: u64,
    ) -> Result<Option<u64>> {
        const BUDGET: u64 = 256 * 1024 * 1024;
        let Ok(u) = usize::try_from(unit) else {
            return Ok(None);
        };
        if unit > BUDGET {
            return Ok(None);
        }
        let (mut a, mut b) = (vec![0u8; u], vec![0u8; u]);
        let mut x = boundary;
        let mut found = None;
        for _ in 0..(BUDGET / unit).max(1) {
            let start = if new_is_low {
                if x + unit > size {
                    break;
                }
                x
            } else {
                if x < unit {
                    break;
                }
                x - unit
            };
            self.read_part_range(new_k, start, &mut a)?;
            self.read_part_range(old_k, start, &mut b)?;
            if a == b {
                found = Some(x);
                break;
            }
            x = if new_is_low { x + unit } else { x - unit };
        }
        self.trust.clear();
        let Some(e) = found.filter(|&e| e != boundary) else {
            return Ok(None);
        };
        // The skipped units must be sound in the new geometry.
        let mut y = boundary.min(e);
        while y < boundary.max(e) {
            if self.unit_consistent(new_k, y, unit) == Some(false) {
                return Ok(None);
            }
            y += unit;
        }
        Ok(Some(e))
    }

    /// The sub-ranges (4 KiB granular) of the units starting at `starts` on the old side
    /// of boundary `x` whose readings in parts `new_k` and `old_k` differ.
    fn ambiguous_ranges(
        &mut self,
        starts: &[u64],
        x: u64,
        new_is_low: bool,
        new_k: usize,
        old_k: usize,
        unit: u64,
    ) -> Result<Vec<(u64, u64)>> {
        const BLOCK: usize = 4096;
        let mut out: Vec<(u64, u64)> = Vec::new();
        let Ok(u) = usize::try_from(unit) else {
            return Ok(out);
        };
        let (mut a, mut b) = (vec![0u8; u], vec![0u8; u]);
        for &start in starts {
            let old_side = if new_is_low {
                start >= x
            } else {
                start + unit <= x
            };
            if !old_side {
                continue;
            }
            self.read_part_range(new_k, start, &mut a)?;
            self.read_part_range(old_k, start, &mut b)?;
            for (i, (ca, cb)) in a.chunks(BLOCK).zip(b.chunks(BLOCK)).enumerate() {
                if ca == cb {
                    continue;
                }
                let s = start + (i * BLOCK) as u64;
                let e = s + ca.len() as u64;
                match out.last_mut() {
                    Some(l) if l.1 == s => l.1 = e,
                    _ => out.push((s, e)),
                }
            }
        }
        self.trust.clear();
        out.sort_unstable();
        Ok(out)
    }

    /// Array bytes `[from, from + buf.len())` read in part `k`'s geometry, whatever range
    /// the part covers (lenient: unreadable bytes are zeros).
    fn read_part_range(&mut self, k: usize, from: u64, buf: &mut [u8]) -> Result<()> {
        self.geo = self.asm.parts[k].geometry.clone();
        self.shift = self.asm.parts[k].shift;
        self.part = k;
        let to = from + buf.len() as u64;
        if to > self.geo.array_bytes() {
            buf.fill(0);
            return Ok(());
        }
        let mut pos = from;
        while pos < to {
            let w = WINDOW.min(to - pos);
            let ext = self.geo.extents(pos, w)?;
            let out = &mut buf[(pos - from) as usize..(pos - from + w) as usize];
            if self.geo.level().parity_disks() > 0 {
                self.read_parity(pos, &ext, out, false)?;
            } else {
                self.read_copies(pos, &ext, out, false)?;
            }
            pos += w;
        }
        Ok(())
    }

    /// [`Self::unit_check`] as a yes/no: `Some(false)` only where a check failed.
    fn unit_consistent(&mut self, k: usize, x: u64, unit: u64) -> Option<bool> {
        match self.unit_check(k, x, unit) {
            Check::Fail => Some(false),
            Check::Unknown => None,
            Check::Pass { .. } => Some(true),
        }
    }

    /// Whether every stripe of part `k`'s geometry in array bytes `[x, x + unit)` satisfies
    /// the parity equations its present members allow checking. A member may be absent (a
    /// degraded array): RAID-6 then still has one equation left (P alone when Q is lost, Q
    /// alone when P is, Q after rebuilding one lost data block from P); RAID-4/5, or RAID-6
    /// that lost two, has none and the stripe is [`Check::Unknown`].
    fn unit_check(&mut self, k: usize, x: u64, unit: u64) -> Check {
        let g = self.asm.parts[k].geometry.clone();
        let shift = self.asm.parts[k].shift;
        // A member still being recovered (RECOVERY_OFFSET, e.g. the Q disk a RAID5->6
        // conversion added) is written by the reshape in the new geometry ahead of its
        // checkpoint: probe it there anyway (a read that fails counts as absent).
        let probe_anyway = self.asm.parts[k].name == "new";
        let c = u64::from(g.chunk_sectors()) * crate::layout::SECTOR_SIZE;
        let Some(sb) = g.data_disks().map(|d| c * u64::from(d)) else {
            return Check::Unknown;
        };
        let n = g.raid_disks() as usize;
        let Ok(cl) = usize::try_from(c) else {
            return Check::Unknown;
        };
        let mut verdict = Check::Pass {
            q: true,
            zero: true,
        };
        for stripe in x / sb..(x + unit).div_ceil(sb) {
            let Ok(roles) = g.stripe_roles(stripe) else {
                return Check::Unknown;
            };
            let mut present = vec![false; n];
            for (m, here) in present.iter_mut().enumerate() {
                let Some(sm) = self.asm.slots.get(m).and_then(Option::as_ref) else {
                    continue;
                };
                let off = stripe * c;
                if !probe_anyway && usable_at(sm, shift, off, c) != (true, c) {
                    continue;
                }
                let buf = &mut self.scratch[m];
                if buf.len() < cl {
                    buf.resize(cl, 0);
                }
                *here = sm
                    .device
                    .read_exact_at(&mut buf[..cl], abs(sm, shift, off))
                    .is_ok();
            }
            // A recovering Q member may lag the data it protects: its failing Q refutes
            // nothing (with P present, P decides).
            let q_trusted = roles.q_member.is_some_and(|q| {
                self.asm
                    .slots
                    .get(q as usize)
                    .and_then(Option::as_ref)
                    .is_some_and(|sm| usable_at(sm, shift, stripe * c, c) == (true, c))
            });
            let s = self.stripe_check(&roles, &present, q_trusted, cl);
            verdict = match (verdict, s) {
                (Check::Fail, _) | (_, Check::Fail) => return Check::Fail,
                (Check::Unknown, _) | (_, Check::Unknown) => Check::Unknown,
                (Check::Pass { q: a, zero: y }, Check::Pass { q: b, zero: z }) => Check::Pass {
                    q: a && b,
                    zero: y && z,
                },
            };
        }
        verdict
    }

    /// One stripe's check over the member blocks in scratch (`present` says which hold it).
    fn stripe_check(
        &mut self,
        roles: &StripeRoles,
        present: &[bool],
        q_trusted: bool,
        cl: usize,
    ) -> Check {
        let data = roles.members_by_index();
        let lost: Vec<u32> = data
            .iter()
            .copied()
            .filter(|&m| !present[m as usize])
            .collect();
        let p_ok = present[roles.p_member as usize];
        let all_zero = (0..present.len())
            .filter(|&m| present[m])
            .all(|m| self.scratch[m][..cl].iter().all(|&b| b == 0));
        let q = roles.q_member.filter(|&q| present[q as usize]);
        let Some(q) = q else {
            // RAID-4/5, or RAID-6 without its Q: P over the data, if all of it is there.
            if !lost.is_empty() || !p_ok {
                return Check::Unknown;
            }
            let scratch = &self.scratch;
            let mut acc = scratch[roles.p_member as usize][..cl].to_vec();
            for &m in &data {
                acc.iter_mut()
                    .zip(&scratch[m as usize][..cl])
                    .for_each(|(a, b)| *a ^= b);
            }
            return if acc.iter().all(|&v| v == 0) {
                Check::Pass {
                    q: false,
                    zero: all_zero,
                }
            } else {
                Check::Fail
            };
        };
        if lost.len() + usize::from(!p_ok) > 1 {
            return Check::Unknown;
        }
        for b in &mut self.rebuilt {
            if b.len() < cl {
                b.resize(cl, 0);
            }
        }
        if self.zero.len() < cl {
            self.zero.resize(cl, 0);
        }
        // One lost data block: rebuild it from P (then only Q is left to check it).
        if let Some(&gone) = lost.first() {
            let scratch = &self.scratch;
            let srcs: Vec<&[u8]> = data
                .iter()
                .copied()
                .filter(|&m| m != gone)
                .chain([roles.p_member])
                .map(|m| &scratch[m as usize][..cl])
                .collect();
            let dst = &mut self.rebuilt[0][..cl];
            let ok = if srcs.len() == 1 {
                dst.copy_from_slice(srcs[0]);
                true
            } else {
                parity::xor_gen(&self.opts, &srcs, dst).is_ok()
            };
            if !ok {
                return Check::Unknown;
            }
        }
        let [rebuilt, p_calc] = &mut self.rebuilt;
        let (scratch, zero) = (&self.scratch, &self.zero[..cl]);
        let blocks: Vec<&[u8]> = roles
            .members_by_slot()
            .into_iter()
            .map(|m| match m {
                None => zero,
                Some(m) if lost.contains(&m) => &rebuilt[..cl],
                Some(m) => &scratch[m as usize][..cl],
            })
            .collect();
        // P lost: check Q alone (against the P the data makes).
        let p: &[u8] = if p_ok {
            &scratch[roles.p_member as usize][..cl]
        } else {
            if parity::xor_gen(&self.opts, &blocks, &mut p_calc[..cl]).is_err() {
                return Check::Unknown;
            }
            &p_calc[..cl]
        };
        let Ok((pk, qk)) = parity::pq_check(&self.opts, &blocks, p, &scratch[q as usize][..cl])
        else {
            return Check::Unknown;
        };
        let spare = lost.is_empty() && p_ok;
        match (pk, qk) {
            (false, _) => Check::Fail,
            (true, true) => Check::Pass {
                q: true,
                zero: all_zero,
            },
            (true, false) if q_trusted => Check::Fail,
            // An untrusted Q that does not check: P alone decides, where P is a spare
            // equation (nothing was rebuilt from it); otherwise nothing was checked.
            (true, false) if spare => Check::Pass {
                q: false,
                zero: all_zero,
            },
            (true, false) => Check::Unknown,
        }
    }

    pub fn assembly(&self) -> &Assembly {
        &self.asm
    }

    pub fn geometry(&self) -> &Geometry {
        &self.asm.geometry
    }

    /// Array size in bytes.
    pub fn size(&self) -> u64 {
        self.asm.size()
    }

    pub fn trust_map(&self) -> &TrustMap {
        &self.trust
    }

    pub fn clear_trust_map(&mut self) {
        self.trust.clear();
    }

    /// Fill `buf` with the array bytes at `offset`. `strict`: fail on bytes that cannot be
    /// read or rebuilt (and on uncertain ones never: they are data, flagged in the trust
    /// map); lenient: zero-fill them and record them as unreadable.
    pub fn read_at(&mut self, offset: u64, buf: &mut [u8], strict: bool) -> Result<()> {
        let size = self.size();
        let len = buf.len() as u64;
        if len == 0 {
            return Ok(());
        }
        if offset.checked_add(len).is_none_or(|e| e > size) {
            return Err(Error::InvalidArgument(format!(
                "range {offset}+{len} is outside the array of {size} bytes"
            )));
        }
        let end = offset + len;
        // Ranges covered by a reshape backup come from the backup file.
        let sections = self.backup_ranges.clone();
        let mut pos = offset;
        while pos < end {
            let hit = sections
                .iter()
                .find(|&&(s, l, _)| s <= pos && pos < s + l)
                .copied();
            match hit {
                Some((s, l, fo)) => {
                    let e = (s + l).min(end);
                    let dst = &mut buf[(pos - offset) as usize..(e - offset) as usize];
                    if let Some(b) = &self.asm.backup {
                        b.file.read_exact_at(dst, fo + (pos - s))?;
                    }
                    self.trust.record(pos, e - pos, Trust::Clean);
                    pos = e;
                }
                None => {
                    let next = sections
                        .iter()
                        .map(|&(s, _, _)| s)
                        .filter(|&s| s > pos)
                        .min()
                        .unwrap_or(end)
                        .min(end);
                    self.read_span(offset, pos, next, buf, strict)?;
                    pos = next;
                }
            }
        }
        Ok(())
    }

    /// Array bytes `[from, to)` from the members into `buf` (which starts at array byte
    /// `offset`).
    fn read_span(
        &mut self,
        offset: u64,
        from: u64,
        to: u64,
        buf: &mut [u8],
        strict: bool,
    ) -> Result<()> {
        let end = to;
        for k in 0..self.asm.parts.len() {
            let (ps, pe) = (self.asm.parts[k].start, self.asm.parts[k].end);
            let (s, e) = (from.max(ps), end.min(pe));
            if s >= e {
                continue;
            }
            if k != self.part {
                self.geo = self.asm.parts[k].geometry.clone();
                self.shift = self.asm.parts[k].shift;
                self.part = k;
            }
            let mut pos = s;
            while pos < e {
                let w = WINDOW.min(e - pos);
                let ext = self.geo.extents(pos, w)?;
                let out = &mut buf[(pos - offset) as usize..(pos - offset + w) as usize];
                if self.geo.level().parity_disks() > 0 {
                    self.read_parity(pos, &ext, out, strict)?;
                } else {
                    self.read_copies(pos, &ext, out, strict)?;
                }
                pos += w;
            }
        }
        for &(us, ue) in &self.undecided {
            let (s, e) = (us.max(from), ue.min(end));
            if s < e {
                self.trust.record(s, e - s, Trust::Uncertain);
            }
        }
        Ok(())
    }

    // ---------------------------------------------------------------- copies

    /// RAID0/1/10/linear: each group of extents with one array offset is one piece and its
    /// copies.
    fn read_copies(
        &mut self,
        base: u64,
        ext: &[Extent],
        out: &mut [u8],
        strict: bool,
    ) -> Result<()> {
        for copies in ext.chunk_by(|a, b| a.array_offset == b.array_offset) {
            self.read_piece_copies(base, copies, out, strict)?;
        }
        Ok(())
    }

    fn read_piece_copies(
        &mut self,
        base: u64,
        copies: &[Extent],
        out: &mut [u8],
        strict: bool,
    ) -> Result<()> {
        let first = copies[0];
        let len = first.len;
        let shift = self.shift;
        let mut failed: Vec<u32> = Vec::new();
        let mut done = 0u64;
        let mut errors: Vec<String> = Vec::new();
        while done < len {
            let rest = len - done;
            let mut pick: Option<(&Extent, u64)> = None;
            let mut wait = rest;
            for e in copies {
                if failed.contains(&e.member) {
                    continue;
                }
                let Some(m) = self.slot(e.member) else {
                    continue;
                };
                let (ok, run) = usable_at(m, shift, e.dev_offset + done, rest);
                if ok {
                    pick = Some((e, run));
                    break;
                }
                wait = wait.min(run);
            }
            let at = first.array_offset + done;
            let o = (at - base) as usize;
            match pick {
                Some((e, run)) => {
                    let m = self
                        .slot(e.member)
                        .ok_or_else(|| Error::Assembly("slot vanished".into()))?;
                    let dst = &mut out[o..o + run as usize];
                    match m
                        .device
                        .read_exact_at(dst, abs(m, shift, e.dev_offset + done))
                    {
                        Ok(()) => {
                            let t = if e.copy == 0 && failed.is_empty() {
                                Trust::Clean
                            } else {
                                // Another copy than md's first: same data, but worth saying
                                // only when the first was unusable.
                                let first_ok = self.slot(first.member).is_some_and(|m| {
                                    usable_at(m, shift, first.dev_offset + done, run).0
                                }) && !failed.contains(&first.member);
                                if first_ok {
                                    Trust::Clean
                                } else {
                                    Trust::Rebuilt
                                }
                            };
                            self.trust.record(at, run, t);
                            done += run;
                        }
                        Err(err) => {
                            errors.push(err.to_string());
                            failed.push(e.member);
                        }
                    }
                }
                None => {
                    if strict {
                        let mut msg = format!(
                            "array bytes {at}..{} cannot be read: no member holding them is \
                             present and in sync",
                            at + wait
                        );
                        for e in &errors {
                            msg.push_str("; ");
                            msg.push_str(e);
                        }
                        return Err(Error::Io(msg));
                    }
                    out[o..o + wait as usize].fill(0);
                    self.trust.record(at, wait, Trust::Unreadable);
                    done += wait;
                    // A later sub-range may be readable from a member that failed here.
                    failed.clear();
                }
            }
        }
        Ok(())
    }

    fn slot(&self, member: u32) -> Option<&SlotMember> {
        self.asm.slots.get(member as usize).and_then(Option::as_ref)
    }

    // ---------------------------------------------------------------- parity

    /// RAID4/5/6: extents come in stripe order; handle one stripe's pieces at a time.
    fn read_parity(
        &mut self,
        base: u64,
        ext: &[Extent],
        out: &mut [u8],
        strict: bool,
    ) -> Result<()> {
        for pieces in ext.chunk_by(|a, b| a.stripe == b.stripe) {
            self.read_stripe(base, pieces, out, strict)?;
        }
        Ok(())
    }

    fn read_stripe(
        &mut self,
        base: u64,
        pieces: &[Extent],
        out: &mut [u8],
        strict: bool,
    ) -> Result<()> {
        let shift = self.shift;
        // Fast path: every piece's member is usable for the whole piece.
        let all_ok = pieces.iter().all(|p| {
            self.slot(p.member)
                .is_some_and(|m| usable_at(m, shift, p.dev_offset, p.len) == (true, p.len))
        });
        if all_ok {
            let mut failed = None;
            for p in pieces {
                let m = self
                    .slot(p.member)
                    .ok_or_else(|| Error::Assembly("slot vanished".into()))?;
                let o = (p.array_offset - base) as usize;
                if m.device
                    .read_exact_at(&mut out[o..o + p.len as usize], abs(m, shift, p.dev_offset))
                    .is_err()
                {
                    failed = Some(p.member);
                    break;
                }
                self.trust.record(p.array_offset, p.len, Trust::Clean);
            }
            match failed {
                None => return Ok(()),
                Some(f) => return self.read_stripe_degraded(base, pieces, out, strict, vec![f]),
            }
        }
        self.read_stripe_degraded(base, pieces, out, strict, Vec::new())
    }

    /// The slow path: split the stripe's member range where any member's usability
    /// changes, and rebuild lost data in each segment.
    fn read_stripe_degraded(
        &mut self,
        base: u64,
        pieces: &[Extent],
        out: &mut [u8],
        strict: bool,
        mut failed: Vec<u32>,
    ) -> Result<()> {
        let Some(stripe) = pieces[0].stripe else {
            return Err(Error::Assembly("parity extent without a stripe".into()));
        };
        let roles = self.geo.stripe_roles(stripe)?;
        let shift = self.shift;
        let lo = pieces.iter().map(|p| p.dev_offset).min().unwrap_or(0);
        let hi = pieces
            .iter()
            .map(|p| p.dev_offset + p.len)
            .max()
            .unwrap_or(0);
        let n = self.asm.slots.len() as u32;
        let mut x = lo;
        // Failed members stay failed for this stripe (one bad read is enough to distrust).
        while x < hi {
            let mut seg = (hi - x).min(SCRATCH_MAX);
            let mut usable = vec![false; n as usize];
            for m in 0..n {
                if failed.contains(&m) {
                    continue;
                }
                if let Some(s) = self.slot(m) {
                    let (ok, run) = usable_at(s, shift, x, seg);
                    usable[m as usize] = ok;
                    seg = seg.min(run);
                }
            }
            match self.segment(base, pieces, out, strict, &roles, &usable, x, seg) {
                Ok(()) => x += seg,
                Err(SegmentError::ReadFailed(m)) => failed.push(m),
                Err(SegmentError::Fatal(e)) => return Err(e),
            }
        }
        Ok(())
    }

    /// One segment `[x, x + seg)` of member offsets within a stripe, every member's
    /// usability constant across it.
    #[allow(clippy::too_many_arguments)]
    fn segment(
        &mut self,
        base: u64,
        pieces: &[Extent],
        out: &mut [u8],
        strict: bool,
        roles: &StripeRoles,
        usable: &[bool],
        x: u64,
        seg: u64,
    ) -> std::result::Result<(), SegmentError> {
        let end = x + seg;
        let shift = self.shift;
        let overlap = |p: &Extent| -> Option<(u64, u64)> {
            let s = p.dev_offset.max(x);
            let e = (p.dev_offset + p.len).min(end);
            (s < e).then_some((s, e))
        };
        let lost: Vec<u32> = roles
            .members_by_index()
            .into_iter()
            .filter(|&m| !usable[m as usize])
            .collect();
        // Only parity lost in this segment: read the pieces directly.
        let needs_lost = pieces
            .iter()
            .any(|p| overlap(p).is_some() && lost.contains(&p.member));
        if !needs_lost {
            for p in pieces {
                let Some((s, e)) = overlap(p) else { continue };
                let at = p.array_offset + (s - p.dev_offset);
                let o = (at - base) as usize;
                let m = self
                    .slot(p.member)
                    .ok_or(SegmentError::ReadFailed(p.member))?;
                m.device
                    .read_exact_at(&mut out[o..o + (e - s) as usize], abs(m, shift, s))
                    .map_err(|_| SegmentError::ReadFailed(p.member))?;
                self.trust.record(at, e - s, Trust::Clean);
            }
            return Ok(());
        }

        // Read every usable member of the stripe into scratch.
        let len = seg as usize;
        for (m, &ok) in usable.iter().enumerate() {
            if !ok {
                continue;
            }
            let Some(sm) = self.asm.slots[m].as_ref() else {
                continue;
            };
            let buf = &mut self.scratch[m];
            if buf.len() < len {
                buf.resize(len, 0);
            }
            sm.device
                .read_exact_at(&mut buf[..len], abs(sm, shift, x))
                .map_err(|_| SegmentError::ReadFailed(m as u32))?;
        }
        let ok = self.rebuild(roles, usable, &lost, len);
        let dirty = self.asm.dirty_from.is_some_and(|d| end > d);
        let rebuilt_trust = if dirty {
            Trust::Uncertain
        } else {
            Trust::Rebuilt
        };
        for p in pieces {
            let Some((s, e)) = overlap(p) else { continue };
            let at = p.array_offset + (s - p.dev_offset);
            let o = (at - base) as usize;
            let n = (e - s) as usize;
            let from = (s - x) as usize;
            let dst = &mut out[o..o + n];
            if let Some(k) = lost.iter().position(|&m| m == p.member) {
                if ok {
                    dst.copy_from_slice(&self.rebuilt[k][from..from + n]);
                    self.trust.record(at, e - s, rebuilt_trust);
                } else if strict {
                    return Err(SegmentError::Fatal(Error::Io(format!(
                        "array bytes {at}..{} cannot be rebuilt: too many members of stripe \
                         {} are missing or out of sync (lost: {:?})",
                        at + (e - s),
                        roles.stripe,
                        lost_all(roles, usable)
                    ))));
                } else {
                    dst.fill(0);
                    self.trust.record(at, e - s, Trust::Unreadable);
                }
            } else {
                dst.copy_from_slice(&self.scratch[p.member as usize][from..from + n]);
                self.trust.record(at, e - s, Trust::Clean);
            }
        }
        Ok(())
    }

    /// Rebuild the lost data members (`lost`, by data index order) of one segment into
    /// `self.rebuilt[k]`; false if the parity cannot cover the losses.
    fn rebuild(&mut self, roles: &StripeRoles, usable: &[bool], lost: &[u32], len: usize) -> bool {
        if lost.is_empty() || lost.len() > 2 {
            return lost.is_empty();
        }
        for b in &mut self.rebuilt {
            if b.len() < len {
                b.resize(len, 0);
            }
        }
        let ok = |m: u32| usable.get(m as usize).copied().unwrap_or(false);
        let p_ok = ok(roles.p_member);
        let q = roles.q_member.filter(|&q| ok(q));
        match self.geo.level() {
            Level::Raid6 => {
                if self.zero.len() < len {
                    self.zero.resize(len, 0);
                }
                let zero = &self.zero[..len];
                let scratch = &self.scratch;
                let data: Vec<Option<&[u8]>> = roles
                    .members_by_slot()
                    .into_iter()
                    .map(|m| match m {
                        None => Some(zero),
                        Some(m) if ok(m) => Some(&scratch[m as usize][..len]),
                        Some(_) => None,
                    })
                    .collect();
                // recover() fills the lost blocks in slot order; map them back to `lost`.
                let slot_order: Vec<u32> = roles
                    .members_by_slot()
                    .into_iter()
                    .flatten()
                    .filter(|&m| !ok(m))
                    .collect();
                let p = p_ok.then(|| &scratch[roles.p_member as usize][..len]);
                let qd = q.map(|q| &scratch[q as usize][..len]);
                let [r0, r1] = &mut self.rebuilt;
                let mut outs: Vec<&mut [u8]> = vec![&mut r0[..len], &mut r1[..len]];
                outs.truncate(slot_order.len());
                if parity::recover(&self.opts, &data, p, qd, &mut outs).is_err() {
                    return false;
                }
                // `rebuilt` is in slot order; reorder to `lost` (data index) order.
                if slot_order.len() == 2 && slot_order[0] != lost[0] {
                    self.rebuilt.swap(0, 1);
                }
                true
            }
            _ => {
                if lost.len() != 1 || !p_ok {
                    return false;
                }
                let scratch = &self.scratch;
                let srcs: Vec<&[u8]> = roles
                    .members_by_index()
                    .into_iter()
                    .filter(|&m| ok(m))
                    .chain([roles.p_member])
                    .map(|m| &scratch[m as usize][..len])
                    .collect();
                let dst = &mut self.rebuilt[0][..len];
                if srcs.len() == 1 {
                    dst.copy_from_slice(srcs[0]);
                    true
                } else {
                    parity::xor_gen(&self.opts, &srcs, dst).is_ok()
                }
            }
        }
    }
}

enum SegmentError {
    /// This member failed a read: retry the segment without it.
    ReadFailed(u32),
    Fatal(Error),
}

fn lost_all(roles: &StripeRoles, usable: &[bool]) -> Vec<u32> {
    (0..roles.roles.len() as u32)
        .filter(|&m| !usable.get(m as usize).copied().unwrap_or(false))
        .collect()
}

// ================================================================================
// Tests
// ================================================================================

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assemble::{assemble, AssembleOptions};
    use crate::layout::{Content, Role};
    use crate::md::{Location, Role as MdRole, SuperblockV1};
    use std::path::PathBuf;

    /// Byte `i` of array sector `a`: distinct per sector and offset.
    fn content(a: u64, i: usize) -> u8 {
        (a.wrapping_mul(31) ^ (i as u64).wrapping_mul(7) ^ (a >> 8)) as u8
    }

    /// Write an array's members with 1.2 superblocks, mapping with `Geometry::reverse`
    /// (the layout module is tested against its own model; this checks the reader).
    fn write_array(
        name: &str,
        level: i32,
        layout: u32,
        n: u32,
        chunk: u32,
        dev: u64,
    ) -> Vec<PathBuf> {
        let g = Geometry::from_md(level, layout, n, chunk, dev, &[]).unwrap();
        let dir =
            std::env::temp_dir().join(format!("fastraid-array-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let data_offset = 16u64;
        let total = data_offset + dev;
        let mut images: Vec<Vec<u8>> = vec![vec![0u8; (total * 512) as usize]; n as usize];
        for m in 0..n {
            for s in 0..dev {
                if let Content::Data { array_sector } = g.reverse(m, s).unwrap() {
                    let o = ((data_offset + s) * 512) as usize;
                    for i in 0..512 {
                        images[m as usize][o + i] = content(array_sector, i);
                    }
                }
            }
        }
        if let Some(stripes) = g.stripes() {
            let cb = (u64::from(chunk) * 512) as usize;
            let o = Options::new().unwrap();
            let zero = vec![0u8; cb];
            for st in 0..stripes {
                let r = g.stripe_roles(st).unwrap();
                let off = ((data_offset + st * u64::from(chunk)) * 512) as usize;
                let blocks: Vec<Vec<u8>> = r
                    .members_by_slot()
                    .iter()
                    .map(|m| m.map_or(zero.clone(), |m| images[m as usize][off..off + cb].to_vec()))
                    .collect();
                let refs: Vec<&[u8]> = blocks.iter().map(Vec::as_slice).collect();
                let (mut p, mut q) = (vec![0u8; cb], vec![0u8; cb]);
                if r.q_member.is_some() {
                    parity::pq_gen(&o, &refs, &mut p, &mut q).unwrap();
                } else {
                    parity::xor_gen(&o, &refs, &mut p).unwrap();
                }
                images[r.p_member as usize][off..off + cb].copy_from_slice(&p);
                if let Some(qm) = r.q_member {
                    images[qm as usize][off..off + cb].copy_from_slice(&q);
                }
                assert!(r.roles.iter().filter(|x| matches!(x, Role::P)).count() == 1);
            }
        }
        let mut paths = Vec::new();
        for m in 0..n {
            let mut sb = SuperblockV1::new(Location::V1_2, total).unwrap();
            sb.set_uuid = [7; 16];
            sb.level = level;
            sb.layout = layout;
            sb.size = dev;
            sb.chunksize = chunk;
            sb.raid_disks = n;
            sb.data_offset = data_offset;
            sb.data_size = dev;
            sb.dev_number = m;
            sb.events = 3;
            for k in 0..n {
                sb.set_role(k, MdRole::Active(k as u16)).unwrap();
            }
            sb.update_checksum().unwrap();
            let block = sb.to_block().unwrap();
            let img = &mut images[m as usize];
            img[4096..4096 + block.len()].copy_from_slice(&block);
            let p = dir.join(format!("m{m}.img"));
            std::fs::write(&p, &*img).unwrap();
            paths.push(p);
        }
        paths
    }

    fn check(paths: &[PathBuf], drop: &[usize]) {
        let keep: Vec<&PathBuf> = (0..paths.len())
            .filter(|i| !drop.contains(i))
            .map(|i| &paths[i])
            .collect();
        let asm = assemble(&keep, AssembleOptions::default()).unwrap();
        let mut r = ArrayReader::new(asm).unwrap();
        let size = r.size();
        let mut buf = vec![0u8; size as usize];
        r.read_at(0, &mut buf, true).unwrap();
        for (k, b) in buf.iter().enumerate() {
            assert_eq!(
                *b,
                content(k as u64 / 512, k % 512),
                "drop {drop:?} byte {k}"
            );
        }
        // Unaligned piece.
        let mut small = vec![0u8; 5000];
        r.read_at(size - 5003, &mut small, true).unwrap();
        assert_eq!(small[..], buf[(size - 5003) as usize..(size - 3) as usize]);
        let t = r.trust_map();
        assert_eq!(t.totals[Trust::Unreadable as usize], 0);
        // RAID5/6 rotate parity, so any lost member held data somewhere.
        if !drop.is_empty() && matches!(r.geometry().level(), Level::Raid5 | Level::Raid6) {
            assert!(t.totals[Trust::Rebuilt as usize] > 0, "{drop:?}");
        }
    }

    #[test]
    fn raid6_asymmetric_and_ddf_every_pair() {
        for layout in [0u32, 1, 8, 9, 10, 17] {
            let paths = write_array(&format!("r6-{layout}"), 6, layout, 5, 8, 8 * 7);
            check(&paths, &[]);
            for a in 0..5 {
                for b in a + 1..5 {
                    check(&paths, &[a, b]);
                }
            }
        }
    }

    #[test]
    fn raid5_and_raid10_single_losses() {
        for (level, layout, n) in [
            (5, 0u32, 4u32),
            (5, 3, 3),
            (4, 0, 4),
            (10, 0x201, 4),
            (10, 0x10201, 5),
        ] {
            let paths = write_array(
                &format!("{level}-{layout}-{n}"),
                level,
                layout,
                n,
                8,
                8 * 10,
            );
            check(&paths, &[]);
            for a in 0..n as usize {
                check(&paths, &[a]);
            }
        }
    }

    /// The boundary probe's parity check on a degraded array: RAID-6 keeps one equation
    /// with one member lost (and finds a corrupt block with it), RAID-5 keeps none.
    #[test]
    fn unit_check_degraded() {
        let reader = |paths: &[PathBuf], drop: &[usize]| {
            let keep: Vec<&PathBuf> = (0..paths.len())
                .filter(|i| !drop.contains(i))
                .map(|i| &paths[i])
                .collect();
            ArrayReader::new(assemble(&keep, AssembleOptions::default()).unwrap()).unwrap()
        };
        let (chunk, stripes) = (8u32, 7u64);
        let sb = u64::from(chunk) * 512 * 3;
        for layout in [2u32, 0, 10, 17] {
            let paths = write_array(&format!("uc6-{layout}"), 6, layout, 5, chunk, 8 * stripes);
            let g = Geometry::from_md(6, layout, 5, chunk, 8 * stripes, &[]).unwrap();
            let mut r = reader(&paths, &[]);
            for s in 0..stripes {
                assert_eq!(
                    r.unit_check(0, s * sb, sb),
                    Check::Pass {
                        q: true,
                        zero: false
                    }
                );
            }
            for d in 0..5 {
                let mut r = reader(&paths, &[d]);
                for s in 0..stripes {
                    let q_lost = g.stripe_roles(s).unwrap().q_member == Some(d as u32);
                    assert_eq!(
                        r.unit_check(0, s * sb, sb),
                        Check::Pass {
                            q: !q_lost,
                            zero: false
                        },
                        "layout {layout} drop {d} stripe {s}"
                    );
                }
                let mut r = reader(&paths, &[d, (d + 1) % 5]);
                assert_eq!(r.unit_check(0, 0, sb), Check::Unknown);
            }
            // One corrupt byte on a member of stripe 2: whichever other member is lost, the
            // equation left covers it (P covers all but Q; a block rebuilt from a bad P or
            // data block makes Q fail).
            let bad = 1usize;
            let mut img = std::fs::read(&paths[bad]).unwrap();
            img[((16 + 2 * u64::from(chunk)) * 512 + 100) as usize] ^= 0x5a;
            std::fs::write(&paths[bad], &img).unwrap();
            for d in (0..5).filter(|&d| d != bad) {
                let mut r = reader(&paths, &[d]);
                assert_eq!(
                    r.unit_check(0, 2 * sb, sb),
                    Check::Fail,
                    "layout {layout} drop {d}"
                );
                let q_lost = g.stripe_roles(3).unwrap().q_member == Some(d as u32);
                assert_eq!(
                    r.unit_check(0, 3 * sb, sb),
                    Check::Pass {
                        q: !q_lost,
                        zero: false
                    }
                );
            }
        }
        let paths = write_array("uc5", 5, 2, 4, chunk, 8 * stripes);
        let sb5 = u64::from(chunk) * 512 * 3;
        assert_eq!(
            reader(&paths, &[]).unit_check(0, 0, sb5),
            Check::Pass {
                q: false,
                zero: false
            }
        );
        // Rows of zeros pass in any geometry, and say so.
        for p in &paths {
            let mut img = std::fs::read(p).unwrap();
            img[16 * 512..].fill(0);
            std::fs::write(p, &img).unwrap();
        }
        assert_eq!(
            reader(&paths, &[]).unit_check(0, 0, sb5),
            Check::Pass {
                q: false,
                zero: true
            }
        );
        assert_eq!(reader(&paths, &[2]).unit_check(0, 0, sb5), Check::Unknown);
    }

    #[test]
    fn trust_map_merges_worst_first() {
        let mut t = TrustMap::default();
        t.record(0, 10, Trust::Clean);
        t.record(10, 10, Trust::Clean);
        t.record(20, 5, Trust::Rebuilt);
        t.record(5, 10, Trust::Unreadable);
        let n = t.normalised();
        let v: Vec<(u64, u64, Trust)> = n.iter().map(|r| (r.offset, r.len, r.trust)).collect();
        assert_eq!(
            v,
            vec![
                (0, 5, Trust::Clean),
                (5, 10, Trust::Unreadable),
                (15, 5, Trust::Clean),
                (20, 5, Trust::Rebuilt)
            ]
        );
        assert_eq!(t.totals, [20, 5, 0, 10]);
    }
}
