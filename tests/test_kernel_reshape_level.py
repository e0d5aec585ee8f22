"""The real Linux md driver (kernel-md under qemu, ``check --scrub``) judges fastraid's level
changes: RAID-5 -> RAID-6, RAID-6 -> RAID-5, RAID-4 <-> RAID-5, RAID-0 -> RAID-4/5 and
RAID-4/5 parity-last without its parity member -> RAID-0. Each result must assemble with the
expected level, member count and layout, no resync or recovery, the original content
(sha256) and, where md can scrub, mismatch_cnt 0. A RAID-5 -> RAID-6 SIGKILLed while Q is
being computed must be finished by the kernel's own recovery.
"""

from __future__ import annotations

import hashlib
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import fastraid
import pytest
from kernelmd import check, summary

pytestmark = pytest.mark.slow

MEMBER = 8 << 20
CHUNK = 64 * 1024


def make(tmp: Path, level: str, n: int, layout: str | None = None) -> tuple[list[Path], bytes]:
    rng = random.Random(f"{level}{n}{layout}")
    paths = []
    for i in range(n):
        p = tmp / f"m{i}.img"
        p.write_bytes(rng.randbytes(MEMBER))
        paths.append(p)
    fastraid.plan_create(paths, level=level, chunk=CHUNK, layout=layout, force=True).execute()
    with fastraid.open(paths, readonly=True) as a:
        data = a.read(0, a.size)
    return paths, data


def judge(
    images: list[Path],
    data: bytes,
    level: str,
    raid_disks: int,
    layout: int | None,
    *,
    scrub: bool = True,
    recovery_expected: bool = False,
) -> None:
    r = check(images, sha_bytes=len(data), scrub=scrub)
    why = summary(r)
    assert r["assembled"] and r["exit_code"] == 0, why
    assert r["level"] == level and r["raid_disks"] == raid_disks, why
    if layout is not None:
        assert r["layout"] == layout, why
    events = r["sync_events"]
    if recovery_expected:
        assert [e for e in events if "recovery" in e], why
    else:
        assert not [e for e in events if "resync" in e or "recovery" in e], why
    assert r["degraded"] in (0, None), why  # None: RAID-0 has no degraded state
    assert r["sha256"] == hashlib.sha256(data).hexdigest(), why
    if scrub:
        assert r["scrub"]["finished"] and r["scrub"]["mismatch_cnt"] == 0, why


@pytest.mark.parametrize(
    "layout,md_layout", [("left-symmetric", 2), ("parity-last", 5)], ids=["ls", "parity-last"]
)
def test_kernel_raid5_to_raid6(tmp_path: Path, layout: str, md_layout: int) -> None:
    paths, data = make(tmp_path, "raid5", 4, layout)
    with fastraid.open(paths) as a:
        a.add(tmp_path / "q.img")
        a.reshape(level=6)
    judge([*paths, tmp_path / "q.img"], data, "raid6", 5, md_layout)


def test_kernel_raid5_to_raid6_keeping_the_6_layout(tmp_path: Path) -> None:
    paths, data = make(tmp_path, "raid5", 3)
    with fastraid.open(paths) as a:
        a.add(tmp_path / "q.img")
        a.reshape(level=6, layout="left-symmetric-6")
    judge([*paths, tmp_path / "q.img"], data, "raid6", 4, 18)


def test_kernel_raid6_to_raid5(tmp_path: Path) -> None:
    paths, data = make(tmp_path, "raid6", 5)
    fastraid.reshape(paths, level=5)
    judge(paths, data, "raid5", 4, 2)  # the old Q member is a spare


def test_kernel_raid4_to_raid5(tmp_path: Path) -> None:
    paths, data = make(tmp_path, "raid4", 4)
    fastraid.reshape(paths, level=5)
    judge(paths, data, "raid5", 4, 5)


def test_kernel_raid0_to_raid5(tmp_path: Path) -> None:
    paths, data = make(tmp_path, "raid0", 3)
    new = tmp_path / "p.img"
    fastraid.reshape([*paths, new], level=5)
    judge([*paths, new], data, "raid5", 4, 5)


def test_kernel_raid5_to_raid4(tmp_path: Path) -> None:
    paths, data = make(tmp_path, "raid5", 4)  # left-symmetric: reshape, then takeover
    fastraid.reshape(paths, level=4)
    judge(paths, data, "raid4", 4, None)


def test_kernel_raid0_to_raid4(tmp_path: Path) -> None:
    paths, data = make(tmp_path, "raid0", 3)
    new = tmp_path / "p.img"
    fastraid.reshape([*paths, new], level=4)
    judge([*paths, new], data, "raid4", 4, None)


def test_kernel_raid4_without_parity_to_raid0(tmp_path: Path) -> None:
    paths, data = make(tmp_path, "raid4", 4)
    fastraid.reshape(paths[:-1], level=0)
    judge(paths[:-1], data, "raid0", 3, None, scrub=False)


def test_kernel_raid5_without_parity_to_raid0(tmp_path: Path) -> None:
    paths, data = make(tmp_path, "raid5", 4, "parity-last")
    fastraid.reshape(paths[:-1], level=0)
    judge(paths[:-1], data, "raid0", 3, None, scrub=False)


CHILD = """
import sys, fastraid
print("go", flush=True)
fastraid.reshape(sys.argv[2:], level=int(sys.argv[1]), batch_bytes=256 * 1024,
                 checkpoint_bytes=0, speed_limit=4 << 20)
"""


@pytest.mark.parametrize(
    "level,goal,result",
    [("raid5", 6, ("raid6", 4, 18)), ("raid0", 5, ("raid5", 4, 5))],
    ids=["raid5to6", "raid0to5"],
)
def test_kernel_finishes_a_killed_level_change(
    tmp_path: Path, level: str, goal: int, result: tuple[str, int, int]
) -> None:
    paths, data = make(tmp_path, level, 3)
    new = tmp_path / "new.img"
    if level == "raid5":
        with fastraid.open(paths) as a:
            a.add(new)
    paths.append(new)
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(goal), *map(str, paths)], stdout=subprocess.PIPE
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == b"go"
    time.sleep(1.0)  # the new parity member is about 7 MiB at 4 MiB/s
    assert child.poll() is None, "the level change finished before the kill"
    child.send_signal(signal.SIGKILL)
    child.wait()
    with fastraid.open(paths, readonly=True) as a:
        assert a.level == result[0] and "recovering" in a.state, a.state
        assert a.read(0, len(data)) == data
    # The kernel resumes the recovery of the parity member from fastraid's checkpoint and
    # ends clean (a RAID-6 stays in the -6 layout; fastraid reshapes it when run again).
    judge(paths, data, *result, recovery_expected=True)
