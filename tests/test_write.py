"""Writing to arrays (``fastraid.open(readonly=False)``): data, parity and mirrors against a
plain bytearray model, healthy and degraded, for every level and layout fastraid creates;
md's dirty/clean protocol and write-intent bitmap on disk; membership changes (fail,
remove, add, rebuild, replace); bad input.

Every check reads back through an independent path too: a read-only open with each member
left out in turn (so parity/mirrors must agree with the data), and fastraid's scrub
(``mismatch_cnt`` 0).
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import struct
import subprocess
from pathlib import Path
from typing import Any

import fastraid
import pytest

MiB = 1 << 20
CHUNK = 16 * 1024

#: (level, members, layout, members that may be missing at once)
GEOMETRIES = [
    ("raid0", 3, None, 0),
    ("linear", 3, None, 0),
    ("raid1", 3, None, 2),
    ("raid4", 4, None, 1),
    ("raid5", 2, None, 1),
    ("raid5", 4, "left-symmetric", 1),
    ("raid5", 4, "left-asymmetric", 1),
    ("raid5", 3, "right-symmetric", 1),
    ("raid5", 3, "right-asymmetric", 1),
    ("raid5", 3, "parity-first", 1),
    ("raid5", 3, "parity-last", 1),
    ("raid6", 4, "left-symmetric", 2),
    ("raid6", 5, "left-asymmetric", 2),
    ("raid6", 5, "right-asymmetric", 2),
    ("raid6", 6, "parity-first", 2),
    ("raid10", 4, "n2", 1),
    ("raid10", 4, "f2", 1),
    ("raid10", 3, "o2", 1),
    ("raid10", 3, "n3", 2),
]


def _ids(g: tuple[Any, ...]) -> str:
    return f"{g[0]}-{g[1]}" + (f"-{g[2]}" if g[2] else "")


def make(tmp_path: Path, level: str, n: int, layout: str | None, **kw: Any) -> list[str]:
    paths = [str(tmp_path / f"m{i}.img") for i in range(n)]
    fastraid.create(paths, level=level, chunk=CHUNK, layout=layout, size=2 * MiB, **kw).close()
    return paths


def random_writes(
    a: fastraid.Array, model: bytearray, rng: random.Random, count: int, big: int = 200_000
) -> None:
    """Writes of every shape: tiny, unaligned, chunk- and stripe-sized, long."""
    for _ in range(count):
        kind = rng.random()
        if kind < 0.4:
            n = rng.randrange(1, 600)
        elif kind < 0.8:
            n = rng.randrange(1, 3 * CHUNK)
        else:
            n = rng.randrange(1, big)
        off = rng.randrange(0, a.size)
        n = min(n, a.size - off)
        data = rng.randbytes(n)
        assert a.write(off, data) == n
        model[off : off + n] = data


def assert_consistent(paths: list[str], model: bytes, tolerates: int) -> None:
    """The array reads ``model`` with all members and with each one left out (read-only:
    the missing data comes from parity or a mirror), and a scrub finds no mismatch."""
    with fastraid.open(paths, readonly=True) as a:
        assert a.state == "clean"
        assert a.read(0, a.size) == model
    if tolerates:
        for drop in range(len(paths)):
            rest = paths[:drop] + paths[drop + 1 :]
            with fastraid.open(rest, readonly=True) as a:
                assert a.read(0, a.size) == model, f"member {drop} left out"
        assert fastraid.check(paths).mismatch_cnt == 0


@pytest.mark.parametrize("geo", GEOMETRIES, ids=_ids)
def test_random_writes_match_a_model(geo: tuple[str, int, str | None, int], tmp_path: Path) -> None:
    level, n, layout, tolerates = geo
    paths = make(tmp_path, level, n, layout)
    rng = random.Random(_ids(geo))
    with fastraid.open(paths) as a:
        assert a.writable and a.level == level
        model = bytearray(a.read(0, a.size))
        random_writes(a, model, rng, 120)
        assert a.read(0, a.size) == model
        # Writes not flushed yet: md's dirty state (RAID0/linear have nothing to resync).
        assert a.state == ("active" if tolerates else "clean")
        a.flush()
        assert a.state == "clean"
        random_writes(a, model, rng, 30)
    assert_consistent(paths, bytes(model), tolerates)


@pytest.mark.parametrize("geo", [g for g in GEOMETRIES if g[3]], ids=_ids)
def test_degraded_writes_keep_missing_data_recoverable(
    geo: tuple[str, int, str | None, int], tmp_path: Path
) -> None:
    """Write with as many members missing as the level covers; the missing members' data
    stays readable from parity/mirrors, and a rebuild restores a consistent array."""
    level, n, layout, tolerates = geo
    paths = make(tmp_path, level, n, layout)
    rng = random.Random("degraded" + _ids(geo))
    with fastraid.open(paths) as a:
        model = bytearray(a.read(0, a.size))
        random_writes(a, model, rng, 20)
    missing = sorted(rng.sample(range(n), tolerates))
    if level == "raid10":  # leave one copy of every chunk: drop adjacent-copy-free slots
        missing = [0] if tolerates == 1 else [0, 1]
    present = [p for i, p in enumerate(paths) if i not in missing]
    with fastraid.open(present) as a:
        assert a.degraded
        random_writes(a, model, rng, 80)
        assert a.read(0, a.size) == model
    with fastraid.open(present, readonly=True) as a:
        assert a.read(0, a.size) == model
    # Rebuild the missing slots onto new files; the array is whole and consistent again.
    for slot in missing:
        fastraid.rebuild(present, slot=slot, new=paths[slot] + ".new")
        present.append(paths[slot] + ".new")
    assert_consistent(present, bytes(model), tolerates)


def test_volume_is_a_writable_file(tmp_path: Path) -> None:
    paths = make(tmp_path, "raid5", 3, None)
    with fastraid.open(paths) as a, a.volume() as f:
        assert f.writable() and f.readable() and f.seekable()
        f.seek(1000)
        assert f.write(b"hello world") == 11
        assert f.tell() == 1011
        f.seek(-5, os.SEEK_END)
        assert f.write(b"0123456789") == 5, "a write across the end is short"
        with pytest.raises(OSError) as e:
            f.write(b"x")
        assert e.value.errno == 28  # ENOSPC, like a full block device
        f.flush()
        assert a.state == "clean"
        assert a.read(1000, 11) == b"hello world"
        assert a.read(a.size - 5, 5) == b"01234"


# ----------------------------------------------------------------------------------------
# md's on-disk protocol (shared/docs/md-format.md 8.2, 8.3)
# ----------------------------------------------------------------------------------------


def sb_fields(path: str) -> dict[str, int]:
    """events, resync_offset and the bitmap (1.2: superblock at 4096, bitmap at 8192)."""
    with open(path, "rb") as f:
        f.seek(4096)
        sb = f.read(256)
        f.seek(8192)
        bm = f.read(4096)
    assert bm[:4] == b"bitm"
    events, cleared, sync_size = struct.unpack_from("<QQQ", bm, 24)
    chunk = struct.unpack_from("<I", bm, 52)[0]
    nbits = -(-sync_size * 512 // chunk)
    bits = int.from_bytes(bm[256 : 256 + -(-nbits // 8)], "little")
    return {
        "events": struct.unpack_from("<Q", sb, 200)[0],
        "resync_offset": struct.unpack_from("<Q", sb, 208)[0],
        "bm_events": events,
        "bm_cleared": cleared,
        "bm_chunk_sectors": chunk // 512,
        "bits": bits,
    }


def test_dirty_bits_then_clean_on_disk(tmp_path: Path) -> None:
    paths = [str(tmp_path / f"m{i}.img") for i in range(3)]
    fastraid.create(paths, level=5, chunk=64 * 1024, size=32 * MiB).close()
    before = [sb_fields(p) for p in paths]
    assert all(b["resync_offset"] == 2**64 - 1 and b["bits"] == 0 for b in before)
    e0 = before[0]["events"]
    a = fastraid.open(paths)
    a.write(5 * MiB, b"x" * 1000)
    during = [sb_fields(p) for p in paths]
    for d in during:
        # Dirty superblock, bitmap in step, exactly the bit of the member region written:
        # array byte 5 MiB is in stripe 40 (128 KiB of data per stripe) -> member sector
        # 40 * 128 -> bit 5120 // chunk.
        assert d["resync_offset"] == 0 and d["events"] == e0 + 1
        assert d["bm_events"] == d["events"]
        assert d["bits"] == 1 << (40 * 128 // d["bm_chunk_sectors"])
    a.close()
    after = [sb_fields(p) for p in paths]
    for x in after:
        # Clean again; a pure dirty/clean flip goes back to the same event count (as md).
        assert x["resync_offset"] == 2**64 - 1 and x["events"] == e0
        assert x["bits"] == 0 and x["bm_events"] == x["bm_cleared"] == e0


def test_unclean_stop_resyncs_only_the_dirty_bits(tmp_path: Path) -> None:
    """What a crash leaves (superblocks dirty, bits set, parity stale where data changed
    behind its back) is resynced at open exactly where the bits say."""
    paths = [str(tmp_path / f"m{i}.img") for i in range(3)]
    fastraid.create(paths, level=5, chunk=64 * 1024, size=32 * MiB).close()
    with fastraid.open(paths) as a:
        a.write(0, random.Random(1).randbytes(a.size))
        size = a.size
    # Mark dirty as a writer would (one write in bit 0's region, not flushed) ...
    a = fastraid.open(paths)
    a.write(100, b"new")
    # ... and change data behind parity's back in two places, as a crash between data and
    # parity writes would: inside the dirty bit's region and far outside it.
    bits = sb_fields(paths[0])
    chunk = bits["bm_chunk_sectors"] * 512
    with open(paths[0], "r+b") as f:
        for off in (4096, 3 * chunk + 4096):
            f.seek(1 * MiB + off)  # data_offset 1 MiB on 32 MiB members
            f.write(b"\xa5" * 512)
    del a  # no close(): like kill -9, the superblocks stay dirty
    assert sb_fields(paths[0])["resync_offset"] == 0
    with fastraid.open(paths) as b:
        d = b.detail()
        assert d["resync"]["how"] == "bitmap"
        assert d["resync"]["regions"] == 1 and d["resync"]["bytes"] == chunk
        assert d["resync"]["mismatch_sectors"] == 8  # one 4 KiB page, md's unit
        assert any("resynced" in n for n in d["notes"])
        assert b.size == size
    r = fastraid.check(paths)
    # The corruption outside the dirty region is not the protocol's business (md would not
    # touch it either): the scrub still finds exactly that page.
    assert r.mismatch_cnt == 8


def test_dirty_and_degraded_is_refused_unless_forced(tmp_path: Path) -> None:
    paths = [str(tmp_path / f"m{i}.img") for i in range(3)]
    fastraid.create(paths, level=5, chunk=64 * 1024, size=8 * MiB).close()
    a = fastraid.open(paths)
    a.write(0, b"x" * 10)
    del a  # dirty on disk
    with pytest.raises(fastraid.AssemblyError, match="not stopped cleanly and is degraded"):
        fastraid.open(paths[:2])
    with fastraid.open(paths[:2], force=True) as b:
        assert any("by force" in n for n in b.detail()["notes"])
        assert b.read(0, 10) == b"x" * 10


# ----------------------------------------------------------------------------------------
# Membership: fail, remove, add, rebuild, replace
# ----------------------------------------------------------------------------------------


def test_fail_remove_add_rebuild_replace(tmp_path: Path) -> None:
    paths = make(tmp_path, "raid6", 5, "left-symmetric")
    rng = random.Random(7)
    with fastraid.open(paths) as a:
        model = bytearray(a.read(0, a.size))
        random_writes(a, model, rng, 30)
        assert a.fail(1) == paths[1]
        assert a.members[1] is None and a.degraded
        states = {m["path"]: m["state"] for m in a.detail()["members"]}
        assert states[paths[1]] in ("faulty", "stale")
        random_writes(a, model, rng, 30)
        assert a.fail(3) == paths[3]
        with pytest.raises(fastraid.TooManyFailuresError):
            a.fail(0)
        with pytest.raises(fastraid.InvalidArgumentError, match="fail"):
            a.remove(0)
        assert a.remove(1) == [paths[1]]
        assert paths[1] not in a.paths
        random_writes(a, model, rng, 30)
        spare = str(tmp_path / "spare.img")
        info = a.add(spare)
        assert info["created"] and spare in a.paths
        assert {m["path"]: m["state"] for m in a.detail()["members"]}[spare] == "spare"
        seen: list[tuple[int, int]] = []
        r = a.rebuild(progress=lambda done, total, rate: seen.append((done, total)))
        assert r["target"] == spare and seen and seen[-1][0] == seen[-1][1]
        assert a.read(0, a.size) == model
        new = str(tmp_path / "new.img")
        r = a.replace(0, new)
        assert r["replaced"] == paths[0]
        assert a.members[0] == new
        random_writes(a, model, rng, 20)
        assert a.read(0, a.size) == model
        assert a.remove(0) == [paths[0]], "the replaced member"
        spare2 = str(tmp_path / "spare2.img")
        a.add(spare2)
        assert a.remove(spare2) == [spare2] and spare2 not in a.paths
        with pytest.raises(fastraid.InvalidArgumentError, match="fail it first"):
            a.remove(new)
        final = [m for m in a.members if m is not None]
    # One slot (3) is still missing: read with the members that are there.
    with fastraid.open(final, readonly=True) as b:
        assert b.read(0, b.size) == model and b.members.count(None) == 1


def test_add_refuses_foreign_content(tmp_path: Path) -> None:
    paths = make(tmp_path, "raid1", 2, None)
    (tmp_path / "o").mkdir()
    other = make(tmp_path / "o", "raid1", 2, None)
    before = hashlib.sha256(Path(other[0]).read_bytes()).hexdigest()
    with fastraid.open(paths) as a:
        with pytest.raises(fastraid.MemberInUseError, match="raid1"):
            a.add(other[0])
        assert hashlib.sha256(Path(other[0]).read_bytes()).hexdigest() == before
        with pytest.raises(fastraid.InvalidArgumentError, match="already a member"):
            a.add(paths[1])
        a.add(other[0], force=True)
        assert other[0] in a.paths


# ----------------------------------------------------------------------------------------
# Bad input
# ----------------------------------------------------------------------------------------


def test_one_writer_at_a_time(tmp_path: Path) -> None:
    paths = make(tmp_path, "raid1", 2, None)
    with fastraid.open(paths) as a:
        with pytest.raises(fastraid.MemberError, match="in use by another writer"):
            fastraid.open(paths)
        with fastraid.open(paths, readonly=True) as r:  # readers take no lock
            assert r.read(0, 10) == a.read(0, 10)
    with fastraid.open(paths) as b:  # released at close
        assert b.writable


def test_bad_writes_change_nothing(tmp_path: Path) -> None:
    paths = make(tmp_path, "raid5", 3, None)
    digest = [hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in paths]
    with fastraid.open(paths) as a:
        with pytest.raises(fastraid.InvalidArgumentError, match="outside"):
            a.write(a.size - 1, b"ab")
        with pytest.raises(fastraid.InvalidArgumentError, match="negative"):
            a.write(-1, b"a")
        with pytest.raises(fastraid.BufferTypeError):
            a.write(0, "text")  # type: ignore[arg-type]
        assert a.write(5, b"") == 0
    assert [hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in paths] == digest
    with pytest.raises(fastraid.InvalidArgumentError, match="closed"):
        a.write(0, b"x")


def test_read_only_member_is_an_error_not_a_degraded_array(tmp_path: Path) -> None:
    """A member that cannot be opened for writing fails the open; it is not left out
    (which would silently run the array degraded). Root may write a mode-0444 file, so
    the member is made immutable (chattr +i), which stops root too."""
    paths = make(tmp_path, "raid5", 3, None)
    if os.geteuid() == 0:
        if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", paths[2]]).returncode:
            pytest.skip("running as root without chattr +i: cannot make a read-only file")
    else:
        os.chmod(paths[2], 0o444)
    try:
        digest = [hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in paths]
        with pytest.raises(fastraid.MemberError, match="cannot open"):
            fastraid.open(paths)
        with fastraid.open(paths, readonly=True) as a:
            assert not a.degraded
        assert [hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in paths] == digest
    finally:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", paths[2]], check=False)


def test_writing_what_is_only_readable_is_refused(md_copy: Any) -> None:
    """An interrupted reshape and metadata 0.90 open read-only only, with a reason."""
    for name, match in (
        ("raid5-grow-3to4-interrupted", "reshape"),
        ("raid5-v090-3", "0.90"),
    ):
        paths = [str(p) for p in md_copy(name)]
        digest = [hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in paths]
        with pytest.raises(fastraid.NotSupportedError, match=match):
            fastraid.open(paths)
        assert [hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in paths] == digest


def test_kernel_made_array_is_written_and_stays_md(md_copy: Any) -> None:
    """A kernel-made RAID-5 (no bitmap): fastraid writes it with resync_offset as the
    dirty marker, and reads back what it wrote, also with a member left out."""
    paths = [str(p) for p in md_copy("raid5-ls-3")]
    rng = random.Random(3)
    with fastraid.open(paths) as a:
        model = bytearray(a.read(0, a.size))
        random_writes(a, model, rng, 40)
    assert_consistent(paths, bytes(model), 1)
