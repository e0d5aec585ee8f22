"""Shrink and backwards reshapes (``Array.reshape(raid_devices=n-1, array_size=...)``,
``fastraid grow --raid-devices N --array-size S``), in-place reshapes with fastraid's
journal, and ``grow --continue`` of the kernel's interrupted shrink, backwards, in-place
(mdadm backup file) cases: content equals the original / the manifest's sha256, then the
array opens clean, not in reshape.

How fastraid decides a shrink loses nothing: it refuses unless the caller declares the
bytes kept (``array_size``, mdadm's ``--array-size``) and that size fits the smaller array;
the bytes past the smaller array's size are discarded only then.
"""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

import fastraid
import pytest
from conftest import kernel_case

CHUNK = 64 * 1024


def make(tmp: Path, level: str, n: int, member: int, room: bool = False) -> list[Path]:
    """A clean array; with ``room``, the kernel's 4-member RAID-5 whose members have free
    space after the data (the finished raid5-shrink-5to4 case)."""
    if room:
        paths, backup, _ = kernel_case(tmp, "raid5-shrink-5to4-cut70")
        fastraid.grow_continue(paths, backup_file=backup)
        return paths[:4]
    rng = random.Random(f"{level}{n}{member}")
    paths = []
    for i in range(n):
        p = tmp / f"m{i}.img"
        p.write_bytes(rng.randbytes(member))
        paths.append(p)
    fastraid.plan_create(paths, level=level, chunk=CHUNK, force=True).execute()
    return paths


def content(paths: list[Path], length: int | None = None) -> bytes:
    with fastraid.open(paths, readonly=True) as a:
        return a.read(0, a.size if length is None else length)


def assert_clean(paths: list[Path], n: int) -> None:
    with fastraid.open(paths, readonly=True) as a:
        assert a.raid_devices == n
        assert a.state == "clean", a.detail()
        assert not any("reshape in progress" in x for x in a.detail()["notes"])
        assert a.check().mismatch_cnt == 0


def new_size(paths: list[Path], n: int) -> int:
    with pytest.raises(fastraid.NotSupportedError) as e:
        fastraid.plan_reshape(paths, raid_devices=n)
    return int(str(e.value).split("at most ")[1].split()[0])


@pytest.mark.parametrize(
    "level,n,room",
    [("raid5", 4, True), ("raid5", 4, False), ("raid5", 5, False), ("raid6", 5, False)],
    ids=["raid5-4to3-offset", "raid5-4to3-inplace", "raid5-5to4-inplace", "raid6-5to4-inplace"],
)
def test_shrink_keeps_declared_content(tmp_path: Path, level: str, n: int, room: bool) -> None:
    member = 4 << 20
    paths = make(tmp_path, level, n, member, room)
    before = content(paths)
    keep = new_size(paths, n - 1)
    assert keep < len(before)
    with pytest.raises(fastraid.InvalidArgumentError):
        fastraid.plan_reshape(paths, raid_devices=n - 1, array_size=keep + 4096)
    plan = fastraid.plan_reshape(paths, raid_devices=n - 1, array_size=keep)
    assert (plan.describe()["new_offset_sectors"] > 0) == room
    with fastraid.open(paths) as a:
        a.reshape(raid_devices=n - 1, array_size=keep)
        assert a.size == keep
        assert a.read(0, keep) == before[:keep]
    assert_clean(paths[: n - 1], n - 1)
    assert not list(tmp_path.glob("*.journal"))
    removed = fastraid.examine(paths[-1])
    assert removed


@pytest.mark.parametrize(
    "kw", [{"chunk": 32 * 1024}, {"layout": "right-asymmetric"}], ids=["chunk-64to32", "layout"]
)
@pytest.mark.parametrize("room", [True, False], ids=["offset", "inplace"])
def test_backwards_and_inplace_same_width(
    tmp_path: Path, kw: dict[str, object], room: bool
) -> None:
    paths = make(tmp_path, "raid5", 4, 4 << 20, room)
    before = content(paths)
    plan = fastraid.plan_reshape(paths, **kw)  # type: ignore[arg-type]
    d = plan.describe()
    if "chunk" in kw:  # smaller stripes: backwards, into the room after the data or in place
        assert (d["new_offset_sectors"] > 0) == room
    plan.execute()
    assert content(paths) == before
    assert_clean(paths, 4)


def test_shrink_refused_without_declared_size(tmp_path: Path) -> None:
    paths = make(tmp_path, "raid5", 4, 4 << 20)
    sums = [hashlib.sha256(p.read_bytes()).hexdigest() for p in paths]
    with pytest.raises(fastraid.NotSupportedError, match="array_size"):
        fastraid.reshape(paths, raid_devices=3)
    with pytest.raises(fastraid.FastRaidError):
        fastraid.reshape(paths, raid_devices=2)
    assert [hashlib.sha256(p.read_bytes()).hexdigest() for p in paths] == sums


def test_cli_shrink(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from fastraid.cli import main

    paths = make(tmp_path, "raid5", 4, 4 << 20, True)
    before = content(paths)
    keep = new_size(paths, 3)
    args = ["grow", *map(str, paths), "--raid-devices", "3", "--yes", "--progress", "none"]
    assert main(args) == 1  # no --array-size
    assert "array_size" in capsys.readouterr().err
    assert main([*args, "--array-size", f"{keep // 1024}K"]) == 0
    assert content(paths[:3]) == before[:keep]
    assert_clean(paths[:3], 3)


@pytest.mark.parametrize(
    "name",
    [
        "raid5-shrink-5to4-cut30",
        "raid5-shrink-5to4-cut70",
        "raid5-layout-backwards-cut30",
        "raid5-layout-backwards-cut70",
        "raid5-meta10-grow-3to4-backup-cut5",
        "raid5-meta10-grow-3to4-backup-cut50",
        "raid5-chunk-64to128-cut20",
        "raid6-grow-5to6-cut50",
        "raid5to6-backup-cut10",
        "raid5to6-backup-cut45",
        "raid5to6-backup-cut80",
    ],
)
def test_grow_continue_kernel_cases(tmp_path: Path, name: str) -> None:
    paths, backup, manifest = kernel_case(tmp_path, name)
    expected = manifest["expected"]
    assert isinstance(expected, dict)
    fastraid.grow_continue(paths, backup_file=backup)
    with fastraid.open(paths, readonly=True) as a:
        n = a.raid_devices
        data = a.read(0, expected["length_bytes"])
    assert hashlib.sha256(data).hexdigest() == expected["sha256"]
    with fastraid.open(paths, readonly=True) as a:
        assert a.state == "clean" and not a.degraded
        assert a.raid_devices == n
        assert not any("reshape in progress" in x for x in a.detail()["notes"])
        assert a.check().mismatch_cnt == 0
    assert not list(tmp_path.glob("*.journal"))
