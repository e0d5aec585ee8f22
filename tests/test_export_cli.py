"""The ``fastraid examine | detail | export`` verbs on md fixtures and built arrays."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import fastraid
import pytest
from _md_build import build, rewrite_superblock
from fastraid import cli

if TYPE_CHECKING:
    from collections.abc import Callable

    from conftest import MdImages

FIXTURES = Path(__file__).parent / "fixtures" / "md"
GROW = "raid5-grow-3to4-interrupted"
NAMES = sorted(p.name for p in FIXTURES.iterdir() if (p / "manifest.json").is_file())


def sha(path: Path, length: int | None = None) -> str:
    data = path.read_bytes()
    return hashlib.sha256(data if length is None else data[:length]).hexdigest()


@pytest.mark.parametrize("name", NAMES)
def test_export_matches_pattern(
    name: str,
    md_images: Callable[[str], MdImages],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    img = md_images(name)
    pattern = img.manifest["pattern"]
    out = tmp_path / "array.img"
    before = [sha(p) for p in img.members]
    members = [str(p) for p in reversed(img.members)]
    assert cli.main(["export", *members, "-o", str(out), "--progress=json"]) == 0
    assert sha(out, pattern["length_bytes"]) == pattern["sha256"]
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert lines[-1]["event"] == "done" and lines[-1]["complete"]
    assert lines[-1]["totals"]["unreadable"] == 0
    assert not (tmp_path / "array.img.fastraid-export.json").exists()
    assert [sha(p) for p in img.members] == before


def test_export_degraded_counts_rebuilt(
    md_images: Callable[[str], MdImages], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two members of a RAID-6 missing: every stripe is rebuilt, exactly. The bytes are
    counted as rebuilt, and no range is listed (only inexact bytes are: a degraded array
    would otherwise list one range per stripe in every checkpoint)."""
    img = md_images("raid6-5")
    pattern = img.manifest["pattern"]
    out = tmp_path / "a.img"
    members = [str(p) for p in img.members[2:]]
    assert cli.main(["export", *members, "-o", str(out), "--quiet"]) == 0
    assert capsys.readouterr().out == ""
    assert sha(out, pattern["length_bytes"]) == pattern["sha256"]
    out.unlink()
    assert cli.main(["export", *members, "-o", str(out), "--progress=none"]) == 0
    text = capsys.readouterr().out
    assert "rebuilt" in text and "exported" in text
    out.unlink()
    assert cli.main(["export", *members, "-o", str(out), "--progress=json"]) == 0
    done = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert done["complete"] and done["ranges"] == []
    assert done["totals"]["rebuilt"] > 0


