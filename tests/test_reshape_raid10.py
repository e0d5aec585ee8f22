"""RAID-10 reshapes (``Array.reshape``, ``fastraid.reshape``, ``grow --continue``,
``fastraid grow``): near and offset layouts grown by added members, chunk changes and
near <-> offset changes keep the content, read right while they run (the superblocks
describe the reshape as md does: RESHAPE_ACTIVE, NEW_OFFSET, a data-offset change of at
least md's minimum) and after, with every copy written (scrub mismatch_cnt 0) and the space
a grow adds reading as zeros. md's own interrupted RAID-10 reshapes (kernel cases) are
finished to their pattern. What md cannot do (far layouts, another number of copies) and
what fastraid does not (shrinking, degraded arrays, no room to move the data) is refused
before anything is written.
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path
from typing import Any

import fastraid
import pytest
from conftest import kernel_case

KERNEL = Path(__file__).parent / "fixtures" / "kernel"
CHUNK = 64 * 1024
MEMBER = 4 << 20


def make(tmp: Path, layout: str, n: int, *, metadata: str = "1.2") -> list[Path]:
    rng = random.Random(f"{layout}{n}{metadata}")
    paths = []
    for i in range(n):
        p = tmp / f"m{i}.img"
        p.write_bytes(rng.randbytes(MEMBER))
        paths.append(p)
    fastraid.plan_create(
        paths, level="raid10", layout=layout, chunk=CHUNK, force=True, metadata=metadata
    ).execute()
    return paths


def content(paths: list[Path], length: int | None = None) -> bytes:
    with fastraid.open(paths, readonly=True) as a:
        return a.read(0, a.size if length is None else length)


def min_offset(old_layout: str, old_chunk: int, new_layout: str, new_chunk: int) -> int:
    """md's smallest data-offset change for a RAID-10 reshape, in sectors (raid10.c run)."""

    def fc(layout: str) -> int:
        return int(layout[1:]) if layout[0] in "fo" else 1

    return max(old_chunk * fc(old_layout), new_chunk * fc(new_layout)) // 512


def assert_clean(paths: list[Path], before: bytes, **want: Any) -> None:
    with fastraid.open(paths, readonly=True) as a:
        assert a.state == "clean", a.detail()
        assert not any("reshape in progress" in n for n in a.detail()["notes"])
        for k, v in want.items():
            assert getattr(a, k) == v, (k, getattr(a, k), v)
        assert a.read(0, len(before)) == before
        assert a.read(len(before), a.size - len(before)) == bytes(a.size - len(before))
        assert a.check().mismatch_cnt == 0
    for p in paths:
        (sb,) = fastraid.examine(p)
        assert sb["reshape"] is None and sb["feature_map"].split()[0] in ("0x0", "0x1"), sb


