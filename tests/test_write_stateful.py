"""Hypothesis stateful test: random sequences of create, write, flush, fail, add + rebuild,
replace and reopen on a real array, against a plain bytearray model of its bytes. After
every step the array reads exactly the model; at the end parity and mirrors agree with the
data (scrub) and the kernel's rules for which members count still give the same array.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import fastraid
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

#: (level, members, layout, members that may be missing at once)
GEOMETRIES = [
    ("raid5", 4, "left-symmetric", 1),
    ("raid5", 3, "right-asymmetric", 1),
    ("raid6", 5, "left-symmetric", 2),
    ("raid6", 4, "right-asymmetric", 2),
    ("raid1", 3, None, 2),
    ("raid10", 4, "n2", 1),
    ("raid10", 4, "o2", 1),
    ("raid4", 3, None, 1),
]


class ArrayMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="fastraid-stateful-"))
        self.files = 0

    def new_path(self) -> str:
        self.files += 1
        return str(self.dir / f"d{self.files}.img")

    @initialize(geo=st.sampled_from(GEOMETRIES), chunk=st.sampled_from([4096, 16384]))
    def create(self, geo: tuple[str, int, str | None, int], chunk: int) -> None:
        level, n, layout, self.tolerates = geo
        paths = [self.new_path() for _ in range(n)]
        self.array = fastraid.create(paths, level=level, layout=layout, chunk=chunk, size=2 << 20)
        self.model = bytearray(self.array.read(0, self.array.size))
        self.level = level

    def missing(self) -> int:
        return self.array.members.count(None)

    @rule(pos=st.floats(0, 1), n=st.integers(1, 70_000), seed=st.integers(0, 255))
    def write(self, pos: float, n: int, seed: int) -> None:
        off = min(int(pos * self.array.size), self.array.size - 1)
        n = min(n, self.array.size - off)
        data = bytes((seed + i * 7) & 0xFF for i in range(n))
        assert self.array.write(off, data) == n
        self.model[off : off + n] = data

    @rule()
    def flush(self) -> None:
        self.array.flush()
        assert self.array.state.startswith("clean")

    @rule(slot=st.integers(0, 5))
    def fail(self, slot: int) -> None:
        members = self.array.members
        if slot >= len(members) or members[slot] is None:
            return
        if self.level in ("raid5", "raid4", "raid6") and self.missing() >= self.tolerates:
            try:
                self.array.fail(slot)
            except fastraid.TooManyFailuresError:
                return
            raise AssertionError("failing past the redundancy must be refused")
        try:
            self.array.fail(slot)
        except fastraid.TooManyFailuresError:
            # RAID1/10: refused only if no other copy would be left for some data.
            assert self.level in ("raid1", "raid10")
            return
        assert self.array.members[slot] is None

    @precondition(lambda self: self.missing() > 0)
    @rule()
    def add_and_rebuild(self) -> None:
        spare = self.new_path()
        self.array.add(spare)
        result = self.array.rebuild()
        assert result["target"] == spare
        assert self.array.members[result["slot"]] == spare

    @rule(slot=st.integers(0, 5))
    def replace(self, slot: int) -> None:
        members = self.array.members
        if slot >= len(members) or members[slot] is None:
            return
        new = self.new_path()
        result = self.array.replace(slot, new)
        assert self.array.members[slot] == new
        assert result["replaced"] == members[slot]

    @rule()
    def reopen(self) -> None:
        paths = self.array.paths
        self.array.close()
        self.array = fastraid.open(paths)

    @invariant()
    def reads_the_model(self) -> None:
        if hasattr(self, "array"):
            assert self.array.read(0, self.array.size) == self.model

    def teardown(self) -> None:
        if hasattr(self, "array"):
            present = [m for m in self.array.members if m is not None]
            degraded = self.array.degraded
            self.array.close()
            with fastraid.open(present, readonly=True) as a:
                assert a.read(0, a.size) == self.model
            if not degraded:
                assert fastraid.check(present).mismatch_cnt == 0
        shutil.rmtree(self.dir, ignore_errors=True)


ArrayMachine.TestCase.settings = settings(
    max_examples=50, stateful_step_count=20, deadline=None, print_blob=True
)
TestArrayMachine = ArrayMachine.TestCase
