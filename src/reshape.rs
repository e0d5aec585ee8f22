//! Reshape: change the geometry of a RAID-4/5/6 md array in place, offline, the way md's
//! reshape does (`shared/docs/md-format.md` §6, §8.5), crash-safe at every instant, and
//! finish (`grow --continue`) a reshape that the kernel left interrupted. RAID-10 near and
//! offset layouts go through the same engine (`src/reshape/raid10.rs`: md's rules, the
//! member rows of a geometry, every copy written).
//!
//! # What is handled
//!
//! md's *new_offset* kind, forwards: the data moves to `data_offset + new_offset` with a
//! negative `new_offset` (free space before the data), and the reshape walks the array from
//! its start. New-geometry stripes then land on rows *below* the old data that is still
//! needed, so no backup is needed. That covers growing RAID-4/5/6 by added members
//! (`delta_disks > 0`) and, with the same number of members, chunk and layout changes whose
//! new stripes hold at least as much data as the old ones.
//!
//! *Backwards* (shrinking, or same width with smaller stripes / room only after the data):
//! the mirror image. `new_offset` is positive, `reshape_position` starts at the new size and
//! decreases (RESHAPE_BACKWARDS only when `delta_disks == 0`, §8.5); bytes at or above the
//! checkpoint are new. Safety rule mirrored: a new row is written only at or above the end
//! of the old rows still needed by the on-disk checkpoint (`new_offset + new_row(b) ≥
//! old_row_end(checkpoint)`), and the checkpoint stays one reader unit above what was written.
//! A *shrink* is refused unless the caller declares the bytes kept
//! ([`ReshapeOptions::array_size`], mdadm's `--array-size`) and they fit the smaller array;
//! the bytes past the smaller array's size are discarded, and the removed members become
//! spares at the finish.
//!
//! *In place* (no room to move, `new_offset` 0, either direction): each batch is whole
//! units (`lcm` of both stripe sizes) recorded at once. When its new rows overwrite old
//! rows still needed, its logical bytes first go to a journal,
//! `fastraid-reshape-<uuid>.journal` next to the first member, in mdadm's backup-file
//! format (`md_backup_data-1`, data at 4 KiB, fastraid's mark in the header padding):
//! clear the header (fdatasync), write the data (fdatasync), the header (fdatasync); then
//! the rows, fdatasync, the checkpoint. A restart finds the journal, writes it back in the
//! new geometry and records the checkpoint past it (as mdadm restores its backup), then
//! trusts the checkpoint. The journal is removed at the finish. Level changes are
//! `level.rs`'s, growing a RAID-0 `raid0.rs`'s (the RAID-4 it reshapes lacks its parity
//! member, as md's does); other degraded arrays and metadata 0.90 are refused with
//! [`Error::Unsupported`].
//! Going back instead ([`ReshapeOptions::revert`]: turn the reshape around and run it
//! back) is `revert.rs`'s.
//!
//! # On-disk states (what a power cut leaves)
//!
//! 1. *Start* (a new reshape only). The first new-geometry stripes (one reader unit, see
//!    below) are written into the free space before the data, where nothing lives; then
//!    every member's superblock gets RESHAPE_ACTIVE|NEW_OFFSET, `reshape_position` 0,
//!    `new_level/new_layout/new_chunk`, `delta_disks`, `raid_disks` = the new count, the
//!    added members' roles, `new_offset`, `events + 1`; `fdatasync`.
//! 2. *Batches*. Array bytes `[r, e)` are read (in their current geometry, through
//!    [`ArrayReader`]), laid out in the new geometry with fresh parity, and written to the
//!    new rows `data_offset + new_offset + …` of every member (page cache).
//! 3. *Checkpoint* ([`Engine::checkpoint`]): `fdatasync` every member (the data below the
//!    new checkpoint is durable), then the bitmap header (when there is one) and every
//!    superblock with the new `reshape_position` and `events + 1`, then `fdatasync`. The
//!    checkpoint is always a multiple of the new stripe size and at least one reader unit
//!    (`lcm` of the old and new stripe sizes) *behind* what was written, so the unit at the
//!    checkpoint reads the same in both geometries: fastraid's reader (which decides the
//!    boundary by content and parity) and the kernel (which trusts the checkpoint) agree.
//! 4. *Safety rule*: a new row is written only if it lies below the first old row still
//!    needed *by the on-disk checkpoint* (`new_offset + new_rows(e) ≤ old_row(checkpoint)`);
//!    when a batch would break it, a checkpoint is written first. So the old copy of every
//!    byte at or past the on-disk checkpoint stays intact until a later checkpoint covers
//!    it: a crash anywhere loses nothing, and the kernel can take over from any checkpoint
//!    (it reads the old geometry from the checkpoint on, exactly what is intact).
//! 5. *Finish*: `fdatasync`; then every superblock gets `data_offset += new_offset`,
//!    `data_size −= new_offset`, the new layout/chunk, the reshape fields cleared,
//!    `events + 1`; `fdatasync`. A crash while the superblocks are being written leaves some
//!    members finished (events E+1) and some at the last checkpoint (events E); [`plan`]
//!    recognises that and completes the lagging superblocks first.
//!
//! Beyond the old array size (a grow adds capacity) the new stripes hold zeros with
//! matching parity, as the kernel writes them.

use std::fmt;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::array::{ArrayReader, Trust};
use crate::assemble::{self, AssembleOptions, MemberState};
use crate::error::{invalid, Error, Result};
use crate::io::Member;
use crate::layout::{Geometry, Layout, Level, Role, SECTOR_SIZE};
use crate::md::bitmap::{BitmapHeader, HEADER_BYTES};
use crate::md::{self, format_uuid, FeatureMap, MdTime, Superblock, SuperblockV1};
use crate::parity::{self, Options};

// Level changes (takeovers around this engine): src/reshape/level.rs.
mod level;
// Turning an interrupted reshape around (`grow --continue --revert`): src/reshape/revert.rs.
mod revert;
pub use revert::RevertStep;
// RAID-10 near/offset: md's rules, member rows of any geometry, the copy writer.
mod raid10;
use raid10::Rows;
// Growing a RAID-0 (through a RAID-4 without its parity, as mdadm): src/reshape/raid0.rs.
mod raid0;

/// Default bytes of new-geometry data per batch.
pub const DEFAULT_BATCH_BYTES: u64 = 8 << 20;
/// Default bytes between checkpoints.
pub const DEFAULT_CHECKPOINT_BYTES: u64 = 256 << 20;
/// Default longest time between checkpoints.
pub const DEFAULT_CHECKPOINT_INTERVAL: Duration = Duration::from_secs(5);

/// What to change (all `None`: finish the reshape in progress).
#[derive(Debug, Clone)]
pub struct ReshapeOptions {
    pub raid_disks: Option<u32>,
    /// md level number (4, 5, 6).
    pub level: Option<i32>,
    pub chunk_bytes: Option<u64>,
    /// md layout number.
    pub layout: Option<u32>,
    /// Only finish a reshape in progress (`grow --continue`): refuse to start one.
    pub continue_only: bool,
    /// Go on where the reader reports bytes as uncertain.
    pub force: bool,
    /// mdadm's backup file (accepted for the kinds that need none; those that need one are
    /// refused).
    pub backup_file: Option<PathBuf>,
    pub batch_bytes: u64,
    /// Bytes between checkpoints; 0: after every batch.
    pub checkpoint_bytes: u64,
    pub checkpoint_interval: Duration,
    pub speed_limit: Option<u64>,
    /// Shrinking: the array bytes the caller keeps (mdadm's `--array-size`, in bytes). A
    /// shrink is refused without it, and when it exceeds what the smaller array holds.
    pub array_size: Option<u64>,
    /// Turn the reshape in progress around and run it back to the geometry it started
    /// from (`grow --continue --revert`, src/reshape/revert.rs).
    pub revert: bool,
}

impl Default for ReshapeOptions {
    fn default() -> Self {
        ReshapeOptions {
            raid_disks: None,
            level: None,
            chunk_bytes: None,
            layout: None,
            continue_only: false,
            force: false,
            backup_file: None,
            batch_bytes: DEFAULT_BATCH_BYTES,
            checkpoint_bytes: DEFAULT_CHECKPOINT_BYTES,
            checkpoint_interval: DEFAULT_CHECKPOINT_INTERVAL,
            speed_limit: None,
            array_size: None,
            revert: false,
        }
    }
}

/// Counters for the progress callback.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    /// Bytes of the new geometry written.
    pub done: u64,
    pub total: u64,
    /// On-disk checkpoint (bytes).
    pub checkpoint: u64,
    pub rate: f64,
}

/// What a finished reshape did.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub resumed_from: u64,
    pub bytes_written: u64,
    pub total: u64,
    pub checkpoints: u64,
    pub events: u64,
    pub size: u64,
    pub seconds: f64,
}

/// Start a reshape, continue one, or only complete the superblocks of a finished one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Start,
    Continue,
    FinishSuperblocks,
    /// Go back to the geometry the reshape in progress started from (src/reshape/revert.rs).
    Revert(RevertStep),
}

/// One member whose superblock this reshape writes.
#[derive(Debug, Clone)]
struct Target {
    path: PathBuf,
    /// Slot in the new geometry.
    slot: u32,
    sb: SuperblockV1,
    /// Byte offset of the bitmap header and the header, when the member has a bitmap.
    bitmap: Option<(u64, BitmapHeader)>,
    /// Being recovered along with the reshape (md's RAID-5 -> RAID-6): valid only below the
    /// new geometry's rows of the checkpoint, so its `recovery_offset` follows them.
    recovering: bool,
}

