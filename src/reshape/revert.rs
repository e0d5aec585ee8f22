//! Revert an interrupted reshape (`fastraid grow --continue --revert`): turn it around and
//! run it back, so the array ends in the geometry it started from, offline, in place and
//! crash-safe like the reshape itself.
//!
//! # What md means by it
//!
//! mdadm's `--update=revert-reshape` (md-format.md §6.4, `super1.c: update_super1`) turns
//! the reshape around in the superblocks: `raid_disks −= delta_disks`, `delta_disks`
//! negated (RESHAPE_BACKWARDS toggled instead when it is 0), `layout`/`new_layout` and
//! `chunksize`/`new_chunk` swapped and, with NEW_OFFSET, `data_offset += new_offset`,
//! `new_offset` negated, `data_size −= new_offset`; `reshape_position` stays. Nothing moves:
//! the same checkpoint `R` splits the array the same way, only the names change — what
//! was "new" (below `R` forwards, at or above it backwards) is now "old", and the reshape
//! walks the other way. The engine of [`super`] then finishes that *reverse* reshape as it
//! finishes any other, and at its finish the members a grow added become spares (roles at
//! or past the old `raid_disks`, as after a shrink) while the members a shrink was removing
//! are members again. A reshape that has not moved anything yet is simply cancelled: the
//! superblocks go straight back to the old geometry.
//!
//! # What fastraid adds
//!
//! * *A common boundary.* The kernel resumes a reshape only at a multiple of
//!   `max(chunk) × new data disks` ("reshape_position not on a stripe boundary"), and after
//!   the turn the new data disks are the old geometry's. Where `R` is not a multiple of
//!   `L = max(chunk) × lcm(data disks of both geometries)`, the reshape is first *advanced*
//!   (by the engine, with its own checkpoints: an ordinary `--continue` run) to the next
//!   such boundary, instead of refusing as mdadm does. The same run settles what the reader
//!   had to decide by content (the kernel can move stripes past the checkpoint it last
//!   wrote) and an in-place batch in flight, so the boundary is exact where the turn
//!   happens.
//! * *The first unit written back before the turn* (data moved to `new_offset`): the old
//!   geometry's stripes of the one reader unit (`lcm` of both stripe sizes) next to the
//!   boundary, on the old side after the turn, are written into place first, into rows no
//!   data still needs (checked). That unit then reads the same in both geometries, as the
//!   unit at every checkpoint of the engine does, so fastraid's reader (which checks the
//!   boundary by content and parity) and the kernel (which trusts `R`) agree on the turned
//!   array from its first instant.
//! * *Feasibility first.* Before anything is written, the reverse reshape is checked: the
//!   free space must let the engine make progress all the way back (`engine_progresses`,
//!   the arithmetic of the engine's step 4), the boundary must be reachable before the
//!   reshape ends, and in place the engine journals every batch (backwards when the
//!   original ran forwards, and the other way round, the rows of a whole unit only ever
//!   hold data of that unit or of data already moved). Otherwise the revert is refused with
//!   [`Error::Unsupported`] saying why, and `--continue` still finishes the reshape.
//! * *A marker* `fastraid-revert-<uuid>` beside the first member records the turned
//!   superblocks (geometry, offsets per member): a rerun of `--revert` that finds the
//!   reshape already turned goes on with it instead of turning it around once more. It is
//!   removed when the revert ends; one left behind (the kernel finished the revert) no
//!   longer matches anything and is ignored.
//!
//! # RAID-10
//!
//! The same turn-around, with what RAID-10 needs instead of the parity levels' steps
//! ([`decide_raid10`]): fastraid's reader trusts a RAID-10 checkpoint (no parity to judge
//! by) and the engine records it right where its writes end, so nothing is written back:
//! at the checkpoint the reshape's new geometry below it *is* what the reverse reads as its
//! old one. The turn is made at a multiple of both chunks (advanced there by the engine
//! first, where needed: a chunk decrease, a backwards reshape); a grow that has moved all
//! the old geometry holds is turned at the old size. md's minimum offset difference
//! (`max(C·fc)` of both geometries) is symmetric, so it holds for the reverse; whether the
//! reverse moves every chunk back in the free space it has is checked chunk by chunk
//! ([`super::raid10::reverse_progresses`]) before anything is written. The direction
//! follows md: a reverted grow has `delta_disks < 0` (backwards, the data moving up), a
//! chunk or layout change has RESHAPE_BACKWARDS toggled. At the finish of a reverted grow
//! the added members become spares and the bitmaps, which the grow resized, go back to the
//! array's size (same chunk) with the bits of the added space cleared. A reverse from
//! offset to near is one the kernel can continue; one from near to offset (the revert of
//! an offset -> near change) is not (see raid10.rs), and its plan says so.
//!
//! # On-disk states (what a power cut leaves) and who finishes them
//!
//! 1. *Advance* (where needed): the original reshape's own batches and checkpoints. A
//!    rerun of `--continue --revert` reverts from wherever it stopped; `--continue`
//!    finishes the original instead; the kernel finishes the original.
//! 2. *Write-back of the first unit* and *the marker*: rows no data needs, a file. As 1.
//! 3. *The turn*: every member's superblock, turned, with `events + 1`, then `fdatasync`.
//!    Both orientations describe the same bytes at the same `R`, so a crash between two
//!    superblock writes loses nothing; the members one event behind are completed by the
//!    next run (`--continue` or `--revert`, [`Kind::Revert`] with
//!    [`RevertStep::Superblocks`]), as a half-written finish is. In the microseconds
//!    between two writes md's own tools would see superblocks that disagree (as after
//!    md's own revert-reshape or a takeover); fastraid completes them first.
//! 4. *Running back*: the engine's batches and checkpoints, the other way. From here the
//!    reverse is an ordinary reshape in progress: a plain `--continue` finishes the
//!    revert, `--continue --revert` too (the marker), and so does the kernel.
//! 5. *Finish*: the engine's finish; the superblocks describe the old geometry.
//!
//! # Not handled
//!
//! Level changes are not reshapes: a reshape that is part of one (RAID-5 → RAID-6 ends
//! with a reshape from the "-6" layout) is reverted to the layout it started from, at the
//! level it has (the takeover stays; `grow --level` changes the level back). What the
//! engine does not continue (degraded arrays, metadata 0.90, mdadm in-place reshapes it
//! cannot read) it does not revert either, with the same message. A reshape stopped in a
//! level change's takeover or recovery is no reshape: nothing to revert.
//!
//! The kernel takes over a reverse reshape from any of the engine's checkpoints: they lie on
//! the kernel's grid, a multiple of the larger chunk × the new data disks
//! ([`super::checkpoint_grid`]; `raid5.c` checks `reshape_position` against the larger
//! chunk since Linux 4.3), also when the reverse is a chunk decrease.

