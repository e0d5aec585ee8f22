"""Crash test of the RAID-0 grow (modelled on test_reshape_level_kill.py): a RAID-0 of 3
grown to 4 and to 5 members (``fastraid grow ... --raid-devices N``) in a child process
that is SIGKILLed at a random moment (during a takeover's superblock writes, the add of a
new member, the reshape or its finish), then resumed, alternately by the same request and
by ``grow --continue``, until it finishes. After every kill the array, as fastraid
assembles it in whatever state the kill left, holds the original content; at the end it is
a clean RAID-0 of N members holding the original content, then zeros.

At least 10 kills per scenario. ``FASTRAID_KILL_ROUNDS=N`` multiplies the work (long mode).
"""

from __future__ import annotations

import json
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
KILLS_PER_SCENARIO = 10 * SCALE

CHILD = """
import json, sys, fastraid
kw = json.loads(sys.argv[1])
members = sys.argv[2:]
try:
    plan = fastraid.plan_reshape(members, batch_bytes=64 * 1024, checkpoint_bytes=0,
                                 speed_limit=8 << 20, **kw)
except fastraid.InvalidArgumentError as e:
    if "already is a RAID-0" in str(e) or "nothing to continue" in str(e):
        print("go", flush=True)
        sys.exit(0)
    raise
print("go", flush=True)  # planned: the kill lands in the execution
plan.execute()
"""


@pytest.mark.parametrize("grow", [1, 2], ids=["3to4", "3to5"])
def test_raid0_grow_survives_sigkill(tmp_path: Path, grow: int) -> None:
    n = 3
    rng = random.Random(f"raid0-grow-kill-{grow}")
    pristine = tmp_path / "pristine"
    pristine.mkdir()
    paths = []
    for i in range(n):
        p = pristine / f"m{i}.img"
        p.write_bytes(rng.randbytes(MEMBER))
        paths.append(p)
    fastraid.plan_create(paths, level="raid0", chunk=CHUNK, force=True).execute()
    with fastraid.open(paths, readonly=True) as a:
        want = a.read(0, a.size)
    names = [p.name for p in paths] + [f"new{i}.img" for i in range(grow)]
    work = tmp_path / "work"
    grow_kw = {"raid_devices": n + grow}

    kills = rounds = 0
    seen: set[tuple[str, int]] = set()  # (level, raid_devices) after the kills
    t0 = time.monotonic()
    while kills < KILLS_PER_SCENARIO:
        rounds += 1
        shutil.rmtree(work, ignore_errors=True)
        shutil.copytree(pristine, work)
        members = [str(work / m) for m in names]
        resumes = 0
        while True:
            # The first run asks for the grow; resumes alternate between the same request
            # and grow --continue.
            kw = grow_kw if resumes % 2 == 0 else {"continue_only": True}
            child = subprocess.Popen(
                [sys.executable, "-c", CHILD, json.dumps(kw), *members],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            assert child.stdout is not None
            if child.stdout.readline().strip() != b"go":
                raise AssertionError(f"the plan failed: {child.communicate()[1].decode()}")
            # Now and then within the first milliseconds: the takeover and the adds.
            time.sleep(rng.uniform(0.0, 0.8) if rng.random() < 0.7 else rng.uniform(0.0, 0.01))
            if child.poll() is None:
                child.send_signal(signal.SIGKILL)
            _, err = child.communicate()
            if child.returncode == 0:
                break
            assert child.returncode == -signal.SIGKILL, err.decode()[-3000:]
            kills += 1
            resumes += 1
            try:
                kind = fastraid.plan_reshape(members, **grow_kw).describe()["kind"]
            except fastraid.InvalidArgumentError:
                kind = "done"  # killed after the finish, before the child exited
            if kind != "finish-superblocks":
                present = [m for m in members if Path(m).exists()]
                with fastraid.open(present, readonly=True) as a:
                    assert a.read(0, len(want)) == want, f"round {rounds}: content lost"
                    seen.add((a.level, a.raid_devices))
        with fastraid.open(members, readonly=True) as a:
            assert (a.level, a.raid_devices, a.state) == ("raid0", n + grow, "clean"), a.detail()
            assert not any("reshape in progress" in x for x in a.detail()["notes"])
            assert a.read(0, len(want)) == want, f"round {rounds}: content differs"
            rest = a.size - len(want)
            assert rest > 0 and a.read(len(want), rest) == bytes(rest)
    took = time.monotonic() - t0
    print(f"raid0 3 -> {n + grow}: {kills} kills over {rounds} rounds in {took:.1f} s: {seen}")
    assert ("raid4", n + grow + 1) in seen, seen  # killed during the reshape at least once
