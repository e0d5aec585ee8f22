//! Rebuild and replace: reconstruct one member of an md array from the others and make it
//! an active member again, the way md's *recovery* does (`shared/docs/md-format.md` §8.4),
//! so that the kernel assembles the result clean.
//!
//! Two operations share the engine:
//!
//! * **rebuild**: a slot is missing or failed (or a rebuild was interrupted); its data is
//!   recomputed stripe by stripe from the survivors (RAID-1/10: a surviving copy;
//!   RAID-4/5: XOR; RAID-6: P and Q with md's syndrome slot order, up to two unknowns per
//!   stripe) and written to a new file, a device, or a spare given among the members.
//! * **replace** (`mdadm --replace`): a present member is copied onto a new device while
//!   it stays active; where it cannot be read (its bad-block log) the data is rebuilt from
//!   the others. The new device carries md's REPLACEMENT flag until it is done; then the
//!   old one is marked faulty.
//!
//! # md's states, written as the kernel writes them
//!
//! 1. *Activate*: the new member gets a v1 superblock with the array's UUID and geometry,
//!    its own device number, the slot's role, feature RECOVERY_OFFSET (plus REPLACEMENT for
//!    a replace) and `recovery_offset` = how much is rebuilt (0, or where an interrupted run
//!    stopped). Then every active member's superblock gets the new role table and
//!    `events + 1` (a member the new one supersedes is marked faulty).
//! 2. *Recover*: batches of the new member's data area are written in order; every
//!    checkpoint advances `recovery_offset` in the new member's superblock (only there, with
//!    the same `events`, as §8.4 describes the kernel's partially rebuilt member).
//! 3. *Finish*: the new member's superblock loses RECOVERY_OFFSET/REPLACEMENT, and all
//!    superblocks get the final role table and `events + 1` again. A member left out (the
//!    failed one, or the replaced one) is then two events behind and marked faulty in the
//!    freshest role table, so neither md nor fastraid will take it back.
//!
//! # Crash safety (kill -9 or power loss at any instant)
//!
//! The rule is *data first, then the checkpoint that covers it* (see [`Recovery::checkpoint`]):
//! write the batch → `fdatasync` the new member → only then write `recovery_offset` into its
//! superblock → `fdatasync` again. A restart reads `recovery_offset` back and resumes there,
//! so it never skips data that was not durable; data written after the last checkpoint is
//! simply written again. The survivors are only read (their superblocks are written at the
//! two state changes above), so recomputing a batch gives the same bytes: a rebuild killed
//! any number of times ends byte-identical to an uninterrupted one. Each superblock update
//! is one 4 KiB positioned write; every step of the activate/finish sequences leaves a state
//! the kernel and [`assemble`] accept (the new member first, so that at any moment the
//! freshest superblock says what the array is).
//!
//! # Speed
//!
//! Worker threads (one per core, at most 8: `engine::workers`) each take a whole batch
//! (1 MiB of the new member by default): read it from the survivors (one positioned read
//! per member for RAID-4/5/6), rebuild it with the SIMD parity kernels and write it at its
//! place, so batches finish out of order and every core does whichever work there is. The
//! calling thread hands out batch positions (within a few batches of the written prefix),
//! follows that prefix (a checkpoint claims only bytes below the first batch not yet
//! written), checkpoints, reports progress and applies the speed limit (one batch in
//! flight, issued when the limit allows).

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::ops::ControlFlow;
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::assemble::{assemble, AssembleOptions, Assembly, MemberState, SlotMember};
use crate::create::{random_uuid, scan_signatures, Signature};
use crate::error::{invalid, Error, Result};
use crate::io::Member;
use crate::layout::{Level, SECTOR_SIZE};
use crate::md::{self, format_uuid, FeatureMap, Location, MdTime, Role, Superblock, SuperblockV1};
use crate::parity::Options;

mod engine;

// ================================================================================
// Options, progress, report
// ================================================================================

/// Default bytes of the new member written per batch. Each worker's batch (every survivor
/// plus the output) then stays in the last-level cache: measured on tmpfs with 2 workers
/// (2 vCPUs, 4 × 256 MiB RAID-5), 2.4-2.5 GB/s with 512 KiB to 2 MiB, 2.2 GB/s with 4 MiB
/// (and, with the earlier reader/compute/writer threads, 0.5-1.1 GB/s with 16-64 MiB);
/// with the files fsynced to disk the disk bounds them all and 1 MiB is not slower.
pub const DEFAULT_BATCH_BYTES: usize = 1 << 20;
/// Default bytes between checkpoints (`recovery_offset` updates, each after an fdatasync).
pub const DEFAULT_CHECKPOINT_BYTES: u64 = 256 << 20;
/// Default longest time between checkpoints.
pub const DEFAULT_CHECKPOINT_INTERVAL: Duration = Duration::from_secs(5);