use std::fmt;
use std::io::Write;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{
    any_change, bitmap_of, checkpoint_grid, finalise, gcd, human, journal_path, read_sb, size_of,
    stripe_bytes, Engine, Journal, Kind, Plan, Progress, Report, ReshapeOptions, Target, Writer,
};
use crate::array::ArrayReader;
use crate::assemble::{self, AssembleOptions};
use crate::error::{invalid, Error, Result};
use crate::io::Member;
use crate::layout::{Layout, Level, SECTOR_SIZE};
use crate::md::{format_uuid, FeatureMap, SuperblockV1};

/// What a revert does first (the rest follows from the state it leaves).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevertStep {
    /// Turn the reshape around, then run it back: first advance the reshape to the array
    /// byte `advance_to` where needed, and write the old geometry's stripes of `write_back`
    /// (array bytes) into place.
    Turn {
        advance_to: Option<u64>,
        write_back: Option<(u64, u64)>,
    },
    /// Nothing was moved yet: the superblocks go back to the old geometry.
    Cancel,
    /// An earlier run turned the reshape around (its marker says so): run it back.
    Resume,
    /// A crash left some superblocks turned around (or cancelled) and some not: complete
    /// them (the members listed), then run the reshape back.
    Superblocks,
    /// The revert had finished, but a crash left its marker (and the in-place journal)
    /// beside the first member: remove them (the files listed).
    CleanUp,
}

impl RevertStep {
    /// `turn`, `cancel`, `resume` or `superblocks`.
    pub fn name(self) -> &'static str {
        match self {
            RevertStep::Turn { .. } => "turn",
            RevertStep::Cancel => "cancel",
            RevertStep::Resume => "resume",
            RevertStep::Superblocks => "superblocks",
            RevertStep::CleanUp => "clean-up",
        }
    }
}

fn unsupported<T>(msg: String) -> Result<T> {
    Err(Error::Unsupported(format!(
        "{msg}; `fastraid grow --continue` finishes the reshape instead"
    )))
}

// ================================================================================
// The superblock fields
// ================================================================================

/// md's revert-reshape of one superblock (module docs), with the checkpoint `position`
/// (sectors).
fn turn(sb: &mut SuperblockV1, position: u64) {
    let delta = sb.delta_disks;
    sb.raid_disks = u32::try_from(i64::from(sb.raid_disks) - i64::from(delta)).unwrap_or(0);
    sb.delta_disks = -delta;
    let back = sb.feature_map.contains(FeatureMap::RESHAPE_BACKWARDS);
    sb.feature_map
        .set(FeatureMap::RESHAPE_BACKWARDS, delta == 0 && !back);
    std::mem::swap(&mut sb.layout, &mut sb.new_layout);
    std::mem::swap(&mut sb.chunksize, &mut sb.new_chunk);
    if sb.feature_map.contains(FeatureMap::NEW_OFFSET) {
        let off = i64::from(sb.new_offset);
        sb.data_offset = sb.data_offset.saturating_add_signed(off);
        sb.data_size = sb.data_size.saturating_add_signed(-off);
        sb.new_offset = -sb.new_offset;
    }
    sb.reshape_position = position;
}

/// The array-wide fields (and the role table) agree.
fn same_array(a: &SuperblockV1, b: &SuperblockV1) -> bool {
    let flags = |s: &SuperblockV1| {
        [
            FeatureMap::RESHAPE_ACTIVE,
            FeatureMap::NEW_OFFSET,
            FeatureMap::RESHAPE_BACKWARDS,
        ]
        .map(|f| s.feature_map.contains(f))
    };
    a.set_uuid == b.set_uuid
        && a.level == b.level
        && a.new_level == b.new_level
        && a.layout == b.layout
        && a.new_layout == b.new_layout
        && a.chunksize == b.chunksize
        && a.new_chunk == b.new_chunk
        && a.raid_disks == b.raid_disks
        && a.delta_disks == b.delta_disks
        && a.new_offset == b.new_offset
        && a.reshape_position == b.reshape_position
        && a.size == b.size
        && a.dev_roles == b.dev_roles
        && flags(a) == flags(b)
}

/// A turn (or a cancel) that a crash left half-written: the freshest members are turned,
/// the others one event behind still describe the reshape before the turn.
struct HalfTurn {
    /// The lagging members with their superblocks completed.
    targets: Vec<Target>,
    events: u64,
    cancelled: bool,
}

fn half_turn(paths: &[PathBuf]) -> Result<Option<HalfTurn>> {
    let mut sbs = Vec::new();
    for p in paths {
        if let Ok(Some(sb)) = read_sb(p) {
            if sb.role().slot().is_some() {
                sbs.push((p.clone(), sb));
            }
        }
    }
    let Some(max) = sbs.iter().map(|(_, s)| s.events).max() else {
        return Ok(None);
    };
    let Some((_, fresh)) = sbs.iter().find(|(_, s)| s.events == max) else {
        return Ok(None);
    };
    let cancelled = !fresh.feature_map.contains(FeatureMap::RESHAPE_ACTIVE);
    let lagging: Vec<&(PathBuf, SuperblockV1)> = sbs
        .iter()
        .filter(|(_, s)| {
            s.set_uuid == fresh.set_uuid
                && s.events + 1 == max
                && s.feature_map.contains(FeatureMap::RESHAPE_ACTIVE)
        })
        .collect();
    let mut targets = Vec::new();
    for (p, s) in lagging {
        let mut sb = s.clone();
        turn(&mut sb, fresh.reshape_position);
        if cancelled {
            finalise(&mut sb);
        }
        if !same_array(&sb, fresh) {
            return Ok(None); // not a turn: an ordinary checkpoint or finish, or foreign
        }
        targets.push(Target {
            path: p.clone(),
            slot: u32::from(s.role().slot().unwrap_or(0)),
            bitmap: bitmap_of(p, s)?,
            sb,
            recovering: false, // a revert refuses those (`decide`)
        });
    }
    Ok((!targets.is_empty()).then_some(HalfTurn {
        targets,
        events: max,
        cancelled,
    }))
}

// ================================================================================
// The reshape in progress and how to turn it around
// ================================================================================

/// The reshape in progress as the engine would continue it, and what the reader says.
struct Current {
    /// The engine's plan to continue it (validated: level, members, metadata ...).
    plan: Plan,
    /// Array byte where the reader puts the boundary between the geometries.
    boundary: u64,
    /// What the old geometry holds (where the reverse reshape ends).
    old_geometry_size: u64,
    /// fastraid's in-place journal holds a batch in flight (array bytes).
    in_flight: Option<(u64, u64)>,
}

