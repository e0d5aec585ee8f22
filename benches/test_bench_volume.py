"""Sequential write and read of an array's volume against the I/O ceiling measured in the
same run: a 4-member RAID-5 and a 6-member RAID-6, 512 KiB chunks, member files in the
normal temporary directory.

- Write: ``fastraid.open(members)``, ``Array.write`` in 4 MiB pieces over the whole array,
  then ``Array.flush()`` (fdatasync of every member) and close. Ceiling: writing ``n`` new
  member-sized files of random bytes, each fsynced as flush does, times the data
  fraction ``k / n`` (the array writes parity too).
- Read: ``Array.readinto`` in 4 MiB pieces over the whole array (open included), and the
  same through the ``Array.volume()`` file object. Ceiling: ``cat MEMBERS > /dev/null``
  (the real ``cat``, the members in the page cache) times ``k / n``: reading a clean
  array needs the data chunks only, so a read can pass this ceiling.

Rates are array bytes per second; ``extra_info`` has them in MB/s and the ratios
``write_vs_ceiling``, ``read_vs_ceiling`` and ``volume_read_vs_ceiling`` (no target in
the issue: these show where the volume stands against the same ceiling). Each time is the
best of ``REPEAT`` rounds, every round measuring all five in turn so that load elsewhere
on the machine hits them alike; before every timed run the machine's dirty pages are
written out (``os.sync()``, untimed) and the ceiling's files are removed, so no run pays
for another's writeback. Every round writes different bytes, and the bytes read back are
compared with them (untimed).

Members are ``FASTRAID_BENCH_VOLUME_MIB`` MiB (default 256), 8 MiB under
``FASTRAID_BENCH_QUICK=1`` (CI: the bench must run, its numbers mean little).
Run with ``pytest benches/test_bench_volume.py --benchmark-enable``; with the default
``--benchmark-disable`` (the plain test suite) each case runs one round of 8 MiB members
(or ``FASTRAID_BENCH_VOLUME_MIB``) and checks the bytes read back.
"""

from __future__ import annotations

import os
import random
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fastraid
import pytest

QUICK = os.environ.get("FASTRAID_BENCH_QUICK", "") not in ("", "0")
MEMBER_MIB = os.environ.get("FASTRAID_BENCH_VOLUME_MIB", "")
CHUNK = 512 * 1024
PIECE = 4 << 20
REPEAT = 5
POOL = 7  # distinct 4 MiB pieces, cycled; 7 divides no stripe width


def _member_bytes(benchmark: Any) -> int:
    if MEMBER_MIB:
        return int(MEMBER_MIB) << 20
    return (256 if benchmark.enabled and not QUICK else 8) << 20


def _timed(fn: Callable[[], object]) -> float:
    os.sync()
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def _cat(paths: list[Path]) -> None:
    with open(os.devnull, "wb") as sink:
        subprocess.run(["cat", *map(str, paths)], stdout=sink, check=True)