/// What to rebuild, where, and how fast.
#[derive(Debug, Clone)]
pub struct RebuildOptions {
    /// The slot to rebuild. `None`: the slot of a partially rebuilt member given among the
    /// members (resume), else the lowest missing slot.
    pub slot: Option<u32>,
    /// The device or image file to write (created sparse when it does not exist). `None`:
    /// the partially rebuilt member or a spare given among the members.
    pub new: Option<PathBuf>,
    /// Replace the present member of `slot` by `new` (mdadm `--replace`).
    pub replace: bool,
    /// Overwrite a target that holds another array's superblock, a file system or a
    /// partition table; rebuild from the parity of an array not stopped cleanly.
    pub force: bool,
    /// Bytes of the new member per batch (rounded to whole sectors, at least 4 KiB).
    pub batch_bytes: usize,
    /// Bytes between checkpoints; 0 = after every batch.
    pub checkpoint_bytes: u64,
    /// Longest time between checkpoints.
    pub checkpoint_interval: Duration,
    /// Bytes per second written to the new member at most.
    pub speed_limit: Option<u64>,
    pub parity: Options,
}

impl RebuildOptions {
    /// Defaults: automatic slot and target, 1 MiB batches, a checkpoint every 256 MiB or
    /// 5 s, no speed limit, the process's parity kernel.
    pub fn new() -> Result<RebuildOptions> {
        Ok(RebuildOptions {
            slot: None,
            new: None,
            replace: false,
            force: false,
            batch_bytes: DEFAULT_BATCH_BYTES,
            checkpoint_bytes: DEFAULT_CHECKPOINT_BYTES,
            checkpoint_interval: DEFAULT_CHECKPOINT_INTERVAL,
            speed_limit: None,
            parity: Options::new()?,
        })
    }
}

/// Counters passed to the progress callback after every batch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    /// Bytes of the member's data area rebuilt so far (a resumed run starts above 0).
    pub done: u64,
    /// Bytes to rebuild in all.
    pub total: u64,
    /// Where this run started (0, or the recovery_offset it resumed from).
    pub start: u64,
    /// Bytes recorded durable in the new member's superblock.
    pub checkpoint: u64,
    /// Bytes per second in this run.
    pub rate: f64,
    /// Seconds since this run started.
    pub elapsed: f64,
}

/// What a finished rebuild did.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub slot: u32,
    pub target: PathBuf,
    /// The member that was replaced (marked faulty), for a replace.
    pub replaced: Option<PathBuf>,
    pub dev_number: u32,
    /// Bytes already rebuilt by an earlier, interrupted run.
    pub resumed_from: u64,
    /// Bytes written in this run.
    pub bytes_written: u64,
    /// Size of the rebuilt part of the data area.
    pub total: u64,
    /// Event count the superblocks now carry.
    pub events: u64,
    /// The target file was created.
    pub created: bool,
    pub seconds: f64,
}

// ================================================================================
// The plan
// ================================================================================

/// Rebuild (a missing, failed or partially rebuilt slot) or replace (a present member).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Rebuild,
    Replace,
}

/// One member whose superblock is rewritten at activation and finish.
#[derive(Debug)]
struct Survivor {
    slot: u32,
    path: PathBuf,
    sb: SuperblockV1,
}

/// Everything [`Plan::execute`] will do, decided by [`plan`] from reads only. Prints as a
/// description for people (what the CLI shows before asking).
#[derive(Debug)]
pub struct Plan {
    pub mode: Mode,
    pub slot: u32,
    pub target: PathBuf,
    /// The target does not exist and will be created with `target_bytes`.
    pub create: bool,
    pub target_bytes: u64,
    /// What was found on the target (an old superblock of this array is fine; anything
    /// else was accepted only with `force`).
    pub found: Vec<Signature>,
    /// Bytes already rebuilt (resume point), from the target's own superblock.
    pub start: u64,
    /// Bytes of the data area to rebuild in all.
    pub end: u64,
    pub dev_number: u32,
    /// Paths read, by slot (`None`: missing, or the slot being rebuilt).
    pub sources: Vec<Option<String>>,
    /// The member being replaced.
    pub replaced: Option<PathBuf>,
    pub uuid: [u8; 16],
    pub level: Level,
    pub notes: Vec<String>,
    asm: Assembly,
    /// The new member's superblock (recovery state, roles while rebuilding).
    new_sb: SuperblockV1,
    /// Roles once finished.
    final_roles: Vec<u16>,
    survivors: Vec<Survivor>,
    /// Bitmap area copied from the reference member (1.1/1.2 with BITMAP_OFFSET):
    /// (byte offset, bytes).
    bitmap: Option<(u64, Vec<u8>)>,
    events: u64,
    opts: RebuildOptions,
}

pub(super) fn io_err(path: &Path, what: &str, e: &std::io::Error) -> Error {
    Error::Io(format!("{}: {what}: {e}", path.display()))
}

