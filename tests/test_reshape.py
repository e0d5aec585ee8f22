"""Reshape (``fastraid.reshape``, ``Array.reshape``, ``grow --continue``, ``fastraid grow``):
the content after a grow or a chunk/layout change equals the original for RAID-4/5/6 and
several sizes, the space a grow adds reads as zeros, and the array then opens clean, not in
reshape, writable. md's interrupted reshapes (the public fixture and kernel-made cases) are
finished to the manifest's pattern. What is not handled is refused with NotSupportedError.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Iterator
from pathlib import Path

import fastraid
import pytest
from conftest import MdImages, kernel_case

CHUNK = 64 * 1024


def make(tmp: Path, level: str, n: int, member: int, layout: str | None = None) -> list[Path]:
    rng = random.Random(f"{level}{n}{member}{layout}")
    paths = []
    for i in range(n):
        p = tmp / f"m{i}.img"
        p.write_bytes(rng.randbytes(member))
        paths.append(p)
    fastraid.plan_create(paths, level=level, chunk=CHUNK, layout=layout, force=True).execute()
    return paths


def content(paths: list[Path], length: int | None = None) -> bytes:
    with fastraid.open(paths, readonly=True) as a:
        return a.read(0, a.size if length is None else length)


def assert_finished(paths: list[Path], n: int) -> None:
    with fastraid.open(paths, readonly=True) as a:
        assert a.raid_devices == n
        assert a.state == "clean", a.detail()
        assert not any("reshape in progress" in note for note in a.detail()["notes"]), a.detail()[
            "notes"
        ]
    for p in paths:
        ex = fastraid.examine(p)
        assert ex, p


@pytest.mark.parametrize(
    "level,n,grow,member",
    [
        ("raid4", 3, 1, 4 << 20),
        ("raid5", 3, 1, 4 << 20),
        ("raid5", 4, 2, 3 << 20),
        ("raid5", 3, 1, (6 << 20) + 4096 * 3),
        ("raid6", 4, 1, 4 << 20),
        ("raid6", 5, 2, 5 << 20),
    ],
    ids=["raid4-3to4", "raid5-3to4", "raid5-4to6", "raid5-odd-size", "raid6-4to5", "raid6-5to7"],
)
def test_grow_keeps_content(tmp_path: Path, level: str, n: int, grow: int, member: int) -> None:
    paths = make(tmp_path, level, n, member)
    before = content(paths)
    with fastraid.open(paths) as a:
        for i in range(grow):
            a.add(tmp_path / f"new{i}.img")
        plan = fastraid.plan_reshape(a.paths, raid_devices=n + grow)
        text = str(plan)
        assert "power cut" in text and "nothing" in text and "sectors" in text
        assert plan.describe()["space_needed"] > 0
        seen: list[int] = []
        a.reshape(raid_devices=n + grow, progress=lambda d, t, r: seen.append(d))
        assert seen and seen[-1] == a.size
        assert a.raid_devices == n + grow
        assert a.size > len(before)
        assert a.read(0, len(before)) == before
        assert a.read(len(before), a.size - len(before)) == bytes(a.size - len(before))
        a.write(a.size - 8192, b"z" * 8192)  # writable afterwards
    all_paths = [*paths, *(tmp_path / f"new{i}.img" for i in range(grow))]
    assert_finished(all_paths, n + grow)
    with fastraid.open(all_paths, readonly=True) as a:
        assert a.read(a.size - 8192, 8192) == b"z" * 8192
        assert a.check().mismatch_cnt == 0


@pytest.mark.parametrize(
    "kw", [{"chunk": 128 * 1024}, {"layout": "right-asymmetric"}], ids=["chunk", "layout"]
)
def test_chunk_and_layout_change(tmp_path: Path, kw: dict[str, object]) -> None:
    paths = make(tmp_path, "raid5", 4, 4 << 20)
    before = content(paths)
    fastraid.reshape(paths, **kw)  # type: ignore[arg-type]
    assert content(paths, len(before)) == before
    assert_finished(paths, 4)
    with fastraid.open(paths, readonly=True) as a:
        if "chunk" in kw:
            assert a.chunk == kw["chunk"]
        else:
            assert a.layout == kw["layout"]


def test_refusals(tmp_path: Path) -> None:
    paths = make(tmp_path, "raid5", 4, 4 << 20)
    with pytest.raises(fastraid.NotSupportedError):
        fastraid.plan_reshape(paths, raid_devices=3)  # shrink
    with pytest.raises(fastraid.FastRaidError):
        fastraid.plan_reshape(paths, level=6)  # no spare for Q
    with pytest.raises(fastraid.InvalidArgumentError):
        fastraid.plan_reshape(paths, raid_devices=5)  # no spare added
    with pytest.raises(fastraid.InvalidArgumentError):
        fastraid.grow_continue(paths)  # nothing in progress
    assert fastraid.plan_reshape(paths, chunk=32 * 1024).describe()["kind"] == "start"


def test_grow_continue_fixture(
    md_copy: Callable[[str], list[Path]], md_images: Callable[[str], MdImages]
) -> None:
    name = "raid5-grow-3to4-interrupted"
    manifest = md_images(name).manifest
    paths = md_copy(name)
    plan = fastraid.plan_reshape(paths, continue_only=True)
    assert plan.describe()["kind"] == "continue"
    assert "power cut" in str(plan)
    fastraid.grow_continue(paths)
    n = manifest["array_size_bytes"]
    data = content(paths)
    assert hashlib.sha256(data[:n]).hexdigest() == manifest["guest_sha256"]
    assert data[n:] == bytes(len(data) - n)
    assert_finished(paths, 4)
    with fastraid.open(paths) as a:  # writable: not in reshape
        assert a.writable


@pytest.mark.parametrize(
    "name",
    [
        "raid6-grow-5to6-cut15",
        "raid6-grow-5to6-cut85",
        "raid5-ext4-grow-4to5-cut40",
        "raid5-chunk-64to128-cut60",
    ],
)
def test_grow_continue_kernel_cases(tmp_path: Path, name: str) -> None:
    paths, _, manifest = kernel_case(tmp_path, name)
    expected = manifest["expected"]
    assert isinstance(expected, dict)
    fastraid.grow_continue(paths)
    data = content(paths, expected["length_bytes"])
    assert hashlib.sha256(data).hexdigest() == expected["sha256"]
    with fastraid.open(paths, readonly=True) as a:
        assert a.state == "clean"
        assert not any("reshape in progress" in note for note in a.detail()["notes"])


@pytest.mark.parametrize(
    "name",
    [
        "raid5-chunk-64to32-backup-cut40",
        "raid5-chunk-64to32-backup-cut10",
    ],
)
def test_unsupported_kinds_are_refused(tmp_path: Path, name: str) -> None:
    paths, _, _ = kernel_case(tmp_path, name)
    sums = [hashlib.sha256(p.read_bytes()).hexdigest() for p in paths]
    with pytest.raises(fastraid.FastRaidError) as e:
        fastraid.grow_continue(paths)
    assert isinstance(e.value, fastraid.NotSupportedError | fastraid.InvalidArgumentError), e.value
    assert [hashlib.sha256(p.read_bytes()).hexdigest() for p in paths] == sums


def test_cli_grow(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from fastraid.cli import main

    paths = make(tmp_path, "raid5", 3, 4 << 20)
    before = content(paths)
    new = tmp_path / "new.img"
    args = [*map(str, paths), "--add", str(new), "--raid-devices", "4"]
    assert main(["grow", *map(str, paths), "--raid-devices", "4", "--dry-run"]) == 1
    capsys.readouterr()
    assert main(["grow", *args, "--yes", "--progress", "json"]) == 0
    out = capsys.readouterr().out
    assert "power cut" in out and '"done"' in out
    assert content([*paths, new], len(before)) == before
    assert_finished([*paths, new], 4)
    assert main(["grow", *map(str, paths), str(new), "--continue", "--yes"]) == 1


@pytest.mark.parametrize(
    "first,kw",
    [
        ({"chunk": 128 * 1024}, {"chunk": 64 * 1024}),  # backwards, room after the data
        ({}, {"chunk": 32 * 1024}),  # in place
    ],
    ids=["backwards-128to64", "in-place-64to32"],
)
def test_chunk_decrease_checkpoints_lie_on_the_kernels_grid(
    tmp_path: Path, first: dict[str, int], kw: dict[str, int]
) -> None:
    """The kernel resumes a reshape only at a multiple of the larger chunk × the new data
    disks (raid5.c: "reshape_position not on a stripe boundary"), coarser than the new stripe
    when the chunk shrinks. Stopped after every few batches, each recorded checkpoint lies on
    that grid, and the content is intact."""
    paths = make(tmp_path, "raid5", 4, 8 << 20)
    want = content(paths)
    if first:
        fastraid.reshape(paths, **first)  # type: ignore[arg-type]
    with fastraid.open(paths, readonly=True) as a:
        grid = max(a.chunk, kw["chunk"]) * 3
    seen = set()
    for stop in (1, 2, 3, 5, 7):
        calls = iter(range(stop - 1))

        def progress(done: int, total: int, rate: float, calls: Iterator[int] = calls) -> None:
            if next(calls, None) is None:
                raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            fastraid.reshape(
                paths,
                **kw,  # type: ignore[arg-type]
                progress=progress,
                batch_bytes=96 * 1024,
                checkpoint_bytes=0,
            )
        ckpt = fastraid.plan_reshape(paths, continue_only=True).describe()["checkpoint"]
        assert ckpt % grid == 0, (stop, ckpt, grid)
        seen.add(ckpt)
        assert content(paths)[: len(want)] == want
    assert len(seen) > 1, "the stops should land at different checkpoints"
    fastraid.grow_continue(paths)
    assert content(paths)[: len(want)] == want
