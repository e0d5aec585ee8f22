"""Crash test of RAID-10 reshapes (the harness of test_reshape_kill.py): a reshape runs in a
child process that is SIGKILLed at a random moment, then started again, until it
finishes. After every kill the array, as fastraid assembles it mid-reshape, holds the
original content, and the superblocks describe a reshape the kernel would resume (md's
minimum data-offset change, a chunk-aligned reshape_position, the same on every member);
at the end the array is in the new geometry, clean, every copy equal, with zeros in the
space a grow added.

Scenarios: grows of n2 and o2, near -> offset, a chunk change, a backwards reshape (room
only after the data), and md's own interrupted o2 -> n2 (a kernel case) finished by
``grow --continue``. At least 6 kills each; ``FASTRAID_KILL_ROUNDS=N`` multiplies them.
"""

from __future__ import annotations

import hashlib
import json
import lzma
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import fastraid
import pytest

MEMBER = 4 << 20
CHUNK = 64 * 1024
SCALE = int(os.environ.get("FASTRAID_KILL_ROUNDS", "1"))
KILLS_PER_SCENARIO = 6 * SCALE
KERNEL = Path(__file__).parent / "fixtures" / "kernel"

CHILD = """
import json, sys, fastraid
kw = json.loads(sys.argv[1])
members = sys.argv[2:]
print("go", flush=True)
try:
    plan = fastraid.plan_reshape(members, batch_bytes=64 * 1024, checkpoint_bytes=0,
                                 speed_limit=12 << 20, **kw)
except fastraid.InvalidArgumentError as e:
    if "already has that geometry" in str(e) or "nothing to change" in str(e):
        sys.exit(0)
    raise
plan.execute()
"""

