"""Crash test for the write path: a random write workload runs in a child process that is
SIGKILLed at a random moment, the array is opened again (which resyncs what the
write-intent bitmap, or ``resync_offset``, marks dirty), checked, and the workload resumed
from the write that was cut, until it completes.

After every kill:

* every byte outside the cut write holds what the writes before it wrote, and every byte
  of the cut write holds its old or its new value (a disk gives no more);
* parity and mirrors agree with the data (fastraid's scrub: ``mismatch_cnt`` 0), which is
  what md's write-intent protocol is for;
* the data stays readable with each member left out.

A SIGKILL keeps the page cache, so what was written before the kill reaches the members;
that is exactly the case where data and parity can disagree (one member's write done, the
other's not), which the protocol must repair. At least 50 kills per run; more with
``FASTRAID_KILL_ROUNDS=N``.
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
import numpy as np
import pytest

SCALE = int(os.environ.get("FASTRAID_KILL_ROUNDS", "1"))
KILLS_PER_SCENARIO = 13 * SCALE
#: Writes in the last, uninterrupted round (the others run until they are killed).
LAST_ROUND = 40

CHILD = """
import random, sys, fastraid
seed, start, stop, members = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]
a = fastraid.open(members)
print("go", flush=True)
for i in range(start, stop):
    rng = random.Random(f"{seed}-{i}")
    off = rng.randrange(a.size)
    n = min(rng.choice((rng.randrange(1, 5000), rng.randrange(1, 300_000))), a.size - off)
    a.write(off, rng.randbytes(n))
    print(i, flush=True)
    if i % 11 == 10:
        a.flush()
a.close()
print("done", flush=True)
"""


def write_of(seed: str, i: int, size: int) -> tuple[int, bytes]:
    """The i-th write of the workload (the child's formula)."""
    rng = random.Random(f"{seed}-{i}")
    off = rng.randrange(size)
    n = min(rng.choice((rng.randrange(1, 5000), rng.randrange(1, 300_000))), size - off)
    return off, rng.randbytes(n)


SCENARIOS = [
    # id, level, members, layout, tolerates
    ("raid5-ls-4", "raid5", 4, "left-symmetric", 1),
    ("raid6-la-5", "raid6", 5, "left-asymmetric", 2),
    ("raid1-2", "raid1", 2, None, 1),
    ("raid10-f2-4", "raid10", 4, "f2", 1),
]


def _run_rounds(paths: list[str], seed: str, tolerates: int) -> dict[str, int]:
    with fastraid.open(paths, readonly=True) as a:
        size = a.size
        model = np.frombuffer(a.read(0, size), dtype=np.uint8).copy()
    done = 0  # writes known complete (and in `model`)
    rng = random.Random(seed)
    stats = {"kills": 0, "resyncs": 0}
    for rnd in range(KILLS_PER_SCENARIO + 1):
        last = rnd == KILLS_PER_SCENARIO
        stop = done + LAST_ROUND if last else 1 << 40
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, seed, str(done), str(stop), *paths],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "go"
        if not last:
            time.sleep(rng.uniform(0.0, 0.25))
            child.send_signal(signal.SIGKILL)
            stats["kills"] += 1
        out, _ = child.communicate(timeout=120)
        lines = out.split()
        if last:
            assert child.returncode == 0 and lines[-1] == "done"
        completed = [int(x) for x in lines if x.isdigit()]
        end = completed[-1] + 1 if completed else done
        for i in range(done, end):
            off, data = write_of(seed, i, size)
            model[off : off + len(data)] = np.frombuffer(data, dtype=np.uint8)
        done = end
        # Open again: resyncs what the kill left dirty.
        with fastraid.open(paths) as a:
            resync = a.detail()["resync"]
            stats["resyncs"] += resync["how"] is not None
            got = np.frombuffer(a.read(0, size), dtype=np.uint8)
        off, data = write_of(seed, done, size) if not last else (0, b"")
        new = np.frombuffer(data, dtype=np.uint8)
        outside = np.ones(size, dtype=bool)
        outside[off : off + len(new)] = False
        bad = np.flatnonzero(outside & (got != model))
        assert bad.size == 0, f"round {rnd}: {bad.size} bytes wrong outside the cut write"
        span = got[off : off + len(new)]
        old = model[off : off + len(new)]
        assert np.all((span == old) | (span == new)), f"round {rnd}: cut write garbled"
        # The cut write is redone by the next round: the model takes what is there now.
        model[off : off + len(new)] = span
        assert fastraid.check(paths).mismatch_cnt == 0, f"round {rnd}: parity disagrees"
    assert done == stop
    # Redundancy holds the data: each member left out in turn.
    for drop in range(len(paths)):
        rest = paths[:drop] + paths[drop + 1 :]
        with fastraid.open(rest, readonly=True) as a:
            assert np.array_equal(np.frombuffer(a.read(0, size), dtype=np.uint8), model)
    return stats


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s[0] for s in SCENARIOS])
def test_random_writes_survive_sigkill(tmp_path: Path, scenario: tuple[object, ...]) -> None:
    sid, level, n, layout, tolerates = scenario
    assert isinstance(n, int) and isinstance(tolerates, int)
    paths = [str(tmp_path / f"m{i}.img") for i in range(n)]
    fastraid.create(
        paths,
        level=str(level),
        layout=None if layout is None else str(layout),
        size=8 << 20,
        chunk=64 * 1024,
    ).close()
    stats = _run_rounds(paths, str(sid), tolerates)
    assert stats["kills"] == KILLS_PER_SCENARIO
    # Most kills land inside a burst of writes: the protocol must have been exercised.
    assert stats["resyncs"] >= KILLS_PER_SCENARIO // 3, stats


def test_kernel_made_array_without_bitmap_survives_sigkill(tmp_path: Path, md_copy: object) -> None:
    """A kernel-made RAID-5 has no bitmap: the dirty marker is ``resync_offset``."""
    assert callable(md_copy)
    paths = [str(p) for p in md_copy("raid5-ls-3")]
    stats = _run_rounds(paths, "kernel-raid5", 1)
    assert stats["resyncs"] >= KILLS_PER_SCENARIO // 3, stats
    shutil.rmtree(Path(paths[0]).parent)
