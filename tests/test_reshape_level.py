"""Level changes (``Array.reshape(level=...)``, ``fastraid.reshape``, ``fastraid grow
--level``), done as md does them: RAID-5 -> RAID-6 (takeover to the "-6" layout, Q computed
onto the added member, reshape to the normal layout), RAID-6 -> RAID-5 (reshape to the "-6"
layout, Q dropped to a spare), RAID-4 <-> RAID-5 parity-last, RAID-0 -> RAID-4/5 (parity
computed onto a new member) and RAID-4/5 without its parity member -> RAID-0. After each,
the content equals the original, the array is clean and writable, and a scrub finds
mismatch_cnt 0. What is not handled is refused before anything is written (members
byte-identical).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from pathlib import Path

import fastraid
import pytest
from conftest import MdImages

CHUNK = 64 * 1024


def make(
    tmp: Path, level: str, n: int, member: int = 4 << 20, layout: str | None = None
) -> list[Path]:
    rng = random.Random(f"{level}{n}{member}{layout}")
    paths = []
    for i in range(n):
        p = tmp / f"m{i}.img"
        p.write_bytes(rng.randbytes(member))
        paths.append(p)
    fastraid.plan_create(paths, level=level, chunk=CHUNK, layout=layout, force=True).execute()
    return paths


def content(paths: list[Path]) -> bytes:
    with fastraid.open(paths, readonly=True) as a:
        return a.read(0, a.size)


def sums(paths: list[Path]) -> list[str]:
    return [hashlib.sha256(p.read_bytes()).hexdigest() for p in paths if p.exists()]


def check(paths: list[Path], want: bytes, level: str, n: int, layout: str | None) -> None:
    with fastraid.open(paths, readonly=True) as a:
        assert (a.level, a.raid_devices) == (level, n), a.detail()
        if layout is not None:
            assert a.layout == layout
        assert a.state == "clean", a.detail()
        assert a.size == len(want)
        assert a.read(0, a.size) == want
        assert a.check().mismatch_cnt == 0
    with fastraid.open(paths) as a:  # writable, then still consistent
        a.write(a.size - 8192, b"w" * 8192)
    with fastraid.open(paths, readonly=True) as a:
        assert a.read(a.size - 8192, 8192) == b"w" * 8192
        assert a.read(0, a.size - 8192) == want[:-8192]
        assert a.check().mismatch_cnt == 0


@pytest.mark.parametrize(
    "n,layout,member,final",
    [
        (3, "left-symmetric", 4 << 20, "left-symmetric"),
        (4, "right-asymmetric", (3 << 20) + 3 * 4096, "right-asymmetric"),
        (5, "left-asymmetric", 3 << 20, "left-asymmetric"),
        (4, "parity-last", 4 << 20, "parity-last"),
        (3, "right-symmetric", 4 << 20, "right-symmetric-6"),
        (3, "parity-first", 4 << 20, "parity-first"),
    ],
    ids=["ls-3", "ra-4-odd", "la-5", "parity-last-4", "rs-3-keep-6", "parity-first-3"],
)
def test_raid5_to_raid6(tmp_path: Path, n: int, layout: str, member: int, final: str) -> None:
    paths = make(tmp_path, "raid5", n, member, layout)
    want = content(paths)
    spare = tmp_path / "q.img"
    with fastraid.open(paths) as a:
        a.add(spare)
        kw = {"layout": final} if final.endswith("-6") else {}
        plan = fastraid.plan_reshape(a.paths, level=6, **kw)  # type: ignore[arg-type]
        text = str(plan)
        assert "takeover" in text and "power cut" in text and "Q" in text
        assert plan.describe()["raid_devices"] == n + 1
        seen: list[int] = []
        a.reshape(level=6, progress=lambda d, t, r: seen.append(d), **kw)  # type: ignore[arg-type]
        assert seen
        assert a.level == "raid6" and a.raid_devices == n + 1
    check([*paths, spare], want, "raid6", n + 1, final)


@pytest.mark.parametrize(
    "n,layout", [(5, "left-symmetric"), (4, "right-symmetric"), (5, "parity-last")]
)
def test_raid6_to_raid5(tmp_path: Path, n: int, layout: str) -> None:
    paths = make(tmp_path, "raid6", n, 4 << 20, layout)
    want = content(paths)
    with fastraid.open(paths) as a:
        a.reshape(level=5)
        assert a.level == "raid5" and a.raid_devices == n - 1
    check(paths, want, "raid5", n - 1, layout)
    with fastraid.open(paths, readonly=True) as a:
        states = {m["path"]: m["state"] for m in a.detail()["members"]}
    assert states[str(paths[-1])] == "spare", states


def test_raid5_raid6_round_trip(tmp_path: Path) -> None:
    paths = make(tmp_path, "raid5", 3, 6 << 20)
    want = content(paths)
    with fastraid.open(paths) as a:
        a.add(tmp_path / "q.img")
        a.reshape(level=6)
        a.reshape(level=5)
        a.reshape(level=6)  # the dropped Q member is the spare again
        assert a.level == "raid6"
    check([*paths, tmp_path / "q.img"], want, "raid6", 4, "left-symmetric")


@pytest.mark.parametrize("n", [3, 5])
def test_raid4_raid5_takeovers(tmp_path: Path, n: int) -> None:
    paths = make(tmp_path, "raid4", n)
    want = content(paths)
    before = fastraid.examine(paths[0])
    fastraid.reshape(paths, level=5)
    check(paths, want, "raid5", n, "parity-last")
    want = content(paths)
    assert fastraid.examine(paths[0])[0]["data_offset"] == before[0]["data_offset"]  # no data moved
    fastraid.reshape(paths, level=4)
    check(paths, want, "raid4", n, None)


def test_raid5_layout_to_raid4_and_back(tmp_path: Path) -> None:
    paths = make(tmp_path, "raid5", 4)
    want = content(paths)
    fastraid.reshape(paths, level=4)  # reshape to parity-last, then takeover
    check(paths, want, "raid4", 4, None)
    want = content(paths)
    fastraid.reshape(paths, level=5, layout="left-symmetric")  # takeover, then reshape
    check(paths, want, "raid5", 4, "left-symmetric")


@pytest.mark.parametrize(
    "level,n,member", [("raid5", 3, 4 << 20), ("raid4", 4, (3 << 20) + 8192), ("raid5", 2, 4 << 20)]
)
def test_raid0_to_parity(tmp_path: Path, level: str, n: int, member: int) -> None:
    paths = make(tmp_path, "raid0", n, member)
    want = content(paths)
    new = tmp_path / "p.img"  # does not exist yet: created, sized like the members
    plan = fastraid.plan_reshape([*paths, new], level=level)
    assert "parity" in str(plan)
    plan.execute()
    with pytest.raises(fastraid.InvalidArgumentError, match="already executed"):
        plan.execute()
    check([*paths, new], want, level, n + 1, "parity-last" if level == "raid5" else None)


def test_parity_last_without_parity_to_raid0_and_back(tmp_path: Path) -> None:
    paths = make(tmp_path, "raid5", 4, layout="parity-last")
    want = content(paths)
    survivors = paths[:-1]
    fastraid.reshape(survivors, level=0)
    with fastraid.open(survivors, readonly=True) as a:
        assert (a.level, a.raid_devices, a.state) == ("raid0", 3, "clean")
        assert a.read(0, a.size) == want
    new = tmp_path / "p2.img"
    fastraid.reshape([*survivors, new], level=5)
    check([*survivors, new], want, "raid5", 4, "parity-last")


def test_cli_grow_level(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from fastraid.cli import main

    paths = make(tmp_path, "raid5", 3)
    want = content(paths)
    new = tmp_path / "q.img"
    args = [*map(str, paths), "--add", str(new), "--level", "6", "--yes", "--progress", "json"]
    assert main(["grow", *args]) == 0
    out = capsys.readouterr().out
    assert "takeover" in out and '"done"' in out
    check([*paths, new], want, "raid6", 4, "left-symmetric")
    r0 = tmp_path / "r0"
    r0.mkdir()
    paths = make(r0, "raid0", 3)
    want = content(paths)
    new = r0 / "p.img"
    assert main(["grow", *map(str, paths), "--add", str(new), "--level", "raid5", "--yes"]) == 0
    capsys.readouterr()
    check([*paths, new], want, "raid5", 4, "parity-last")


def test_refusals_leave_members_untouched(tmp_path: Path) -> None:
    def refused(paths: list[Path], err: type[Exception], **kw: object) -> None:
        before = sums(paths)
        with pytest.raises(err):
            fastraid.reshape(paths, **kw)  # type: ignore[arg-type]
        assert sums(paths) == before, kw

    r5 = tmp_path / "r5"
    r5.mkdir()
    paths = make(r5, "raid5", 4)
    refused(paths, fastraid.InvalidArgumentError, level=6)  # no spare for Q
    refused(paths[:-1], fastraid.NotSupportedError, level=6)  # degraded
    refused(paths, fastraid.NotSupportedError, level=0)  # parity not parity-last
    refused(paths, fastraid.NotSupportedError, level=1)
    refused(paths, fastraid.NotSupportedError, level=6, chunk=128 * 1024)
    pl = tmp_path / "pl"
    pl.mkdir()
    paths = make(pl, "raid5", 4, layout="parity-last")
    refused(paths, fastraid.NotSupportedError, level=0)  # parity member still in use
    r6 = tmp_path / "r6"
    r6.mkdir()
    paths = make(r6, "raid6", 5)
    refused(paths, fastraid.NotSupportedError, level=0)
    refused(paths, fastraid.NotSupportedError, level=4)
    r1 = tmp_path / "r1"
    r1.mkdir()
    paths = make(r1, "raid1", 2)
    refused(paths, fastraid.NotSupportedError, level=5)
    r0 = tmp_path / "r0"
    r0.mkdir()
    paths = make(r0, "raid0", 3)
    refused(paths, fastraid.InvalidArgumentError, level=5)  # no new member given
    refused(paths, fastraid.NotSupportedError, level=6)
    z = tmp_path / "zones"
    z.mkdir()
    rng = random.Random(1)
    zones = []
    for i, size in enumerate([4 << 20, 4 << 20, 6 << 20]):
        p = z / f"m{i}.img"
        p.write_bytes(rng.randbytes(size))
        zones.append(p)
    fastraid.plan_create(zones, level="raid0", chunk=CHUNK, force=True).execute()
    refused([*zones, z / "new.img"], fastraid.NotSupportedError, level=5)
    assert not (z / "new.img").exists()


def _metadata(p: Path) -> bytes:
    off = fastraid.examine(p)[0]["data_offset"] * 512
    with p.open("rb") as f:
        return f.read(off)


def _put_metadata(p: Path, meta: bytes) -> None:
    with p.open("r+b") as f:
        f.write(meta)


@pytest.mark.parametrize("kind", ["raid4to5", "raid0to5", "raid6to5"])
def test_takeover_interrupted_between_superblock_writes(tmp_path: Path, kind: str) -> None:
    """A power cut between two superblock writes of a takeover: some members carry the new
    level (events E+1), the others the old one (E). Every such mix reads the original
    content, and the next run completes the lagging superblocks and finishes."""
    level, n, goal = {"raid4to5": ("raid4", 4, 5), "raid0to5": ("raid0", 3, 5)}.get(
        kind, ("raid6", 5, 5)
    )
    paths = make(tmp_path, level, n)
    want = content(paths)
    if kind == "raid6to5":
        fastraid.reshape(paths, layout="left-symmetric-6")  # the reshape before the takeover
    before = [_metadata(p) for p in paths]
    if kind == "raid0to5":
        # The takeover is written, then the recovery cannot create its target.
        with pytest.raises(fastraid.FastRaidError):
            fastraid.reshape([*paths, tmp_path / "no-such-dir" / "p.img"], level=goal)
    else:
        fastraid.reshape(paths, level=goal)
    after = [_metadata(p) for p in paths]
    assert before != after
    new = [tmp_path / "p.img"] if kind == "raid0to5" else []
    for mask in range(1, (1 << n) - 1):
        for i, p in enumerate(paths):
            _put_metadata(p, after[i] if mask >> i & 1 else before[i])
        with fastraid.open(paths, readonly=True) as a:
            assert a.read(0, len(want)) == want, mask
    # One mix, finished by the next run.
    for i, p in enumerate(paths):
        _put_metadata(p, after[i] if i % 2 else before[i])
    plan = fastraid.plan_reshape([*paths, *new], level=goal)
    assert "complete the interrupted takeover" in str(plan)
    plan.execute()
    final = {"raid4to5": ("raid5", 4, "parity-last"), "raid0to5": ("raid5", 4, "parity-last")}
    lv, nn, layout = final.get(kind, ("raid5", 4, "left-symmetric"))
    members = [*paths, *new]
    with fastraid.open(members, readonly=True) as a:
        assert (a.level, a.raid_devices, a.layout) == (lv, nn, layout), a.detail()
        assert a.state == "clean"
        assert a.read(0, len(want)) == want
        assert a.check().mismatch_cnt == 0


@pytest.mark.parametrize(
    "name,level,result",
    [
        ("raid5-ls-3", 6, ("raid6", 4, "left-symmetric")),
        ("raid6-5", 5, ("raid5", 4, "left-symmetric")),
        ("raid4-4", 5, ("raid5", 4, "parity-last")),
        ("raid0-3", 5, ("raid5", 4, "parity-last")),
    ],
)
def test_mdadm_made_arrays(
    md_copy: Callable[[str], list[Path]],
    md_images: Callable[[str], MdImages],
    tmp_path: Path,
    name: str,
    level: int,
    result: tuple[str, int, str],
) -> None:
    manifest = md_images(name).manifest
    paths = md_copy(name)
    n = manifest["array_size_bytes"]
    new = tmp_path / "new.img"
    if name.startswith("raid5"):
        with fastraid.open(paths) as a:
            a.add(new)
    members = [*paths, new] if name.startswith(("raid5", "raid0")) else paths
    fastraid.reshape(members, level=level)
    with fastraid.open(members, readonly=True) as a:
        assert (a.level, a.raid_devices, a.layout) == result
        assert a.state == "clean"
        assert hashlib.sha256(a.read(0, n)).hexdigest() == manifest["guest_sha256"]
        assert a.check().mismatch_cnt == 0


def test_metadata_090_refused(md_copy: Callable[[str], list[Path]], tmp_path: Path) -> None:
    paths = md_copy("raid5-v090-3")
    before = sums(paths)
    for level in (6, 4, 0):
        with pytest.raises(fastraid.NotSupportedError):
            fastraid.plan_reshape([*paths, tmp_path / "new.img"], level=level)
    assert sums(paths) == before


def test_raid6_without_q_member_to_raid5(tmp_path: Path) -> None:
    """A RAID-6 in a "-6" layout that lost its Q member is taken over directly."""
    paths = make(tmp_path, "raid6", 5)
    want = content(paths)
    fastraid.reshape(paths, layout="left-symmetric-6")
    fastraid.reshape(paths[:-1], level=5)
    check(paths[:-1], want, "raid5", 4, "left-symmetric")


def test_same_level_grow_with_level_given(tmp_path: Path) -> None:
    paths = make(tmp_path, "raid5", 3, layout="parity-last")
    want = content(paths)
    with fastraid.open(paths) as a:
        a.add(tmp_path / "s.img")
        a.reshape(level=5, raid_devices=4)  # the ordinary grow, level named
    with fastraid.open([*paths, tmp_path / "s.img"], readonly=True) as a:
        assert (a.level, a.raid_devices) == ("raid5", 4)
        assert a.read(0, len(want)) == want