/// The reshape in progress (`None`: none).
fn current(paths: &[PathBuf], opts: &ReshapeOptions) -> Result<Option<Current>> {
    let copts = ReshapeOptions {
        revert: false,
        continue_only: true,
        ..opts.clone()
    };
    let plan = match super::plan(paths, &copts) {
        Ok(p) => p,
        Err(Error::InvalidArgument(m)) if m.contains("nothing to continue") => return Ok(None),
        Err(e) => return Err(e),
    };
    if plan.kind != Kind::Continue {
        // A finish a crash left half-written: the reshape is over.
        return Ok(Some(Current {
            boundary: 0,
            old_geometry_size: 0,
            in_flight: None,
            plan,
        }));
    }
    let rd = ArrayReader::new(assemble::assemble_with_backup(
        paths,
        AssembleOptions::default(),
        opts.backup_file.as_deref(),
    )?)?;
    let boundary = rd.assembly().parts.first().map_or(0, |p| p.end);
    let c_max = u64::from(
        plan.old_geo
            .chunk_sectors()
            .max(plan.new_geo.chunk_sectors()),
    );
    let old_geometry_size = size_of(&plan.old_geo, c_max);
    let mut in_flight = None;
    if let Some(j) = plan.journal.as_deref() {
        if Journal::is_ours(j, &plan.uuid) {
            let file = std::fs::File::open(j).map_err(|e| super::io_err(j, e))?;
            let mut jr = Journal {
                path: j.to_path_buf(),
                file,
            };
            in_flight = jr
                .valid_section(plan.uuid)?
                .map(|(a, d)| (a, a + d.len() as u64))
                .filter(|&(a, e)| {
                    if plan.backwards {
                        a < plan.checkpoint
                    } else {
                        e > plan.checkpoint
                    }
                });
        }
    }
    Ok(Some(Current {
        plan,
        boundary,
        old_geometry_size,
        in_flight,
    }))
}

/// Stripe arithmetic of both geometries (`a`: the old one, the reverse's new; `b`: the
/// reshape's new one).
struct Geo {
    s_a: u64,
    s_b: u64,
    c_a: u64,
    c_b: u64,
    unit: u64,
    /// Boundaries both geometries (and the kernel, either way) accept.
    common: u64,
}

fn geo(p: &Plan) -> Geo {
    let (ga, gb) = (&p.old_geo, &p.new_geo);
    let (s_a, s_b) = (stripe_bytes(ga), stripe_bytes(gb));
    let (c_a, c_b) = (u64::from(ga.chunk_sectors()), u64::from(gb.chunk_sectors()));
    let (d_a, d_b) = (
        u64::from(ga.data_disks().unwrap_or(1)).max(1),
        u64::from(gb.data_disks().unwrap_or(1)).max(1),
    );
    let d = d_a / gcd(d_a, d_b) * d_b;
    Geo {
        s_a,
        s_b,
        c_a,
        c_b,
        unit: s_a / gcd(s_a, s_b) * s_b,
        common: c_a.max(c_b) * SECTOR_SIZE * d,
    }
}

/// Where and how to turn the reshape around.
#[derive(Debug, Clone, Copy)]
struct TurnAt {
    /// The checkpoint the reshape must have first (advanced to by the engine where it is
    /// elsewhere).
    checkpoint: u64,
    /// `reshape_position` after the turn (the checkpoint, or the old geometry's size
    /// where a grow had gone past it).
    at: u64,
    /// Array bytes written back in the old geometry before the turn.
    write_back: Option<(u64, u64)>,
    /// The reshape must be advanced first.
    advance: bool,
}

enum Action {
    Cancel,
    Turn(TurnAt),
}

/// Decide how to go back (reads nothing; refuses what cannot be reverted safely).
fn decide(c: &Current) -> Result<Action> {
    let p = &c.plan;
    if let Some(t) = p.targets.iter().find(|t| t.recovering) {
        return unsupported(format!(
            "{} is being recovered along with this reshape (md's RAID-5 -> RAID-6): it is \
             valid only where the new geometry lies, and running such a reshape back is not \
             supported",
            t.path.display()
        ));
    }
    if p.level == Level::Raid10 {
        return decide_raid10(c);
    }
    let g = geo(p);
    let fwd = !p.backwards;
    let in_place = p.new_offset == 0;
    let (r, n_end, a_size) = (p.checkpoint, p.new_size, c.old_geometry_size);
    // The boundary the way the reader sees it (it never lies past the smaller size).
    let r_c = r.min(p.old_size);
    let x = c.boundary;
    let exact = !in_place || p.pinned;
    let start = if fwd { 0 } else { n_end };
    if x == start && r_c == start.min(p.old_size) && c.in_flight.is_none() && exact {
        return Ok(Action::Cancel);
    }
    // Rows, in sectors from the old data offset (the new data sits `new_offset` from it).
    let off = p.new_offset;
    let arow = |b: u64| (b / g.s_a * g.c_a) as i64;
    let arow_ceil = |b: u64| (b.div_ceil(g.s_a) * g.c_a) as i64;
    let brow = |b: u64| (b / g.s_b * g.c_b) as i64;
    let brow_ceil = |b: u64| (b.div_ceil(g.s_b) * g.c_b) as i64;
    let l = g.common;
    let turn_at = if fwd {
        // Bytes below the boundary are in the new geometry: go on to a common boundary at
        // or past everything the reshape (or a batch in flight) has touched.
        let need = x.max(r_c).max(c.in_flight.map_or(0, |f| f.1));
        // The old geometry's unit below `at` goes into rows that no new data below the
        // checkpoint `ck` uses (the new data lies `off` below, off < 0).
        let fits = |ck: u64, at: u64| at >= g.unit && off + brow_ceil(ck) <= arow(at - g.unit);
        let mut t = need.div_ceil(l).saturating_mul(l);
        let room = in_place || fits(t, t);
        while !in_place && t < a_size && !fits(t, t) {
            t = t.saturating_add(l); // a grow: the room grows as the reshape goes on
        }
        if !room && t >= a_size && a_size >= n_end {
            return unsupported(format!(
                "the old geometry's rows below the checkpoint still hold data of the new one \
                 ({} sectors of free space between them): the reshape cannot be turned around",
                off.unsigned_abs()
            ));
        }
        let (checkpoint, at) = if t >= a_size {
            // A grow that has moved all the old geometry holds: turn it at that size.
            let ck = if r_c == x && r >= a_size {
                r
            } else {
                need.max(a_size).div_ceil(g.s_b) * g.s_b
            };
            (ck, a_size)
        } else {
            (t, t)
        };
        let write_back = (!in_place && fits(checkpoint, at)).then(|| (at - g.unit, at));
        TurnAt {
            checkpoint,
            at,
            write_back,
            advance: checkpoint != r || x != r_c || c.in_flight.is_some() || !exact,
        }
    } else {
        let need = x.min(r_c).min(c.in_flight.map_or(u64::MAX, |f| f.0));
        let t = need / l * l;
        if t == 0 {
            return unsupported(format!(
                "the reshape is within {} of its end: there is no stripe boundary of both \
                 geometries left to turn it around at",
                human(need)
            ));
        }
        let hi = (t + g.unit).min(a_size);
        if !in_place && arow_ceil(hi) > off + brow(t) {
            return unsupported(format!(
                "the old geometry's rows next to the checkpoint (array byte {t}) still hold \
                 data of the new one ({off} sectors of free space between them): the reshape \
                 cannot be turned around there"
            ));
        }
        TurnAt {
            checkpoint: t,
            at: t,
            write_back: (!in_place).then_some((t, hi)),
            advance: t != r || x != r_c || c.in_flight.is_some() || !exact,
        }
    };
    if turn_at.advance {
        // The engine stops on a boundary only when it passes it before its end.
        let past = if in_place { 0 } else { g.unit };
        let ok = if fwd {
            turn_at.checkpoint.saturating_add(past) <= n_end && turn_at.checkpoint < n_end
        } else {
            turn_at.checkpoint >= past
        };
        if !ok {
            return unsupported(format!(
                "the reshape is too close to its end ({} of {} left) to stop it at a stripe \
                 boundary of both geometries",
                human(if fwd { n_end - r } else { r }),
                human(n_end)
            ));
        }
    }
    if !in_place {
        // The reverse reshape: old = the reshape's new geometry, new = the old one.
        let (old_size, new_size) = (p.old_size, a_size);
        if !engine_progresses(
            (g.s_b, g.c_b),
            (g.s_a, g.c_a),
            off.unsigned_abs(),
            turn_at.at,
            new_size,
            old_size,
            fwd,
        ) {
            return unsupported(format!(
                "moving the data back needs more free space than the {} sectors between the \
                 two data offsets (the reverse reshape could not keep its old copies intact \
                 all the way)",
                off.unsigned_abs()
            ));
        }
    }
    Ok(Action::Turn(turn_at))
}