/// Everything [`Plan::execute`] will do, decided from reads only; prints as the steps.
#[derive(Debug)]
pub struct Plan {
    pub kind: Kind,
    pub uuid: [u8; 16],
    pub level: Level,
    pub old_disks: u32,
    pub new_disks: u32,
    pub old_layout: Layout,
    pub new_layout: Layout,
    pub old_chunk_bytes: u64,
    pub new_chunk_bytes: u64,
    /// Signed sectors from `data_offset` to the new data.
    pub new_offset: i64,
    /// Array bytes (new geometry) from which this run writes.
    pub start: u64,
    /// On-disk checkpoint when the run starts (bytes).
    pub checkpoint: u64,
    pub old_size: u64,
    pub new_size: u64,
    pub events: u64,
    /// Paths by new slot.
    pub members: Vec<String>,
    pub notes: Vec<String>,
    /// The reshape walks from the end of the array to its start (md's backwards kind).
    pub backwards: bool,
    /// In place (`new_offset` 0): the journal of the rows being moved (module docs).
    pub journal: Option<PathBuf>,
    /// Read the old geometry from the checkpoint on, without the reader's boundary search
    /// (fastraid's own in-place reshape, whose journal says exactly what is where).
    pinned: bool,
    /// A level change (src/reshape/level.rs) drives this plan instead of the engine.
    level_change: Option<Box<level::LevelPlan>>,
    old_geo: Geometry,
    new_geo: Geometry,
    targets: Vec<Target>,
    paths: Vec<PathBuf>,
    opts: ReshapeOptions,
}

fn human(bytes: u64) -> String {
    const U: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1024.0 && i < U.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", U[i])
    }
}

fn md_err(e: md::Error) -> Error {
    invalid!("superblock: {e}")
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a.max(1)
    } else {
        gcd(b, a % b)
    }
}

fn read_sb(path: &Path) -> Result<Option<SuperblockV1>> {
    let m = Member::open(path)?;
    let found = md::probe(m.len(), |off, buf| m.read_io(buf, off))
        .map_err(|e| Error::Io(format!("{}: {e}", path.display())))?;
    Ok(match md::preferred(&found).map(|f| &f.superblock) {
        Some(Ok(Superblock::V1(sb))) => Some(sb.clone()),
        _ => None,
    })
}

fn bitmap_of(path: &Path, sb: &SuperblockV1) -> Result<Option<(u64, BitmapHeader)>> {
    let Some(off) = sb.bitmap_offset() else {
        return Ok(None);
    };
    let at = sb
        .super_offset
        .checked_add_signed(i64::from(off))
        .and_then(|s| s.checked_mul(SECTOR_SIZE))
        .ok_or_else(|| Error::Io(format!("{}: bitmap offset out of range", path.display())))?;
    let m = Member::open(path)?;
    let mut head = vec![0u8; HEADER_BYTES];
    m.read_exact_at(&mut head, at)?;
    match BitmapHeader::parse(&head) {
        Ok(h) => Ok(Some((at, h))),
        Err(why) => Err(Error::Unsupported(format!(
            "{}: bitmap unreadable ({why}); reshape refused",
            path.display()
        ))),
    }
}

/// The lowest sector before the data that nothing (superblock, bitmap, bad-block log) uses.
fn lowest_free(sb: &SuperblockV1, bitmap: Option<&BitmapHeader>) -> u64 {
    if sb.super_offset >= sb.data_offset {
        return 0; // 1.0: the metadata is at the end
    }
    let mut low = sb.super_offset + 8;
    if let (Some(off), Some(h)) = (sb.bitmap_offset(), bitmap) {
        let sectors = (HEADER_BYTES as u64 + h.bits_bytes()).div_ceil(SECTOR_SIZE);
        if let Some(s) = sb.super_offset.checked_add_signed(i64::from(off)) {
            low = low.max(s + sectors);
        }
    }
    if sb.bblog_offset > 0 && sb.bblog_size > 0 {
        if let Some(s) = sb
            .super_offset
            .checked_add_signed(i64::from(sb.bblog_offset))
        {
            low = low.max(s + u64::from(sb.bblog_size));
        }
    }
    low
}

fn geometry(
    level: Level,
    layout: Layout,
    disks: u32,
    chunk_bytes: u64,
    size: u64,
) -> Result<Geometry> {
    let c = u32::try_from(chunk_bytes / SECTOR_SIZE).map_err(|_| invalid!("chunk too large"))?;
    Geometry::new(level, layout, disks, c, size, &[]).map_err(|e| invalid!("{e}"))
}

/// A geometry's step: a stripe (RAID-10: a chunk).
fn stripe_bytes(g: &Geometry) -> u64 {
    u64::from(g.chunk_sectors()) * u64::from(g.data_disks().unwrap_or(1)) * SECTOR_SIZE
}

/// How far the checkpoint stays behind what was written (module docs, step 3): one reader
/// unit; none for RAID-10, whose checkpoint fastraid's reader trusts (src/reshape/raid10.rs).
fn reader_unit(old: &Geometry, new: &Geometry) -> u64 {
    if new.level() == Level::Raid10 {
        return 0;
    }
    let (s_o, s_n) = (stripe_bytes(old), stripe_bytes(new));
    s_o / gcd(s_o, s_n) * s_n
}

/// The grid of the checkpoints fastraid records (array bytes), from the new stripe `s_n`
/// and the chunks `c_n`, `c_o` (sectors): the kernel resumes a RAID-4/5/6 reshape only at a
/// multiple of the *larger* chunk × the new data disks (`raid5.c: raid5_run`, "reshape_position
/// not on a stripe boundary": it reshapes in steps of the larger chunk), itself a multiple
/// of the new stripe. For a chunk decrease that is coarser than the new stripe.
pub(crate) fn checkpoint_grid(s_n: u64, c_n: u64, c_o: u64) -> u64 {
    let k = s_n / c_n.max(1) * c_n.max(c_o); // the larger chunk × the new data disks
    s_n / gcd(s_n, k) * k
}

/// [`checkpoint_grid`] of a reshape; RAID-10: the new chunk (md's RAID-10 checkpoints are
/// whole chunks).
fn grid_of(old: &Geometry, new: &Geometry) -> u64 {
    let s_n = stripe_bytes(new);
    if new.level() == Level::Raid10 {
        return s_n;
    }
    checkpoint_grid(
        s_n,
        u64::from(new.chunk_sectors()),
        u64::from(old.chunk_sectors()),
    )
}

/// The array bytes a geometry holds with per-member size `dev_sectors` rounded to `chunk`
/// (RAID-10: md's `raid10_size` of the geometry itself).
fn size_of(g: &Geometry, round_sectors: u64) -> u64 {
    if g.level() == Level::Raid10 {
        return g.array_bytes();
    }
    let c = round_sectors.max(1);
    g.dev_sectors() / c * c * u64::from(g.data_disks().unwrap_or(1)) * SECTOR_SIZE
}

/// Decide what a reshape of the array on `paths` would do (reads only).
pub fn plan<P: AsRef<Path>>(paths: &[P], opts: &ReshapeOptions) -> Result<Plan> {
    let paths: Vec<PathBuf> = paths.iter().map(|p| p.as_ref().to_path_buf()).collect();
    if let Some(p) = revert::plan(&paths, opts)? {
        return Ok(p); // a revert, or a turn-around a crash left half-written
    }
    if let Some(p) = finish_superblocks_plan(&paths, opts)? {
        return Ok(p);
    }
    if let Some(p) = level::plan(&paths, opts)? {
        return Ok(p); // a level change (src/reshape/level.rs)
    }
    engine_plan(&paths, opts, false)
}

/// The same-level engine's plan. `parity_missing`: accept a RAID-4 / RAID-5 parity-last
/// whose only missing member is its parity (md's RAID-0 grow, driven by level.rs).
fn engine_plan(paths: &[PathBuf], opts: &ReshapeOptions, parity_missing: bool) -> Result<Plan> {
    let asm = assemble::assemble(paths, AssembleOptions::default())?;
    let r = &asm.reference;
    if r.feature_map.is_none() {
        return Err(Error::Unsupported(
            "metadata 0.90 arrays cannot be reshaped by fastraid (no new_offset)".into(),
        ));
    }
    let level = asm.geometry.level();
    if !matches!(
        level,
        Level::Raid4 | Level::Raid5 | Level::Raid6 | Level::Raid10
    ) {
        return Err(Error::Unsupported(format!(
            "reshaping a {} array is not supported (RAID-4/5/6/10 only)",
            level.name()
        )));
    }
    let fm = r.feature_map.unwrap_or_default();
    if fm.intersects(FeatureMap::JOURNAL | FeatureMap::PPL | FeatureMap::CLUSTERED) {
        return Err(Error::Unsupported(format!(
            "arrays with {} cannot be reshaped by fastraid",
            fm.names().join(", ")
        )));
    }
    // md's RAID-5 -> RAID-6 change rebuilds the new Q member *during* the reshape: its
    // RECOVERY_OFFSET follows the new geometry's rows (kernel case raid5to6-backup-cut45:
    // recovery_offset 14080 = the device row of reshape_position 42240). A continue may take
    // such a member along (plan_continue checks that it is valid where the new geometry
    // already lies); anything else degraded is refused.
    let recovering_along = r.reshape.is_some()
        && asm
            .slots
            .iter()
            .all(|s| s.as_ref().is_some_and(|m| m.bad.is_empty()));
    if asm.degraded() && !recovering_along && !(parity_missing && raid0::only_parity_missing(&asm))
    {
        return Err(Error::Unsupported(
            "the array is degraded or recovering: rebuild it before reshaping".into(),
        ));
    }
    let mut notes = asm.notes.clone();
    match &r.reshape {
        Some(rs) => plan_continue(paths, &asm, *rs, opts, &mut notes),
        None => {
            if opts.continue_only {
                return Err(invalid!(
                    "no reshape is in progress on this array: nothing to continue"
                ));
            }
            plan_start(paths, &asm, opts, &mut notes)
        }
    }
}

