//! Level changes, the way md and mdadm do them (`shared/docs/md-format.md` §5.3, §6.1): an
//! instant *takeover* (only superblocks change; the data already sits where the new level
//! expects it) and, around it, md's ordinary machinery: a *recovery* that computes a new
//! parity member, and a same-level *reshape* to or from a layout that allows the takeover.
//!
//! | change | steps |
//! |---|---|
//! | RAID-5 (n) → RAID-6 (n+1) | takeover to the "-6" layout (layout L → L+16, parity-last stays 5) with the Q slot missing; recovery computes Q onto the added spare; reshape to the normal RAID-6 layout (L) |
//! | RAID-6 (n) → RAID-5 (n−1) | reshape to the "-6" layout (Q on the last member); takeover: level 5, the Q member becomes a spare |
//! | RAID-4 ↔ RAID-5 parity-last | takeover only (the same map); RAID-5 of another layout first reshapes to parity-last |
//! | RAID-0 (one zone, n) → RAID-4 / RAID-5 parity-last (n+1) | takeover with the parity slot missing; recovery computes the parity onto the new member |
//! | RAID-4 / RAID-5 parity-last without its parity member → RAID-0 (n−1) | takeover only (md refuses it while the parity member is in use) |
//! | RAID-0 (one zone, n) → RAID-0 (N > n) | mdadm's grow, `raid0.rs`: takeover to RAID-4 (n+1) with the parity slot missing, the new members added as spares, a reshape to N+1 that leaves the parity slot missing, takeover back to RAID-0 |
//!
//! Everything else (RAID-1/10/linear, RAID-6 ↔ RAID-0/4, multi-zone RAID-0, DDF layouts,
//! degraded arrays except the missing parity of an interrupted change, metadata 0.90,
//! arrays not stopped cleanly) is refused with [`Error::Unsupported`] before anything is
//! written.
//!
//! # Driven by what is on disk
//!
//! [`execute`] does not follow a script: it repeatedly reads the members, decides the next
//! step from their state ([`next_step`]) and does it, until the goal is reached. A run
//! killed anywhere is therefore finished by running it again (or, for every state it
//! leaves, by the kernel, which sees an ordinary degraded/recovering array or an ordinary
//! reshape in progress).
//!
//! # Crash safety, step by step
//!
//! * *Takeover* ([`Step::Superblocks`]): every superblock gets the new level, layout,
//!   `raid_disks` and role table and `events + 1`, in this order: the members whose role
//!   does not change, then the one whose role changes (the dropped Q member becomes a
//!   spare), then spares; bitmap headers first (md accepts a bitmap ahead of the
//!   superblocks), one 4 KiB positioned write per superblock, `fdatasync` of every member
//!   at the end. The data is not touched, and both levels map every array byte to the same
//!   member sector (RAID-5 L on n members = RAID-6 L+16 on n+1 without its last member;
//!   RAID-0 of one zone = RAID-4/5 parity-last without its parity member), so a power cut
//!   between two superblock writes loses nothing: the freshest superblock says what the
//!   array is (the assembler and the kernel take the geometry from it and accept members
//!   one event behind), and the next run sees members one event behind with the old level
//!   and completes their superblocks first. mdadm's `--assemble` refuses such a mix
//!   ("superblock ... doesn't match others": it compares level, layout and raid_disks)
//!   until then; md's own takeover has the same window between its superblock writes. A
//!   kill can only land in it between two 4 KiB `pwrite`s (microseconds); a power cut
//!   before the closing `fdatasync` can leave any subset.
//! * *Recovery of the new parity member* ([`Step::Rebuild`]): [`crate::rebuild`], i.e.
//!   md's own recovery: the new member's superblock first (role of the parity slot,
//!   RECOVERY_OFFSET, `recovery_offset` 0), then the others with `events + 1`; batches of
//!   Q (or P) computed from the data; `fdatasync` of the new member *before* every
//!   `recovery_offset` checkpoint, which is itself written and `fdatasync`ed. While it runs
//!   the array is a degraded RAID-6 (RAID-5) whose missing slot is only parity, so every
//!   byte reads from the data members; the kernel resumes such a recovery by itself.
//! * *Reshape* ([`Step::Reshape`]): the forward `new_offset` engine of [`super`], with its
//!   checkpoints (`reshape_position` only after the data below it is durable).

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::{
    geometry, raid0, read_sb, Engine, Kind, Plan, Progress, Report, ReshapeOptions, Target,
};
use crate::assemble::{self, AssembleOptions, Assembly, MemberState};
use crate::error::{invalid, Error, Result};
use crate::io::Member;
use crate::layout::{Layout, Level, SECTOR_SIZE};
use crate::md::{FeatureMap, Role, SuperblockV1};
use crate::rebuild::{self, RebuildOptions};

/// What the caller asked for: the final level and, optionally, its layout.
#[derive(Debug, Clone)]
pub(super) struct Goal {
    level: Level,
    layout: Option<u32>,
    /// A RAID-0 grow: the final number of members (src/reshape/raid0.rs).
    members: Option<u32>,
}