/// [`decide`] for RAID-10. Its reader trusts the checkpoint (no unit of lag, no parity to
/// judge by) and every checkpoint is a whole new chunk, so the turn needs no write-back:
/// below `R` (forwards) the reshape's new geometry is exactly what the reverse reads as
/// its old one. The turn is made at a multiple of both chunks (the reverse's checkpoints
/// are whole chunks of the old geometry, and the kernel steps over both); the offset
/// distance is the same both ways, so md's minimum holds for the reverse as it held for
/// the reshape; and the reverse must be able to move every chunk back
/// ([`raid10::reverse_progresses`]) before anything is written.
fn decide_raid10(c: &Current) -> Result<Action> {
    let p = &c.plan;
    let fwd = !p.backwards;
    let (r, n_end, a_size) = (p.checkpoint, p.new_size, c.old_geometry_size);
    if p.new_offset == 0 {
        return unsupported(
            "a RAID-10 reshape without a data-offset change cannot be reverted".into(),
        );
    }
    let l = geo(p).common; // the larger chunk, in bytes
    let x = c.boundary;
    if (fwd && r == 0 && x == 0) || (!fwd && r >= n_end && x >= n_end) {
        return Ok(Action::Cancel);
    }
    let turn_at = if fwd {
        let need = x.max(r);
        let t = need.div_ceil(l).saturating_mul(l);
        if need >= a_size {
            // A grow that has moved everything the old geometry holds: turn it there.
            if !a_size.is_multiple_of(l) {
                return unsupported(format!(
                    "the old geometry's size ({a_size} bytes) is not a multiple of the larger                      chunk: no boundary to turn the reshape around at"
                ));
            }
            TurnAt {
                checkpoint: r,
                at: a_size,
                write_back: None,
                advance: false,
            }
        } else {
            TurnAt {
                checkpoint: t,
                at: t,
                write_back: None,
                advance: t != r || x != r,
            }
        }
    } else {
        let need = x.min(r);
        let t = need / l * l;
        TurnAt {
            checkpoint: t,
            at: t,
            write_back: None,
            advance: t != r || x != r,
        }
    };
    if turn_at.advance
        && ((fwd && turn_at.checkpoint >= n_end) || (!fwd && turn_at.checkpoint == 0))
    {
        return unsupported(format!(
            "the reshape is too close to its end ({} of {} left) to stop it at a chunk              boundary of both geometries",
            human(if fwd { n_end.saturating_sub(r) } else { r }),
            human(n_end)
        ));
    }
    // The reverse reshape: old = the reshape's new geometry, new = the old one.
    if !super::raid10::reverse_progresses(
        &p.new_geo,
        &p.old_geo,
        p.new_offset.unsigned_abs(),
        turn_at.at,
        a_size,
        fwd,
    ) {
        return unsupported(format!(
            "moving the data back needs more free space than the {} sectors between the two \
             data offsets (the reverse reshape would stop with no progress possible)",
            p.new_offset.unsigned_abs()
        ));
    }
    Ok(Action::Turn(turn_at))
}

/// Whether the engine's new-offset reshape ([`Plan::execute`], step 4 and its checkpoints)
/// gets from `start` to its end (backwards: 0) without running out of room, for stripes
/// (bytes, chunk sectors) `old` and `new`, the data `off` sectors apart. The engine's
/// arithmetic, run at its worst (a checkpoint only when it is blocked); false where it
/// would stop with "no progress possible".
fn engine_progresses(
    old: (u64, u64),
    new: (u64, u64),
    off: u64,
    start: u64,
    n_end: u64,
    old_size: u64,
    back: bool,
) -> bool {
    let ((s_o, c_o), (s_n, c_n)) = (old, new);
    if s_o == 0 || s_n == 0 || c_n == 0 {
        return false;
    }
    let unit = s_o / gcd(s_o, s_n) * s_n;
    let grid = checkpoint_grid(s_n, c_n, c_o);
    let (mut pos, mut ckpt) = (start, start);
    // Each round moves `pos` or the checkpoint by at least one stripe.
    for _ in 0..4_000_000 {
        if back {
            if pos == 0 {
                return true;
            }
            let need = ckpt.div_ceil(s_o) * c_o;
            let limit = if need <= off {
                0
            } else {
                (need - off).div_ceil(c_n).saturating_mul(s_n)
            };
            let lo = limit.div_ceil(s_n).saturating_mul(s_n);
            if lo < pos {
                pos = lo;
                continue;
            }
            let c = (pos + unit).div_ceil(grid).saturating_mul(grid).min(n_end);
            if c >= ckpt {
                return false;
            }
            ckpt = c;
        } else {
            if pos >= n_end {
                return true;
            }
            let limit = if ckpt >= old_size {
                n_end
            } else {
                ((ckpt / s_o * c_o + off) / c_n).saturating_mul(s_n)
            };
            let e = if n_end - pos < s_n {
                n_end
            } else {
                limit.min(n_end) / s_n * s_n
            };
            if e > pos {
                pos = e;
                continue;
            }
            let c = pos.saturating_sub(unit) / grid * grid;
            if c <= ckpt {
                return false;
            }
            ckpt = c;
        }
    }
    true
}