fn any_change(opts: &ReshapeOptions) -> bool {
    opts.raid_disks.is_some()
        || opts.level.is_some()
        || opts.chunk_bytes.is_some()
        || opts.layout.is_some()
}

/// Members by new slot (from the assembly, plus spares that take new slots).
fn targets_of(asm: &assemble::Assembly, extra: &[(u32, String)]) -> Result<Vec<Target>> {
    let mut out = Vec::new();
    for (slot, s) in asm.slots.iter().enumerate() {
        let Some(s) = s else { continue };
        let path = PathBuf::from(&asm.reports[s.report].path);
        let sb = read_sb(&path)?
            .ok_or_else(|| Error::Unsupported(format!("{}: no v1 superblock", path.display())))?;
        let bitmap = bitmap_of(&path, &sb)?;
        out.push(Target {
            path,
            slot: slot as u32,
            recovering: s.valid_bytes != u64::MAX,
            sb,
            bitmap,
        });
    }
    for (slot, p) in extra {
        let path = PathBuf::from(p);
        let sb = read_sb(&path)?
            .ok_or_else(|| Error::Unsupported(format!("{}: no v1 superblock", path.display())))?;
        let bitmap = bitmap_of(&path, &sb)?;
        out.push(Target {
            path,
            slot: *slot,
            recovering: false,
            sb,
            bitmap,
        });
    }
    out.sort_by_key(|t| t.slot);
    Ok(out)
}

fn plan_start(
    paths: &[PathBuf],
    asm: &assemble::Assembly,
    opts: &ReshapeOptions,
    notes: &mut Vec<String>,
) -> Result<Plan> {
    let r = &asm.reference;
    let old_geo = asm.geometry.clone();
    let level = old_geo.level();
    if !any_change(opts) {
        return Err(invalid!(
            "nothing to change: give raid_disks, chunk or layout"
        ));
    }
    if let Some(l) = opts.level {
        if l != r.level {
            return Err(Error::Unsupported(format!(
                "level changes ({} -> {l}) are not supported by fastraid's reshape yet",
                r.level
            )));
        }
    }
    if !r.is_clean() {
        return Err(Error::Unsupported(
            "the array was not stopped cleanly: open it read-write once (resync) before reshaping"
                .into(),
        ));
    }
    let old_disks = old_geo.raid_disks();
    let new_disks = opts.raid_disks.unwrap_or(old_disks);
    let shrinking = new_disks < old_disks;
    if new_disks < level.parity_disks() + 2 {
        return Err(invalid!(
            "{} needs at least {} members",
            level.name(),
            level.parity_disks() + 2
        ));
    }
    let new_layout = match opts.layout {
        Some(l) => Layout::from_md(level, l).map_err(|e| invalid!("layout: {e}"))?,
        None => old_geo.layout(),
    };
    let new_chunk = opts
        .chunk_bytes
        .unwrap_or(u64::from(old_geo.chunk_sectors()) * SECTOR_SIZE);
    let new_geo = geometry(
        level,
        new_layout,
        new_disks,
        new_chunk,
        old_geo.dev_sectors(),
    )?;
    if new_geo.raid_disks() == old_disks
        && new_geo.layout() == old_geo.layout()
        && new_geo.chunk_sectors() == old_geo.chunk_sectors()
    {
        return Err(invalid!("the array already has that geometry"));
    }
    let c_max = u64::from(old_geo.chunk_sectors().max(new_geo.chunk_sectors()));
    let old_size = asm.size();
    let raid10 = level == Level::Raid10;
    if raid10 {
        raid10::check_start(&old_geo, &new_geo, old_size)?;
        notes.extend(raid10::takeover_note(&old_geo, &new_geo));
    }
    let new_size = size_of(&new_geo, c_max);
    if shrinking {
        // md: the array size must be reduced first (mdadm --grow --array-size). fastraid
        // asks the caller to declare it: the bytes past what the smaller array holds are
        // discarded, so nothing is lost unless the caller said so.
        let Some(keep) = opts.array_size else {
            return Err(Error::Unsupported(format!(
                "shrinking {old_disks} -> {new_disks} members leaves room for {new_size} of the \
                 array's {old_size} bytes: the bytes past it would be lost. Declare what you keep \
                 with array_size (--array-size) of at most {new_size} bytes"
            )));
        };
        if keep > new_size {
            return Err(invalid!(
                "array_size {keep}: {new_disks} members hold at most {new_size} bytes; shrinking \
                 would lose data past that"
            ));
        }
        notes.push(format!(
            "shrink: array bytes {new_size}..{old_size} are discarded (declared kept: {keep})"
        ));
    } else if new_size < old_size {
        return Err(Error::Unsupported(format!(
            "the new geometry holds {new_size} bytes, less than the array's {old_size}: refused"
        )));
    }
    // Spares become the new slots, in the order given.
    let spares: Vec<String> = asm
        .reports
        .iter()
        .filter(|rep| rep.state == MemberState::Spare)
        .map(|rep| rep.path.clone())
        .collect();
    let need = new_disks.saturating_sub(old_disks) as usize;
    if spares.len() < need {
        return Err(invalid!(
            "{new_disks} members need {need} spare(s) to be added first (found {})",
            spares.len()
        ));
    }
    // The first free slots, as md's raid5_add_disk fills them: a missing slot first (the
    // parity of a RAID-0 grow's RAID-4), then the new ones; the last stays missing then.
    let free = (0..new_disks).filter(|&s| s >= old_disks || asm.slots[s as usize].is_none());
    let extra: Vec<(u32, String)> = spares
        .into_iter()
        .take(need)
        .zip(free)
        .map(|(p, s)| (s, p))
        .collect();
    let mut targets = targets_of(asm, &extra)?;
    if raid10 && new_disks > old_disks {
        // RAID-10 bitmaps count array sectors: md resizes them as the reshape starts.
        raid10::resize_bitmaps(&mut targets, new_size / SECTOR_SIZE);
    }
    for t in targets.iter_mut().filter(|t| t.slot < old_disks) {
        if extra.iter().any(|(s, _)| *s == t.slot) {
            // An old slot gets a new member: as md, it is recovered along with the reshape
            // (recovery_offset follows the checkpoints, Engine::checkpoint).
            t.sb.feature_map.set(FeatureMap::RECOVERY_OFFSET, true);
            t.sb.recovery_offset = 0;
            t.recovering = true;
        }
    }
    // Room before the data (forwards) or after it (backwards), the same new_offset on every
    // member; without room, in place with a journal.
    let room_before = targets
        .iter()
        .map(|t| {
            t.sb.data_offset
                .saturating_sub(lowest_free(&t.sb, t.bitmap.as_ref().map(|b| &b.1)))
        })
        .min()
        .unwrap_or(0);
    let room_after = targets
        .iter()
        .map(|t| t.sb.data_size.saturating_sub(t.sb.size))
        .min()
        .unwrap_or(0);
    let (s_o, s_n) = (stripe_bytes(&old_geo), stripe_bytes(&new_geo));
    let unit = reader_unit(&old_geo, &new_geo);
    // Rows needed to get going: one reader unit plus one new stripe (module docs); RAID-10
    // also md's minimum offset change.
    let need_rows = if raid10 {
        raid10::need_rows(&old_geo, &new_geo)
    } else {
        Rows::of(&new_geo)
            .end(unit + grid_of(&old_geo, &new_geo))
            .max(c_max)
    };
    let fit = |room: u64| -> u64 {
        let off = room / c_max * c_max;
        let off = if off < need_rows { room / 8 * 8 } else { off };
        if off < need_rows {
            0
        } else {
            off.min(i32::MAX as u64)
        }
    };
    // RAID-10 rows hold as much data in both geometries when the member count stays: the
    // direction only follows the room.
    let backwards = shrinking
        || (new_disks == old_disks
            && ((s_n < s_o && !raid10) || (fit(room_before) == 0 && fit(room_after) > 0)));
    let room = if backwards { room_after } else { room_before };
    let off = fit(room);
    if raid10 && off == 0 {
        return Err(Error::Unsupported(format!(
            "a RAID-10 reshape moves the data (as md's does): it needs {need_rows} free sectors \
             before or after the data on every member, and there are {room_before} before and \
             {room_after} after"
        )));
    }
    let journal = (off == 0).then(|| journal_path(paths, &r.array_uuid));
    let new_offset = if backwards { off as i64 } else { -(off as i64) };
    if let Some(j) = &journal {
        notes.push(format!(
            "no room to move the data ({room} free sectors {}, {need_rows} needed): in place, \
             the rows being overwritten are first copied to the journal {} (mdadm's backup \
             format)",
            if backwards { "after it" } else { "before it" },
            j.display()
        ));
    } else {
        notes.push(format!(
            "new data offset: {off} sectors {} the old one (free space {room} sectors)",
            if backwards { "above" } else { "below" }
        ));
    }
    Ok(Plan {
        kind: Kind::Start,
        uuid: r.array_uuid,
        level,
        old_disks,
        new_disks,
        old_layout: old_geo.layout(),
        new_layout: new_geo.layout(),
        old_chunk_bytes: u64::from(old_geo.chunk_sectors()) * SECTOR_SIZE,
        new_chunk_bytes: new_chunk,
        new_offset,
        start: if backwards { new_size } else { 0 },
        checkpoint: if backwards { new_size } else { 0 },
        old_size,
        new_size,
        events: r.events,
        members: targets
            .iter()
            .map(|t| t.path.display().to_string())
            .collect(),
        notes: std::mem::take(notes),
        backwards,
        journal,
        pinned: true,
        level_change: None,
        old_geo,
        new_geo,
        targets,
        paths: paths.to_vec(),
        opts: opts.clone(),
    })
}

