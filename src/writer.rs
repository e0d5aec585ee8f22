//! Writing to an assembled md array: data, parity and mirrors, with md's crash protocol
//! (`shared/docs/md-format.md` §8.2, §8.3) so that an unclean stop never leaves parity
//! silently wrong, and the next open (fastraid's or the kernel's) resyncs exactly what a
//! write may have left inconsistent.
//!
//! # The crash protocol (what is on disk, in which order)
//!
//! md's only "needs resync" input is the superblocks' `resync_offset`, and, when the array
//! has an internal write-intent bitmap, its bits. Before the first write of a burst:
//!
//! 1. *Intent*: with a bitmap, the bits covering every region about to be written are set
//!    in the bitmap of every member, with the bitmap's `events` at the value the superblocks
//!    are about to get. (A bitmap whose `events` is *ahead* of the superblock is fine for
//!    md; one behind would force a full resync.)
//! 2. *Dirty*: every member's superblock gets `resync_offset` = 0 (with a bitmap: the bits
//!    say where) or, without one, the lowest resync sector written in this burst, and
//!    `events + 1`. Bits without a dirty superblock are ignored by md, so both steps are
//!    needed, in this order.
//!
//!    Steps 1 and 2 are durable write by write: they go through each member's O_DSYNC
//!    handle ([`Member::write_durable_at`]), which returns once those bytes are on stable
//!    storage without forcing out the data written before them (an `fdatasync` per new
//!    bitmap bit would make a long sequential write synchronous).
//! 3. Data, parity and mirror copies are written (page cache; no flush per write). A new
//!    region written while the array is already dirty repeats step 1 for its new bits (or
//!    lowers `resync_offset`) before its data is written.
//! 4. *Clean* ([`Writer::flush`], also at close): `fdatasync` every member, so data and
//!    parity are durable and consistent; then superblocks with `resync_offset` = MaxSector
//!    (`events − 1` after a pure dirty/clean flip of a healthy array, as the kernel does, so
//!    spares that are not rewritten stay within one event); then the bitmap with its bits
//!    cleared and `events_cleared` = `events` (a degraded array keeps its bits, as md does,
//!    for a later re-add); both durable as in steps 1 and 2.
//!
//! A kill or power cut anywhere leaves either a clean array whose data and parity agree, or
//! a dirty one whose set bits (or `resync_offset`) cover every stripe that may disagree:
//! [`open`] resyncs those regions (parity recomputed from data, mirrors copied from the
//! first copy, as md does) before it writes anything, and says so in its notes. The data of
//! an interrupted write is whatever reached the members (old or new per sector), as with
//! any disk; what can no longer happen is parity that contradicts the data it protects.
//!
//! A dirty array that is also degraded cannot be resynced (the missing member is
//! reconstructed from the very parity in question); like md ("cannot start dirty degraded
//! array") [`open`] refuses it unless forced.
//!
//! # Writes
//!
//! RAID0 and linear write the data where it maps; RAID1 and RAID10 write every present
//! copy. RAID4/5/6 work stripe by stripe on the rows `[lo, hi)` of the chunks the write
//! touches:
//!
//! * a full-stripe write computes P (and Q) from the new data alone;
//! * otherwise, with every member of the stripe present and in sync for those rows, it
//!   picks whichever reads less: *read-modify-write* (old data of the written bytes and old
//!   P/Q; the parity of the change `old ⊕ new`, computed with the same P/Q kernels, is
//!   added to the old parity) or *reconstruct-write* (the untouched data of the rows; parity
//!   recomputed);
//! * a degraded stripe always reconstructs: the rows of every data chunk are read through
//!   the array reader (which rebuilds a missing one from parity), the new data laid over
//!   them, and P/Q recomputed and written to the members that are present, so the data of a
//!   missing member stays recoverable from the parity.

use std::ops::{ControlFlow, Range};
use std::path::Path;

use crate::array::ArrayReader;
use crate::assemble::{self, AssembleOptions, MemberState};
use crate::error::{invalid, Error, Result};
use crate::io::Member;
use crate::layout::{Geometry, Level, Role, SECTOR_SIZE};
use crate::md::bitmap::{self, BitmapHeader, HEADER_BYTES, STATE_STALE};
use crate::md::{self, FeatureMap, MdTime, Superblock, SuperblockV1, MAX_SECTOR};
use crate::parity::{self, Options};
use crate::resync::{self, span_sectors, ResyncOptions, Target};

/// Where a superblock lives: on the member serving a slot, or on a spare of our own.
#[derive(Debug)]
enum Place {
    Slot(usize),
    Spare(Member),
}

#[derive(Debug)]
struct SbEntry {
    place: Place,
    sb: SuperblockV1,
}

/// The write-intent bitmap as it is on disk (the same on every member).
#[derive(Debug)]
struct Bitmap {
    header: BitmapHeader,
    /// Header, bits and padding up to a whole sector, as read at open (padding kept).
    area: Vec<u8>,
}

