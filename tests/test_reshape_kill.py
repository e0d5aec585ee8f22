"""Crash test (modelled on test_rebuild_kill.py): a reshape runs in a child process that is
SIGKILLed at a random moment, then started again, until it finishes. After every kill the
array, as fastraid assembles it mid-reshape (both geometries, split at the checkpoint),
must hold the original content; at the end the array is in the new geometry, clean, with
the original content and zeros in the space a grow added.

At least 50 kills per run. ``FASTRAID_KILL_ROUNDS=N`` multiplies the work (long mode).
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import fastraid
import pytest

MEMBER = 4 << 20
CHUNK = 64 * 1024
SCALE = int(os.environ.get("FASTRAID_KILL_ROUNDS", "1"))
KILLS_PER_SCENARIO = 13 * SCALE

CHILD = """
import json, sys, fastraid
kw = json.loads(sys.argv[1])
members = sys.argv[2:]
print("go", flush=True)
try:
    plan = fastraid.plan_reshape(members, batch_bytes=64 * 1024, checkpoint_bytes=0,
                                 speed_limit=24 << 20, **kw)
except fastraid.InvalidArgumentError as e:
    if "already has that geometry" in str(e):
        sys.exit(0)
    raise
plan.execute()
"""

SCENARIOS = [
    # level, members, spares, reshape arguments
    ("raid5", 3, 1, {"raid_devices": 4}),
    ("raid6", 4, 1, {"raid_devices": 5}),
    ("raid4", 3, 2, {"raid_devices": 5}),
    ("raid5", 4, 0, {"chunk": 128 * 1024}),
]


@pytest.mark.parametrize(
    "scenario", SCENARIOS, ids=["raid5-3to4", "raid6-4to5", "raid4-3to5", "raid5-chunk"]
)
def test_reshape_survives_sigkill(tmp_path: Path, scenario: tuple[object, ...]) -> None:
    level, n, spares, kw = scenario
    assert isinstance(n, int) and isinstance(spares, int) and isinstance(kw, dict)
    import json

    rng = random.Random(f"{scenario}")
    pristine = tmp_path / "pristine"
    pristine.mkdir()
    paths = []
    for i in range(n):
        p = pristine / f"m{i}.img"
        p.write_bytes(rng.randbytes(MEMBER))
        paths.append(p)
    fastraid.plan_create(paths, level=str(level), chunk=CHUNK, force=True).execute()
    with fastraid.open(paths) as a:
        want = a.read(0, a.size)
        for i in range(spares):
            a.add(pristine / f"s{i}.img")
    names = [p.name for p in paths] + [f"s{i}.img" for i in range(spares)]
    work = tmp_path / "work"

    kills = rounds = 0
    t0 = time.monotonic()
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
            time.sleep(rng.uniform(0.0, 0.5))
            if child.poll() is None:
                child.send_signal(signal.SIGKILL)
            _, err = child.communicate()
            if child.returncode == 0:
                break
            assert child.returncode == -signal.SIGKILL, err.decode()[-3000:]
            kills += 1
            try:
                kind = fastraid.plan_reshape(members, **kw).describe()["kind"]
            except fastraid.InvalidArgumentError:
                kind = "done"  # killed after the finish, before the child exited
            if kind != "finish-superblocks":
                with fastraid.open(members, readonly=True) as a:
                    assert a.read(0, len(want)) == want, f"round {rounds}: content lost"
        with fastraid.open(members, readonly=True) as a:
            assert a.state == "clean"
            assert not any("reshape in progress" in note for note in a.detail()["notes"]), (
                a.detail()["notes"]
            )
            assert a.read(0, len(want)) == want, f"round {rounds}: content differs"
            assert a.read(len(want), a.size - len(want)) == bytes(a.size - len(want))
            assert a.check().mismatch_cnt == 0
    print(f"{scenario}: {kills} kills over {rounds} rounds in {time.monotonic() - t0:.1f} s")