/// (device, inode) of a file, (MAX, rdev) of a block device: what [`Member::identity`] uses.
fn identity_of(path: &Path) -> Option<(u64, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some(if meta.file_type().is_block_device() {
        (u64::MAX, meta.rdev())
    } else {
        (meta.dev(), meta.ino())
    })
}

/// The v1 superblock mdadm would use on `m`.
fn read_superblock(m: &Member) -> Result<Option<SuperblockV1>> {
    let found = md::probe(m.len(), |off, buf| m.read_io(buf, off))
        .map_err(|e| Error::Io(format!("{}: {e}", m.path().display())))?;
    Ok(match md::preferred(&found).map(|f| &f.superblock) {
        Some(Ok(Superblock::V1(sb))) => Some(sb.clone()),
        Some(Ok(Superblock::V090(_))) => {
            return Err(Error::Unsupported(format!(
                "{}: metadata 0.90 arrays cannot be rebuilt by fastraid yet",
                m.path().display()
            )))
        }
        _ => None,
    })
}

fn human(bytes: u64) -> String {
    const U: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < U.len() {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", U[i])
    }
}

/// Decide what a rebuild or replace of `members` does (see [`RebuildOptions`]); reads only.
pub fn plan<P: AsRef<Path>>(members: &[P], opts: &RebuildOptions) -> Result<Plan> {
    if members.is_empty() {
        return Err(invalid!("members: give the array's members"));
    }
    if opts.replace && (opts.slot.is_none() || opts.new.is_none()) {
        return Err(invalid!(
            "replace: give the slot to replace and the new device or file"
        ));
    }
    let asm = assemble(members, AssembleOptions::default())?;
    let g = asm.geometry.clone();
    let level = g.level();
    let mut notes = Vec::new();
    if matches!(level, Level::Raid0 | Level::Linear) {
        return Err(Error::Unsupported(format!(
            "{level} has no redundancy: a lost member cannot be rebuilt"
        )));
    }
    if asm.reference.reshape.is_some() || asm.parts.len() != 1 {
        return Err(Error::Unsupported(
            "a reshape is in progress; finish it (kernel-md / mdadm --grow --continue) before a rebuild".into(),
        ));
    }
    let ref_path = PathBuf::from(&asm.reports[asm.reference_report].path);
    let ref_member = asm
        .slots
        .iter()
        .flatten()
        .find(|s| s.report == asm.reference_report)
        .map(|s| &s.device);
    let ref_sb = match ref_member {
        Some(m) => read_superblock(m)?,
        None => read_superblock(&Member::open(&ref_path)?)?,
    }
    .ok_or_else(|| {
        Error::NotAnArray(format!(
            "{}: the reference superblock could not be read again",
            ref_path.display()
        ))
    })?;
    let fm = ref_sb.feature_map;
    if fm.intersects(FeatureMap::JOURNAL | FeatureMap::PPL | FeatureMap::CLUSTERED) {
        return Err(Error::Unsupported(format!(
            "arrays with features {fm} (journal, PPL or clustered) cannot be rebuilt by fastraid yet"
        )));
    }
    let location = Location::from_v1_super_offset(ref_sb.super_offset);
    if fm.contains(FeatureMap::BITMAP_OFFSET) && location == Location::V1_0 {
        return Err(Error::Unsupported(
            "metadata 1.0 with an internal bitmap cannot be rebuilt by fastraid yet".into(),
        ));
    }
    let raid_disks = g.raid_disks();

    // ---- which slot, which device
    let partial_in_slot = |s: u32| -> Option<&SlotMember> {
        asm.slots
            .get(s as usize)
            .and_then(Option::as_ref)
            .filter(|m| matches!(asm.reports[m.report].state, MemberState::Rebuilding { .. }))
    };
    let slot = match opts.slot {
        Some(s) if s >= raid_disks => {
            return Err(invalid!(
                "slot: {s} is not a slot of this {raid_disks}-member array"
            ))
        }
        Some(s) => s,
        None => (0..raid_disks)
            .find(|&s| partial_in_slot(s).is_some())
            .or_else(|| asm.missing().first().copied())
            .ok_or_else(|| {
                invalid!("nothing to rebuild: every slot has an in-sync member (use replace to move one)")
            })?,
    };
    let present = asm.slots[slot as usize].as_ref();
    let mut mode = if opts.replace {
        Mode::Replace
    } else {
        Mode::Rebuild
    };
    match (mode, present) {
        (Mode::Replace, None) if completed_on(opts.new.as_deref(), uuid_of(&ref_sb), slot, asm.reference.events) => {
            // A replace stopped while its final superblocks were written: the new member
            // is complete and the old one already marked faulty; finish the bookkeeping.
            mode = Mode::Rebuild;
            notes.push("completing an interrupted replace".into());
        }
        (Mode::Replace, None) => {
            return Err(invalid!(
                "slot: {slot} has no member to replace; rebuild it instead"
            ))
        }
        (Mode::Replace, Some(m)) if m.valid_bytes != u64::MAX || !m.bad.is_empty() => {
            notes.push(format!(
                "slot {slot}: {} is only partly readable; the rest is rebuilt from the others",
                asm.reports[m.report].path
            ));
        }
        (Mode::Rebuild, Some(m)) if partial_in_slot(slot).is_none() => {
            return Err(invalid!(
                "slot: {slot} is served by {}, which is in sync; use replace to move it to another device",
                asm.reports[m.report].path
            ))
        }
        _ => {}
    }

    // The target: `new`, else a partial member of the slot, else a spare among the members.
    let target: PathBuf = match &opts.new {
        Some(p) => p.clone(),
        None => {
            if let Some(m) = partial_in_slot(slot) {
                PathBuf::from(&asm.reports[m.report].path)
            } else if let Some(r) = asm
                .reports
                .iter()
                .find(|r| matches!(r.state, MemberState::Spare))
            {
                PathBuf::from(&r.path)
            } else {
                return Err(invalid!(
                    "new: no device to rebuild slot {slot} onto: give a new file or device, or a spare among the members"
                ));
            }
        }
    };
    let target_id = identity_of(&target);
    // The target must not be a member that is read.
    for (s, m) in asm.slots.iter().enumerate() {
        let Some(m) = m else { continue };
        if Some(m.device.identity()) != target_id {
            continue;
        }
        let partial_here = s as u32 == slot && partial_in_slot(slot).is_some();
        if mode == Mode::Replace || !partial_here {
            return Err(invalid!(
                "new: {} is the member serving slot {s} ({}); the target must be another device",
                target.display(),
                asm.reports[m.report].path
            ));
        }
    }

    // ---- look at the target
    let uuid = ref_sb.set_uuid;
    // A missing file is created; so is an empty one (a run killed right after creating it).
    let create = target_id.is_none()
        || std::fs::metadata(&target).is_ok_and(|m| m.is_file() && m.len() == 0);
    let largest = asm
        .slots
        .iter()
        .flatten()
        .map(|m| m.device.len())
        .max()
        .unwrap_or(0);
    let mut found = Vec::new();
    let mut own: Option<SuperblockV1> = None;
    let target_bytes;
    if create {
        target_bytes = largest;
    } else {
        let m = Member::open(&target)?;
        target_bytes = m.len();
        found = scan_signatures(m.len(), |off, buf| m.read_io(buf, off))
            .map_err(|e| io_err(&target, "cannot read", &e))?;
        let ours = |s: &Signature| matches!(s, Signature::Md { uuid: u, .. } if *u == uuid);
        let foreign: Vec<String> = found
            .iter()
            .filter(|s| !ours(s))
            .map(ToString::to_string)
            .collect();
        if !foreign.is_empty() {
            if !opts.force {
                return Err(Error::MemberInUse(format!(
                    "new: {} holds {}; it is not part of this array (UUID {}). Pass force=True / --force to overwrite it",
                    target.display(),
                    foreign.join("; "),
                    format_uuid(&uuid)
                )));
            }
            notes.push(format!(
                "{}: overwriting {} (force)",
                target.display(),
                foreign.join("; ")
            ));
        }
        if found.iter().any(ours) {
            own = read_superblock(&m)
                .ok()
                .flatten()
                .filter(|s| s.set_uuid == uuid);
        }
    }
    let device_sectors = target_bytes / SECTOR_BYTES_U64;

    // ---- the new member's superblock
    let mut sb = match location {
        Location::V1_0 => SuperblockV1::new(location, device_sectors).map_err(md_err)?,
        _ => {
            let mut s = SuperblockV1::new(location, device_sectors).map_err(md_err)?;
            s.data_offset = ref_sb.data_offset;
            s.data_size = device_sectors.saturating_sub(ref_sb.data_offset);
            s.bblog_offset = ref_sb.bblog_offset;
            s.bblog_size = ref_sb.bblog_size;
            s.bblog_shift = ref_sb.bblog_shift;
            s
        }
    };
    if sb.data_size < ref_sb.size {
        return Err(invalid!(
            "new: {} is too small: {} bytes of data area from byte {}, the array needs {} per member",
            target.display(),
            sb.data_size * SECTOR_BYTES_U64,
            sb.data_offset * SECTOR_BYTES_U64,
            ref_sb.size * SECTOR_BYTES_U64
        ));
    }
    sb.set_uuid = uuid;
    sb.set_name = ref_sb.set_name;
    sb.ctime_raw = ref_sb.ctime_raw;
    sb.level = ref_sb.level;
    sb.layout = ref_sb.layout;
    sb.size = ref_sb.size;
    sb.chunksize = ref_sb.chunksize;
    sb.raid_disks = ref_sb.raid_disks;
    sb.bitmap_offset = ref_sb.bitmap_offset;
    sb.resync_offset = ref_sb.resync_offset;
    sb.feature_map = FeatureMap(fm.0 & (FeatureMap::BITMAP_OFFSET.0 | FeatureMap::RAID0_LAYOUT.0));
    sb.device_uuid = match &own {
        Some(o) => o.device_uuid,
        None => random_uuid()?,
    };

    // Device number: the target's own (an old member of this array coming back), else the
    // lowest number no member uses and the role table does not hold for a slot.
    let used_numbers: Vec<u32> = asm
        .reports
        .iter()
        .filter_map(|r| r.info.as_ref())
        .filter(|i| i.array_uuid == uuid)
        .filter(|i| Some(i.device_uuid.unwrap_or_default()) != own.as_ref().map(|o| o.device_uuid))
        .map(|i| i.dev_number)
        .collect();
    let dev_number = match &own {
        Some(o) if !used_numbers.contains(&o.dev_number) => o.dev_number,
        _ => (0..md::v1::MAX_DEV_LIMIT)
            .find(|&n| !used_numbers.contains(&n) && ref_sb.role_of(n) == Role::Spare)
            .ok_or_else(|| invalid!("the array's role table has no free device number"))?,
    };
    sb.dev_number = dev_number;

    // Resume from the target's own checkpoint when it is this slot's partial member, as
    // fresh as the array (a rebuild stopped before the array was written to since).
    let end = g.member_used_sectors(slot).map_err(Error::from)? * SECTOR_SIZE;
    let mut start = 0;
    if let Some(o) = &own {
        let fresh = o.events.saturating_add(1) >= asm.reference.events;
        let same_slot = o.role() == Role::Active(slot as u16);
        let kind_ok = o.feature_map.contains(FeatureMap::REPLACEMENT) == (mode == Mode::Replace);
        if o.feature_map.contains(FeatureMap::RECOVERY_OFFSET) && fresh && same_slot && kind_ok {
            start = (o.recovery_offset.saturating_mul(SECTOR_SIZE)).min(end);
            notes.push(format!(
                "resuming: {} already holds {} of slot {slot} (recovery_offset {})",
                target.display(),
                human(start),
                o.recovery_offset
            ));
        } else if !o.feature_map.contains(FeatureMap::RECOVERY_OFFSET) && fresh && same_slot {
            // Complete already (stopped while the final superblocks were written): only
            // the superblocks are brought up to date.
            start = end;
            notes.push(format!(
                "{} already holds all of slot {slot}; only the superblocks are updated",
                target.display()
            ));
        } else if o.feature_map.contains(FeatureMap::RECOVERY_OFFSET) {
            notes.push(format!(
                "{}: its earlier rebuild checkpoint is not used ({}); starting over",
                target.display(),
                if !fresh {
                    "the array changed since"
                } else if !same_slot {
                    "it was for another slot"
                } else {
                    "it was of the other kind (rebuild / replace)"
                }
            ));
        }
    }

    // Role tables: while rebuilding, and when done.
    let mut during = ref_sb.clone();
    during
        .set_role(dev_number, Role::Active(slot as u16))
        .map_err(md_err)?;
    let replaced_number = present
        .filter(|_| mode == Mode::Replace)
        .and_then(|m| asm.reports[m.report].info.as_ref())
        .map(|i| i.dev_number);
    for n in 0..during.max_dev {
        if n != dev_number
            && during.role_of(n) == Role::Active(slot as u16)
            && Some(n) != replaced_number
        {
            during.set_role(n, Role::Faulty).map_err(md_err)?;
        }
    }
    let mut done = during.clone();
    if let Some(n) = replaced_number {
        done.set_role(n, Role::Faulty).map_err(md_err)?;
    }
    sb.max_dev = during.max_dev;
    sb.dev_roles = during.dev_roles.clone();
    sb.feature_map.set(FeatureMap::RECOVERY_OFFSET, true);
    sb.feature_map
        .set(FeatureMap::REPLACEMENT, mode == Mode::Replace);
    sb.recovery_offset = start / SECTOR_SIZE;

    // ---- the survivors' superblocks
    let mut survivors = Vec::new();
    let mut sources = vec![None; raid_disks as usize];
    for (s, m) in asm.slots.iter().enumerate() {
        let Some(m) = m else { continue };
        let path = PathBuf::from(&asm.reports[m.report].path);
        if Some(m.device.identity()) == target_id {
            continue; // the partial target itself
        }
        if mode == Mode::Rebuild && s as u32 == slot {
            continue;
        }
        let ssb = read_superblock(&m.device)?.ok_or_else(|| {
            Error::NotAnArray(format!(
                "{}: superblock could not be read again",
                path.display()
            ))
        })?;
        sources[s] = Some(path.display().to_string());
        survivors.push(Survivor {
            slot: s as u32,
            path,
            sb: ssb,
        });
    }
    let replaced = present
        .filter(|_| mode == Mode::Replace)
        .map(|m| PathBuf::from(&asm.reports[m.report].path));

    // Parity from an array that was not stopped cleanly may be stale (md refuses to run
    // such an array degraded): rebuilding from it could write wrong data.
    if let Some(from) = asm.dirty_from {
        if level.parity_disks() > 0 && !(mode == Mode::Replace && present.is_some()) {
            if !opts.force {
                return Err(Error::Assembly(format!(
                    "the array was not stopped cleanly (parity may be stale from member byte {from}); \
                     rebuilding from it could write wrong data. Resync it first, or pass force=True / --force"
                )));
            }
            notes.push("rebuilding from possibly stale parity (force)".into());
        }
    }

    // Bitmap: the new member needs the same bitmap as the others (1.1/1.2: between the
    // superblock and the data).
    let bitmap = if fm.contains(FeatureMap::BITMAP_OFFSET) {
        let from = (ref_sb.super_offset + 8) * SECTOR_SIZE;
        let to = ref_sb.data_offset * SECTOR_SIZE;
        let Some(m) = ref_member else {
            return Err(Error::Unsupported(
                "the bitmap of a member that is not read cannot be copied".into(),
            ));
        };
        let mut b = vec![0u8; to.saturating_sub(from) as usize];
        m.read_exact_at(&mut b, from)?;
        Some((from, b))
    } else {
        None
    };

    Ok(Plan {
        mode,
        slot,
        target,
        create,
        target_bytes,
        found,
        start,
        end,
        dev_number,
        sources,
        replaced,
        uuid,
        level,
        notes,
        new_sb: sb,
        final_roles: done.dev_roles,
        survivors,
        bitmap,
        events: asm.reference.events,
        asm,
        opts: opts.clone(),
    })
}