impl Bitmap {
    fn bits(&mut self) -> &mut [u8] {
        let n = self.header.bits_bytes() as usize;
        &mut self.area[HEADER_BYTES..HEADER_BYTES + n]
    }
}

/// What [`open`] found and did about an unclean stop.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpenReport {
    /// Resync units (bytes) resynced, and in how many regions.
    pub resynced_bytes: u64,
    pub regions: usize,
    /// Sectors found inconsistent (8-sector pages, md's `mismatch_cnt`).
    pub mismatch_sectors: u64,
    /// `bitmap`, `resync_offset` or empty (nothing to do).
    pub how: &'static str,
}

/// What [`Writer::add_spare`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddReport {
    pub dev_number: u32,
    /// The file did not exist and was created.
    pub created: bool,
    pub events: u64,
    pub notes: Vec<String>,
}

/// Write state of an array opened read-write (see the module doc).
#[derive(Debug)]
pub struct Writer {
    geo: Geometry,
    entries: Vec<SbEntry>,
    bitmap: Option<Bitmap>,
    events: u64,
    /// The superblocks on disk say "not clean".
    dirty: bool,
    /// `resync_offset` on disk (resync sectors), `MAX_SECTOR` when clean.
    resync_offset: u64,
    /// The last superblock update was our own clean→dirty flip.
    flipped: bool,
    redundant: bool,
    opts: Options,
    notes: Vec<String>,
    report: OpenReport,
    /// Scratch: per data index rows, P, Q, delta parity.
    rows: Vec<Vec<u8>>,
    par: [Vec<u8>; 4],
    zero: Vec<u8>,
}

fn md_err(e: md::Error) -> Error {
    Error::from(e)
}

fn now() -> u64 {
    MdTime::now().to_v1()
}

/// Assemble `paths` read-write and make the array consistent for writing: an array that
/// was not stopped cleanly is resynced where its bitmap (or `resync_offset`) says, before
/// anything else is written.
///
/// Refused ([`Error::Unsupported`]): a reshape in progress, metadata 0.90, journal or PPL
/// arrays, clustered bitmaps. A dirty degraded array needs `force`.
pub fn open<P: AsRef<Path>>(paths: &[P], force: bool) -> Result<(ArrayReader, Writer)> {
    let asm = assemble::assemble(
        paths,
        AssembleOptions {
            force,
            writable: true,
        },
    )?;
    if asm.parts.len() > 1 {
        return Err(Error::Unsupported(
            "a reshape is in progress: open the array read-only, or finish the reshape first"
                .into(),
        ));
    }
    let Some(fm) = asm.reference.feature_map else {
        return Err(Error::Unsupported(
            "metadata 0.90 arrays are read-only in fastraid (open with readonly=True)".into(),
        ));
    };
    if fm.intersects(FeatureMap::JOURNAL | FeatureMap::PPL | FeatureMap::CLUSTERED) {
        return Err(Error::Unsupported(format!(
            "arrays with {} are read-only in fastraid",
            fm.names().join(", ")
        )));
    }
    let geo = asm.geometry.clone();
    let redundant = !matches!(geo.level(), Level::Raid0 | Level::Linear);
    let mut entries = Vec::new();
    let mut notes = Vec::new();
    for (i, s) in asm.slots.iter().enumerate() {
        if let Some(s) = s {
            entries.push(SbEntry {
                place: Place::Slot(i),
                sb: read_v1(&s.device)?,
            });
        }
    }
    // Spares are kept in step too, so a later rebuild can use them.
    for r in &asm.reports {
        if r.state == MemberState::Spare {
            let m = Member::open_with(Path::new(&r.path), true)?;
            let sb = read_v1(&m)?;
            entries.push(SbEntry {
                place: Place::Spare(m),
                sb,
            });
        }
    }
    let reference = &asm.reference;
    let events = reference.events;
    let resync_offset = reference.resync_offset;
    let degraded = asm.degraded();
    // The bitmap, read from the reference member's place on the first slot member (every
    // member carries a copy; md trusts the freshest).
    let mut bitmap = None;
    if redundant {
        if let (Some(off), Some(first)) =
            (reference.bitmap_offset, asm.slots.iter().flatten().next())
        {
            let at = bitmap_byte(reference.super_offset, off);
            let mut head = vec![0u8; HEADER_BYTES];
            let parsed = at
                .ok_or("bitmap offset outside the device")
                .and_then(|at| {
                    first
                        .device
                        .read_exact_at(&mut head, at)
                        .map_err(|_| "bitmap unreadable")
                })
                .and_then(|()| BitmapHeader::parse(&head));
            match parsed {
                Ok(h) if h.uuid == reference.array_uuid => {
                    let len = (HEADER_BYTES as u64 + h.bits_bytes()).next_multiple_of(SECTOR_SIZE);
                    let mut area = vec![0u8; len as usize];
                    first
                        .device
                        .read_exact_at(&mut area, at.unwrap_or_default())?;
                    bitmap = Some(Bitmap { header: h, area });
                }
                Ok(_) => notes.push("bitmap UUID differs from the array's: ignored".into()),
                Err(why) => notes.push(format!("bitmap ignored: {why}")),
            }
        }
    }
    let mut w = Writer {
        geo,
        entries,
        bitmap,
        events,
        dirty: resync_offset != MAX_SECTOR,
        resync_offset,
        flipped: false,
        redundant,
        opts: Options::new()?,
        notes,
        report: OpenReport::default(),
        rows: Vec::new(),
        par: Default::default(),
        zero: Vec::new(),
    };
    // One writer per array: an exclusive lock (flock) on every member and spare for as long
    // as this writer's handles are open, so two processes (or two `open` calls) cannot
    // interleave parity updates. Readers take no lock.
    for e in &w.entries {
        let m = match &e.place {
            Place::Slot(i) => &asm.slots[*i].as_ref().expect("present slot").device,
            Place::Spare(m) => m,
        };
        if let Err(err) = m.file().try_lock() {
            return Err(Error::Io(format!(
                "{}: in use by another writer (locked: {err}); close the other \
                 fastraid.open(...) of this array first",
                m.path().display()
            )));
        }
    }
    let mut rd = ArrayReader::new(asm)?;
    if w.dirty && w.redundant {
        if degraded {
            if !force {
                return Err(Error::Assembly(
                    "the array was not stopped cleanly and is degraded: the missing member's \
                     data in the regions being written then may be wrong and cannot be \
                     resynced (md refuses such an array); open it read-only, or with \
                     force=True to write anyway"
                        .into(),
                ));
            }
            w.notes.push(
                "not stopped cleanly and degraded: opened by force without a resync; data \
                 rebuilt in recently written regions may be wrong"
                    .into(),
            );
        } else {
            w.resync_dirty(&rd)?;
        }
    }
    if w.dirty {
        w.flush(&mut rd)?;
    }
    Ok((rd, w))
}

