//! Read-only assembly of a Linux md array from member devices or images, without the
//! kernel (`shared/docs/md-format.md` §4).
//!
//! The decisions follow md's and each one is written down in the [`Assembly`]'s report,
//! so that `fastraid detail` can say what was chosen and why:
//!
//! 1. Every path is opened read-only and probed at the four superblock locations; the
//!    valid candidate with the newest creation time is the member's superblock (mdadm's
//!    rule when no metadata version is named). A path with none is left out, with the
//!    reason (no magic anywhere, or the problems of each candidate).
//! 2. All superblocks must carry one array UUID; members of several arrays are an error
//!    that lists what was found (guessing which array was meant is not our job).
//! 3. The reference superblock is the non-spare member with the highest event count;
//!    geometry and the role table come from it (a member whose own superblock is older
//!    takes its role from the reference, as the kernel does).
//! 4. A member is fresh when `events + 1 ≥ reference events` (the kernel accepts a lag of
//!    one). Older members are stale: reported with how far behind they are, and used only
//!    with `force`, and then only to fill slots the array cannot do without (a fresh
//!    reconstruction beats stale data).
//! 5. Spares, faulty and journal devices hold no array data. Two members claiming one
//!    slot: the freshest in-sync one is kept, the other reported. A member with
//!    RECOVERY_OFFSET is used only below its checkpoint; bad-block log entries and a
//!    device shorter than its data area make those ranges unusable on that member.
//! 6. The level decides how many slots may be missing (RAID4/5 one, RAID6 two, RAID1 all
//!    but one, RAID10 all but one copy of every block, RAID0/linear none).
//!
//! A reshape in progress (§6) gives two geometries: the old one (superblock layout and
//! chunk, `raid_disks − delta_disks` members, data at `data_offset`) and the new one
//! (reshape fields, `raid_disks` members, data at `data_offset + new_offset`), split at
//! the checkpoint ([`Part`]); the reader then checks the checkpoint against parity. An
//! mdadm backup file is not read yet.

use std::fmt::Write as _;
use std::path::Path;

use crate::error::{Error, Result};
use crate::io::Member;
use crate::layout::{Geometry, Level, SECTOR_SIZE};
use crate::md::{self, FeatureMap, Found, MemberInfo, Role, Superblock};

// ================================================================================
// Public types
// ================================================================================

/// How to assemble.
#[derive(Debug, Clone, Copy, Default)]
pub struct AssembleOptions {
    /// Use stale members (event count more than one behind) where the array cannot run
    /// without them, as `mdadm --assemble --force` does.
    pub force: bool,
    /// Open the members read-write (for [`crate::writer`]); a member that cannot be opened
    /// so is then an error instead of being left out.
    pub writable: bool,
}

/// What assembly made of one path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberState {
    /// In sync, used for data.
    Active,
    /// Used, but only below `valid_sectors` (RECOVERY_OFFSET: a rebuild was interrupted).
    Rebuilding { valid_sectors: u64 },
    /// Event count more than one behind the freshest member; used only with `force`.
    Stale { behind: u64, used: bool },
    /// Holds no array data.
    Spare,
    /// Marked faulty in the freshest superblock.
    Faulty,
    /// Write-journal device.
    Journal,
    /// Claims a slot that a fresher member holds.
    Duplicate { slot: u32 },
    /// Not a member: no usable superblock, or the device cannot be read.
    Excluded,
}

impl MemberState {
    /// A short name: `active`, `rebuilding`, `stale`, `spare`, `faulty`, `journal`,
    /// `duplicate`, `excluded`.
    pub fn name(&self) -> &'static str {
        match self {
            MemberState::Active => "active",
            MemberState::Rebuilding { .. } => "rebuilding",
            MemberState::Stale { .. } => "stale",
            MemberState::Spare => "spare",
            MemberState::Faulty => "faulty",
            MemberState::Journal => "journal",
            MemberState::Duplicate { .. } => "duplicate",
            MemberState::Excluded => "excluded",
        }
    }
}

/// One path given to [`assemble`], and what was decided about it.
#[derive(Debug, Clone)]
pub struct MemberReport {
    pub path: String,
    /// The superblock used for this path, if any.
    pub info: Option<MemberInfo>,
    /// The slot (raid disk) it serves, when it holds data.
    pub slot: Option<u32>,
    pub state: MemberState,
    /// Whether its data is read.
    pub used: bool,
    /// Why, in words.
    pub reason: String,
}

/// A member used for data, by slot.
#[derive(Debug)]
pub struct SlotMember {
    pub device: Member,
    /// Index into [`Assembly::reports`].
    pub report: usize,
    /// Byte offset of the data area on the device.
    pub data_offset: u64,
    /// Bytes of the data area that hold valid data (from its start); `u64::MAX` = all.
    pub valid_bytes: u64,
    /// Unusable byte ranges `[start, end)` relative to the data area (bad-block log),
    /// sorted and disjoint.
    pub bad: Vec<(u64, u64)>,
    /// Used although stale (forced).
    pub forced: bool,
}

impl SlotMember {
    /// Whether the `len` bytes at data-area offset `off` are usable, and for how many
    /// bytes (from `off`, at most `len`) that answer stays the same.
    pub fn usable(&self, off: u64, len: u64) -> (bool, u64) {
        if off >= self.valid_bytes {
            return (false, len);
        }
        let mut run = len.min(self.valid_bytes - off);
        for &(s, e) in &self.bad {
            if e <= off {
                continue;
            }
            if s <= off {
                return (false, len.min(e - off));
            }
            run = run.min(s - off);
            break;
        }
        (true, run)
    }
}