/// Where fastraid keeps the journal of an in-place reshape: next to the first member.
pub(crate) fn journal_path(paths: &[PathBuf], uuid: &[u8; 16]) -> PathBuf {
    let dir = paths
        .first()
        .and_then(|p| p.parent())
        .map_or_else(PathBuf::new, Path::to_path_buf);
    let hex: String = uuid.iter().map(|b| format!("{b:02x}")).collect();
    dir.join(format!("fastraid-reshape-{hex}.journal"))
}

fn plan_continue(
    paths: &[PathBuf],
    asm: &assemble::Assembly,
    rs: md::Reshape,
    opts: &ReshapeOptions,
    notes: &mut Vec<String>,
) -> Result<Plan> {
    let r = &asm.reference;
    let parts = &asm.parts;
    let (new_part, old_part) = match (parts.first(), parts.get(1)) {
        (Some(a), Some(b)) if a.name == "new" && !rs.backwards => (a.clone(), b.clone()),
        (Some(a), Some(b)) if b.name == "new" && rs.backwards => (b.clone(), a.clone()),
        _ => return Err(Error::Unsupported("unexpected reshape parts".into())),
    };
    let new_geo = new_part.geometry.clone();
    let old_geo = old_part.geometry.clone();
    if any_change(opts) {
        let same = opts.raid_disks.is_none_or(|d| d == new_geo.raid_disks())
            && opts
                .layout
                .is_none_or(|l| l == new_geo.layout().md_number())
            && opts
                .chunk_bytes
                .is_none_or(|c| c == u64::from(new_geo.chunk_sectors()) * SECTOR_SIZE)
            && opts.level.is_none_or(|l| l == r.level);
        if !same {
            return Err(invalid!(
                "a reshape is already in progress (to {} members); finish it first (--continue)",
                new_geo.raid_disks()
            ));
        }
    }
    let mut targets = targets_of(asm, &[])?;
    // Every superblock gets the freshest one's reshape state (a member one event behind may
    // still show the previous checkpoint, or no reshape at all if a start was interrupted).
    let ref_path = PathBuf::from(&asm.reports[asm.reference_report].path);
    let rsb = read_sb(&ref_path)?
        .ok_or_else(|| Error::Unsupported(format!("{}: no v1 superblock", ref_path.display())))?;
    for t in &mut targets {
        let sb = &mut t.sb;
        for f in [
            FeatureMap::RESHAPE_ACTIVE,
            FeatureMap::NEW_OFFSET,
            FeatureMap::RESHAPE_BACKWARDS,
        ] {
            sb.feature_map.set(f, rsb.feature_map.contains(f));
        }
        sb.reshape_position = rsb.reshape_position;
        sb.new_level = rsb.new_level;
        sb.new_layout = rsb.new_layout;
        sb.new_chunk = rsb.new_chunk;
        sb.delta_disks = rsb.delta_disks;
        sb.raid_disks = rsb.raid_disks;
        sb.level = rsb.level;
        sb.layout = rsb.layout;
        sb.chunksize = rsb.chunksize;
        sb.dev_roles = rsb.dev_roles.clone();
        sb.max_dev = rsb.max_dev;
        if sb.new_offset != rsb.new_offset {
            return Err(Error::Unsupported(format!(
                "{}: new_offset {} differs from the freshest member's {}: not supported",
                t.path.display(),
                sb.new_offset,
                rsb.new_offset
            )));
        }
    }
    let c_max = u64::from(old_geo.chunk_sectors().max(new_geo.chunk_sectors()));
    let new_size = size_of(&new_geo, c_max);
    let s_n = stripe_bytes(&new_geo);
    let ckpt = rs.position.saturating_mul(SECTOR_SIZE).min(new_size);
    let journal = (rs.new_offset == 0).then(|| journal_path(paths, &r.array_uuid));
    // fastraid's own in-place reshape: its checkpoint and journal say exactly what is where.
    let pinned = journal
        .as_deref()
        .is_some_and(|j| Journal::is_ours(j, &r.array_uuid));
    // Otherwise the reader decides the boundary (it may differ from the checkpoint).
    let rd = ArrayReader::new(assemble::assemble_with_backup(
        paths,
        AssembleOptions::default(),
        opts.backup_file.as_deref(),
    )?)?;
    let boundary = rd.assembly().parts.first().map_or(0, |p| p.end);
    notes.extend(rd.assembly().notes.iter().skip(asm.notes.len()).cloned());
    let undecided = !pinned
        && rd
            .assembly()
            .notes
            .iter()
            .any(|n| n.contains("uncertain") || n.contains("undecid"));
    let start = if pinned {
        notes.push(
            "fastraid's journal of this in-place reshape is present: the checkpoint is trusted"
                .into(),
        );
        ckpt
    } else if journal.is_some() && !undecided {
        // In place, the kernel's own reshape: it may have moved stripes past its on-disk
        // checkpoint before the cut (raid5to6-backup-cut10: checkpoint 0, data in the new
        // geometry up to 10223616 bytes), and their old rows are overwritten. Start at the
        // boundary the reader found: `execute` rewrites [checkpoint, start) from the reader
        // (backup file included) and records `start` before its journal exists, so after
        // that, reading the old geometry from the checkpoint on (what a restart trusts) is
        // true.
        let b = if rs.backwards {
            boundary.min(ckpt).div_ceil(s_n).saturating_mul(s_n)
        } else {
            boundary.max(ckpt) / s_n * s_n
        };
        if b != ckpt {
            notes.push(format!(
                "in place: the stripes between the checkpoint ({ckpt}) and the boundary found \
                 by the reader ({b}) are rewritten from what the reader decided, and {b} is \
                 recorded as the checkpoint, before the journal is used"
            ));
        }
        b.min(new_size)
    } else if rs.backwards {
        boundary
            .max(ckpt)
            .div_ceil(s_n)
            .saturating_mul(s_n)
            .min(new_size)
    } else if boundary >= asm.size() {
        // Every old byte is in the new geometry already; past the old size the new stripes
        // hold zeros only, so the checkpoint stands (a run stopped there, e.g. cancelled
        // every few batches, would otherwise start again at the old size each time).
        ckpt / s_n * s_n
    } else {
        boundary.min(ckpt) / s_n * s_n
    };
    // Members recovered along with the reshape (see `plan`): valid wherever the new geometry
    // already lies, i.e. below the new rows of the checkpoint (forwards). The run writes
    // every new row from the lower of the checkpoint and `start` on (`execute` rewrites
    // [checkpoint, start) in place), on every member, so at the finish they are in sync.
    let c_n = u64::from(new_geo.chunk_sectors());
    for t in targets.iter().filter(|t| t.recovering) {
        let valid = asm
            .slots
            .get(t.slot as usize)
            .and_then(Option::as_ref)
            .map_or(0, |m| m.valid_bytes);
        let need = start.min(ckpt) / s_n * c_n * SECTOR_SIZE;
        if rs.backwards || valid < need {
            return Err(Error::Unsupported(format!(
                "{} is being recovered (valid below {valid} bytes of its data area) but the \
                 reshape's new geometry reaches {need} bytes on it: rebuild it first",
                t.path.display()
            )));
        }
        notes.push(format!(
            "{}: recovered along with the reshape, as md does (valid below the checkpoint's new \
             rows); in sync when it finishes",
            t.path.display()
        ));
    }
    if undecided && !opts.force {
        return Err(Error::Unsupported(
            "the reader cannot decide some bytes near the reshape boundary (reported uncertain); \
             refusing to finish the reshape (force=True / --force goes on with its best reading)"
                .into(),
        ));
    }
    Ok(Plan {
        kind: Kind::Continue,
        uuid: r.array_uuid,
        level: new_geo.level(),
        old_disks: old_geo.raid_disks(),
        new_disks: new_geo.raid_disks(),
        old_layout: old_geo.layout(),
        new_layout: new_geo.layout(),
        old_chunk_bytes: u64::from(old_geo.chunk_sectors()) * SECTOR_SIZE,
        new_chunk_bytes: u64::from(new_geo.chunk_sectors()) * SECTOR_SIZE,
        new_offset: rs.new_offset,
        start,
        checkpoint: ckpt,
        old_size: asm.size(),
        new_size,
        events: r.events,
        members: targets
            .iter()
            .map(|t| t.path.display().to_string())
            .collect(),
        notes: std::mem::take(notes),
        backwards: rs.backwards,
        journal,
        pinned,
        level_change: None,
        old_geo,
        new_geo,
        targets,
        paths: paths.to_vec(),
        opts: opts.clone(),
    })
}

