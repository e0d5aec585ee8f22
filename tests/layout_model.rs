//! `fastraid::layout` against an independent model of md's layouts.
//!
//! The model does not use the mapping formulas. It *draws* each array the way
//! md-format.md §5 describes it in words: for RAID4/5/6 it walks the stripes one by one,
//! moving the parity cell left or right as the layout name says, and deals the chunk
//! labels D0, D1 ... into the free cells (in member order for "asymmetric" layouts, from
//! just after the parity for "symmetric" ones); RAID0 deals chunks to members zone by zone
//! with a write cursor per member; RAID10 fills a grid row by row with `near` copies and
//! then copies it `far` times further down. The library's answers are compared with the
//! drawings for random geometries, and the drawings' own properties (every chunk placed
//! once, nothing overlapping) are checked too.

use std::collections::{HashMap, HashSet};

use fastraid::layout::*;
use proptest::prelude::*;

// ================================================================================
// Model: RAID4/5/6 drawn stripe by stripe
// ================================================================================

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cell {
    D(u64),
    P,
    Q,
}

/// How the parity cell moves from one stripe to the next.
#[derive(Clone, Copy)]
enum Motion {
    /// Starts on `start`, one member to the left each stripe (wrapping).
    Left {
        start: u32,
    },
    /// Starts on `start`, one member to the right each stripe (wrapping).
    Right {
        start: u32,
    },
    Fixed(u32),
}

/// Where data goes once the parity cells are set.
#[derive(Clone, Copy, PartialEq)]
enum Fill {
    /// Free cells in member order.
    MemberOrder,
    /// Free cells starting just after `after` (P, or Q when Q follows P), wrapping.
    After,
}

#[derive(Clone, Copy, PartialEq)]
enum QRule {
    None,
    /// Q in the cell after P; P on the last member puts Q on member 0.
    AfterP,
    /// Q in the cell before P (wrapping).
    BeforeP,
    /// Q on the last member; the rest is a RAID5 drawing over `n − 1` members.
    Last,
}

struct Recipe {
    motion: Motion,
    q: QRule,
    fill: Fill,
    ddf: bool,
}

/// Describe a layout in the words of md-format.md §5.3 (not its formulas).
fn recipe(level: Level, layout: Layout, n: u32) -> Recipe {
    let last = n - 1;
    let r = |motion, q, fill| Recipe {
        motion,
        q,
        fill,
        ddf: false,
    };
    match (level, layout) {
        (Level::Raid4, _) => r(Motion::Fixed(last), QRule::None, Fill::MemberOrder),
        (_, Layout::Raid5(l)) => {
            use Raid5Layout::*;
            match l {
                LeftAsymmetric => r(Motion::Left { start: last }, QRule::None, Fill::MemberOrder),
                RightAsymmetric => r(Motion::Right { start: 0 }, QRule::None, Fill::MemberOrder),
                LeftSymmetric => r(Motion::Left { start: last }, QRule::None, Fill::After),
                RightSymmetric => r(Motion::Right { start: 0 }, QRule::None, Fill::After),
                ParityFirst => r(Motion::Fixed(0), QRule::None, Fill::MemberOrder),
                ParityLast => r(Motion::Fixed(last), QRule::None, Fill::MemberOrder),
            }
        }
        (_, Layout::Raid6(l)) => {
            use Raid6Layout::*;
            let l5 = |m: Motion, f: Fill| r(m, QRule::Last, f);
            let mut x = match l {
                LeftAsymmetric => r(
                    Motion::Left { start: last },
                    QRule::AfterP,
                    Fill::MemberOrder,
                ),
                RightAsymmetric => r(Motion::Right { start: 0 }, QRule::AfterP, Fill::MemberOrder),
                LeftSymmetric => r(Motion::Left { start: last }, QRule::AfterP, Fill::After),
                RightSymmetric => r(Motion::Right { start: 0 }, QRule::AfterP, Fill::After),
                ParityFirst => r(Motion::Fixed(0), QRule::AfterP, Fill::MemberOrder),
                ParityLast => r(Motion::Fixed(n - 2), QRule::AfterP, Fill::MemberOrder),
                DdfZeroRestart => r(Motion::Right { start: 0 }, QRule::AfterP, Fill::MemberOrder),
                // "N-restart": the first stripe already has P one step left of the end.
                DdfNRestart => r(
                    Motion::Left { start: n - 2 },
                    QRule::AfterP,
                    Fill::MemberOrder,
                ),
                DdfNContinue => r(Motion::Left { start: last }, QRule::BeforeP, Fill::After),
                LeftAsymmetric6 => l5(Motion::Left { start: n - 2 }, Fill::MemberOrder),
                RightAsymmetric6 => l5(Motion::Right { start: 0 }, Fill::MemberOrder),
                LeftSymmetric6 => l5(Motion::Left { start: n - 2 }, Fill::After),
                RightSymmetric6 => l5(Motion::Right { start: 0 }, Fill::After),
                ParityFirst6 => l5(Motion::Fixed(0), Fill::MemberOrder),
            };
            x.ddf = l.is_ddf();
            x
        }
        _ => unreachable!("not a parity level"),
    }
}