/// The reverse reshape as a plan: the current one with both geometries swapped and every
/// superblock turned around at `at` (not yet written).
fn turned(c: &Current, kind: Kind, at: u64) -> Plan {
    let p = &c.plan;
    let mut targets = p.targets.clone();
    for t in &mut targets {
        turn(&mut t.sb, at / SECTOR_SIZE);
    }
    Plan {
        kind,
        uuid: p.uuid,
        level: p.level,
        old_disks: p.new_disks,
        new_disks: p.old_disks,
        old_layout: p.new_layout,
        new_layout: p.old_layout,
        old_chunk_bytes: p.new_chunk_bytes,
        new_chunk_bytes: p.old_chunk_bytes,
        new_offset: -p.new_offset,
        start: at,
        checkpoint: p.checkpoint,
        old_size: p.old_size,
        new_size: c.old_geometry_size,
        events: p.events + 1,
        members: p.members.clone(),
        notes: p.notes.clone(),
        backwards: !p.backwards,
        journal: p.journal.clone(),
        pinned: false,
        level_change: None,
        old_geo: p.new_geo.clone(),
        new_geo: p.old_geo.clone(),
        targets,
        paths: p.paths.clone(),
        opts: p.opts.clone(),
    }
}

// ================================================================================
// The marker
// ================================================================================

fn marker_path(paths: &[PathBuf], uuid: &[u8; 16]) -> PathBuf {
    let j = journal_path(paths, uuid);
    let hex: String = uuid.iter().map(|b| format!("{b:02x}")).collect();
    j.with_file_name(format!("fastraid-revert-{hex}"))
}

/// What the marker says: the turned reshape, member by member.
fn marker_text(targets: &[Target]) -> String {
    let mut s = String::from("fastraid revert marker 1\n");
    if let Some(t) = targets.first() {
        let sb = &t.sb;
        s += &format!(
            "array {} level {} raid_disks {} delta_disks {} layout {} new_layout {} chunk {} \
             new_chunk {} new_offset {} backwards {}\n",
            format_uuid(&sb.set_uuid),
            sb.level,
            sb.raid_disks,
            sb.delta_disks,
            sb.layout,
            sb.new_layout,
            sb.chunksize,
            sb.new_chunk,
            sb.new_offset,
            sb.feature_map.contains(FeatureMap::RESHAPE_BACKWARDS)
        );
    }
    for t in targets {
        s += &format!(
            "member {} slot {} data_offset {}\n",
            format_uuid(&t.sb.device_uuid),
            t.slot,
            t.sb.data_offset
        );
    }
    s
}

/// The reshape in progress is one that an earlier revert turned around.
fn marker_matches(c: &Current) -> bool {
    let path = marker_path(&c.plan.paths, &c.plan.uuid);
    std::fs::read_to_string(path).is_ok_and(|s| s == marker_text(&c.plan.targets))
}

fn sync_dir(path: &Path) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if let Ok(d) = std::fs::File::open(dir) {
            d.sync_all().map_err(|e| super::io_err(dir, e))?;
        }
    }
    Ok(())
}

fn write_marker(path: &Path, text: &str) -> Result<()> {
    let mut f = std::fs::File::create(path).map_err(|e| super::io_err(path, e))?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| super::io_err(path, e))?;
    sync_dir(path)
}

/// The marker and fastraid's in-place journal of the array, where they exist.
fn leftovers(paths: &[PathBuf], uuid: &[u8; 16]) -> Vec<PathBuf> {
    let j = journal_path(paths, uuid);
    let m = marker_path(paths, uuid);
    let mut files = Vec::new();
    if m.exists() {
        files.push(m);
    }
    if Journal::is_ours(&j, uuid) {
        files.push(j);
    }
    files
}

/// Remove the marker and an in-place journal that no reshape uses any more.
fn clean_up(paths: &[PathBuf], uuid: &[u8; 16]) -> Result<()> {
    for f in leftovers(paths, uuid) {
        match std::fs::remove_file(&f) {
            Ok(()) => sync_dir(&f)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(super::io_err(&f, e)),
        }
    }
    Ok(())
}

// ================================================================================
// Planning
// ================================================================================

/// The revert plan (`opts.revert`), or the completion of a turn a crash left half-written
/// (whatever was asked); `None` otherwise.
pub(super) fn plan(paths: &[PathBuf], opts: &ReshapeOptions) -> Result<Option<Plan>> {
    if let Some(h) = half_turn(paths)? {
        return superblocks_plan(paths, opts, h).map(Some);
    }
    if !opts.revert {
        return Ok(None);
    }
    if any_change(opts) || opts.array_size.is_some() {
        return Err(invalid!(
            "a revert goes back to the geometry the reshape started from: give no new \
             geometry with it"
        ));
    }
    let sbs: Vec<SuperblockV1> = paths
        .iter()
        .filter_map(|p| read_sb(p).ok().flatten())
        .collect();
    let nothing = || {
        let has = |f| sbs.iter().any(|s| s.feature_map.contains(f));
        invalid!(
            "no reshape is in progress on this array: nothing to revert{}",
            if has(FeatureMap::RESHAPE_ACTIVE) {
                " (the reshape has finished, but a crash left some superblocks behind: \
                 `fastraid grow --continue` completes them)"
            } else if has(FeatureMap::RECOVERY_OFFSET) {
                " (a recovery is: a level change stopped while it computes its new parity \
                 member is finished by running it again, `fastraid grow --level`)"
            } else {
                ""
            }
        )
    };
    let fresh = sbs
        .iter()
        .filter(|s| s.role().slot().is_some())
        .max_by_key(|s| s.events);
    if !fresh.is_some_and(|s| s.feature_map.contains(FeatureMap::RESHAPE_ACTIVE)) {
        // Files a finished revert could not remove before a crash (or the kernel finished it).
        if let Some(sb) = fresh {
            let left = leftovers(paths, &sb.set_uuid);
            if !left.is_empty() {
                let names = left.iter().map(|f| f.display().to_string()).collect();
                let note = "no reshape is in progress: the revert had finished; the files it \
                            left beside the first member are removed"
                    .to_string();
                return plan_of(paths, opts, RevertStep::CleanUp, sb, names, note).map(Some);
            }
        }
        return Err(nothing());
    }
    let c = match current(paths, opts) {
        Ok(Some(c)) => c,
        Ok(None) => return Err(nothing()),
        // What the engine cannot continue it cannot run back either.
        Err(Error::Unsupported(m)) => {
            return Err(Error::Unsupported(format!(
                "cannot revert this reshape: {m}"
            )))
        }
        Err(e) => return Err(e),
    };
    if c.plan.kind != Kind::Continue {
        return Err(Error::Unsupported(
            "the reshape has finished (a crash interrupted its last superblock writes: \
             `fastraid grow --continue` completes them): nothing to revert"
                .into(),
        ));
    }
    if marker_matches(&c) {
        let mut p = c.plan;
        p.kind = Kind::Revert(RevertStep::Resume);
        p.opts = opts.clone();
        p.notes.push(
            "an earlier revert turned this reshape around (its marker beside the first member \
             says so): it is run back to the end"
                .into(),
        );
        return Ok(Some(p));
    }
    let action = decide(&c)?;
    let (step, at) = match action {
        Action::Cancel => (RevertStep::Cancel, c.plan.checkpoint),
        Action::Turn(t) => (
            RevertStep::Turn {
                advance_to: t.advance.then_some(t.checkpoint),
                write_back: t.write_back,
            },
            t.at,
        ),
    };
    let mut p = turned(&c, Kind::Revert(step), at);
    p.opts = opts.clone();
    notes(&c, &mut p.notes);
    if p.level == Level::Raid10 {
        p.notes
            .extend(super::raid10::takeover_note(&p.old_geo, &p.new_geo));
    }
    Ok(Some(p))
}

