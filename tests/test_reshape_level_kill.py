"""Crash test of level changes (modelled on test_reshape_kill.py): RAID-5 -> RAID-6,
RAID-0 -> RAID-5 and RAID-6 -> RAID-5 run in a child process that is SIGKILLed at a random
moment (during a takeover's superblock writes, the recovery of the new parity member, or
the layout reshape), then started again, until it finishes. After every kill the array, as
fastraid assembles it in whatever state the kill left, holds the original content; at the
end it has the new level, is clean, holds the original content, and scrubs with
mismatch_cnt 0.

Also md's own in-place reshapes cut by the kernel, continued by fastraid under the same
kills. At least 50 kills per run. ``FASTRAID_KILL_ROUNDS=N`` multiplies the work (long mode).
"""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

import fastraid
import pytest
from conftest import kernel_case
from killharness import SCALE, finished_superblocks_only, kill_rounds

MEMBER = 4 << 20
CHUNK = 64 * 1024
KILLS_PER_SCENARIO = 10 * SCALE

SCENARIOS = [
    # level, members, spares (added before), new members (given as paths), goal, result
    ("raid5", 3, 1, 0, {"level": 6}, ("raid6", 4, "left-symmetric")),
    ("raid0", 3, 0, 1, {"level": 5}, ("raid5", 4, "parity-last")),
    ("raid6", 5, 0, 0, {"level": 5}, ("raid5", 4, "left-symmetric")),
]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=["raid5to6", "raid0to5", "raid6to5"])
def test_level_change_survives_sigkill(tmp_path: Path, scenario: tuple[object, ...]) -> None:
    level, n, spares, new, kw, result = scenario
    assert isinstance(n, int) and isinstance(spares, int) and isinstance(new, int)
    assert isinstance(kw, dict) and isinstance(result, tuple)
    rng = random.Random(f"{scenario}")
    pristine = tmp_path / "pristine"
    pristine.mkdir()
    paths = []
    for i in range(n):
        p = pristine / f"m{i}.img"
        p.write_bytes(rng.randbytes(MEMBER))
        paths.append(p)
    fastraid.plan_create(paths, level=str(level), chunk=CHUNK, force=True).execute()
    with fastraid.open(paths, readonly=spares == 0) as a:
        want = a.read(0, a.size)
        for i in range(spares):
            a.add(pristine / f"s{i}.img")
    names = [p.name for p in paths] + [f"s{i}.img" for i in range(spares)]
    names += [f"new{i}.img" for i in range(new)]

    def after_kill(members: list[str], rnd: int) -> None:
        if not finished_superblocks_only(members, kw):
            present = [m for m in members if Path(m).exists()]
            with fastraid.open(present, readonly=True) as a:
                assert a.read(0, len(want)) == want, f"round {rnd}: content lost"

    def at_end(members: list[str], rnd: int) -> None:
        with fastraid.open(members, readonly=True) as a:
            assert (a.level, a.raid_devices, a.layout) == result, a.detail()
            assert a.state == "clean", a.detail()
            assert not any("reshape in progress" in note for note in a.detail()["notes"])
            assert a.size == len(want)
            assert a.read(0, a.size) == want, f"round {rnd}: content differs"
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
        max_delay=0.6,
    )


@pytest.mark.parametrize(
    "name,result",
    [
        ("raid5to6-backup-cut10", ("raid6", 5, "left-symmetric")),
        ("raid5-meta10-grow-3to4-backup-cut5", ("raid5", 4, "left-symmetric")),
    ],
)
def test_kernel_cut_reshape_continued_survives_sigkill(
    tmp_path: Path, name: str, result: tuple[str, int, str]
) -> None:
    """md's own in-place reshapes with mdadm's backup file, cut by a power failure after the
    kernel had moved stripes past its on-disk checkpoint: a RAID-5 -> RAID-6 (the Q member
    recovered along with it) and a metadata-1.0 grow. ``grow --continue`` finishes each in
    a child SIGKILLed at random moments and started again until it ends. After every kill
    the array holds the kernel case's pattern; at the end it is clean in the new geometry,
    not degraded, with mismatch_cnt 0. (Before fastraid recorded the kernel's real boundary
    first, a kill in the first batches lost the stripes the kernel had moved.)"""
    pristine = tmp_path / "pristine"
    pristine.mkdir()
    paths, backup, manifest = kernel_case(pristine, name)
    expected = manifest["expected"]
    n = expected["length_bytes"]
    names = [p.name for p in paths]
    kw = {"continue_only": True, "backup_file": backup and str(tmp_path / "work" / backup.name)}

    def after_kill(members: list[str], rnd: int) -> None:
        with fastraid.open(members, readonly=True, backup_file=kw["backup_file"]) as a:
            got = hashlib.sha256(a.read(0, n)).hexdigest()
            assert got == expected["sha256"], f"round {rnd}: content lost"

    def at_end(members: list[str], rnd: int) -> None:
        with fastraid.open(members, readonly=True) as a:
            assert (a.level, a.raid_devices, a.layout) == result, a.detail()
            assert a.state == "clean" and not a.degraded, a.detail()
            assert not any("reshape in progress" in note for note in a.detail()["notes"])
            assert hashlib.sha256(a.read(0, n)).hexdigest() == expected["sha256"]
            assert a.check().mismatch_cnt == 0

    kill_rounds(
        pristine,
        names,
        tmp_path / "work",
        kw=kw,
        kills=KILLS_PER_SCENARIO,
        rng=random.Random(name),
        after_kill=after_kill,
        at_end=at_end,
        max_delay=0.8,
    )