/// A drawn RAID4/5/6 array: `rows[stripe][member]` and each row's syndrome slots.
struct ParityModel {
    rows: Vec<Vec<Cell>>,
    /// `slots[stripe][member]` for data members.
    slots: Vec<Vec<Option<u32>>>,
    data_disks: u64,
    syndrome_disks: u32,
}

fn draw_parity(level: Level, layout: Layout, n: u32, stripes: u64) -> ParityModel {
    let rec = recipe(level, layout, n);
    // Members the parity rotates over (all but the fixed Q member for the -6 layouts).
    let width = if rec.q == QRule::Last { n - 1 } else { n };
    let parity_count = if level == Level::Raid6 { 2 } else { 1 };
    let data_disks = u64::from(n - parity_count);
    let mut p = match rec.motion {
        Motion::Left { start } | Motion::Right { start } => start,
        Motion::Fixed(m) => m,
    };
    let mut rows = Vec::new();
    let mut slots = Vec::new();
    let mut label = 0u64;
    for _ in 0..stripes {
        let mut row: Vec<Option<Cell>> = vec![None; n as usize];
        row[p as usize] = Some(Cell::P);
        let q = match rec.q {
            QRule::None => None,
            QRule::AfterP => Some(if p == n - 1 { 0 } else { p + 1 }),
            QRule::BeforeP => Some(if p == 0 { n - 1 } else { p - 1 }),
            QRule::Last => Some(n - 1),
        };
        if let Some(q) = q {
            row[q as usize] = Some(Cell::Q);
        }
        // Order in which free cells receive data.
        let order: Vec<u32> = match rec.fill {
            Fill::MemberOrder => (0..width).collect(),
            Fill::After => {
                // Start after P, or after Q when Q sits right after P (md's symmetric RAID6).
                let first = match rec.q {
                    QRule::AfterP => (p + 2) % width,
                    _ => (p + 1) % width,
                };
                (0..width).map(|i| (first + i) % width).collect()
            }
        };
        for m in order {
            if row[m as usize].is_none() {
                row[m as usize] = Some(Cell::D(label));
                label += 1;
            }
        }
        let row: Vec<Cell> = row
            .into_iter()
            .map(|c| c.expect("every cell drawn"))
            .collect();
        // Syndrome slots: DDF by member; md: walk from the member after Q, skipping P and Q.
        let mut srow = vec![None; n as usize];
        if let Some(q) = q {
            if rec.ddf {
                for m in 0..n {
                    if matches!(row[m as usize], Cell::D(_)) {
                        srow[m as usize] = Some(m);
                    }
                }
            } else {
                let mut j = 0;
                for i in 1..=n {
                    let m = (q + i) % n;
                    if matches!(row[m as usize], Cell::D(_)) {
                        srow[m as usize] = Some(j);
                        j += 1;
                    }
                }
            }
        } else {
            for m in 0..n {
                if let Cell::D(l) = row[m as usize] {
                    srow[m as usize] = Some((l % data_disks) as u32);
                }
            }
        }
        rows.push(row);
        slots.push(srow);
        p = match rec.motion {
            Motion::Left { .. } => (p + width - 1) % width,
            Motion::Right { .. } => (p + 1) % width,
            Motion::Fixed(m) => m,
        };
    }
    let syndrome_disks = if rec.ddf { n } else { data_disks as u32 };
    ParityModel {
        rows,
        slots,
        data_disks,
        syndrome_disks,
    }
}

// ================================================================================
// Model: RAID0 dealt zone by zone, RAID10 grid, linear
// ================================================================================