const SECTOR_BYTES_U64: u64 = SECTOR_SIZE;

fn uuid_of(sb: &SuperblockV1) -> [u8; 16] {
    sb.set_uuid
}

/// Whether `path` holds a complete (not recovering), fresh member of array `uuid` in `slot`.
fn completed_on(path: Option<&Path>, uuid: [u8; 16], slot: u32, events: u64) -> bool {
    let Some(m) = path.and_then(|p| Member::open(p).ok()) else {
        return false;
    };
    matches!(read_superblock(&m), Ok(Some(o)) if o.set_uuid == uuid
        && !o.feature_map.contains(FeatureMap::RECOVERY_OFFSET)
        && o.role() == Role::Active(slot as u16)
        && o.events.saturating_add(1) >= events)
}

fn md_err(e: crate::md::Error) -> Error {
    invalid!("superblock: {e}")
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = match self.mode {
            Mode::Rebuild => "rebuild",
            Mode::Replace => "replace",
        };
        writeln!(
            f,
            "{verb} slot {} of {} array {} ({} members, {} per member to write)",
            self.slot,
            self.level,
            format_uuid(&self.uuid),
            self.sources.len(),
            human(self.end)
        )?;
        if let Some(r) = &self.replaced {
            writeln!(
                f,
                "  replaced member : {} (marked faulty when done)",
                r.display()
            )?;
        }
        writeln!(
            f,
            "  new member      : {}{} (device number {})",
            self.target.display(),
            if self.create {
                format!(" - new file of {}", human(self.target_bytes))
            } else {
                String::new()
            },
            self.dev_number
        )?;
        for s in &self.found {
            writeln!(f, "  found on it     : {s}")?;
        }
        if self.start > 0 {
            writeln!(
                f,
                "  resume at       : {} of {}",
                human(self.start),
                human(self.end)
            )?;
        }
        let src: Vec<String> = self
            .sources
            .iter()
            .enumerate()
            .map(|(i, s)| format!("{i}: {}", s.as_deref().unwrap_or("-")))
            .collect();
        writeln!(f, "  read from       : {}", src.join(", "))?;
        for n in &self.notes {
            writeln!(f, "  note            : {n}")?;
        }
        Ok(())
    }
}

