//! Growing a RAID-0, the way mdadm does it (md cannot reshape a RAID-0 itself): a takeover
//! to a RAID-4 whose parity member is missing, the new members added, a RAID-4 reshape that
//! leaves the parity slot missing, and a takeover back to RAID-0. This is what the kernel
//! cases `tests/fixtures/kernel/raid0-grow-*` show md and mdadm 4.2 doing:
//!
//! | step | superblocks afterwards |
//! |---|---|
//! | takeover RAID-0 (n) → RAID-4 (n+1) | level 4, layout 5 (parity-last), `raid_disks` n+1, no member in slot n (the parity) |
//! | `--add` each new member | a spare (role 0xffff) |
//! | reshape n+1 → N+1 | `delta_disks` N−n, `new_offset` (or in place with md's backup when there is no room); the first new member takes slot n, the *old* parity slot, as md's `raid5_add_disk` fills the first empty slot, and is marked recovering (RECOVERY_OFFSET, `recovery_offset` = the reshape position in its member sectors of the new geometry); the others take slots n+1…N−1 in sync; slot N, the new parity, stays missing and nothing is written for it |
//! | reshape done | RAID-4 of N+1, slot N missing, every member in sync |
//! | takeover RAID-4 → RAID-0 (N) | level 0, `raid_disks` N, `data_size` = the component size |
//!
//! Every intermediate state is one the kernel runs: a degraded RAID-4 (it would compute the
//! parity onto a spare), a RAID-4 reshape in progress (it finishes it, as for its own
//! power-cut cases), a RAID-4 without parity. No byte depends on the missing parity, so
//! nothing is lost wherever a run stops. [`super::level`] drives the steps from what is on
//! disk, so running the same request again (or `grow --continue`) finishes it; `--continue`
//! also finishes a RAID-0 grow that the kernel left interrupted: a RAID-4 reshape whose
//! only missing member is the parity is md's RAID-0 grow, which mdadm would have taken back
//! to RAID-0.
//!
//! Refused before anything is written (as md and mdadm refuse them): a RAID-0 of several
//! zones (members of different sizes; md's takeover needs one zone), fewer members
//! (md cannot shrink a RAID-0), metadata 0.90, new members too small or holding something.

use std::path::{Path, PathBuf};

use super::level::{self, unsupported, Goal, LevelPlan, Members, Step};
use super::{Kind, Plan, ReshapeOptions};
use crate::assemble::{self, AssembleOptions, Assembly, MemberState};
use crate::create::{scan_signatures, Signature};
use crate::error::{invalid, Error, Result};
use crate::io::Member;
use crate::layout::{Geometry, Layout, Level, SECTOR_SIZE};
use crate::md::{self, FeatureMap, SuperblockV1};

/// md's RAID-0 grow shape in a superblock: a RAID-4 (or RAID-5 parity-last) whose parity
/// slot, the last, has no member.
fn parity_slot_empty(sb: &SuperblockV1) -> bool {
    let parity_last = sb.level == 4 || (sb.level == 5 && sb.layout == 5 && sb.new_layout == 5);
    parity_last
        && sb.raid_disks >= 2
        && !sb
            .dev_roles
            .iter()
            .any(|&r| u32::from(r) == sb.raid_disks - 1)
}

/// Whether the assembled array is a RAID-4 / RAID-5 parity-last whose only missing member
/// is its parity; during a reshape the member in the old parity slot may be the one the
/// reshape fills (recovering). Every data byte is then read from the data members.
pub(super) fn only_parity_missing(asm: &Assembly) -> bool {
    let parity_last = |g: &Geometry| match g.level() {
        Level::Raid4 => true,
        Level::Raid5 => g.layout().md_number() == 5,
        _ => false,
    };
    let n = asm.geometry.raid_disks() as usize;
    let old_parity = asm
        .parts
        .iter()
        .map(|p| p.geometry.raid_disks() as usize)
        .min()
        .unwrap_or(n)
        .saturating_sub(1);
    let reshaping = asm.reference.reshape.is_some();
    n >= 2
        && asm.parts.iter().all(|p| parity_last(&p.geometry))
        && asm.slots.get(n - 1).is_some_and(Option::is_none)
        && asm.slots.iter().enumerate().all(|(i, s)| match s {
            None => i == n - 1,
            Some(m) => {
                m.bad.is_empty()
                    && (m.valid_bytes == u64::MAX || (reshaping && i == old_parity && i < n - 1))
            }
        })
}