/// `(member, device chunk)` for every array chunk of a RAID0 array.
fn draw_raid0(sizes_chunks: &[u64], alternate: bool) -> Vec<(u32, u64)> {
    let mut out = Vec::new();
    let mut cursor: Vec<u64> = vec![0; sizes_chunks.len()];
    let mut levels: Vec<u64> = sizes_chunks.to_vec();
    levels.sort_unstable();
    levels.dedup();
    let mut done = 0u64; // device chunks already used by every member still in play
    for level in levels {
        let members: Vec<u32> = (0..sizes_chunks.len() as u32)
            .filter(|&m| sizes_chunks[m as usize] > done)
            .collect();
        if members.is_empty() || level <= done {
            continue;
        }
        let zone_first = out.len() as u64;
        let zone_chunks = (level - done) * members.len() as u64;
        for z in 0..zone_chunks {
            // Original chooses by the array chunk number, alternate by the zone's own count.
            let pick = if alternate { z } else { zone_first + z };
            let m = members[(pick % members.len() as u64) as usize];
            let c = cursor[m as usize].max(done);
            out.push((m, c));
            cursor[m as usize] = c + 1;
        }
        done = level;
    }
    out
}

/// RAID10 grid: `copies[chunk]` = every `(member, device row)` holding that chunk, for the
/// original far-set layout. Rows are device chunk rows.
fn draw_raid10(
    n: u32,
    near: u32,
    far: u32,
    offset: bool,
    chunks: u64,
    far_rows: u64,
) -> Vec<Vec<(u32, u64)>> {
    let mut copies: Vec<Vec<(u32, u64)>> = vec![Vec::new(); chunks as usize];
    // Near copies: the chunk sequence with each label repeated `near` times, row by row.
    let mut cell = 0u64;
    let mut near_cells: Vec<Vec<(u32, u64)>> = vec![Vec::new(); chunks as usize];
    for ch in 0..chunks {
        for _ in 0..near {
            near_cells[ch as usize].push(((cell % u64::from(n)) as u32, cell / u64::from(n)));
            cell += 1;
        }
    }
    for ch in 0..chunks as usize {
        for &(m, row) in &near_cells[ch] {
            for f in 0..far {
                // Each far copy shifts `near` members right, wrapping over all members.
                let member = (m + f * near) % n;
                let r = if offset {
                    row * u64::from(far) + u64::from(f)
                } else {
                    row + u64::from(f) * far_rows
                };
                copies[ch].push((member, r));
            }
        }
    }
    copies
}

// ================================================================================
// Strategies
// ================================================================================

fn parity_geometry() -> impl Strategy<Value = (Level, Layout, u32, u32, u64)> {
    let level = prop_oneof![Just(Level::Raid4), Just(Level::Raid5), Just(Level::Raid6)];
    (level, 0usize..14, 2u32..12, 0u32..3, 0u64..40).prop_map(|(level, li, n, cexp, stripes)| {
        let (layout, n) = match level {
            Level::Raid4 => (Layout::None, n),
            Level::Raid5 => (Layout::Raid5(Raid5Layout::ALL[li % 6]), n),
            _ => (Layout::Raid6(Raid6Layout::ALL[li]), n.max(4)),
        };
        let c = 8u32 << cexp;
        // A ragged tail past the last whole chunk must be ignored.
        let dev = stripes * u64::from(c) + u64::from(c / 2);
        (level, layout, n, c, dev)
    })
}

fn raid10_layout() -> impl Strategy<Value = (Raid10Layout, u32)> {
    (1u8..4, 1u8..4, any::<bool>(), 0u8..3, 2u32..13).prop_filter_map(
        "copies must be 2..=n",
        |(near, far, offset, far_set, n)| {
            let l = Raid10Layout {
                near,
                far,
                offset: offset && far > 1,
                far_set,
            };
            (l.copies() >= 2 && l.copies() <= n).then_some((l, n))
        },
    )
}

// ================================================================================
// Literal examples from md-format.md
// ================================================================================