// ================================================================================
// Execution
// ================================================================================

/// The new member while it is written: its file and the checkpoint protocol.
struct Recovery<'a> {
    file: &'a File,
    path: &'a Path,
    sb: SuperblockV1,
    /// Bytes recorded in `recovery_offset`.
    recorded: u64,
}

fn write_superblock(file: &File, path: &Path, sb: &mut SuperblockV1) -> Result<()> {
    sb.utime_raw = MdTime::now().to_v1();
    sb.update_checksum().map_err(md_err)?;
    let block = sb.to_block().map_err(md_err)?;
    file.write_all_at(&block, sb.super_offset * SECTOR_SIZE)
        .map_err(|e| io_err(path, "superblock write failed", &e))
}

fn sync(file: &File, path: &Path) -> Result<()> {
    file.sync_data()
        .map_err(|e| io_err(path, "fdatasync failed", &e))
}

impl Recovery<'_> {
    /// Record that the first `pos` bytes of the data area are rebuilt.
    ///
    /// Durability order (the crash-safety argument of the module docs): the data below
    /// `pos` was written before this call; `fdatasync` makes it durable *before* the
    /// superblock that claims it is written, and a second `fdatasync` makes that claim
    /// durable. A crash before the second sync leaves the old checkpoint (or, the page
    /// cache having kept the write, the new one, whose data is already on disk): either
    /// way the checkpoint never runs ahead of durable data.
    fn checkpoint(&mut self, pos: u64) -> Result<()> {
        if pos == self.recorded {
            return Ok(());
        }
        sync(self.file, self.path)?;
        self.sb.recovery_offset = pos / SECTOR_SIZE;
        write_superblock(self.file, self.path, &mut self.sb)?;
        sync(self.file, self.path)?;
        self.recorded = pos;
        Ok(())
    }
}