impl Goal {
    /// A RAID-0 of `members` members, grown as md does (src/reshape/raid0.rs).
    pub(super) fn grow(members: u32) -> Goal {
        Goal {
            level: Level::Raid0,
            layout: None,
            members: Some(members),
        }
    }

    /// RAID-0 by a takeover (of a RAID-4 / RAID-5 parity-last without its parity).
    pub(super) fn raid0() -> Goal {
        Goal {
            level: Level::Raid0,
            layout: None,
            members: None,
        }
    }
}

/// The next thing to do, decided from the members as they are now.
#[derive(Debug)]
pub(super) enum Step {
    /// Rewrite superblocks (a takeover, or completing one that a crash interrupted).
    Superblocks {
        what: String,
        targets: Vec<Target>,
        events: u64,
    },
    /// Compute the missing parity member with md's recovery (checkpointed).
    Rebuild {
        what: String,
        members: Vec<PathBuf>,
        new: Option<PathBuf>,
    },
    /// A same-level reshape by the forward engine (or finishing one in progress).
    Reshape {
        what: String,
        opts: ReshapeOptions,
        /// The RAID-4 of a RAID-0 grow, without its parity member (src/reshape/raid0.rs).
        parity_missing: bool,
    },
    /// Add a new member as a spare (`mdadm --add`; a RAID-0 grow, src/reshape/raid0.rs).
    AddSpare {
        what: String,
        members: Vec<PathBuf>,
        new: PathBuf,
    },
    Done,
}

impl Step {
    pub(super) fn what(&self) -> &str {
        match self {
            Step::Superblocks { what, .. }
            | Step::Rebuild { what, .. }
            | Step::Reshape { what, .. }
            | Step::AddSpare { what, .. } => what,
            Step::Done => "nothing left to do",
        }
    }
}

/// The level-change part of a [`Plan`].
#[derive(Debug)]
pub(super) struct LevelPlan {
    goal: Goal,
    paths: Vec<PathBuf>,
    /// The steps expected from here, in words (the first is decided; the others follow
    /// from it).
    steps: Vec<String>,
}

impl LevelPlan {
    pub(super) fn new(goal: Goal, paths: Vec<PathBuf>, steps: Vec<String>) -> LevelPlan {
        LevelPlan { goal, paths, steps }
    }
}

/// "-6" layout of a RAID-5 layout (md's `raid6_takeover`): 0–4 → 16–20, parity-last stays 5.
fn to_6(l: u32) -> Option<u32> {
    match l {
        0..=4 => Some(l + 16),
        5 => Some(5),
        _ => None,
    }
}

/// The RAID-5 layout a RAID-6 "-6" layout (or parity-last) is a takeover of.
fn from_6(l: u32) -> Option<u32> {
    match l {
        16..=20 => Some(l - 16),
        5 => Some(5),
        _ => None,
    }
}

pub(super) fn unsupported<T>(msg: impl Into<String>) -> Result<T> {
    Err(Error::Unsupported(msg.into()))
}

/// Members (with a v1 superblock of the array) and the other paths.
pub(super) struct Members {
    /// (path, superblock), freshest first.
    pub(super) sbs: Vec<(PathBuf, SuperblockV1)>,
    pub(super) others: Vec<PathBuf>,
}

pub(super) fn members(paths: &[PathBuf]) -> Result<Members> {
    let mut all = Vec::new();
    let mut others = Vec::new();
    for p in paths {
        if !p.exists() {
            others.push(p.clone());
            continue;
        }
        match read_sb(p)? {
            Some(sb) => all.push((p.clone(), sb)),
            None => others.push(p.clone()),
        }
    }
    let is_spare = |s: &SuperblockV1| s.role() == Role::Spare;
    let fresh = all
        .iter()
        .enumerate()
        .filter(|(_, (_, s))| !is_spare(s))
        .max_by_key(|&(i, (_, s))| (s.events, std::cmp::Reverse(i)))
        .map(|(_, (_, s))| s.set_uuid)
        .ok_or_else(|| invalid!("no member of an md array (v1 superblock) among the paths"))?;
    let (mut sbs, foreign): (Vec<_>, Vec<_>) =
        all.into_iter().partition(|(_, s)| s.set_uuid == fresh);
    others.extend(foreign.into_iter().map(|(p, _)| p));
    sbs.sort_by_key(|(_, s)| std::cmp::Reverse((!is_spare(s), s.events)));
    Ok(Members { sbs, others })
}