/// A range of array bytes and the geometry that holds it.
#[derive(Debug, Clone)]
pub struct Part {
    /// Array byte range `[start, end)`.
    pub start: u64,
    pub end: u64,
    pub geometry: Geometry,
    /// Bytes added to every member's data offset for this geometry (reshape `new_offset`).
    pub shift: i64,
    /// `old` or `new` during a reshape, empty otherwise.
    pub name: &'static str,
}

/// The result of [`assemble`]: the geometry, the members by slot and the report.
#[derive(Debug)]
pub struct Assembly {
    /// The geometry the array has (during a reshape: the one it is going to).
    pub geometry: Geometry,
    /// Which geometry serves which array bytes: one part, or the two sides of a reshape.
    pub parts: Vec<Part>,
    /// The freshest superblock (geometry, roles and state come from it).
    pub reference: MemberInfo,
    /// Index of the reference member in `reports`.
    pub reference_report: usize,
    /// `slots[i]`: the member serving slot i, `None` if missing.
    pub slots: Vec<Option<SlotMember>>,
    /// One per path, in the order given.
    pub reports: Vec<MemberReport>,
    /// Decisions and warnings, in words.
    pub notes: Vec<String>,
    /// For RAID4/5/6 arrays not stopped cleanly: member byte offset (from the data area
    /// start) from which parity may be stale, so data rebuilt there is uncertain.
    pub dirty_from: Option<u64>,
    pub force: bool,
    /// An mdadm reshape backup whose logical data overrides the members' for its ranges.
    pub backup: Option<Backup>,
    /// The reshape checkpoint is exact (fastraid's own in-place reshape, with its
    /// journal): the reader does not second-guess it by parity.
    pub pinned: bool,
}

/// A validated mdadm reshape backup file (md-format.md §6.4).
#[derive(Debug)]
pub struct Backup {
    pub path: String,
    pub file: Member,
    /// `(array byte start, length, byte offset in the file)` of each section.
    pub sections: Vec<(u64, u64, u64)>,
}

impl Assembly {
    /// Array size in bytes.
    pub fn size(&self) -> u64 {
        self.parts.last().map_or(0, |p| p.end)
    }

    /// Slots with no member.
    pub fn missing(&self) -> Vec<u32> {
        (0u32..)
            .zip(&self.slots)
            .filter(|(_, s)| s.is_none())
            .map(|(i, _)| i)
            .collect()
    }

    /// Missing slots, or slots whose member covers only part of the data area.
    pub fn degraded(&self) -> bool {
        self.slots.iter().any(|s| match s {
            None => true,
            Some(m) => m.valid_bytes != u64::MAX || !m.bad.is_empty(),
        })
    }

    /// mdadm-style state: `clean` or `active` (not stopped cleanly), then `, degraded`,
    /// `, recovering` (a partially rebuilt member), `, forced`.
    pub fn state(&self) -> String {
        let mut s = String::from(if self.reference.is_clean() {
            "clean"
        } else {
            "active"
        });
        if self.slots.iter().any(Option::is_none) {
            s.push_str(", degraded");
        }
        if self
            .slots
            .iter()
            .flatten()
            .any(|m| m.valid_bytes != u64::MAX)
        {
            s.push_str(", recovering");
        }
        if self.slots.iter().flatten().any(|m| m.forced) {
            s.push_str(", forced");
        }
        s
    }
}

// ================================================================================
// Examine
// ================================================================================

/// Every md superblock candidate on one device, like `mdadm --examine` (valid or not).
pub fn examine(path: impl AsRef<Path>) -> Result<(Member, Vec<Found>)> {
    let m = Member::open(path.as_ref())?;
    let found = probe(&m)?;
    Ok((m, found))
}

fn probe(m: &Member) -> Result<Vec<Found>> {
    md::probe(m.len(), |off, buf| m.read_io(buf, off))
        .map_err(|e| Error::Io(format!("{}: {e}", m.path().display())))
}

// ================================================================================
// Assemble
// ================================================================================

/// A path that holds a usable superblock.
struct Candidate {
    report: usize,
    device: Member,
    superblock: Superblock,
    info: MemberInfo,
}

/// Assemble the array whose members are `paths` (any order). See the module docs.
pub fn assemble<P: AsRef<Path>>(paths: &[P], opts: AssembleOptions) -> Result<Assembly> {
    assemble_with_backup(paths, opts, None)
}

