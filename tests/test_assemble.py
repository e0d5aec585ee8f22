"""Read-only assembly (fastraid.open / Array): kernel-made fixtures and arrays built here.

* Every public fixture in tests/fixtures/md (except the interrupted grow, which must be
  refused clearly for now): the whole array hashes to the manifest's pattern, with members
  in shuffled order, with each single member left out where the level allows and every
  pair for RAID-6.
* Arrays built by tests/_md_build.py (an independent restatement of the format): RAID0 with
  unequal members, RAID10 near/far/offset, every RAID-6 md layout including the
  asymmetric and ``-6`` ones, RAID4/5, linear, metadata 1.0/1.1/1.2, degraded reads,
  rebuild checkpoints, stale members and force.
* Bad input: garbage, truncated images, members of two arrays, the same member twice,
  corrupted checksums: a FastRaidError with a clear message, and the inputs unchanged.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import random
from pathlib import Path
from typing import TYPE_CHECKING

import fastraid
import pytest
from _md_build import Built, build, build_reshape, rewrite_superblock

if TYPE_CHECKING:
    from collections.abc import Callable

    from conftest import MdImages

FIXTURES = Path(__file__).parent / "fixtures" / "md"
GROW = "raid5-grow-3to4-interrupted"
NAMES = sorted(p.name for p in FIXTURES.iterdir() if (p / "manifest.json").is_file())


def digest(paths: list[Path] | list[str], length: int, *, force: bool = False) -> str:
    with fastraid.open([str(p) for p in paths], readonly=True, force=force) as a:
        h = hashlib.sha256()
        pos = 0
        while pos < length:
            n = min(8 << 20, length - pos)
            h.update(a.read(pos, n))
            pos += n
        return h.hexdigest()


def file_hashes(paths: list[Path]) -> list[str]:
    return [hashlib.sha256(p.read_bytes()).hexdigest() for p in paths]


def redundancy(level: str, n: int) -> int:
    return {"raid0": 0, "linear": 0, "raid1": n - 1, "raid4": 1, "raid5": 1, "raid6": 2}.get(
        level, 1
    )


# ======================================================================================
# Kernel-made fixtures
# ======================================================================================


@pytest.mark.parametrize("name", NAMES)
def test_fixture_pattern(name: str, md_images: Callable[[str], MdImages]) -> None:
    img = md_images(name)
    pattern = img.manifest["pattern"]
    members = list(img.members)
    random.Random(name).shuffle(members)
    before = file_hashes(img.members)
    assert digest(members, pattern["length_bytes"]) == pattern["sha256"]
    with fastraid.open(members, readonly=True) as a:
        assert a.level == img.manifest["level"]
        assert a.raid_devices == img.manifest["raid_disks"]
        assert a.size >= pattern["length_bytes"]
        assert not a.degraded
        assert a.state.startswith("clean")
        assert sorted(a.members, key=str) == sorted(map(str, img.members), key=str)
        d = a.detail()
        if "array_uuid" in img.manifest:
            assert d["uuid"] == img.manifest["array_uuid"]
        assert all(m["used"] and m["state"] == "active" for m in d["members"])
    assert file_hashes(img.members) == before


@pytest.mark.parametrize("name", NAMES)
def test_fixture_degraded(name: str, md_images: Callable[[str], MdImages]) -> None:
    img = md_images(name)
    pattern = img.manifest["pattern"]
    n = len(img.members)
    k = redundancy(img.manifest["level"], n)
    if img.manifest["level"] == "raid10":
        k = 1
    if k == 0:
        with pytest.raises(fastraid.AssemblyError, match="missing"):
            fastraid.open([str(p) for p in img.members[1:]], readonly=True)
        return
    drops = [c for r in range(1, min(k, 2) + 1) for c in itertools.combinations(range(n), r)]
    for drop in drops:
        members = [p for i, p in enumerate(img.members) if i not in drop]
        assert digest(members, pattern["length_bytes"]) == pattern["sha256"], drop
    # Leave out member 1: a data member in early stripes for every md layout here.
    with fastraid.open([str(p) for i, p in enumerate(img.members) if i != 1], readonly=True) as a:
        assert a.degraded
        assert "degraded" in a.state
        a.read(0, min(a.size, 1 << 20))
        kinds = {r["kind"] for r in a.trust_map()}
        if img.manifest["level"] in ("raid4", "raid5", "raid6"):
            assert "rebuilt" in kinds


def test_raid6_fixture_too_many_missing(md_images: Callable[[str], MdImages]) -> None:
    img = md_images("raid6-5")
    with pytest.raises(fastraid.AssemblyError, match=r"3 of them missing.*at most two"):
        fastraid.open([str(p) for p in img.members[3:]], readonly=True)


def test_interrupted_grow_two_geometries(md_images: Callable[[str], MdImages]) -> None:
    """The kernel-made 3->4 grow cut mid-reshape: below the checkpoint the new geometry
    (4 members, data offset moved by new_offset), above it the old one."""
    img = md_images(GROW)
    with fastraid.open([str(p) for p in img.members], readonly=True) as a:
        d = a.detail()
        assert d["reshape"]["delta_disks"] == 1 and not d["reshape"]["backwards"]
        assert [p["geometry"] for p in d["parts"]] == ["new", "old"]
        assert [p["raid_devices"] for p in d["parts"]] == [4, 3]
        assert d["parts"][0]["end"] == d["reshape"]["position"] * 512
        assert d["parts"][0]["data_offset_shift"] == d["reshape"]["new_offset"] * 512
        assert any("reshape in progress" in n for n in d["notes"])
    sbs = fastraid.examine(img.members[0])
    assert sbs[0]["reshape"]["delta_disks"] == 1


K = 1024


@pytest.mark.parametrize(
    ("checkpoint", "moved"), [(24 * K, 24 * K), (24 * K, 240 * K), (0, 240 * K), (216 * K, 240 * K)]
)
def test_reshape_boundary_decided_by_parity(tmp_path: Path, checkpoint: int, moved: int) -> None:
    """An in-place grow whose kernel moved more stripes than its checkpoint says: the old
    rows those stripes overwrote fail parity in the old geometry and pass in the new one,
    so the boundary moves past the checkpoint and every byte comes back."""
    content, paths = build_reshape(
        tmp_path, n_old=3, n_new=4, moved_bytes=moved, checkpoint_bytes=checkpoint
    )
    with fastraid.open([str(p) for p in reversed(paths)], readonly=True) as a:
        assert a.read(0, a.size) == content
        notes = " ".join(a.detail()["notes"])
        if moved - checkpoint > 24 * K:
            assert "decided by parity" in notes
        assert a.trust_totals()["uncertain"] == 0
    # Degraded, parity cannot judge: the checkpoint is trusted (exact when it is right).
    if checkpoint == moved:
        for drop in range(4):
            kept = [str(p) for i, p in enumerate(paths) if i != drop]
            with fastraid.open(kept, readonly=True) as a:
                assert a.read(0, a.size) == content


def test_reshape_undecidable_unit_is_uncertain(tmp_path: Path) -> None:
    content, paths = build_reshape(
        tmp_path, n_old=3, n_new=4, moved_bytes=240 * K, checkpoint_bytes=24 * K
    )
    # Damage the row just past the checkpoint on the new member: that unit is now
    # inconsistent in both geometries.
    data = bytearray(paths[3].read_bytes())
    row = (24 * K) // (3 * 4096)
    off = (16 + row * 8) * 512
    data[off : off + 16] = bytes(16)
    paths[3].write_bytes(bytes(data))
    with fastraid.open([str(p) for p in paths], readonly=True) as a:
        a.read(0, a.size, strict=False)
        kinds = {r["kind"] for r in a.trust_map()}
        assert "uncertain" in kinds
        assert any("undecided" in n for n in a.detail()["notes"])


def test_reshape_backup_file_overlays_its_range(tmp_path: Path) -> None:
    """A unit inconsistent in both geometries is uncertain without mdadm's backup and
    exact with it; a backup of another array, or not a backup at all, is refused."""
    from _md_build import write_backup

    content, paths = build_reshape(
        tmp_path, n_old=3, n_new=4, moved_bytes=48 * K, checkpoint_bytes=0
    )
    for row in (4, 6):  # member 0: new row 4 and old row 6 (both in array bytes 48K..72K)
        data = bytearray(paths[0].read_bytes())
        off = (16 + row * 8) * 512
        data[off : off + 64] = b"\x5a" * 64
        paths[0].write_bytes(bytes(data))
    members = [str(p) for p in paths]
    with fastraid.open(members, readonly=True) as a:
        got = a.read(0, a.size, strict=False)
        uncertain = [r for r in a.trust_map() if r["kind"] == "uncertain"]
        assert uncertain and uncertain[0]["offset"] == 48 * K
        assert got[: 48 * K] == content[: 48 * K] and got[72 * K :] == content[72 * K :]
        uuid = bytes.fromhex(a.detail()["uuid"].replace(":", ""))
    before = file_hashes(paths)
    backup = tmp_path / "backup"
    write_backup(backup, uuid, content[: 96 * K], 0)
    with fastraid.open(members, readonly=True, backup_file=backup) as a:
        assert a.read(0, a.size) == content
        assert a.trust_totals()["uncertain"] == 0
        assert a.detail()["backup_file"] == str(backup)
    write_backup(backup, bytes(16), content[: 96 * K], 0)
    with pytest.raises(fastraid.AssemblyError, match="belongs to array"):
        fastraid.open(members, readonly=True, backup_file=backup)
    write_backup(backup, uuid, content[: 96 * K], 0, magic=b"not-a-backup-xxx")
    with pytest.raises(fastraid.AssemblyError, match="magic"):
        fastraid.open(members, readonly=True, backup_file=backup)
    assert file_hashes(paths) == before


def test_examine_fixture(md_images: Callable[[str], MdImages]) -> None:
    img = md_images("raid5-v090-3")
    (sb,) = fastraid.examine(img.members[0])
    assert sb["metadata"] == "0.90" and sb["valid"] and sb["checksum_ok"]
    assert sb["level"] == "raid5" and sb["raid_devices"] == 3
    img = md_images("raid1-2")
    (sb,) = fastraid.examine(img.members[1])
    assert sb["metadata"] == "1.2" and sb["data_offset"] == 2048 and sb["slot"] == 1


def test_volume_and_readinto(md_images: Callable[[str], MdImages]) -> None:
    img = md_images("raid5-ls-3")
    pattern = img.manifest["pattern"]
    with fastraid.open([str(p) for p in img.members], readonly=True) as a:
        whole = a.read(0, pattern["length_bytes"])
        with a.volume() as f:
            assert f.seekable() and f.readable() and not f.writable()
            f.seek(12345)
            assert f.read(100_000) == whole[12345 : 12345 + 100_000]
            assert f.tell() == 12345 + 100_000
            f.seek(-10, 2)
            assert f.read() == a.read(a.size - 10, 10)
            assert f.read(5) == b""
        buf = bytearray(70_000)
        assert a.readinto(65_000, buf) == 70_000
        assert bytes(buf) == whole[65_000:135_000]
        assert a.read(a.size - 3, 100) == a.read(a.size - 3, 3)
        assert a.read(a.size + 5, 10) == b""
        with pytest.raises(fastraid.InvalidArgumentError):
            a.read(-1, 10)
        with pytest.raises(fastraid.ReadOnlyError):
            a.write(0, b"x")
        with a.volume() as f, pytest.raises(fastraid.ReadOnlyError):
            f.write(b"x")
    assert a.closed
    with pytest.raises(fastraid.InvalidArgumentError, match="closed"):
        a.read(0, 1)


def test_open_read_write_without_writes_changes_nothing(
    md_copy: Callable[[str], list[Path]],
) -> None:
    """Like the kernel assembling and stopping a clean array: no byte of a member changes
    when nothing is written."""
    paths = md_copy("raid5-ls-3")
    before = [p.read_bytes() for p in paths]
    with fastraid.open([str(p) for p in paths]) as a:
        assert a.writable and a.state == "clean"
        a.read(0, 1 << 20)
        a.flush()
    assert [p.read_bytes() for p in paths] == before
    with pytest.raises(fastraid.InvalidArgumentError):
        fastraid.open(str(paths[0]), readonly=True)


# ======================================================================================
# Arrays built here (independent of fastraid's layout code)
# ======================================================================================


def check(b: Built, drop: tuple[int, ...] = ()) -> None:
    members = [p for i, p in enumerate(b.members) if i not in drop]
    random.Random(len(drop)).shuffle(members)
    with fastraid.open([str(p) for p in members], readonly=True) as a:
        assert a.size == len(b.content)
        got = a.read(0, a.size)
        assert got == b.content, f"drop={drop}"
        # Odd, unaligned pieces.
        rng = random.Random(7)
        for _ in range(20):
            off = rng.randrange(a.size)
            n = rng.randrange(1, 3 * b.chunk_bytes)
            assert a.read(off, n) == b.content[off : off + n]


RAID6_LAYOUTS = [0, 1, 2, 3, 4, 5, 16, 17, 18, 19, 20]


@pytest.mark.parametrize("layout", RAID6_LAYOUTS)
@pytest.mark.parametrize("n", [4, 6])
def test_built_raid6_every_layout_and_pair(tmp_path: Path, layout: int, n: int) -> None:
    b = build(tmp_path, level=6, layout=layout, n=n, chunks_per_member=2 * n + 1, seed=layout)
    check(b)
    for drop in itertools.combinations(range(n), 2):
        check(b, drop)


@pytest.mark.parametrize(("level", "layout"), [(4, 0)] + [(5, x) for x in range(6)])
def test_built_raid45(tmp_path: Path, level: int, layout: int) -> None:
    b = build(tmp_path, level=level, layout=layout, n=5, chunks_per_member=11)
    check(b)
    for m in range(5):
        check(b, (m,))


@pytest.mark.parametrize("layout", [0x102, 0x103, 0x201, 0x202, 0x10201, 0x10202, 0x301])
@pytest.mark.parametrize("n", [4, 5, 6])
def test_built_raid10(tmp_path: Path, layout: int, n: int) -> None:
    nc, fc = layout & 0xFF, layout >> 8 & 0xFF
    if nc * fc > n or (layout >> 16 and n % nc):
        pytest.skip("not a valid md geometry")
    b = build(tmp_path, level=10, layout=layout, n=n, chunks_per_member=12)
    check(b)
    # Leaving out any one member keeps a copy of everything.
    for m in range(n):
        check(b, (m,))


def test_built_raid10_copy_set_lost(tmp_path: Path) -> None:
    b = build(tmp_path, level=10, layout=0x102, n=4)
    with pytest.raises(fastraid.AssemblyError, match="at least one copy"):
        fastraid.open([str(b.members[2]), str(b.members[3])], readonly=True)
    check(b, (0, 2))  # one of each pair is enough


@pytest.mark.parametrize("alternate", [False, True])
def test_built_raid0_unequal_members(tmp_path: Path, alternate: bool) -> None:
    b = build(
        tmp_path,
        level=0,
        layout=2 if alternate else 1,
        n=3,
        member_chunks=[5, 12, 9],
        raid0_layout_feature=True,
    )
    check(b)
    with pytest.raises(fastraid.AssemblyError, match="needs every member"):
        fastraid.open([str(p) for p in b.members[:2]], readonly=True)


def test_built_raid0_multizone_without_layout_is_refused(tmp_path: Path) -> None:
    b = build(tmp_path, level=0, layout=1, n=3, member_chunks=[5, 12, 9])
    with pytest.raises(fastraid.AssemblyError, match="layout"):
        fastraid.open([str(p) for p in b.members], readonly=True)


def test_built_linear_and_raid1(tmp_path: Path) -> None:
    check(build(tmp_path, level=-1, n=3, member_chunks=[3, 7, 5], prefix="lin"))
    r1 = build(tmp_path, level=1, n=3, prefix="r1")
    check(r1)
    check(r1, (0, 1))
    check(r1, (0, 2))


@pytest.mark.parametrize("metadata", ["1.0", "1.1", "1.2"])
def test_built_metadata_versions(tmp_path: Path, metadata: str) -> None:
    b = build(tmp_path, level=6, layout=18, n=5, metadata=metadata)
    check(b)
    check(b, (1, 4))
    # (On a device this small the 0.90 location is sector 0 too: 1.1's block shows there.)
    (sb,) = [s for s in fastraid.examine(b.members[0]) if s["valid"]]
    assert sb["metadata"] == metadata


def test_recovery_offset_partial_member(tmp_path: Path) -> None:
    """A member rebuilt only up to recovery_offset is used below it, rebuilt above."""
    b = build(tmp_path, level=5, layout=2, n=4, chunks_per_member=16)
    sb = b.sbs[2]
    sb.feature_map |= 2
    sb.recovery_offset = 5 * 8 + 3  # mid-chunk, in sectors
    # Garbage beyond the checkpoint on that member must not be read.
    data = bytearray(b.members[2].read_bytes())
    start = (sb.data_offset + sb.recovery_offset) * 512
    data[start : start + 9 * 4096] = b"\xee" * (9 * 4096)
    b.members[2].write_bytes(bytes(data))
    rewrite_superblock(b.members[2], sb)
    check(b)
    with fastraid.open([str(p) for p in b.members], readonly=True) as a:
        assert "recovering" in a.state and a.degraded
        a.read(0, a.size)
        totals = a.trust_totals()
        assert totals["rebuilt"] > 0 and totals["unreadable"] == 0
        states = {m["path"]: m["state"] for m in a.detail()["members"]}
        assert states[str(b.members[2])] == "rebuilding"
    # With another member gone, bytes above the checkpoint on the rebuilding member's
    # stripes cannot be rebuilt: strict reads fail, lenient ones say where.
    with fastraid.open([str(p) for p in b.members[1:]], readonly=True) as a:
        assert a.read(0, 4096 * 3) == b.content[: 4096 * 3]
        with pytest.raises(fastraid.MemberError, match="cannot be rebuilt"):
            a.read(0, a.size)
        a.clear_trust_map()
        got = a.read(0, a.size, strict=False)
        bad = [r for r in a.trust_map() if r["kind"] == "unreadable"]
        assert bad
        for r in a.trust_map():
            if r["kind"] != "unreadable":
                s = slice(r["offset"], r["offset"] + r["length"])
                assert got[s] == b.content[s]


def test_bad_block_log_ranges_are_rebuilt(tmp_path: Path) -> None:
    """Sectors listed in a member's bad-block log are read from the other members."""
    b = build(tmp_path, level=5, layout=2, n=4, chunks_per_member=16)
    sb = b.sbs[1]
    sb.feature_map |= 8
    sb.bblog_size, sb.bblog_offset, sb.bblog_shift = 1, 4, 0  # log at sector 12
    bad = [(sb.data_offset + 8 * 3 + 2, 5), (sb.data_offset + 8 * 9, 16)]  # absolute sectors
    rewrite_superblock(b.members[1], sb)  # (writes 4 KiB: the log goes in after it)
    data = bytearray(b.members[1].read_bytes())
    log = b"".join(((s << 10) | n).to_bytes(8, "little") for s, n in bad)
    log += b"\xff" * 8
    data[12 * 512 : 12 * 512 + len(log)] = log
    for s, n in bad:  # the bad sectors hold garbage
        data[s * 512 : (s + n) * 512] = b"\xab" * (n * 512)
    b.members[1].write_bytes(bytes(data))
    with fastraid.open([str(p) for p in b.members], readonly=True) as a:
        assert a.read(0, a.size) == b.content
        assert a.trust_totals()["rebuilt"] > 0
        assert any("bad-block" in n for n in a.detail()["notes"])


