"""Reverting an interrupted RAID-10 reshape (``fastraid.grow_continue(members, revert=True)``,
src/reshape/revert.rs ``decide_raid10``): md's turn-around in the superblocks at a chunk
boundary of both geometries (no write-back: the RAID-10 reader trusts the checkpoint), then
the engine runs it back. The array ends clean, not in reshape, in the old geometry, with the
original content and every copy equal; the members a grow added are spares again.
"""

from __future__ import annotations

import hashlib
import random
from pathlib import Path
from typing import Any

import fastraid
import pytest
from conftest import kernel_case
from killharness import Stop, finished_superblocks_only, kill_rounds, stop_at

CHUNK = 64 * 1024
MEMBER = 8 << 20


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make(
    tmp: Path, layout: str, n: int, spares: int, member: int = MEMBER
) -> tuple[list[Path], bytes]:
    """A clean RAID-10 of ``n`` members plus ``spares`` blank members; its content."""
    rng = random.Random(f"{layout}{n}{spares}")
    paths = []
    for i in range(n + spares):
        p = tmp / f"m{i}.img"
        p.write_bytes(bytes(member))
        paths.append(p)
    fastraid.plan_create(
        paths[:n], level="raid10", layout=layout, chunk=CHUNK, force=True
    ).execute()
    with fastraid.open(paths[:n]) as a:
        data = rng.randbytes(a.size)
        a.write(0, data)
        for p in paths[n:]:
            a.add(p)
    return paths, data


def interrupt(paths: list[Path], kw: dict[str, Any], fraction: float) -> None:
    plan = fastraid.plan_reshape(paths, batch_bytes=64 * 1024, checkpoint_bytes=0, **kw)
    with pytest.raises(Stop):
        plan.execute(stop_at(fraction))
    d = fastraid.plan_reshape(paths, continue_only=True).describe()
    assert d["kind"] == "continue", d


def assert_reverted(paths: list[Path], n: int, data: bytes, layout: str, chunk: int) -> None:
    with fastraid.open(paths, readonly=True) as a:
        assert (a.raid_devices, a.layout, a.chunk) == (n, layout, chunk)
        assert a.state == "clean", a.detail()
        assert not any("reshape in progress" in x for x in a.detail()["notes"])
        assert a.size == len(data)
        assert a.read(0, len(data)) == data
        assert a.check().mismatch_cnt == 0
    for p in paths:
        (sb,) = fastraid.examine(p)
        assert sb["reshape"] is None, sb
    for p in paths[n:]:
        assert fastraid.examine(p)[0]["role"] == "spare", p
    leftovers = [p.name for p in paths[0].parent.glob("fastraid-*")]
    assert not leftovers, leftovers