fn read_v1(m: &Member) -> Result<SuperblockV1> {
    let found = md::probe(m.len(), |off, buf| m.read_io(buf, off))
        .map_err(|e| Error::Io(format!("{}: {e}", m.path().display())))?;
    match md::preferred(&found).map(|f| &f.superblock) {
        Some(Ok(Superblock::V1(sb))) => Ok(sb.clone()),
        _ => Err(Error::Unsupported(format!(
            "{}: no version-1 superblock to update",
            m.path().display()
        ))),
    }
}

fn member<'a>(rd: &'a ArrayReader, e: &'a SbEntry) -> &'a Member {
    match &e.place {
        Place::Slot(i) => {
            &rd.assembly().slots[*i]
                .as_ref()
                .expect("entries only name present slots")
                .device
        }
        Place::Spare(m) => m,
    }
}

/// Byte offset of a bitmap `off` signed sectors from the superblock at `super_offset`.
fn bitmap_byte(super_offset: u64, off: i32) -> Option<u64> {
    super_offset
        .checked_add_signed(i64::from(off))
        .and_then(|s| s.checked_mul(SECTOR_SIZE))
}

impl Writer {
    /// Decisions and warnings, in words (the resync after an unclean stop among them).
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// What [`open`] resynced.
    pub fn open_report(&self) -> &OpenReport {
        &self.report
    }

    /// Event count on the superblocks.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// The superblocks currently say "not clean" (writes since the last flush).
    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    fn sync_all(&self, rd: &ArrayReader) -> Result<()> {
        for e in &self.entries {
            member(rd, e).sync_data()?;
        }
        Ok(())
    }

    /// Every superblock with the current `events` and `resync_offset`, each write durable
    /// when it returns (O_DSYNC: only these bytes are forced out, not the data before them).
    fn write_superblocks(&mut self, rd: &ArrayReader) -> Result<()> {
        let (events, resync_offset, t) = (self.events, self.resync_offset, now());
        let mut blocks = Vec::with_capacity(self.entries.len());
        for e in &mut self.entries {
            e.sb.events = events;
            e.sb.resync_offset = resync_offset;
            e.sb.utime_raw = t;
            e.sb.update_checksum().map_err(md_err)?;
            blocks.push((
                e.sb.super_offset * SECTOR_SIZE,
                e.sb.to_block().map_err(md_err)?,
            ));
        }
        for (e, (at, b)) in self.entries.iter().zip(&blocks) {
            member(rd, e).write_durable_at(b, *at)?;
        }
        Ok(())
    }

