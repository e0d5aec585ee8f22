"""The real Linux md driver (kernel-md under qemu) judges fastraid's RAID-0 grow (done as
mdadm does it: RAID-4 without its parity member, reshape, back to RAID-0):

* a RAID-0 grown 3 -> 4 and 3 -> 5 assembles as a clean RAID-0 of 4 / 5 members with the
  original content (sha256);
* a grow SIGKILLed during its reshape leaves superblocks that describe an ordinary md
  RAID-4 reshape with the parity slot missing: the kernel resumes and finishes it by
  itself, with the original content (mdadm would then take it back to RAID-0);
* the kernel's own RAID-0 grow cut by a power loss (``tests/fixtures/kernel/raid0-grow-3to4-
  cut40``), finished by ``fastraid grow --continue``, assembles as a clean RAID-0 of 4 with
  the manifest's sha256.
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
from conftest import kernel_case
from fastraid.cli import main
from kernelmd import check, summary

pytestmark = pytest.mark.slow

MEMBER = 8 << 20
CHUNK = 64 * 1024


def make(tmp: Path, n: int) -> tuple[list[Path], bytes]:
    rng = random.Random(f"kernel-raid0-grow-{n}")
    paths = []
    for i in range(n):
        p = tmp / f"m{i}.img"
        p.write_bytes(rng.randbytes(MEMBER))
        paths.append(p)
    fastraid.plan_create(paths, level="raid0", chunk=CHUNK, force=True).execute()
    with fastraid.open(paths, readonly=True) as a:
        data = a.read(0, a.size)
    return paths, data


def judge_raid0(images: list[Path], sha: str, length: int, n: int) -> None:
    r = check(images, sha_bytes=length, scrub=False)
    why = summary(r)
    assert r["assembled"] and r["exit_code"] == 0, why
    assert r["level"] == "raid0" and r["raid_disks"] == n, why
    assert not r["sync_events"] or not [e for e in r["sync_events"] if "reshape" in e], why
    assert r["sha256"] == sha, why


@pytest.mark.parametrize("grow", [1, 2], ids=["3to4", "3to5"])
def test_kernel_assembles_fastraids_grown_raid0(tmp_path: Path, grow: int) -> None:
    paths, data = make(tmp_path, 3)
    new = [tmp_path / f"new{i}.img" for i in range(grow)]
    with fastraid.open(paths) as a:
        for p in new:
            a.add(p)
        a.reshape(raid_devices=3 + grow)
    judge_raid0([*paths, *new], hashlib.sha256(data).hexdigest(), len(data), 3 + grow)


CHILD = """
import sys, fastraid
plan = fastraid.plan_reshape(sys.argv[2:], raid_devices=int(sys.argv[1]),
                             batch_bytes=256 * 1024, checkpoint_bytes=0, speed_limit=4 << 20)
print("go", flush=True)
plan.execute()
"""


def test_kernel_finishes_a_killed_raid0_grow(tmp_path: Path) -> None:
    paths, data = make(tmp_path, 3)
    new = tmp_path / "new.img"
    members = [*paths, new]
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, "4", *map(str, members)], stdout=subprocess.PIPE
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == b"go"
    time.sleep(1.5)  # 28 MiB of new stripes at 4 MiB/s
    assert child.poll() is None, "the grow finished before the kill"
    child.send_signal(signal.SIGKILL)
    child.wait()
    with fastraid.open(members, readonly=True) as a:
        assert (a.level, a.raid_devices) == ("raid4", 5), a.detail()
        assert any("reshape in progress" in x for x in a.detail()["notes"]), a.detail()
        assert a.read(0, len(data)) == data
    r = check(members, sha_bytes=len(data), scrub=False)
    why = summary(r)
    assert r["assembled"] and r["exit_code"] == 0, why
    assert [e for e in r["sync_events"] if "reshape" in e], why
    assert r["level"] == "raid4" and r["raid_disks"] == 5 and r["degraded"] == 1, why
    assert r["sha256"] == hashlib.sha256(data).hexdigest(), why


def test_kernel_cut_raid0_grow_continued_by_fastraid(tmp_path: Path) -> None:
    paths, _, manifest = kernel_case(tmp_path, "raid0-grow-3to4-cut40")
    assert main(["grow", *map(str, paths), "--continue", "--yes", "--progress", "none"]) == 0
    exp = manifest["expected"]
    judge_raid0(paths, exp["sha256"], exp["length_bytes"], 4)