fn notes(c: &Current, notes: &mut Vec<String>) {
    let p = &c.plan;
    if p.level == Level::Raid6
        && (16..=20).contains(&p.old_layout.md_number())
        && p.new_layout.md_number() + 16 == p.old_layout.md_number()
    {
        notes.push(format!(
            "this reshape is the last step of a RAID-5 -> RAID-6 change: reverting it leaves a \
             RAID-6 in the {} layout (the takeover is not a reshape); `fastraid grow --level 5` \
             then goes back to RAID-5",
            p.old_layout.name()
        ));
    }
    if p.old_disks > p.new_disks {
        notes.push(format!(
            "a shrink reverted: array bytes past the {} the shrink kept read as zeros (the \
             shrink discarded them)",
            human(p.new_size)
        ));
    }
}

fn superblocks_plan(paths: &[PathBuf], opts: &ReshapeOptions, h: HalfTurn) -> Result<Plan> {
    let note = format!(
        "a crash interrupted the {} of this reshape between two superblock writes: {} member \
         superblock(s) are completed first",
        if h.cancelled { "cancel" } else { "turn-around" },
        h.targets.len()
    );
    let sb = h.targets[0].sb.clone();
    let members = h
        .targets
        .iter()
        .map(|t| t.path.display().to_string())
        .collect();
    let mut p = plan_of(paths, opts, RevertStep::Superblocks, &sb, members, note)?;
    p.events = h.events;
    p.targets = h.targets;
    Ok(p)
}

/// A plan described by one superblock (the half-written or finished state it shows); from
/// its reshape's old geometry to its new one.
fn plan_of(
    paths: &[PathBuf],
    opts: &ReshapeOptions,
    step: RevertStep,
    sb: &SuperblockV1,
    members: Vec<String>,
    note: String,
) -> Result<Plan> {
    let level = Level::from_md(sb.level).map_err(|e| invalid!("{e}"))?;
    let layout = |l| Layout::from_md(level, l).map_err(|e| invalid!("layout: {e}"));
    let active = sb.feature_map.contains(FeatureMap::RESHAPE_ACTIVE);
    let old_disks = u32::try_from(i64::from(sb.raid_disks) - i64::from(sb.delta_disks))
        .map_err(|_| invalid!("raid_disks"))?;
    let g = super::geometry(
        level,
        layout(sb.layout)?,
        sb.raid_disks,
        u64::from(sb.chunksize) * SECTOR_SIZE,
        sb.size,
    )?;
    Ok(Plan {
        kind: Kind::Revert(step),
        uuid: sb.set_uuid,
        level,
        old_disks: if active { old_disks } else { sb.raid_disks },
        new_disks: sb.raid_disks,
        old_layout: layout(if active { sb.new_layout } else { sb.layout })?,
        new_layout: layout(sb.layout)?,
        old_chunk_bytes: u64::from(if active { sb.new_chunk } else { sb.chunksize }) * SECTOR_SIZE,
        new_chunk_bytes: u64::from(sb.chunksize) * SECTOR_SIZE,
        new_offset: i64::from(sb.new_offset),
        start: sb.reshape_position * SECTOR_SIZE,
        checkpoint: sb.reshape_position * SECTOR_SIZE,
        old_size: g.array_bytes(),
        new_size: g.array_bytes(),
        events: sb.events,
        members,
        notes: vec![note],
        backwards: false,
        journal: None,
        pinned: false,
        level_change: None,
        old_geo: g.clone(),
        new_geo: g,
        targets: Vec::new(),
        paths: paths.to_vec(),
        opts: opts.clone(),
    })
}