def test_stale_member_needs_force(tmp_path: Path) -> None:
    b = build(tmp_path, level=5, layout=2, n=3)
    # Member 1 fell out long ago; member 2 is missing now.
    for i, sb in enumerate(b.sbs):
        sb.events = 5 if i == 1 else 20
        rewrite_superblock(b.members[i], sb)
    with fastraid.open([str(p) for p in b.members], readonly=True) as a:
        d = a.detail()
        states = {m["path"]: (m["state"], m["used"], m["events_behind"]) for m in d["members"]}
        assert states[str(b.members[1])] == ("stale", False, 15)
        assert a.read(0, a.size) == b.content  # rebuilt from 0 and 2
    two = [str(b.members[0]), str(b.members[1])]
    with pytest.raises(fastraid.AssemblyError, match=r"(?s)stale.*force"):
        fastraid.open(two, readonly=True)
    with fastraid.open(two, readonly=True, force=True) as a:
        assert "forced" in a.state
        assert a.read(0, a.size) == b.content  # the data did not change here
    # One behind is still fresh (the kernel allows a lag of one).
    b.sbs[1].events = 19
    rewrite_superblock(b.members[1], b.sbs[1])
    with fastraid.open(two, readonly=True) as a:
        assert a.members[1] == str(b.members[1])


