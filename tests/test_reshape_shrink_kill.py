"""Crash test for shrink, backwards and in-place reshapes (modelled on
test_reshape_kill.py): the reshape runs in a child process SIGKILLed at a random moment and
is started again until it finishes; after every kill fastraid reads the declared content,
at the end the array is clean in the new geometry with it. At least 20 kills in all.
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
KILLS = 7 * int(os.environ.get("FASTRAID_KILL_ROUNDS", "1"))

CHILD = """
import json, sys, fastraid
kw = json.loads(sys.argv[1])
print("go", flush=True)
try:
    plan = fastraid.plan_reshape(sys.argv[2:], batch_bytes=64 * 1024, checkpoint_bytes=0,
                                 speed_limit=16 << 20, **kw)
except fastraid.InvalidArgumentError as e:
    if "already has that geometry" in str(e) or "nothing to continue" in str(e):
        sys.exit(0)
    raise
plan.execute()
"""


@pytest.mark.parametrize(
    "level,n,kw",
    [
        ("raid5", 5, {"raid_devices": 4}),
        ("raid6", 5, {"raid_devices": 4}),
        ("raid5", 4, {"raid_devices": 3}),
    ],
    ids=["raid5-shrink-5to4", "raid6-shrink-5to4", "raid5-shrink-4to3"],
)
def test_survives_sigkill(tmp_path: Path, level: str, n: int, kw: dict[str, int]) -> None:
    rng = random.Random(f"{level}{n}{kw}")
    pristine = tmp_path / "pristine"
    pristine.mkdir()
    paths = []
    for i in range(n):
        p = pristine / f"m{i}.img"
        p.write_bytes(rng.randbytes(MEMBER))
        paths.append(p)
    fastraid.plan_create(paths, level=level, chunk=CHUNK, force=True).execute()
    if "raid_devices" in kw:
        msg = ""
        try:
            fastraid.plan_reshape(paths, **kw)  # type: ignore[arg-type]
        except fastraid.NotSupportedError as e:
            msg = str(e)
        kw = {**kw, "array_size": int(msg.split("at most ")[1].split()[0])}
    with fastraid.open(paths, readonly=True) as a:
        want = a.read(0, kw.get("array_size", a.size))
    names = [p.name for p in paths]
    work = tmp_path / "work"
    kills = 0
    while kills < KILLS:
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
                kind = fastraid.plan_reshape(members, continue_only=True).describe()["kind"]
            except fastraid.InvalidArgumentError:
                kind = "done"
            if kind == "continue":
                with fastraid.open(members, readonly=True) as a:
                    assert a.read(0, len(want)) == want, f"kill {kills}: content lost"
        final = members[: kw.get("raid_devices", n)]
        with fastraid.open(final, readonly=True) as a:
            assert a.state == "clean"
            assert not any("reshape in progress" in x for x in a.detail()["notes"])
            assert a.read(0, len(want)) == want
            assert a.check().mismatch_cnt == 0
