//! Core scrub tests on synthetic member files made consistent by [`crate::resync`].

use super::*;
use crate::layout::Layout;
use crate::resync::{self, ResyncOptions, Target};
use std::fs::OpenOptions;

const CHUNK_SECTORS: u32 = 16; // 8 KiB
const STRIPES: u64 = 24;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

struct Array {
    geom: Geometry,
    paths: Vec<PathBuf>,
}

fn dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("fastraid-scrub-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A consistent array of random data: random member contents, then a resync.
fn make(tag: &str, level: Level, layout: u32, n: u32, seed: u64) -> Array {
    let layout = Layout::from_md(level, layout).unwrap();
    let dev_sectors = STRIPES * u64::from(CHUNK_SECTORS);
    let geom = Geometry::new(level, layout, n, CHUNK_SECTORS, dev_sectors, &[]).unwrap();
    let d = dir(tag);
    let mut rng = Rng(seed | 1);
    let paths: Vec<PathBuf> = (0..n).map(|m| d.join(format!("m{m}"))).collect();
    for p in &paths {
        let data: Vec<u8> = (0..dev_sectors * 512).map(|_| rng.next() as u8).collect();
        std::fs::write(p, data).unwrap();
    }
    let files: Vec<File> = paths
        .iter()
        .map(|p| OpenOptions::new().read(true).write(true).open(p).unwrap())
        .collect();
    let targets: Vec<Option<Target<'_>>> = files
        .iter()
        .map(|f| {
            Some(Target {
                file: f,
                data_offset: 0,
            })
        })
        .collect();
    resync::resync(
        &geom,
        &targets,
        0..u64::MAX,
        &ResyncOptions::new().unwrap(),
        &mut |_, _| ControlFlow::Continue(()),
    )
    .unwrap();
    Array { geom, paths }
}

fn members(a: &Array, writable: bool, missing: &[u32]) -> Vec<Option<ScrubMember>> {
    (0u32..)
        .zip(&a.paths)
        .map(|(m, p)| {
            if missing.contains(&m) {
                return None;
            }
            Some(ScrubMember {
                file: OpenOptions::new()
                    .read(true)
                    .write(writable)
                    .open(p)
                    .unwrap(),
                path: p.clone(),
                data_offset: 0,
                valid_bytes: u64::MAX,
                bad: vec![],
            })
        })
        .collect()
}

fn run(a: &Array, repair: bool, prefer: Option<u32>, missing: &[u32]) -> Report {
    let mut o = ScrubOptions::new().unwrap();
    o.repair = repair;
    o.prefer = prefer;
    o.checkpoint = Checkpoint::Off;
    o.batch_bytes = 3 * 8192; // several batches
    let ms = members(a, repair, missing);
    scrub(&a.geom, &ms, "t", &o, &mut |_| ControlFlow::Continue(())).unwrap()
}

/// XOR `len` random non-zero bytes into member `m` at data byte `off`; returns the range.
fn corrupt(a: &Array, rng: &mut Rng, m: u32, off: u64, len: u64) {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&a.paths[m as usize])
        .unwrap();
    let mut b = vec![0u8; len as usize];
    f.read_exact_at(&mut b, off).unwrap();
    for x in &mut b {
        *x ^= (rng.below(255) + 1) as u8;
    }
    f.write_all_at(&b, off).unwrap();
}