    /// The bitmap area on every member, each write durable when it returns (as above).
    fn write_bitmap(&mut self, rd: &ArrayReader) -> Result<()> {
        let Some(bm) = self.bitmap.as_mut() else {
            return Ok(());
        };
        bm.header.state &= !STATE_STALE;
        let head = bm.header.to_bytes();
        bm.area[..HEADER_BYTES].copy_from_slice(&head);
        for e in &self.entries {
            let Some(off) = e.sb.bitmap_offset() else {
                continue;
            };
            let at = bitmap_byte(e.sb.super_offset, off)
                .ok_or_else(|| Error::Io("bitmap offset outside the device".into()))?;
            member(rd, e).write_durable_at(&bm.area, at)?;
        }
        Ok(())
    }

    /// Record the intent to write resync units `span` (sectors) before writing them.
    fn intend(&mut self, rd: &ArrayReader, span: Range<u64>) -> Result<()> {
        if !self.redundant || span.is_empty() {
            return Ok(());
        }
        let transition = !self.dirty;
        if let Some(bm) = self.bitmap.as_mut() {
            let c = bm.header.chunk_sectors();
            let mut changed = false;
            let bits = bm.bits();
            for i in span.start / c..=(span.end - 1) / c {
                changed |= bitmap::set_bit(bits, i);
            }
            if transition {
                bm.header.events = self.events + 1;
            }
            if changed || transition {
                self.write_bitmap(rd)?;
            }
            if transition {
                self.resync_offset = 0;
            }
        } else if span.start < self.resync_offset || transition {
            self.resync_offset = if transition {
                span.start
            } else {
                self.resync_offset.min(span.start)
            };
        } else {
            return Ok(());
        }
        if transition {
            self.events += 1;
            self.flipped = true;
            self.dirty = true;
        } else if self.bitmap.is_some() {
            return Ok(());
        } else {
            self.flipped = false;
        }
        self.write_superblocks(rd)
    }

    /// Make everything written durable and mark the array clean (module doc, step 4).
    pub fn flush(&mut self, rd: &mut ArrayReader) -> Result<()> {
        self.sync_all(rd)?;
        if !self.dirty {
            return Ok(());
        }
        let degraded = rd.assembly().degraded();
        if self.flipped && !degraded && self.events > 0 {
            self.events -= 1;
        } else {
            self.events += 1;
        }
        self.flipped = false;
        self.resync_offset = MAX_SECTOR;
        self.write_superblocks(rd)?;
        let events = self.events;
        if let Some(bm) = self.bitmap.as_mut() {
            bm.header.events = events;
            if !degraded {
                bm.bits().fill(0);
                bm.header.events_cleared = events;
            }
            self.write_bitmap(rd)?;
        }
        self.dirty = false;
        Ok(())
    }

    /// Resync what the bitmap (or `resync_offset`) says may be inconsistent.
    fn resync_dirty(&mut self, rd: &ArrayReader) -> Result<()> {
        let span = span_sectors(&self.geo);
        let start = self.resync_offset.min(span);
        let mut ranges: Vec<Range<u64>> = Vec::new();
        let usable_bitmap = self
            .bitmap
            .as_ref()
            .filter(|b| b.header.events >= self.events && b.header.state & STATE_STALE == 0);
        match usable_bitmap {
            Some(bm) => {
                let c = bm.header.chunk_sectors();
                let bits = &bm.area[HEADER_BYTES..];
                for i in 0..bm.header.bits() {
                    if !bitmap::bit(bits, i) {
                        continue;
                    }
                    let r = (i * c).max(start)..((i + 1) * c).min(span);
                    if r.is_empty() {
                        continue;
                    }
                    match ranges.last_mut() {
                        Some(last) if last.end == r.start => last.end = r.end,
                        _ => ranges.push(r),
                    }
                }
                self.report.how = "bitmap";
            }
            None => {
                if start < span {
                    ranges.push(start..span);
                }
                self.report.how = "resync_offset";
            }
        }
        let slots = &rd.assembly().slots;
        let targets: Vec<Option<Target<'_>>> = slots
            .iter()
            .map(|s| {
                s.as_ref().map(|s| Target {
                    file: s.device.file(),
                    data_offset: s.data_offset,
                })
            })
            .collect();
        let opts = ResyncOptions::new()?;
        for r in &ranges {
            let st = resync::resync(&self.geo, &targets, r.clone(), &opts, &mut |_, _| {
                ControlFlow::Continue(())
            })?;
            self.report.resynced_bytes += st.bytes_done;
            self.report.mismatch_sectors += st.mismatch_sectors;
        }
        self.report.regions = ranges.len();
        self.notes.push(format!(
            "not stopped cleanly: resynced {} bytes in {} region(s) from the {}; {} \
             inconsistent sectors repaired",
            self.report.resynced_bytes,
            ranges.len(),
            if self.report.how == "bitmap" {
                "write-intent bitmap"
            } else {
                "superblock's resync_offset"
            },
            self.report.mismatch_sectors
        ));
        Ok(())
    }

    // ------------------------------------------------------------------ membership

