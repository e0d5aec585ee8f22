"""The ``fastraid`` command offers every verb, and ``fastraid demo`` passes its own options
through; ``Array.check`` delegates to the scrub."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import fastraid
import pytest
from fastraid import cli

VERBS = ["demo", "kernels", "examine", "detail", "export", "create", "rebuild", "replace"]
VERBS += ["check", "repair", "fail", "remove", "add"]


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


def test_fail_remove_add_rebuild_from_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    m = ["m0.img", "m1.img", "m2.img"]
    assert cli.main(["create", *m, "--level", "5", "--size", "8M", "--yes", "-q"]) == 0
    with fastraid.open(m) as a:
        a.write(12345, b"kept through it all")
    capsys.readouterr()
    # Not confirmed (stdin is not a terminal): nothing happens.
    assert cli.main(["fail", *m, "--slot", "1"]) == 1
    assert "pass --yes" in capsys.readouterr().err
    assert cli.main(["fail", *m, "--member", "m1.img", "--yes", "--json"]) == 0
    out = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert out["failed"] == "m1.img" and out["members"][1] is None
    assert cli.main(["remove", *m, "--member", "m0.img", "--yes"]) == 2  # active: refused
    assert "fail it first" in capsys.readouterr().err
    assert cli.main(["remove", *m, "--member", "m1.img", "--yes"]) == 0
    rest = ["m0.img", "m2.img"]
    assert cli.main(["add", *rest, "--spare", "m3.img", "--yes"]) == 0
    assert "fastraid rebuild m0.img m2.img m3.img --yes" in capsys.readouterr().out
    assert cli.main(["rebuild", *rest, "m3.img", "--yes", "-q"]) == 0
    with fastraid.open([*rest, "m3.img"], readonly=True) as a:
        assert a.state == "clean" and not a.degraded
        assert a.read(12345, 19) == b"kept through it all"
