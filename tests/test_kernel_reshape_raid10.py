"""The real Linux md driver judges fastraid's RAID-10 reshapes (kernel-md under qemu):
grows, a near <-> offset change and a chunk change finished by fastraid assemble clean,
not degraded, with the content and scrub mismatch_cnt 0; a fastraid grow SIGKILLed
half-way is finished by the kernel from fastraid's checkpoint; md's own cut RAID-10
reshapes (kernel cases) finished by ``grow --continue`` assemble clean.
"""

from __future__ import annotations

import hashlib
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import fastraid
import pytest
from conftest import kernel_case
from kernelmd import check, summary

pytestmark = pytest.mark.slow

MEMBER = 8 << 20
CHUNK = 64 * 1024
KERNEL = Path(__file__).parent / "fixtures" / "kernel"
LAYOUT_WORD = {"n2": 0x102, "o2": 0x10201}  # md-format.md §8.6


def make(tmp: Path, layout: str, n: int, spares: int) -> tuple[list[Path], bytes]:
    rng = random.Random(f"{layout}{n}{spares}")
    paths = []
    for i in range(n):
        p = tmp / f"m{i}.img"
        p.write_bytes(rng.randbytes(MEMBER))
        paths.append(p)
    fastraid.plan_create(paths, level="raid10", layout=layout, chunk=CHUNK, force=True).execute()
    with fastraid.open(paths) as a:
        data = a.read(0, a.size)
        for i in range(spares):
            a.add(tmp / f"s{i}.img")
            paths.append(tmp / f"s{i}.img")
    return paths, data


def judge(
    images: list[Path],
    data: bytes,
    *,
    layout: str,
    raid_disks: int,
    takeover: bool = False,
    mismatch_at_most: int = 0,
) -> dict[str, Any]:
    r = check(images, sha_bytes=len(data))
    why = summary(r)
    assert r["assembled"] and r["exit_code"] == 0, why
    assert r["level"] == "raid10" and r["layout"] == LAYOUT_WORD[layout], why
    assert int(r["raid_disks"]) == raid_disks, why
    events = r["sync_events"]
    if takeover:
        assert [e for e in events if "reshape" in e], why
    else:
        assert not [e for e in events if "resync" in e or "recovery" in e], why
    assert r["degraded"] == 0, why
    assert r["sha256"] == hashlib.sha256(data).hexdigest(), why
    assert r["scrub"]["finished"] and r["scrub"]["mismatch_cnt"] <= mismatch_at_most, why
    return r


@pytest.mark.parametrize(
    "layout,n,kw,want",
    [
        ("n2", 4, {"raid_devices": 5}, "n2"),
        ("o2", 3, {"raid_devices": 4}, "o2"),
        ("n2", 4, {"layout": "o2"}, "o2"),
        ("o2", 4, {"layout": "n2", "chunk": 2 * CHUNK}, "n2"),
    ],
    ids=["n2-4to5", "o2-3to4", "n2-to-o2", "o2-to-n2-chunk-128"],
)
def test_kernel_assembles_reshaped_raid10(
    tmp_path: Path, layout: str, n: int, kw: dict[str, Any], want: str
) -> None:
    spares = kw.get("raid_devices", n) - n
    paths, data = make(tmp_path, layout, n, spares)
    fastraid.reshape(paths, **kw)
    r = judge(paths, data, layout=want, raid_disks=kw.get("raid_devices", n))
    if "chunk" in kw:
        assert int(r["chunk_bytes"]) == kw["chunk"], summary(r)


CHILD = """
import sys, fastraid
print("go", flush=True)
fastraid.reshape(sys.argv[1:], raid_devices=5, batch_bytes=256 * 1024, checkpoint_bytes=0,
                 speed_limit=8 << 20)
"""


def test_kernel_takes_over_a_killed_raid10_grow(tmp_path: Path) -> None:
    """The kernel resumes fastraid's grow from its checkpoint and keeps the content. The
    space the grow adds may then differ between its copies: md resyncs it after a grow by
    its bitmap, which md sized for the new space only when the reshape started (its own
    grow of an n2 with an internal bitmap, cut at 47 % and resumed by md, scrubbed with
    mismatch_cnt 9216 in the same way), so only that space may mismatch."""
    paths, data = make(tmp_path, "n2", 4, 1)
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, *map(str, paths)], stdout=subprocess.PIPE
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == b"go"
    time.sleep(1.5)  # about half of the 20 MiB of new geometry at 8 MiB/s
    assert child.poll() is None, "the reshape finished before the kill"
    child.send_signal(signal.SIGKILL)
    child.wait()
    plan = fastraid.plan_reshape(paths, raid_devices=5).describe()
    assert plan["kind"] == "continue" and 0 < plan["checkpoint"] < len(data), plan
    with fastraid.open(paths, readonly=True) as a:
        assert a.read(0, len(data)) == data
    added = plan["size"] - len(data)
    judge(paths, data, layout="n2", raid_disks=5, takeover=True, mismatch_at_most=added // 512)


@pytest.mark.parametrize("name", sorted(p.name for p in KERNEL.glob("raid10-*-cut*")))
def test_kernel_after_grow_continue_of_kernel_cases(tmp_path: Path, name: str) -> None:
    paths, _, manifest = kernel_case(tmp_path, name)
    fastraid.grow_continue(paths)
    expected = manifest["expected"]
    r = check(paths, sha_bytes=expected["length_bytes"])
    why = summary(r)
    geo = manifest["reshape"]["superblock_geometry"]
    assert r["assembled"] and r["degraded"] == 0, why
    assert int(r["raid_disks"]) == geo["raid_disks"], why
    assert not [e for e in r["sync_events"] if "resync" in e or "recovery" in e], why
    assert r["sha256"] == expected["sha256"], why
    assert r["scrub"]["finished"] and r["scrub"]["mismatch_cnt"] == 0, why