/// The final superblock fields of a finished reshape.
fn finalise(sb: &mut SuperblockV1) {
    let off = i64::from(sb.new_offset);
    sb.data_offset = sb.data_offset.saturating_add_signed(off);
    sb.data_size = sb.data_size.saturating_add_signed(-off);
    sb.layout = sb.new_layout;
    sb.chunksize = sb.new_chunk;
    sb.new_level = sb.level;
    sb.new_offset = 0;
    sb.delta_disks = 0;
    // Members a shrink removed become spares.
    let n = sb.raid_disks;
    for r in &mut sb.dev_roles {
        if u32::from(*r) >= n && *r < 0xfffe {
            *r = 0xffff;
        }
    }
    sb.reshape_position = 0;
    // A member recovered along with the reshape (`Target::recovering`) now holds every new
    // row: in sync. (A plain reshape refuses other recovering members.)
    sb.recovery_offset = 0;
    for f in [
        FeatureMap::RESHAPE_ACTIVE,
        FeatureMap::NEW_OFFSET,
        FeatureMap::RESHAPE_BACKWARDS,
        FeatureMap::RECOVERY_OFFSET,
    ] {
        sb.feature_map.set(f, false);
    }
}

/// A crash during the finish leaves some members finished (the freshest) and some still at
/// the reshape's last checkpoint, one event behind: complete those (step 5 of the docs).
fn finish_superblocks_plan(paths: &[PathBuf], opts: &ReshapeOptions) -> Result<Option<Plan>> {
    let mut sbs = Vec::new();
    for p in paths {
        if let Ok(Some(sb)) = read_sb(p) {
            sbs.push((p.clone(), sb));
        }
    }
    let Some(max) = sbs.iter().map(|(_, s)| s.events).max() else {
        return Ok(None);
    };
    let Some((_, fresh)) = sbs.iter().find(|(_, s)| {
        s.events == max
            && !s.feature_map.contains(FeatureMap::RESHAPE_ACTIVE)
            && s.role().slot().is_some()
    }) else {
        return Ok(None);
    };
    let lagging: Vec<&(PathBuf, SuperblockV1)> = sbs
        .iter()
        .filter(|(_, s)| {
            s.set_uuid == fresh.set_uuid
                && s.events + 1 == max
                && s.feature_map.contains(FeatureMap::RESHAPE_ACTIVE)
                && s.raid_disks == fresh.raid_disks
                && s.new_layout == fresh.layout
                && s.new_chunk == fresh.chunksize
        })
        .collect();
    if lagging.is_empty() {
        return Ok(None);
    }
    let level = Level::from_md(fresh.level).map_err(|e| invalid!("{e}"))?;
    let layout = Layout::from_md(level, fresh.layout).map_err(|e| invalid!("{e}"))?;
    let g = geometry(
        level,
        layout,
        fresh.raid_disks,
        u64::from(fresh.chunksize) * SECTOR_SIZE,
        fresh.size,
    )?;
    let mut targets = Vec::new();
    for (p, s) in lagging {
        let mut sb = s.clone();
        finalise(&mut sb);
        sb.events = max;
        targets.push(Target {
            path: p.clone(),
            slot: u32::from(s.role().slot().unwrap_or(0)),
            bitmap: bitmap_of(p, s)?,
            recovering: false,
            sb,
        });
    }
    Ok(Some(Plan {
        kind: Kind::FinishSuperblocks,
        uuid: fresh.set_uuid,
        level,
        old_disks: g.raid_disks(),
        new_disks: g.raid_disks(),
        old_layout: layout,
        new_layout: layout,
        old_chunk_bytes: u64::from(fresh.chunksize) * SECTOR_SIZE,
        new_chunk_bytes: u64::from(fresh.chunksize) * SECTOR_SIZE,
        new_offset: 0,
        start: g.array_bytes(),
        checkpoint: g.array_bytes(),
        old_size: g.array_bytes(),
        new_size: g.array_bytes(),
        events: max,
        members: targets
            .iter()
            .map(|t| t.path.display().to_string())
            .collect(),
        notes: vec![format!(
            "the reshape had finished but {} member superblock(s) were not yet updated (a \
             crash while they were written): they are completed now",
            targets.len()
        )],
        backwards: false,
        journal: None,
        pinned: false,
        level_change: None,
        old_geo: g.clone(),
        new_geo: g,
        targets,
        paths: paths.to_vec(),
        opts: opts.clone(),
    }))
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(l) = &self.level_change {
            return l.describe(self, f); // src/reshape/level.rs
        }
        let geo =
            |d: u32, l: Layout, c: u64| format!("{d} members, {}, chunk {}", l.name(), human(c));
        match self.kind {
            Kind::FinishSuperblocks => {
                writeln!(
                    f,
                    "complete the finished reshape of array {}",
                    format_uuid(&self.uuid)
                )?;
                for m in &self.members {
                    writeln!(f, "  update superblock of {m} (events {})", self.events)?;
                }
                for n in &self.notes {
                    writeln!(f, "  note: {n}")?;
                }
                return Ok(());
            }
            Kind::Revert(_) => return revert::describe(self, f),
            Kind::Start => writeln!(
                f,
                "reshape {} array {}",
                self.level.name(),
                format_uuid(&self.uuid)
            )?,
            Kind::Continue => writeln!(
                f,
                "continue the interrupted reshape of {} array {} (checkpoint {}, resuming at {})",
                self.level.name(),
                format_uuid(&self.uuid),
                human(self.checkpoint),
                human(self.start)
            )?,
        }
        writeln!(
            f,
            "  from : {}",
            geo(self.old_disks, self.old_layout, self.old_chunk_bytes)
        )?;
        writeln!(
            f,
            "  to   : {}",
            geo(self.new_disks, self.new_layout, self.new_chunk_bytes)
        )?;
        writeln!(
            f,
            "  size : {} -> {} (space beyond the old size reads as zeros)",
            human(self.old_size),
            human(self.new_size)
        )?;
        match (&self.journal, self.new_offset) {
            (Some(j), _) => writeln!(
                f,
                "  space: in place (no room to move the data); the rows each batch overwrites \
                 are first saved to the journal {}",
                j.display()
            )?,
            (None, off) => writeln!(
                f,
                "  space: data moves {} sectors ({}) toward the {} of every member (md's \
                 new_offset); no backup file needed",
                off.unsigned_abs(),
                human(off.unsigned_abs() * SECTOR_SIZE),
                if off < 0 { "start" } else { "end" }
            )?,
        }
        for (i, m) in self.members.iter().enumerate() {
            writeln!(f, "  slot {i}: {m}")?;
        }
        writeln!(f, "  steps (and what a power cut at each loses):")?;
        let mut k = 1;
        if self.kind == Kind::Start {
            writeln!(
                f,
                "   {k}. write the first new stripes into free space, then every superblock: \
                 reshape active at 0, events+1, fdatasync -- nothing (free space only, or the \
                 reshape is recorded at 0)"
            )?;
            k += 1;
        }
        if self.journal.is_some() {
            writeln!(
                f,
                "   {k}. batches: read in the old geometry; where the new rows overwrite old \
                 rows still needed, save the batch to the journal (fdatasync) first, then write \
                 the new stripes -- nothing (a restart writes the journal back)"
            )?;
        } else {
            writeln!(
                f,
                "   {k}. batches: read in the old geometry, write the new stripes {} the old \
                 data still needed -- nothing (old copies stay intact until a checkpoint covers \
                 them)",
                if self.backwards { "above" } else { "below" }
            )?;
        }
        writeln!(
            f,
            "   {}. checkpoints: fdatasync data, then superblocks with reshape_position and \
             events+1, fdatasync -- nothing (the kernel or fastraid resumes from the last one)",
            k + 1
        )?;
        writeln!(
            f,
            "   {}. finish: fdatasync, superblocks with data_offset += new_offset and the new \
             geometry, events+1 -- nothing (a partial update is completed by the next run)",
            k + 2
        )?;
        for n in &self.notes {
            writeln!(f, "  note: {n}")?;
        }
        Ok(())
    }
}

// ================================================================================
// Execution
// ================================================================================

/// The open members and the superblock protocol.
struct Engine {
    targets: Vec<Target>,
    devs: Vec<Member>,
    events: u64,
    checkpoints: u64,
    /// New stripe bytes and new chunk sectors: the device row of a checkpoint.
    new_row: (u64, u64),
}

impl Engine {
    fn sync_all(&self) -> Result<()> {
        for d in &self.devs {
            d.sync_data()?;
        }
        Ok(())
    }

    /// Bitmap headers (events first: md accepts a bitmap ahead of the superblocks, never
    /// behind), then every superblock with the current events; then `fdatasync`.
    fn write_superblocks(&mut self) -> Result<()> {
        let t = MdTime::now().to_v1();
        for (tg, d) in self.targets.iter_mut().zip(&self.devs) {
            if let Some((at, h)) = &mut tg.bitmap {
                h.events = self.events;
                d.write_all_at(&h.to_bytes(), *at)?;
            }
        }
        for (tg, d) in self.targets.iter_mut().zip(&self.devs) {
            tg.sb.events = self.events;
            tg.sb.utime_raw = t;
            tg.sb.update_checksum().map_err(md_err)?;
            d.write_all_at(
                &tg.sb.to_block().map_err(md_err)?,
                tg.sb.super_offset * SECTOR_SIZE,
            )?;
        }
        self.sync_all()
    }