/// `str(plan)` of a revert: the steps and what a power cut at each loses.
pub(super) fn describe(p: &Plan, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let Kind::Revert(step) = p.kind else {
        return Ok(());
    };
    let geo = |d: u32, l: Layout, c: u64| format!("{d} members, {}, chunk {}", l.name(), human(c));
    let uuid = format_uuid(&p.uuid);
    let nothing_turn = "nothing (both directions describe the same bytes at the same \
                        checkpoint; a half-written turn is completed by the next run)";
    let mut k = 1;
    let mut step_line = |f: &mut fmt::Formatter<'_>, what: &str, loses: &str| {
        let r = writeln!(f, "   {k}. {what} -- {loses}");
        k += 1;
        r
    };
    match step {
        RevertStep::CleanUp => {
            writeln!(
                f,
                "the revert of {} array {uuid} had finished",
                p.level.name()
            )?;
            writeln!(f, "  steps (and what a power cut at each loses):")?;
            for m in &p.members {
                step_line(f, &format!("remove {m}"), "nothing (no reshape uses it)")?;
            }
        }
        RevertStep::Superblocks => {
            writeln!(
                f,
                "complete the interrupted revert of {} array {uuid}",
                p.level.name()
            )?;
            for m in &p.members {
                writeln!(f, "  update superblock of {m} (events {})", p.events)?;
            }
            writeln!(f, "  steps (and what a power cut at each loses):")?;
            step_line(
                f,
                "the lagging superblocks, turned around like the others, then fdatasync",
                nothing_turn,
            )?;
            step_line(
                f,
                "run the reshape back to the old geometry (batches, checkpoints, finish)",
                "nothing (the engine's own crash safety; `--continue` or the kernel resumes)",
            )?;
        }
        _ => {
            let what = match step {
                RevertStep::Cancel => "cancel",
                RevertStep::Resume => "continue the revert of",
                _ => "revert",
            };
            writeln!(
                f,
                "{what} the interrupted reshape of {} array {uuid} (checkpoint {})",
                p.level.name(),
                human(p.checkpoint)
            )?;
            writeln!(
                f,
                "  reshape to: {}",
                geo(p.old_disks, p.old_layout, p.old_chunk_bytes)
            )?;
            writeln!(
                f,
                "  back to   : {}",
                geo(p.new_disks, p.new_layout, p.new_chunk_bytes)
            )?;
            writeln!(
                f,
                "  size      : {} -> {}",
                human(p.old_size),
                human(p.new_size)
            )?;
            if p.new_offset == 0 {
                writeln!(
                    f,
                    "  space     : in place; the rows being moved are journaled in {}",
                    p.journal
                        .as_deref()
                        .map_or_else(String::new, |j| j.display().to_string())
                )?;
            } else {
                writeln!(
                    f,
                    "  space     : the data moves back {} sectors ({}) to the old data offset",
                    p.new_offset.unsigned_abs(),
                    human(p.new_offset.unsigned_abs() * SECTOR_SIZE)
                )?;
            }
            for (i, m) in p.members.iter().enumerate() {
                writeln!(f, "  slot {i}: {m}")?;
            }
            writeln!(f, "  steps (and what a power cut at each loses):")?;
            match step {
                RevertStep::Cancel => {
                    step_line(
                        f,
                        "nothing was moved yet: every superblock back to the old geometry, \
                         events+1, fdatasync",
                        "nothing (a half-written update is completed by the next run)",
                    )?;
                }
                RevertStep::Turn {
                    advance_to,
                    write_back,
                } => {
                    if let Some(t) = advance_to {
                        step_line(
                            f,
                            &format!(
                                "advance the reshape to array byte {t}, a stripe boundary of \
                                 both geometries (its own batches and checkpoints)"
                            ),
                            "nothing (an ordinary reshape step; rerun --revert)",
                        )?;
                    }
                    if let Some((a, e)) = write_back {
                        step_line(
                            f,
                            &format!(
                                "write array bytes {a}..{e} in the old geometry back into \
                                 place, into rows no data still needs"
                            ),
                            "nothing (no data still needed is overwritten)",
                        )?;
                    }
                    step_line(
                        f,
                        "write the marker fastraid-revert-<uuid> beside the first member",
                        "nothing (it only tells a rerun of --revert that the turn is done)",
                    )?;
                    step_line(
                        f,
                        &format!(
                            "turn the reshape around in every superblock (members, layout, \
                             chunk and data offsets swapped, reshape_position {}), events+1, \
                             fdatasync",
                            p.start / SECTOR_SIZE
                        ),
                        nothing_turn,
                    )?;
                }
                _ => {}
            }
            if step != RevertStep::Cancel {
                step_line(
                    f,
                    "run the reshape back: batches in the old geometry, checkpoints",
                    "nothing (old copies stay intact until a checkpoint covers them; \
                     `--continue`, `--continue --revert` or the kernel resumes)",
                )?;
                step_line(
                    f,
                    "finish: superblocks in the old geometry, events+1 (members a grow added \
                     become spares)",
                    "nothing (a partial update is completed by the next run)",
                )?;
            }
        }
    }
    for n in &p.notes {
        writeln!(f, "  note: {n}")?;
    }
    Ok(())
}

// ================================================================================
// Execution
// ================================================================================

fn open_all(targets: &[Target]) -> Result<Vec<Member>> {
    targets
        .iter()
        .map(|t| Member::open_with(&t.path, true))
        .collect()
}

/// Write `targets`' superblocks with `events` (bitmaps first), then `fdatasync`.
fn write_superblocks(targets: Vec<Target>, events: u64) -> Result<()> {
    let devs = open_all(&targets)?;
    let mut eng = Engine {
        targets,
        devs,
        events,
        checkpoints: 0,
        new_row: (1, 0), // no checkpoint is recorded through this engine
    };
    eng.write_superblocks()
}

/// Advance the reshape with the engine until its on-disk checkpoint is `to`.
fn advance(
    c: &Current,
    to: u64,
    opts: &ReshapeOptions,
    progress: &mut dyn FnMut(&Progress) -> ControlFlow<()>,
) -> Result<()> {
    let g = geo(&c.plan);
    let sopts = ReshapeOptions {
        revert: false,
        continue_only: true,
        batch_bytes: g.s_b,
        checkpoint_bytes: 0,
        checkpoint_interval: Duration::ZERO,
        ..opts.clone()
    };
    let plan = super::plan(&c.plan.paths, &sopts)?;
    if plan.kind != Kind::Continue {
        return Err(invalid!("the reshape changed while it was being reverted"));
    }
    let fwd = !plan.backwards;
    let n_end = plan.new_size;
    // Where the engine records `to` (module docs of the engine: one reader unit behind what
    // it wrote, exactly at the batch in place).
    let past = if plan.new_offset == 0 || plan.level == Level::Raid10 {
        0 // RAID-10: the checkpoint is recorded right where the writes end
    } else {
        g.unit
    };
    let (mine, mut user) = (std::cell::Cell::new(false), false);
    let r = plan.execute(&mut |pr: &Progress| {
        let pos = if fwd { pr.done } else { n_end - pr.done };
        if (fwd && pos >= to + past) || (!fwd && pos + past <= to) {
            mine.set(true);
            return ControlFlow::Break(());
        }
        let shown = Progress {
            done: 0,
            total: pr.total,
            checkpoint: 0,
            rate: pr.rate,
        };
        if progress(&shown).is_break() {
            user = true;
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    });
    match r {
        Err(Error::Cancelled(_)) if mine.get() => Ok(()),
        Err(Error::Cancelled(_)) if user => Err(Error::Cancelled(
            "revert stopped while the reshape was advanced to a boundary where it can be turned \
             around: `fastraid grow --continue --revert` reverts it, `--continue` finishes it"
                .into(),
        )),
        Err(e) => Err(e),
        Ok(_) => Err(Error::Unsupported(
            "the reshape finished while it was advanced to a boundary where it could be turned \
             around: nothing left to revert"
                .into(),
        )),
    }
}

/// Write the old geometry's stripes of array bytes `[a, e)` to their place (the rows the
/// reverse reshape would write them to), read from the array as it is, then `fdatasync`.
fn write_back(rev: &Plan, a: u64, e: u64) -> Result<()> {
    let mut rd = ArrayReader::new(assemble::assemble_with_backup(
        &rev.paths,
        AssembleOptions::default(),
        rev.opts.backup_file.as_deref(),
    )?)?;
    let eng = Engine {
        devs: open_all(&rev.targets)?,
        targets: rev.targets.clone(),
        events: rev.events,
        checkpoints: 0,
        new_row: (
            stripe_bytes(&rev.new_geo),
            u64::from(rev.new_geo.chunk_sectors()),
        ),
    };
    let mut w = Writer::new(rev, &eng)?;
    w.read(&mut rd, rev, a, e)?;
    w.lay_out(rev, &eng, a, e)?;
    eng.sync_all()
}

/// Clear the header of fastraid's in-place journal (its mark stays): the batch it holds is
/// complete and covered by the checkpoint, and after the turn it would read as one in flight.
fn clear_journal(path: &Path) -> Result<()> {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| super::io_err(path, e))?;
    f.write_all_at(&[0u8; 100], 0)
        .and_then(|()| f.sync_data())
        .map_err(|e| super::io_err(path, e))
}

