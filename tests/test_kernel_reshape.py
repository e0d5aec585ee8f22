"""The real Linux md driver judges reshapes done by fastraid (kernel-md under qemu): grows
finished by fastraid, md's own interrupted grow finished by ``grow --continue``, and a
fastraid grow SIGKILLed half-way and *not* resumed by fastraid: the kernel must take over
from fastraid's checkpoint, finish the reshape, and hold the original content; every scrub
must report mismatch_cnt 0.
"""

from __future__ import annotations

import hashlib
import json
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import fastraid
import pytest
from conftest import MdImages, kernel_case
from kernelmd import check, summary

pytestmark = pytest.mark.slow

MEMBER = 8 << 20
CHUNK = 64 * 1024


def make(tmp: Path, level: str, n: int, spares: int) -> tuple[list[Path], bytes]:
    rng = random.Random(f"{level}{n}{spares}")
    paths = []
    for i in range(n):
        p = tmp / f"m{i}.img"
        p.write_bytes(rng.randbytes(MEMBER))
        paths.append(p)
    fastraid.plan_create(paths, level=level, chunk=CHUNK, force=True).execute()
    with fastraid.open(paths) as a:
        data = a.read(0, a.size)
        for i in range(spares):
            a.add(tmp / f"s{i}.img")
            paths.append(tmp / f"s{i}.img")
    return paths, data


def judge(images: list[Path], data: bytes, *, reshape_expected: bool = False) -> None:
    r = check(images, sha_bytes=len(data))
    why = summary(r)
    assert r["assembled"] and r["exit_code"] == 0, why
    events = r["sync_events"]
    assert not [e for e in events if "resync" in e or "recovery" in e], why
    if reshape_expected:
        assert [e for e in events if "reshape" in e], why
    assert r["degraded"] == 0, why
    assert r["sha256"] == hashlib.sha256(data).hexdigest(), why
    assert r["scrub"]["finished"] and r["scrub"]["mismatch_cnt"] == 0, why


@pytest.mark.parametrize(
    "level,n,kw",
    [
        ("raid5", 3, {"raid_devices": 4}),
        ("raid6", 4, {"raid_devices": 5}),
        ("raid5", 4, {"chunk": 128 * 1024}),
    ],
    ids=["raid5-3to4", "raid6-4to5", "raid5-chunk-64to128"],
)
def test_kernel_assembles_reshaped_array(
    tmp_path: Path, level: str, n: int, kw: dict[str, int]
) -> None:
    spares = kw.get("raid_devices", n) - n
    paths, data = make(tmp_path, level, n, spares)
    fastraid.reshape(paths, **kw)  # type: ignore[arg-type]
    judge(paths, data)


def test_kernel_after_grow_continue_of_the_fixture(
    md_copy: Callable[[str], list[Path]], md_images: Callable[[str], MdImages]
) -> None:
    name = "raid5-grow-3to4-interrupted"
    manifest = md_images(name).manifest
    paths = md_copy(name)
    fastraid.grow_continue(paths)
    r = check(paths, sha_bytes=manifest["array_size_bytes"])
    why = summary(r)
    assert r["assembled"] and r["degraded"] == 0, why
    assert not [e for e in r["sync_events"] if "resync" in e or "recovery" in e], why
    assert r["sha256"] == manifest["guest_sha256"], why
    assert r["scrub"]["finished"] and r["scrub"]["mismatch_cnt"] == 0, why


CHILD = """
import sys, fastraid
print("go", flush=True)
fastraid.reshape(sys.argv[1:], raid_devices=4, batch_bytes=256 * 1024, checkpoint_bytes=0,
                 speed_limit=8 << 20)
"""


def test_kernel_takes_over_a_killed_reshape(tmp_path: Path) -> None:
    paths, data = make(tmp_path, "raid5", 3, 1)
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, *map(str, paths)], stdout=subprocess.PIPE
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == b"go"
    time.sleep(1.2)  # about half of the 24 MiB of new geometry at 8 MiB/s
    assert child.poll() is None, "the reshape finished before the kill"
    child.send_signal(signal.SIGKILL)
    child.wait()
    plan = fastraid.plan_reshape(paths, raid_devices=4).describe()
    assert plan["kind"] == "continue" and 0 < plan["checkpoint"] < plan["size"], plan
    with fastraid.open(paths, readonly=True) as a:
        assert a.read(0, len(data)) == data
    judge(paths, data, reshape_expected=True)