    /// Mark the member of `slot` faulty, as `mdadm --fail` does (§8.4): the others' role
    /// tables get 0xfffe for its device number and every superblock but its own gets
    /// `events + 1`, so the failed member is left out (stale) at every later assembly. The
    /// array is flushed clean first. Ends this writer: re-open the array to go on.
    /// Returns the failed member's path.
    ///
    /// Refused ([`Error::TooManyFailures`]) where the array could not run without it.
    pub fn fail(mut self, mut rd: ArrayReader, slot: u32) -> Result<String> {
        let asm = rd.assembly();
        let n = asm.slots.len();
        let Some(m) = asm.slots.get(slot as usize).and_then(Option::as_ref) else {
            return Err(invalid!(
                "slot {slot}: no active member there (the array has slots 0..{n})"
            ));
        };
        let path = asm.reports[m.report].path.clone();
        // Fully in-sync members only: a partially rebuilt one does not cover for the other.
        let present: Vec<bool> = (0..n)
            .map(|i| {
                i != slot as usize
                    && asm.slots[i]
                        .as_ref()
                        .is_some_and(|s| s.valid_bytes == u64::MAX && s.bad.is_empty())
            })
            .collect();
        if !assemble::enough(self.geo.level(), &present, Some(&self.geo)) {
            return Err(Error::TooManyFailures(format!(
                "slot {slot} ({path}): the {} array cannot run without it (missing or \
                 recovering slots: {:?})",
                self.geo.level().name(),
                (0..n)
                    .filter(|&i| !present[i] && i != slot as usize)
                    .collect::<Vec<_>>()
            )));
        }
        self.flush(&mut rd)?;
        let i = self
            .entries
            .iter()
            .position(|e| matches!(e.place, Place::Slot(s) if s == slot as usize))
            .ok_or_else(|| invalid!("slot {slot}: no superblock"))?;
        let dn = self.entries.remove(i).sb.dev_number as usize;
        for e in &mut self.entries {
            if let Some(r) = e.sb.dev_roles.get_mut(dn) {
                *r = md::Role::FAULTY_RAW;
            }
        }
        self.bump(&mut rd)?;
        Ok(path)
    }

    /// Remove a failed, stale or spare device from the array, as `mdadm --remove` does:
    /// its device number becomes unused (0xffff) in every member's role table, `events + 1`.
    /// Its own superblock is left as it is (stale, so never assembled again; nothing of its
    /// data is destroyed). An active member must be failed first. Ends this writer.
    pub fn remove(mut self, mut rd: ArrayReader, path: &Path) -> Result<u32> {
        let dev = Member::open(path)?;
        let asm = rd.assembly();
        let report = asm
            .reports
            .iter()
            .find(|r| Member::open(Path::new(&r.path)).is_ok_and(|m| m.same_as(&dev)))
            .ok_or_else(|| invalid!("{}: not among the array's members", path.display()))?;
        let Some(info) = report
            .info
            .as_ref()
            .filter(|i| i.array_uuid == asm.reference.array_uuid)
        else {
            return Err(invalid!("{}: not a member of this array", path.display()));
        };
        match report.state {
            MemberState::Faulty | MemberState::Stale { used: false, .. } | MemberState::Spare => {}
            _ => {
                return Err(invalid!(
                    "{}: {} in this array: fail it first",
                    path.display(),
                    report.state.name()
                ))
            }
        }
        let dn = info.dev_number;
        if self
            .entries
            .iter()
            .any(|e| matches!(e.place, Place::Slot(_)) && e.sb.dev_number == dn)
        {
            return Err(invalid!(
                "{}: its device number {dn} belongs to an active member",
                path.display()
            ));
        }
        self.flush(&mut rd)?;
        self.entries.retain(|e| match &e.place {
            Place::Spare(m) => !m.same_as(&dev),
            Place::Slot(_) => true,
        });
        for e in &mut self.entries {
            if let Some(r) = e.sb.dev_roles.get_mut(dn as usize) {
                *r = md::Role::SPARE_RAW;
            }
        }
        self.bump(&mut rd)?;
        Ok(dn)
    }

    /// `events + 1` on every superblock (and the bitmap's, so it does not look stale).
    /// Bitmap first: md accepts a bitmap ahead of the superblocks, not behind.
    fn bump(&mut self, rd: &mut ArrayReader) -> Result<()> {
        self.events += 1;
        self.flipped = false;
        if let Some(bm) = self.bitmap.as_mut() {
            bm.header.events = self.events;
        }
        self.write_bitmap(rd)?;
        self.write_superblocks(rd)
    }