/// `sb` with the array-wide fields of `tpl` (a takeover; per-device fields stay).
pub(super) fn adopt(sb: &SuperblockV1, tpl: &SuperblockV1) -> SuperblockV1 {
    let mut s = sb.clone();
    if tpl.level == 0 && s.level != 0 {
        // RAID-0 uses each member's data_size: exactly the old per-member size.
        s.data_size = s.size;
    }
    s.level = tpl.level;
    s.layout = tpl.layout;
    s.size = tpl.size;
    s.chunksize = tpl.chunksize;
    s.raid_disks = tpl.raid_disks;
    s.new_level = tpl.level;
    s.new_layout = tpl.layout;
    s.new_chunk = tpl.chunksize;
    s.delta_disks = 0;
    s.reshape_position = 0;
    s.resync_offset = tpl.resync_offset;
    s.dev_roles = tpl.dev_roles.clone();
    s.max_dev = tpl.max_dev;
    s.bitmap_offset = tpl.bitmap_offset;
    for f in [FeatureMap::BITMAP_OFFSET, FeatureMap::RAID0_LAYOUT] {
        s.feature_map.set(f, tpl.feature_map.contains(f));
    }
    s
}

pub(super) fn target(path: &Path, sb: SuperblockV1) -> Result<Target> {
    let bitmap = if sb.feature_map.contains(FeatureMap::BITMAP_OFFSET) {
        super::bitmap_of(path, &sb)?
    } else {
        None
    };
    Ok(Target {
        path: path.to_path_buf(),
        slot: u32::from(sb.role().slot().unwrap_or(u16::MAX)),
        sb,
        bitmap,
        recovering: false,
    })
}

/// A takeover: `tpl` applied to every member; unchanged roles first, then `last`
/// (the member whose role changes), then spares.
pub(super) fn takeover(
    m: &Members,
    tpl: &SuperblockV1,
    last: Option<u32>,
    what: String,
) -> Result<Step> {
    let mut order: Vec<(u8, &(PathBuf, SuperblockV1))> = m
        .sbs
        .iter()
        .map(|e| {
            let rank = if Some(e.1.dev_number) == last {
                1
            } else if e.1.role() == Role::Spare {
                2
            } else {
                0
            };
            (rank, e)
        })
        .collect();
    order.sort_by_key(|(r, _)| *r);
    let mut targets = Vec::new();
    for (_, (p, sb)) in order {
        targets.push(target(p, adopt(sb, tpl))?);
    }
    Ok(Step::Superblocks {
        what,
        targets,
        events: m.sbs[0].1.events + 1,
    })
}

fn rebuild_step(asm: &Assembly, m: &Members, slot: u32, what: String) -> Result<Step> {
    let partial = asm
        .slots
        .get(slot as usize)
        .and_then(Option::as_ref)
        .is_some();
    let spare = asm
        .reports
        .iter()
        .any(|r| matches!(r.state, MemberState::Spare));
    let members: Vec<PathBuf> = m.sbs.iter().map(|(p, _)| p.clone()).collect();
    let new = if partial || spare {
        None
    } else {
        match m.others.as_slice() {
            [one] => Some(one.clone()),
            [] => {
                return Err(invalid!(
                    "slot {slot} (parity) needs a new member: give its path among the members \
                     (or add a spare)"
                ))
            }
            _ => {
                return Err(invalid!(
                    "more than one path without this array's superblock: give exactly one new \
                     member"
                ))
            }
        }
    };
    Ok(Step::Rebuild { what, members, new })
}

fn reshape_step(opts: &ReshapeOptions, layout: Option<u32>, what: String) -> Step {
    Step::Reshape {
        what,
        opts: ReshapeOptions {
            raid_disks: None,
            level: None,
            chunk_bytes: None,
            layout,
            continue_only: false,
            ..opts.clone()
        },
        parity_missing: false,
    }
}

/// Slots that are missing or only partly rebuilt.
fn incomplete(asm: &Assembly) -> Vec<u32> {
    (0u32..)
        .zip(&asm.slots)
        .filter(|(_, s)| s.as_ref().is_none_or(|m| m.valid_bytes != u64::MAX))
        .map(|(i, _)| i)
        .collect()
}

fn layout_name(level: Level, l: u32) -> String {
    Layout::from_md(level, l).map_or_else(|_| format!("layout {l}"), |x| x.name())
}

