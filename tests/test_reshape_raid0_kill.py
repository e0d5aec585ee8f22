"""Crash test of the RAID-0 grow (tests/killharness.py): a RAID-0 of 3 grown to 4 and to 5
members (``raid_devices=N``, the new members given as paths) in a child process that is
SIGKILLed at a random moment (during a takeover's superblock writes, the add of a new
member, the reshape or its finish), then resumed, alternately by the same request and by
``grow --continue``, until it finishes. After every kill the array, as fastraid assembles
it in whatever state the kill left, holds the original content; at the end it is a clean
RAID-0 of N members holding the original content, then zeros.

At least 10 kills per scenario. ``FASTRAID_KILL_ROUNDS=N`` multiplies the work (long mode).
"""

from __future__ import annotations

import random
from pathlib import Path

import fastraid
import pytest
from killharness import SCALE, finished_superblocks_only, kill_rounds

MEMBER = 4 << 20
CHUNK = 64 * 1024


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
    kw = {"raid_devices": n + grow}
    seen: set[tuple[str, int]] = set()  # (level, raid_devices) after the kills

    def after_kill(members: list[str], rounds: int) -> None:
        if finished_superblocks_only(members, kw):
            return
        present = [m for m in members if Path(m).exists()]
        with fastraid.open(present, readonly=True) as a:
            assert a.read(0, len(want)) == want, f"round {rounds}: content lost"
            seen.add((a.level, a.raid_devices))

    def at_end(members: list[str], rounds: int) -> None:
        with fastraid.open(members, readonly=True) as a:
            assert (a.level, a.raid_devices, a.state) == ("raid0", n + grow, "clean"), a.detail()
            assert not any("reshape in progress" in x for x in a.detail()["notes"])
            assert a.read(0, len(want)) == want, f"round {rounds}: content differs"
            rest = a.size - len(want)
            assert rest > 0 and a.read(len(want), rest) == bytes(rest)

    kill_rounds(
        pristine,
        names,
        tmp_path / "work",
        kw=kw,
        resume_kw={"continue_only": True},
        kills=10 * SCALE,
        rng=rng,
        after_kill=after_kill,
        at_end=at_end,
        max_delay=0.8,
        speed_limit=8 << 20,
    )
    print(f"states after the kills: {sorted(seen)}")
    assert ("raid4", n + grow + 1) in seen, seen  # killed during the reshape at least once
