"""Growing a RAID-0 (``Array.add`` + ``Array.reshape(raid_devices=N)``, ``fastraid grow
--add ... --raid-devices N``), done as mdadm does it: takeover to a RAID-4 whose parity
member is missing, the new members added as spares, a RAID-4 reshape that leaves the
parity slot missing (the first new member takes the old parity slot), takeover back to
RAID-0. After it the array is a clean RAID-0 of N members holding the original content,
then zeros; each step can be stopped and is finished by the same request again or by
``grow --continue``, which also finishes the kernel's own interrupted RAID-0 grows
(``tests/fixtures/kernel/raid0-grow-*``). What md cannot do is refused before anything is
written.
"""

from __future__ import annotations

import contextlib
import hashlib
import random
from collections.abc import Callable
from pathlib import Path

import fastraid
import pytest
from conftest import kernel_case
from fastraid.cli import main

CHUNK = 64 * 1024


def make(tmp: Path, n: int, member: int = 4 << 20, metadata: str = "1.2") -> list[Path]:
    rng = random.Random(f"raid0{n}{member}{metadata}")
    paths = []
    for i in range(n):
        p = tmp / f"m{i}.img"
        p.write_bytes(rng.randbytes(member))
        paths.append(p)
    fastraid.plan_create(paths, level="raid0", chunk=CHUNK, metadata=metadata, force=True).execute()
    return paths


def content(paths: list[Path]) -> bytes:
    with fastraid.open(paths, readonly=True) as a:
        return a.read(0, a.size)


def sums(paths: list[Path]) -> list[str]:
    return [hashlib.sha256(p.read_bytes()).hexdigest() for p in paths if p.exists()]


def check_raid0(paths: list[Path], want: bytes, n: int) -> None:
    """A clean RAID-0 of ``n`` members: the original content, zeros after it, writable."""
    with fastraid.open(paths, readonly=True) as a:
        assert (a.level, a.raid_devices, a.state) == ("raid0", n, "clean"), a.detail()
        assert not any("reshape in progress" in x for x in a.detail()["notes"]), a.detail()
        assert a.size >= len(want) * n // (n - 1) - n * CHUNK
        assert a.read(0, len(want)) == want
        assert a.read(len(want), a.size - len(want)) == bytes(a.size - len(want))
        assert a.check().mismatch_cnt == 0
        assert all(m["state"] == "active" for m in a.detail()["members"]), a.detail()
    with fastraid.open(paths) as a:
        a.write(a.size - 8192, b"w" * 8192)
    with fastraid.open(paths, readonly=True) as a:
        assert a.read(a.size - 8192, 8192) == b"w" * 8192
        assert a.read(0, len(want)) == want


@pytest.mark.parametrize(
    "n,grow,member,metadata",
    [
        (3, 1, 4 << 20, "1.2"),
        (3, 2, 4 << 20, "1.2"),
        (2, 3, (3 << 20) + 5 * 4096, "1.2"),
        (3, 1, 4 << 20, "1.0"),
        (4, 2, 4 << 20, "1.1"),
    ],
    ids=["3to4", "3to5", "2to5-odd", "meta10-3to4", "meta11-4to6"],
)
def test_grow(tmp_path: Path, n: int, grow: int, member: int, metadata: str) -> None:
    paths = make(tmp_path, n, member, metadata)
    want = content(paths)
    new = [tmp_path / f"new{i}.img" for i in range(grow)]
    with fastraid.open(paths) as a:
        for p in new:
            info = a.add(p)
            assert info["dev_number"] is None and info["created"]
        assert a.level == "raid0" and a.raid_devices == n  # nothing written yet
        plan = fastraid.plan_reshape(a.paths, raid_devices=n + grow)
        text = str(plan)
        assert "RAID-4" in text and "power cut" in text and "missing" in text
        assert plan.describe()["raid_devices"] == n + grow
        seen: list[int] = []
        a.reshape(raid_devices=n + grow, progress=lambda d, t, r: seen.append(d))
        assert seen
        assert (a.level, a.raid_devices) == ("raid0", n + grow)
    check_raid0([*paths, *new], want, n + grow)
    for p in new:
        assert fastraid.examine(p)[0]["level"] == "raid0"