fn labels(g: &Geometry, stripes: u64) -> String {
    let dd = u64::from(g.data_disks().unwrap());
    (0..stripes)
        .map(|s| {
            let r = g.stripe_roles(s).unwrap();
            r.roles
                .iter()
                .map(|role| match role {
                    Role::Data { index, .. } => format!("D{}", s * dd + u64::from(*index)),
                    Role::P => "P".to_owned(),
                    Role::Q => "Q".to_owned(),
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn doc(s: &str) -> String {
    s.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn doc_examples_raid5_raid6() {
    let g =
        |level: i32, layout: u32, n: u32| Geometry::from_md(level, layout, n, 8, 800, &[]).unwrap();
    let la5 = " D0  D1  D2  P\n D3  D4  P   D5\n D6  P   D7  D8\n P   D9  D10 D11";
    let ls5 = " D0  D1  D2  P\n D4  D5  P   D3\n D8  P   D6  D7\n P   D9  D10 D11";
    let ls6 = " Q   D0  D1  D2  P\n D3  D4  D5  P   Q\n D7  D8  P   Q   D6\n D11 P   Q   D9  D10\n P   Q   D12 D13 D14";
    let nc6 = " D0  D1  D2  Q   P\n D4  D5  Q   P   D3\n D8  Q   P   D6  D7\n Q   P   D9  D10 D11";
    assert_eq!(labels(&g(5, 2, 4), 4), doc(ls5));
    assert_eq!(labels(&g(5, 0, 4), 4), doc(la5));
    assert_eq!(labels(&g(6, 2, 5), 5), doc(ls6));
    assert_eq!(labels(&g(6, 10, 5), 4), doc(nc6));
    // The model draws the same pictures.
    for (level, layout, n, pic) in [
        (
            Level::Raid5,
            Layout::Raid5(Raid5Layout::LeftSymmetric),
            4,
            ls5,
        ),
        (
            Level::Raid5,
            Layout::Raid5(Raid5Layout::LeftAsymmetric),
            4,
            la5,
        ),
        (
            Level::Raid6,
            Layout::Raid6(Raid6Layout::LeftSymmetric),
            5,
            ls6,
        ),
        (
            Level::Raid6,
            Layout::Raid6(Raid6Layout::DdfNContinue),
            5,
            nc6,
        ),
    ] {
        let m = draw_parity(level, layout, n, doc(pic).lines().count() as u64);
        let drawn = m
            .rows
            .iter()
            .map(|r| {
                r.iter()
                    .map(|c| match c {
                        Cell::D(l) => format!("D{l}"),
                        Cell::P => "P".into(),
                        Cell::Q => "Q".into(),
                    })
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect::<Vec<_>>()
            .join("\n");
        assert_eq!(drawn, doc(pic));
    }
}

#[test]
fn doc_example_syndrome_slots() {
    // "layout 0, 5 disks, stripe 2 = D6 D7 P Q D8: slots D8→0, D6→1, D7→2"
    let g = Geometry::from_md(6, 0, 5, 8, 800, &[]).unwrap();
    assert_eq!(labels(&g, 3).lines().nth(2), Some("D6 D7 P Q D8"));
    let slot_of = |chunk: u64| g.stripe_map(chunk * 8).unwrap().slot;
    assert_eq!((slot_of(8), slot_of(6), slot_of(7)), (0, 1, 2));
    let r = g.stripe_roles(2).unwrap();
    assert_eq!(r.members_by_slot(), vec![Some(4), Some(0), Some(1)]);
    assert_eq!(r.members_by_index(), vec![0, 1, 4]);
}

#[test]
fn doc_examples_raid10() {
    // C = 1 chunk of 8 sectors, 8 chunks per device; cells show array chunk numbers.
    let grid = |layout: u32, n: u32, rows: &[u64]| -> String {
        let g = Geometry::from_md(10, layout, n, 8, 64, &[]).unwrap();
        rows.iter()
            .map(|&r| {
                (0..n)
                    .map(|m| match g.reverse(m, r * 8).unwrap() {
                        Content::Data { array_sector } => (array_sector / 8).to_string(),
                        other => format!("{other:?}"),
                    })
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(
        grid(0x102, 4, &[0, 1, 2]),
        doc(" 0  0  1  1\n 2  2  3  3\n 4  4  5  5")
    );
    assert_eq!(
        grid(0x102, 3, &[0, 1, 2]),
        doc(" 0  0  1\n 1  2  2\n 3  3  4")
    );
    assert_eq!(
        grid(0x201, 4, &[0, 1, 4]),
        doc(" 0  1  2  3\n 4  5  6  7\n 3  0  1  2")
    );
    assert_eq!(
        grid(0x10201, 4, &[0, 1, 2, 3]),
        doc(" 0  1  2  3\n 3  0  1  2\n 4  5  6  7\n 7  4  5  6")
    );
}

// ================================================================================
// Properties
// ================================================================================

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// RAID4/5/6: library == drawing, forward∘inverse = identity, no collisions.
    #[test]
    fn parity_matches_model((level, layout, n, c, dev) in parity_geometry()) {
        let g = Geometry::new(level, layout, n, c, dev, &[]).unwrap();
        let stripes = dev / u64::from(c);
        let model = draw_parity(level, layout, n, stripes);
        let c64 = u64::from(c);
        prop_assert_eq!(g.array_sectors(), stripes * c64 * model.data_disks);
        prop_assert_eq!(g.syndrome_disks(), Some(model.syndrome_disks));
        let mut where_chunk: HashMap<u64, (u64, u32)> = HashMap::new();
        for (s, row) in model.rows.iter().enumerate() {
            let s = s as u64;
            let roles = g.stripe_roles(s).unwrap();
            prop_assert_eq!(roles.syndrome_disks, model.syndrome_disks);
            for (m, cell) in row.iter().enumerate() {
                let role = roles.roles[m];
                match *cell {
                    Cell::D(label) => {
                        prop_assert!(where_chunk.insert(label, (s, m as u32)).is_none());
                        let slot = model.slots[s as usize][m].unwrap();
                        prop_assert_eq!(role, Role::Data { index: (label % model.data_disks) as u32, slot });
                    }
                    Cell::P => { prop_assert_eq!(role, Role::P); prop_assert_eq!(roles.p_member, m as u32); }
                    Cell::Q => { prop_assert_eq!(role, Role::Q); prop_assert_eq!(roles.q_member, Some(m as u32)); }
                }
                // Inverse at the first, a middle and the last sector of the cell.
                for off in [0, c64 / 3, c64 - 1] {
                    let want = match *cell {
                        Cell::D(label) => Content::Data { array_sector: label * c64 + off },
                        Cell::P => Content::P { stripe: s },
                        Cell::Q => Content::Q { stripe: s },
                    };
                    prop_assert_eq!(g.reverse(m as u32, s * c64 + off).unwrap(), want);
                }
            }
        }
        prop_assert_eq!(where_chunk.len() as u64, stripes * model.data_disks);
        // Forward for every chunk, at a few offsets.
        for (&label, &(s, m)) in &where_chunk {
            for off in [0, 1, c64 - 1] {
                let a = label * c64 + off;
                let sm = g.stripe_map(a).unwrap();
                prop_assert_eq!((sm.stripe, sm.data_member, sm.dev_sector), (s, m, s * c64 + off));
                prop_assert_eq!(sm.slot, model.slots[s as usize][m as usize].unwrap());
                prop_assert_ne!(Some(sm.data_member), sm.q_member);
                prop_assert_ne!(sm.data_member, sm.p_member);
                prop_assert_eq!(g.copies_of(a).unwrap(), vec![Location { member: m, dev_sector: s * c64 + off }]);
            }
        }
        // Space past the last stripe is unused; past the array is an error.
        prop_assert_eq!(g.reverse(0, stripes * c64).unwrap(), Content::Unused);
        prop_assert!(g.locate(g.array_sectors()).is_err());
        prop_assert!(g.reverse(n, 0).is_err());
        prop_assert!(g.stripe_roles(stripes).is_err());
    }

    /// RAID0: library == zone-by-zone dealing, both layouts, inverse included.
    #[test]
    fn raid0_matches_model(
        sizes in prop::collection::vec(0u64..12, 1..6),
        cexp in 0u32..3,
        tail in 0u64..8,
        alternate in any::<bool>(),
    ) {
        let c = 8u32 << cexp;
        let c64 = u64::from(c);
        let members: Vec<u64> = sizes.iter().map(|&s| s * c64 + tail.min(c64 - 1)).collect();
        let layout = if alternate { Raid0Layout::Alternate } else { Raid0Layout::Original };
        let n = members.len() as u32;
        let g = Geometry::new(Level::Raid0, Layout::Raid0(layout), n, c, 0, &members).unwrap();
        let model = draw_raid0(&sizes, alternate);
        prop_assert_eq!(g.array_sectors(), model.len() as u64 * c64);
        let mut seen = HashSet::new();
        for (chunk, &(m, dc)) in model.iter().enumerate() {
            prop_assert!(seen.insert((m, dc)));
            for off in [0, c64 / 2, c64 - 1] {
                let a = chunk as u64 * c64 + off;
                let loc = Location { member: m, dev_sector: dc * c64 + off };
                prop_assert_eq!(g.locate(a).unwrap(), loc);
                prop_assert_eq!(g.reverse(m, loc.dev_sector).unwrap(), Content::Data { array_sector: a });
            }
        }
        for m in 0..n {
            let used = sizes[m as usize] * c64;
            prop_assert_eq!(g.member_used_sectors(m).unwrap(), used);
            prop_assert_eq!(g.reverse(m, used).unwrap(), Content::Unused);
        }
        // Unspecified is accepted exactly when the two layouts agree everywhere.
        let other = draw_raid0(&sizes, !alternate);
        let unspecified = Geometry::new(Level::Raid0, Layout::Raid0(Raid0Layout::Unspecified), n, c, 0, &members);
        if let Ok(u) = unspecified {
            prop_assert_eq!(&model, &other);
            for chunk in 0..model.len() as u64 {
                prop_assert_eq!(u.locate(chunk * c64).unwrap(), g.locate(chunk * c64).unwrap());
            }
        }
    }

    /// RAID10 (original far sets): library == grid drawing; inverse of every copy.
    #[test]
    fn raid10_matches_model((l, n) in raid10_layout(), chunks_per_dev in 0u64..24, cexp in 0u32..2) {
        let l = Raid10Layout { far_set: 0, ..l };
        let c = 8u32 << cexp;
        let c64 = u64::from(c);
        let dev = chunks_per_dev * c64 + 3;
        let g = match Geometry::new(Level::Raid10, Layout::Raid10(l), n, c, dev, &[]) {
            Ok(g) => g,
            Err(GeometryError::Raid10Collision { .. }) => {
                // Only offset layouts whose near groups wrap rows are refused.
                prop_assert!(l.offset && n % u32::from(l.near) != 0);
                return Ok(());
            }
            Err(e) => return Err(TestCaseError::fail(format!("{e}"))),
        };
        // Sizes per md-format.md §5.5, evaluated independently.
        let (nc, fc, n64) = (u64::from(l.near), u64::from(l.far), u64::from(n));
        let array_chunks = (chunks_per_dev / fc) * n64 / nc;
        let used = (array_chunks * nc * fc).div_ceil(n64);
        let size_chunks = (used / fc) * n64 / nc;
        prop_assert_eq!(g.array_sectors(), size_chunks * c64);
        let far_rows = used / fc;
        let model = draw_raid10(n, u32::from(l.near), u32::from(l.far), l.offset, size_chunks, far_rows);
        let mut seen = HashSet::new();
        for (chunk, cells) in model.iter().enumerate() {
            for off in [0, c64 - 1] {
                let a = chunk as u64 * c64 + off;
                let want: Vec<Location> =
                    cells.iter().map(|&(m, r)| Location { member: m, dev_sector: r * c64 + off }).collect();
                let got = g.copies_of(a).unwrap();
                prop_assert_eq!(&got, &want);
                for loc in got {
                    prop_assert!(loc.dev_sector < dev);
                    prop_assert!(loc.dev_sector < g.member_used_sectors(loc.member).unwrap());
                    prop_assert!(seen.insert(loc));
                    prop_assert_eq!(g.reverse(loc.member, loc.dev_sector).unwrap(), Content::Data { array_sector: a });
                }
            }
        }
    }

    /// RAID10 with any far-set variant: every sector's copies are distinct places, each
    /// maps back, and every used place of a member maps forward to itself.
    #[test]
    fn raid10_far_sets_consistent((l, n) in raid10_layout(), chunks_per_dev in 0u64..20) {
        let c = 8u32;
        let dev = chunks_per_dev * 8;
        let Ok(g) = Geometry::new(Level::Raid10, Layout::Raid10(l), n, c, dev, &[]) else {
            return Ok(());
        };
        let mut seen = HashSet::new();
        for chunk in 0..g.array_sectors() / 8 {
            let copies = g.copies_of(chunk * 8 + 5).unwrap();
            prop_assert_eq!(copies.len() as u32, l.copies());
            for loc in copies {
                prop_assert!(loc.dev_sector < dev);
                prop_assert!(seen.insert(loc));
                prop_assert_eq!(g.reverse(loc.member, loc.dev_sector).unwrap(), Content::Data { array_sector: chunk * 8 + 5 });
            }
            // With whole far sets (n a multiple of the set size) a far copy stays in its set.
            let set = match l.far_set { 0 => n, 1 => n / u32::from(l.far), _ => l.copies() };
            if l.far > 1 && n % set == 0 {
                let copies = g.copies_of(chunk * 8).unwrap();
                for group in copies.chunks(usize::from(l.far)) {
                    prop_assert!(group.iter().all(|x| x.member / set == group[0].member / set));
                }
            }
        }
        for m in 0..n {
            for s in (0..dev).step_by(8) {
                match g.reverse(m, s + 5).unwrap() {
                    Content::Data { array_sector } => {
                        let back = g.copies_of(array_sector).unwrap();
                        let here = Location { member: m, dev_sector: s + 5 };
                        prop_assert!(back.contains(&here));
                    }
                    Content::Unused => {
                        let here = Location { member: m, dev_sector: s + 5 };
                        prop_assert!(!seen.contains(&here));
                    }
                    other => return Err(TestCaseError::fail(format!("{other:?}"))),
                }
            }
        }
    }

    /// Linear and RAID1.
    #[test]
    fn linear_and_raid1(sizes in prop::collection::vec(0u64..200, 1..6), c in prop_oneof![Just(0u32), Just(8), Just(24)], a_frac in 0.0f64..1.0) {
        let n = sizes.len() as u32;
        let g = Geometry::new(Level::Linear, Layout::None, n, c, 0, &sizes).unwrap();
        let rounded: Vec<u64> = sizes.iter().map(|&s| if c == 0 { s } else { s / u64::from(c) * u64::from(c) }).collect();
        prop_assert_eq!(g.array_sectors(), rounded.iter().sum::<u64>());
        let mut start = 0;
        for (m, &r) in rounded.iter().enumerate() {
            for s in [0, r / 2, r.saturating_sub(1)] {
                if s < r {
                    prop_assert_eq!(g.locate(start + s).unwrap(), Location { member: m as u32, dev_sector: s });
                    prop_assert_eq!(g.reverse(m as u32, s).unwrap(), Content::Data { array_sector: start + s });
                }
            }
            prop_assert_eq!(g.reverse(m as u32, r).unwrap(), Content::Unused);
            start += r;
        }
        let r1 = Geometry::new(Level::Raid1, Layout::None, n, 0, 1000, &[]).unwrap();
        let a = (a_frac * 1000.0) as u64;
        let copies = r1.copies_of(a).unwrap();
        prop_assert_eq!(copies, (0..n).map(|member| Location { member, dev_sector: a }).collect::<Vec<_>>());
        prop_assert_eq!(r1.reverse(n - 1, a).unwrap(), Content::Data { array_sector: a });
        prop_assert_eq!(r1.reverse(0, 1000).unwrap(), Content::Unused);
    }

    /// Extents tile the byte range, per copy, and agree with sector mapping.
    #[test]
    fn extents_tile_the_range(
        pick in 0usize..4,
        (level, layout, n, c, dev) in parity_geometry(),
        start_frac in 0.0f64..1.0,
        len_frac in 0.0f64..1.0,
    ) {
        let g = match pick {
            0 => Geometry::new(level, layout, n, c, dev, &[]).unwrap(),
            1 => Geometry::new(Level::Raid10, Layout::Raid10(Raid10Layout::near(2)), n.max(2), c, dev, &[]).unwrap(),
            2 => Geometry::new(Level::Raid0, Layout::Raid0(Raid0Layout::Alternate), n, c, 0,
                               &(0..u64::from(n)).map(|i| dev + i * u64::from(c) * 3).collect::<Vec<_>>()).unwrap(),
            _ => Geometry::new(Level::Raid1, Layout::None, n, 0, dev, &[]).unwrap(),
        };
        let size = g.array_bytes();
        let offset = (start_frac * size as f64) as u64 % (size + 1);
        let len = (len_frac * (size - offset) as f64) as u64;
        let ext = g.extents(offset, len).unwrap();
        for copy in 0..g.copies() {
            let mut pos = offset;
            for e in ext.iter().filter(|e| e.copy == copy) {
                prop_assert_eq!(e.array_offset, pos);
                prop_assert!(e.len > 0);
                // First and last byte of the piece map where sector mapping says.
                for b in [e.array_offset, e.array_offset + e.len - 1] {
                    let loc = g.copies_of(b / 512).unwrap()[copy as usize];
                    prop_assert_eq!(loc.member, e.member);
                    prop_assert_eq!(loc.dev_sector * 512 + b % 512, e.dev_offset + (b - e.array_offset));
                }
                pos += e.len;
            }
            prop_assert_eq!(pos, offset + len);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// Any numbers at all: `Err` or a geometry whose every query answers without panicking.
    #[test]
    fn arbitrary_input_never_panics(
        level in prop_oneof![any::<i32>(), -2i32..12],
        layout in prop_oneof![any::<u32>(), 0u32..24, 0u32..0x80000],
        raid_disks in prop_oneof![any::<u32>(), 0u32..40],
        chunk in prop_oneof![any::<u32>(), (0u32..32).prop_map(|e| 1u32.wrapping_shl(e)), 0u32..1000],
        dev in prop_oneof![any::<u64>(), 0u64..100_000],
        members in prop::collection::vec(prop_oneof![any::<u64>(), 0u64..100_000], 0..12),
        a in any::<u64>(),
        member in prop_oneof![any::<u32>(), 0u32..40],
        s in any::<u64>(),
        len in 0u64..(1 << 20),
    ) {
        let Ok(g) = Geometry::from_md(level, layout, raid_disks, chunk, dev, &members) else {
            return Ok(());
        };
        let size = g.array_sectors();
        for x in [a, a % size.max(1), size.saturating_sub(1), size] {
            let _ = g.locate(x);
            let _ = g.copies_of(x);
            let _ = g.stripe_map(x);
        }
        let _ = g.stripe_roles(s);
        let _ = g.stripe_roles(0);
        for m in [member, member % raid_disks.max(1)] {
            let _ = g.member_used_sectors(m);
            for y in [s, s % (dev.max(1)), 0] {
                if let Ok(Content::Data { array_sector }) = g.reverse(m, y) {
                    prop_assert!(array_sector < size);
                    let here = Location { member: m, dev_sector: y };
                    prop_assert!(g.copies_of(array_sector).unwrap().contains(&here));
                }
            }
        }
        let bytes = g.array_bytes();
        let _ = g.extents(a, len);
        let off = a % bytes.max(1);
        let _ = g.extents(off, len.min(bytes - off.min(bytes)));
        let _ = g.layout().name();
        let _ = Layout::from_md(g.level(), g.layout().md_number());
    }

    /// Valid geometries of any size, queried anywhere: no panic, and every copy of any
    /// array sector maps back to it.
    #[test]
    fn huge_geometries_round_trip(
        level in prop::sample::select(Level::ALL.to_vec()),
        pick in any::<prop::sample::Index>(),
        far_set in 0u8..3,
        n in 1u32..64,
        cexp in 3u32..24,
        dev in prop_oneof![any::<u64>(), 0u64..(u64::MAX / 512), (u64::MAX / 1024)..(u64::MAX / 512)],
        members in prop::collection::vec(prop_oneof![any::<u64>(), 0u64..(u64::MAX / 8192)], 1..8),
        a in any::<u64>(),
        member in 0u32..64,
        s in prop_oneof![any::<u64>(), Just(u64::MAX), 0u64..(1 << 40)],
        len in 0u64..(1 << 20),
    ) {
        let layout = match level {
            Level::Raid0 => Layout::Raid0(Raid0Layout::Alternate),
            Level::Raid5 => Layout::Raid5(*pick.get(&Raid5Layout::ALL)),
            Level::Raid6 => Layout::Raid6(*pick.get(&Raid6Layout::ALL)),
            Level::Raid10 => {
                let near = (pick.index(3) + 1) as u8;
                let far = (pick.index(7) % 3 + 1) as u8;
                Layout::Raid10(Raid10Layout { near, far, offset: pick.index(2) == 1, far_set })
            }
            _ => Layout::None,
        };
        let n = if matches!(level, Level::Raid0 | Level::Linear) { members.len() as u32 } else { n };
        let Ok(g) = Geometry::new(level, layout, n, 1 << cexp, dev, &members) else {
            return Ok(());
        };
        let size = g.array_sectors();
        if size > 0 {
            let x = a % size;
            for loc in g.copies_of(x).unwrap() {
                prop_assert_eq!(g.reverse(loc.member, loc.dev_sector).unwrap(), Content::Data { array_sector: x });
            }
            if let Ok(sm) = g.stripe_map(x) {
                let roles = g.stripe_roles(sm.stripe).unwrap();
                prop_assert_eq!(roles.roles[sm.p_member as usize], Role::P);
                prop_assert_eq!(g.reverse(sm.p_member, sm.dev_sector).unwrap(), Content::P { stripe: sm.stripe });
                if let Some(q) = sm.q_member {
                    prop_assert_eq!(g.reverse(q, sm.dev_sector).unwrap(), Content::Q { stripe: sm.stripe });
                }
            }
            let off = (a % g.array_bytes()).min(g.array_bytes() - 1);
            let _ = g.extents(off, len.min(g.array_bytes() - off));
        }
        let m = member % n;
        for y in [s, s % dev.max(1), dev, u64::MAX] {
            if let Ok(Content::Data { array_sector }) = g.reverse(m, y) {
                let here = Location { member: m, dev_sector: y };
                prop_assert!(g.copies_of(array_sector).unwrap().contains(&here));
            }
        }
        let _ = g.member_used_sectors(m);
    }

    /// Names and numbers convert both ways.
    #[test]
    fn layout_words_round_trip(level in prop_oneof![Just(Level::Raid5), Just(Level::Raid6), Just(Level::Raid10), Just(Level::Raid0)], word in prop_oneof![any::<u32>(), 0u32..0x80000]) {
        if let Ok(l) = Layout::from_md(level, word) {
            if level != Level::Raid0 || matches!(word, 1 | 2) {
                prop_assert_eq!(l.md_number(), word);
            }
            if let Ok(back) = Layout::from_name(level, &l.name()) {
                prop_assert_eq!(back, l);
            } else {
                // Only RAID10 words without an mdadm short name lack a parsable name.
                prop_assert!(matches!(l, Layout::Raid10(r) if r.name().is_none()));
            }
        }
    }
}
