"""Crash test (modelled on test_rebuild_kill.py): a reshape runs in a child process that is
SIGKILLed at a random moment, then started again, until it finishes. After every kill the
array, as fastraid assembles it mid-reshape (both geometries, split at the checkpoint),
must hold the original content; at the end the array is in the new geometry, clean, with
the original content and zeros in the space a grow added.

At least 50 kills per run. ``FASTRAID_KILL_ROUNDS=N`` multiplies the work (long mode).
"""

from __future__ import annotations

import random
from pathlib import Path

import fastraid
import pytest
from killharness import SCALE, finished_superblocks_only, kill_rounds

MEMBER = 4 << 20
CHUNK = 64 * 1024
KILLS_PER_SCENARIO = 13 * SCALE

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

    def after_kill(members: list[str], rnd: int) -> None:
        if not finished_superblocks_only(members, kw):
            with fastraid.open(members, readonly=True) as a:
                assert a.read(0, len(want)) == want, f"round {rnd}: content lost"

    def at_end(members: list[str], rnd: int) -> None:
        with fastraid.open(members, readonly=True) as a:
            assert a.state == "clean"
            notes = a.detail()["notes"]
            assert not any("reshape in progress" in note for note in notes), notes
            assert a.read(0, len(want)) == want, f"round {rnd}: content differs"
            assert a.read(len(want), a.size - len(want)) == bytes(a.size - len(want))
            assert a.check().mismatch_cnt == 0

    kill_rounds(
        pristine,
        names,
        tmp_path / "work",
        kw=kw,
        kills=KILLS_PER_SCENARIO,
        rng=rng,
        after_kill=after_kill,
        at_end=at_end,
        speed_limit=24 << 20,
    )
