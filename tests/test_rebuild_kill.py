"""Crash test (OpenZFS ztest style): a rebuild runs in a child process that is SIGKILLed at
a random moment, then started again, until it finishes; the rebuilt member must equal the
lost one byte for byte. After every kill, whatever the new member's superblock records as
rebuilt (``recovery_offset``) must already be correct on it: a checkpoint never runs ahead
of the data.

At least 50 kills per run (CI). ``FASTRAID_KILL_ROUNDS=N`` multiplies the work (long mode).
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import fastraid
import pytest

MEMBER = 4 << 20
CHUNK = 64 * 1024
SCALE = int(os.environ.get("FASTRAID_KILL_ROUNDS", "1"))
KILLS_PER_SCENARIO = 14 * SCALE

CHILD = """
import sys, fastraid
args = sys.argv[1:]
mode, slot, new, members = args[0], int(args[1]), args[2], args[3:]
print("go", flush=True)
if mode == "replace":
    fastraid.replace(members, slot, new, batch_bytes=64 * 1024, checkpoint_bytes=0,
                     speed_limit=24 << 20)
else:
    fastraid.rebuild(members, slot=slot, new=new, batch_bytes=64 * 1024,
                     checkpoint_bytes=0, speed_limit=24 << 20)
"""

SCENARIOS = [
    # level, n, layout, lost slots, rebuilt slot, mode
    ("raid5", 4, "left-symmetric", (1,), 1, "rebuild"),
    ("raid6", 5, "left-asymmetric", (0, 3), 3, "rebuild"),
    ("raid10", 4, "f2", (2,), 2, "rebuild"),
    ("raid5", 4, "left-symmetric", (), 2, "replace"),
]


def recovery_state(path: Path) -> tuple[int, int] | None:
    """(feature_map, recovery_offset in bytes) of a metadata-1.2 member, None if none."""
    if not path.exists() or path.stat().st_size < 8192:
        return None
    with open(path, "rb") as f:
        f.seek(4096)
        sb = f.read(256)
    if struct.unpack_from("<I", sb, 0)[0] != 0xA92B4EFC:
        return None
    return struct.unpack_from("<I", sb, 8)[0], struct.unpack_from("<Q", sb, 152)[0] * 512


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[f"{s[0]}-{s[5]}" for s in SCENARIOS])
def test_rebuild_survives_sigkill(tmp_path: Path, scenario: tuple[object, ...]) -> None:
    level, n, layout, lost, slot, mode = scenario
    assert isinstance(n, int) and isinstance(slot, int) and isinstance(lost, tuple)
    rng = random.Random(f"{scenario}")
    pristine = tmp_path / "pristine"
    pristine.mkdir()
    paths = []
    for i in range(n):
        p = pristine / f"m{i}.img"
        p.write_bytes(rng.randbytes(MEMBER))
        paths.append(p)
    plan = fastraid.plan_create(
        paths, level=str(level), chunk=CHUNK, layout=str(layout), force=True
    )
    plan.execute()
    off = plan.describe()["data_offset"]
    work = tmp_path / "work"

    kills = rounds = 0
    t0 = time.monotonic()
    while kills < KILLS_PER_SCENARIO:
        rounds += 1
        shutil.rmtree(work, ignore_errors=True)
        shutil.copytree(pristine, work)
        members = [work / f"m{i}.img" for i in range(n) if i not in lost]
        total = fastraid.plan_rebuild(
            members, slot=slot, new=work / "probe", replace=mode == "replace"
        ).describe()["total"]
        with open(pristine / f"m{slot}.img", "rb") as f:
            f.seek(off)
            want = f.read(total)
        for i in lost:
            (work / f"m{i}.img").unlink()
        new = work / "new.img"
        while True:
            child = subprocess.Popen(
                [sys.executable, "-c", CHILD, str(mode), str(slot), str(new)]
                + [str(m) for m in members],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            assert child.stdout is not None
            assert child.stdout.readline().strip() == b"go"
            time.sleep(rng.uniform(0.0, 0.2))
            if child.poll() is None:
                child.send_signal(signal.SIGKILL)
            _, err = child.communicate()
            if child.returncode == 0:
                break
            assert child.returncode == -signal.SIGKILL, err.decode()[-3000:]
            kills += 1
            state = recovery_state(new)
            if state is not None and state[0] & 2:  # RECOVERY_OFFSET: partial
                ro = state[1]
                with open(new, "rb") as f:
                    f.seek(off)
                    got = f.read(ro)
                assert got == want[:ro], f"checkpoint {ro} ahead of correct data"
        with open(new, "rb") as f:
            f.seek(off)
            assert f.read(total) == want, f"round {rounds}: rebuilt member differs"
        state = recovery_state(new)
        assert state is not None and not state[0] & 2
        with fastraid.open([*members, new], readonly=True) as a:
            assert a.members[slot] == str(new)
            assert a.degraded == (len(lost) > 1)
    print(f"{scenario}: {kills} kills over {rounds} rounds in {time.monotonic() - t0:.1f} s")