    /// Add `path` as a spare, as `mdadm --add` does: it gets a superblock of this array
    /// (a new device number, role spare, no data) and a copy of the bitmap; then every
    /// member's `events + 1`. A missing file is created sparse, as large as the largest
    /// member. A device holding another array's superblock, a file system or a partition
    /// table is refused unless `force`. The array is flushed clean first. Ends this
    /// writer: re-open the array (with `path` among the members) to go on; a degraded
    /// array is then rebuilt onto the spare by [`crate::rebuild`].
    pub fn add_spare(mut self, mut rd: ArrayReader, path: &Path, force: bool) -> Result<AddReport> {
        self.flush(&mut rd)?;
        let template = self
            .entries
            .iter()
            .find(|e| matches!(e.place, Place::Slot(_)))
            .map(|e| e.sb.clone())
            .ok_or_else(|| invalid!("no active member to copy the superblock from"))?;
        let largest = rd
            .assembly()
            .slots
            .iter()
            .flatten()
            .map(|s| s.device.len())
            .max()
            .unwrap_or(0);
        let created = !path.exists();
        if created {
            let f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(path)
                .map_err(|e| Error::Io(format!("{}: cannot create: {e}", path.display())))?;
            f.set_len(largest)
                .map_err(|e| Error::Io(format!("{}: cannot size: {e}", path.display())))?;
        }
        let dev = Member::open_with(path, true)?;
        for e in &self.entries {
            if member(&rd, e).same_as(&dev) {
                return Err(invalid!(
                    "{}: already a member of this array",
                    path.display()
                ));
            }
        }
        let uuid = template.set_uuid;
        let found = crate::create::scan_signatures(dev.len(), |off, buf| dev.read_io(buf, off))
            .map_err(|e| Error::Io(format!("{}: {e}", path.display())))?;
        let foreign: Vec<String> = found
            .iter()
            .filter(|s| !matches!(s, crate::create::Signature::Md { uuid: u, .. } if *u == uuid))
            .map(ToString::to_string)
            .collect();
        if !foreign.is_empty() && !force {
            return Err(Error::MemberInUse(format!(
                "{} holds {}; it is not part of this array. Pass force=True / --force to \
                 overwrite it",
                path.display(),
                foreign.join("; ")
            )));
        }
        // The new superblock: this array's, for the device's own size.
        let sectors = dev.len() / SECTOR_SIZE;
        let location = md::Location::from_v1_super_offset(template.super_offset);
        let super_offset = location
            .sector(sectors)
            .ok_or_else(|| invalid!("{}: too small for a superblock", path.display()))?;
        let mut sb = template.clone();
        sb.super_offset = super_offset;
        sb.data_size = match location {
            md::Location::V1_0 => super_offset.saturating_sub(md::v1::bitmap_space(sectors) + 8),
            _ => sectors.saturating_sub(sb.data_offset),
        };
        let needed = if matches!(self.geo.level(), Level::Raid0 | Level::Linear) {
            return Err(Error::Unsupported(format!(
                "{} arrays have no redundancy: a spare could never be used",
                self.geo.level().name()
            )));
        } else {
            sb.size
        };
        if sb.data_size < needed {
            return Err(invalid!(
                "{}: too small: {} bytes of data space, the array needs {} per member",
                path.display(),
                sb.data_size * SECTOR_SIZE,
                needed * SECTOR_SIZE
            ));
        }
        for f in [
            FeatureMap::RECOVERY_OFFSET,
            FeatureMap::REPLACEMENT,
            FeatureMap::BAD_BLOCKS,
            FeatureMap::RECOVERY_BITMAP,
        ] {
            sb.feature_map.set(f, false);
        }
        sb.recovery_offset = 0;
        sb.device_uuid = crate::create::random_uuid()?;
        // The lowest device number no member uses and no role table names (a failed
        // member's number stays taken).
        let used: Vec<u32> = self.entries.iter().map(|e| e.sb.dev_number).collect();
        let dn = (0..template.max_dev)
            .find(|&d| {
                !used.contains(&d)
                    && template.dev_roles.get(d as usize) == Some(&md::Role::SPARE_RAW)
            })
            .ok_or_else(|| invalid!("no free device number in the role table"))?;
        sb.dev_number = dn;
        // Old superblocks elsewhere on the device would compete with the new one.
        let old = md::probe(dev.len(), |off, buf| dev.read_io(buf, off))
            .map_err(|e| Error::Io(format!("{}: {e}", path.display())))?;
        for f in old.iter().filter(|f| f.sector != super_offset) {
            dev.write_all_at(&[0u8; md::SUPERBLOCK_BYTES], f.sector * SECTOR_SIZE)?;
        }
        dev.sync_data()?;
        self.entries.push(SbEntry {
            place: Place::Spare(dev),
            sb,
        });
        self.bump(&mut rd)?;
        Ok(AddReport {
            dev_number: dn,
            created,
            events: self.events,
            notes: if foreign.is_empty() {
                Vec::new()
            } else {
                vec![format!(
                    "{}: overwrote {} (force)",
                    path.display(),
                    foreign.join("; ")
                )]
            },
        })
    }

    // ------------------------------------------------------------------ writes