    /// Record `pos` (array bytes, a new-stripe boundary) as the reshape checkpoint.
    /// Order: data durable (fdatasync) → superblocks with `events + 1` → fdatasync.
    fn checkpoint(&mut self, pos: u64) -> Result<()> {
        self.sync_all()?;
        self.events += 1;
        let (s_n, c_n) = self.new_row;
        for t in &mut self.targets {
            t.sb.reshape_position = pos / SECTOR_SIZE;
            if t.recovering {
                // Valid (durable, above) up to the new rows of the checkpoint, as md records
                // a member recovered along with its reshape.
                t.sb.recovery_offset = pos / s_n * c_n;
            }
        }
        self.write_superblocks()?;
        self.checkpoints += 1;
        Ok(())
    }
}

impl Plan {
    /// Do it. `progress` is called after every batch; `Break` stops at a checkpoint with
    /// [`Error::Cancelled`] (run again to resume).
    pub fn execute(
        &self,
        progress: &mut dyn FnMut(&Progress) -> ControlFlow<()>,
    ) -> Result<Report> {
        if let Some(l) = &self.level_change {
            return l.execute(self, progress); // src/reshape/level.rs
        }
        if let Kind::Revert(_) = self.kind {
            return revert::execute(self, progress); // src/reshape/revert.rs
        }
        let t0 = Instant::now();
        let mut devs = Vec::new();
        for t in &self.targets {
            devs.push(Member::open_with(&t.path, true)?);
        }
        let mut eng = Engine {
            targets: self.targets.clone(),
            devs,
            events: self.events,
            checkpoints: 0,
            new_row: (
                stripe_bytes(&self.new_geo),
                u64::from(self.new_geo.chunk_sectors()),
            ),
        };
        if self.kind == Kind::FinishSuperblocks {
            eng.write_superblocks()?;
            return Ok(self.report(0, 0, &eng, t0));
        }
        let mut w = Writer::new(self, &eng)?;
        let (s_o, s_n) = (stripe_bytes(&self.old_geo), stripe_bytes(&self.new_geo));
        let unit = reader_unit(&self.old_geo, &self.new_geo);
        // Checkpoints lie on the kernel's grid (`checkpoint_grid`); in place, every batch
        // is recorded, so batches are whole units on that grid.
        let grid = grid_of(&self.old_geo, &self.new_geo);
        let iunit = if unit == 0 {
            grid
        } else {
            unit / gcd(unit, grid) * grid
        };
        let n_end = self.new_size;
        let back = self.backwards;
        let mut pos = self.start;
        let mut ckpt = if back {
            self.checkpoint.max(self.start)
        } else {
            self.checkpoint.min(self.start)
        };
        let mut journal = match &self.journal {
            Some(p) if self.pinned && self.kind == Kind::Continue => {
                Some(Journal::open(p, self.uuid, false)?)
            }
            _ => None,
        };
        // fastraid's journal of an interrupted in-place batch: write it back first (in the
        // new geometry) and record the checkpoint past it, as mdadm restores its backup.
        if let Some(j) = journal.as_mut().filter(|_| self.kind == Kind::Continue) {
            if let Some((a, data)) = j.valid_section(self.uuid)? {
                let e = a + data.len() as u64;
                let covers = if back { a < ckpt } else { e >= ckpt };
                if covers && a.is_multiple_of(s_n) && e.is_multiple_of(s_n) && e <= n_end {
                    w.data = data;
                    w.lay_out(self, &eng, a, e)?;
                    let c = if back { a } else { e };
                    eng.checkpoint(c)?;
                    (ckpt, pos) = (c, c);
                }
            }
        }
        // The reader of the current content: before a start, the array as it is (one part,
        // old geometry); fastraid's own in-place reshape: the old geometry from the
        // checkpoint on; otherwise both parts, boundary decided by the reader.
        let mut asm = assemble::assemble_with_backup(
            &self.paths,
            AssembleOptions::default(),
            self.opts.backup_file.as_deref().filter(|_| !self.pinned),
        )?;
        if self.pinned && self.kind == Kind::Continue {
            asm.parts = vec![assemble::Part {
                start: 0,
                end: self.old_size,
                geometry: self.old_geo.clone(),
                shift: 0,
                name: "",
            }];
        }
        let mut rd = ArrayReader::new(asm)?;
        let in_place = self.new_offset == 0;
        if self.kind == Kind::Start {
            if let Some(p) = &self.journal {
                // Blank first, before the superblocks say "reshape": a journal left by an
                // earlier reshape of this array (a crash between its finish and the
                // journal's removal) must not be replayed into this one.
                journal = Some(Journal::open(p, self.uuid, true)?);
            }
            // Step 1: the first unit in free space (not in place), then the superblocks.
            let first = unit + s_n;
            if !in_place {
                if back {
                    let lo = n_end.saturating_sub(first) / s_n * s_n;
                    w.write_range(&mut rd, self, &eng, lo, n_end)?;
                    pos = lo;
                } else {
                    let e = first.min(n_end);
                    w.write_range(&mut rd, self, &eng, 0, e)?;
                    pos = e;
                }
            }
            if self.level == Level::Raid10 && self.new_disks > self.old_disks {
                // The resized bitmaps (plan_start), the added space marked as md does.
                let (o, n) = (self.old_size / SECTOR_SIZE, n_end / SECTOR_SIZE);
                raid10::mark_bits(&eng, o, n, true, true)?;
            }
            eng.sync_all()?;
            eng.events += 1;
            let delta = self.new_disks as i32 - self.old_disks as i32;
            let roles: Vec<(u32, u32)> = eng
                .targets
                .iter()
                .map(|t| (t.sb.dev_number, t.slot))
                .collect();
            for t in &mut eng.targets {
                let sb = &mut t.sb;
                sb.feature_map.set(FeatureMap::RESHAPE_ACTIVE, true);
                sb.feature_map.set(FeatureMap::NEW_OFFSET, !in_place);
                sb.feature_map
                    .set(FeatureMap::RESHAPE_BACKWARDS, back && delta == 0);
                sb.reshape_position = if back { n_end / SECTOR_SIZE } else { 0 };
                sb.raid_disks = self.new_disks;
                sb.delta_disks = delta;
                sb.new_level = sb.level;
                // An unchanged layout keeps the number it has (md writes 5 for the RAID-4
                // of its RAID-0 takeover, mdadm's --create 0).
                sb.new_layout = if self.new_layout == self.old_layout {
                    sb.layout
                } else {
                    self.new_layout.md_number()
                };
                sb.new_chunk = (self.new_chunk_bytes / SECTOR_SIZE) as u32;
                sb.new_offset = self.new_offset as i32;
                for &(dn, slot) in &roles {
                    if let Some(e) = sb.dev_roles.get_mut(dn as usize) {
                        *e = slot as u16;
                    }
                }
            }
            eng.write_superblocks()?;
            ckpt = if back { n_end } else { 0 };
        } else if in_place && pos != ckpt {
            // In place the checkpoint must say exactly where the old geometry starts before
            // the journal is used (the reader found the kernel's boundary elsewhere, see
            // `plan_continue`). The stripes between the two are already in the new geometry
            // (or in mdadm's backup file): write them out as the reader decided them, in
            // new-geometry rows that hold no old data still needed (those lie past the
            // boundary), fdatasync (in `checkpoint`), then record the boundary. A crash
            // before that leaves the kernel's checkpoint and no journal: the next run decides
            // the same way again.
            let (lo, hi) = (pos.min(ckpt), pos.max(ckpt));
            let step = self.opts.batch_bytes.max(s_n) / s_n * s_n;
            let mut a = lo;
            while a < hi {
                let e = (a + step).min(hi);
                w.write_range(&mut rd, self, &eng, a, e)?;
                a = e;
            }
            eng.checkpoint(pos)?;
            ckpt = pos;
        }
        if journal.is_none() {
            if let Some(p) = &self.journal {
                journal = Some(Journal::open(p, self.uuid, false)?);
            }
        }
        let o = &self.opts;
        let batch = o.batch_bytes.max(s_n) / s_n * s_n;
        let (c_o, c_n) = (
            u64::from(self.old_geo.chunk_sectors()),
            u64::from(self.new_geo.chunk_sectors()),
        );
        // Rows (sectors from the old data offset) of the new stripes of array byte x (a
        // multiple of the new stripe), and old rows still needed under checkpoint c
        // (src/reshape/raid10.rs: RAID-10 rows; a stripe is a row of the parity levels).
        let (rows_o, rows_n) = (Rows::of(&self.old_geo), Rows::of(&self.new_geo));
        let nrow = |x: u64| x / s_n * c_n;
        let old_floor = |c: u64| rows_o.start(c);
        let old_ceil = |c: u64| rows_o.end(c);
        let off = self.new_offset.unsigned_abs();
        let done_of = |pos: u64| if back { n_end - pos } else { pos };
        // The checkpoint that a run at `pos` may record (one reader unit behind; exact in
        // place, where each batch is recorded as soon as it is durable).
        let lag = |pos: u64| -> u64 {
            if in_place {
                pos
            } else if back {
                (pos + unit).div_ceil(grid).saturating_mul(grid).min(n_end)
            } else {
                pos.saturating_sub(unit) / grid * grid
            }
        };
        let ahead = |c: u64, ck: u64| if back { c < ck } else { c > ck };
        let finished = |pos: u64| if back { pos == 0 } else { pos >= n_end };
        let run_start = Instant::now();
        let mut last_cp = (ckpt, Instant::now());
        let mut written = 0u64;
        let result = (|| -> Result<()> {
            while !finished(pos) {
                if in_place {
                    // One batch of whole units, recorded at once; journaled when its new
                    // rows overwrite old rows still needed.
                    let (lo, hi) = if back {
                        let mut b = pos.saturating_sub(batch) / iunit * iunit;
                        if b >= pos {
                            b = (pos - 1) / iunit * iunit;
                        }
                        (b, pos)
                    } else {
                        let mut e = (pos + batch) / iunit * iunit;
                        if e <= pos {
                            e = (pos / iunit + 1) * iunit;
                        }
                        (pos, e.min(n_end))
                    };
                    let safe = if back {
                        nrow(lo) >= old_ceil(ckpt)
                    } else {
                        ckpt >= self.old_size || nrow(hi) <= old_floor(ckpt)
                    };
                    if !safe {
                        // The journal holds [lo, hi): every old byte still needed on the
                        // rows this batch overwrites must lie inside it.
                        let ok = if back {
                            nrow(lo) / c_o * s_o >= lo
                        } else {
                            hi == n_end
                                || ((nrow(hi).max(1) - 1) / c_o + 1)
                                    .saturating_mul(s_o)
                                    .min(self.old_size)
                                    <= hi
                        };
                        if !ok {
                            return Err(Error::Unsupported(format!(
                                "in place at array byte {pos}: the rows of this batch hold old \
                                 data outside it; this geometry change cannot be journaled"
                            )));
                        }
                        let j = journal.as_mut().ok_or_else(|| {
                            Error::Unsupported("in-place reshape without a journal".into())
                        })?;
                        w.read(&mut rd, self, lo, hi)?;
                        j.save(lo, &w.data, self.uuid)?;
                        w.lay_out(self, &eng, lo, hi)?;
                    } else {
                        w.write_range(&mut rd, self, &eng, lo, hi)?;
                    }
                    pos = if back { lo } else { hi };
                    written += hi - lo;
                    if !finished(pos) {
                        eng.checkpoint(pos)?;
                        ckpt = pos;
                    }
                } else {
                    // Step 4: the furthest the new rows may go under the on-disk checkpoint.
                    let (lo, hi) = if back {
                        let need = old_ceil(ckpt);
                        let limit = if need <= off {
                            0
                        } else {
                            rows_n
                                .min_start(need - off)
                                .div_ceil(s_n)
                                .saturating_mul(s_n)
                        };
                        let b = limit.max(pos.saturating_sub(batch)).div_ceil(s_n) * s_n;
                        (b.min(pos), pos)
                    } else {
                        let limit = if ckpt >= self.old_size {
                            n_end
                        } else {
                            rows_n.max_end(old_floor(ckpt) + off) / s_n * s_n
                        };
                        let e = limit.min(pos + batch).min(n_end);
                        let e = if e == n_end { e } else { e / s_n * s_n };
                        (pos, e.max(pos))
                    };
                    if hi <= lo {
                        let c = lag(pos);
                        if !ahead(c, ckpt) {
                            return Err(Error::Unsupported(format!(
                                "no progress possible at array byte {pos}: the free space {} \
                                 the data ({off} sectors) is too small for this reshape",
                                if back { "after" } else { "before" }
                            )));
                        }
                        eng.checkpoint(c)?;
                        ckpt = c;
                        last_cp = (c, Instant::now());
                        continue;
                    }
                    w.write_range(&mut rd, self, &eng, lo, hi)?;
                    pos = if back { lo } else { hi };
                    written += hi - lo;
                    let due = o.checkpoint_bytes == 0
                        || pos.abs_diff(last_cp.0) >= o.checkpoint_bytes
                        || last_cp.1.elapsed() >= o.checkpoint_interval;
                    if due && !finished(pos) {
                        let c = lag(pos);
                        if ahead(c, ckpt) {
                            eng.checkpoint(c)?;
                            ckpt = c;
                            last_cp = (c, Instant::now());
                        }
                    }
                }
                let elapsed = run_start.elapsed().as_secs_f64();
                if let Some(limit) = o.speed_limit.filter(|&l| l > 0) {
                    let want = written as f64 / limit as f64;
                    if want > elapsed {
                        std::thread::sleep(Duration::from_secs_f64(want - elapsed));
                    }
                }
                let elapsed = run_start.elapsed().as_secs_f64();
                let p = Progress {
                    done: done_of(pos),
                    total: n_end,
                    checkpoint: done_of(ckpt),
                    rate: if elapsed > 0.0 {
                        written as f64 / elapsed
                    } else {
                        0.0
                    },
                };
                if progress(&p).is_break() {
                    return Err(Error::Cancelled(String::new()));
                }
            }
            Ok(())
        })();
        if let Err(e) = result {
            let c = lag(pos);
            let saved = if ahead(c, ckpt) {
                eng.checkpoint(c).map(|()| c)
            } else {
                Ok(ckpt)
            };
            return Err(match (e, saved) {
                (Error::Cancelled(_), Ok(c)) => Error::Cancelled(format!(
                    "reshape stopped: {} of {} recorded at the checkpoint; run `grow --continue` \
                     (or the kernel) to finish",
                    human(done_of(c)),
                    human(n_end)
                )),
                (Error::Cancelled(_), Err(s)) => s,
                (e, _) => e,
            });
        }
        // Step 5: finish.
        if self.level == Level::Raid10 && self.new_disks > self.old_disks {
            // Every copy of the added space is written: its bits are no longer needed.
            let (o, n) = (self.old_size / SECTOR_SIZE, n_end / SECTOR_SIZE);
            raid10::mark_bits(&eng, o, n, false, false)?;
        }
        if self.level == Level::Raid10 && self.new_disks < self.old_disks {
            // A reverted grow (revert.rs): the bits of the space it added cleared, the
            // bitmaps back to the array's size (same chunk: the bits keep their meaning).
            let (n, o) = (
                n_end / SECTOR_SIZE,
                self.old_geo.array_bytes() / SECTOR_SIZE,
            );
            raid10::mark_bits(&eng, n, o.max(n), false, false)?;
            raid10::resize_bitmaps(&mut eng.targets, n);
        }
        eng.sync_all()?;
        eng.events += 1;
        for t in &mut eng.targets {
            finalise(&mut t.sb);
        }
        eng.write_superblocks()?;
        if let Some(j) = journal {
            j.remove()?;
        }
        Ok(self.report(written, eng.checkpoints, &eng, t0))
    }