/// Decide the next step toward `goal` from the members as they are now (reads only).
pub(super) fn next_step(paths: &[PathBuf], goal: &Goal, opts: &ReshapeOptions) -> Result<Step> {
    let m = members(paths)?;
    let fresh = m.sbs[0].1.clone();
    // A takeover interrupted between two superblock writes: complete the lagging ones.
    let lagging: Vec<&(PathBuf, SuperblockV1)> = m
        .sbs
        .iter()
        .filter(|(_, s)| {
            s.events + 1 == fresh.events
                && (s.level, s.raid_disks, s.layout)
                    != (fresh.level, fresh.raid_disks, fresh.layout)
                && !s.feature_map.contains(FeatureMap::RESHAPE_ACTIVE)
                && !fresh.feature_map.contains(FeatureMap::RESHAPE_ACTIVE)
        })
        .collect();
    if !lagging.is_empty() {
        let mut targets = Vec::new();
        for (p, s) in &lagging {
            targets.push(target(p, adopt(s, &fresh))?);
        }
        return Ok(Step::Superblocks {
            what: format!(
                "complete the interrupted takeover: {} superblock(s) one event behind get level \
                 {} and the new role table",
                targets.len(),
                fresh.level
            ),
            targets,
            events: fresh.events,
        });
    }
    let member_paths: Vec<PathBuf> = m.sbs.iter().map(|(p, _)| p.clone()).collect();
    let asm = assemble::assemble(&member_paths, AssembleOptions::default())?;
    let r = &asm.reference;
    let fm = r.feature_map.unwrap_or_default();
    if r.feature_map.is_none() {
        return unsupported("metadata 0.90 arrays cannot change level with fastraid");
    }
    if fm.intersects(FeatureMap::JOURNAL | FeatureMap::PPL | FeatureMap::CLUSTERED) {
        return unsupported(format!(
            "arrays with {} cannot change level with fastraid",
            fm.names().join(", ")
        ));
    }
    let cur = asm.geometry.level();
    if let Some(want) = goal.members {
        return raid0::grow_step(paths, &m, &asm, want, opts); // src/reshape/raid0.rs
    }
    if r.reshape.is_some() {
        return Ok(reshape_step(
            opts,
            None,
            "finish the reshape in progress (forward new_offset engine)".into(),
        ));
    }
    if !r.is_clean() {
        return unsupported(
            "the array was not stopped cleanly: open it read-write once (resync) before \
             changing its level",
        );
    }
    let n = asm.geometry.raid_disks();
    let l = r.layout;
    let missing = incomplete(&asm);
    let degraded_except = |slot: u32| -> Result<bool> {
        match missing.as_slice() {
            [] => Ok(false),
            [s] if *s == slot => Ok(true),
            _ => unsupported(format!(
                "the array is degraded (slot(s) {missing:?} missing or recovering): rebuild it \
                 before changing its level"
            )),
        }
    };
    let wants_layout = |lv: Level, want: u32, have: u32| -> Result<Option<u32>> {
        Layout::from_md(lv, want).map_err(|e| invalid!("layout: {e}"))?;
        Ok((want != have).then_some(want))
    };
    match (cur, goal.level) {
        (Level::Raid5, Level::Raid6) => {
            degraded_except(u32::MAX)?;
            let Some(l6) = to_6(l) else {
                return unsupported(format!("RAID-5 layout {l} has no RAID-6 takeover"));
            };
            if opts.raid_disks.is_some_and(|d| d != n + 1) {
                return unsupported(format!(
                    "RAID-5 -> RAID-6 makes {} members of {n}; change the member count separately",
                    n + 1
                ));
            }
            let spares = asm
                .reports
                .iter()
                .filter(|r| matches!(r.state, MemberState::Spare))
                .count();
            if spares == 0 {
                return Err(invalid!(
                    "RAID-5 -> RAID-6 needs one more member for Q: add a spare first \
                     (Array.add / grow --add)"
                ));
            }
            if let Some(want) = goal.layout {
                Layout::from_md(Level::Raid6, want).map_err(|e| invalid!("layout: {e}"))?;
            }
            let mut tpl = fresh.clone();
            tpl.level = 6;
            tpl.layout = l6;
            tpl.raid_disks = n + 1;
            takeover(
                &m,
                &tpl,
                None,
                format!(
                    "takeover: RAID-5 of {n} -> RAID-6 of {} members, layout {} (slot {n}, Q, \
                     missing until computed)",
                    n + 1,
                    layout_name(Level::Raid6, l6)
                ),
            )
        }
        (Level::Raid6, Level::Raid6) => {
            if degraded_except(n - 1)? {
                if from_6(l).is_none() {
                    return unsupported(
                        "the array is degraded: rebuild it before changing its level",
                    );
                }
                return rebuild_step(
                    &asm,
                    &m,
                    n - 1,
                    format!(
                        "compute Q onto slot {} (md recovery, checkpointed in recovery_offset)",
                        n - 1
                    ),
                );
            }
            let want = goal.layout.or(from_6(l)).unwrap_or(l);
            match wants_layout(Level::Raid6, want, l)? {
                Some(w) => Ok(reshape_step(
                    opts,
                    Some(w),
                    format!(
                        "reshape to layout {} (same members, forward new_offset engine)",
                        layout_name(Level::Raid6, w)
                    ),
                )),
                None => Ok(Step::Done),
            }
        }
        (Level::Raid6, Level::Raid5) => {
            let q_missing = degraded_except(n - 1)?;
            if n < 4 {
                return unsupported("a RAID-6 of fewer than 4 members cannot become a RAID-5");
            }
            let Some(l5) = from_6(l) else {
                if q_missing {
                    return unsupported(
                        "the array is degraded and its layout keeps Q on every member: rebuild \
                         it first",
                    );
                }
                return match to_6(l) {
                    Some(l6) => Ok(reshape_step(
                        opts,
                        Some(l6),
                        format!(
                            "reshape to layout {} (Q on the last member; forward new_offset engine)",
                            layout_name(Level::Raid6, l6)
                        ),
                    )),
                    None => unsupported(format!(
                        "RAID-6 layout {} cannot be taken over to RAID-5 by fastraid",
                        layout_name(Level::Raid6, l)
                    )),
                };
            };
            if let Some(want) = goal.layout {
                Layout::from_md(Level::Raid5, want).map_err(|e| invalid!("layout: {e}"))?;
            }
            let mut tpl = fresh.clone();
            tpl.level = 5;
            tpl.layout = l5;
            tpl.raid_disks = n - 1;
            let q_dev = (0u32..)
                .zip(&tpl.dev_roles)
                .find(|(_, &role)| role == (n - 1) as u16)
                .map(|(d, _)| d);
            if let Some(d) = q_dev {
                tpl.dev_roles[d as usize] = Role::SPARE_RAW;
            }
            takeover(
                &m,
                &tpl,
                q_dev,
                format!(
                    "takeover: RAID-6 of {n} -> RAID-5 of {} members, layout {}; the Q member \
                     (slot {}) becomes a spare",
                    n - 1,
                    layout_name(Level::Raid5, l5),
                    n - 1
                ),
            )
        }
        (Level::Raid5 | Level::Raid4, Level::Raid5 | Level::Raid4) => {
            let parity_last = cur == Level::Raid4 || l == 5;
            if degraded_except(n - 1)? {
                if !parity_last {
                    return unsupported(
                        "the array is degraded: rebuild it before changing its level",
                    );
                }
                return rebuild_step(
                    &asm,
                    &m,
                    n - 1,
                    format!(
                        "compute the parity onto slot {} (md recovery, checkpointed in \
                         recovery_offset)",
                        n - 1
                    ),
                );
            }
            match (cur, goal.level) {
                (Level::Raid4, Level::Raid5) => {
                    if let Some(want) = goal.layout {
                        Layout::from_md(Level::Raid5, want).map_err(|e| invalid!("layout: {e}"))?;
                    }
                    let mut tpl = fresh.clone();
                    tpl.level = 5;
                    tpl.layout = 5;
                    takeover(
                        &m,
                        &tpl,
                        None,
                        format!("takeover: RAID-4 of {n} -> RAID-5 parity-last (same map)"),
                    )
                }
                (Level::Raid5, Level::Raid4) => {
                    if goal.layout.is_some() {
                        return Err(invalid!("layout: RAID-4 has no layout"));
                    }
                    if l != 5 {
                        return Ok(reshape_step(
                            opts,
                            Some(5),
                            "reshape to layout parity-last (forward new_offset engine)".into(),
                        ));
                    }
                    let mut tpl = fresh.clone();
                    tpl.level = 4;
                    tpl.layout = 0;
                    takeover(
                        &m,
                        &tpl,
                        None,
                        format!("takeover: RAID-5 parity-last of {n} -> RAID-4 (same map)"),
                    )
                }
                (Level::Raid5, Level::Raid5) => {
                    let want = goal.layout.unwrap_or(l);
                    match wants_layout(Level::Raid5, want, l)? {
                        Some(w) => Ok(reshape_step(
                            opts,
                            Some(w),
                            format!(
                                "reshape to layout {} (forward new_offset engine)",
                                layout_name(Level::Raid5, w)
                            ),
                        )),
                        None => Ok(Step::Done),
                    }
                }
                _ => Ok(Step::Done),
            }
        }
        (Level::Raid0, Level::Raid4 | Level::Raid5) => {
            let size = raid0::one_zone(&m, &fresh)?;
            if m.sbs.iter().any(|(_, s)| s.role() == Role::Spare) {
                return unsupported("a RAID-0 with spares is not understood");
            }
            let layout = match (goal.level, goal.layout) {
                (Level::Raid4, None) => 0,
                (Level::Raid4, Some(_)) => return Err(invalid!("layout: RAID-4 has no layout")),
                (_, None | Some(5)) => 5,
                (_, Some(x)) => {
                    return unsupported(format!(
                        "RAID-0 -> RAID-5 gives layout parity-last; reshape to {} afterwards",
                        layout_name(Level::Raid5, x)
                    ))
                }
            };
            match m.others.len() {
                1 => {}
                0 => {
                    return Err(invalid!(
                        "RAID-0 -> {} needs a new member for the parity: give its path among \
                         the members (--add)",
                        goal.level.name()
                    ))
                }
                _ => {
                    return Err(invalid!(
                        "more than one path without this array's superblock: give exactly one \
                         new member"
                    ))
                }
            }
            if let Some(len) = m.others[0]
                .metadata()
                .ok()
                .map(|md| md.len())
                .filter(|&l| l > 0)
            {
                if len / SECTOR_SIZE < fresh.data_offset + size {
                    return Err(invalid!(
                        "{}: too small for a member ({len} bytes; {} needed)",
                        m.others[0].display(),
                        (fresh.data_offset + size) * SECTOR_SIZE
                    ));
                }
            }
            let mut tpl = fresh.clone();
            tpl.level = goal.level.md_number();
            tpl.layout = layout;
            tpl.raid_disks = n + 1;
            tpl.size = size;
            tpl.resync_offset = u64::MAX;
            tpl.feature_map.set(FeatureMap::RAID0_LAYOUT, false);
            takeover(
                &m,
                &tpl,
                None,
                format!(
                    "takeover: RAID-0 of {n} -> {} of {} members{} (slot {n}, parity, missing \
                     until computed)",
                    goal.level.name(),
                    n + 1,
                    if layout == 5 { ", parity-last" } else { "" }
                ),
            )
        }
        (Level::Raid4 | Level::Raid5, Level::Raid0) => {
            if cur == Level::Raid5 && l != 5 {
                return unsupported(
                    "md takes over only a parity-last RAID-5 (layout 5) to RAID-0: reshape to \
                     parity-last first (with the parity member present)",
                );
            }
            if goal.layout.is_some() {
                return Err(invalid!("layout: give none for RAID-0"));
            }
            if asm.slots[(n - 1) as usize].is_some() {
                return unsupported(format!(
                    "md takes a {} over to RAID-0 only when its parity member (slot {}) is \
                     missing or failed: fail/remove it (leave its path out) first",
                    cur.name(),
                    n - 1
                ));
            }
            if missing.as_slice() != [n - 1] {
                return unsupported(
                    "the array is degraded beyond its parity member: it cannot become a RAID-0",
                );
            }
            let mut tpl = fresh.clone();
            tpl.level = 0;
            tpl.layout = 0;
            tpl.raid_disks = n - 1;
            tpl.size = 0;
            tpl.resync_offset = u64::MAX;
            tpl.feature_map.set(FeatureMap::BITMAP_OFFSET, false);
            tpl.feature_map.set(FeatureMap::RAID0_LAYOUT, false);
            tpl.bitmap_offset = 0;
            for role in tpl.dev_roles.iter_mut() {
                if *role == (n - 1) as u16 {
                    *role = Role::FAULTY_RAW;
                }
            }
            takeover(
                &m,
                &tpl,
                None,
                format!(
                    "takeover: {} of {n} without its parity member -> RAID-0 of {} members",
                    cur.name(),
                    n - 1
                ),
            )
        }
        (a, b) if a == b => Ok(Step::Done),
        (a, b) => unsupported(format!(
            "changing a {} to {} is not supported (fastraid changes RAID-5 <-> RAID-6, RAID-4 <-> \
             RAID-5 parity-last, RAID-0 -> RAID-4/5 and RAID-4/5 without parity -> RAID-0)",
            a.name(),
            b.name()
        )),
    }
}