def test_spare_and_duplicate_slot(tmp_path: Path) -> None:
    b = build(tmp_path, level=1, n=2)
    # A spare: same array, role 0xffff.
    spare = tmp_path / "spare.img"
    sb = b.sbs[0]
    data = bytearray(b.members[0].read_bytes())
    sb_spare = type(sb)(
        **{**sb.__dict__, "dev_number": 5, "roles": [0, 1, 0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF]}
    )
    data[sb.super_offset * 512 : sb.super_offset * 512 + 4096] = sb_spare.pack()
    spare.write_bytes(bytes(data))
    # A copy of member 0 with a lower event count claims slot 0 too.
    dup = tmp_path / "dup.img"
    sb_dup = type(sb)(**{**sb.__dict__, "events": sb.events - 1})
    data[sb.super_offset * 512 : sb.super_offset * 512 + 4096] = sb_dup.pack()
    dup.write_bytes(bytes(data))
    with fastraid.open([str(dup), str(spare)] + [str(p) for p in b.members], readonly=True) as a:
        d = a.detail()
        states = {m["path"]: m["state"] for m in d["members"]}
        assert states[str(spare)] == "spare"
        assert states[str(dup)] == "duplicate"
        assert a.members == [str(b.members[0]), str(b.members[1])]
        assert a.read(0, a.size) == b.content


