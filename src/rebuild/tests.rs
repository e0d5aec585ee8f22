//! Rebuild tests on small arrays made by `create` over random member contents: the rebuilt
//! member's used data area must equal the original's byte for byte, the superblocks must
//! say "in sync", and a stopped rebuild must resume where its checkpoint says.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use super::*;
use crate::create::{self, CreateOptions};
use crate::layout::Layout;

const MIB: u64 = 1 << 20;

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("fastraid-rebuild-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn random_bytes(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut v = Vec::with_capacity(n + 8);
    while v.len() < n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(n);
    v
}

/// Creates an array over `n` members pre-filled with random bytes (so parity is computed).
fn make(tag: &str, level: Level, layout: Option<Layout>, n: usize, bytes: u64) -> Vec<PathBuf> {
    let d = tmpdir(tag);
    let paths: Vec<PathBuf> = (0..n).map(|i| d.join(format!("m{i}.img"))).collect();
    for (i, p) in paths.iter().enumerate() {
        std::fs::write(p, random_bytes(i as u64 + 7, bytes as usize)).unwrap();
    }
    let mut o = CreateOptions::new(level);
    o.layout = layout;
    o.chunk_bytes = 64 * 1024;
    o.force = true;
    let ms: Vec<Option<PathBuf>> = paths.iter().cloned().map(Some).collect();
    let p = create::plan(&ms, &o).unwrap();
    p.execute(&mut |_, _| ControlFlow::Continue(())).unwrap();
    paths
}

fn data_area(p: &Path, used: u64) -> Vec<u8> {
    let b = std::fs::read(p).unwrap();
    b[(2048 * 512) as usize..(2048 * 512 + used) as usize].to_vec()
}

fn used_bytes(paths: &[PathBuf], slot: u32) -> u64 {
    let asm = assemble(paths, AssembleOptions::default()).unwrap();
    asm.geometry.member_used_sectors(slot).unwrap() * 512
}

fn go() -> impl FnMut(&Progress) -> ControlFlow<()> {
    |_| ControlFlow::Continue(())
}

/// Lose `lost` members (files deleted), rebuild the first onto a new file; compare.
fn roundtrip(tag: &str, level: Level, layout: Option<Layout>, n: usize, lost: &[u32]) {
    let paths = make(tag, level, layout, n, 4 * MIB);
    let slot = lost[0];
    let used = used_bytes(&paths, slot);
    let want = data_area(&paths[slot as usize], used);
    for &l in lost {
        std::fs::remove_file(&paths[l as usize]).unwrap();
    }
    let survivors: Vec<&PathBuf> = (0..n)
        .filter(|i| !lost.contains(&(*i as u32)))
        .map(|i| &paths[i])
        .collect();
    let new = paths[0].with_file_name("new.img");
    let mut o = RebuildOptions::new().unwrap();
    o.slot = Some(slot);
    o.new = Some(new.clone());
    o.batch_bytes = 192 * 1024; // not a chunk multiple: pieces cross batches
    let r = rebuild(&survivors, &o, &mut go()).unwrap();
    assert_eq!(r.slot, slot);
    assert_eq!(r.total, used);
    assert!(
        data_area(&new, used) == want,
        "{tag}: rebuilt member differs"
    );
    // The array assembles with the new member in sync.
    let mut all: Vec<&PathBuf> = survivors.clone();
    all.push(&new);
    let asm = assemble(&all, AssembleOptions::default()).unwrap();
    let m = asm.slots[slot as usize].as_ref().expect("slot filled");
    assert_eq!(m.valid_bytes, u64::MAX);
    assert_eq!(asm.missing().len(), lost.len() - 1);
    let sb = read_superblock(&Member::open(&new).unwrap())
        .unwrap()
        .unwrap();
    assert!(!sb.feature_map.contains(FeatureMap::RECOVERY_OFFSET));
    assert_eq!(sb.role(), Role::Active(slot as u16));
}

#[test]
fn raid5_every_layout() {
    for (i, name) in [
        "left-asymmetric",
        "right-asymmetric",
        "left-symmetric",
        "right-symmetric",
        "parity-first",
        "parity-last",
    ]
    .iter()
    .enumerate()
    {
        let l = Layout::from_name(Level::Raid5, name).unwrap();
        roundtrip(
            &format!("r5-{name}"),
            Level::Raid5,
            Some(l),
            4,
            &[(i % 4) as u32],
        );
    }
}