def test_export_refuses_to_overwrite(
    md_images: Callable[[str], MdImages], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    img = md_images("raid1-2")
    members = [str(p) for p in img.members]
    out = tmp_path / "a.img"
    out.write_bytes(b"precious")
    assert cli.main(["export", *members, "-o", str(out), "--quiet"]) == 2
    assert "refusing to overwrite" in capsys.readouterr().err
    assert out.read_bytes() == b"precious"
    before = sha(img.members[0])
    assert cli.main(["export", *members, "-o", members[0], "--overwrite", "--quiet"]) == 2
    assert "one of the members" in capsys.readouterr().err
    assert sha(img.members[0]) == before
    assert cli.main(["export", *members, "-o", str(out), "--overwrite", "--quiet"]) == 0
    pattern = img.manifest["pattern"]
    assert sha(out, pattern["length_bytes"]) == pattern["sha256"]


def test_export_resume(
    md_images: Callable[[str], MdImages], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Interrupt an export after two windows, then resume it from the checkpoint."""
    img = md_images("raid5-ls-3")
    pattern = img.manifest["pattern"]
    members = [str(p) for p in img.members]
    out = tmp_path / "a.img"
    ckpt = tmp_path / "a.img.fastraid-export.json"
    monkeypatch.setattr(cli, "EXPORT_WINDOW", 4 << 20)
    monkeypatch.setattr(cli, "CHECKPOINT_BYTES", 4 << 20)
    calls = {"n": 0}
    real = cli._write_checkpoint

    def crash_after_two(path: Path, state: dict[str, object]) -> None:
        real(path, state)
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_write_checkpoint", crash_after_two)
    with pytest.raises(KeyboardInterrupt):
        cli.main(["export", *members, "-o", str(out), "--quiet"])
    state = json.loads(ckpt.read_text())
    assert state["done"] == 8 << 20
    # Damage what was not checkpointed: resume must rewrite it.
    with out.open("r+b") as f:
        f.seek(9 << 20)
        f.write(b"\xff" * 4096)
    monkeypatch.setattr(cli, "_write_checkpoint", real)
    assert cli.main(["export", *members, "-o", str(out), "--quiet"]) == 2  # exists, no --resume
    assert cli.main(["export", *members, "-o", str(out), "--resume", "--quiet"]) == 0
    assert sha(out, pattern["length_bytes"]) == pattern["sha256"]
    assert not ckpt.exists()
    # A checkpoint of another array is refused.
    ckpt.write_text(json.dumps({**state, "uuid": "00:00"}))
    assert cli.main(["export", *members, "-o", str(out), "--resume", "--quiet"]) == 2


def test_export_overwrite_interrupted_leaves_no_stale_checkpoint(
    md_images: Callable[[str], MdImages],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A fresh ``export --overwrite`` deletes a leftover checkpoint durably (unlink, then
    a directory fsync) before it truncates the image. Interrupted before its own first
    checkpoint, it leaves none that a later ``--resume`` would trust with bytes that the
    truncation dropped."""
    img = md_images("raid5-ls-3")
    pattern = img.manifest["pattern"]
    members = [str(p) for p in img.members]
    with fastraid.open(members, readonly=True) as a:
        d = a.detail()
        size = a.size
    stale = {
        "version": cli.CHECKPOINT_VERSION,
        "uuid": d["uuid"],
        "size": size,
        "events": d["events"],
        "members": members,
        "done": size,
        "ranges": [],
        "totals": {"clean": size, "rebuilt": 0, "uncertain": 0, "unreadable": 0},
    }

    # The bogus checkpoint is one that --resume trusts: beside a garbage image it
    # "finishes" the export without rewriting a byte.
    other = tmp_path / "b.img"
    other.write_bytes(b"\xee" * size)
    (tmp_path / "b.img.fastraid-export.json").write_text(json.dumps(stale))
    assert cli.main(["export", *members, "-o", str(other), "--resume", "--quiet"]) == 0
    assert other.read_bytes() == b"\xee" * size

    out = tmp_path / "a.img"
    ckpt = tmp_path / "a.img.fastraid-export.json"
    out.write_bytes(b"\xee" * size)
    ckpt.write_text(json.dumps(stale))
    events: list[str] = []
    real_fsync, real_ftruncate = os.fsync, os.ftruncate

    def fsync(fd: int) -> None:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            events.append("dir fsync" + (" (checkpoint still there)" if ckpt.exists() else ""))
        real_fsync(fd)

    def ftruncate(fd: int, length: int) -> None:
        events.append("truncate" + (" (checkpoint still there)" if ckpt.exists() else ""))
        real_ftruncate(fd, length)

    def interrupted(fd: int, data: memoryview, offset: int) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli.os, "fsync", fsync)
    monkeypatch.setattr(cli.os, "ftruncate", ftruncate)
    monkeypatch.setattr(cli, "_pwrite_all", interrupted)
    with pytest.raises(KeyboardInterrupt):
        cli.main(["export", *members, "-o", str(out), "--overwrite", "--quiet"])
    monkeypatch.undo()
    assert events == ["dir fsync", "truncate"]
    assert not ckpt.exists()
    assert not ckpt.with_name(ckpt.name + ".tmp").exists()
    assert out.read_bytes() != b"\xee" * size  # truncated: the old bytes are gone

    # --resume finds nothing to trust: it refuses the existing image, and with
    # --overwrite it starts over and writes the whole array.
    assert cli.main(["export", *members, "-o", str(out), "--resume", "--quiet"]) == 2
    assert "refusing to overwrite" in capsys.readouterr().err
    args = ["export", *members, "-o", str(out), "--resume", "--overwrite", "--quiet"]
    assert cli.main(args) == 0
    assert sha(out, pattern["length_bytes"]) == pattern["sha256"]
    assert not ckpt.exists()


def test_export_unreadable_ranges_exit_3(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    b = build(tmp_path, level=5, layout=2, n=3, chunks_per_member=16)
    sb = b.sbs[1]
    sb.feature_map |= 2
    sb.recovery_offset = 6 * 8
    rewrite_superblock(b.members[1], sb)
    out = tmp_path / "out.img"
    members = [str(b.members[0]), str(b.members[1])]
    assert cli.main(["export", *members, "-o", str(out), "--progress=json"]) == 3
    done = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert not done["complete"] and done["totals"]["unreadable"] > 0
    got = out.read_bytes()
    assert len(got) == len(b.content)
    for r in done["ranges"]:
        assert r["kind"] in ("rebuilt", "unreadable")
    # Everything before the checkpoint is exact.
    first_bad = min(r["offset"] for r in done["ranges"] if r["kind"] == "unreadable")
    assert got[:first_bad] == b.content[:first_bad]


def test_examine_and_detail_text_and_json(
    md_images: Callable[[str], MdImages], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    img = md_images("raid5-v090-3")
    members = [str(p) for p in img.members]
    garbage = tmp_path / "g.img"
    garbage.write_bytes(b"\0" * 200_000)
    assert cli.main(["examine", *members]) == 0
    text = capsys.readouterr().out
    assert "0.90" in text and "raid5" in text and "Device Role" in text
    assert cli.main(["examine", members[0], str(garbage), "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["members"][0]["superblocks"][0]["level"] == "raid5"
    assert data["members"][1]["superblocks"] == []
    assert cli.main(["detail", *members[1:], str(garbage)]) == 0
    text = capsys.readouterr().out
    assert "degraded" in text and "Decisions" in text and "no md superblock" in text
    assert cli.main(["detail", *members, "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["level"] == "raid5" and d["state"] == "clean" and len(d["members"]) == 3
    assert cli.main(["detail", members[0]]) == 2
    assert "missing" in capsys.readouterr().err


def test_grow_fixture_detail_shows_both_geometries(
    md_images: Callable[[str], MdImages], capsys: pytest.CaptureFixture[str]
) -> None:
    img = md_images(GROW)
    members = [str(p) for p in img.members]
    assert cli.main(["detail", *members]) == 0
    text = capsys.readouterr().out
    assert "Reshape pos'n" in text and "3->4" in text and "new geometry" in text
    assert cli.main(["examine", members[0]]) == 0
    assert "Reshape pos'n" in capsys.readouterr().out


def test_console_script_runs(md_images: Callable[[str], MdImages], tmp_path: Path) -> None:
    img = md_images("raid1-2")
    out = tmp_path / "x.img"
    r = subprocess.run(
        [sys.executable, "-m", "fastraid.cli", "export", *map(str, img.members), "-o", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    assert "clean" in r.stdout


def test_backup_file_option(
    md_images: Callable[[str], MdImages], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    img = md_images(GROW)
    members = [str(p) for p in img.members]
    junk = tmp_path / "junk.bak"
    junk.write_bytes(b"\x01" * 8192)
    assert cli.main(["detail", *members, "--backup-file", str(junk)]) == 2
    assert "not a usable mdadm backup file" in capsys.readouterr().err
    out = tmp_path / "o.img"
    args = ["export", *members, "-o", str(out), "--backup-file", str(junk), "--quiet"]
    assert cli.main(args) == 2
    assert not out.exists()
