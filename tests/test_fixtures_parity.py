"""fastraid's parity against arrays written by Linux md (tests/fixtures/md, built in a VM).

For every stripe of each array, the P (and Q) md wrote must equal what xor_gen / pq_gen
compute from the data chunks, and recover() must rebuild every data chunk (for RAID-6 also
every pair of lost members) from the rest. The stripe map used to find the chunks
(tests/_md_stripes.py) is proved right by hashing the array's logical content, which must
match the pattern the fixture was filled with.

The whole-array checks are vectorised: the chunks of every stripe that play the same role
(slot j, P, Q) are gathered into one contiguous buffer, so one fastraid call covers all
stripes. A seeded sample of stripes is also checked one stripe at a time, on zero-copy
slices of the member images.
"""

from __future__ import annotations

import hashlib
import itertools
import mmap
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import fastraid
import numpy as np
import pytest
from _md_stripes import pattern_block, stripe_roles

if TYPE_CHECKING:
    from conftest import MdImages

FIXTURES = ["raid4-4", "raid5-ls-3", "raid6-5"]
KERNELS = list(fastraid.kernels()["available"])


@dataclass
class Array:
    name: str
    level: str
    layout: int
    n: int
    n_data: int
    chunk: int
    stripes: int
    data_offset: int
    length_bytes: int
    pattern_sha256: str
    #: ``members[m]``: the member's data area, shape (stripes, chunk).
    members: np.ndarray
    #: Per stripe: member of P, of Q (-1 for none), of logical data index d, of slot j.
    p_member: np.ndarray
    q_member: np.ndarray
    data_member: np.ndarray
    slot_member: np.ndarray
    images: list[mmap.mmap]

    def gather(self, member_of_stripe: np.ndarray) -> np.ndarray:
        """The chunks at ``member_of_stripe[s]`` for every stripe s, as one flat contiguous
        buffer (stripe order)."""
        return np.ascontiguousarray(self.members[member_of_stripe, np.arange(self.stripes)]).ravel()

    def chunk_view(self, member: int, stripe: int) -> memoryview:
        """Zero-copy view of one chunk in the member image."""
        start = self.data_offset + stripe * self.chunk
        return memoryview(self.images[member])[start : start + self.chunk]


def _open(images: MdImages) -> Iterator[Array]:
    manifest = images.manifest
    level = manifest["level"]
    n = manifest["raid_disks"]
    n_data = n - (2 if level == "raid6" else 1)
    chunk = manifest["chunk_bytes"]
    array_size = manifest["array_size_bytes"]
    assert array_size % (chunk * n_data) == 0
    stripes = array_size // (chunk * n_data)
    offsets = {m["data_offset_sectors"] for m in manifest["members"]}
    assert len(offsets) == 1
    data_offset = offsets.pop() * 512

    files = [path.open("rb") for path in images.members]
    maps = [mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) for f in files]
    members = np.stack(
        [
            np.frombuffer(m, dtype=np.uint8, count=stripes * chunk, offset=data_offset).reshape(
                stripes, chunk
            )
            for m in maps
        ]
    )
    roles = [stripe_roles(level, manifest["layout"]["number"], n, s) for s in range(stripes)]
    array = Array(
        name=images.name,
        level=level,
        layout=manifest["layout"]["number"],
        n=n,
        n_data=n_data,
        chunk=chunk,
        stripes=stripes,
        data_offset=data_offset,
        length_bytes=manifest["pattern"]["length_bytes"],
        pattern_sha256=manifest["pattern"]["sha256"],
        members=members,
        p_member=np.array([r.p for r in roles]),
        q_member=np.array([-1 if r.q is None else r.q for r in roles]),
        data_member=np.array([r.data for r in roles]).T,  # shape (n_data, stripes)
        slot_member=np.array([r.slots or r.data for r in roles]).T,
        images=maps,
    )
    yield array
    for f in files:
        f.close()  # the maps stay valid; they are released with the arrays that view them


@pytest.fixture(scope="module", params=FIXTURES)
def array(request: pytest.FixtureRequest, md_images: Callable[[str], MdImages]) -> Iterator[Array]:
    yield from _open(md_images(request.param))


@pytest.fixture(scope="module")
def gathered(array: Array) -> dict[str, object]:
    """Whole-array buffers: data by slot (RAID6) / logical index, P and Q."""
    data = [array.gather(array.slot_member[j]) for j in range(array.n_data)]
    p = array.gather(array.p_member)
    q = array.gather(array.q_member) if array.level == "raid6" else None
    return {"data": data, "p": p, "q": q}


# ==================================================================================================
# The mapping itself
# ==================================================================================================