@pytest.mark.parametrize(
    "name",
    [
        "raid5to6-backup-cut45",
        "raid5-meta10-grow-3to4-backup-cut50",
        "raid5-shrink-5to4-cut70",
        "raid5-layout-backwards-cut30",
    ],
)
def test_kernel_after_grow_continue_of_kernel_cases(tmp_path: Path, name: str) -> None:
    """Reshapes the kernel left interrupted, finished by fastraid: in place with mdadm's
    backup file (a RAID-5 -> RAID-6 whose Q member md recovers along with the reshape, a
    metadata-1.0 grow), a shrink and a backwards layout change (data moving toward the end).
    The kernel then assembles a clean array in the new geometry: no resync, no recovery, no
    reshape left, the pattern's sha256, mismatch_cnt 0."""
    paths, backup, manifest = kernel_case(tmp_path, name)
    fastraid.grow_continue(paths, backup_file=backup)
    with fastraid.open(paths, readonly=True) as a:
        geometry = (a.level, a.raid_devices, a.chunk)
        members = [Path(m) for m in a.members if m is not None]
    expected = manifest["expected"]
    r = check(members, sha_bytes=expected["length_bytes"])
    why = summary(r)
    assert r["assembled"] and r["exit_code"] == 0 and r["degraded"] == 0, why
    assert (r["level"], r["raid_disks"], r["chunk_bytes"]) == geometry, why
    assert not [e for e in r["sync_events"] if "check" not in e], why
    assert r["sha256"] == expected["sha256"], why
    assert r["scrub"]["finished"] and r["scrub"]["mismatch_cnt"] == 0, why


def _room_after(tmp: Path) -> tuple[list[Path], bytes]:
    """A RAID-5 ×4 with free space only after the data: a forward chunk change (64 -> 128
    KiB) moved the data into the room before it."""
    paths, data = make(tmp, "raid5", 4, 0)
    fastraid.reshape(paths, chunk=128 * 1024)
    return paths, data


def test_kernel_assembles_a_backwards_reshape(tmp_path: Path) -> None:
    """Same width, smaller stripes, room only after the data: md's backwards kind
    (RESHAPE_BACKWARDS, positive new_offset, walking down from the end)."""
    paths, data = _room_after(tmp_path)
    plan = fastraid.plan_reshape(paths, chunk=CHUNK)
    d = plan.describe()
    assert d["new_offset_sectors"] > 0 and d["start"] == d["size"], d
    plan.execute()
    judge(paths, data)


KILL_CHILD = """
import json, sys, fastraid
print("go", flush=True)
fastraid.reshape(sys.argv[2:], batch_bytes=256 * 1024, checkpoint_bytes=0,
                 speed_limit=8 << 20, **json.loads(sys.argv[1]))
"""


@pytest.mark.parametrize(
    "kw", [{"layout": "right-asymmetric"}, {"chunk": CHUNK}], ids=["layout", "chunk-128to64"]
)
def test_kernel_takes_over_a_killed_backwards_reshape(
    tmp_path: Path, kw: dict[str, object]
) -> None:
    """Backwards reshapes SIGKILLed half-way: a layout change and a chunk decrease (whose
    checkpoints must lie on the kernel's grid of the larger chunk, not on the new stripes).
    The kernel resumes each from fastraid's checkpoint (walking down), finishes it and holds
    the original bytes."""
    paths, data = _room_after(tmp_path)
    child = subprocess.Popen(
        [sys.executable, "-c", KILL_CHILD, json.dumps(kw), *map(str, paths)],
        stdout=subprocess.PIPE,
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == b"go"
    time.sleep(1.2)  # about half of the 21 MiB at 8 MiB/s
    assert child.poll() is None, "the reshape finished before the kill"
    child.send_signal(signal.SIGKILL)
    child.wait()
    plan = fastraid.plan_reshape(paths, continue_only=True).describe()
    assert plan["kind"] == "continue" and 0 < plan["checkpoint"] < plan["size"], plan
    with fastraid.open(paths, readonly=True) as a:
        assert a.read(0, len(data)) == data
    judge(paths, data, reshape_expected=True)