fn snapshot(a: &Array) -> Vec<Vec<u8>> {
    a.paths.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

#[test]
fn raid6_names_the_single_wrong_member_in_every_layout() {
    for (li, layout) in [0u32, 1, 2, 3, 4, 5, 8, 9, 10, 16, 18]
        .into_iter()
        .enumerate()
    {
        let n = 5 + (li as u32 % 3);
        let a = make(
            &format!("r6-{layout}"),
            Level::Raid6,
            layout,
            n,
            11 + layout as u64,
        );
        assert_eq!(run(&a, false, None, &[]).mismatch_cnt, 0, "layout {layout}");
        let good = snapshot(&a);
        let mut rng = Rng(99 + layout as u64);
        let cb = u64::from(CHUNK_SECTORS) * 512;
        let mut expect = Vec::new();
        for stripe in [1u64, 5, 6, 23] {
            let m = rng.below(u64::from(n)) as u32;
            let off = rng.below(cb - 100);
            let len = 1 + rng.below(90);
            corrupt(&a, &mut rng, m, stripe * cb + off, len);
            expect.push((stripe, m, off, len));
        }
        let r = run(&a, false, None, &[]);
        assert_eq!(r.findings.len(), 4, "layout {layout}: {r:?}");
        for (f, (stripe, m, off, len)) in r.findings.iter().zip(&expect) {
            assert_eq!(f.unit, *stripe);
            assert_eq!(f.verdict, Verdict::Located, "layout {layout}: {f:?}");
            assert_eq!(f.suspects, vec![*m]);
            assert_eq!(
                f.ranges,
                vec![ByteRange {
                    member: Some(*m),
                    offset: *off,
                    len: *len
                }]
            );
        }
        let fixed = run(&a, true, None, &[]);
        assert_eq!(fixed.mismatch_cnt, r.mismatch_cnt);
        assert_eq!(
            snapshot(&a),
            good,
            "layout {layout}: repair restores every byte"
        );
        assert_eq!(run(&a, false, None, &[]).findings.len(), 0);
    }
}

#[test]
fn raid6_two_wrong_members_are_ambiguous_and_left_alone() {
    let a = make("r6-two", Level::Raid6, 2, 6, 5);
    let mut rng = Rng(3);
    corrupt(&a, &mut rng, 1, 8192 * 3 + 10, 40);
    corrupt(&a, &mut rng, 4, 8192 * 3 + 2000, 40);
    let before = snapshot(&a);
    let r = run(&a, true, None, &[]);
    assert_eq!(r.findings.len(), 1);
    assert_eq!(r.findings[0].verdict, Verdict::Ambiguous);
    assert!(r.findings[0].rewritten.is_empty());
    assert_eq!(snapshot(&a), before);
    assert_eq!(r.mismatch_cnt, 8);
}

#[test]
fn raid6_degraded_checks_without_locating() {
    let a = make("r6-deg", Level::Raid6, 2, 5, 8);
    let mut rng = Rng(4);
    corrupt(&a, &mut rng, 2, 8192 * 7 + 5, 3);
    for gone in 0..5u32 {
        let r = run(&a, false, None, &[gone]);
        // Stripe 7 is still checkable; whether member 2's bytes count depends on whether
        // member 2 is the missing one.
        if gone == 2 {
            assert_eq!(r.findings.len(), 0);
        } else {
            assert_eq!(r.findings.len(), 1, "missing {gone}");
            assert_eq!(r.findings[0].verdict, Verdict::Unlocated);
            assert_eq!(r.findings[0].ranges[0].offset, 5);
        }
        assert_eq!(r.units_unchecked, 0);
    }
    let r = run(&a, false, None, &[0, 1]);
    assert_eq!(r.units_unchecked, STRIPES);
}

#[test]
fn raid5_reports_the_stripe_and_repairs_parity_or_the_preferred_member() {
    let a = make("r5", Level::Raid5, 2, 4, 21);
    let good = snapshot(&a);
    let mut rng = Rng(5);
    corrupt(&a, &mut rng, 1, 8192 * 2 + 100, 7);
    let r = run(&a, false, None, &[]);
    assert_eq!(r.findings.len(), 1);
    let f = &r.findings[0];
    assert_eq!((f.verdict, f.unit), (Verdict::Unlocated, 2));
    assert_eq!(
        f.ranges,
        vec![ByteRange {
            member: None,
            offset: 100,
            len: 7
        }]
    );
    assert_eq!(r.mismatch_cnt, 8);
    // prefer = the member we know is wrong: rebuilt from the others, byte-identical.
    let fixed = run(&a, true, Some(1), &[]);
    assert_eq!(fixed.findings[0].rewritten, vec![1]);
    assert_eq!(snapshot(&a), good);
    // Default repair recomputes parity: consistent afterwards.
    corrupt(&a, &mut rng, 0, 8192 * 9, 9);
    run(&a, true, None, &[]);
    assert_eq!(run(&a, false, None, &[]).mismatch_cnt, 0);
}

#[test]
fn mirrors_majority_prefer_and_two_copies() {
    let a = make("r1", Level::Raid1, 0, 3, 31);
    let good = snapshot(&a);
    let mut rng = Rng(6);
    corrupt(&a, &mut rng, 2, 70_000, 33);
    let r = run(&a, false, None, &[]);
    assert_eq!(r.findings.len(), 1);
    let f = &r.findings[0];
    assert_eq!(
        (f.verdict, f.unit, &f.suspects[..]),
        (Verdict::Located, 1, &[2u32][..])
    );
    assert_eq!(f.ranges[0].offset, 70_000 - 65536);
    run(&a, true, None, &[]);
    assert_eq!(snapshot(&a), good);
    // Two copies (one missing): unlocated without prefer, fixed from the preferred one.
    corrupt(&a, &mut rng, 1, 100, 5);
    let r = run(&a, true, None, &[2]);
    assert_eq!(r.findings[0].verdict, Verdict::Unlocated);
    assert!(r.findings[0].rewritten.is_empty());
    let r = run(&a, true, Some(0), &[2]);
    assert_eq!(r.findings[0].rewritten, vec![1]);
    assert_eq!(snapshot(&a)[..2], good[..2]);
}

#[test]
fn raid10_far_copies() {
    for layout in [0x102u32, 0x201, 0x10201] {
        let a = make(&format!("r10-{layout}"), Level::Raid10, layout, 4, 41);
        let good = snapshot(&a);
        let mut rng = Rng(7);
        corrupt(&a, &mut rng, 3, 8192 * 4 + 17, 11);
        let r = run(&a, false, None, &[]);
        assert_eq!(r.findings.len(), 1, "{layout:#x}");
        assert_eq!(r.findings[0].verdict, Verdict::Unlocated);
        let m = r.findings[0]
            .locations
            .iter()
            .map(|l| l.0)
            .collect::<Vec<_>>();
        assert!(m.contains(&3));
        run(&a, true, Some(3 ^ 1), &[]); // may not hold the chunk; then nothing is preferred
        let other = r.findings[0].locations.iter().find(|l| l.0 != 3).unwrap().0;
        run(&a, true, Some(other), &[]);
        assert_eq!(snapshot(&a), good, "{layout:#x}");
    }
}

#[test]
fn bad_arguments_are_errors() {
    let a = make("bad", Level::Raid6, 2, 4, 1);
    let ms = members(&a, false, &[]);
    let mut o = ScrubOptions::new().unwrap();
    o.checkpoint = Checkpoint::Off;
    o.prefer = Some(1);
    let e = scrub(&a.geom, &ms, "t", &o, &mut |_| ControlFlow::Continue(()));
    assert!(matches!(e, Err(Error::InvalidArgument(_))));
    o.prefer = None;
    let e = scrub(&a.geom, &ms[..3], "t", &o, &mut |_| {
        ControlFlow::Continue(())
    });
    assert!(matches!(e, Err(Error::InvalidArgument(_))));
}

#[test]
fn cancel_and_resume_gives_the_same_report() {
    let a = make("resume", Level::Raid6, 2, 5, 77);
    let mut rng = Rng(8);
    for s in [0u64, 3, 9, 15, 22] {
        let m = rng.below(5) as u32;
        corrupt(&a, &mut rng, m, s * 8192 + 40, 20);
    }
    let full = run(&a, false, None, &[]);
    let ck = dir("resume").join("ck");
    let mut o = ScrubOptions::new().unwrap();
    o.checkpoint = Checkpoint::Path(ck.clone());
    o.checkpoint_interval = Duration::ZERO;
    o.batch_bytes = 8192;
    let ms = members(&a, false, &[]);
    let mut calls = 0;
    let e = scrub(&a.geom, &ms, "t", &o, &mut |_| {
        calls += 1;
        if calls == 10 {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    });
    assert!(matches!(e, Err(Error::Cancelled(_))));
    o.resume = true;
    let r = scrub(&a.geom, &ms, "t", &o, &mut |_| ControlFlow::Continue(())).unwrap();
    assert_eq!(r.resumed_at, 10);
    assert_eq!(r.findings, full.findings);
    assert_eq!(r.mismatch_cnt, full.mismatch_cnt);
    assert!(!ck.exists());
    // A checkpoint for other options is refused.
    o.resume = false;
    let mut calls = 0;
    let _ = scrub(&a.geom, &ms, "t", &o, &mut |_| {
        calls += 1;
        if calls == 2 {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    });
    o.resume = true;
    o.unresolved = Some(Unresolved::Md);
    let e = scrub(&a.geom, &ms, "t", &o, &mut |_| ControlFlow::Continue(()));
    assert!(matches!(e, Err(Error::InvalidArgument(_))));
}