fn report(t0: Instant, events: u64, size: u64) -> Report {
    Report {
        resumed_from: 0,
        bytes_written: 0,
        total: 0,
        checkpoints: 0,
        events,
        size,
        seconds: t0.elapsed().as_secs_f64(),
    }
}

/// Run the revert, deciding each step from what is on the members (so a run stopped
/// anywhere is finished by running it again).
pub(super) fn execute(
    plan: &Plan,
    progress: &mut dyn FnMut(&Progress) -> ControlFlow<()>,
) -> Result<Report> {
    let t0 = Instant::now();
    let (paths, opts) = (&plan.paths, &plan.opts);
    let mut turned_here = false;
    let mut last = report(t0, plan.events, plan.new_size);
    for _ in 0..16 {
        if let Some(h) = half_turn(paths)? {
            turned_here |= !h.cancelled;
            last = report(t0, h.events, plan.new_size);
            write_superblocks(h.targets, h.events)?;
            continue;
        }
        let Some(c) = current(paths, opts)? else {
            clean_up(paths, &plan.uuid)?;
            return Ok(last);
        };
        if c.plan.kind != Kind::Continue {
            // A finish a crash left half-written.
            c.plan
                .execute(&mut |_: &Progress| ControlFlow::Continue(()))?;
            continue;
        }
        if turned_here || marker_matches(&c) || !opts.revert {
            // Run it back: the engine finishes the reverse like any reshape.
            let mut rep = c.plan.execute(progress)?;
            clean_up(paths, &plan.uuid)?;
            rep.seconds = t0.elapsed().as_secs_f64();
            return Ok(rep);
        }
        match decide(&c)? {
            Action::Cancel => {
                let mut targets = c.plan.targets.clone();
                for t in &mut targets {
                    turn(&mut t.sb, 0);
                    finalise(&mut t.sb);
                }
                if c.plan.level == Level::Raid10 && c.plan.new_disks > c.plan.old_disks {
                    // The grow had resized the bitmaps: back to the array's size.
                    super::raid10::resize_bitmaps(&mut targets, c.old_geometry_size / SECTOR_SIZE);
                }
                last = report(t0, c.plan.events + 1, c.old_geometry_size);
                write_superblocks(targets, c.plan.events + 1)?;
            }
            Action::Turn(t) if t.advance => advance(&c, t.checkpoint, opts, progress)?,
            Action::Turn(t) => {
                let rev = turned(&c, plan.kind, t.at);
                if let Some((a, e)) = t.write_back {
                    write_back(&rev, a, e)?;
                }
                if let Some(j) = rev.journal.as_deref().filter(|_| rev.new_offset == 0) {
                    if Journal::is_ours(j, &rev.uuid) {
                        clear_journal(j)?;
                    }
                }
                write_marker(&marker_path(paths, &rev.uuid), &marker_text(&rev.targets))?;
                write_superblocks(rev.targets, rev.events)?;
                turned_here = true;
            }
        }
    }
    Err(Error::Unsupported(
        "the revert did not settle after 16 steps (the members keep changing?): stopped".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sb() -> SuperblockV1 {
        let mut s = SuperblockV1 {
            magic: crate::md::MD_SB_MAGIC,
            major_version: 1,
            feature_map: FeatureMap(0),
            pad0: 0,
            set_uuid: [7; 16],
            set_name: [0; 32],
            ctime_raw: 0,
            level: 5,
            layout: 2,
            size: 8192,
            chunksize: 128,
            raid_disks: 4,
            bitmap_offset: 0,
            new_level: 5,
            reshape_position: 768,
            delta_disks: 1,
            new_layout: 2,
            new_chunk: 128,
            new_offset: -384,
            data_offset: 2048,
            data_size: 10000,
            super_offset: 8,
            recovery_offset: 0,
            dev_number: 0,
            cnt_corrected_read: 0,
            device_uuid: [1; 16],
            devflags: 0,
            bblog_shift: 0,
            bblog_size: 0,
            bblog_offset: 0,
            utime_raw: 0,
            events: 10,
            resync_offset: u64::MAX,
            sb_csum: 0,
            max_dev: 4,
            pad3: [0; 32],
            dev_roles: vec![0, 1, 2, 3],
        };
        s.feature_map.set(FeatureMap::RESHAPE_ACTIVE, true);
        s.feature_map.set(FeatureMap::NEW_OFFSET, true);
        s
    }

    #[test]
    fn turning_twice_is_the_identity() {
        let orig = sb();
        let mut s = orig.clone();
        turn(&mut s, orig.reshape_position);
        assert_eq!((s.raid_disks, s.delta_disks), (3, -1));
        assert_eq!(
            (s.data_offset, s.new_offset, s.data_size),
            (1664, 384, 10384)
        );
        assert_eq!(s.data_offset as i64 + i64::from(s.new_offset), 2048);
        turn(&mut s, orig.reshape_position);
        assert!(same_array(&s, &orig));
        assert_eq!(s.data_offset, orig.data_offset);
        // Same width: the direction flag toggles instead.
        let mut w = orig.clone();
        w.raid_disks = 4;
        w.delta_disks = 0;
        w.new_chunk = 256;
        turn(&mut w, 0);
        assert!(w.feature_map.contains(FeatureMap::RESHAPE_BACKWARDS));
        assert_eq!((w.chunksize, w.new_chunk), (256, 128));
    }

    #[test]
    fn cancelling_gives_the_old_superblock() {
        let orig = sb();
        let mut s = orig.clone();
        turn(&mut s, 0);
        finalise(&mut s);
        assert_eq!(s.raid_disks, 3);
        assert_eq!(s.data_offset, 2048);
        assert_eq!(s.data_size, 10000);
        assert_eq!(s.dev_roles, vec![0, 1, 2, 0xffff]);
        assert!(!s.feature_map.contains(FeatureMap::RESHAPE_ACTIVE));
    }

    #[test]
    fn progress_needs_room() {
        // RAID-5 3 -> 4 reverted (4 -> 3 backwards), 64 KiB chunks: stripes 192/128 KiB.
        let (s3, s2, c) = (3 * 65536, 2 * 65536, 128);
        let size = 1000 * s2;
        assert!(engine_progresses(
            (s3, c),
            (s2, c),
            384,
            600 * s2,
            size,
            size,
            true
        ));
        // Same width (a layout change): stuck without room, either way round.
        let same = |off, back| engine_progresses((s3, c), (s3, c), off, 300 * s3, size, size, back);
        assert!(!same(8, true) && !same(8, false));
        assert!(same(1024, true) && same(1024, false));
    }
}
