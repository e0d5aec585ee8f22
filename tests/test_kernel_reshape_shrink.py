"""The real Linux md driver judges fastraid's shrinks and its backwards and in-place
reshapes (kernel-md under qemu): the kernel must assemble the result clean (no resync or
recovery), not degraded, in the new geometry, with the kept content and a scrub that finds
nothing (mismatch_cnt 0).
"""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

import fastraid
import pytest
from kernelmd import check, summary

pytestmark = pytest.mark.slow

MEMBER = 8 << 20
CHUNK = 64 * 1024


def make(tmp: Path, level: str, n: int) -> list[Path]:
    rng = random.Random(f"{level}{n}")
    paths = []
    for i in range(n):
        p = tmp / f"m{i}.img"
        p.write_bytes(rng.randbytes(MEMBER))
        paths.append(p)
    fastraid.plan_create(paths, level=level, chunk=CHUNK, force=True).execute()
    return paths


def judge(images: list[Path], data: bytes, n: int, chunk: int) -> None:
    r = check(images, sha_bytes=len(data))
    why = summary(r)
    assert r["assembled"] and r["exit_code"] == 0, why
    assert not [e for e in r["sync_events"] if "resync" in e or "recovery" in e], why
    assert r["degraded"] == 0 and r["raid_disks"] == n, why
    assert r["chunk_bytes"] == chunk, why
    assert r["sha256"] == hashlib.sha256(data).hexdigest(), why
    assert r["scrub"]["finished"] and r["scrub"]["mismatch_cnt"] == 0, why


@pytest.mark.parametrize("level,n", [("raid5", 5), ("raid6", 5)], ids=["raid5-5to4", "raid6-5to4"])
def test_kernel_assembles_a_fastraid_shrink(tmp_path: Path, level: str, n: int) -> None:
    paths = make(tmp_path, level, n)
    with pytest.raises(fastraid.NotSupportedError) as e:  # the kept size must be declared
        fastraid.plan_reshape(paths, raid_devices=n - 1)
    keep = int(str(e.value).split("at most ")[1].split()[0])
    with fastraid.open(paths) as a:
        data = a.read(0, keep)
        a.reshape(raid_devices=n - 1, array_size=keep)
    judge(paths[: n - 1], data, n - 1, CHUNK)


def test_kernel_assembles_an_inplace_chunk_change(tmp_path: Path) -> None:
    paths = make(tmp_path, "raid5", 4)
    with fastraid.open(paths) as a:
        data = a.read(0, a.size)
        a.reshape(chunk=32 * 1024)  # smaller stripes, members full: backwards, in place
    assert not list(tmp_path.glob("*.journal"))
    judge(paths, data, 4, 32 * 1024)
