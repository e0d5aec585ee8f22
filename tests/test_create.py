"""``fastraid.create`` / ``plan_create`` without the kernel: the superblocks it writes,
decoded here with ``struct`` straight from docs/md-format.md section 2 (not with fastraid's
own parser), what it refuses, and that a refusal leaves every input untouched."""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import struct
from pathlib import Path
from typing import Any

import fastraid
import pytest
from fastraid import cli_create

MiB = 1 << 20
MD_MAGIC = 0xA92B4EFC


def superblock(path: Path, offset: int = 4096) -> dict[str, Any]:
    """Decode the v1 superblock at byte ``offset`` of ``path`` (fields of section 2) and
    verify its checksum (section 2.1)."""
    with path.open("rb") as f:
        f.seek(offset)
        raw = f.read(4096)
    (magic, major, feature, pad0) = struct.unpack_from("<IIII", raw, 0)
    assert magic == MD_MAGIC and major == 1 and pad0 == 0
    max_dev = struct.unpack_from("<I", raw, 220)[0]
    n = 256 + 2 * max_dev
    words = [w for i, w in enumerate(struct.unpack_from(f"<{n // 4}I", raw)) if i != 216 // 4]
    total = sum(words)
    csum = ((total & 0xFFFFFFFF) + (total >> 32)) & 0xFFFFFFFF
    assert raw[224:256] == bytes(32), "pad3 must be zero"
    return {
        "feature_map": feature,
        "set_uuid": raw[16:32],
        "set_name": raw[32:64].rstrip(b"\0").decode(),
        "ctime": struct.unpack_from("<Q", raw, 64)[0] & ((1 << 40) - 1),
        "level": struct.unpack_from("<i", raw, 72)[0],
        "layout": struct.unpack_from("<I", raw, 76)[0],
        "size": struct.unpack_from("<Q", raw, 80)[0],
        "chunksize": struct.unpack_from("<I", raw, 88)[0],
        "raid_disks": struct.unpack_from("<I", raw, 92)[0],
        "bitmap_offset": struct.unpack_from("<i", raw, 96)[0],
        "data_offset": struct.unpack_from("<Q", raw, 128)[0],
        "data_size": struct.unpack_from("<Q", raw, 136)[0],
        "super_offset": struct.unpack_from("<Q", raw, 144)[0],
        "dev_number": struct.unpack_from("<I", raw, 160)[0],
        "device_uuid": raw[168:184],
        "events": struct.unpack_from("<Q", raw, 200)[0],
        "resync_offset": struct.unpack_from("<Q", raw, 208)[0],
        "sb_csum": struct.unpack_from("<I", raw, 216)[0],
        "csum_ok": struct.unpack_from("<I", raw, 216)[0] == csum,
        "max_dev": max_dev,
        "roles": list(struct.unpack_from(f"<{max_dev}H", raw, 256)),
    }


def digest(paths: list[Path]) -> dict[str, str | None]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest() if p.exists() else None for p in paths
    }


def images(tmp_path: Path, n: int, size: int = 8 * MiB, fill: bytes = b"") -> list[Path]:
    out = []
    for i in range(n):
        p = tmp_path / f"m{i}.img"
        with p.open("wb") as f:
            f.truncate(size)
            if fill:
                f.write(fill)
        out.append(p)
    return out


def fake_ext4(path: Path) -> None:
    with path.open("r+b") as f:
        f.seek(1024 + 56)
        f.write(struct.pack("<H", 0xEF53))
        f.seek(1024 + 96)
        f.write(struct.pack("<I", 0x40 | 0x200))  # extents, flex_bg


def fake_gpt(path: Path) -> None:
    with path.open("r+b") as f:
        f.seek(446)
        f.write(bytes([0, 0, 2, 0, 0xEE, 0xFF, 0xFF, 0xFF, 1, 0, 0, 0, 0xFF, 0xFF, 0, 0]))
        f.seek(510)
        f.write(b"\x55\xaa")
        f.write(b"EFI PART")


# ----------------------------------------------------------------------------------------
# Superblocks
# ----------------------------------------------------------------------------------------