def _write_files(paths: list[Path], size: int, block: bytes) -> None:
    for p in paths:
        with open(p, "wb", buffering=0) as f:
            for _ in range(size // len(block)):
                f.write(block)
            os.fsync(f.fileno())


@pytest.mark.parametrize(("level", "n", "k"), [(5, 4, 3), (6, 6, 4)])
def test_volume_sequential(benchmark: Any, tmp_path: Path, level: int, n: int, k: int) -> None:
    load_before = os.getloadavg()[0]
    member = _member_bytes(benchmark)
    repeat = REPEAT if benchmark.enabled else 1
    rng = random.Random(level)
    pool = [rng.randbytes(PIECE) for _ in range(POOL)]
    paths = [tmp_path / f"m{i}.img" for i in range(n)]
    for p in paths:
        with open(p, "wb") as f:
            f.truncate(member)
    fastraid.create(paths, level=level, chunk=CHUNK, force=True)
    with fastraid.open(paths, readonly=True) as a:
        size = a.size
    pieces = [(off, min(PIECE, size - off)) for off in range(0, size, PIECE)]
    ceiling_dir = tmp_path / "ceiling"
    ceiling_dir.mkdir()
    ceiling_files = [ceiling_dir / f"c{i}.img" for i in range(n)]
    buf = bytearray(PIECE)
    view = memoryview(buf)
    rounds = {"n": 0}

    def data(off: int, length: int, r: int) -> memoryview:
        return memoryview(pool[(off // PIECE + r) % POOL])[:length]

    def write() -> None:
        r = rounds["n"]
        with fastraid.open(paths) as a:
            for off, length in pieces:
                a.write(off, data(off, length, r))
            a.flush()

    def read() -> None:
        with fastraid.open(paths, readonly=True) as a:
            for off, length in pieces:
                a.readinto(off, view[:length])

    def read_volume() -> None:
        with fastraid.open(paths, readonly=True) as a, a.volume() as v:
            got = 0
            while got < size:
                m = v.readinto(view[: min(PIECE, size - got)])
                assert m > 0
                got += m

    def check() -> bool:
        r = rounds["n"]
        with fastraid.open(paths, readonly=True) as a:
            for off, length in pieces:
                a.readinto(off, view[:length])
                if view[:length] != data(off, length, r):
                    return False
        return True

    def write_ceiling() -> None:
        for c in ceiling_files:
            c.unlink(missing_ok=True)
        os.sync()
        t = time.perf_counter()
        _write_files(ceiling_files, member, pool[0])
        times["write_ceiling"] = min(times["write_ceiling"], time.perf_counter() - t)

    times = dict.fromkeys(("write_ceiling", "write", "read_ceiling", "read", "volume"), 1e9)
    ok = True
    for r in range(repeat):
        rounds["n"] = r
        write_ceiling()
        times["write"] = min(times["write"], _timed(write))
        _cat(paths)  # members in the page cache (they are, after the write; make sure)
        times["read_ceiling"] = min(times["read_ceiling"], _timed(lambda: _cat(paths)))
        times["read"] = min(times["read"], _timed(read))
        times["volume"] = min(times["volume"], _timed(read_volume))
        ok = ok and check()
    for c in ceiling_files:
        c.unlink(missing_ok=True)
    benchmark.group = f"volume raid{level} {n}x{member >> 20} MiB"
    benchmark.pedantic(read, setup=os.sync, rounds=1, iterations=1)
    if benchmark.stats is not None:
        times["read"] = min(times["read"], benchmark.stats.stats.min)
    load_after = os.getloadavg()[0]

    frac = k / n
    write_ceiling = n * member / times["write_ceiling"] * frac
    read_ceiling = sum(p.stat().st_size for p in paths) / times["read_ceiling"] * frac
    rates = {key: size / times[key] for key in ("write", "read", "volume")}
    benchmark.extra_info.update(
        {
            "bench": "volume",
            "level": f"raid{level}",
            "members": n,
            "data_members": k,
            "member_bytes": member,
            "array_bytes": size,
            "piece_bytes": PIECE,
            "write_mb_s": round(rates["write"] / 1e6, 1),
            "write_ceiling_mb_s": round(write_ceiling / 1e6, 1),
            "write_vs_ceiling": round(rates["write"] / write_ceiling, 2),
            "read_mb_s": round(rates["read"] / 1e6, 1),
            "volume_read_mb_s": round(rates["volume"] / 1e6, 1),
            "read_ceiling_mb_s": round(read_ceiling / 1e6, 1),
            "read_vs_ceiling": round(rates["read"] / read_ceiling, 2),
            "volume_read_vs_ceiling": round(rates["volume"] / read_ceiling, 2),
            "repeat": repeat,
            "load_before": round(load_before, 2),
            "load_after": round(load_after, 2),
            "correct": ok,
        }
    )
    print(f"raid{level}: {benchmark.extra_info}")
    assert ok