impl Plan {
    /// The assembly the plan was made from.
    pub fn assembly(&self) -> &Assembly {
        &self.asm
    }

    /// Do it. `progress` is called on this thread after every batch; returning
    /// `ControlFlow::Break` stops at a checkpoint with [`Error::Cancelled`] (run the same
    /// rebuild again to resume).
    pub fn execute(
        &self,
        progress: &mut dyn FnMut(&Progress) -> ControlFlow<()>,
    ) -> Result<Report> {
        let t0 = Instant::now();
        let target = &self.target;
        // ---- open (or create) the target
        let file = crate::io::open_for_writing(target, self.create)
            .map_err(|e| io_err(target, "cannot open for writing", &e))?;
        if self.create {
            file.set_len(self.target_bytes)
                .map_err(|e| io_err(target, "cannot set the size", &e))?;
        }

        // ---- 1. activate: the new member first, then the others (module docs)
        let e1 = self.events + 1;
        let mut sb = self.new_sb.clone();
        sb.events = e1;
        if let Some((off, bytes)) = &self.bitmap {
            file.write_all_at(bytes, *off)
                .map_err(|e| io_err(target, "bitmap write failed", &e))?;
        }
        write_superblock(&file, target, &mut sb)?;
        file.sync_all()
            .map_err(|e| io_err(target, "fsync failed", &e))?;
        let mut files = Vec::new();
        for s in &self.survivors {
            let f = crate::io::open_for_writing(&s.path, false)
                .map_err(|e| io_err(&s.path, "cannot open for writing its superblock", &e))?;
            let mut ssb = s.sb.clone();
            ssb.events = e1;
            ssb.max_dev = self.new_sb.max_dev;
            ssb.dev_roles = self.new_sb.dev_roles.clone();
            write_superblock(&f, &s.path, &mut ssb)?;
            sync(&f, &s.path)?;
            files.push((f, ssb));
        }

        // ---- 2. recover
        let mut rec = Recovery {
            file: &file,
            path: target,
            sb,
            recorded: self.start,
        };
        let written = self.recover(&mut rec, t0, progress)?;

        // ---- 3. finish: the new member first (it becomes the freshest), then the others
        let e2 = e1 + 1;
        sync(&file, target)?;
        let mut sb = rec.sb;
        sb.events = e2;
        sb.recovery_offset = 0;
        sb.feature_map.set(FeatureMap::RECOVERY_OFFSET, false);
        sb.feature_map.set(FeatureMap::REPLACEMENT, false);
        sb.dev_roles = self.final_roles.clone();
        sb.max_dev = sb.dev_roles.len() as u32;
        write_superblock(&file, target, &mut sb)?;
        sync(&file, target)?;
        for ((f, mut ssb), s) in files.into_iter().zip(&self.survivors) {
            if self.mode == Mode::Replace && s.slot == self.slot {
                continue; // the replaced member: left as md leaves a faulty device
            }
            ssb.events = e2;
            ssb.dev_roles = self.final_roles.clone();
            ssb.max_dev = ssb.dev_roles.len() as u32;
            write_superblock(&f, &s.path, &mut ssb)?;
            sync(&f, &s.path)?;
        }
        Ok(Report {
            slot: self.slot,
            target: self.target.clone(),
            replaced: self.replaced.clone(),
            dev_number: self.dev_number,
            resumed_from: self.start,
            bytes_written: written,
            total: self.end,
            events: e2,
            created: self.create,
            seconds: t0.elapsed().as_secs_f64(),
        })
    }