# ======================================================================================
# Bad input
# ======================================================================================


def test_bad_inputs_are_clear_errors_and_leave_members_unchanged(tmp_path: Path) -> None:
    b = build(tmp_path, level=5, layout=2, n=3, prefix="a")
    other = build(tmp_path, level=5, layout=2, n=3, prefix="b", seed=99)
    garbage = tmp_path / "garbage.img"
    garbage.write_bytes(random.Random(1).randbytes(300_000))
    empty = tmp_path / "empty.img"
    empty.write_bytes(b"")
    truncated = tmp_path / "truncated.img"
    truncated.write_bytes(b.members[0].read_bytes()[:20_000])
    corrupt = tmp_path / "corrupt.img"
    corrupt.write_bytes(b.members[1].read_bytes())
    rewrite_superblock(corrupt, b.sbs[1], corrupt_checksum=True)
    every = [*b.members, *other.members, garbage, empty, truncated, corrupt]
    before = file_hashes(every)

    s = str
    with pytest.raises(fastraid.NotAnArrayError, match="no md superblock"):
        fastraid.open([s(garbage), s(empty)], readonly=True)
    with pytest.raises(fastraid.AssemblyError, match="2 different arrays"):
        fastraid.open([s(p) for p in b.members[:2]] + [s(other.members[0])], readonly=True)
    with pytest.raises(fastraid.AssemblyError, match="same device or file"):
        fastraid.open([s(b.members[0]), s(b.members[1]), s(b.members[0])], readonly=True)
    with pytest.raises(fastraid.AssemblyError, match=r"(?s)missing.*checksum"):
        fastraid.open([s(b.members[0]), s(corrupt)], readonly=True)
    with pytest.raises(fastraid.AssemblyError, match=r"(?s)missing.*too small"):
        fastraid.open([s(truncated), s(b.members[1])], readonly=True)
    with pytest.raises(fastraid.AssemblyError):
        fastraid.open([], readonly=True)
    # Foreign paths beside a complete array are left out, with the reason.
    with fastraid.open([s(garbage), *map(s, b.members), s(corrupt)], readonly=True) as a:
        assert a.read(0, a.size) == b.content
        reasons = {m["path"]: m["reason"] for m in a.detail()["members"]}
        assert "no md superblock" in reasons[s(garbage)]
        assert "checksum" in reasons[s(corrupt)]
    # A degraded read still works when one member is the corrupt copy.
    with fastraid.open([s(b.members[0]), s(b.members[2]), s(corrupt)], readonly=True) as a:
        assert a.read(0, a.size) == b.content
    with pytest.raises(fastraid.MemberError, match="nope.img"):
        fastraid.examine(tmp_path / "nope.img")
    assert fastraid.examine(garbage) == []
    assert file_hashes(every) == before


