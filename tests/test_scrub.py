"""Scrub (``fastraid.check`` / ``fastraid.repair``) on arrays made by ``fastraid.create`` over
random data (consistent from the start), with corruption injected into random members and
stripes: every corrupted byte is found, on the right member where the level can tell, and
repair restores the members byte for byte.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import shutil
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fastraid
import pytest
from fastraid import _core, cli_scrub

CHUNK = 64 * 1024
PAGE = 4096


@dataclass
class Arr:
    paths: list[Path]
    data_offset: int
    chunk: int


def make(tmp: Path, level: int, n: int, layout: str | None = None, mib: int = 3) -> Arr:
    rng = random.Random(f"{level}-{n}-{layout}")
    paths = [tmp / f"m{i}.img" for i in range(n)]
    for p in paths:
        p.write_bytes(rng.randbytes(mib << 20))
    fastraid.create(paths, level=level, chunk=CHUNK, layout=layout, force=True)
    off = _core.examine(os.fspath(paths[0]))[0]["data_offset"] * 512
    return Arr(paths, off, CHUNK)


def corrupt(a: Arr, member: int, dev: int, length: int, rng: random.Random) -> None:
    """XOR ``length`` random non-zero bytes into member ``member`` at data byte ``dev``."""
    with open(a.paths[member], "r+b") as f:
        f.seek(a.data_offset + dev)
        old = f.read(length)
        f.seek(a.data_offset + dev)
        f.write(bytes(b ^ rng.randrange(1, 256) for b in old))


def snapshot(a: Arr) -> list[bytes]:
    return [p.read_bytes() for p in a.paths]


def merge(ranges: list[tuple[Any, int, int]]) -> list[tuple[Any, int, int]]:
    out: list[tuple[Any, int, int]] = []
    for m, o, n in sorted(ranges, key=lambda r: (r[1], -1 if r[0] is None else r[0])):
        if out and out[-1][0] == m and out[-1][1] + out[-1][2] == o:
            out[-1] = (m, out[-1][1], out[-1][2] + n)
        else:
            out.append((m, o, n))
    return out


def pages(ranges: list[tuple[Any, int, int]]) -> int:
    return len({p for _, o, n in ranges for p in range(o // PAGE, (o + n - 1) // PAGE + 1)})


def stripes_of(a: Arr) -> int:
    r = fastraid.check(a.paths, checkpoint=False)
    return r.units


def as_tuples(f: fastraid.scrub.Finding) -> list[tuple[Any, int, int]]:
    return [(r.member, r.offset, r.length) for r in f.ranges]


# ----------------------------------------------------------------------------------------
# RAID-6: the syndrome names the member
# ----------------------------------------------------------------------------------------

RAID6 = [
    (4, "left-symmetric"),
    (5, "left-asymmetric"),
    (6, "right-asymmetric"),
    (5, "parity-first"),
    (6, "right-symmetric"),
    (5, "parity-last"),
    (8, "left-symmetric"),
]


@pytest.mark.parametrize(("n", "layout"), RAID6)
def test_raid6_locates_every_single_corrupt_member(tmp_path: Path, n: int, layout: str) -> None:
    a = make(tmp_path, 6, n, layout)
    good = snapshot(a)
    units = stripes_of(a)
    rng = random.Random(f"r6-{n}-{layout}")
    expect: dict[int, tuple[int, list[tuple[Any, int, int]]]] = {}
    for stripe in rng.sample(range(units), min(units, 12)):
        m = rng.randrange(n)
        ranges = []
        for _ in range(rng.randint(1, 3)):  # a few disjoint spots in one member
            off = rng.randrange(0, CHUNK - 600, 600) + rng.randrange(300)
            length = rng.randint(1, 280)
            corrupt(a, m, stripe * CHUNK + off, length, rng)
            ranges.append((m, off, length))
        expect[stripe] = (m, merge(ranges))
    r = fastraid.check(a.paths)
    assert {f.unit for f in r.findings} == set(expect)
    for f in r.findings:
        m, ranges = expect[f.unit]
        assert f.verdict == "located" and f.reason == "syndrome", f
        assert f.suspects == (m,)
        assert as_tuples(f) == ranges
        assert all(rg.dev_offset == f.unit * CHUNK + rg.offset for rg in f.ranges)
        assert f.mismatch_sectors == 8 * pages(ranges)
    assert r.mismatch_cnt == sum(8 * pages(v[1]) for v in expect.values())
    assert snapshot(a) == [p.read_bytes() for p in a.paths]  # check wrote nothing
    fixed = fastraid.repair(a.paths)
    assert [f.rewritten for f in fixed.findings] == [f.suspects for f in r.findings]
    assert fixed.bytes_written >= sum(n for v in expect.values() for _, _, n in v[1])
    assert snapshot(a) == good
    assert fastraid.check(a.paths).clean


def test_raid6_two_members_in_one_stripe_are_ambiguous(tmp_path: Path) -> None:
    a = make(tmp_path, 6, 6)
    rng = random.Random(2)
    for trial, (m1, m2) in enumerate([(0, 3), (1, 2), (4, 5), (2, 5)]):
        stripe = 3 + trial
        corrupt(a, m1, stripe * CHUNK + 100, 64, rng)
        corrupt(a, m2, stripe * CHUNK + rng.choice([100, 130, 5000]), 64, rng)
    before = snapshot(a)
    r = fastraid.repair(a.paths)
    assert [f.verdict for f in r.findings] == ["ambiguous"] * 4
    assert all(not f.rewritten and not f.suspects for f in r.findings)
    assert snapshot(a) == before, "nothing is rewritten on a guess"
    # md's behaviour on request: parity recomputed, the array then checks clean.
    r = fastraid.repair(a.paths, unresolved="md")
    assert fastraid.check(a.paths).clean


def test_raid6_degraded_checks_what_it_can(tmp_path: Path) -> None:
    a = make(tmp_path, 6, 5)
    rng = random.Random(3)
    corrupt(a, 1, 2 * CHUNK + 10, 20, rng)
    r = fastraid.check(a.paths[:1] + a.paths[2:])  # the corrupt member missing
    assert r.clean and r.units_unchecked == 0
    r = fastraid.check(a.paths[:4])  # member 4 missing
    assert [(f.unit, f.verdict) for f in r.findings] == [(2, "unlocated")]
    assert as_tuples(r.findings[0]) == [(None, 10, 20)]
    r = fastraid.check(a.paths[:3])  # two missing: nothing left to check
    assert r.units_unchecked == r.units and r.clean
    assert any("could not be checked" in n for n in r.notes)


# ----------------------------------------------------------------------------------------
# RAID-4/5: the stripe, not the member
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("level", "layout"), [(5, "left-symmetric"), (5, "right-asymmetric"), (4, None)]
)
def test_raid5_reports_stripes_and_repairs(tmp_path: Path, level: int, layout: str | None) -> None:
    a = make(tmp_path, level, 4, layout)
    good = snapshot(a)
    rng = random.Random(level)
    bad = 2
    expect = {}
    for stripe in rng.sample(range(stripes_of(a)), 6):
        off, length = rng.randrange(CHUNK - 500), rng.randint(1, 500)
        corrupt(a, bad, stripe * CHUNK + off, length, rng)
        expect[stripe] = [(None, off, length)]
    r = fastraid.check(a.paths)
    assert {f.unit: as_tuples(f) for f in r.findings} == expect
    assert all(f.verdict == "unlocated" and not f.suspects for f in r.findings)
    # The member known to be wrong, rebuilt from the others: byte-identical.
    r = fastraid.repair(a.paths, prefer=bad)
    assert all(f.rewritten == (bad,) for f in r.findings)
    assert snapshot(a) == good
    # Default: parity recomputed (md's repair); consistent afterwards.
    corrupt(a, 0, 5 * CHUNK, 10, rng)
    fastraid.repair(a.paths)
    assert fastraid.check(a.paths).clean


# ----------------------------------------------------------------------------------------
# Mirrors
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("level", "n", "layout"),
    [(1, 2, None), (1, 3, None), (10, 4, "n2"), (10, 4, "f2"), (10, 4, "o2"), (10, 3, "n2")],
)
def test_mirrors_report_disagreeing_copies_and_repair_from_prefer(
    tmp_path: Path, level: int, n: int, layout: str | None
) -> None:
    a = make(tmp_path, level, n, layout)
    good = snapshot(a)
    rng = random.Random(n)
    bad = n - 1
    spots = []
    for _ in range(5):
        dev = rng.randrange(0, 2 << 20, 4096) + rng.randrange(3000)
        corrupt(a, bad, dev, 50, rng)
        spots.append(dev)
    r = fastraid.check(a.paths)
    # Every corrupted spot shows up as a range of the bad member's copy.
    starts = sorted(
        (rg.dev_offset if rg.member == bad else dict(f.locations)[bad] + rg.offset)
        for f in r.findings
        for rg in f.ranges
    )
    assert starts == sorted(spots)
    if n >= 3 and level == 1:
        assert all(f.verdict == "located" and f.suspects == (bad,) for f in r.findings)
    else:
        assert all(f.verdict == "unlocated" for f in r.findings)
    assert r.mismatch_cnt >= 8 * len(spots)
    # prefer applies to the units where that member holds a copy (RAID-10: the partner).
    partners = sorted({m for f in r.findings for m, _ in f.locations if m != bad})
    for keep in partners:
        fastraid.repair(a.paths, prefer=keep)
    assert snapshot(a) == good
    assert fastraid.check(a.paths).clean


def test_raid1_repair_without_prefer_leaves_two_copies_alone(tmp_path: Path) -> None:
    a = make(tmp_path, 1, 2)
    corrupt(a, 1, 12345, 7, random.Random(1))
    before = snapshot(a)
    r = fastraid.repair(a.paths)
    assert r.findings[0].verdict == "unlocated" and not r.findings[0].rewritten
    assert snapshot(a) == before


def test_bad_arguments(tmp_path: Path) -> None:
    a = make(tmp_path, 6, 4, mib=2)
    with pytest.raises(fastraid.InvalidArgumentError, match="RAID-6"):
        fastraid.repair(a.paths, prefer=1)
    with pytest.raises(fastraid.InvalidArgumentError, match="unresolved"):
        fastraid.repair(a.paths, unresolved="guess")
    with pytest.raises(fastraid.InvalidArgumentError, match="speed_limit"):
        fastraid.check(a.paths, speed_limit=0)
    with pytest.raises(TypeError):
        fastraid.check(a.paths[0])  # type: ignore[arg-type]
    with pytest.raises(fastraid.NotAnArrayError):
        fastraid.check([_blank(tmp_path)])


def _blank(tmp: Path) -> Path:
    p = tmp / "blank.img"
    p.write_bytes(bytes(1 << 20))
    return p


# ----------------------------------------------------------------------------------------
# Progress, cancel, resume
# ----------------------------------------------------------------------------------------


def test_progress_cancel_and_resume(tmp_path: Path) -> None:
    a = make(tmp_path, 6, 5)
    rng = random.Random(9)
    for s in range(0, 40, 5):
        corrupt(a, rng.randrange(5), s * CHUNK + 7, 9, rng)
    full = fastraid.check(a.paths, checkpoint=False)
    seen: list[tuple[int, int, float]] = []

    def stop(done: int, total: int, rate: float) -> None:
        seen.append((done, total, rate))
        if len(seen) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fastraid.check(a.paths, progress=stop, batch_bytes=CHUNK, checkpoint_interval=10)
    assert seen[0][0] < seen[1][0] < seen[2][0] <= seen[2][1]
    ck = Path(os.fspath(a.paths[0]) + ".fastraid-scrub")
    assert ck.exists()
    r = fastraid.check(a.paths, resume=True, batch_bytes=CHUNK)
    assert r.resumed_at == 3 and r.findings == full.findings
    assert r.mismatch_cnt == full.mismatch_cnt and not ck.exists()


def _child(kind: str, paths: list[str], ck: str, limit: int, out: str) -> None:
    fn = fastraid.repair if kind == "repair" else fastraid.check
    r = fn(
        paths,
        checkpoint=ck,
        resume=True,
        checkpoint_interval=0,
        batch_bytes=CHUNK,
        speed_limit=limit,
    )
    Path(out).write_text(json.dumps(_essence(r)))


def _essence(r: fastraid.ScrubResult) -> dict[str, Any]:
    d = r.to_dict()
    keep = ("findings", "mismatch_cnt", "bytes_written", "units_unchecked", "findings_dropped")
    return json.loads(json.dumps({k: d[k] for k in keep}))


@pytest.mark.parametrize("kind", ["check", "repair"])
def test_sigkill_at_random_points_then_resume_gives_the_same_result(
    tmp_path: Path, kind: str
) -> None:
    a = make(tmp_path, 6, 5, mib=3)
    rng = random.Random(kind)
    for s in rng.sample(range(stripes_of(a)), 10):
        corrupt(a, rng.randrange(5), s * CHUNK + rng.randrange(CHUNK - 64), 64, rng)
    ref_dir = tmp_path / "ref"
    ref_dir.mkdir()
    ref_paths = [ref_dir / p.name for p in a.paths]
    for p, q in zip(a.paths, ref_paths, strict=True):
        shutil.copyfile(p, q)
    fn = fastraid.repair if kind == "repair" else fastraid.check
    want = fn(ref_paths, checkpoint=False)
    ck = tmp_path / "ck"
    total = sum(p.stat().st_size for p in a.paths)
    limit = total // 12  # about 6 s for a whole run: several kills land mid-way
    ctx = multiprocessing.get_context("spawn")
    out = tmp_path / "result.json"
    kills = 0
    while not out.exists() and kills < 8:
        args = (kind, [str(p) for p in a.paths], str(ck), limit, str(out))
        child = ctx.Process(target=_child, args=args)
        child.start()
        time.sleep(rng.uniform(0.3, 1.6))  # interpreter start-up included
        if child.is_alive():
            os.kill(child.pid or 0, signal.SIGKILL)
            kills += 1
        child.join()
    if out.exists():
        got = json.loads(out.read_text())
    else:
        got = _essence(fn(a.paths, checkpoint=ck, resume=True))
    assert got == _essence(want)
    if kind == "repair":
        assert snapshot(a) == [q.read_bytes() for q in ref_paths]
    assert fastraid.check(a.paths).findings == fastraid.check(ref_paths).findings
    assert kills >= 3, "the kills should land mid-run"
    print(f"{kills} kills")


# ----------------------------------------------------------------------------------------
# CLI
# ----------------------------------------------------------------------------------------


def _cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="fastraid")
    sub = parser.add_subparsers(dest="command", required=True)
    cli_scrub.register(sub)
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code


def test_cli_check_and_repair(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = make(tmp_path, 6, 5, mib=2)
    paths = [str(p) for p in a.paths]
    assert _cli(["check", *paths]) == 0
    assert "mismatch_cnt: 0" in capsys.readouterr().out
    corrupt(a, 3, CHUNK * 4 + 1, 3, random.Random(0))
    assert _cli(["check", "--json", *paths]) == 1
    d = json.loads(capsys.readouterr().out)
    assert d["output_version"] == 1 and d["suspects"] == [3] and d["mismatch_cnt"] == 8
    assert _cli(["check", "--progress=json", "--quiet", *paths]) == 1
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x]
    assert lines == []  # --quiet wins
    assert _cli(["check", "--progress=json", *paths]) == 1
    err = capsys.readouterr().err
    assert json.loads(err.splitlines()[-1])["event"] == "progress"
    # No terminal to confirm on: refuses without --yes.
    assert _cli(["repair", *paths]) == 1
    assert "pass --yes" in capsys.readouterr().err
    assert _cli(["repair", "--yes", *paths]) == 0
    assert "members found wrong: 3" in capsys.readouterr().out
    assert _cli(["check", "--speed-limit", "512M", *paths]) == 0