    /// Stage 3 of the pipeline (this thread): write batches in order, checkpoint, report
    /// progress, keep the speed limit. Returns the bytes written.
    fn recover(
        &self,
        rec: &mut Recovery<'_>,
        t0: Instant,
        progress: &mut dyn FnMut(&Progress) -> ControlFlow<()>,
    ) -> Result<u64> {
        let data_offset = rec.sb.data_offset * SECTOR_SIZE;
        let o = &self.opts;
        let batch = (o.batch_bytes.max(4096) as u64 / SECTOR_SIZE * SECTOR_SIZE).max(4096);
        let stop = AtomicBool::new(false);
        let job = engine::Job {
            geometry: &self.asm.geometry,
            slots: &self.asm.slots,
            slot: self.slot,
            copy_from_old: self.mode == Mode::Replace,
            end: self.end,
            batch,
            target: (rec.file, rec.path, data_offset),
            parity: o.parity,
            stop: &stop,
        };
        let run_start = Instant::now();
        // `pos`: every byte below it is written (batches finish out of order; those past
        // the first gap wait in `ahead`), so it is what a checkpoint may claim.
        let mut pos = self.start;
        let mut ahead: BTreeMap<u64, u64> = BTreeMap::new();
        let mut last_cp = (self.start, Instant::now());
        let result = std::thread::scope(|scope| -> Result<()> {
            let (next_tx, done) = engine::spawn(scope, &job);
            let mut next = self.start;
            // Batches are issued only within `depth` batches of the written prefix: enough
            // to keep every worker busy with one queued behind it, and a worker that
            // stalls on one batch does not let the others run ahead of the checkpoint (or
            // of a cancel) without bound. With a speed limit, one batch at a time, issued
            // when the limit allows.
            let limited = o.speed_limit.is_some_and(|l| l > 0);
            let depth = if limited {
                1
            } else {
                2 * engine::workers() as u64
            };
            let mut issue = |pos: u64| {
                while next < self.end && next < pos + depth * batch {
                    if next_tx.send(next).is_err() {
                        break;
                    }
                    next += batch.min(self.end - next);
                }
            };
            issue(pos);
            let mut advance = |start: u64, len: u64, pos: &mut u64| {
                ahead.insert(start, start + len);
                while let Some(end) = ahead.remove(pos) {
                    *pos = end;
                }
            };
            let r = (|| -> Result<()> {
                // Every issued batch reports back, so the prefix reaches the end.
                while pos < self.end {
                    let Ok(item) = done.recv() else { break };
                    let (start, len) = item?;
                    advance(start, len, &mut pos);
                    let due = o.checkpoint_bytes == 0
                        || pos - last_cp.0 >= o.checkpoint_bytes
                        || last_cp.1.elapsed() >= o.checkpoint_interval;
                    if due && pos < self.end {
                        rec.checkpoint(pos)?;
                        last_cp = (pos, Instant::now());
                    }
                    let elapsed = run_start.elapsed().as_secs_f64();
                    if let Some(limit) = o.speed_limit.filter(|&l| l > 0) {
                        let want = (pos - self.start) as f64 / limit as f64;
                        if want > elapsed {
                            std::thread::sleep(Duration::from_secs_f64(want - elapsed));
                        }
                    }
                    let elapsed = run_start.elapsed().as_secs_f64();
                    let p = Progress {
                        done: pos,
                        total: self.end,
                        start: self.start,
                        checkpoint: rec.recorded,
                        rate: if elapsed > 0.0 {
                            (pos - self.start) as f64 / elapsed
                        } else {
                            0.0
                        },
                        elapsed,
                    };
                    if progress(&p).is_break() {
                        return Err(Error::Cancelled(String::new()));
                    }
                    issue(pos);
                }
                Ok(())
            })();
            // Stopping (an error, or the caller's Break): the workers skip what is queued
            // and end once the batches they are on are written; those still count towards
            // the written prefix that the final checkpoint records.
            stop.store(true, Ordering::SeqCst);
            drop(next_tx);
            for (start, len) in done.into_iter().flatten() {
                advance(start, len, &mut pos);
            }
            r
        });
        let _ = t0;
        match result {
            Ok(()) if pos >= self.end => Ok(pos - self.start),
            Ok(()) => Err(Error::Io(format!(
                "rebuild stopped early at byte {pos} of {}",
                self.end
            ))),
            Err(e) => {
                // What was written is correct: keep it (a checkpoint) whatever stopped us.
                let saved = rec.checkpoint(pos);
                let how = format!(
                    "{} of {} rebuilt and recorded in {}'s superblock; run the same rebuild again to resume",
                    human(rec.recorded),
                    human(self.end),
                    rec.path.display()
                );
                Err(match (e, saved) {
                    (Error::Cancelled(_), Ok(())) => {
                        Error::Cancelled(format!("rebuild stopped: {how}"))
                    }
                    (Error::Cancelled(_), Err(s)) => s,
                    (e, _) => e,
                })
            }
        }
    }
}

/// Plan and execute in one call.
pub fn rebuild<P: AsRef<Path>>(
    members: &[P],
    opts: &RebuildOptions,
    progress: &mut dyn FnMut(&Progress) -> ControlFlow<()>,
) -> Result<Report> {
    plan(members, opts)?.execute(progress)
}

#[cfg(test)]
mod tests;