#: v1 fields worth fuzzing: (offset, struct format, interesting values or None for random).
FUZZ_FIELDS: list[tuple[int, str, list[int] | None]] = [
    (72, "<i", [-4, -1, 0, 1, 4, 5, 6, 10, 7]),
    (76, "<I", None),
    (80, "<Q", None),
    (88, "<I", [0, 1, 7, 8, 16, 1 << 20, 1 << 31]),
    (92, "<I", [0, 1, 2, 3, 4, 5, 100, 1920, 1921, 0xFFFFFFFF]),
    (104, "<Q", None),
    (112, "<i", [-3, -1, 0, 1, 2, 100]),
    (116, "<I", None),
    (120, "<I", [0, 8, 16, 1 << 30]),
    (124, "<i", [-384, 0, 384, -(1 << 30)]),
    (128, "<Q", None),
    (136, "<Q", None),
    (152, "<Q", None),
    (160, "<I", [0, 1, 2, 3, 200]),
    (8, "<I", [0, 2, 4, 8, 0x44, 0x40, 0x1000, 0x24, 0x12]),
    (256, "<H", [0, 1, 2, 3, 0xFFFF, 0xFFFE, 0xFFFD, 0xFF00]),
    (186, "<H", None),
    (188, "<i", None),
    (200, "<Q", None),
    (208, "<Q", None),
]


