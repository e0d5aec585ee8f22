"""Rebuild speed (issue 4): one member of a 4-member RAID-5 and of a 6-member RAID-6
rebuilt from survivors in the page cache, against the I/O ceiling measured in the same run
(the smaller of: the survivors' read rate divided by their count, and the write rate of one
new file of the member's size, fsync included as the rebuild's is) and against a
straightforward serial NumPy rebuild (read stripe, XOR / copy, write). Ratios go to
``extra_info``: ``vs_ceiling`` (target >= 0.8) and ``vs_numpy`` (target >= 2).

Run with ``pytest benches/test_bench_rebuild.py --benchmark-enable``; with the default
``--benchmark-disable`` each case runs once as a plain test.
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path
from typing import Any

import fastraid
import numpy as np
import pytest

MEMBER = int(os.environ.get("FASTRAID_BENCH_REBUILD_MIB", "64")) << 20
CHUNK = 512 * 1024
BLOCK = 4 << 20


def _make(tmp: Path, level: str, n: int) -> tuple[list[Path], int]:
    rng = random.Random(level)
    seed = rng.randbytes(1 << 20)
    paths = []
    for i in range(n):
        p = tmp / f"m{i}.img"
        with open(p, "wb") as f:
            for k in range(MEMBER >> 20):
                f.write(
                    seed[k % 7 :] + seed[: k % 7]
                    if i % 2
                    else bytes(b ^ i for b in seed[:16]) * 65536
                )
        paths.append(p)
    plan = fastraid.plan_create(paths, level=level, chunk=CHUNK, force=True)
    plan.execute()
    return paths, int(plan.describe()["data_offset"])


def _read_rate(paths: list[Path]) -> float:
    """Bytes/s reading every survivor once (page cache), per member."""
    buf = bytearray(BLOCK)
    t = time.perf_counter()
    total = 0
    for p in paths:
        with open(p, "rb", buffering=0) as f:
            while n := f.readinto(buf):
                total += n
    return total / (time.perf_counter() - t) / len(paths)


def _write_rate(path: Path, size: int) -> float:
    buf = bytes(BLOCK)
    t = time.perf_counter()
    with open(path, "wb", buffering=0) as f:
        for _ in range(size // BLOCK):
            f.write(buf)
        os.fsync(f.fileno())
    rate = size / (time.perf_counter() - t)
    path.unlink()
    return rate


def _numpy_rebuild(paths: list[Path], off: int, total: int, out: Path, level: str) -> None:
    """Serial baseline: RAID-5 = XOR of the survivors; RAID-6 with one data member lost is
    rebuilt from P the same way (the survivors minus Q)."""
    srcs = [open(p, "rb") for p in paths]  # noqa: SIM115
    try:
        with open(out, "wb") as w:
            pos = 0
            while pos < total:
                n = min(BLOCK, total - pos)
                acc = np.zeros(n, dtype=np.uint8)
                for f in srcs:
                    f.seek(off + pos)
                    acc ^= np.frombuffer(f.read(n), dtype=np.uint8)
                w.seek(off + pos)
                w.write(acc.tobytes())
                pos += n
            os.fsync(w.fileno())
    finally:
        for f in srcs:
            f.close()


@pytest.mark.parametrize("level,n", [("raid5", 4), ("raid6", 6)])
def test_bench_rebuild(benchmark: Any, tmp_path: Path, level: str, n: int) -> None:
    paths, off = _make(tmp_path, level, n)
    lost = 0
    survivors = paths[1:]
    total = int(fastraid.plan_rebuild(survivors, slot=lost, new=tmp_path / "p").describe()["total"])
    new = tmp_path / "new.img"

    def run() -> None:
        if new.exists():
            new.unlink()
        fastraid.rebuild(survivors, slot=lost, new=new)

    # _read_rate is already the survivors' aggregate rate divided by their count.
    ceiling = min(_read_rate(survivors), _write_rate(tmp_path / "w.img", MEMBER))
    benchmark.group = f"rebuild {level} {n}x{MEMBER >> 20} MiB"
    t = time.perf_counter()
    run()
    ours = total / (time.perf_counter() - t)
    benchmark.pedantic(run, rounds=3, iterations=1)
    if benchmark.stats is not None:
        ours = total / benchmark.stats.stats.min
    # Serial NumPy baseline (RAID-6: XOR of data+P of the stripe; Q is not read).
    # RAID-6: one fewer member read, as a P-only recovery reads.
    base_srcs = survivors[:-1] if level == "raid6" else survivors
    t = time.perf_counter()
    _numpy_rebuild(base_srcs, off, total, tmp_path / "np.img", level)
    numpy_rate = total / (time.perf_counter() - t)
    with fastraid.open([*survivors, new], readonly=True) as a:
        ok = not a.degraded
    benchmark.extra_info.update(
        {
            "rate_mb_s": round(ours / 1e6, 1),
            "ceiling_mb_s": round(ceiling / 1e6, 1),
            "numpy_mb_s": round(numpy_rate / 1e6, 1),
            "vs_ceiling": round(ours / ceiling, 2),
            "vs_numpy": round(ours / numpy_rate, 2),
            "correct": ok,
        }
    )
    print(f"{level}: {benchmark.extra_info}")
    assert ok
