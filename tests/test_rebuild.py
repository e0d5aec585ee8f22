"""fastraid.rebuild / fastraid.replace on arrays made by fastraid.create over random member
contents: the rebuilt member's data area equals the lost one byte for byte, the array then
assembles with every slot in sync, and bad input is refused without writing."""

from __future__ import annotations

import random
from pathlib import Path

import fastraid
import pytest

MEMBER = 3 << 20
CHUNK = 64 * 1024


def make(
    tmp: Path, level: str, n: int, layout: str | None = None, seed: int = 0
) -> tuple[list[Path], dict[str, object]]:
    rng = random.Random(f"{level}-{n}-{layout}-{seed}")
    paths = []
    for i in range(n):
        p = tmp / f"m{i}.img"
        p.write_bytes(rng.randbytes(MEMBER))
        paths.append(p)
    plan = fastraid.plan_create(paths, level=level, chunk=CHUNK, layout=layout, force=True)
    plan.execute()
    return paths, dict(plan.describe())


def area(p: Path, info: dict[str, object], length: int) -> bytes:
    off = int(str(info["data_offset"]))
    with open(p, "rb") as f:
        f.seek(off)
        return f.read(length)


CASES = [
    ("raid1", 3, None, (2,)),
    ("raid4", 4, None, (0,)),
    ("raid5", 4, "left-symmetric", (1,)),
    ("raid5", 4, "left-asymmetric", (3,)),
    ("raid5", 5, "right-symmetric", (0,)),
    ("raid5", 4, "parity-first", (2,)),
    ("raid6", 6, "left-symmetric", (2,)),
    ("raid6", 6, "left-symmetric", (1, 4)),
    ("raid6", 5, "right-asymmetric", (0, 3)),
    ("raid6", 6, "left-asymmetric", (5,)),
    ("raid10", 4, "n2", (1,)),
    ("raid10", 4, "f2", (2,)),
    ("raid10", 3, "o2", (0,)),
]


@pytest.mark.parametrize(
    "level,n,layout,lost", CASES, ids=[f"{c[0]}-{c[1]}-{c[2]}-{c[3]}" for c in CASES]
)
def test_rebuild_is_byte_identical(
    tmp_path: Path, level: str, n: int, layout: str | None, lost: tuple[int, ...]
) -> None:
    paths, info = make(tmp_path, level, n, layout)
    slot = lost[0]
    plan = fastraid.plan_rebuild(
        [p for i, p in enumerate(paths) if i not in lost], slot=slot, new=tmp_path / "x"
    )
    total = plan.describe()["total"]
    want = area(paths[slot], info, total)
    for i in lost:
        paths[i].unlink()
    survivors = [p for i, p in enumerate(paths) if i not in lost]
    new = tmp_path / "new.img"
    seen: list[tuple[int, int, float]] = []
    r = fastraid.rebuild(
        survivors,
        slot=slot,
        new=new,
        progress=lambda d, t, rate: seen.append((d, t, rate)),
        batch_bytes=320 * 1024,
    )
    assert r["slot"] == slot and r["created"] and r["total"] == total
    assert seen and seen[-1][0] == total and all(t == total for _, t, _ in seen)
    assert area(new, info, total) == want
    with fastraid.open([*survivors, new], readonly=True) as a:
        assert a.members[slot] == str(new)
        assert a.degraded == (len(lost) > 1)


def test_replace_then_old_member_is_left_out(tmp_path: Path) -> None:
    paths, info = make(tmp_path, "raid6", 5, "left-symmetric")
    new = tmp_path / "new.img"
    r = fastraid.replace(paths, 3, new)
    assert r["replaced"] == str(paths[3])
    assert area(new, info, r["total"]) == area(paths[3], info, r["total"])
    with fastraid.open([*paths, new], readonly=True) as a:
        assert a.members[3] == str(new) and not a.degraded
        states = {m["path"]: m["state"] for m in a.detail()["members"]}
        assert states[str(paths[3])] != "active"


def test_cancel_keeps_a_checkpoint_and_resumes(tmp_path: Path) -> None:
    paths, info = make(tmp_path, "raid5", 4)
    plan = fastraid.plan_rebuild(paths[1:], new=tmp_path / "probe")
    total = plan.describe()["total"]
    want = area(paths[0], info, total)
    paths[0].unlink()
    new = tmp_path / "new.img"

    class Stop(Exception):
        pass

    def stop(done: int, total: int, rate: float) -> None:
        if done > total // 3:
            raise Stop

    with pytest.raises(Stop) as e:
        fastraid.rebuild(paths[1:], new=new, progress=stop, batch_bytes=64 * 1024)
    assert any("resume" in n for n in getattr(e.value, "__notes__", []))
    plan = fastraid.plan_rebuild([*paths[1:], new])  # the partial member is found
    d = plan.describe()
    assert d["slot"] == 0 and 0 < d["start"] < total and d["target"] == str(new)
    assert area(new, info, d["start"]) == want[: d["start"]]
    plan.execute()
    assert area(new, info, total) == want
    with pytest.raises(fastraid.InvalidArgumentError, match="already executed"):
        plan.execute()