# (layout, members, added, reshape arguments, expected (layout, chunk))
KINDS = [
    ("n2", 4, 1, {}, ("n2", CHUNK)),
    ("n2", 3, 2, {}, ("n2", CHUNK)),
    ("o2", 3, 1, {}, ("o2", CHUNK)),
    ("n3", 4, 2, {}, ("n3", CHUNK)),
    ("n2", 4, 0, {"layout": "o2"}, ("o2", CHUNK)),
    ("o2", 4, 0, {"layout": "n2"}, ("n2", CHUNK)),
    ("n2", 4, 0, {"chunk": 2 * CHUNK}, ("n2", 2 * CHUNK)),
    ("o2", 4, 0, {"chunk": CHUNK // 2}, ("o2", CHUNK // 2)),
    ("n2", 3, 1, {"layout": "o2", "chunk": 2 * CHUNK}, ("o2", 2 * CHUNK)),
]


@pytest.mark.parametrize(
    "layout,n,added,kw,want",
    KINDS,
    ids=[
        "n2-4to5",
        "n2-3to5",
        "o2-3to4",
        "n3-4to6",
        "n2-to-o2",
        "o2-to-n2",
        "n2-chunk-64to128",
        "o2-chunk-64to32",
        "n2-3to4-o2-128",
    ],
)
def test_reshape_keeps_content(
    tmp_path: Path,
    layout: str,
    n: int,
    added: int,
    kw: dict[str, Any],
    want: tuple[str, int],
) -> None:
    paths = make(tmp_path, layout, n)
    before = content(paths)
    with fastraid.open(paths) as a:
        for i in range(added):
            a.add(tmp_path / f"new{i}.img")
            paths.append(tmp_path / f"new{i}.img")
    plan = fastraid.plan_reshape(paths, raid_devices=n + added if added else None, **kw)
    d = plan.describe()
    assert d["kind"] == "start" and d["level"] == "raid10"
    assert -d["new_offset_sectors"] >= min_offset(layout, CHUNK, want[0], want[1])
    reads: list[int] = []

    def progress(done: int, total: int, rate: float) -> None:
        # Read while it runs (another open of the members, between two batches).
        if len(reads) < 2 and 0 < done < total:
            assert content(paths, len(before)) == before, f"at {done} of {total}"
            reads.append(done)

    report = plan.execute(progress)
    assert reads and report["size"] >= len(before)
    assert_clean(paths, before, layout=want[0], chunk=want[1], raid_devices=n + added)
    with fastraid.open(paths) as a:  # writable afterwards
        a.write(a.size - 8192, b"z" * 8192)
        assert a.read(a.size - 8192, 8192) == b"z" * 8192
        assert a.check().mismatch_cnt == 0


def test_mid_reshape_superblocks_are_mds(tmp_path: Path) -> None:
    """Stopped half-way (the progress callback raises), the superblocks say what md says
    mid-reshape; the array reads right; grow_continue finishes it."""
    paths = make(tmp_path, "o2", 3)
    before = content(paths)
    with fastraid.open(paths) as a:
        a.add(tmp_path / "new.img")
    paths.append(tmp_path / "new.img")

    def stop(done: int, total: int, rate: float) -> None:
        if done > total // 2:
            raise KeyboardInterrupt

    plan = fastraid.plan_reshape(paths, raid_devices=4, batch_bytes=256 * 1024)
    with pytest.raises(KeyboardInterrupt):
        plan.execute(stop)
    sbs = [fastraid.examine(p)[0] for p in paths]
    for sb in sbs:
        assert "RESHAPE_ACTIVE" in sb["feature_map"] and "NEW_OFFSET" in sb["feature_map"]
        assert "RESHAPE_BACKWARDS" not in sb["feature_map"]
        r = sb["reshape"]
        assert sb["raid_devices"] == 4 and r["delta_disks"] == 1, sb
        assert r["new_layout"] == sb["layout_number"] and r["new_chunk"] == CHUNK
        assert r["new_offset"] <= -min_offset("o2", CHUNK, "o2", CHUNK)
        assert 0 < r["position"] * 512 < len(before) and r["position"] % (CHUNK // 512) == 0
        assert sb["resync_offset"] is None
    assert sorted(sb["slot"] for sb in sbs) == [0, 1, 2, 3]
    assert len({json.dumps(sb["reshape"]) for sb in sbs}) == 1
    with fastraid.open(paths, readonly=True) as a:
        assert a.read(0, len(before)) == before
        assert a.detail()["reshape"]["position"] == sbs[0]["reshape"]["position"]
    with pytest.raises(fastraid.InvalidArgumentError):
        fastraid.plan_reshape(paths, raid_devices=4, layout="n2")  # another target
    fastraid.grow_continue(paths)
    offsets = {sb["data_offset"] + sb["reshape"]["new_offset"] for sb in sbs}
    assert {fastraid.examine(p)[0]["data_offset"] for p in paths} == offsets
    assert_clean(paths, before, layout="o2", raid_devices=4)


def test_backwards(tmp_path: Path) -> None:
    """A reshape uses all the room before the data; the next one finds room only after
    it (data_size grew by as much) and runs backwards, as md does (RESHAPE_BACKWARDS with
    the same number of members, a positive new_offset)."""
    paths = make(tmp_path, "n2", 4)
    before = content(paths)
    fastraid.reshape(paths, chunk=2 * CHUNK)
    plan = fastraid.plan_reshape(paths, layout="o2", batch_bytes=128 * 1024)
    d = plan.describe()
    assert d["new_offset_sectors"] >= min_offset("n2", 2 * CHUNK, "o2", 2 * CHUNK), d
    assert d["start"] == d["size"]

    def stop(done: int, total: int, rate: float) -> None:
        if done > total // 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        plan.execute(stop)
    (sb,) = fastraid.examine(paths[0])
    assert "RESHAPE_BACKWARDS" in sb["feature_map"] and sb["reshape"]["backwards"]
    assert 0 < sb["reshape"]["position"] * 512 < len(before)
    assert content(paths, len(before)) == before
    fastraid.grow_continue(paths)
    assert_clean(paths, before, layout="o2", chunk=2 * CHUNK)


def test_bitmap_follows_a_grow(tmp_path: Path) -> None:
    """RAID-10 bitmaps count array sectors: a grow resizes the bitmap as md_bitmap_resize
    does (sync_size the new array size, in the same space) and marks the added space while
    it runs (the kernel resyncs what it would take over); at the finish every copy is
    written and the bits are clear. Writes past the old size are covered afterwards."""
    paths = make(tmp_path, "n2", 4)
    (sb,) = fastraid.examine(paths[0])
    assert sb["bitmap_offset"] == 8, sb
    at = (sb["super_offset"] + sb["bitmap_offset"]) * 512

    def bitmap(p: Path) -> tuple[int, int, bytes]:
        with p.open("rb") as f:
            f.seek(at)
            head = f.read(512)
        assert head[:4] == b"bitm"
        sync, chunk = int.from_bytes(head[40:48], "little"), int.from_bytes(head[52:56], "little")
        return sync, chunk, head[256:]

    with fastraid.open(paths) as a:
        a.add(tmp_path / "new.img")
    paths.append(tmp_path / "new.img")
    before = content(paths)

    def stop(done: int, total: int, rate: float) -> None:
        if done > total // 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fastraid.plan_reshape(paths, raid_devices=5, batch_bytes=256 * 1024).execute(stop)
    sync, chunk, bits = bitmap(paths[0])
    size = sync * 512
    assert size > len(before)
    marked = {i for i in range(len(bits) * 8) if bits[i // 8] >> (i % 8) & 1}
    assert marked == set(range(len(before) // chunk, -(-size // chunk))), marked
    fastraid.grow_continue(paths)
    assert not any(b for p in paths for b in bitmap(p)[2])
    with fastraid.open(paths) as a:
        assert a.size == size
        a.write(size - 4096, b"b" * 4096)
    for p in paths:
        assert bitmap(p)[:2] == (sync, chunk)
    with fastraid.open(paths, readonly=True) as a:
        assert a.state == "clean" and a.read(0, len(before)) == before
        assert a.check().mismatch_cnt == 0


KERNEL_CASES = sorted(p.name for p in KERNEL.glob("raid10-*-cut*"))


@pytest.mark.parametrize("name", KERNEL_CASES)
def test_grow_continue_kernel_cases(tmp_path: Path, name: str) -> None:
    """md's interrupted RAID-10 reshapes (cut by a power loss), finished by fastraid: the
    pattern, zeros past it, every copy equal, data_offset moved by md's new_offset (their
    revert: tests/test_reshape_raid10_revert.py)."""
    paths, _, manifest = kernel_case(tmp_path, name)
    expected = manifest["expected"]
    sbs = [fastraid.examine(p)[0] for p in paths]
    plan = fastraid.plan_reshape(paths, continue_only=True, batch_bytes=512 * 1024)
    assert plan.describe()["kind"] == "continue"
    plan.execute()
    data = content(paths, expected["length_bytes"])
    assert hashlib.sha256(data).hexdigest() == expected["sha256"]
    geo = manifest["reshape"]["superblock_geometry"]
    with fastraid.open(paths, readonly=True) as a:
        assert a.state == "clean"
        assert a.raid_devices == geo["raid_disks"]
        assert a.chunk == geo["new_chunk_sectors"] * 512
        n = expected["length_bytes"]
        assert a.read(n, a.size - n) == bytes(a.size - n)
        assert a.check().mismatch_cnt == 0
    for p, sb in zip(paths, sbs, strict=True):
        (now,) = fastraid.examine(p)
        assert now["reshape"] is None
        assert now["data_offset"] == sb["data_offset"] + sb["reshape"]["new_offset"]
        assert now["layout_number"] == geo["new_layout"]


def test_refusals(tmp_path: Path) -> None:
    (tmp_path / "n").mkdir()
    paths = make(tmp_path / "n", "n2", 4)
    sums = [hashlib.sha256(p.read_bytes()).hexdigest() for p in paths]
    for kw, what in (
        ({"layout": "f2"}, "far"),
        ({"layout": "n3"}, "copies"),
        ({"layout": "o3"}, "copies"),
        ({"raid_devices": 3}, "shrinking"),
    ):
        with pytest.raises(fastraid.NotSupportedError, match=what):
            fastraid.plan_reshape(paths, **kw)  # type: ignore[arg-type]
    with pytest.raises(fastraid.InvalidArgumentError):
        fastraid.plan_reshape(paths, raid_devices=5)  # no spare added
    with pytest.raises(fastraid.InvalidArgumentError):
        fastraid.grow_continue(paths)  # nothing in progress
    # degraded: one member left out
    with pytest.raises(fastraid.NotSupportedError, match="degraded"):
        fastraid.plan_reshape(paths[1:], layout="o2")
    assert [hashlib.sha256(p.read_bytes()).hexdigest() for p in paths] == sums

    (tmp_path / "f").mkdir()
    far = make(tmp_path / "f", "f2", 4)
    with fastraid.open(far) as a:
        a.add(tmp_path / "f" / "new.img")
    with pytest.raises(fastraid.NotSupportedError, match="far"):
        fastraid.plan_reshape([*far, tmp_path / "f" / "new.img"], raid_devices=5)
    with pytest.raises(fastraid.NotSupportedError, match="far"):
        fastraid.plan_reshape(far, layout="n2")

    # metadata 1.0: no room to move the data (md's RAID-10 reshapes always move it)
    (tmp_path / "m").mkdir()
    m10 = make(tmp_path / "m", "n2", 4, metadata="1.0")
    with fastraid.open(m10) as a:
        a.add(tmp_path / "m" / "new.img")
    with pytest.raises(fastraid.NotSupportedError, match="free sectors"):
        fastraid.plan_reshape([*m10, tmp_path / "m" / "new.img"], raid_devices=5)


def test_cli_grow(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from fastraid.cli import main

    paths = make(tmp_path, "o2", 3)
    before = content(paths)
    new = tmp_path / "new.img"
    args = [*map(str, paths), "--add", str(new), "--raid-devices", "4", "--layout", "n2"]
    assert main(["grow", *args, "--yes", "--progress", "json"]) == 0
    out = capsys.readouterr().out
    assert "raid10" in out and "power cut" in out
    assert_clean([*paths, new], before, layout="n2", raid_devices=4)
    assert main(["grow", *map(str, paths), str(new), "--continue", "--yes"]) == 1