    /// Write `data` at array byte `offset` (see the module doc for the order of things).
    pub fn write_at(&mut self, rd: &mut ArrayReader, offset: u64, data: &[u8]) -> Result<()> {
        let len = data.len() as u64;
        if len == 0 {
            return Ok(());
        }
        let size = rd.size();
        if offset.checked_add(len).is_none_or(|e| e > size) {
            return Err(invalid!(
                "range {offset}+{len} is outside the array of {size} bytes"
            ));
        }
        match self.geo.level() {
            Level::Raid4 | Level::Raid5 | Level::Raid6 => self.write_parity(rd, offset, data),
            _ => self.write_copies(rd, offset, data),
        }
    }

    /// RAID0, linear, RAID1, RAID10: every present copy of every piece.
    fn write_copies(&mut self, rd: &mut ArrayReader, offset: u64, data: &[u8]) -> Result<()> {
        const STEP: u64 = 16 << 20;
        let end = offset + data.len() as u64;
        let mut pos = offset;
        while pos < end {
            let n = STEP.min(end - pos);
            // Resync units: member sectors for RAID1 (= array sectors), array sectors for
            // RAID10; RAID0 and linear have none.
            self.intend(rd, pos / SECTOR_SIZE..(pos + n).div_ceil(SECTOR_SIZE))?;
            let ext = self
                .geo
                .extents(pos, n)
                .map_err(|e| Error::InvalidArgument(e.to_string()))?;
            let slots = &rd.assembly().slots;
            // Every piece needs at least one present copy (assembly guarantees it).
            for e in &ext {
                let any = ext.iter().any(|o| {
                    o.array_offset == e.array_offset && slots[o.member as usize].is_some()
                });
                if !any {
                    return Err(Error::TooManyFailures(format!(
                        "array bytes {}+{}: no member holding them is present",
                        e.array_offset, e.len
                    )));
                }
            }
            for e in &ext {
                let Some(m) = &slots[e.member as usize] else {
                    continue;
                };
                let src = &data[(e.array_offset - offset) as usize..][..e.len as usize];
                m.device.write_all_at(src, m.data_offset + e.dev_offset)?;
            }
            pos += n;
        }
        Ok(())
    }

    /// RAID4/5/6, stripe by stripe.
    fn write_parity(&mut self, rd: &mut ArrayReader, offset: u64, data: &[u8]) -> Result<()> {
        let cs = u64::from(self.geo.chunk_sectors()) * SECTOR_SIZE;
        let k = u64::from(self.geo.data_disks().unwrap_or(1));
        let stripe_bytes = cs * k;
        let end = offset + data.len() as u64;
        // Intent for the whole call at once: one flush for a long sequential write.
        let (s0, s1) = (offset / stripe_bytes, (end - 1) / stripe_bytes);
        let cs_sec = cs / SECTOR_SIZE;
        self.intend(rd, s0 * cs_sec..(s1 + 1) * cs_sec)?;
        let mut pos = offset;
        while pos < end {
            let s = pos / stripe_bytes;
            let send = ((s + 1) * stripe_bytes).min(end);
            let chunk = &data[(pos - offset) as usize..(send - offset) as usize];
            self.write_stripe(rd, s, pos - s * stripe_bytes, chunk)?;
            pos = send;
        }
        Ok(())
    }