def test_logical_content_matches_the_pattern(array: Array) -> None:
    """The data chunks in array order hash to the pattern md was filled with: proves the map."""
    logical = array.members[array.data_member.T, np.arange(array.stripes)[:, None]]
    content = np.ascontiguousarray(logical).ravel()
    assert content.size >= array.length_bytes
    digest = hashlib.sha256(content[: array.length_bytes]).hexdigest()
    assert digest == array.pattern_sha256
    # And, independently of the hash, a few blocks are the documented pattern.
    for i in (0, 1, array.length_bytes // 4096 - 1):
        assert bytes(content[i * 4096 : (i + 1) * 4096]) == pattern_block(array.name, i)


def test_raid6_syndrome_slots_follow_logical_order_for_left_symmetric(array: Array) -> None:
    if array.level != "raid6":
        pytest.skip("RAID-6 only")
    assert (array.slot_member == array.data_member).all()


# ==================================================================================================
# P and Q of every stripe
# ==================================================================================================


@pytest.mark.parametrize("kernel", KERNELS)
def test_parity_of_every_stripe_matches_md(
    array: Array, gathered: dict[str, object], kernel: str
) -> None:
    data = gathered["data"]
    p = gathered["p"]
    q = gathered["q"]
    assert isinstance(data, list)
    assert bytes(fastraid.xor_gen(data, kernel=kernel)) == bytes(p)  # type: ignore[arg-type]
    assert fastraid.xor_check(data, p, kernel=kernel)
    if q is not None:
        got_p, got_q = fastraid.pq_gen(data, kernel=kernel)
        assert bytes(got_p) == bytes(p)  # type: ignore[arg-type]
        assert bytes(got_q) == bytes(q)  # type: ignore[arg-type]
        assert fastraid.pq_check(data, p, q, kernel=kernel) == (True, True)


def test_parity_check_notices_a_changed_stripe(array: Array, gathered: dict[str, object]) -> None:
    data = list(gathered["data"])  # type: ignore[call-overload]
    tampered = data[0].copy()
    tampered[array.chunk * (array.stripes // 2) + 5] ^= 1
    data[0] = tampered
    assert not fastraid.xor_check(data, gathered["p"])
    if gathered["q"] is not None:
        assert fastraid.pq_check(data, gathered["p"], gathered["q"]) == (False, False)


# ==================================================================================================
# Recovery, whole array (all stripes in one call)
# ==================================================================================================


def _losses(array: Array) -> list[tuple[object, ...]]:
    members: list[object] = list(range(array.n_data)) + ["p"]
    if array.level == "raid6":
        members.append("q")
    singles = [(d,) for d in range(array.n_data)]
    if array.level != "raid6":
        return singles
    return singles + [
        pair for pair in itertools.combinations(members, 2) if any(isinstance(x, int) for x in pair)
    ]


def test_recover_every_chunk_of_every_stripe(array: Array, gathered: dict[str, object]) -> None:
    data = gathered["data"]
    assert isinstance(data, list)
    for lost in _losses(array):
        damaged = [None if j in lost else d for j, d in enumerate(data)]
        p = None if "p" in lost else gathered["p"]
        q = None if "q" in lost else gathered["q"]
        expected = [bytes(data[j]) for j in lost if isinstance(j, int)]
        assert [bytes(b) for b in fastraid.recover(damaged, p, q)] == expected, lost
        if array.level == "raid6" and len(lost) == 1:
            # A single data chunk via Q alone, as well as via P.
            assert [bytes(b) for b in fastraid.recover(damaged, None, q)] == expected, lost
            assert [bytes(b) for b in fastraid.recover(damaged, p, None)] == expected, lost


# ==================================================================================================
# Stripe by stripe on a seeded sample, zero-copy from the member images
# ==================================================================================================


def test_sampled_stripes_one_at_a_time(array: Array) -> None:
    rng = random.Random(f"{array.name}-stripes")
    sample = sorted(rng.sample(range(array.stripes), min(12, array.stripes)))
    sample = sorted({0, array.stripes - 1, *sample})
    for s in sample:
        roles = stripe_roles(array.level, array.layout, array.n, s)
        order = roles.slots or roles.data
        data = [array.chunk_view(m, s) for m in order]
        p = array.chunk_view(roles.p, s)
        if roles.q is None:
            assert fastraid.xor_check(data, p)
            assert bytes(fastraid.xor_gen(data)) == bytes(p)
            for x in range(len(data)):
                damaged = [None if j == x else d for j, d in enumerate(data)]
                out = [bytearray(array.chunk)]
                assert fastraid.recover(damaged, p, None, out)[0] is out[0]
                assert out[0] == data[x]
            continue
        q = array.chunk_view(roles.q, s)
        assert fastraid.pq_check(data, p, q) == (True, True)
        members: list[object] = [*range(len(data)), "p", "q"]
        for lost in itertools.combinations(members, 2):
            damaged = [None if j in lost else d for j, d in enumerate(data)]
            got = fastraid.recover(damaged, None if "p" in lost else p, None if "q" in lost else q)
            assert [bytes(b) for b in got] == [bytes(data[j]) for j in lost if isinstance(j, int)]