    fn report(&self, written: u64, checkpoints: u64, eng: &Engine, t0: Instant) -> Report {
        Report {
            resumed_from: self.start,
            bytes_written: written,
            total: self.new_size,
            checkpoints,
            events: eng.events,
            size: self.new_size,
            seconds: t0.elapsed().as_secs_f64(),
        }
    }
}

/// Lays array bytes out in the new geometry.
struct Writer {
    opts: Options,
    data: Vec<u8>,
    /// Per new slot: its rows for the batch.
    rows: Vec<Vec<u8>>,
    p: Vec<u8>,
    q: Vec<u8>,
    zero: Vec<u8>,
    /// Byte offset of the new data area on each target's device.
    base: Vec<u64>,
}

impl Writer {
    fn new(plan: &Plan, eng: &Engine) -> Result<Writer> {
        let mut base = Vec::new();
        for t in &eng.targets {
            let b =
                t.sb.data_offset
                    .checked_add_signed(plan.new_offset)
                    .ok_or_else(|| invalid!("new data offset out of range"))?;
            base.push(b * SECTOR_SIZE);
        }
        Ok(Writer {
            opts: Options::new()?,
            data: Vec::new(),
            rows: vec![Vec::new(); eng.targets.len()],
            p: Vec::new(),
            q: Vec::new(),
            zero: Vec::new(),
            base,
        })
    }

    /// New stripes for array bytes `[a, e)` (whole new stripes): read, lay out, write.
    fn write_range(
        &mut self,
        rd: &mut ArrayReader,
        plan: &Plan,
        eng: &Engine,
        a: u64,
        e: u64,
    ) -> Result<()> {
        self.read(rd, plan, a, e)?;
        self.lay_out(plan, eng, a, e)
    }

    /// Array bytes `[a, e)` into `self.data` (zeros past the old size).
    fn read(&mut self, rd: &mut ArrayReader, plan: &Plan, a: u64, e: u64) -> Result<()> {
        let len = (e - a) as usize;
        self.data.clear();
        self.data.resize(len, 0);
        let readable = plan.old_size.min(e).saturating_sub(a) as usize;
        if readable > 0 {
            rd.clear_trust_map();
            rd.read_at(a, &mut self.data[..readable], true)?;
            let bad: Vec<_> = rd
                .trust_map()
                .normalised()
                .into_iter()
                .filter(|t| matches!(t.trust, Trust::Uncertain | Trust::Unreadable))
                .collect();
            if let Some(t) = bad.first().filter(|_| !plan.opts.force) {
                return Err(Error::Unsupported(format!(
                    "array bytes {}..{} read as {}: refusing to reshape them (force=True goes on)",
                    t.offset,
                    t.offset + t.len,
                    t.trust.name()
                )));
            }
        }
        Ok(())
    }

