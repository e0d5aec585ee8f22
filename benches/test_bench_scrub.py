"""Scrub rate against the read ceiling of the members, measured in the same run.

The ceiling is a cat-like sequential read of every member file (1 MiB ``readinto``, the
files in the page cache after a warm-up read); the scrub reads the same member bytes and
recomputes P and Q. ``extra_info["ratio"]`` = scrub rate / ceiling (target >= 0.8).
Run with ``pytest benches/test_bench_scrub.py --benchmark-enable``; with the benchmarks
disabled (the default) each case runs once as a plain test.
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path
from typing import Any

import fastraid
import pytest

MEMBER_MIB = int(os.environ.get("FASTRAID_BENCH_SCRUB_MIB", "48"))


def _cat(paths: list[Path]) -> int:
    buf = bytearray(1 << 20)
    n = 0
    for p in paths:
        with open(p, "rb", buffering=0) as f:
            while k := f.readinto(buf):
                n += k
    return n


def _best(fn: Any, repeat: int = 3) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


@pytest.mark.benchmark(group="scrub check")
@pytest.mark.parametrize(("level", "n"), [(6, 6), (5, 5), (10, 4)])
def test_scrub_check_vs_read_ceiling(benchmark: Any, tmp_path: Path, level: int, n: int) -> None:
    rng = random.Random(level)
    paths = [tmp_path / f"m{i}.img" for i in range(n)]
    for p in paths:
        p.write_bytes(rng.randbytes(MEMBER_MIB << 20))
    fastraid.create(paths, level=level, chunk=512 * 1024, force=True)
    _cat(paths)  # warm the page cache
    cat_s, cat_bytes = _best(lambda: _cat(paths))
    scrub_s, r = _best(lambda: fastraid.check(paths, checkpoint=False))
    assert r.clean
    ceiling = cat_bytes / cat_s
    rate = r.bytes_read / scrub_s
    benchmark.extra_info.update(
        {
            "read_ceiling_MiBps": round(ceiling / 2**20),
            "scrub_MiBps": round(rate / 2**20),
            "ratio": round(rate / ceiling, 3),
            "member_MiB": MEMBER_MIB,
            "correct": r.clean,
        }
    )
    print(
        f"RAID-{level} x{n}: ceiling {ceiling / 2**20:.0f} MiB/s, "
        f"scrub {rate / 2**20:.0f} MiB/s, ratio {rate / ceiling:.2f}"
    )
    benchmark.pedantic(lambda: fastraid.check(paths, checkpoint=False), rounds=1, iterations=1)
