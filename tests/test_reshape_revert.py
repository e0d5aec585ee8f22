"""Reverting an interrupted reshape (``fastraid.grow_continue(members, revert=True)``,
``fastraid grow MEMBER... --continue --revert``, src/reshape/revert.rs): the reshape is turned
around in the superblocks (md's revert-reshape) and run back, so the array ends clean, not in
reshape, in the geometry it started from, with the original content and consistent parity.

Covered: fastraid's own grows (RAID-4/5/6), shrinks, chunk and layout changes, with the data
moved to new_offset and in place (journaled), stopped half-way by their progress callback;
the kernel-made interrupted reshapes of tests/fixtures/kernel and the incident fixture
(raid5-grow-3to4-interrupted); a reshape that moved nothing (cancelled); refusals that leave
the members byte-identical; a turn-around cut between two superblock writes; SIGKILLs at
random moments during a revert, each followed by a read of the content and, at the end, a
rerun; and the kernel (kernel-md) as the judge of reverted arrays, also finishing a revert
that fastraid left half-way.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fastraid
import pytest
from _md_build import v1_checksum
from conftest import MdImages, kernel_case
from killharness import Stop, finished_superblocks_only, kill_rounds, stop_at

CHUNK = 64 * 1024
MEMBER = 4 << 20


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_sums(paths: list[Path]) -> list[str]:
    return [sha(p.read_bytes()) for p in paths]


def make(
    tmp: Path, level: str, n: int, kw: dict[str, Any], member: int = MEMBER
) -> tuple[list[Path], bytes, dict[str, Any]]:
    """A clean array of ``n`` members (plus the spares a grow needs, added): its paths, its
    content and the reshape arguments (a shrink's kept size filled in)."""
    rng = random.Random(f"{level}{n}{kw}")
    paths = []
    for i in range(n):
        p = tmp / f"m{i}.img"
        p.write_bytes(rng.randbytes(member))
        paths.append(p)
    fastraid.plan_create(paths, level=level, chunk=CHUNK, force=True).execute()
    with fastraid.open(paths) as a:
        data = a.read(0, a.size)
        for i in range(kw.get("raid_devices", n) - n):
            a.add(tmp / f"s{i}.img")
            paths.append(tmp / f"s{i}.img")
    kw = dict(kw)
    if kw.get("raid_devices", n) < n:
        with pytest.raises(fastraid.NotSupportedError) as e:
            fastraid.plan_reshape(paths, **kw)
        kw["array_size"] = int(str(e.value).split("at most ")[1].split()[0])
    return paths, data, kw


def interrupt(paths: list[Path], kw: dict[str, Any], fraction: float) -> dict[str, Any]:
    """Start the reshape and stop it (at a checkpoint) once ``fraction`` of it is written;
    the plan of what is left."""
    plan = fastraid.plan_reshape(paths, batch_bytes=64 * 1024, checkpoint_bytes=0, **kw)
    with pytest.raises(Stop):
        plan.execute(stop_at(fraction))
    d: dict[str, Any] = fastraid.plan_reshape(paths, continue_only=True).describe()
    assert d["kind"] == "continue", d
    return d


def assert_reverted(
    paths: list[Path], n: int, data: bytes, geometry: tuple[str | None, int]
) -> None:
    """Clean, not in reshape, ``n`` members in the old layout/chunk, the original bytes,
    parity consistent, no journal or marker left; the members a grow added are spares."""
    with fastraid.open(paths, readonly=True) as a:
        assert a.raid_devices == n
        assert (a.layout, a.chunk) == geometry
        assert a.state == "clean", a.detail()
        assert not any("reshape in progress" in x for x in a.detail()["notes"])
        assert a.read(0, len(data)) == data
        assert a.check().mismatch_cnt == 0
    for p in paths[n:]:
        assert fastraid.examine(p)[0]["role"] == "spare", p
    leftovers = [p.name for p in paths[0].parent.glob("fastraid-*")]
    assert not leftovers, leftovers


SCENARIOS = [
    # level, members, reshape, where it is stopped
    ("raid5", 3, {"raid_devices": 4}, 0.5),
    ("raid6", 4, {"raid_devices": 5}, 0.3),
    ("raid4", 3, {"raid_devices": 5}, 0.6),
    ("raid5", 5, {"raid_devices": 4}, 0.4),  # shrink, in place (journaled)
    ("raid6", 5, {"raid_devices": 4}, 0.7),
    ("raid5", 4, {"chunk": 128 * 1024}, 0.5),  # data moved to new_offset
    ("raid5", 4, {"chunk": 32 * 1024}, 0.5),  # backwards, in place
    ("raid5", 4, {"layout": "right-asymmetric"}, 0.5),
    ("raid5", 3, {"raid_devices": 4}, 0.97),  # past all the old geometry holds
]


@pytest.mark.parametrize(
    "level,n,kw,fraction",
    SCENARIOS,
    ids=[
        "raid5-grow-3to4",
        "raid6-grow-4to5",
        "raid4-grow-3to5",
        "raid5-shrink-5to4",
        "raid6-shrink-5to4",
        "raid5-chunk-64to128",
        "raid5-chunk-64to32",
        "raid5-layout",
        "raid5-grow-3to4-nearly-done",
    ],
)
def test_revert_fastraid_reshape(
    tmp_path: Path, level: str, n: int, kw: dict[str, Any], fraction: float
) -> None:
    paths, data, kw = make(tmp_path, level, n, kw)
    with fastraid.open(paths, readonly=True) as a:
        geometry = (a.layout, a.chunk)
    interrupt(paths, kw, fraction)
    sums = file_sums(paths)
    plan = fastraid.plan_reshape(paths, continue_only=True, revert=True)
    d = plan.describe()
    assert d["kind"] == "revert" and d["revert_step"] == "turn", d
    assert d["raid_devices"] == n and (d["layout"] or None, d["chunk"]) == geometry
    text = str(plan)
    assert "power cut" in text and "turn the reshape around" in text
    assert all(line.endswith(")") for line in text.splitlines() if line.startswith("   "))
    assert file_sums(paths) == sums, "planning wrote"
    keep = kw.get("array_size", len(data))
    report = fastraid.grow_continue(paths, revert=True)
    assert report["size"] >= keep
    assert_reverted(paths, n, data[:keep], geometry)


def test_revert_the_reshape_of_a_level_change(tmp_path: Path) -> None:
    """RAID-6 -> RAID-5 reshapes to the "-6" layout before its takeover: reverted, the array
    is the RAID-6 it was. RAID-5 -> RAID-6 ends with a reshape from the "-6" layout: reverted,
    it is a RAID-6 in that layout (the takeover is no reshape; the plan says how to go back
    to RAID-5, and that works). Stopped in its recovery of Q, there is nothing to revert."""
    paths, data, _ = make(tmp_path, "raid6", 5, {})
    with pytest.raises(Stop):
        fastraid.plan_reshape(paths, level="raid5", batch_bytes=64 * 1024).execute(stop_at(0.5))
    fastraid.grow_continue(paths, revert=True)
    assert_reverted(paths, 5, data, ("left-symmetric", CHUNK))

    five = tmp_path / "five"
    five.mkdir()
    paths, data, _ = make(five, "raid5", 4, {"raid_devices": 5})
    steps = {"last": -1, "n": 0}

    def in_the_reshape(done: int, total: int, rate: float) -> None:
        steps["n"] += done < steps["last"]  # the recovery of Q, then the reshape
        steps["last"] = done
        if steps["n"] and done >= total // 2:
            raise Stop

    plan = fastraid.plan_reshape(paths, level="raid6", batch_bytes=64 * 1024)
    with pytest.raises(Stop):
        plan.execute(in_the_reshape)
    plan = fastraid.plan_reshape(paths, revert=True)
    assert any("RAID-5 -> RAID-6" in n for n in plan.describe()["notes"]), str(plan)
    plan.execute()
    with fastraid.open(paths, readonly=True) as a:
        assert (a.level, a.layout, a.raid_devices) == ("raid6", "left-symmetric-6", 5)
        assert a.read(0, len(data)) == data and a.check().mismatch_cnt == 0
    fastraid.plan_reshape(paths, level="raid5").execute()
    assert_reverted(paths[:4], 4, data, ("left-symmetric", CHUNK))

    rec = tmp_path / "recovering"
    rec.mkdir()
    paths, data, _ = make(rec, "raid5", 4, {"raid_devices": 5})
    with pytest.raises(Stop):
        fastraid.plan_reshape(paths, level="raid6", batch_bytes=64 * 1024).execute(stop_at(0.5))
    with pytest.raises(fastraid.InvalidArgumentError, match="a recovery is"):
        fastraid.plan_reshape(paths, revert=True)


def test_plain_continue_finishes_a_turned_revert(tmp_path: Path) -> None:
    """After the turn, the reverse is an ordinary reshape in progress: ``--continue`` (no
    --revert) finishes it, and --revert goes on with it rather than turning it back."""
    paths, data, kw = make(tmp_path, "raid5", 3, {"raid_devices": 4})
    interrupt(paths, kw, 0.6)
    with pytest.raises(Stop):
        fastraid.grow_continue(paths, revert=True, batch_bytes=64 * 1024, progress=stop_at(0.3))
    assert list(tmp_path.glob("fastraid-revert-*")), "the marker"
    d = fastraid.plan_reshape(paths, revert=True).describe()
    assert (d["kind"], d["revert_step"], d["raid_devices"]) == ("revert", "resume", 3), d
    with fastraid.open(paths, readonly=True) as a:  # the turned array reads right
        assert a.read(0, len(data)) == data
    d = fastraid.plan_reshape(paths, continue_only=True).describe()
    assert (d["kind"], d["old_raid_devices"], d["raid_devices"]) == ("continue", 4, 3), d
    fastraid.grow_continue(paths)
    with fastraid.open(paths, readonly=True) as a:
        assert a.raid_devices == 3 and a.state == "clean"
        assert a.read(0, len(data)) == data
        assert a.check().mismatch_cnt == 0
    # The marker outlived the revert (a plain --continue finished it): --revert removes it.
    plan = fastraid.plan_reshape(paths, revert=True)
    assert plan.describe()["revert_step"] == "clean-up" and "remove" in str(plan)
    plan.execute()
    assert_reverted(paths, 3, data, ("left-symmetric", CHUNK))


def _set_reshape_position(path: Path, sectors: int) -> None:
    """Patch a v1.2 superblock's reshape_position (offset 104), checksum updated."""
    with path.open("r+b") as f:
        f.seek(8 * 512)
        sb = bytearray(f.read(4096))
        struct.pack_into("<Q", sb, 104, sectors)
        struct.pack_into("<I", sb, 216, v1_checksum(bytes(sb)))
        f.seek(8 * 512)
        f.write(sb)


def test_revert_of_a_reshape_that_moved_nothing_is_a_cancel(tmp_path: Path) -> None:
    """A grow whose checkpoint is still at 0 (its first stripes only in the free space before
    the data, as right after its start) goes back by its superblocks alone."""
    paths, data, kw = make(tmp_path, "raid5", 3, {"raid_devices": 4})
    interrupt(paths, kw, 0.02)
    for p in paths:
        _set_reshape_position(p, 0)
    with fastraid.open(paths, readonly=True) as a:
        assert a.read(0, len(data)) == data
    plan = fastraid.plan_reshape(paths, revert=True)
    assert plan.describe()["revert_step"] == "cancel", str(plan)
    assert "nothing was moved yet" in str(plan)
    fastraid.grow_continue(paths, revert=True)
    assert_reverted(paths, 3, data, ("left-symmetric", CHUNK))


@pytest.mark.parametrize("lagging", [1, 3], ids=["one-member-lags", "three-members-lag"])
def test_turn_cut_between_superblock_writes_is_completed(tmp_path: Path, lagging: int) -> None:
    """A power cut between the superblock writes of the turn leaves some members turned
    (events E+1) and some not (E): ``--continue`` and ``--revert`` alike complete the turn
    (not turn it back) and run the reshape back."""
    paths, data, kw = make(tmp_path, "raid5", 3, {"raid_devices": 4})
    interrupt(paths, kw, 0.5)
    before = [p.read_bytes()[8 * 512 : 8 * 512 + 4096] for p in paths]
    # Turn, and stop at the reverse's first batch (one stripe: no checkpoint yet).
    with pytest.raises(Stop):
        fastraid.grow_continue(paths, revert=True, batch_bytes=64 * 1024, progress=stop_at(0))
    for p, sb in list(zip(paths, before, strict=True))[:lagging]:
        with p.open("r+b") as f:
            f.seek(8 * 512)
            f.write(sb)
    for revert in (False, True):
        d = fastraid.plan_reshape(paths, continue_only=True, revert=revert).describe()
        assert d["kind"] == "revert-superblocks", d
        assert len(d["members"]) == lagging
    fastraid.grow_continue(paths)
    assert_reverted(paths, 3, data, ("left-symmetric", CHUNK))


def test_cli_revert(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from fastraid.cli import main

    paths, data, kw = make(tmp_path, "raid6", 4, {"raid_devices": 5})
    interrupt(paths, kw, 0.5)
    args = ["grow", *map(str, paths)]
    sums = file_sums(paths)
    assert main([*args, "--revert", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "power cut" in out and "back to   : 4 members" in out
    assert main([*args, "--revert", "--dry-run", "--json"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["kind"] == "revert"
    assert file_sums(paths) == sums, "--dry-run wrote"
    assert main([*args, "--revert", "--raid-devices", "5", "--yes"]) == 1
    assert "give no new one" in capsys.readouterr().err
    assert main([*args, "--continue", "--revert", "--yes", "--progress", "none"]) == 0
    assert "reverted:" in capsys.readouterr().out
    assert_reverted(paths, 4, data, ("left-symmetric", CHUNK))
    assert main([*args, "--revert", "--yes"]) == 1
    assert "nothing to revert" in capsys.readouterr().err


def test_refusals_leave_the_members_alone(tmp_path: Path) -> None:
    paths, _, kw = make(tmp_path, "raid5", 4, {"chunk": 32 * 1024})
    with pytest.raises(fastraid.InvalidArgumentError, match="nothing to revert"):
        fastraid.grow_continue(paths, revert=True)
    with pytest.raises(fastraid.InvalidArgumentError, match="no new geometry"):
        fastraid.plan_reshape(paths, revert=True, chunk=32 * 1024)
    # A shrink within one stripe boundary of both geometries of its end: nowhere to turn.
    shrink = tmp_path / "shrink"
    shrink.mkdir()
    paths, _, kw = make(shrink, "raid5", 5, {"raid_devices": 4})
    interrupt(paths, kw, 0.995)
    sums = file_sums(paths)
    with pytest.raises(fastraid.NotSupportedError, match="--continue"):
        fastraid.grow_continue(paths, revert=True)
    assert file_sums(paths) == sums


def revert_kernel_case(tmp: Path, name: str) -> tuple[list[Path], dict[str, Any]]:
    """Revert a kernel case; check the content and the old geometry; its members."""
    paths, backup, manifest = kernel_case(tmp, name)
    old = manifest["reshape"]["old_geometry"]
    fastraid.grow_continue(paths, revert=True, backup_file=backup)
    expected = manifest["expected"]
    with fastraid.open(paths, readonly=True) as a:
        assert a.raid_devices == int(old["raid_disks"])
        assert a.chunk == old["chunk_bytes"] and a.level == old["level"]
        assert a.state == "clean"
        assert not any("reshape in progress" in x for x in a.detail()["notes"])
        assert sha(a.read(0, expected["length_bytes"])) == expected["sha256"]
        assert a.check().mismatch_cnt == 0
    assert not list(tmp.glob("fastraid-*"))
    return paths, manifest


@pytest.mark.parametrize(
    "name",
    [
        "raid5-chunk-64to128-cut20",
        "raid5-chunk-64to128-cut60",
        "raid5-ext4-grow-4to5-cut40",
        "raid5-layout-backwards-cut30",
        "raid5-layout-backwards-cut70",
        "raid5-meta10-grow-3to4-backup-cut5",
        "raid5-meta10-grow-3to4-backup-cut50",
        "raid5-shrink-5to4-cut30",
        "raid5-shrink-5to4-cut70",
        "raid6-grow-5to6-cut15",
        "raid6-grow-5to6-cut50",
        "raid6-grow-5to6-cut85",
    ],
)
def test_revert_kernel_cases(tmp_path: Path, name: str) -> None:
    revert_kernel_case(tmp_path, name)


@pytest.mark.parametrize(
    "name",
    ["raid5-chunk-64to32-backup-cut10", "raid5to6-backup-cut45", "raid5-chunk-64to32-backup-cut40"],
)
def test_kernel_cases_refused(tmp_path: Path, name: str) -> None:
    paths, backup, _ = kernel_case(tmp_path, name)
    sums = file_sums(paths)
    with pytest.raises(fastraid.FastRaidError) as e:
        fastraid.grow_continue(paths, revert=True, backup_file=backup)
    assert isinstance(e.value, fastraid.NotSupportedError | fastraid.InvalidArgumentError)
    if name.startswith("raid5to6"):  # a member recovered along: --continue finishes it
        assert "recovered along" in str(e.value) and "--continue" in str(e.value)
    assert file_sums(paths) == sums


def test_revert_incident_fixture(
    md_copy: Callable[[str], list[Path]], md_images: Callable[[str], MdImages]
) -> None:
    name = "raid5-grow-3to4-interrupted"
    manifest = md_images(name).manifest
    paths = md_copy(name)
    fastraid.grow_continue(paths, revert=True)
    with fastraid.open(paths, readonly=True) as a:
        assert (a.raid_devices, a.state, a.size) == (3, "clean", manifest["array_size_bytes"])
        assert sha(a.read(0, a.size)) == manifest["guest_sha256"]
        assert a.check().mismatch_cnt == 0
    assert fastraid.examine(paths[3])[0]["role"] == "spare"


# ------------------------------------------------------------------------------ SIGKILL

KILLS = 7 * int(os.environ.get("FASTRAID_KILL_ROUNDS", "1"))


@pytest.mark.parametrize(
    "level,n,kw",
    [("raid5", 3, {"raid_devices": 4}), ("raid5", 5, {"raid_devices": 4})],
    ids=["grow-3to4-new-offset", "shrink-5to4-in-place"],
)
def test_revert_survives_sigkill(tmp_path: Path, level: str, n: int, kw: dict[str, Any]) -> None:
    """A revert SIGKILLed at random moments and run again until it finishes: after every
    kill the array reads the original content (but between two superblock writes, where the
    plan says they are completed first), and it ends reverted."""
    rng = random.Random(f"kill{level}{n}{kw}")
    pristine = tmp_path / "pristine"
    pristine.mkdir()
    paths, data, kw = make(pristine, level, n, kw)
    interrupt(paths, kw, rng.uniform(0.3, 0.7))
    keep = kw.get("array_size", len(data))
    seen: dict[str, int] = {}

    def after_kill(members: list[str], rounds: int) -> None:
        try:
            step = fastraid.plan_reshape(members, revert=True).describe()["revert_step"]
        except fastraid.InvalidArgumentError:
            step = "done"  # killed after the finish, before the child exited
        seen[step] = seen.get(step, 0) + 1
        if step == "superblocks" or finished_superblocks_only(members, {"continue_only": True}):
            return  # superblocks half-written: the next run completes them before anything
        with fastraid.open(members, readonly=True) as a:
            assert a.read(0, keep) == data[:keep], f"round {rounds}: content lost"

    def at_end(members: list[str], rounds: int) -> None:
        assert_reverted(list(map(Path, members)), n, data[:keep], ("left-symmetric", CHUNK))

    kill_rounds(
        pristine,
        [p.name for p in paths],
        tmp_path / "work",
        kw={"revert": True},
        kills=KILLS,
        rng=rng,
        after_kill=after_kill,
        at_end=at_end,
        max_delay=0.45,
    )
    print(f"states after the kills: {seen}")
    assert seen.get("resume"), "no kill landed while the reshape ran back"


# ------------------------------------------------------------------------------ kernel

KERNEL_MEMBER = 8 << 20


def judge(images: list[Path], length: int, digest: str, n: int, *, reshape: bool = False) -> None:
    from kernelmd import check, summary

    r = check(images, sha_bytes=length)
    why = summary(r)
    assert r["assembled"] and r["exit_code"] == 0, why
    events = r["sync_events"]
    assert not [e for e in events if "resync" in e or "recovery" in e], why
    if reshape:
        assert [e for e in events if "reshape" in e], why
    assert r["degraded"] == 0 and r["raid_disks"] == n, why
    assert r["sha256"] == digest, why
    assert r["scrub"]["finished"] and r["scrub"]["mismatch_cnt"] == 0, why


@pytest.mark.slow
def test_kernel_assembles_reverted_arrays(
    tmp_path: Path, md_copy: Callable[[str], list[Path]], md_images: Callable[[str], MdImages]
) -> None:
    """The incident fixture reverted, a fastraid grow reverted and a kernel shrink reverted:
    the kernel assembles each clean in the old geometry, with the content and mismatch_cnt 0."""
    name = "raid5-grow-3to4-interrupted"
    manifest = md_images(name).manifest
    paths = md_copy(name)
    fastraid.grow_continue(paths, revert=True)
    judge(paths, manifest["array_size_bytes"], manifest["guest_sha256"], 3)

    grow = tmp_path / "grow"
    grow.mkdir()
    paths, data, kw = make(grow, "raid5", 3, {"raid_devices": 4}, KERNEL_MEMBER)
    interrupt(paths, kw, 0.5)
    fastraid.grow_continue(paths, revert=True)
    judge(paths, len(data), sha(data), 3)

    shrink = tmp_path / "shrink"
    shrink.mkdir()
    paths, manifest = revert_kernel_case(shrink, "raid5-shrink-5to4-cut30")
    expected = manifest["expected"]
    judge(paths, expected["length_bytes"], expected["sha256"], 5)


@pytest.mark.slow
def test_kernel_finishes_a_revert_left_half_way(tmp_path: Path) -> None:
    """A revert stopped half-way (after the turn, at one of its checkpoints) and not resumed
    by fastraid: the kernel takes over from fastraid's checkpoint and runs it back itself."""
    paths, data, kw = make(tmp_path, "raid5", 3, {"raid_devices": 4}, KERNEL_MEMBER)
    interrupt(paths, kw, 0.6)
    with pytest.raises(Stop):
        fastraid.grow_continue(
            paths, revert=True, batch_bytes=256 * 1024, checkpoint_bytes=0, progress=stop_at(0.5)
        )
    d = fastraid.plan_reshape(paths, continue_only=True).describe()
    assert (d["kind"], d["raid_devices"]) == ("continue", 3), d
    assert 0 < d["checkpoint"] < d["size"], d
    with fastraid.open(paths, readonly=True) as a:
        assert a.read(0, len(data)) == data
    judge(paths, len(data), sha(data), 3, reshape=True)