/// The steps that follow `first` toward `goal` from level `cur`, in words (for the plan).
fn later_steps(cur: Level, goal: &Goal, first: &Step) -> Vec<String> {
    let mut v = Vec::new();
    let takeover = matches!(first, Step::Superblocks { .. });
    match (cur, goal.level) {
        (Level::Raid5, Level::Raid6) if takeover => {
            v.push(
                "compute Q onto the added member (md recovery, recovery_offset checkpoints)".into(),
            );
            v.push(
                "reshape to the normal RAID-6 layout when it differs (forward new_offset engine)"
                    .into(),
            );
        }
        (Level::Raid6, Level::Raid6) if matches!(first, Step::Rebuild { .. }) => {
            v.push(
                "reshape to the normal RAID-6 layout when it differs (forward new_offset engine)"
                    .into(),
            );
        }
        (Level::Raid6, Level::Raid5) if matches!(first, Step::Reshape { .. }) => {
            v.push("takeover: level 5, one member fewer; the Q member becomes a spare".into());
        }
        (Level::Raid5, Level::Raid4) if matches!(first, Step::Reshape { .. }) => {
            v.push("takeover: level 4 (same map)".into());
        }
        (Level::Raid0, _) if takeover => {
            v.push(
                "compute the parity onto the new member (md recovery, recovery_offset checkpoints)"
                    .into(),
            );
        }
        _ => {}
    }
    if goal.layout.is_some() && matches!(goal.level, Level::Raid5) && takeover {
        v.push("reshape to the requested layout (forward new_offset engine)".into());
    }
    v
}

