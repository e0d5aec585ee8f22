"""Crash test of RAID-10 reshapes (the shared loop of tests/killharness.py): a reshape runs
in a child process that is SIGKILLed at a random moment, then started again, until it
finishes. After every kill the array, as fastraid assembles it mid-reshape, holds the
original content, and the superblocks describe a reshape the kernel would resume (md's
minimum data-offset change, a chunk-aligned reshape_position, the same on every member);
at the end the array is in the new geometry, clean, every copy equal, with zeros in the
space a grow added.

Scenarios: grows of n2 and o2, near -> offset, a chunk change, a backwards reshape (room
only after the data), and md's own interrupted o2 -> n2 (a kernel case) finished by
``grow --continue``. At least 6 kills each; ``FASTRAID_KILL_ROUNDS=N`` multiplies them.
"""

from __future__ import annotations

import hashlib
import random
from pathlib import Path
from typing import Any

import fastraid
import pytest
from conftest import kernel_case
from killharness import SCALE, finished_superblocks_only, kill_rounds

MEMBER = 4 << 20
CHUNK = 64 * 1024
KILLS_PER_SCENARIO = 6 * SCALE

SCENARIOS: dict[str, tuple[str, int, int, dict[str, Any], dict[str, Any]]] = {
    # name: layout, members, spares, a reshape done before (pristine), the one killed
    "n2-4to5": ("n2", 4, 1, {}, {"raid_devices": 5}),
    "o2-3to4": ("o2", 3, 1, {}, {"raid_devices": 4}),
    "n2-to-o2": ("n2", 4, 0, {}, {"layout": "o2"}),
    "o2-chunk-64to32": ("o2", 4, 0, {}, {"chunk": CHUNK // 2}),
    "backwards-n2-to-o2": ("n2", 4, 0, {"chunk": 2 * CHUNK}, {"layout": "o2"}),
}


def check_superblocks(members: list[str]) -> None:
    """What the kernel would read: one reshape state on every member, resumable."""
    sbs = [fastraid.examine(m)[0] for m in members]
    active = [sb for sb in sbs if sb["reshape"] is not None]
    if not active:
        return
    top = max(sb["events"] for sb in sbs)
    fresh = [sb for sb in active if sb["events"] == top]
    if not fresh:
        return  # the finish was being written: the next run completes it
    r = fresh[0]["reshape"]
    assert all(sb["reshape"] == r for sb in fresh), [sb["reshape"] for sb in fresh]
    for sb in fresh:
        assert "NEW_OFFSET" in sb["feature_map"], sb["feature_map"]
    chunk = min(fresh[0]["chunk"], r["new_chunk"])
    assert r["position"] % (chunk // 512) == 0, r

    def fc(word: int) -> int:
        return (word >> 8) & 0xFF

    need = max(
        fresh[0]["chunk"] * fc(fresh[0]["layout_number"]), r["new_chunk"] * fc(r["new_layout"])
    )
    assert abs(r["new_offset"]) * 512 >= need, r
    assert (r["new_offset"] > 0) == r["backwards"], r


def pristine_array(tmp: Path, scenario: str) -> tuple[list[str], bytes, dict[str, Any]]:
    layout, n, spares, before_kw, kw = SCENARIOS[scenario]
    rng = random.Random(scenario)
    paths = []
    for i in range(n):
        p = tmp / f"m{i}.img"
        p.write_bytes(rng.randbytes(MEMBER))
        paths.append(p)
    fastraid.plan_create(paths, level="raid10", layout=layout, chunk=CHUNK, force=True).execute()
    if before_kw:
        fastraid.reshape(paths, **before_kw)
    with fastraid.open(paths) as a:
        want = a.read(0, a.size)
        for i in range(spares):
            a.add(tmp / f"s{i}.img")
    return [p.name for p in paths] + [f"s{i}.img" for i in range(spares)], want, kw


def finished(members: list[str]) -> None:
    with fastraid.open(members, readonly=True) as a:
        assert a.state == "clean"
        assert not any("reshape in progress" in note for note in a.detail()["notes"])
        assert a.check().mismatch_cnt == 0


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_raid10_reshape_survives_sigkill(tmp_path: Path, scenario: str) -> None:
    pristine = tmp_path / "pristine"
    pristine.mkdir()
    names, want, kw = pristine_array(pristine, scenario)

    def after_kill(members: list[str], rounds: int) -> None:
        check_superblocks(members)
        if not finished_superblocks_only(members, kw):
            with fastraid.open(members, readonly=True) as a:
                assert a.read(0, len(want)) == want, f"round {rounds}: content lost"

    def at_end(members: list[str], rounds: int) -> None:
        finished(members)
        with fastraid.open(members, readonly=True) as a:
            assert a.read(0, len(want)) == want, f"round {rounds}: content differs"
            assert a.read(len(want), a.size - len(want)) == bytes(a.size - len(want))
            if "layout" in kw:
                assert a.layout == kw["layout"]
            if "raid_devices" in kw:
                assert a.raid_devices == kw["raid_devices"]

    kill_rounds(
        pristine,
        names,
        tmp_path / "work",
        kw=kw,
        kills=KILLS_PER_SCENARIO,
        rng=random.Random(scenario),
        after_kill=after_kill,
        at_end=at_end,
        max_delay=0.6,
        speed_limit=12 << 20,
    )


def test_kernel_cut_continue_survives_sigkill(tmp_path: Path) -> None:
    """md's own backwards o2 -> n2, cut by a power loss in the kernel, finished by
    ``grow --continue`` that is itself killed again and again."""
    pristine = tmp_path / "pristine"
    pristine.mkdir()
    paths, _, manifest = kernel_case(pristine, "raid10-o2-to-n2-backwards-cut50")
    expected = manifest["expected"]
    kw = {"continue_only": True}

    def intact(members: list[str], when: str) -> None:
        with fastraid.open(members, readonly=True) as a:
            data = a.read(0, expected["length_bytes"])
        assert hashlib.sha256(data).hexdigest() == expected["sha256"], f"{when}: content lost"

    def after_kill(members: list[str], rounds: int) -> None:
        check_superblocks(members)
        if not finished_superblocks_only(members, kw):
            intact(members, f"round {rounds}")

    def at_end(members: list[str], rounds: int) -> None:
        finished(members)
        intact(members, f"round {rounds} (finished)")
        with fastraid.open(members, readonly=True) as a:
            assert a.layout == "n2"

    kill_rounds(
        pristine,
        [p.name for p in paths],
        tmp_path / "work",
        kw=kw,
        kills=KILLS_PER_SCENARIO,
        rng=random.Random("kernel"),
        after_kill=after_kill,
        at_end=at_end,
        max_delay=0.6,
        speed_limit=12 << 20,
    )