    /// `self.data` (array bytes `[a, e)`, whole new stripes) laid out in the new geometry
    /// with fresh parity and written to the new rows of every member that has a new slot.
    fn lay_out(&mut self, plan: &Plan, eng: &Engine, a: u64, e: u64) -> Result<()> {
        if plan.level == Level::Raid10 {
            return raid10::lay_out(self, plan, eng, a, e); // every copy
        }
        let g = &plan.new_geo;
        let s_n = stripe_bytes(g);
        let cs = u64::from(g.chunk_sectors()) * SECTOR_SIZE;
        if self.data.len() as u64 != e - a {
            return Err(invalid!("reshape batch of the wrong length"));
        }
        let stripes = (e - a) / s_n;
        let s0 = a / s_n;
        let rows_len = (stripes * cs) as usize;
        for r in &mut self.rows {
            r.clear();
            r.resize(rows_len, 0);
        }
        self.p.resize(cs as usize, 0);
        self.q.resize(cs as usize, 0);
        self.zero.resize(cs as usize, 0);
        let k = g.data_disks().unwrap_or(1) as usize;
        let slot_index: Vec<usize> = {
            let mut v = vec![usize::MAX; plan.new_disks as usize];
            for (i, t) in eng.targets.iter().enumerate() {
                if let Some(x) = v.get_mut(t.slot as usize) {
                    *x = i;
                }
            }
            v
        };
        let missing = || invalid!("a data slot of the new geometry has no member");
        for j in 0..stripes {
            let roles = g.stripe_roles(s0 + j).map_err(|e| invalid!("{e}"))?;
            let at = (j * s_n) as usize;
            let chunk = |d: usize| &self.data[at + d * cs as usize..at + (d + 1) * cs as usize];
            let by_index = roles.members_by_index();
            let row = (j * cs) as usize..((j + 1) * cs) as usize;
            for (d, &m) in by_index.iter().enumerate() {
                let i = slot_index[m as usize];
                self.rows.get_mut(i).ok_or_else(missing)?[row.clone()].copy_from_slice(chunk(d));
            }
            // A missing parity member (md's RAID-0 grow: a RAID-4 without its parity) gets
            // nothing, as md writes nothing there.
            let p_slot = slot_index[roles.p_member as usize];
            if p_slot == usize::MAX && roles.q_member.is_none() {
                continue;
            }
            let blocks: Vec<&[u8]> = (0..k).map(chunk).collect();
            if let Some(qm) = roles.q_member {
                let mut v = vec![&self.zero[..]; roles.syndrome_disks as usize];
                for r in &roles.roles {
                    if let Role::Data { index, slot } = *r {
                        v[slot as usize] = blocks[index as usize];
                    }
                }
                parity::pq_gen(&self.opts, &v, &mut self.p, &mut self.q)?;
                let i = slot_index[qm as usize];
                self.rows.get_mut(i).ok_or_else(missing)?[row.clone()].copy_from_slice(&self.q);
            } else if k == 1 {
                self.p.copy_from_slice(blocks[0]);
            } else {
                parity::xor_gen(&self.opts, &blocks, &mut self.p)?;
            }
            self.rows.get_mut(p_slot).ok_or_else(missing)?[row].copy_from_slice(&self.p);
        }
        let dev_off = s0 * cs;
        for (i, d) in eng.devs.iter().enumerate() {
            // Members a shrink removes get no new rows.
            if eng.targets[i].slot < plan.new_disks {
                d.write_all_at(&self.rows[i], self.base[i] + dev_off)?;
            }
        }
        Ok(())
    }
}

/// Plan and execute in one call.
pub fn reshape<P: AsRef<Path>>(
    paths: &[P],
    opts: &ReshapeOptions,
    progress: &mut dyn FnMut(&Progress) -> ControlFlow<()>,
) -> Result<Report> {
    plan(paths, opts)?.execute(progress)
}

// ================================================================================
// Journal of an in-place reshape
// ================================================================================

/// Marks a journal written by fastraid (in the padding of mdadm's backup header).
const JOURNAL_MARK: &[u8; 16] = b"fastraid-journal";
/// Journal data starts here (mdadm's backup-file layout: header at 0, data at 4 KiB).
const JOURNAL_DATA: u64 = 4096;

/// The journal of an in-place reshape: mdadm's backup-file format (`md_backup_data-1`,
/// md-format.md §6.4) holding the logical array bytes of the batch whose rows are being
/// overwritten, so mdadm (`--backup-file`), fastraid's reader and fastraid itself can
/// restore them. Bytes 100..132 of the header carry fastraid's mark and the array UUID,
/// kept when the rest of the header is cleared.
pub(crate) struct Journal {
    path: PathBuf,
    file: std::fs::File,
}

fn io_err(path: &Path, e: std::io::Error) -> Error {
    Error::Io(format!("{}: {e}", path.display()))
}

impl Journal {
    pub(crate) fn is_ours(path: &Path, uuid: &[u8; 16]) -> bool {
        use std::os::unix::fs::FileExt;
        let Ok(f) = std::fs::File::open(path) else {
            return false;
        };
        let mut h = [0u8; 132];
        f.read_exact_at(&mut h, 0).is_ok() && &h[100..116] == JOURNAL_MARK && h[116..132] == *uuid
    }

    /// Open (or create) the journal; a new one, one of another array, or any with `reset`
    /// gets a blank header (fastraid's mark, no rows in flight), durably.
    fn open(path: &Path, uuid: [u8; 16], reset: bool) -> Result<Journal> {
        use std::os::unix::fs::FileExt;
        let fresh = !path.exists();
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| io_err(path, e))?;
        let j = Journal {
            path: path.to_path_buf(),
            file,
        };
        if reset || fresh || !Journal::is_ours(path, &uuid) {
            let mut h = [0u8; 512];
            h[100..116].copy_from_slice(JOURNAL_MARK);
            h[116..132].copy_from_slice(&uuid);
            j.file.write_all_at(&h, 0).map_err(|e| io_err(path, e))?;
            j.sync()?;
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                if let Ok(d) = std::fs::File::open(dir) {
                    d.sync_all().map_err(|e| io_err(dir, e))?;
                }
            }
        }
        Ok(j)
    }

    fn sync(&self) -> Result<()> {
        self.file.sync_data().map_err(|e| io_err(&self.path, e))
    }

    fn csum(h: &[u8], len: usize) -> u32 {
        // mdadm's bsb_csum (md-format.md §6.4 quirk): adds the first byte `len` times.
        let first = u64::from(h[0]);
        let mut c: u64 = 0;
        for _ in 0..len {
            c = (c << 3).wrapping_add(first);
        }
        c as u32
    }

    /// The section of a complete header: `(array byte start, data)`.
    fn valid_section(&mut self, uuid: [u8; 16]) -> Result<Option<(u64, Vec<u8>)>> {
        use std::os::unix::fs::FileExt;
        let mut h = [0u8; 512];
        if self.file.read_exact_at(&mut h, 0).is_err() {
            return Ok(None);
        }
        let u = |o: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&h[o..o + 8]);
            u64::from_le_bytes(a)
        };
        let csum = u32::from_le_bytes([h[64], h[65], h[66], h[67]]);
        if &h[..16] != b"md_backup_data-1"
            || h[16..32] != uuid
            || csum != Journal::csum(&h, 64)
            || u(40) * SECTOR_SIZE != JOURNAL_DATA
        {
            return Ok(None);
        }
        let (start, len) = (u(48) * SECTOR_SIZE, u(56) * SECTOR_SIZE);
        let mut data = vec![0u8; usize::try_from(len).map_err(|_| invalid!("journal length"))?];
        self.file
            .read_exact_at(&mut data, JOURNAL_DATA)
            .map_err(|e| io_err(&self.path, e))?;
        Ok(Some((start, data)))
    }

    /// Clear the header (durable), write the data, then the header (durable).
    fn save(&mut self, start: u64, data: &[u8], uuid: [u8; 16]) -> Result<()> {
        use std::os::unix::fs::FileExt;
        let p = self.path.clone();
        self.file
            .write_all_at(&[0u8; 100], 0)
            .map_err(|e| io_err(&p, e))?;
        self.sync()?;
        self.file
            .write_all_at(data, JOURNAL_DATA)
            .map_err(|e| io_err(&p, e))?;
        self.sync()?;
        let mut h = [0u8; 512];
        h[..16].copy_from_slice(b"md_backup_data-1");
        h[16..32].copy_from_slice(&uuid);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        h[32..40].copy_from_slice(&now.to_le_bytes());
        h[40..48].copy_from_slice(&(JOURNAL_DATA / SECTOR_SIZE).to_le_bytes());
        h[48..56].copy_from_slice(&(start / SECTOR_SIZE).to_le_bytes());
        h[56..64].copy_from_slice(&(data.len() as u64 / SECTOR_SIZE).to_le_bytes());
        let c = Journal::csum(&h, 64);
        h[64..68].copy_from_slice(&c.to_le_bytes());
        h[100..116].copy_from_slice(JOURNAL_MARK);
        h[116..132].copy_from_slice(&uuid);
        self.file.write_all_at(&h, 0).map_err(|e| io_err(&p, e))?;
        self.sync()
    }

    fn remove(self) -> Result<()> {
        drop(self.file);
        std::fs::remove_file(&self.path).map_err(|e| io_err(&self.path, e))
    }
}