SCENARIOS = [
    # layout, members, added, reshape, stopped at
    ("n2", 4, 1, {"raid_devices": 5}, 0.4),
    ("o2", 3, 1, {"raid_devices": 4}, 0.5),
    ("n2", 4, 0, {"chunk": 2 * CHUNK}, 0.5),
    ("o2", 4, 0, {"chunk": CHUNK // 2}, 0.45),
    ("n2", 4, 0, {"layout": "o2"}, 0.5),
    ("o2", 4, 0, {"layout": "n2"}, 0.3),
    ("n2", 4, 1, {"raid_devices": 5}, 0.97),
]


@pytest.mark.parametrize(
    "layout,n,added,kw,fraction",
    SCENARIOS,
    ids=[
        "n2-grow-4to5",
        "o2-grow-3to4",
        "n2-chunk-64to128",
        "o2-chunk-64to32",
        "n2-to-o2",
        "o2-to-n2",
        "n2-grow-4to5-nearly-done",
    ],
)
def test_revert_fastraid_raid10_reshape(
    tmp_path: Path, layout: str, n: int, added: int, kw: dict[str, Any], fraction: float
) -> None:
    paths, data = make(tmp_path, layout, n, added)
    interrupt(paths, kw, fraction)
    plan = fastraid.plan_reshape(paths, revert=True)
    assert plan.describe()["kind"] == "revert", plan
    str(plan)
    plan.execute()
    assert_reverted(paths, n, data, layout, CHUNK)


def test_revert_of_a_turned_raid10_revert_stopped_half_way(tmp_path: Path) -> None:
    """A revert stopped after the turn is finished by a plain ``--continue`` (or a rerun)."""
    paths, data = make(tmp_path, "n2", 4, 1)
    interrupt(paths, {"raid_devices": 5}, 0.6)
    with pytest.raises(Stop):
        fastraid.grow_continue(
            paths, revert=True, batch_bytes=64 * 1024, checkpoint_bytes=0, progress=stop_at(0.5)
        )
    d = fastraid.plan_reshape(paths, continue_only=True).describe()
    assert (d["kind"], d["raid_devices"]) == ("continue", 4), d
    with fastraid.open(paths, readonly=True) as a:
        assert a.read(0, len(data)) == data
    fastraid.grow_continue(paths, revert=True)
    assert_reverted(paths, 4, data, "n2", CHUNK)


def test_revert_of_a_raid10_grow_that_moved_nothing(tmp_path: Path) -> None:
    paths, data = make(tmp_path, "n2", 4, 1)
    interrupt(paths, {"raid_devices": 5}, 0.0)
    d = fastraid.plan_reshape(paths, continue_only=True).describe()
    if d["checkpoint"] == 0:
        assert fastraid.plan_reshape(paths, revert=True).describe()["revert_step"] == "cancel"
    fastraid.grow_continue(paths, revert=True)
    assert_reverted(paths, 4, data, "n2", CHUNK)


def test_refusals_leave_the_members_alone(tmp_path: Path) -> None:
    paths, _ = make(tmp_path, "n2", 4, 0)
    with pytest.raises(fastraid.InvalidArgumentError, match="nothing to revert"):
        fastraid.grow_continue(paths, revert=True)
    paths2 = tmp_path / "b"
    paths2.mkdir()
    ps, _ = make(paths2, "n2", 4, 1)
    interrupt(ps, {"raid_devices": 5}, 0.5)
    sums = [sha(p.read_bytes()) for p in ps]
    with pytest.raises(fastraid.InvalidArgumentError, match="no new geometry"):
        fastraid.plan_reshape(ps, revert=True, layout="o2")
    assert [sha(p.read_bytes()) for p in ps] == sums


KERNEL_CASES = sorted(
    p.name for p in (Path(__file__).parent / "fixtures" / "kernel").glob("raid10-*-cut*")
)


@pytest.mark.parametrize("name", KERNEL_CASES)
def test_revert_kernel_raid10_cases(tmp_path: Path, name: str) -> None:
    paths, backup, manifest = kernel_case(tmp_path, name)
    old = manifest["reshape"]["old_geometry"]
    expected = manifest["expected"]
    fastraid.grow_continue(paths, revert=True, backup_file=backup)
    with fastraid.open(paths, readonly=True) as a:
        assert a.raid_devices == int(old["raid_disks"])
        assert a.chunk == old["chunk_bytes"]
        assert a.state == "clean", a.detail()
        assert not any("reshape in progress" in x for x in a.detail()["notes"])
        assert sha(a.read(0, expected["length_bytes"])) == expected["sha256"]
        assert a.check().mismatch_cnt == 0
    for p in paths:
        assert fastraid.examine(p)[0]["reshape"] is None
    assert not list(tmp_path.glob("fastraid-*"))


def test_raid10_revert_survives_sigkill(tmp_path: Path) -> None:
    rng = random.Random("kill-raid10")
    pristine = tmp_path / "pristine"
    pristine.mkdir()
    paths, data = make(pristine, "n2", 4, 1)
    interrupt(paths, {"raid_devices": 5}, rng.uniform(0.3, 0.7))
    seen: dict[str, int] = {}

    def after_kill(members: list[str], rounds: int) -> None:
        try:
            step = fastraid.plan_reshape(members, revert=True).describe()["revert_step"]
        except fastraid.InvalidArgumentError:
            step = "done"
        seen[step] = seen.get(step, 0) + 1
        if step == "superblocks" or finished_superblocks_only(members, {"continue_only": True}):
            return
        with fastraid.open(members, readonly=True) as a:
            assert a.read(0, len(data)) == data, f"round {rounds}: content lost"

    def at_end(members: list[str], rounds: int) -> None:
        assert_reverted(list(map(Path, members)), 4, data, "n2", CHUNK)

    kill_rounds(
        pristine,
        [p.name for p in paths],
        tmp_path / "work",
        kw={"revert": True},
        kills=8,
        rng=rng,
        after_kill=after_kill,
        at_end=at_end,
        max_delay=0.45,
    )
    print(f"states after the kills: {seen}")


@pytest.mark.slow
def test_kernel_assembles_a_reverted_raid10_grow(tmp_path: Path) -> None:
    from kernelmd import check, summary

    paths, data = make(tmp_path, "n2", 4, 1)
    interrupt(paths, {"raid_devices": 5}, 0.5)
    fastraid.grow_continue(paths, revert=True)
    assert_reverted(paths, 4, data, "n2", CHUNK)
    r = check(paths, sha_bytes=len(data))
    why = summary(r)
    assert r["assembled"] and r["exit_code"] == 0, why
    assert not [e for e in r["sync_events"] if "resync" in e or "recovery" in e], why
    assert r["degraded"] == 0 and r["raid_disks"] == 4, why
    assert r["sha256"] == sha(data), why
    assert r["scrub"]["finished"] and r["scrub"]["mismatch_cnt"] == 0, why


def test_reverted_grow_gives_the_bitmap_back(tmp_path: Path) -> None:
    """The grow resized the bitmap and marked the added space; the reverted grow leaves a
    bitmap of the array's size (the grow's chunk) with no bit set."""
    paths, data = make(tmp_path, "n2", 4, 1)
    (sb,) = fastraid.examine(paths[0])
    if not sb["bitmap_offset"]:
        pytest.skip("no internal bitmap on these members")
    at = (sb["super_offset"] + sb["bitmap_offset"]) * 512

    def bitmap(p: Path) -> tuple[int, bytes]:
        with p.open("rb") as f:
            f.seek(at)
            head = f.read(512)
        assert head[:4] == b"bitm"
        return int.from_bytes(head[40:48], "little"), head[256:]

    interrupt(paths, {"raid_devices": 5}, 0.5)
    assert bitmap(paths[0])[0] * 512 > len(data)
    fastraid.grow_continue(paths, revert=True)
    for p in paths[:4]:
        sync, bits = bitmap(p)
        assert sync * 512 == len(data)
        assert not any(bits), p
    assert_reverted(paths, 4, data, "n2", CHUNK)