#[test]
fn raid4_and_raid1() {
    roundtrip("r4", Level::Raid4, None, 4, &[3]);
    roundtrip("r4d", Level::Raid4, None, 3, &[0]);
    roundtrip("r1", Level::Raid1, None, 3, &[1, 2]);
}

#[test]
fn raid6_one_and_two_missing() {
    for name in [
        "left-symmetric",
        "left-asymmetric",
        "right-asymmetric",
        "right-symmetric",
    ] {
        let l = Layout::from_name(Level::Raid6, name).unwrap();
        roundtrip(&format!("r6a-{name}"), Level::Raid6, Some(l), 6, &[2]);
        roundtrip(&format!("r6b-{name}"), Level::Raid6, Some(l), 6, &[1, 4]);
        roundtrip(&format!("r6c-{name}"), Level::Raid6, Some(l), 5, &[4, 0]);
    }
}

/// One worker per rayon thread, each batch read, rebuilt and written by one of them, in
/// any order: more workers than this machine may have cores (a pool of 5) rebuild the same
/// bytes, with batches finishing out of order.
#[test]
fn many_workers_rebuild_the_same_bytes() {
    let pool = |n| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .unwrap()
    };
    assert_eq!(pool(1).install(super::engine::workers), 2);
    assert_eq!(pool(64).install(super::engine::workers), 8);
    pool(5).install(|| {
        assert_eq!(super::engine::workers(), 5);
        let l = Layout::from_name(Level::Raid5, "left-symmetric").unwrap();
        roundtrip("par-r5", Level::Raid5, Some(l), 4, &[1]);
        let l = Layout::from_name(Level::Raid6, "left-symmetric").unwrap();
        roundtrip("par-r6a", Level::Raid6, Some(l), 6, &[2]);
        roundtrip("par-r6b", Level::Raid6, Some(l), 6, &[1, 4]);
        let l = Layout::from_name(Level::Raid10, "n2").unwrap();
        roundtrip("par-r10", Level::Raid10, Some(l), 4, &[3]);
    });
}

/// A read that fails in the middle (a survivor cut short after the plan was made) stops
/// the workers, still queued batches included, records what was written before the
/// failure, and a rerun with the survivor whole again finishes byte-identical.
#[test]
fn failure_mid_way_records_the_written_prefix() {
    let paths = make("midfail", Level::Raid5, None, 4, 4 * MIB);
    let used = used_bytes(&paths, 2);
    let want = data_area(&paths[2], used);
    std::fs::remove_file(&paths[2]).unwrap();
    let survivors: Vec<&PathBuf> = [0, 1, 3].iter().map(|&i| &paths[i]).collect();
    let new = paths[0].with_file_name("new.img");
    let mut o = RebuildOptions::new().unwrap();
    o.new = Some(new.clone());
    o.batch_bytes = 64 * 1024;
    o.checkpoint_bytes = 0;
    let whole = std::fs::read(&paths[1]).unwrap();
    let cut = 2048 * 512 + used / 2;
    let p = plan(&survivors, &o).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&paths[1])
        .unwrap()
        .set_len(cut)
        .unwrap();
    let e = p.execute(&mut go()).unwrap_err();
    assert!(e.to_string().contains("short read"), "{e}");
    let sb = read_superblock(&Member::open(&new).unwrap())
        .unwrap()
        .unwrap();
    let ro = sb.recovery_offset * 512;
    assert!(ro > 0 && ro <= used / 2, "ro {ro} used {used}");
    assert!(data_area(&new, ro) == want[..ro as usize]);
    std::fs::write(&paths[1], whole).unwrap();
    let mut again = o.clone();
    again.new = None;
    let mut with = survivors.clone();
    with.push(&new);
    let r = rebuild(&with, &again, &mut go()).unwrap();
    assert_eq!(r.total, used);
    assert!(data_area(&new, used) == want);
}

#[test]
fn raid10_near_far_offset() {
    for name in ["n2", "f2", "o2"] {
        let l = Layout::from_name(Level::Raid10, name).unwrap();
        roundtrip(&format!("r10-{name}"), Level::Raid10, Some(l), 4, &[1]);
    }
    let l = Layout::from_name(Level::Raid10, "n2").unwrap();
    roundtrip("r10-n2-odd", Level::Raid10, Some(l), 3, &[2]);
}

