"""The ``fastraid`` command offers every verb, and ``fastraid demo`` passes its own options
through; ``Array.check`` delegates to the scrub."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import fastraid
from fastraid import cli

VERBS = ["demo", "kernels", "examine", "detail", "export", "create", "rebuild", "replace"]
VERBS += ["check", "repair"]


def test_every_verb_is_registered() -> None:
    parser = cli.build_parser()
    help_text = parser.format_help()
    for verb in VERBS:
        assert verb in help_text, verb


def test_demo_takes_its_own_options() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "fastraid.cli", "demo", "--k", "3", "--size", "4KiB", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert '"verified": true' in r.stdout


def test_array_check_finds_corruption(tmp_path: Path) -> None:
    rng = random.Random(7)
    paths = []
    for i in range(4):
        p = tmp_path / f"m{i}.img"
        p.write_bytes(rng.randbytes(4 << 20))
        paths.append(p)
    fastraid.plan_create(paths, level="raid5", chunk=64 * 1024, force=True).execute()
    with fastraid.open(paths, readonly=True) as a:
        assert a.check(checkpoint=False).clean
        off = a.detail()["members"][0]["data_offset"] * 512
    with open(paths[1], "r+b") as f:
        f.seek(off + 5000)
        f.write(b"\xff\x00\xff")
    with fastraid.open(paths, readonly=True) as a:
        assert a.check(checkpoint=False).mismatch_cnt == 8