/// [`assemble`], with mdadm's reshape backup file: during a reshape its sections (plain
/// array data) are read instead of the members' for their ranges; outside a reshape, or
/// when the reshape has moved past them, it is ignored (with a note). A file that is not a
/// backup of this array is an error.
pub fn assemble_with_backup<P: AsRef<Path>>(
    paths: &[P],
    opts: AssembleOptions,
    backup_file: Option<&Path>,
) -> Result<Assembly> {
    if paths.is_empty() {
        return Err(Error::Assembly("no member paths given".into()));
    }
    let mut reports: Vec<MemberReport> = Vec::new();
    let mut opened: Vec<(usize, (u64, u64))> = Vec::new();
    let mut notes = Vec::new();

    // 1. Open and probe every path.
    let mut cands: Vec<Candidate> = Vec::new();
    for p in paths {
        let p = p.as_ref();
        let idx = reports.len();
        let mut report = MemberReport {
            path: p.display().to_string(),
            info: None,
            slot: None,
            state: MemberState::Excluded,
            used: false,
            reason: String::new(),
        };
        let device = match Member::open_with(p, opts.writable) {
            Ok(d) => d,
            // Writing must not silently run degraded because a member is read-only.
            Err(e) if opts.writable => return Err(e),
            Err(e) => {
                report.reason = e.to_string();
                reports.push(report);
                continue;
            }
        };
        if let Some((j, _)) = opened.iter().find(|(_, o)| *o == device.identity()) {
            return Err(Error::Assembly(format!(
                "{} and {} are the same device or file: give each member once",
                reports[*j].path, report.path
            )));
        }
        let found = match probe(&device) {
            Ok(f) => f,
            Err(e) => {
                report.reason = e.to_string();
                reports.push(report);
                continue;
            }
        };
        match md::preferred(&found) {
            Some(f) => {
                // `preferred` only returns decodable candidates.
                let (Ok(sb), Some(info)) = (f.superblock.clone(), f.member_info()) else {
                    report.reason = "superblock could not be decoded".into();
                    reports.push(report);
                    continue;
                };
                report.info = Some(info.clone());
                reports.push(report);
                opened.push((idx, device.identity()));
                cands.push(Candidate {
                    report: idx,
                    device,
                    superblock: sb,
                    info,
                });
            }
            None => {
                report.reason = no_superblock_reason(&found);
                // Show the best broken candidate in examine-like output anyway.
                report.info = found.iter().find_map(Found::member_info);
                reports.push(report);
                opened.push((idx, device.identity()));
            }
        }
    }

    // 2. One array only.
    if cands.is_empty() {
        let mut msg = String::from("no usable md superblock on any member:");
        for r in &reports {
            let _ = write!(msg, "\n  {}: {}", r.path, r.reason);
        }
        return Err(Error::NotAnArray(msg));
    }
    let mut uuids: Vec<[u8; 16]> = Vec::new();
    for c in &cands {
        if !uuids.contains(&c.info.array_uuid) {
            uuids.push(c.info.array_uuid);
        }
    }
    if uuids.len() > 1 {
        let mut msg = format!(
            "the members belong to {} different arrays; give the members of one array:",
            uuids.len()
        );
        for u in &uuids {
            let of: Vec<&Candidate> = cands.iter().filter(|c| c.info.array_uuid == *u).collect();
            let first = &of[0].info;
            let _ = write!(
                msg,
                "\n  array {} ({}, {} members, name {:?}): {}",
                md::format_uuid(u),
                md::level_name(first.level).unwrap_or("unknown level"),
                first.raid_disks,
                first.name,
                of.iter()
                    .map(|c| reports[c.report].path.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        return Err(Error::Assembly(msg));
    }

    // 3. The reference: highest events among non-spares (first one given on ties).
    let is_spare = |c: &Candidate| matches!(c.info.role, Role::Spare);
    let ref_i = (0..cands.len())
        .filter(|&i| !is_spare(&cands[i]))
        .max_by_key(|&i| (cands[i].info.events, std::cmp::Reverse(i)))
        .or_else(|| (0..cands.len()).max_by_key(|&i| (cands[i].info.events, std::cmp::Reverse(i))))
        .unwrap_or(0);
    let reference = cands[ref_i].info.clone();
    let reference_sb = cands[ref_i].superblock.clone();
    let reference_report = cands[ref_i].report;
    notes.push(format!(
        "reference superblock: {} (events {}, metadata {})",
        reports[reference_report].path, reference.events, reference.version
    ));

    let level = Level::from_md(reference.level)
        .map_err(|e| Error::Assembly(format!("{}: {e}", reports[reference_report].path)))?;
    let raid_disks = reference.raid_disks;
    if raid_disks == 0 || raid_disks > crate::layout::MAX_RAID_DISKS {
        return Err(Error::Assembly(format!(
            "the freshest superblock records {raid_disks} members"
        )));
    }
    // During a reshape `raid_disks` is the new count; the old one is `raid_disks −
    // delta_disks` (md-format.md §6.1). Slots exist up to the larger of the two.
    let old_disks = match &reference.reshape {
        None => raid_disks,
        Some(r) => {
            if r.new_level != reference.level {
                return Err(Error::Unsupported(format!(
                    "a reshape from level {} to {} is in progress; md changes levels before \
                     reshaping, so this superblock is not understood",
                    reference.level, r.new_level
                )));
            }
            if matches!(level, Level::Raid0 | Level::Linear) {
                return Err(Error::Unsupported(format!(
                    "a reshape of a {level} array is in progress: not supported"
                )));
            }
            u32::try_from(i64::from(raid_disks) - i64::from(r.delta_disks))
                .ok()
                .filter(|&o| o > 0 && o <= crate::layout::MAX_RAID_DISKS)
                .ok_or_else(|| {
                    Error::Assembly(format!(
                        "reshape delta_disks {} does not fit raid_disks {raid_disks}",
                        r.delta_disks
                    ))
                })?
        }
    };
    let slot_count = raid_disks.max(old_disks);

    // 4./5. Roles, freshness, slot conflicts.
    let mut fresh: Vec<Vec<usize>> = vec![Vec::new(); slot_count as usize];
    let mut stale: Vec<(usize, u32)> = Vec::new(); // (candidate, slot)
    for (ci, c) in cands.iter().enumerate() {
        let r = &mut reports[c.report];
        let role = role_in_reference(&reference_sb, &c.info);
        let behind = reference.events.saturating_sub(c.info.events);
        let is_fresh = behind <= 1;
        let own_slot = c.info.role.slot().map(u32::from);
        match role {
            Role::Spare => {
                r.state = MemberState::Spare;
                r.reason = "spare: holds no array data".into();
            }
            Role::Journal => {
                r.state = MemberState::Journal;
                r.reason =
                    "write-journal device: holds no array data (journal not replayed)".into();
            }
            Role::Unknown(raw) => {
                r.state = MemberState::Excluded;
                r.reason = format!("role {raw:#06x} is not defined by md");
            }
            Role::Faulty => {
                r.state = MemberState::Faulty;
                r.reason = format!(
                    "marked faulty in the freshest superblock (events {})",
                    reference.events
                );
                if let Some(s) = own_slot.filter(|&s| s < slot_count) {
                    r.slot = Some(s);
                    r.reason.push_str(&format!(
                        "; its own superblock says slot {s} (events {})",
                        c.info.events
                    ));
                    stale.push((ci, s));
                }
            }
            Role::Active(s) => {
                let s = u32::from(s);
                r.slot = Some(s);
                if s >= slot_count {
                    r.state = MemberState::Excluded;
                    r.reason = format!("slot {s} is beyond the array's {slot_count} members");
                } else if is_fresh {
                    fresh[s as usize].push(ci);
                } else {
                    r.state = MemberState::Stale {
                        behind,
                        used: false,
                    };
                    r.reason = format!(
                        "stale: events {} are {behind} behind the freshest ({}); not used",
                        c.info.events, reference.events
                    );
                    stale.push((ci, s));
                }
            }
        }
    }

    // Pick one member per slot among the fresh ones: in sync before rebuilding, not a
    // replacement before a replacement, then the highest events, then the order given.
    let mut chosen: Vec<Option<usize>> = vec![None; slot_count as usize];
    for (s, list) in fresh.iter().enumerate() {
        let best = list.iter().copied().min_by_key(|&ci| {
            let i = &cands[ci].info;
            (
                i.recovery_offset.is_some(),
                i.replacement,
                std::cmp::Reverse(i.events),
                ci,
            )
        });
        chosen[s] = best;
        for &ci in list {
            let r = &mut reports[cands[ci].report];
            if Some(ci) == best {
                continue;
            }
            r.state = MemberState::Duplicate { slot: s as u32 };
            let keeper = best
                .map(|b| reports[cands[b].report].path.clone())
                .unwrap_or_default();
            let r = &mut reports[cands[ci].report];
            r.reason = if cands[ci].info.replacement {
                format!("replacement still rebuilding slot {s}; {keeper} serves the slot")
            } else {
                format!("slot {s} is also claimed by {keeper}, which is kept (fresher or in sync)")
            };
            notes.push(format!("slot {s}: {} left out, {}", r.path, r.reason));
        }
    }

    // 6. Enough members? With force, fill the gaps with the freshest stale members.
    // The geometries: for a reshape the old one (superblock layout/chunk, old count) and
    // the new one (reshape fields, raid_disks); otherwise one. RAID0/linear need every
    // member's size, so they are built after the members are chosen.
    let (old_info, new_info) = geometry_infos(&reference, old_disks);
    let probe = |info: &MemberInfo| {
        (level == Level::Raid10)
            .then(|| build_geometry(info, level, &[]).ok())
            .flatten()
    };
    let (probe_old, probe_new) = (probe(&old_info), probe(&new_info));
    let sufficient = |chosen: &[Option<usize>]| -> bool {
        let present: Vec<bool> = chosen.iter().map(Option::is_some).collect();
        let upto = |n: u32| &present[..(n as usize).min(present.len())];
        enough(level, upto(raid_disks), probe_new.as_ref())
            && enough(level, upto(old_disks), probe_old.as_ref())
    };
    if !sufficient(&chosen) && opts.force {
        stale.sort_by_key(|&(ci, _)| std::cmp::Reverse(cands[ci].info.events));
        for &(ci, s) in &stale {
            if sufficient(&chosen) {
                break;
            }
            if chosen[s as usize].is_none() {
                chosen[s as usize] = Some(ci);
                let r = &mut reports[cands[ci].report];
                let behind = reference.events.saturating_sub(cands[ci].info.events);
                r.state = MemberState::Stale { behind, used: true };
                r.slot = Some(s);
                r.reason = format!(
                    "stale (events {}, {behind} behind the freshest) but used because of --force: \
                     its data may be out of date",
                    cands[ci].info.events
                );
                notes.push(format!("slot {s}: forced to use stale {}", r.path));
            }
        }
    }
    if !sufficient(&chosen) {
        let missing: Vec<u32> = (0u32..)
            .zip(&chosen)
            .filter(|(_, c)| c.is_none())
            .map(|(i, _)| i)
            .collect();
        let mut msg = format!(
            "cannot assemble {level} with {slot_count} members: {} of them missing (slots {})",
            missing.len(),
            missing
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        );
        let _ = write!(msg, "; {level} {}", tolerance(level));
        for r in reports.iter().filter(|r| !r.reason.is_empty()) {
            let _ = write!(msg, "\n  {}: {}", r.path, r.reason);
        }
        if stale.iter().any(|&(_, s)| chosen[s as usize].is_none()) && !opts.force {
            msg.push_str("\n  (stale members can be used with force=True / --force)");
        }
        return Err(Error::Assembly(msg));
    }

    // Geometry.
    let member_sectors: Vec<u64> = if matches!(level, Level::Raid0 | Level::Linear) {
        chosen
            .iter()
            .map(|c| c.map_or(0, |ci| cands[ci].info.dev_sectors))
            .collect()
    } else {
        Vec::new()
    };
    let geometry = build_geometry(&new_info, level, &member_sectors)?;
    let parts = match &reference.reshape {
        None => vec![Part {
            start: 0,
            end: geometry.array_bytes(),
            geometry: geometry.clone(),
            shift: 0,
            name: "",
        }],
        Some(r) => {
            let old = build_geometry(&old_info, level, &member_sectors)?;
            reshape_parts(&old, geometry.clone(), r, &mut notes)?
        }
    };

    // Slot members with their validity windows.
    let mut cand_slots: Vec<Option<Candidate>> = cands.into_iter().map(Some).collect();
    let mut slots: Vec<Option<SlotMember>> = Vec::with_capacity(raid_disks as usize);
    for (s, c) in chosen.iter().enumerate() {
        let Some(ci) = *c else {
            slots.push(None);
            notes.push(format!("slot {s}: missing"));
            continue;
        };
        let Some(c) = cand_slots[ci].take() else {
            slots.push(None);
            continue;
        };
        let r = &mut reports[c.report];
        r.used = true;
        r.slot = Some(s as u32);
        let forced = matches!(r.state, MemberState::Stale { used: true, .. });
        let data_offset = c.info.data_offset.saturating_mul(SECTOR_SIZE);
        // The furthest byte any geometry reads on this member (relative to data_offset).
        let mut used_bytes = 0u64;
        for part in &parts {
            if (s as u32) < part.geometry.raid_disks() {
                let u = part
                    .geometry
                    .member_used_sectors(s as u32)
                    .map_err(Error::from)?
                    .saturating_mul(SECTOR_SIZE);
                used_bytes = used_bytes.max(u.saturating_add_signed(part.shift));
            }
        }
        let mut valid_bytes = u64::MAX;
        if !forced {
            r.state = MemberState::Active;
            r.reason = "in sync".into();
        }
        if let Some(ro) = c.info.recovery_offset {
            valid_bytes = ro.saturating_mul(SECTOR_SIZE);
            if !forced {
                r.state = MemberState::Rebuilding { valid_sectors: ro };
            }
            r.reason = format!(
                "rebuilding: only the first {ro} sectors of its data area are in sync; \
                 the rest is rebuilt from the other members"
            );
        }
        let have = c.device.len().saturating_sub(data_offset);
        if have < used_bytes && have < valid_bytes {
            valid_bytes = have;
            let msg = format!(
                "device is {} bytes, shorter than its data area needs ({} bytes from byte {}): \
                 the rest is rebuilt from the other members",
                c.device.len(),
                used_bytes,
                data_offset
            );
            notes.push(format!("slot {s}: {}: {msg}", r.path));
            r.reason = msg;
        }
        let bad = bad_blocks(&c, &mut notes, &r.path);
        if !bad.is_empty() {
            notes.push(format!(
                "slot {s}: {}: {} bad-block range(s) from its log are read from the other members",
                r.path,
                bad.len()
            ));
        }
        slots.push(Some(SlotMember {
            device: c.device,
            report: c.report,
            data_offset,
            valid_bytes: if valid_bytes >= used_bytes {
                u64::MAX
            } else {
                valid_bytes
            },
            bad,
            forced,
        }));
    }

    let dirty_from = (!reference.is_clean() && level.parity_disks() > 0)
        .then(|| reference.resync_offset.saturating_mul(SECTOR_SIZE));
    if !reference.is_clean() {
        notes.push(format!(
            "the array was not stopped cleanly (resync checkpoint at sector {}): parity or \
             mirror copies beyond it may be stale; data rebuilt there is marked uncertain",
            reference.resync_offset
        ));
    }
    let missing_count = slots.iter().filter(|s| s.is_none()).count();
    if missing_count > 0 {
        notes.push(format!(
            "degraded: {missing_count} slot(s) missing, their data is rebuilt from the others"
        ));
    }

    // fastraid's own in-place reshape keeps a journal of the rows it is overwriting beside
    // the first member (src/reshape.rs); with it, the superblocks' checkpoint is exact (the
    // engine records it after every batch) and the journal holds the batch in flight.
    let mut pinned = false;
    let mut journal_backup = None;
    if let Some(r) = reference.reshape.as_ref().filter(|r| r.new_offset == 0) {
        let given: Vec<std::path::PathBuf> =
            paths.iter().map(|p| p.as_ref().to_path_buf()).collect();
        let journal = crate::reshape::journal_path(&given, &reference.array_uuid);
        if crate::reshape::Journal::is_ours(&journal, &reference.array_uuid) {
            notes.push(format!(
                "{}: fastraid's journal of this in-place reshape: its checkpoint (array \
                 sector {}) is exact and the journal holds the rows being moved",
                journal.display(),
                r.position
            ));
            pinned = true;
            // A journal whose header is being rewritten (cleared first, restored last)
            // holds no batch in flight: the rows past the checkpoint are untouched.
            match load_backup(&journal, &reference, &mut notes) {
                Ok(b) => journal_backup = b,
                Err(e) => notes.push(format!("{e}: the journal holds no rows in flight")),
            }
            // It supersedes a backup file given too: that is mdadm's, from the kernel's part
            // of this reshape, and fastraid recorded a checkpoint past everything the kernel
            // did before its journal existed (src/reshape.rs, `plan_continue`). Using the
            // backup instead of the journal would read the batch in flight wrongly.
            if let Some(p) = backup_file.filter(|p| *p != journal.as_path()) {
                notes.push(format!(
                    "{}: not used: fastraid's journal of this reshape supersedes it",
                    p.display()
                ));
            }
        }
    }
    let backup = match (backup_file, journal_backup) {
        (Some(p), None) if !pinned => load_backup(p, &reference, &mut notes)?,
        (_, b) => b,
    };
    Ok(Assembly {
        geometry,
        parts,
        reference,
        reference_report,
        slots,
        reports,
        notes,
        dirty_from,
        force: opts.force,
        backup,
        pinned,
    })
}

/// mdadm's backup checksum as md-format.md §6.4 describes it: for each of `len` bytes the
/// accumulator is shifted left by 3 and the buffer's *first* byte (a C `char`) is added.
fn backup_csum(buf: &[u8], len: usize) -> u32 {
    let first = buf.first().map_or(0, |&b| b as i8 as i64 as u64);
    let mut c = 0u64;
    for _ in 0..len {
        c = (c << 3).wrapping_add(first);
    }
    c as u32
}

/// Read and validate a reshape backup file (header at byte 0, `md_backup_data-1/-2`).
fn load_backup(
    path: &Path,
    reference: &MemberInfo,
    notes: &mut Vec<String>,
) -> Result<Option<Backup>> {
    let name = path.display().to_string();
    let file = Member::open(path)?;
    let mut h = [0u8; 512];
    file.read_exact_at(&mut h, 0)?;
    let bad = |why: &str| Error::Assembly(format!("{name}: not a usable mdadm backup file: {why}"));
    let v2 = match &h[..16] {
        b"md_backup_data-1" => false,
        b"md_backup_data-2" => true,
        // mdadm clears the backup once the critical section is past.
        _ if h.iter().all(|&b| b == 0) => {
            notes.push(format!(
                "{name}: the backup file is empty (all zeros: mdadm clears it once the critical \
                 section is past): ignored"
            ));
            return Ok(None);
        }
        _ => return Err(bad("no md_backup_data-1/-2 magic")),
    };
    let u64_at = |o: usize| {
        let mut a = [0u8; 8];
        a.copy_from_slice(&h[o..o + 8]);
        u64::from_le_bytes(a)
    };
    let u32_at = |o: usize| {
        let mut a = [0u8; 4];
        a.copy_from_slice(&h[o..o + 4]);
        u32::from_le_bytes(a)
    };
    if h[16..32] != reference.array_uuid {
        return Err(bad(&format!(
            "it belongs to array {}, not {}",
            md::format_uuid(&{
                let mut u = [0u8; 16];
                u.copy_from_slice(&h[16..32]);
                u
            }),
            md::format_uuid(&reference.array_uuid)
        )));
    }
    if u32_at(64) != backup_csum(&h, 64) || (v2 && u32_at(96) != backup_csum(&h, 96)) {
        return Err(bad("header checksum mismatch"));
    }
    let Some(r) = &reference.reshape else {
        notes.push(format!(
            "{name}: no reshape in progress, the backup file is not needed"
        ));
        return Ok(None);
    };
    let (devstart, arraystart, length) = (u64_at(40), u64_at(48), u64_at(56));
    let mut raw = vec![(arraystart, length, devstart)];
    if v2 && u64_at(88) > 0 {
        raw.push((u64_at(80), u64_at(88), devstart.saturating_add(u64_at(72))));
    }
    let mut sections = Vec::new();
    for (a, l, d) in raw {
        let (Some(start), Some(len), Some(off)) = (
            a.checked_mul(SECTOR_SIZE),
            l.checked_mul(SECTOR_SIZE),
            d.checked_mul(SECTOR_SIZE),
        ) else {
            return Err(bad("section offsets overflow"));
        };
        if off.checked_add(len).is_none_or(|e| e > file.len()) {
            return Err(bad("the file is shorter than its sections"));
        }
        if len > 0 {
            sections.push((start, len, off));
        }
    }
    // mdadm restores a backup only if it covers data at or past the checkpoint
    // (forwards) / before it (backwards); otherwise the reshape has moved on.
    let covers = if r.backwards {
        arraystart < r.position
    } else {
        arraystart.saturating_add(length) >= r.position
    };
    if !covers || sections.is_empty() {
        notes.push(format!(
            "{name}: the backup (array sectors {arraystart}+{length}) is behind the reshape \
             checkpoint {}: ignored",
            r.position
        ));
        return Ok(None);
    }
    for (s, l, _) in &sections {
        notes.push(format!(
            "{name}: backup section covers array bytes {s}..{} (used where the members cannot decide)",
            s + l
        ));
    }
    Ok(Some(Backup {
        path: name,
        file,
        sections,
    }))
}

/// The superblock values of the old and the new geometry (the same outside a reshape).
fn geometry_infos(reference: &MemberInfo, old_disks: u32) -> (MemberInfo, MemberInfo) {
    let mut old = reference.clone();
    old.raid_disks = old_disks;
    let mut new = reference.clone();
    if let Some(r) = &reference.reshape {
        new.layout = r.new_layout;
        new.chunk_bytes = r.new_chunk_bytes;
    }
    (old, new)
}

/// Split the array between the two geometries of a reshape at its checkpoint
/// (md-format.md §6.2): forwards, sectors below the checkpoint are in the new geometry;
/// backwards, those at or above it. New-geometry data sits `new_offset` sectors from
/// `data_offset`.
fn reshape_parts(
    old: &Geometry,
    new: Geometry,
    r: &md::Reshape,
    notes: &mut Vec<String>,
) -> Result<Vec<Part>> {
    let m = u64::from(old.level().parity_disks());
    let size = if m > 0 {
        // raid5_size: per-member sectors rounded to both chunks, times the smaller
        // number of data disks.
        let c = u64::from(old.chunk_sectors().max(new.chunk_sectors())).max(1);
        let d = u64::from(old.raid_disks().min(new.raid_disks())).saturating_sub(m);
        (old.dev_sectors() / c * c)
            .checked_mul(d)
            .and_then(|v| v.checked_mul(SECTOR_SIZE))
            .ok_or_else(|| Error::Assembly("array size overflows".into()))?
    } else {
        old.array_bytes().min(new.array_bytes())
    };
    let size = size.min(old.array_bytes()).min(new.array_bytes());
    let pos = r.position.saturating_mul(SECTOR_SIZE).min(size);
    let shift = r
        .new_offset
        .checked_mul(SECTOR_SIZE as i64)
        .ok_or_else(|| Error::Assembly("new_offset overflows".into()))?;
    notes.push(format!(
        "reshape in progress: {} -> {} members, {}; checkpoint at array sector {} ({:.1}% \
         done); bytes {} the checkpoint are read in the new geometry (data offset {:+} \
         sectors), the rest in the old one",
        old.raid_disks(),
        new.raid_disks(),
        if r.backwards { "backwards" } else { "forwards" },
        r.position,
        if size == 0 {
            0.0
        } else {
            pos as f64 * 100.0 / size as f64
        },
        if r.backwards { "at or above" } else { "below" },
        r.new_offset
    ));
    // The kernel's "too early for auto-recovery" test (§6.3): a checkpoint inside the
    // critical section, where new stripes overwrite old data that is still needed.
    let c_new = u64::from(new.chunk_sectors());
    let c_old = u64::from(old.chunk_sectors());
    let d_new = u64::from(new.data_disks().unwrap_or(1)).max(1);
    let d_old = u64::from(old.data_disks().unwrap_or(1)).max(1);
    if m > 0 && c_new > 0 && c_old > 0 {
        let new_dev = i128::from(r.position / (c_new * d_new) * c_new);
        let old_dev = i128::from(r.position / (c_old * d_old) * c_old);
        let diff = i128::from(r.new_offset);
        let critical = if r.backwards {
            new_dev + diff <= old_dev
        } else {
            new_dev >= old_dev - diff
        };
        if critical {
            notes.push(
                "the checkpoint lies in the reshape's critical section (the kernel would refuse \
                 to resume without mdadm's backup): the stripes around it are judged by parity"
                    .into(),
            );
        }
    }
    let old_part = |start, end| Part {
        start,
        end,
        geometry: old.clone(),
        shift: 0,
        name: "old",
    };
    let new_part = |start, end, g: Geometry| Part {
        start,
        end,
        geometry: g,
        shift,
        name: "new",
    };
    let parts = if r.backwards {
        vec![old_part(0, pos), new_part(pos, size, new)]
    } else {
        vec![new_part(0, pos, new), old_part(pos, size)]
    };
    // Both parts stay, even an empty one: the boundary may still move (see
    // `ArrayReader::decide_reshape_boundary`).
    Ok(parts)
}

/// The geometry described by the reference superblock.
fn build_geometry(
    reference: &MemberInfo,
    level: Level,
    member_sectors: &[u64],
) -> Result<Geometry> {
    let chunk_sectors = u32::try_from(reference.chunk_bytes / SECTOR_SIZE).map_err(|_| {
        Error::Assembly(format!(
            "chunk of {} bytes is too large",
            reference.chunk_bytes
        ))
    })?;
    // Without the RAID0_LAYOUT feature (and in 0.90) the kernel ignores the RAID0 layout
    // word; the geometry then refuses multi-zone arrays whose layout is ambiguous.
    let layout = match level {
        Level::Raid0
            if !reference
                .feature_map
                .is_some_and(|f| f.contains(FeatureMap::RAID0_LAYOUT)) =>
        {
            0
        }
        _ => reference.layout,
    };
    Geometry::from_md(
        reference.level,
        layout,
        reference.raid_disks,
        chunk_sectors,
        reference.dev_sectors,
        member_sectors,
    )
    .map_err(|e| Error::Assembly(format!("the superblock's geometry is not usable: {e}")))
}

/// The role the freshest superblock gives this member (its own when the families differ
/// or the reference has no entry for it).
fn role_in_reference(reference: &Superblock, info: &MemberInfo) -> Role {
    match reference {
        Superblock::V1(r) if info.feature_map.is_some() => r.role_of(info.dev_number),
        Superblock::V090(r) if info.feature_map.is_none() => r
            .disks
            .get(info.dev_number as usize)
            .map_or(info.role, |d| r.role_of(d)),
        _ => info.role,
    }
}

/// Whether the present slots let the level serve every block.
pub(crate) fn enough(level: Level, present: &[bool], geo: Option<&Geometry>) -> bool {
    let missing = present.iter().filter(|p| !**p).count();
    match level {
        Level::Linear | Level::Raid0 => missing == 0,
        Level::Raid1 => missing < present.len(),
        Level::Raid4 | Level::Raid5 | Level::Raid6 => missing <= level.parity_disks() as usize,
        Level::Raid10 => {
            let Some(g) = geo else { return missing == 0 };
            // Which members hold a block's copies repeats every `raid_disks` chunks (near
            // copies advance one member per chunk; far copies shift by a fixed amount).
            let c = u64::from(g.chunk_sectors());
            let chunks = g.array_sectors() / c.max(1);
            let n = u64::from(g.raid_disks());
            (0..chunks.min(2 * n)).all(|k| {
                g.copies_of(k * c).is_ok_and(|copies| {
                    copies
                        .iter()
                        .any(|l| present.get(l.member as usize).copied().unwrap_or(false))
                })
            })
        }
    }
}

fn tolerance(level: Level) -> &'static str {
    match level {
        Level::Linear | Level::Raid0 => "needs every member",
        Level::Raid1 => "needs at least one member",
        Level::Raid4 | Level::Raid5 => "can run with at most one missing",
        Level::Raid6 => "can run with at most two missing",
        Level::Raid10 => "needs at least one copy of every block",
    }
}

fn no_superblock_reason(found: &[Found]) -> String {
    if found.is_empty() {
        return "no md superblock (no md magic at the 0.90, 1.0, 1.1 or 1.2 locations)".into();
    }
    let parts: Vec<String> = found
        .iter()
        .map(|f| {
            let why: Vec<String> = f.problems.iter().map(ToString::to_string).collect();
            format!(
                "{} superblock at sector {} refused: {}",
                f.location,
                f.sector,
                if why.is_empty() {
                    "checksum mismatch".to_string()
                } else {
                    why.join("; ")
                }
            )
        })
        .collect();
    parts.join("; ")
}

/// The bad-block log of a member, as byte ranges relative to its data area.
fn bad_blocks(c: &Candidate, notes: &mut Vec<String>, path: &str) -> Vec<(u64, u64)> {
    let Some(log) = c.info.bad_block_log.filter(|l| l.has_entries) else {
        return Vec::new();
    };
    let Some(sector) = log.sector(c.info.super_offset) else {
        notes.push(format!(
            "{path}: bad-block log location is invalid; ignored"
        ));
        return Vec::new();
    };
    let mut buf = vec![0u8; usize::from(log.size_sectors) * SECTOR_SIZE as usize];
    let read = sector
        .checked_mul(SECTOR_SIZE)
        .ok_or_else(|| Error::Io("bad-block log offset overflows".into()))
        .and_then(|off| c.device.read_exact_at(&mut buf, off));
    let entries = match read
        .map_err(|e| e.to_string())
        .and_then(|()| log.parse_entries(&buf).map_err(|e| e.to_string()))
    {
        Ok(e) => e,
        Err(e) => {
            notes.push(format!("{path}: bad-block log unreadable ({e}); ignored"));
            return Vec::new();
        }
    };
    let data = c.info.data_offset;
    let mut out: Vec<(u64, u64)> = entries
        .iter()
        .filter(|b| b.sectors > 0)
        .filter_map(|b| {
            let end = b.sector.checked_add(b.sectors)?;
            let s = b.sector.saturating_sub(data);
            let e = end.saturating_sub(data);
            (e > s).then(|| (s.saturating_mul(SECTOR_SIZE), e.saturating_mul(SECTOR_SIZE)))
        })
        .collect();
    out.sort_unstable();
    let mut merged: Vec<(u64, u64)> = Vec::with_capacity(out.len());
    for (s, e) in out {
        match merged.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => merged.push((s, e)),
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(valid_bytes: u64, bad: Vec<(u64, u64)>) -> SlotMember {
        let p = std::env::temp_dir().join(format!("fastraid-asm-{}", std::process::id()));
        std::fs::write(&p, [0u8; 16]).unwrap();
        SlotMember {
            device: Member::open(&p).unwrap(),
            report: 0,
            data_offset: 0,
            valid_bytes,
            bad,
            forced: false,
        }
    }

    #[test]
    fn usable_runs_split_at_every_boundary() {
        let m = slot(1000, vec![(100, 200), (300, 310)]);
        assert_eq!(m.usable(0, 50), (true, 50));
        assert_eq!(m.usable(0, 500), (true, 100));
        assert_eq!(m.usable(150, 500), (false, 50));
        assert_eq!(m.usable(200, 500), (true, 100));
        assert_eq!(m.usable(900, 500), (true, 100));
        assert_eq!(m.usable(1000, 500), (false, 500));
        assert_eq!(slot(u64::MAX, vec![]).usable(u64::MAX - 5, 3), (true, 3));
    }

    #[test]
    fn redundancy_per_level() {
        assert!(enough(Level::Raid5, &[true, false, true], None));
        assert!(!enough(Level::Raid5, &[true, false, false], None));
        assert!(enough(Level::Raid6, &[true, false, false, true], None));
        assert!(enough(Level::Raid1, &[false, false, true], None));
        assert!(!enough(Level::Raid0, &[true, false], None));
        let g = Geometry::from_md(10, 0x102, 4, 8, 80, &[]).unwrap();
        assert!(enough(Level::Raid10, &[true, false, false, true], Some(&g)));
        assert!(!enough(
            Level::Raid10,
            &[false, false, true, true],
            Some(&g)
        ));
    }

    #[test]
    fn nothing_usable_is_an_error() {
        let p = std::env::temp_dir().join(format!("fastraid-asm-zero-{}", std::process::id()));
        std::fs::write(&p, vec![0u8; 1 << 20]).unwrap();
        let e = assemble(&[&p], AssembleOptions::default()).unwrap_err();
        assert!(matches!(e, Error::NotAnArray(_)), "{e}");
        let e = assemble(&[&p, &p], AssembleOptions::default()).unwrap_err();
        assert!(e.to_string().contains("same device"), "{e}");
        let none: [&Path; 0] = [];
        assert!(assemble(&none, AssembleOptions::default()).is_err());
    }
}
