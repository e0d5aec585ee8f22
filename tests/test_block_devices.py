"""Block devices as members (loop devices over image files): create, write, fail, rebuild
and read through ``/dev/loopN`` exactly as through files, and a device claimed by someone
else (mounted, in a running md array, or held with O_EXCL) is refused for writing with a
clear error while it stays readable.

Needs root and ``losetup``; skipped with the reason printed otherwise.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import fastraid
import pytest

MiB = 1 << 20


@pytest.fixture
def loops(tmp_path: Path) -> Iterator[list[str]]:
    if os.geteuid() != 0 or shutil.which("losetup") is None:
        reason = "loop devices need root and losetup"
        print(f"skipping: {reason}")
        pytest.skip(reason)
    devices: list[str] = []
    try:
        for i in range(4):
            img = tmp_path / f"b{i}.img"
            img.write_bytes(b"")
            os.truncate(img, 24 * MiB)
            r = subprocess.run(
                ["losetup", "-f", "--show", str(img)], capture_output=True, text=True
            )
            if r.returncode != 0:
                reason = f"losetup failed: {r.stderr.strip()}"
                print(f"skipping: {reason}")
                pytest.skip(reason)
            devices.append(r.stdout.strip())
        yield devices
    finally:
        for d in devices:
            subprocess.run(["losetup", "-d", d], check=False)


def test_array_on_block_devices(loops: list[str], tmp_path: Path) -> None:
    members = loops[:3]
    rng = random.Random(1)
    with fastraid.create(members, level=5, chunk=64 * 1024, force=True) as a:
        assert a.size == 2 * (24 - 1) * MiB  # data offset 1 MiB on 24 MiB devices
        model = bytearray(a.read(0, a.size))
        for _ in range(40):
            off = rng.randrange(a.size)
            data = rng.randbytes(min(rng.randrange(1, 300_000), a.size - off))
            a.write(off, data)
            model[off : off + len(data)] = data
        a.fail(1)
        a.write(0, b"degraded write")
        model[:14] = b"degraded write"
        a.remove(1)
        a.add(loops[3], force=True)
        a.rebuild()
        assert not a.degraded and a.read(0, a.size) == model
    final = [loops[0], loops[3], loops[2]]
    with fastraid.open(final, readonly=True) as r:
        assert r.read(0, r.size) == model
    assert fastraid.check(final, checkpoint=False).clean


def test_a_claimed_device_is_refused_for_writing(loops: list[str]) -> None:
    members = loops[:3]
    fastraid.create(members, level=1, force=True).close()
    fd = os.open(members[1], os.O_RDWR | os.O_EXCL)  # what a mount or md would hold
    try:
        with pytest.raises(fastraid.MemberError, match="in use"):
            fastraid.open(members)
        with fastraid.open(members, readonly=True) as a:  # reading is fine
            assert not a.degraded
    finally:
        os.close(fd)
    with fastraid.open(members) as a:  # released
        assert a.writable