#[test]
fn stop_and_resume_is_byte_identical() {
    let paths = make("resume", Level::Raid6, None, 5, 4 * MIB);
    let used = used_bytes(&paths, 3);
    let want = data_area(&paths[3], used);
    std::fs::remove_file(&paths[3]).unwrap();
    let survivors: Vec<&PathBuf> = [0, 1, 2, 4].iter().map(|&i| &paths[i]).collect();
    let new = paths[0].with_file_name("new.img");
    let mut o = RebuildOptions::new().unwrap();
    o.new = Some(new.clone());
    o.batch_bytes = 128 * 1024;
    o.checkpoint_bytes = 0;
    let mut stops = 0;
    loop {
        let mut calls = 0;
        let r = rebuild(&survivors, &o, &mut |_| {
            calls += 1;
            if calls > 3 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        });
        match r {
            Ok(_) => break,
            Err(Error::Cancelled(m)) => {
                assert!(m.contains("resume"), "{m}");
                stops += 1;
                // The checkpoint covers exactly what was written, and it is right.
                let sb = read_superblock(&Member::open(&new).unwrap())
                    .unwrap()
                    .unwrap();
                assert!(sb.feature_map.contains(FeatureMap::RECOVERY_OFFSET));
                let ro = sb.recovery_offset * 512;
                assert!(ro > 0 && ro <= used, "ro {ro} used {used} stops {stops}");
                assert!(data_area(&new, ro) == want[..ro as usize]);
                // The partial member is recognised when given among the members too.
                let mut with: Vec<&PathBuf> = survivors.clone();
                with.push(&new);
                let mut o2 = o.clone();
                o2.new = None;
                let p = plan(&with, &o2).unwrap();
                assert_eq!((p.slot, p.start, p.target.clone()), (3, ro, new.clone()));
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert!(stops >= 3, "stops {stops}");
    assert!(data_area(&new, used) == want);
}

#[test]
fn replace_copies_and_fails_the_old_member() {
    let paths = make("replace", Level::Raid5, None, 4, 4 * MIB);
    let used = used_bytes(&paths, 1);
    let want = data_area(&paths[1], used);
    let new = paths[0].with_file_name("new.img");
    let mut o = RebuildOptions::new().unwrap();
    o.slot = Some(1);
    o.new = Some(new.clone());
    o.replace = true;
    let r = rebuild(&paths, &o, &mut go()).unwrap();
    assert_eq!(r.replaced.as_deref(), Some(paths[1].as_path()));
    assert!(data_area(&new, used) == want);
    // All five given: the old member is faulty, the new one serves slot 1.
    let mut all: Vec<&PathBuf> = paths.iter().collect();
    all.push(&new);
    let asm = assemble(&all, AssembleOptions::default()).unwrap();
    let m = asm.slots[1].as_ref().unwrap();
    assert_eq!(asm.reports[m.report].path, new.display().to_string());
    assert!(!asm.degraded());
}

#[test]
fn bad_input_is_refused_without_writing() {
    let paths = make("bad", Level::Raid5, None, 4, 2 * MIB);
    let other = make("bad-other", Level::Raid5, None, 3, 2 * MIB);
    std::fs::remove_file(&paths[2]).unwrap();
    let survivors: Vec<&PathBuf> = [0, 1, 3].iter().map(|&i| &paths[i]).collect();
    let mut o = RebuildOptions::new().unwrap();
    // A member of another array as the target.
    o.new = Some(other[0].clone());
    let before = std::fs::read(&other[0]).unwrap();
    let e = rebuild(&survivors, &o, &mut go()).unwrap_err();
    assert!(matches!(e, Error::MemberInUse(_)), "{e}");
    assert!(std::fs::read(&other[0]).unwrap() == before);
    // A survivor as the target.
    o.new = Some(paths[0].clone());
    let e = rebuild(&survivors, &o, &mut go()).unwrap_err();
    assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
    // The same member twice.
    o.new = Some(paths[0].with_file_name("n.img"));
    let twice = [&paths[0], &paths[0], &paths[1], &paths[3]];
    assert!(matches!(
        rebuild(&twice, &o, &mut go()),
        Err(Error::Assembly(_))
    ));
    // Too many missing.
    let two = [&paths[0], &paths[1]];
    assert!(rebuild(&two, &o, &mut go()).is_err());
    assert!(!paths[0].with_file_name("n.img").exists());
    // An in-sync slot is not "rebuilt".
    o.slot = Some(0);
    assert!(matches!(
        rebuild(&survivors, &o, &mut go()),
        Err(Error::InvalidArgument(_))
    ));
    // With force, a foreign target is accepted.
    o.slot = None;
    o.new = Some(other[0].clone());
    o.force = true;
    rebuild(&survivors, &o, &mut go()).unwrap();
}