/// The hook of [`super::plan`]: a plan when `opts` asks for a level change, or the array is
/// in the middle of one; `None` leaves the request to the same-level engine.
pub(super) fn plan(paths: &[PathBuf], opts: &ReshapeOptions) -> Result<Option<Plan>> {
    if let Some(p) = raid0::plan(paths, opts)? {
        return Ok(Some(p)); // a RAID-0 grow (src/reshape/raid0.rs)
    }
    let Some(lv) = opts.level else {
        return Ok(None);
    };
    if opts.continue_only {
        return Ok(None);
    }
    let level = Level::from_md(lv).map_err(|e| invalid!("level: {e}"))?;
    if opts.chunk_bytes.is_some() {
        return unsupported(
            "a level change and a chunk change at once are not supported: change the chunk \
             separately",
        );
    }
    let goal = Goal {
        level,
        layout: opts.layout,
        members: None,
    };
    let m = match members(paths) {
        Ok(m) => m,
        // No v1 member (metadata 0.90, not an array): the engine's refusals say why.
        Err(_) => return Ok(None),
    };
    let fresh = m.sbs[0].1.clone();
    let cur = Level::from_md(fresh.level).map_err(|e| invalid!("level: {e}"))?;
    if cur == Level::Raid0 && level == Level::Raid0 {
        return Err(invalid!("the array already is a RAID-0"));
    }
    if cur == level && opts.raid_disks.is_some_and(|d| d != fresh.raid_disks) {
        return Ok(None); // a grow or shrink at the same level: the engine's
    }
    let step = next_step(paths, &goal, opts)?;
    // Same level and nothing specific to a level change: the ordinary engine decides.
    let mid_change = matches!(step, Step::Superblocks { .. } | Step::Rebuild { .. })
        || (cur == Level::Raid6 && (16..=20).contains(&fresh.layout))
        || cur != level;
    if !mid_change {
        return Ok(None);
    }
    if matches!(step, Step::Done) {
        return Ok(None);
    }
    let asm = assemble::assemble(
        &m.sbs.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>(),
        AssembleOptions::default(),
    )?;
    let old_geo = asm.geometry.clone();
    let chunk_bytes = u64::from(old_geo.chunk_sectors()) * SECTOR_SIZE;
    let n = old_geo.raid_disks();
    let new_disks = match (cur, level) {
        (Level::Raid5, Level::Raid6) | (Level::Raid0, _) => n + 1,
        (Level::Raid6, Level::Raid5) | (_, Level::Raid0) => n - 1,
        _ => n,
    };
    if opts.raid_disks.is_some_and(|d| d != new_disks) {
        return unsupported(format!(
            "{} -> {} gives {new_disks} members; change the member count separately",
            cur.name(),
            level.name()
        ));
    }
    let new_layout_no = match (cur, level) {
        (Level::Raid5, Level::Raid6) => goal.layout.unwrap_or(fresh.layout),
        (Level::Raid6, _) => goal.layout.or(from_6(fresh.layout)).unwrap_or(fresh.layout),
        (_, Level::Raid5) => goal.layout.unwrap_or(5),
        _ => 0,
    };
    let new_layout = Layout::from_md(level, new_layout_no).map_err(|e| invalid!("layout: {e}"))?;
    let new_geo = if matches!(level, Level::Raid0) {
        old_geo.clone()
    } else {
        geometry(
            level,
            new_layout,
            new_disks,
            chunk_bytes,
            old_geo.dev_sectors(),
        )?
    };
    // A takeover keeps the array size (same data members, same map).
    let old_size = asm.size();
    let new_size = old_size;
    let mut steps = vec![step.what().to_owned()];
    steps.extend(later_steps(cur, &goal, &step));
    let kind = if matches!(step, Step::Reshape { .. }) && asm.reference.reshape.is_some() {
        Kind::Continue
    } else {
        Kind::Start
    };
    Ok(Some(Plan {
        kind,
        uuid: asm.reference.array_uuid,
        level,
        old_disks: n,
        new_disks,
        old_layout: old_geo.layout(),
        new_layout,
        old_chunk_bytes: chunk_bytes,
        new_chunk_bytes: chunk_bytes,
        new_offset: 0,
        start: 0,
        checkpoint: 0,
        old_size,
        new_size,
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
        level_change: Some(Box::new(LevelPlan {
            goal,
            paths: paths.to_vec(),
            steps,
        })),
    }))
}

