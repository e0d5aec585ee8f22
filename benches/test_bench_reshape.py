"""Reshape rate beside the I/O ceiling, measured in the same run (issue 6: "reshape and scrub
rates in docs/benchmarks.md beside the I/O ceiling").

A RAID-5 of 3 members grown to 4 (the incident's 3 -> 4 grow) and a RAID-6 of 5 grown to 6,
members in the page cache, 512 KiB chunks; the reshape (``fastraid.reshape``, checkpoints
with fdatasync included) moves every array byte. Ceiling: the smaller of reading the old
members with ``cat`` (member bytes per second) and writing one new member-sized file with
fsync, times the number of members written, i.e. the rate at which the members can be read
once and the new layout written once; ``extra_info``: array bytes moved per second and
the ratio to the ceiling (no target in the issue: reported beside it).

Each time is the best of ``REPEAT`` rounds (a fresh array each round, made untimed), with
``os.sync()`` before every timed run. Members are ``FASTRAID_BENCH_RESHAPE_MIB`` MiB
(default 128), 8 MiB under ``FASTRAID_BENCH_QUICK=1`` or with benchmarks disabled.
"""

from __future__ import annotations

import os
import random
import subprocess
import time
from pathlib import Path
from typing import Any

import fastraid
import pytest

QUICK = os.environ.get("FASTRAID_BENCH_QUICK", "") not in ("", "0")
MEMBER_MIB = os.environ.get("FASTRAID_BENCH_RESHAPE_MIB", "")
REPEAT = 3
TILE = 8 << 20


def _member_mib(benchmark: Any) -> int:
    if MEMBER_MIB:
        return int(MEMBER_MIB)
    return 128 if benchmark.enabled and not QUICK else 8


def _fill(path: Path, mib: int, tile: bytes, shift: int) -> None:
    block = tile[shift:] + tile[:shift]
    with open(path, "wb") as f:
        for _ in range((mib << 20) // TILE):
            f.write(block)
        f.write(block[: (mib << 20) % TILE])


@pytest.mark.benchmark(group="reshape")
@pytest.mark.parametrize(("level", "n"), [(5, 3), (6, 5)])
def test_reshape_grow_vs_ceiling(benchmark: Any, tmp_path: Path, level: int, n: int) -> None:
    load_before = os.getloadavg()[0]
    mib = _member_mib(benchmark)
    repeat = REPEAT if benchmark.enabled else 1
    tile = random.Random(level).randbytes(TILE)
    best = cat_best = write_best = float("inf")
    moved = 0
    correct = True
    for rnd in range(repeat):
        d = tmp_path / f"r{rnd}"
        d.mkdir()
        paths = [d / f"m{i}.img" for i in range(n + 1)]
        for i, p in enumerate(paths[:n]):
            _fill(p, mib, tile, (i * 4099) % TILE)
        fastraid.create(paths[:n], level=level, chunk=512 * 1024, force=True).close()
        with fastraid.open(paths[:n], readonly=True) as a:
            before = a.read(0, a.size)
        spare = paths[n]
        with fastraid.open(paths[:n]) as a:
            a.add(spare)
        with open(os.devnull, "wb") as sink:  # warm the page cache, then the ceiling
            subprocess.run(["cat", *map(str, paths[:n])], stdout=sink, check=True)
            os.sync()
            t = time.perf_counter()
            subprocess.run(["cat", *map(str, paths[:n])], stdout=sink, check=True)
            cat_best = min(cat_best, time.perf_counter() - t)
        probe = d / "w.img"
        data = tile * max(1, (mib << 20) // TILE)
        os.sync()
        t = time.perf_counter()
        with open(probe, "wb", buffering=0) as f:
            f.write(data[: mib << 20])
            os.fsync(f.fileno())
        write_best = min(write_best, time.perf_counter() - t)
        probe.unlink()
        os.sync()
        t = time.perf_counter()
        fastraid.reshape(paths, raid_devices=n + 1)
        best = min(best, time.perf_counter() - t)
        with fastraid.open(paths, readonly=True) as a:
            correct = correct and a.raid_devices == n + 1 and a.read(0, len(before)) == before
        moved = len(before)
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    load_after = os.getloadavg()[0]
    member_bytes = mib << 20
    read_rate = n * member_bytes / cat_best  # member bytes/s
    write_rate = member_bytes / write_best  # one member file, fsynced
    # Reading the n old members once and writing the n + 1 new ones once, as array bytes.
    t_ceiling = n * member_bytes / read_rate + (n + 1) * member_bytes / write_rate
    ceiling = moved / t_ceiling
    rate = moved / best
    benchmark.extra_info.update(
        {
            "bench": "reshape",
            "level": f"raid{level}",
            "members": f"{n}->{n + 1}",
            "member_MiB": mib,
            "array_bytes": moved,
            "reshape_mb_s": round(rate / 1e6, 1),
            "ceiling_mb_s": round(ceiling / 1e6, 1),
            "read_mb_s": round(read_rate / 1e6, 1),
            "write_mb_s": round(write_rate / 1e6, 1),
            "ratio": round(rate / ceiling, 3),
            "repeat": repeat,
            "load_before": round(load_before, 2),
            "load_after": round(load_after, 2),
            "correct": correct,
        }
    )
    print(f"RAID-{level} {n}->{n + 1}: reshape {rate / 1e6:.0f} MB/s, ceiling {ceiling / 1e6:.0f}")
    assert correct