def assert_clean_bitmap(path: Path, at: int, sb: dict[str, Any]) -> None:
    """The bitmap header of section 8.3 at byte ``at``, in step with ``sb``, bits clear."""
    with path.open("rb") as f:
        f.seek(at)
        raw = f.read(4096)
    magic, version = struct.unpack_from("<II", raw, 0)
    assert (magic, version) == (0x6D746962, 4)
    assert raw[8:24] == sb["set_uuid"]
    events, cleared, sync_size = struct.unpack_from("<QQQ", raw, 24)
    state, chunk, sleep = struct.unpack_from("<III", raw, 48)
    assert events == sb["events"] and cleared <= events
    assert sync_size == sb["size"] and state == 0 and sleep >= 1
    assert chunk >= 1 << 20 and chunk & (chunk - 1) == 0
    nbits = -(-sync_size * 512 // chunk)
    assert raw[256 : 256 + -(-nbits // 8)] == bytes(-(-nbits // 8)), "bits clear"


def test_raid5_superblocks_as_section_8(tmp_path: Path) -> None:
    paths = [tmp_path / f"new{i}.img" for i in range(3)]
    plan = fastraid.plan_create(paths, level=5, chunk=64 * 1024, size=8 * MiB, name="r5")
    assert not any(p.exists() for p in paths), "planning must not create files"
    info = plan.describe()
    assert info["initial_sync"] == "zeros"
    report = plan.execute()
    assert report["resync"] is None and len(report["created"]) == 3
    sbs = [superblock(p) for p in paths]
    for i, (p, sb) in enumerate(zip(paths, sbs, strict=True)):
        assert p.stat().st_size == 8 * MiB
        assert p.stat().st_blocks * 512 < 1 * MiB, "new members stay sparse"
        assert sb["csum_ok"]
        assert sb["feature_map"] == 1, "BITMAP_OFFSET: an internal write-intent bitmap"
        assert sb["bitmap_offset"] == 8
        assert_clean_bitmap(p, 8192, sb)
        assert sb["level"] == 5 and sb["layout"] == 2
        assert sb["chunksize"] == 128 and sb["raid_disks"] == 3
        assert sb["super_offset"] == 8 and sb["data_offset"] == 2048
        assert sb["data_size"] == 16384 - 2048
        assert sb["size"] == (16384 - 2048) // 128 * 128
        assert sb["dev_number"] == i
        assert sb["events"] == 0 and sb["resync_offset"] == 2**64 - 1
        assert sb["max_dev"] == 128
        assert sb["roles"][:3] == [0, 1, 2] and set(sb["roles"][3:]) == {0xFFFF}
        assert sb["set_name"].endswith("r5")
    # Shared fields agree, device UUIDs differ.
    for key in ("set_uuid", "ctime", "set_name", "size"):
        assert len({bytes(s[key]) if isinstance(s[key], bytes) else s[key] for s in sbs}) == 1
    assert len({s["device_uuid"] for s in sbs}) == 3
    assert sbs[0]["set_uuid"].hex() == info["uuid"].replace(":", "")


def test_degraded_raid6_and_metadata_1_0(tmp_path: Path) -> None:
    paths: list[Path | None] = [tmp_path / f"m{i}.img" for i in range(5)]
    paths[1] = None
    paths[3] = None
    fastraid.plan_create(paths, level=6, chunk=64 * 1024, size=8 * MiB, metadata="1.0").execute()
    end = 8 * MiB // 512
    super_sector = (end - 16) & ~7
    for slot, p in enumerate(paths):
        if p is None:
            continue
        sb = superblock(p, super_sector * 512)
        assert sb["csum_ok"] and sb["super_offset"] == super_sector
        assert sb["data_offset"] == 0
        assert sb["dev_number"] == slot
        assert sb["roles"][:5] == [0, 0xFFFF, 2, 0xFFFF, 4]


def test_raid0_unequal_members_sets_raid0_layout(tmp_path: Path) -> None:
    a, b = images(tmp_path, 2, 8 * MiB)
    with b.open("r+b") as f:
        f.truncate(12 * MiB)
    fastraid.plan_create([a, b], level=0, chunk=64 * 1024).execute()
    sa, sb = superblock(a), superblock(b)
    assert sa["feature_map"] == sb["feature_map"] == 0x1000
    assert sa["layout"] == 1 and sa["size"] == 0
    assert sa["data_size"] == 8 * MiB // 512 - sa["data_offset"]
    assert sb["data_size"] == 12 * MiB // 512 - sb["data_offset"]


def test_existing_content_gets_parity_and_progress(tmp_path: Path) -> None:
    paths = images(tmp_path, 4, fill=os.urandom(8 * MiB))
    calls: list[tuple[int, int]] = []
    plan = fastraid.plan_create(paths, level=6, chunk=64 * 1024, force=True)
    assert plan.describe()["initial_sync"] == "resync"
    report = plan.execute(lambda done, total: calls.append((done, total)))
    assert calls and calls[-1][0] == calls[-1][1] == report["resync"]["bytes_done"]
    assert report["resync"]["bytes_written"] > 0
    with pytest.raises(fastraid.InvalidArgumentError, match="already executed"):
        plan.execute()


def test_progress_exception_stops_before_superblocks(tmp_path: Path) -> None:
    paths = images(tmp_path, 3, fill=os.urandom(8 * MiB))
    plan = fastraid.plan_create(paths, level=5, chunk=64 * 1024, force=True)

    def stop(done: int, total: int) -> None:
        raise KeyError("stop here")

    with pytest.raises(KeyError, match="stop here"):
        plan.execute(stop)
    for p in paths:
        with p.open("rb") as f:
            f.seek(4096)
            assert struct.unpack("<I", f.read(4))[0] != MD_MAGIC


def test_create_returns_something_usable(tmp_path: Path) -> None:
    paths = [tmp_path / f"c{i}.img" for i in range(2)]
    result = fastraid.create(paths, level=1, size=4 * MiB)
    if isinstance(result, dict):  # no fastraid.open in this build
        assert result["level"] == "raid1" and result["raid_devices"] == 2
    else:
        assert result.size == 3 * MiB
        result.close()


# ----------------------------------------------------------------------------------------
# Refusals: say what is there, write nothing
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (fake_ext4, "ext4 file system"),
        (fake_gpt, "GPT partition table"),
    ],
    ids=["ext4", "gpt"],
)
def test_refuses_member_with_content_unless_forced(tmp_path: Path, make: Any, words: str) -> None:
    paths = images(tmp_path, 3)
    make(paths[1])
    new = tmp_path / "new.img"
    before = digest([*paths, new])
    with pytest.raises(fastraid.MemberInUseError, match=words) as e:
        fastraid.plan_create([*paths, new], level=5, size=8 * MiB)
    assert isinstance(e.value, ValueError)
    assert "m1.img" in str(e.value)
    assert digest([*paths, new]) == before
    plan = fastraid.plan_create([*paths, new], level=5, size=8 * MiB, force=True)
    assert words in str(plan)
    plan.execute()
    # The old signature area was cleared and the array took its place.
    with paths[1].open("rb") as f:
        assert f.read(4096) == bytes(4096)
    assert superblock(paths[1])["csum_ok"]


def test_refuses_md_member_and_names_it(tmp_path: Path) -> None:
    paths = images(tmp_path, 2)
    uuid = fastraid.plan_create(paths, level=1).execute()["uuid"]
    before = digest(paths)
    with pytest.raises(fastraid.MemberInUseError) as e:
        fastraid.plan_create(paths, level=0)
    msg = str(e.value)
    assert "md superblock 1.2" in msg and "raid1" in msg and uuid in msg and "created" in msg
    assert digest(paths) == before


@pytest.mark.parametrize(
    ("members", "kwargs", "match"),
    [
        (["a", "a", "b"], {"level": 5, "size": 8 * MiB}, "same path"),
        (["a", None, None], {"level": 5, "size": 8 * MiB}, "missing"),
        (["a", None], {"level": 0, "size": 8 * MiB}, "missing"),
        (["a", "b", "c"], {"level": 5, "size": 1 * MiB}, "too small"),
        (["a", "b", "c"], {"level": 5}, "give a size"),
        (["a", "b", "c"], {"level": 5, "size": 8 * MiB, "chunk": 3000}, "chunk"),
        (["a", "b", "c"], {"level": 7, "size": 8 * MiB}, "level"),
        (["a", "b", "c"], {"level": 5, "size": 8 * MiB, "layout": "n2"}, "layout"),
        (["a", "b", "c", "d"], {"level": 6, "size": 8 * MiB, "layout": 16}, "layout"),
    ],
)
def test_bad_requests(
    tmp_path: Path, members: list[str | None], kwargs: dict[str, Any], match: str
) -> None:
    paths = [None if m is None else tmp_path / m for m in members]
    with pytest.raises(fastraid.InvalidArgumentError, match=match):
        fastraid.plan_create(paths, **kwargs)
    assert list(tmp_path.iterdir()) == []


def test_same_file_through_a_hard_link(tmp_path: Path) -> None:
    a, b = images(tmp_path, 2)
    link = tmp_path / "link.img"
    os.link(a, link)
    with pytest.raises(fastraid.InvalidArgumentError, match="same file"):
        fastraid.plan_create([a, b, link], level=5)


def test_raid10_degraded_needs_one_copy_of_everything(tmp_path: Path) -> None:
    paths: list[Path | None] = [tmp_path / f"m{i}.img" for i in range(4)]
    # n2 on 4 disks pairs (0, 1) and (2, 3): losing 0 and 2 is fine, 0 and 1 is not.
    ok = [None, paths[1], None, paths[3]]
    fastraid.plan_create(ok, level=10, size=8 * MiB, chunk=64 * 1024)
    with pytest.raises(fastraid.TooManyFailuresError):
        fastraid.plan_create([None, None, paths[2], paths[3]], level=10, size=8 * MiB)


# ----------------------------------------------------------------------------------------
# CLI
# ----------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fastraid")
    cli_create.register(parser.add_subparsers(dest="command", required=True))
    return parser


def test_cli_create_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    paths = [str(tmp_path / f"m{i}.img") for i in range(3)]
    args = _parser().parse_args(
        ["create", *paths, "missing", "--level", "5", "--raid-devices", "4"]
        + ["--chunk", "64K", "--size", "8M", "--layout", "right-asymmetric", "--yes", "--json"]
    )
    assert args.func(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["plan"]["layout"] == "right-asymmetric" and out["plan"]["chunk"] == 65536
    assert [m["path"] for m in out["plan"]["members"]] == [*paths, None]
    assert out["result"]["created"] == paths
    assert superblock(Path(paths[0]))["layout"] == 1


def test_cli_create_asks_and_aborts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = [str(tmp_path / f"m{i}.img") for i in range(2)]
    args = _parser().parse_args(["create", *paths, "-l", "1", "-z", "4M"])
    tty = io.StringIO("n\n")
    tty.isatty = lambda: True  # type: ignore[method-assign]
    monkeypatch.setattr("sys.stdin", tty)
    monkeypatch.setattr("builtins.input", lambda prompt: tty.readline())
    assert args.func(args) == 1
    out = capsys.readouterr()
    assert "raid1" in out.out and "new sparse file" in out.out
    assert "aborted" in out.err
    assert not any(Path(p).exists() for p in paths)


def test_cli_sizes() -> None:
    assert cli_create.parse_size("512K") == 512 * 1024
    assert cli_create.parse_size("512") == 512 * 1024
    assert cli_create.parse_size("2G") == 2 << 30
    assert cli_create.parse_size("4096B") == 4096
    with pytest.raises(argparse.ArgumentTypeError):
        cli_create.parse_size("lots")


def test_refuses_kernel_made_member(md_images: Any, tmp_path: Path) -> None:
    """A member of a real mdadm-created array (public fixture) is refused with its level,
    UUID and creation time, and left untouched; copies are made so the session cache of
    decompressed fixtures stays pristine."""
    fx = md_images("raid5-ls-3")
    copies = []
    for src in fx.members:
        dst = tmp_path / src.name
        dst.write_bytes(src.read_bytes())
        copies.append(dst)
    before = digest(copies)
    with pytest.raises(fastraid.MemberInUseError) as e:
        fastraid.plan_create(copies, level=5)
    msg = str(e.value)
    assert fx.manifest["array_uuid"] in msg and "raid5" in msg and "created 20" in msg
    assert all(p.name in msg for p in copies)
    assert digest(copies) == before
