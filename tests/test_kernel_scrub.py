"""The real Linux md driver judges fastraid's scrub (kernel-md under qemu): a RAID-6 made by
fastraid.create over random data gets silent corruption in one member per stripe; the
kernel's own check must count mismatches there too, and after fastraid.repair the kernel
must find none, with the content the array had before the damage.

Units: md's mismatch_cnt counts 512-byte sectors, 8 per 4 KiB stripe row that fails its
check, and fastraid's check counts the same way for RAID-4/5/6, so both numbers must agree.
"""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

import fastraid
import pytest
from kernelmd import check, summary

pytestmark = pytest.mark.slow

MEMBER = 6 << 20
CHUNK = 64 * 1024


def test_kernel_agrees_with_fastraid_check_and_repair(tmp_path: Path) -> None:
    rng = random.Random("scrub-kernel")
    paths = []
    for i in range(5):
        p = tmp_path / f"m{i}.img"
        p.write_bytes(rng.randbytes(MEMBER))
        paths.append(p)
    fastraid.plan_create(
        paths, level="raid6", chunk=CHUNK, layout="left-symmetric", force=True
    ).execute()
    with fastraid.open(paths, readonly=True) as a:
        size = a.size
        sha = hashlib.sha256(a.read(0, size)).hexdigest()
        data_offset = a.detail()["members"][0]["data_offset"] * 512  # sectors
    # Corrupt a few 4 KiB rows of random members, at most one member per stripe row.
    rows = rng.sample(range((MEMBER - data_offset - CHUNK) // 4096), 5)
    for row in rows:
        victim = paths[rng.randrange(5)]
        with open(victim, "r+b") as f:
            f.seek(data_offset + row * 4096 + rng.randrange(4000))
            f.write(rng.randbytes(rng.randrange(1, 64)))

    before = check(paths)
    assert before["assembled"], summary(before)
    found = fastraid.check(paths, checkpoint=False)
    assert found.mismatch_cnt == 5 * 8
    assert before["scrub"]["mismatch_cnt"] == found.mismatch_cnt, summary(before)

    fastraid.repair(paths, checkpoint=False)
    assert fastraid.check(paths, checkpoint=False).clean
    after = check(paths)
    assert after["assembled"] and after["degraded"] == 0, summary(after)
    assert after["sha256"] == sha, summary(after)
    assert after["scrub"]["finished"] and after["scrub"]["mismatch_cnt"] == 0, summary(after)