@pytest.mark.parametrize(
    ("level", "layout", "n"), [(5, 2, 4), (6, 0, 5), (10, 0x201, 4), (0, 1, 3)]
)
def test_fuzzed_superblocks_never_crash(tmp_path: Path, level: int, layout: int, n: int) -> None:
    """Superblock fields set to odd values (checksum fixed, so the fields themselves are
    judged) and random bit flips: a clean assembly or a FastRaidError, never a panic
    (InternalError) and never a write."""
    import struct

    from _md_build import v1_checksum

    b = build(tmp_path, level=level, layout=layout, n=n)
    origs = [p.read_bytes() for p in b.members]
    rng = random.Random(level * 100 + n)
    for _ in range(120):
        for k in rng.sample(range(n), rng.randrange(1, n + 1)):
            data = bytearray(origs[k])
            sb = b.sbs[k].super_offset * 512
            for _ in range(rng.randrange(1, 4)):
                if rng.random() < 0.2:
                    data[sb + rng.randrange(512)] ^= 1 << rng.randrange(8)
                    continue
                off, fmt, choices = rng.choice(FUZZ_FIELDS)
                size = struct.calcsize(fmt)
                if choices and rng.random() < 0.8:
                    v = rng.choice(choices)
                else:
                    v = int.from_bytes(rng.randbytes(size), "little")
                    if fmt[1].islower() and v >= 1 << (8 * size - 1):
                        v -= 1 << (8 * size)
                struct.pack_into(fmt, data, sb + off, v)
            if rng.random() < 0.9:
                csum = v1_checksum(bytes(data[sb : sb + 4096]))
                data[sb + 216 : sb + 220] = csum.to_bytes(4, "little")
            b.members[k].write_bytes(bytes(data))
        written = [p.read_bytes() for p in b.members]
        try:
            with fastraid.open([str(p) for p in b.members], readonly=True, force=True) as a:
                a.read(0, min(a.size, 1 << 20), strict=False)
                a.read(max(0, a.size - 4096), 4096, strict=False)
                json.dumps(a.detail())
        except fastraid.InternalError:
            raise
        except fastraid.FastRaidError:
            pass
        assert [p.read_bytes() for p in b.members] == written
        for p, o in zip(b.members, origs, strict=True):
            p.write_bytes(o)