SCENARIOS: dict[str, tuple[str, int, int, dict[str, Any], dict[str, Any]]] = {
    # name: layout, members, spares, a reshape done before (pristine), the one killed
    "n2-4to5": ("n2", 4, 1, {}, {"raid_devices": 5}),
    "o2-3to4": ("o2", 3, 1, {}, {"raid_devices": 4}),
    "n2-to-o2": ("n2", 4, 0, {}, {"layout": "o2"}),
    "o2-chunk-64to32": ("o2", 4, 0, {}, {"chunk": CHUNK // 2}),
    "backwards-n2-to-o2": ("n2", 4, 0, {"chunk": 2 * CHUNK}, {"layout": "o2"}),
}


def check_superblocks(members: list[str]) -> None:
    """What the kernel would read: one reshape state on every member, resumable."""
    sbs = [fastraid.examine(m)[0] for m in members]
    active = [sb for sb in sbs if sb["reshape"] is not None]
    if not active:
        return
    top = max(sb["events"] for sb in sbs)
    fresh = [sb for sb in active if sb["events"] == top]
    if not fresh:
        return  # the finish was being written: the next run completes it
    r = fresh[0]["reshape"]
    assert all(sb["reshape"] == r for sb in fresh), [sb["reshape"] for sb in fresh]
    for sb in fresh:
        assert "NEW_OFFSET" in sb["feature_map"], sb["feature_map"]
    chunk = min(fresh[0]["chunk"], r["new_chunk"])
    assert r["position"] % (chunk // 512) == 0, r

    def fc(word: int) -> int:
        return (word >> 8) & 0xFF

    need = max(
        fresh[0]["chunk"] * fc(fresh[0]["layout_number"]), r["new_chunk"] * fc(r["new_layout"])
    )
    assert abs(r["new_offset"]) * 512 >= need, r
    assert (r["new_offset"] > 0) == r["backwards"], r


def pristine_array(tmp: Path, scenario: str) -> tuple[list[str], bytes, dict[str, Any]]:
    layout, n, spares, before_kw, kw = SCENARIOS[scenario]
    rng = random.Random(scenario)
    paths = []
    for i in range(n):
        p = tmp / f"m{i}.img"
        p.write_bytes(rng.randbytes(MEMBER))
        paths.append(p)
    fastraid.plan_create(paths, level="raid10", layout=layout, chunk=CHUNK, force=True).execute()
    if before_kw:
        fastraid.reshape(paths, **before_kw)
    with fastraid.open(paths) as a:
        want = a.read(0, a.size)
        for i in range(spares):
            a.add(tmp / f"s{i}.img")
    return [p.name for p in paths] + [f"s{i}.img" for i in range(spares)], want, kw


def kernel_pristine(tmp: Path, name: str) -> tuple[list[str], dict[str, Any]]:
    src = KERNEL / name
    manifest = json.loads((src / "manifest.json").read_text())
    names = []
    for f in sorted(src.glob("member-*.img.xz")):
        p = tmp / f.name.removesuffix(".xz")
        with lzma.open(f) as fin, p.open("wb") as fout:
            shutil.copyfileobj(fin, fout, 1 << 20)
        names.append(p.name)
    return names, manifest


def run_killed(
    tmp: Path,
    pristine: Path,
    names: list[str],
    kw: dict[str, Any],
    rng: random.Random,
    intact: Any,
) -> tuple[int, int, list[str]]:
    """Rounds of kill-and-restart until KILLS_PER_SCENARIO kills; ``intact(members)``
    after every kill and at the end of each round."""
    work = tmp / "work"
    kills = rounds = 0
    members: list[str] = []
    while kills < KILLS_PER_SCENARIO:
        rounds += 1
        shutil.rmtree(work, ignore_errors=True)
        shutil.copytree(pristine, work)
        members = [str(work / m) for m in names]
        while True:
            child = subprocess.Popen(
                [sys.executable, "-c", CHILD, json.dumps(kw), *members],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            assert child.stdout is not None
            assert child.stdout.readline().strip() == b"go"
            time.sleep(rng.uniform(0.0, 0.6))
            if child.poll() is None:
                child.send_signal(signal.SIGKILL)
            _, err = child.communicate()
            if child.returncode == 0:
                break
            assert child.returncode == -signal.SIGKILL, err.decode()[-3000:]
            kills += 1
            check_superblocks(members)
            try:
                kind = fastraid.plan_reshape(members, **kw).describe()["kind"]
            except fastraid.InvalidArgumentError:
                kind = "done"  # killed after the finish, before the child exited
            if kind != "finish-superblocks":
                intact(members, f"round {rounds}, kill {kills}")
        with fastraid.open(members, readonly=True) as a:
            assert a.state == "clean"
            assert not any("reshape in progress" in note for note in a.detail()["notes"])
            assert a.check().mismatch_cnt == 0
        intact(members, f"round {rounds} (finished)")
    return kills, rounds, members


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_raid10_reshape_survives_sigkill(tmp_path: Path, scenario: str) -> None:
    pristine = tmp_path / "pristine"
    pristine.mkdir()
    names, want, kw = pristine_array(pristine, scenario)

    def intact(members: list[str], when: str) -> None:
        with fastraid.open(members, readonly=True) as a:
            assert a.read(0, len(want)) == want, f"{when}: content lost"

    t0 = time.monotonic()
    kills, rounds, members = run_killed(
        tmp_path, pristine, names, kw, random.Random(scenario), intact
    )
    with fastraid.open(members, readonly=True) as a:
        assert a.read(len(want), a.size - len(want)) == bytes(a.size - len(want))
        if "layout" in kw:
            assert a.layout == kw["layout"]
        if "raid_devices" in kw:
            assert a.raid_devices == kw["raid_devices"]
    print(f"{scenario}: {kills} kills over {rounds} rounds in {time.monotonic() - t0:.1f} s")


def test_kernel_cut_continue_survives_sigkill(tmp_path: Path) -> None:
    """md's own backwards o2 -> n2, cut by a power loss in the kernel, finished by
    ``grow --continue`` that is itself killed again and again."""
    name = "raid10-o2-to-n2-backwards-cut50"
    pristine = tmp_path / "pristine"
    pristine.mkdir()
    names, manifest = kernel_pristine(pristine, name)
    expected = manifest["expected"]

    def intact(members: list[str], when: str) -> None:
        with fastraid.open(members, readonly=True) as a:
            data = a.read(0, expected["length_bytes"])
        assert hashlib.sha256(data).hexdigest() == expected["sha256"], f"{when}: content lost"

    kills, rounds, members = run_killed(tmp_path, pristine, names, {}, random.Random(name), intact)
    with fastraid.open(members, readonly=True) as a:
        assert a.layout == "n2"