def test_cli_grow(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    paths = make(tmp_path, 3)
    want = content(paths)
    new = [tmp_path / "d.img", tmp_path / "e.img"]
    args = ["grow", *map(str, paths), "--add", *map(str, new), "--raid-devices", "5"]
    assert main([*args, "--dry-run"]) == 0
    assert "RAID-4" in capsys.readouterr().out
    assert content(paths) == want and not any(p.exists() for p in new)
    assert main([*args, "--yes", "--progress", "none"]) == 0
    capsys.readouterr()
    check_raid0([*paths, *new], want, 5)
    # again: nothing left to do
    assert main(["grow", *map(str, [*paths, *new]), "--continue", "--yes"]) == 1
    assert "nothing to continue" in capsys.readouterr().err


def _step_states(tmp_path: Path, n: int, grow: int) -> tuple[list[Path], list[Path], bytes]:
    paths = make(tmp_path, n)
    return paths, [tmp_path / f"new{i}.img" for i in range(grow)], content(paths)


class Stop(Exception):
    pass


@pytest.mark.parametrize("resume", ["same", "continue"])
def test_stopped_reshape_is_finished(tmp_path: Path, resume: str) -> None:
    """Stopped during the reshape (the progress callback raises: it stops at a
    checkpoint), the array reads the original content as the RAID-4 it is then, and the
    same request (or ``grow --continue``) finishes it."""
    paths, new, want = _step_states(tmp_path, 3, 2)
    members = [*paths, *new]
    seen = []
    for _ in range(60):
        calls: list[int] = []

        def stop(done: int, total: int, rate: float, calls: list[int] = calls) -> None:
            calls.append(done)
            if len(calls) == 6:
                raise Stop

        if resume == "continue" and seen:
            plan = fastraid.plan_reshape(
                members, continue_only=True, batch_bytes=CHUNK * 4, checkpoint_bytes=0
            )
        else:
            plan = fastraid.plan_reshape(
                members, raid_devices=5, batch_bytes=CHUNK * 4, checkpoint_bytes=0
            )
        with contextlib.suppress(Stop):
            plan.execute(stop)
        with fastraid.open(members, readonly=True) as a:
            seen.append((a.level, a.raid_devices, a.state))
            assert a.read(0, len(want)) == want, a.detail()
        if seen[-1][0] == "raid0":
            break
    assert ("raid4", 6, "clean, degraded, recovering") in seen, seen
    assert len(seen) > 3, seen
    check_raid0(members, want, 5)


def _metadata(p: Path) -> bytes:
    off = fastraid.examine(p)[0]["data_offset"] * 512
    with p.open("rb") as f:
        return f.read(off)


def _put_metadata(p: Path, meta: bytes) -> None:
    with p.open("r+b") as f:
        f.write(meta)


def test_add_cut_between_superblock_writes(tmp_path: Path) -> None:
    """The takeover done, then an add cut after the first member's superblock: that member
    is one event ahead, the new member has no superblock. The next run brings the others
    up to date first (so that another cut cannot leave them two events behind, stale),
    then adds again and finishes."""
    paths = make(tmp_path, 3)
    want = content(paths)
    # A new member in a directory that does not exist: the takeover is done, the add fails.
    with pytest.raises(fastraid.FastRaidError):
        fastraid.reshape([*paths, tmp_path / "none" / "new.img"], raid_devices=4)
    with fastraid.open(paths, readonly=True) as a:
        assert a.level == "raid4" and a.raid_devices == 4, a.detail()
    kept = {p: _metadata(p) for p in paths[1:]}
    new = tmp_path / "new.img"
    with fastraid.open(paths) as a:
        a.add(new)  # the add: every superblock events + 1, the spare's written
    for p, meta in kept.items():
        _put_metadata(p, meta)  # ... but the cut came after the first member
    with new.open("r+b") as f:
        f.write(bytes(8192))  # and before the spare's superblock
    text = str(fastraid.plan_reshape([*paths, new], raid_devices=4))
    assert "one event behind" in text, text
    fastraid.reshape([*paths, new], raid_devices=4)
    check_raid0([*paths, new], want, 4)


def test_add_on_raid0_remembers_the_path(tmp_path: Path) -> None:
    paths = make(tmp_path, 3)
    before = sums(paths)
    new = tmp_path / "n.img"
    with fastraid.open(paths) as a:
        a.add(new)
        assert str(new) in a.paths
        with pytest.raises(fastraid.InvalidArgumentError):
            a.add(new)
        assert new.stat().st_size == paths[0].stat().st_size
    assert sums(paths) == before  # nothing written to the array
    assert new.read_bytes() == bytes(new.stat().st_size)


def test_refusals_leave_members_untouched(tmp_path: Path) -> None:
    def refused(paths: list[Path], err: type[Exception], **kw: object) -> None:
        before = sums(paths)
        with pytest.raises(err):
            fastraid.reshape(paths, **kw)  # type: ignore[arg-type]
        assert sums(paths) == before, kw

    paths = make(tmp_path, 3)
    new = tmp_path / "new.img"
    refused(paths, fastraid.InvalidArgumentError, raid_devices=4)  # no new member given
    refused([*paths, new], fastraid.NotSupportedError, raid_devices=2)  # md cannot shrink
    refused(paths, fastraid.InvalidArgumentError, raid_devices=3)  # already
    refused([*paths, new], fastraid.InvalidArgumentError, raid_devices=5)  # one new, two needed
    refused([*paths, new], fastraid.NotSupportedError, raid_devices=4, chunk=128 * 1024)
    assert not new.exists()
    small = tmp_path / "small.img"
    small.write_bytes(bytes(1 << 20))
    refused([*paths, small], fastraid.InvalidArgumentError, raid_devices=4)
    # a member of another array is not taken as a new member
    (tmp_path / "o").mkdir()
    other = make(tmp_path / "o", 2)
    refused([*paths, other[0]], fastraid.MemberInUseError, raid_devices=4)
    # several zones (members of different sizes): md's takeover needs one zone
    z = tmp_path / "zones"
    z.mkdir()
    rng = random.Random(1)
    zones = []
    for i, size in enumerate([4 << 20, 4 << 20, 6 << 20]):
        p = z / f"m{i}.img"
        p.write_bytes(rng.randbytes(size))
        zones.append(p)
    fastraid.plan_create(zones, level="raid0", chunk=CHUNK, force=True).execute()
    refused([*zones, z / "new.img"], fastraid.NotSupportedError, raid_devices=4)
    assert not (z / "new.img").exists()


def test_metadata_090_refused(md_copy: Callable[[str], list[Path]], tmp_path: Path) -> None:
    """fastraid reshapes no 0.90 array (no new_offset); mdadm 4.2 does not even create a
    0.90 RAID-0 ("0.90 metadata does not support layouts for RAID0"), so an mdadm-made
    0.90 RAID-5 stands for it."""
    paths = md_copy("raid5-v090-3")
    before = sums(paths)
    with pytest.raises(fastraid.NotSupportedError, match="0.90"):
        fastraid.reshape([*paths, tmp_path / "new.img"], raid_devices=4)
    assert sums(paths) == before


@pytest.mark.parametrize(
    "name",
    [
        "raid0-grow-3to4-cut5",
        "raid0-grow-3to4-cut40",
        "raid0-grow-3to5-cut40",
        "raid0-meta10-grow-3to4-backup-cut40",
    ],
)
def test_grow_continue_finishes_the_kernels_raid0_grow(tmp_path: Path, name: str) -> None:
    """mdadm's RAID-0 grow cut by a power loss (a RAID-4 reshape, parity slot missing):
    ``grow --continue`` finishes the reshape and takes the array back to RAID-0, as mdadm
    would have."""
    paths, _, manifest = kernel_case(tmp_path, name)
    exp = manifest["expected"]
    assert isinstance(exp, dict)
    plan = fastraid.plan_reshape(paths, continue_only=True)
    assert "RAID-0" in str(plan)
    assert main(["grow", *map(str, paths), "--continue", "--yes", "--progress", "none"]) == 0
    n = len(paths)
    with fastraid.open(paths, readonly=True) as a:
        assert (a.level, a.raid_devices, a.state) == ("raid0", n, "clean"), a.detail()
        data = a.read(0, exp["length_bytes"])
        assert hashlib.sha256(data).hexdigest() == exp["sha256"]
        rest = a.size - exp["length_bytes"]
        assert a.read(exp["length_bytes"], rest) == bytes(rest)