def test_hypothesis_mutated_fixture_superblocks(
    md_images: Callable[[str], MdImages], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Kernel-made superblocks with random byte edits (checksum recomputed or not): examine
    and open give results or a FastRaidError, never an InternalError or a write."""
    import shutil

    from _md_build import v1_checksum
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    img = md_images("raid6-5")
    work = tmp_path_factory.mktemp("hyp")
    paths = [work / p.name for p in img.members]
    for src, dst in zip(img.members, paths, strict=True):
        shutil.copyfile(src, dst)
    originals = [p.read_bytes() for p in paths]
    sb_at = 4096

    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        member=st.integers(0, 4),
        edits=st.lists(
            st.tuples(st.integers(0, 1023), st.integers(0, 255)), min_size=1, max_size=6
        ),
        fix_checksum=st.booleans(),
    )
    def run(member: int, edits: list[tuple[int, int]], fix_checksum: bool) -> None:
        data = bytearray(originals[member])
        for off, value in edits:
            data[sb_at + off] = value
        if fix_checksum:
            csum = v1_checksum(bytes(data[sb_at : sb_at + 4096]))
            data[sb_at + 216 : sb_at + 220] = csum.to_bytes(4, "little")
        paths[member].write_bytes(bytes(data))
        try:
            fastraid.examine(paths[member])
            with fastraid.open([str(p) for p in paths], readonly=True) as a:
                a.read(0, min(a.size, 1 << 20), strict=False)
                json.dumps(a.detail())
        except fastraid.InternalError:
            raise
        except fastraid.FastRaidError:
            pass
        finally:
            assert paths[member].read_bytes() == bytes(data)
            paths[member].write_bytes(originals[member])

    run()