impl LevelPlan {
    /// The plan's text (`str(plan)`): steps and what a power cut at each loses.
    pub(super) fn describe(
        &self,
        plan: &Plan,
        f: &mut std::fmt::Formatter<'_>,
    ) -> std::fmt::Result {
        match self.goal.members {
            Some(n) => writeln!(
                f,
                "grow RAID-0 array {} to {n} members (as mdadm: through a RAID-4 without its \
                 parity member)",
                crate::md::format_uuid(&plan.uuid)
            )?,
            None => writeln!(
                f,
                "change the level of array {} to {}",
                crate::md::format_uuid(&plan.uuid),
                self.goal.level.name()
            )?,
        }
        // RAID-0 has no layout to name.
        let layout = |level: Level, l: Layout| match l.name() {
            s if s.is_empty() || level == Level::Raid0 => String::new(),
            s => format!(", {s}"),
        };
        writeln!(
            f,
            "  from : {} of {} members{}",
            plan.old_geo.level().name(),
            plan.old_disks,
            layout(plan.old_geo.level(), plan.old_layout)
        )?;
        writeln!(
            f,
            "  to   : {} of {} members{}",
            self.goal.level.name(),
            plan.new_disks,
            layout(self.goal.level, plan.new_layout)
        )?;
        for m in &plan.members {
            writeln!(f, "  member: {m}")?;
        }
        writeln!(f, "  steps (and what a power cut at each loses):")?;
        for (i, s) in self.steps.iter().enumerate() {
            let loses = if s.starts_with("takeover") || s.starts_with("complete") {
                "nothing (superblocks only, events+1, fdatasync; both levels map the data \
                 alike, a partial update is completed by the next run)"
            } else if s.starts_with("add") {
                "nothing (the spare's superblock, then events+1 on every member; the kernel \
                 would compute the parity onto the spare)"
            } else if s.starts_with("compute") {
                "nothing (the array reads from the data members meanwhile; the next run or \
                 the kernel resumes at the last recovery_offset)"
            } else {
                "nothing (checkpointed reshape_position; the next run or the kernel resumes)"
            };
            writeln!(f, "   {}. {s} -- {loses}", i + 1)?;
        }
        for n in &plan.notes {
            writeln!(f, "  note: {n}")?;
        }
        Ok(())
    }