    /// One stripe: `new` goes at byte `a` of the stripe's data.
    fn write_stripe(&mut self, rd: &mut ArrayReader, s: u64, a: u64, new: &[u8]) -> Result<()> {
        let cs = u64::from(self.geo.chunk_sectors()) * SECTOR_SIZE;
        let k = self.geo.data_disks().unwrap_or(1) as usize;
        let len = new.len() as u64;
        let roles = self
            .geo
            .stripe_roles(s)
            .map_err(|e| Error::InvalidArgument(e.to_string()))?;
        let by_index = roles.members_by_index();
        let (j0, j1) = (a / cs, (a + len - 1) / cs);
        // The rows [lo, hi) of every chunk that the write touches.
        let (lo, hi) = if j0 == j1 {
            (a % cs, (a + len - 1) % cs + 1)
        } else {
            (0, cs)
        };
        let w = (hi - lo) as usize;
        let dev = s * cs + lo;
        // The bytes of data index j's rows that `new` covers, as [start, end) in the rows,
        // and where they are in `new`.
        let cover = |j: usize| -> Option<(usize, usize, usize)> {
            let (rs, re) = (j as u64 * cs + lo, j as u64 * cs + hi);
            let (cs_, ce) = (rs.max(a), re.min(a + len));
            (cs_ < ce).then(|| ((cs_ - rs) as usize, (ce - rs) as usize, (cs_ - a) as usize))
        };
        let healthy = (0..roles.roles.len()).all(|m| {
            rd.assembly().slots[m]
                .as_ref()
                .is_some_and(|sm| sm.usable(dev, w as u64) == (true, w as u64))
        });
        let npar = if roles.q_member.is_some() { 2 } else { 1 };
        let touched = new.len();
        let rmw = healthy && touched + npar * w < k * w - touched;
        for v in &mut self.par {
            v.resize(w, 0);
        }
        self.rows.resize(self.rows.len().max(k), Vec::new());
        if self.zero.len() < w {
            self.zero.resize(w, 0);
        }

        if rmw {
            // The change old ⊕ new of the covered bytes (zero elsewhere in the rows), and
            // the old P/Q; the parity of the change is added to the old parity.
            let slots = &rd.assembly().slots;
            for (j, row) in self.rows[..k].iter_mut().enumerate() {
                row.clear();
                row.resize(w, 0);
                if let Some((c0, c1, at)) = cover(j) {
                    let m = slots[by_index[j] as usize].as_ref().expect("healthy");
                    m.device
                        .read_exact_at(&mut row[c0..c1], m.data_offset + dev + c0 as u64)?;
                    xor_into(&mut row[c0..c1], &new[at..at + (c1 - c0)]);
                }
            }
            let [p_old, q_old, dp, dq] = &mut self.par;
            let pm = slots[roles.p_member as usize].as_ref().expect("healthy");
            pm.device.read_exact_at(p_old, pm.data_offset + dev)?;
            let rows: Vec<&[u8]> = self.rows[..k].iter().map(Vec::as_slice).collect();
            if let Some(q) = roles.q_member {
                let qm = slots[q as usize].as_ref().expect("healthy");
                qm.device.read_exact_at(q_old, qm.data_offset + dev)?;
                parity::pq_gen(
                    &self.opts,
                    &slot_blocks(&roles, &rows, &self.zero[..w]),
                    dp,
                    dq,
                )?;
                xor_into(q_old, dq);
            } else {
                parity::xor_gen(&self.opts, &rows, dp)?;
            }
            xor_into(p_old, dp);
        } else {
            // Reconstruct-write: every data chunk's rows (from the members, or through the
            // reader, which rebuilds a missing one), the new data laid over them.
            for (j, &member) in by_index.iter().enumerate() {
                let c = cover(j);
                if matches!(c, Some((0, e, _)) if e == w) {
                    continue; // entirely new: taken from `new` directly
                }
                let mut row = std::mem::take(&mut self.rows[j]);
                row.resize(w, 0);
                if healthy {
                    let m = rd.assembly().slots[member as usize]
                        .as_ref()
                        .expect("healthy");
                    m.device.read_exact_at(&mut row, m.data_offset + dev)?;
                } else {
                    rd.read_at(s * cs * k as u64 + j as u64 * cs + lo, &mut row, true)?;
                }
                if let Some((c0, c1, at)) = c {
                    row[c0..c1].copy_from_slice(&new[at..at + (c1 - c0)]);
                }
                self.rows[j] = row;
            }
            let rows: Vec<&[u8]> = (0..k)
                .map(|j| match cover(j) {
                    Some((0, e, at)) if e == w => &new[at..at + w],
                    _ => &self.rows[j][..w],
                })
                .collect();
            let [p, q, _, _] = &mut self.par;
            if roles.q_member.is_some() {
                parity::pq_gen(
                    &self.opts,
                    &slot_blocks(&roles, &rows, &self.zero[..w]),
                    p,
                    q,
                )?;
            } else if k == 1 {
                p.copy_from_slice(rows[0]); // two-member RAID-5: P mirrors the data
            } else {
                parity::xor_gen(&self.opts, &rows, p)?;
            }
        }

        // The covered data, then P and Q, to the members that are present.
        let slots = &rd.assembly().slots;
        for (j, &member) in by_index.iter().enumerate() {
            if let (Some((c0, c1, at)), Some(m)) = (cover(j), &slots[member as usize]) {
                m.device
                    .write_all_at(&new[at..at + (c1 - c0)], m.data_offset + dev + c0 as u64)?;
            }
        }
        if let Some(pm) = &slots[roles.p_member as usize] {
            pm.device.write_all_at(&self.par[0], pm.data_offset + dev)?;
        }
        if let Some(qm) = roles.q_member.and_then(|q| slots[q as usize].as_ref()) {
            qm.device.write_all_at(&self.par[1], qm.data_offset + dev)?;
        }
        Ok(())
    }
}

/// The data rows in RAID-6 syndrome slot order (zero blocks for DDF's P/Q slots).
fn slot_blocks<'a>(
    roles: &crate::layout::StripeRoles,
    rows: &[&'a [u8]],
    zero: &'a [u8],
) -> Vec<&'a [u8]> {
    let mut v = vec![zero; roles.syndrome_disks as usize];
    for r in &roles.roles {
        if let Role::Data { index, slot } = *r {
            v[slot as usize] = rows[index as usize];
        }
    }
    v
}

fn xor_into(dst: &mut [u8], src: &[u8]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d ^= s;
    }
}
