"""The shared loop of the reshape SIGKILL tests (test_reshape_*kill.py).

A reshape runs in a child process (``fastraid.plan_reshape(...).execute()``) that is
SIGKILLed at a random moment, checked, and started again on the same members until it
finishes; each round starts from a fresh copy of the pristine members. ``after_kill`` runs
after every kill (the content must be intact in whatever state the kill left), ``at_end``
after every round (the finished array). ``FASTRAID_KILL_ROUNDS=N`` multiplies the kills
(long mode).
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
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fastraid

SCALE = int(os.environ.get("FASTRAID_KILL_ROUNDS", "1"))

CHILD = """
import json, sys, fastraid
opts = json.loads(sys.argv[1])
print("go", flush=True)
try:
    plan = fastraid.plan_reshape(sys.argv[2:], checkpoint_bytes=0, **opts)
except fastraid.InvalidArgumentError as e:
    # killed after the finish, before the child exited: nothing left to do
    done = (
        "already has that geometry",
        "already is a RAID-0",
        "nothing to continue",
        "nothing to revert",
    )
    if any(m in str(e) for m in done):
        sys.exit(0)
    raise
plan.execute()
"""


class Stop(Exception):
    """Raised from a progress callback to interrupt a reshape at a checkpoint."""


def stop_at(fraction: float) -> Callable[[int, int, float], None]:
    """A progress callback that stops the reshape once ``fraction`` of it is done."""

    def progress(done: int, total: int, rate: float) -> None:
        if done >= fraction * total:
            raise Stop

    return progress


def finished_superblocks_only(members: list[str], kw: dict[str, Any]) -> bool:
    """Whether the kill left a finished reshape whose superblocks are only partly written
    (md's members then disagree until the next run completes them)."""
    try:
        return fastraid.plan_reshape(members, **kw).describe()["kind"] == "finish-superblocks"
    except fastraid.InvalidArgumentError:
        return False  # killed after the finish, before the child exited


def kill_rounds(
    pristine: Path,
    names: list[str],
    work: Path,
    *,
    kw: dict[str, Any],
    kills: int,
    rng: random.Random,
    after_kill: Callable[[list[str], int], None],
    at_end: Callable[[list[str], int], None],
    max_delay: float = 0.5,
    speed_limit: int = 16 << 20,
    batch_bytes: int = 64 * 1024,
    resume_kw: dict[str, Any] | None = None,
) -> tuple[int, int]:
    """Rounds of kill-and-restart until at least ``kills`` kills; returns (kills, rounds).

    ``kw`` goes to ``plan_reshape`` (JSON-able values); ``names`` are the member files in
    ``pristine``, copied into ``work`` for each round. The callbacks get the members' paths
    and the round number. With ``resume_kw``, every other restart after a kill runs with it
    instead of ``kw`` (e.g. ``grow --continue`` alternating with the same request)."""
    done = rounds = 0
    t0 = time.monotonic()
    base = {"batch_bytes": batch_bytes, "speed_limit": speed_limit}
    while done < kills:
        rounds += 1
        shutil.rmtree(work, ignore_errors=True)
        shutil.copytree(pristine, work)
        members = [str(work / m) for m in names]
        restarts = 0
        while True:
            run = kw if resume_kw is None or restarts % 2 == 0 else resume_kw
            opts = {**base, **run}
            child = subprocess.Popen(
                [sys.executable, "-c", CHILD, json.dumps(opts), *members],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            assert child.stdout is not None
            assert child.stdout.readline().strip() == b"go"
            time.sleep(rng.uniform(0.0, max_delay))
            if child.poll() is None:
                child.send_signal(signal.SIGKILL)
            _, err = child.communicate()
            if child.returncode == 0:
                break
            assert child.returncode == -signal.SIGKILL, err.decode()[-3000:]
            done += 1
            restarts += 1
            after_kill(members, rounds)
        at_end(members, rounds)
    print(f"{kw}: {done} kills over {rounds} rounds in {time.monotonic() - t0:.1f} s")
    return done, rounds