/// The engine for the RAID-4 reshape of a RAID-0 grow (its parity missing), or the
/// completion of its finish when a crash cut the superblock writes.
pub(super) fn engine_plan(paths: &[PathBuf], opts: &ReshapeOptions) -> Result<Plan> {
    if let Some(p) = super::finish_superblocks_plan(paths, opts)? {
        return Ok(p);
    }
    super::engine_plan(paths, opts, true)
}

/// A RAID-0 grow when `opts` asks for one (`raid_disks` above a RAID-0's count, level
/// none or 0), or when the array is in the middle of one (the same request again, or
/// `continue_only`); `None` leaves the request to the other plans.
pub(super) fn plan(paths: &[PathBuf], opts: &ReshapeOptions) -> Result<Option<Plan>> {
    if opts.level.is_some_and(|l| l != 0) || opts.chunk_bytes.is_some() || opts.layout.is_some() {
        return Ok(None);
    }
    let Ok(m) = level::members(paths) else {
        return Ok(None); // no v1 member: the engine's refusals say why
    };
    let fresh = &m.sbs[0].1;
    let n = fresh.raid_disks;
    // A takeover cut between two superblock writes (members one event behind, another level).
    let mixed = m
        .sbs
        .iter()
        .any(|(_, s)| s.events + 1 == fresh.events && s.level != fresh.level);
    let want = match fresh.level {
        0 if opts.continue_only => {
            if !mixed {
                return Err(invalid!(
                    "no reshape is in progress on this array: nothing to continue"
                ));
            }
            n
        }
        0 => {
            let Some(want) = opts.raid_disks else {
                return Ok(None); // level=0 alone: level.rs says it already is one
            };
            if want < n {
                return unsupported(format!(
                    "a RAID-0 cannot shrink ({n} -> {want} members): md and mdadm cannot \
                     either"
                ));
            }
            if want == n && !mixed {
                return Err(invalid!("the array already is a RAID-0 of {n} members"));
            }
            want
        }
        4 | 5 if parity_slot_empty(fresh) => {
            let data = n - 1;
            let reshaping = fresh.feature_map.contains(FeatureMap::RESHAPE_ACTIVE);
            if opts.continue_only {
                if reshaping {
                    data
                } else if fresh.level == 4 && fresh.layout == 5 {
                    // Taken over (and maybe spares added) but not reshaped yet: the new
                    // members are the spares and the paths without a superblock.
                    let spares = m.sbs.iter().filter(|(_, s)| s.role().slot().is_none());
                    data + (spares.count() + m.others.len()) as u32
                } else {
                    return Ok(None);
                }
            } else {
                let Some(want) = opts.raid_disks else {
                    return Ok(None); // level=0 alone: level.rs's takeover
                };
                if reshaping && want != data {
                    return Err(invalid!(
                        "a reshape to a RAID-0 of {data} members is in progress; finish it \
                         first (grow --continue)"
                    ));
                }
                want
            }
        }
        _ => return Ok(None),
    };
    let goal = Goal::grow(want);
    let step = level::next_step(paths, &goal, opts)?;
    if matches!(step, Step::Done) {
        return Err(invalid!("the array already is a RAID-0 of {want} members"));
    }
    let member_paths: Vec<PathBuf> = m.sbs.iter().map(|(p, _)| p.clone()).collect();
    let asm = assemble::assemble(&member_paths, AssembleOptions::default())?;
    let old_geo = asm.geometry.clone();
    let chunk_bytes = u64::from(old_geo.chunk_sectors()) * SECTOR_SIZE;
    let raid0 = Layout::from_md(Level::Raid0, 0).map_err(|e| invalid!("layout: {e}"))?;
    let data = match old_geo.level() {
        Level::Raid0 => old_geo.raid_disks(),
        _ => old_geo.data_disks().unwrap_or(1),
    };
    let per_member = asm.size() / SECTOR_SIZE / u64::from(data.max(1));
    let new_geo = Geometry::new(
        Level::Raid0,
        raid0,
        want,
        old_geo.chunk_sectors(),
        per_member,
        &vec![per_member; want as usize],
    )
    .map_err(|e| invalid!("{e}"))?;
    let mut steps = vec![step.what().to_owned()];
    let cur = old_geo.level();
    if cur == Level::Raid0 && matches!(step, Step::Superblocks { .. }) {
        steps.push(format!(
            "add the {} new member(s) as spares (a superblock each, events+1)",
            want - data
        ));
    }
    if !matches!(step, Step::Reshape { .. }) && data < want {
        steps.push(format!(
            "reshape to {} members: the new members take slots {data}..{}, the parity slot \
             {want} stays missing (forward new_offset engine, or in place with a journal)",
            want + 1,
            want - 1
        ));
    }
    if cur != Level::Raid0 || data < want {
        steps.push(format!(
            "takeover: RAID-4 of {} without its parity member -> RAID-0 of {want} members",
            want + 1
        ));
    }
    let kind = if matches!(step, Step::Reshape { .. }) && asm.reference.reshape.is_some() {
        Kind::Continue
    } else {
        Kind::Start
    };
    let size = new_geo.array_bytes();
    // The checkpoint of a reshape in progress (for the plan's description).
    let ckpt = asm
        .reference
        .reshape
        .map_or(0, |rs| rs.position.saturating_mul(SECTOR_SIZE));
    Ok(Some(Plan {
        kind,
        uuid: asm.reference.array_uuid,
        level: Level::Raid0,
        old_disks: old_geo.raid_disks(),
        new_disks: want,
        old_layout: old_geo.layout(),
        new_layout: raid0,
        old_chunk_bytes: chunk_bytes,
        new_chunk_bytes: chunk_bytes,
        new_offset: 0,
        start: ckpt,
        checkpoint: ckpt,
        old_size: asm.size(),
        new_size: size,
        events: asm.reference.events,
        members: m.sbs.iter().map(|(p, _)| p.display().to_string()).collect(),
        notes: asm.notes.clone(),
        backwards: false,
        journal: None,
        pinned: false,
        old_geo,
        new_geo,
        targets: Vec::new(),
        paths: paths.to_vec(),
        opts: opts.clone(),
        level_change: Some(Box::new(LevelPlan::new(goal, paths.to_vec(), steps))),
    }))
}