def test_spare_among_members_is_the_target(tmp_path: Path) -> None:
    paths, info = make(tmp_path, "raid1", 2)
    want = area(paths[1], info, 1 << 20)
    paths[1].unlink()
    spare = tmp_path / "spare.img"
    spare.write_bytes(bytes(MEMBER))
    # Not a spare of this array: a blank file is used as `new`.
    r = fastraid.rebuild([paths[0]], new=spare)
    assert area(spare, info, 1 << 20) == want
    assert r["slot"] == 1


def test_bad_input(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    paths, _ = make(tmp_path / "a", "raid5", 4)
    other, _ = make(tmp_path / "b", "raid5", 3, seed=1)
    paths[2].unlink()
    surv = [paths[0], paths[1], paths[3]]
    before = other[0].read_bytes()
    with pytest.raises(fastraid.MemberInUseError, match="not part of this array"):
        fastraid.rebuild(surv, new=other[0])
    assert other[0].read_bytes() == before
    with pytest.raises(fastraid.InvalidArgumentError, match="serving slot"):
        fastraid.rebuild(surv, new=paths[0])
    with pytest.raises(fastraid.AssemblyError, match="same device"):
        fastraid.rebuild([paths[0], paths[0], paths[1], paths[3]], new=tmp_path / "n.img")
    with pytest.raises(fastraid.AssemblyError):
        fastraid.rebuild([paths[0], paths[1]], new=tmp_path / "n.img")
    with pytest.raises(fastraid.InvalidArgumentError, match="in sync"):
        fastraid.rebuild(surv, slot=0, new=tmp_path / "n.img")
    with pytest.raises(fastraid.InvalidArgumentError, match="slot"):
        fastraid.rebuild(surv, slot=9, new=tmp_path / "n.img")
    with pytest.raises(fastraid.InvalidArgumentError, match="no device"):
        fastraid.rebuild(surv)
    assert not (tmp_path / "n.img").exists()
    small = tmp_path / "small.img"
    small.write_bytes(bytes(1 << 20))
    with pytest.raises(fastraid.InvalidArgumentError, match="too small"):
        fastraid.rebuild(surv, new=small)
    fastraid.rebuild(surv, new=other[0], force=True)


# ----------------------------------------------------------------------------------------
# CLI (python/fastraid/cli_rebuild.py, wired into `fastraid` by cli.py)
# ----------------------------------------------------------------------------------------


def _cli(argv: list[str]) -> int:
    import argparse

    from fastraid import cli_rebuild

    parser = argparse.ArgumentParser(prog="fastraid")
    cli_rebuild.register(parser.add_subparsers(required=True))
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code


def test_cli_rebuild_asks_then_writes_json_progress(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    paths, info = make(tmp_path, "raid5", 4)
    want = area(paths[1], info, 1 << 20)
    paths[1].unlink()
    surv = [str(p) for i, p in enumerate(paths) if i != 1]
    new = str(tmp_path / "new.img")
    # Not a terminal and no --yes: shows the plan, writes nothing.
    assert _cli(["rebuild", *surv, "--new", new]) == 1
    o = capsys.readouterr()
    assert "rebuild slot 1" in o.out and "--yes" in o.err
    assert not Path(new).exists()
    assert _cli(["rebuild", *surv, "--new", new, "--yes", "--progress=json", "--json"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    assert lines[-2]["done"] == lines[-2]["total"]
    assert lines[-1]["slot"] == 1
    assert area(Path(new), info, 1 << 20) == want


def test_cli_replace_quiet(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    paths, _ = make(tmp_path, "raid1", 2)
    new = str(tmp_path / "new.img")
    argv = ["replace", *map(str, paths), "--slot", "0", "--with", new, "--yes", "-q"]
    assert _cli(argv) == 0
    assert capsys.readouterr().out == ""
    assert _cli(["rebuild", str(paths[1]), new, "--yes"]) == 1  # nothing missing
    assert "nothing to rebuild" in capsys.readouterr().err