    /// Do the steps until the goal is reached (each decided again from the disks).
    pub(super) fn execute(
        &self,
        plan: &Plan,
        progress: &mut dyn FnMut(&Progress) -> ControlFlow<()>,
    ) -> Result<Report> {
        let t0 = Instant::now();
        let mut written = 0u64;
        let mut checkpoints = 0u64;
        let mut last = String::new();
        for _ in 0..12 + self.paths.len() {
            let step = next_step(&self.paths, &self.goal, &plan.opts)?;
            if step.what() == last && !matches!(step, Step::Reshape { .. }) {
                return Err(invalid!("internal: the step '{last}' did not take effect"));
            }
            last = step.what().to_owned();
            match step {
                Step::Done => {
                    let m = members(&self.paths)?;
                    let asm = assemble::assemble(
                        &m.sbs.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>(),
                        AssembleOptions::default(),
                    )?;
                    return Ok(Report {
                        resumed_from: 0,
                        bytes_written: written,
                        total: asm.size(),
                        checkpoints,
                        events: asm.reference.events,
                        size: asm.size(),
                        seconds: t0.elapsed().as_secs_f64(),
                    });
                }
                Step::Superblocks {
                    targets, events, ..
                } => {
                    let mut devs = Vec::new();
                    for t in &targets {
                        devs.push(Member::open_with(&t.path, true)?);
                    }
                    // Crash safety: bitmap headers (events first), then the superblocks in
                    // the order `takeover` gave (unchanged roles, the changing one, spares),
                    // one positioned write each, then fdatasync of every member. No data is
                    // written; a cut between two writes is completed by the next run.
                    let mut eng = Engine {
                        targets,
                        devs,
                        events,
                        checkpoints: 0,
                        new_row: (1, 0), // no checkpoints: superblocks only
                    };
                    eng.write_superblocks()?;
                }
                Step::Rebuild { members, new, .. } => {
                    let mut ro = RebuildOptions::new()?;
                    ro.new = new;
                    ro.batch_bytes = usize::try_from(plan.opts.batch_bytes.min(64 << 20))
                        .unwrap_or(4 << 20)
                        .max(4096);
                    ro.checkpoint_bytes = plan.opts.checkpoint_bytes;
                    ro.checkpoint_interval = plan.opts.checkpoint_interval;
                    ro.speed_limit = plan.opts.speed_limit;
                    // Crash safety is the rebuild engine's: the new member's superblock first
                    // (RECOVERY_OFFSET), batches, fdatasync, then recovery_offset, fdatasync.
                    let rp = rebuild::plan(&members, &ro)?;
                    let rep = rp.execute(&mut |p: &rebuild::Progress| {
                        progress(&Progress {
                            done: p.done,
                            total: p.total,
                            checkpoint: p.checkpoint,
                            rate: p.rate,
                        })
                    })?;
                    written += rep.bytes_written;
                }
                Step::AddSpare { members, new, .. } => {
                    // An empty file is an add killed between creating and sizing it.
                    if std::fs::metadata(&new).is_ok_and(|m| m.is_file() && m.len() == 0) {
                        std::fs::remove_file(&new)
                            .map_err(|e| Error::Io(format!("{}: {e}", new.display())))?;
                    }
                    // The writer's add: the spare's superblock, then events + 1 everywhere.
                    let (rd, w) = crate::writer::open(&members, false)?;
                    w.add_spare(rd, &new, false)?;
                }
                Step::Reshape {
                    opts,
                    parity_missing,
                    ..
                } => {
                    let m = members(&self.paths)?;
                    let paths: Vec<PathBuf> = m.sbs.iter().map(|(p, _)| p.clone()).collect();
                    // The forward new_offset engine: data durable before every
                    // reshape_position checkpoint (module docs of `super`).
                    let plan = if parity_missing {
                        raid0::engine_plan(&paths, &opts)?
                    } else {
                        super::plan(&paths, &opts)?
                    };
                    let rep = plan.execute(progress)?;
                    written += rep.bytes_written;
                    checkpoints += rep.checkpoints;
                }
            }
        }
        Err(invalid!("internal: the level change did not converge"))
    }
}