/// The sectors per member of a RAID-0 of one zone (md's takeover needs one).
pub(super) fn one_zone(m: &Members, fresh: &SuperblockV1) -> Result<u64> {
    let several = || {
        unsupported(
            "a RAID-0 of several zones (members of different sizes) cannot be taken over (md \
             allows one zone only)",
        )
    };
    if fresh.feature_map.contains(FeatureMap::RAID0_LAYOUT) {
        return several();
    }
    let chunk = u64::from(fresh.chunksize.max(1));
    let rounded: Vec<u64> = m
        .sbs
        .iter()
        .map(|(_, s)| s.data_size / chunk * chunk)
        .collect();
    let size = rounded.iter().copied().min().unwrap_or(0);
    if rounded.iter().any(|&s| s != size) || size == 0 {
        return several();
    }
    Ok(size)
}

/// Refuse a new member that cannot hold `size` sectors of data where this array's
/// superblock puts them, or that holds anything (another array, a file system, a partition
/// table). A path that does not exist is created by the add (as large as the largest member).
fn check_new_member(path: &Path, fresh: &SuperblockV1, size: u64) -> Result<()> {
    if !path.exists() {
        return Ok(());
    }
    let dev = Member::open(path)?;
    let sectors = dev.len() / SECTOR_SIZE;
    let location = md::Location::from_v1_super_offset(fresh.super_offset);
    let data_size = match (location, location.sector(sectors)) {
        (_, None) => 0,
        (md::Location::V1_0, Some(so)) => so.saturating_sub(md::v1::bitmap_space(sectors) + 8),
        (_, Some(_)) => sectors.saturating_sub(fresh.data_offset),
    };
    if data_size < size {
        return Err(invalid!(
            "{}: too small for a new member: {} bytes of data space, the array needs {} per \
             member",
            path.display(),
            data_size * SECTOR_SIZE,
            size * SECTOR_SIZE
        ));
    }
    let found = scan_signatures(dev.len(), |off, buf| dev.read_io(buf, off))
        .map_err(|e| Error::Io(format!("{}: {e}", path.display())))?;
    let foreign: Vec<String> = found
        .iter()
        .filter(|s| !matches!(s, Signature::Md { uuid, .. } if *uuid == fresh.set_uuid))
        .map(ToString::to_string)
        .collect();
    if !foreign.is_empty() {
        return Err(Error::MemberInUse(format!(
            "{} holds {}; it is not part of this array: clear it first",
            path.display(),
            foreign.join("; ")
        )));
    }
    Ok(())
}

