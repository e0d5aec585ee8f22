"""Crash test for shrink, backwards and in-place reshapes (modelled on
test_reshape_kill.py): the reshape runs in a child process SIGKILLed at a random moment and
is started again until it finishes; after every kill fastraid reads the declared content,
at the end the array is clean in the new geometry with it. At least 20 kills in all.
"""

from __future__ import annotations

import random
from pathlib import Path

import fastraid
import pytest
from killharness import SCALE, finished_superblocks_only, kill_rounds

MEMBER = 4 << 20
CHUNK = 64 * 1024
KILLS = 7 * SCALE


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

    def after_kill(members: list[str], rnd: int) -> None:
        if not finished_superblocks_only(members, kw):
            with fastraid.open(members, readonly=True) as a:
                assert a.read(0, len(want)) == want, f"round {rnd}: content lost"

    def at_end(members: list[str], rnd: int) -> None:
        final = members[: kw.get("raid_devices", n)]
        with fastraid.open(final, readonly=True) as a:
            assert a.state == "clean"
            assert not any("reshape in progress" in x for x in a.detail()["notes"])
            assert a.read(0, len(want)) == want
            assert a.check().mismatch_cnt == 0

    kill_rounds(
        pristine,
        names,
        tmp_path / "work",
        kw=kw,
        kills=KILLS,
        rng=rng,
        after_kill=after_kill,
        at_end=at_end,
    )
