"""Scrub check rate against the read ceiling of the members, measured in the same run.

The ceiling is ``cat MEMBERS > /dev/null`` (the real ``cat``), the member files in the
page cache after a warm-up read; the scrub (``fastraid.check``, no checkpoint) reads the
same member bytes and recomputes the parity (or compares the mirrors). ``extra_info``:
``ratio`` = scrub rate / ceiling (target >= 0.8), both in member bytes read per second.
For context, mdadm's ``raid6check`` runs at ~40 MiB/s.

Each time is the best of ``REPEAT`` rounds, the two measurements interleaved in every
round so that load elsewhere on the machine hits both alike; before every timed run the
machine's dirty pages are written out (``os.sync()``, untimed), so that neither pays for
the writeback of the members' creation. Members are ``FASTRAID_BENCH_SCRUB_MIB`` MiB
(default 256), 8 MiB under ``FASTRAID_BENCH_QUICK=1`` (CI: the bench must run, its
numbers mean little).

Run with ``pytest benches/test_bench_scrub.py --benchmark-enable``; with the default
``--benchmark-disable`` (the plain test suite) each case runs one round of 8 MiB members
(or ``FASTRAID_BENCH_SCRUB_MIB``) as a plain test.
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
MEMBER_MIB = os.environ.get("FASTRAID_BENCH_SCRUB_MIB", "")
REPEAT = 5
TILE = 8 << 20  # random bytes, tiled (shifted per member): faster to make than all random


def _cat(paths: list[Path]) -> None:
    with open(os.devnull, "wb") as sink:
        subprocess.run(["cat", *map(str, paths)], stdout=sink, check=True)


def _member_mib(benchmark: Any) -> int:
    if MEMBER_MIB:
        return int(MEMBER_MIB)
    return 256 if benchmark.enabled and not QUICK else 8


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    os.sync()
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


@pytest.mark.benchmark(group="scrub check")
@pytest.mark.parametrize(("level", "n"), [(6, 6), (5, 5), (10, 4)])
def test_scrub_check_vs_read_ceiling(benchmark: Any, tmp_path: Path, level: int, n: int) -> None:
    load_before = os.getloadavg()[0]
    mib = _member_mib(benchmark)
    repeat = REPEAT if benchmark.enabled else 1
    rng = random.Random(level)
    tile = rng.randbytes(TILE)
    paths = [tmp_path / f"m{i}.img" for i in range(n)]
    for i, p in enumerate(paths):
        shift = (i * 4099) % TILE
        block = tile[shift:] + tile[:shift]
        with open(p, "wb") as f:
            for _ in range((mib << 20) // TILE):
                f.write(block)
            f.write(block[: (mib << 20) % TILE])
    fastraid.create(paths, level=level, chunk=512 * 1024, force=True)
    member_bytes = sum(p.stat().st_size for p in paths)

    def scrub() -> Any:
        return fastraid.check(paths, checkpoint=False)

    _cat(paths)  # warm the page cache
    cat_s = scrub_s = float("inf")
    clean = True
    bytes_read = 0
    for _ in range(repeat):
        cat_s = min(cat_s, _timed(lambda: _cat(paths))[0])
        t, r = _timed(scrub)
        scrub_s = min(scrub_s, t)
        clean = clean and r.clean
        bytes_read = r.bytes_read
    benchmark.pedantic(scrub, setup=os.sync, rounds=1, iterations=1)
    if benchmark.stats is not None:
        scrub_s = min(scrub_s, benchmark.stats.stats.min)
    load_after = os.getloadavg()[0]
    ceiling = member_bytes / cat_s
    rate = bytes_read / scrub_s
    benchmark.extra_info.update(
        {
            "bench": "scrub",
            "level": f"raid{level}",
            "members": n,
            "member_MiB": mib,
            "bytes_read": bytes_read,
            "read_ceiling_MiBps": round(ceiling / 2**20),
            "scrub_MiBps": round(rate / 2**20),
            "read_ceiling_mb_s": round(ceiling / 1e6, 1),
            "scrub_mb_s": round(rate / 1e6, 1),
            "ratio": round(rate / ceiling, 3),
            "target": 0.8,
            "repeat": repeat,
            "load_before": round(load_before, 2),
            "load_after": round(load_after, 2),
            "correct": clean,
        }
    )
    print(
        f"RAID-{level} x{n}: ceiling {ceiling / 1e6:.0f} MB/s, "
        f"scrub {rate / 1e6:.0f} MB/s, ratio {rate / ceiling:.2f}"
    )
    assert clean