/// The next step of a RAID-0 grow to `want` members (module docs), from the members as
/// they are now (`m`, `asm`: read by [`level::next_step`], which completed a cut takeover
/// first).
pub(super) fn grow_step(
    paths: &[PathBuf],
    m: &Members,
    asm: &Assembly,
    want: u32,
    opts: &ReshapeOptions,
) -> Result<Step> {
    let r = &asm.reference;
    let fresh = &m.sbs[0].1;
    let cur = asm.geometry.level();
    let n = asm.geometry.raid_disks();
    let engine_opts = |raid_disks: Option<u32>| ReshapeOptions {
        raid_disks,
        level: None,
        chunk_bytes: None,
        layout: None,
        continue_only: false,
        ..opts.clone()
    };
    // A reshape in progress, or one whose finish a crash cut between superblock writes.
    if r.reshape.is_some() || super::finish_superblocks_plan(paths, opts)?.is_some() {
        if cur != Level::Raid0 && !only_parity_missing(asm) {
            return unsupported(
                "a reshape is in progress on a degraded array: fastraid finishes only md's \
                 RAID-0 grow (a RAID-4 whose only missing member is its parity)",
            );
        }
        return Ok(Step::Reshape {
            what: "finish the reshape in progress (forward new_offset engine, the parity \
                   slot left missing)"
                .into(),
            opts: engine_opts(None),
            parity_missing: true,
        });
    }
    // Members one event behind (an add cut between its superblock writes, each durable on
    // its own): brought up to date first, as md's next superblock update would, so that a
    // second cut cannot leave them two events behind (stale).
    let behind = m.sbs.iter().filter(|(_, s)| {
        s.events + 1 == fresh.events
            && (s.level, s.raid_disks, s.layout) == (fresh.level, fresh.raid_disks, fresh.layout)
    });
    let mut targets = Vec::new();
    for (p, s) in behind {
        targets.push(level::target(p, level::adopt(s, fresh))?);
    }
    if !targets.is_empty() {
        return Ok(Step::Superblocks {
            what: format!(
                "bring {} superblock(s) one event behind up to date (an update cut between \
                 its writes)",
                targets.len()
            ),
            targets,
            events: fresh.events,
        });
    }
    if !r.is_clean() {
        return unsupported(
            "the array was not stopped cleanly: open it read-write once (resync) before \
             growing it",
        );
    }
    match cur {
        Level::Raid0 => {
            if n >= want {
                return Ok(Step::Done);
            }
            let size = one_zone(m, fresh)?;
            if m.sbs.iter().any(|(_, s)| s.role().slot().is_none()) {
                return unsupported("a RAID-0 with spares is not understood");
            }
            let need = (want - n) as usize;
            if m.others.len() < need {
                return Err(invalid!(
                    "growing a RAID-0 of {n} to {want} members needs {need} new member(s): give \
                     their paths among the members (Array.add / grow --add); found {}",
                    m.others.len()
                ));
            }
            for p in &m.others[..need] {
                check_new_member(p, fresh, size)?;
            }
            let mut tpl = fresh.clone();
            tpl.level = 4;
            tpl.layout = 5; // md's raid45_takeover_raid0: ALGORITHM_PARITY_N
            tpl.raid_disks = n + 1;
            tpl.size = size;
            tpl.resync_offset = u64::MAX;
            tpl.feature_map.set(FeatureMap::RAID0_LAYOUT, false);
            level::takeover(
                m,
                &tpl,
                None,
                format!(
                    "takeover: RAID-0 of {n} -> RAID-4 of {} members, parity-last, its parity \
                     (slot {n}) missing (md's way to grow a RAID-0)",
                    n + 1
                ),
            )
        }
        Level::Raid4 | Level::Raid5 if only_parity_missing(asm) => {
            let data = n - 1;
            if data == want {
                // The takeover back (level.rs's RAID-4 without parity -> RAID-0).
                return level::next_step(paths, &Goal::raid0(), opts);
            }
            if data > want {
                return unsupported(format!(
                    "a RAID-0 cannot shrink ({data} -> {want} members): md and mdadm cannot \
                     either"
                ));
            }
            let spares = asm
                .reports
                .iter()
                .filter(|x| matches!(x.state, MemberState::Spare))
                .count();
            let need = (want - data) as usize;
            if spares < need {
                let Some(new) = m.others.first() else {
                    return Err(invalid!(
                        "growing to a RAID-0 of {want} members needs {} more new member(s): \
                         give their paths among the members",
                        need - spares
                    ));
                };
                return Ok(Step::AddSpare {
                    what: format!(
                        "add {} as a spare (its superblock, then events+1)",
                        new.display()
                    ),
                    members: m.sbs.iter().map(|(p, _)| p.clone()).collect(),
                    new: new.clone(),
                });
            }
            Ok(Step::Reshape {
                what: format!(
                    "reshape: RAID-4 of {n} -> {} members, the new members in slots \
                     {data}..{}, the parity slot {want} left missing (forward new_offset \
                     engine, or in place with a journal)",
                    want + 1,
                    want - 1
                ),
                opts: engine_opts(Some(want + 1)),
                parity_missing: true,
            })
        }
        _ => unsupported(format!(
            "a {} with missing members is not a RAID-0 being grown: rebuild it first",
            cur.name()
        )),
    }
}
