"""The real Linux md driver judges arrays that fastraid *wrote* (kernel-md under qemu):

* arrays created and then written by ``fastraid.open(...).write`` (RAID-0, 1, 5, 6, 10,
  metadata 1.2, 1.1 and 1.0) assemble clean, with no resync, the content fastraid's model
  says, and a scrub with ``mismatch_cnt`` 0;
* an array written after a ``fail``, then given a spare and rebuilt, assembles clean and
  whole, and the kernel leaves the failed member out (stale) when it is offered too;
* an array left dirty by a writer that never closed it (kill -9) is resynced by the kernel
  from fastraid's write-intent bitmap: parity damaged inside the dirty region is repaired
  (``mismatch_cnt`` 0 afterwards).
"""

from __future__ import annotations

import hashlib
import random
import struct
from pathlib import Path

import fastraid
import pytest
from kernelmd import check, summary

pytestmark = pytest.mark.slow

MEMBER = 6 << 20
CHUNK = 64 * 1024


def written(
    tmp: Path, level: str, n: int, layout: str | None, metadata: str
) -> tuple[list[str], bytearray]:
    rng = random.Random(f"{level}{n}{layout}{metadata}")
    paths = [str(tmp / f"m{i}.img") for i in range(n)]
    fastraid.create(
        paths, level=level, chunk=CHUNK, layout=layout, size=MEMBER, metadata=metadata
    ).close()
    with fastraid.open(paths) as a:
        model = bytearray(a.read(0, a.size))
        for k in range(60):
            off = rng.randrange(a.size)
            n_ = min(rng.choice((rng.randrange(1, 3000), rng.randrange(1, 400_000))), a.size - off)
            data = rng.randbytes(n_)
            a.write(off, data)
            model[off : off + n_] = data
            if k % 20 == 19:
                a.flush()
    return paths, model


CASES = [
    ("raid0", 3, None, "1.2"),
    ("raid1", 2, None, "1.0"),
    ("raid5", 4, "left-symmetric", "1.2"),
    ("raid5", 3, "right-asymmetric", "1.1"),
    ("raid6", 5, "left-symmetric", "1.2"),
    ("raid6", 5, "left-asymmetric", "1.0"),
    ("raid10", 4, "n2", "1.2"),
    ("raid10", 4, "f2", "1.2"),
    ("raid10", 3, "o2", "1.2"),
]


@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}-{c[1]}-{c[2] or ''}-{c[3]}" for c in CASES])
def test_kernel_assembles_written_array(
    tmp_path: Path, case: tuple[str, int, str | None, str]
) -> None:
    level, n, layout, metadata = case
    paths, model = written(tmp_path, level, n, layout, metadata)
    redundant = level != "raid0"
    r = check(paths, scrub=redundant)
    why = summary(r)
    assert r["assembled"] and r["exit_code"] == 0, why
    assert r["metadata_version"] == metadata, why
    assert not [e for e in r["sync_events"] if "resync" in e or "recovery" in e], why
    assert r["array_size_bytes"] == len(model), why
    assert r["sha256"] == hashlib.sha256(model).hexdigest(), why
    if redundant:
        assert r["degraded"] == 0, why
        assert r["scrub"]["finished"] and r["scrub"]["mismatch_cnt"] == 0, why


def test_kernel_assembles_array_written_degraded_then_rebuilt(tmp_path: Path) -> None:
    paths, model = written(tmp_path, "raid6", 5, "left-symmetric", "1.2")
    rng = random.Random(5)
    with fastraid.open(paths) as a:
        assert a.fail(2) == paths[2]
        for _ in range(30):  # degraded writes: P/Q keep slot 2's data
            off = rng.randrange(a.size)
            data = rng.randbytes(min(rng.randrange(1, 200_000), a.size - off))
            a.write(off, data)
            model[off : off + len(data)] = data
        spare = str(tmp_path / "spare.img")
        a.add(spare)
        a.rebuild()
        assert not a.degraded
        assert a.read(0, a.size) == model
    # The failed member is offered too: md must leave it out (its events are behind).
    r = check([*paths, spare])
    why = summary(r)
    assert r["assembled"] and r["exit_code"] == 0, why
    assert not [e for e in r["sync_events"] if "resync" in e or "recovery" in e], why
    assert r["degraded"] == 0 and r["raid_disks"] == 5, why
    assert r["sha256"] == hashlib.sha256(model).hexdigest(), why
    assert r["scrub"]["finished"] and r["scrub"]["mismatch_cnt"] == 0, why


def test_kernel_resyncs_what_an_unclosed_writer_left_dirty(tmp_path: Path) -> None:
    paths = [str(tmp_path / f"m{i}.img") for i in range(3)]
    fastraid.create(paths, level=5, chunk=CHUNK, size=32 << 20).close()
    a = fastraid.open(paths)
    a.write(0, random.Random(9).randbytes(300_000))
    del a  # never closed: superblocks dirty, bitmap bit 0 set (like kill -9)
    with open(paths[0], "rb") as f:
        f.seek(4096)
        assert struct.unpack_from("<Q", f.read(256), 208)[0] == 0, "resync_offset: dirty"
    # Damage parity inside the dirty region: stripe 1's P is on member 1 (left-symmetric,
    # 3 members: P on 2, 1, 0, ...), at member byte 64 KiB of the data area (1 MiB).
    with open(paths[1], "r+b") as f:
        f.seek((1 << 20) + CHUNK + 512)
        f.write(b"\x5a" * 1024)
    with fastraid.open(paths, readonly=True) as ro:
        sha = hashlib.sha256(ro.read(0, ro.size)).hexdigest()
    r = check(paths)
    why = summary(r)
    assert r["assembled"] and r["exit_code"] == 0, why
    assert any("resync" in e for e in r["sync_events"]), why
    assert r["sha256"] == sha, why
    assert r["scrub"]["finished"] and r["scrub"]["mismatch_cnt"] == 0, why
