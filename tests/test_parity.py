"""Every parity kernel against fastraid.reference and against kernel="scalar".

Parametrised over ``fastraid.kernels()["available"]`` (read at import), each kernel forced
with ``kernel=``. Sizes cover 0, 1, odd lengths and every vector width boundary +-1; inputs
are also unaligned memoryview slices of a larger bytearray, numpy arrays, mmaps, bytes and
bytearrays. Recovery is checked for every loss pattern (single data, data+data, data+P,
data+Q, P+Q) and every data-block count 2..32.
"""

from __future__ import annotations

import itertools
import mmap
import os
import random
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

import fastraid
import numpy as np
import pytest
from fastraid import reference as ref
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

KERNELS: list[str] = list(fastraid.kernels()["available"])

# Vector widths 16/32/64 and the 128/256-byte unrolled loops, each +-1, plus small odd sizes.
BOUNDARY_SIZES = sorted(
    {0, 1, 2, 3, 5, 7, 8, 9}
    | {w + d for w in (16, 32, 64, 128, 256, 512, 1024, 4096) for d in (-1, 0, 1)}
    | {w * 3 + 7 for w in (16, 32, 64)}
)
LARGE_SIZES = [65_535, 65_536 + 1, 131_072 - 1, 262_144 + 3, 300_007]

SETTINGS = settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _fill(rng: random.Random, n: int, kind: str) -> bytes:
    if kind == "zeros":
        return bytes(n)
    if kind == "ones":
        return b"\xff" * n
    if kind == "high":  # every byte has bit 7 set: exercises the 0x1d reduction
        return bytes(0x80 | b for b in rng.randbytes(n))
    return rng.randbytes(n)


def _blocks(seed: int, k: int, size: int, offsets: Sequence[int], kind: str) -> list[Any]:
    """``k`` blocks of ``size`` bytes, block i starting ``offsets[i]`` bytes into its own
    larger bytearray (so most are unaligned memoryview slices)."""
    rng = random.Random(seed)
    out: list[Any] = []
    for i in range(k):
        off = offsets[i % len(offsets)]
        backing = bytearray(rng.randbytes(off)) + _fill(rng, size, kind) + rng.randbytes(5)
        out.append(memoryview(backing)[off : off + size] if off or i % 2 else bytes(backing[:size]))
    return out


def _out_buffer(size: int, offset: int) -> memoryview:
    """A writable, unaligned output view, pre-filled with garbage."""
    backing = bytearray(b"\xa5" * (size + offset + 3))
    return memoryview(backing)[offset : offset + size]


sizes = st.one_of(
    st.sampled_from(BOUNDARY_SIZES),
    st.integers(0, 5000),
    st.sampled_from(LARGE_SIZES),
)
counts = st.integers(2, 32)
offsets = st.lists(st.integers(0, 63), min_size=1, max_size=8)
kinds = st.sampled_from(["random", "random", "zeros", "ones", "high"])
seeds = st.integers(0, 2**32 - 1)


# ==================================================================================================
# Generation and checks, hypothesis
# ==================================================================================================


@pytest.mark.parametrize("kernel", KERNELS)
@SETTINGS
@given(seed=seeds, k=counts, size=sizes, offs=offsets, kind=kinds, use_out=st.booleans())
def test_xor_gen_matches_reference_and_scalar(
    kernel: str, seed: int, k: int, size: int, offs: list[int], kind: str, use_out: bool
) -> None:
    data = _blocks(seed, k, size, offs, kind)
    expected = bytes(ref.xor_gen(data))
    assert bytes(fastraid.xor_gen(data, kernel="scalar")) == expected
    if use_out:
        out = _out_buffer(size, offs[0])
        assert fastraid.xor_gen(data, out, kernel=kernel) is out
        assert bytes(out) == expected
    else:
        got = fastraid.xor_gen(data, kernel=kernel)
        assert isinstance(got, bytearray)
        assert bytes(got) == expected
    assert fastraid.xor_check(data, expected, kernel=kernel)


@pytest.mark.parametrize("kernel", KERNELS)
@SETTINGS
@given(seed=seeds, k=counts, size=sizes, offs=offsets, kind=kinds, use_out=st.booleans())
def test_pq_gen_matches_reference_and_scalar(
    kernel: str, seed: int, k: int, size: int, offs: list[int], kind: str, use_out: bool
) -> None:
    data = _blocks(seed, k, size, offs, kind)
    ref_p, ref_q = (bytes(x) for x in ref.pq_gen(data))
    sp, sq = fastraid.pq_gen(data, kernel="scalar")
    assert (bytes(sp), bytes(sq)) == (ref_p, ref_q)
    if use_out:
        p, q = _out_buffer(size, offs[-1]), _out_buffer(size, 63 - offs[-1])
        got_p, got_q = fastraid.pq_gen(data, p, q, kernel=kernel)
        assert got_p is p and got_q is q
    else:
        p, q = fastraid.pq_gen(data, kernel=kernel)
        assert isinstance(p, bytearray) and isinstance(q, bytearray)
    assert (bytes(p), bytes(q)) == (ref_p, ref_q)
    assert fastraid.pq_check(data, ref_p, ref_q, kernel=kernel) == (True, True)


@pytest.mark.parametrize("kernel", KERNELS)
@SETTINGS
@given(
    seed=seeds,
    k=counts,
    size=sizes.filter(lambda n: n > 0),
    offs=offsets,
    where=st.floats(0, 1, exclude_max=True),
    bit=st.integers(0, 7),
)
def test_checks_find_a_single_flipped_bit(
    kernel: str, seed: int, k: int, size: int, offs: list[int], where: float, bit: int
) -> None:
    data = _blocks(seed, k, size, offs, "random")
    p, q = ref.pq_gen(data)
    pos = int(where * size)
    bad_p, bad_q = bytearray(p), bytearray(q)
    bad_p[pos] ^= 1 << bit
    bad_q[pos] ^= 1 << bit
    assert fastraid.xor_check(data, p, kernel=kernel)
    assert not fastraid.xor_check(data, bad_p, kernel=kernel)
    assert fastraid.pq_check(data, p, q, kernel=kernel) == (True, True)
    assert fastraid.pq_check(data, bad_p, q, kernel=kernel) == (False, True)
    assert fastraid.pq_check(data, p, bad_q, kernel=kernel) == (True, False)
    assert fastraid.pq_check(data, bad_p, bad_q, kernel=kernel) == (False, False)
    assert fastraid.xor_check(data, bad_p, kernel="scalar") is False


# ==================================================================================================
# Recovery, hypothesis: random loss patterns, random sizes
# ==================================================================================================


def _loss_patterns(k: int) -> list[tuple[object, ...]]:
    """Every pattern of one or two losses among data 0..k-1, P and Q that loses data."""
    members: list[object] = [*range(k), "p", "q"]
    patterns = [(d,) for d in range(k)]
    patterns += [
        pair for pair in itertools.combinations(members, 2) if any(isinstance(x, int) for x in pair)
    ]
    return patterns


def _check_recover(
    kernel: str,
    data: Sequence[Any],
    p: Any,
    q: Any,
    lost: tuple[object, ...],
    out: list[Any] | None = None,
    **kwargs: Any,
) -> None:
    damaged = [None if i in lost else d for i, d in enumerate(data)]
    p_arg = None if "p" in lost else p
    q_arg = None if "q" in lost else q
    expected = [bytes(data[i]) for i in lost if isinstance(i, int)]
    got = fastraid.recover(damaged, p_arg, q_arg, out, kernel=kernel, **kwargs)
    assert isinstance(got, list)
    assert [bytes(g) for g in got] == expected, (kernel, lost)
    if out is not None:
        assert all(g is o for g, o in zip(got, out, strict=True))


@pytest.mark.parametrize("kernel", KERNELS)
@SETTINGS
@given(
    seed=seeds,
    k=counts,
    size=sizes,
    offs=offsets,
    kind=kinds,
    pick=st.randoms(use_true_random=False),
    use_out=st.booleans(),
)
def test_recover_random_losses(
    kernel: str,
    seed: int,
    k: int,
    size: int,
    offs: list[int],
    kind: str,
    pick: random.Random,
    use_out: bool,
) -> None:
    data = _blocks(seed, k, size, offs, kind)
    p, q = (bytes(x) for x in ref.pq_gen(data))
    lost = pick.choice(_loss_patterns(k))
    n_data_lost = sum(isinstance(x, int) for x in lost)
    out = [_out_buffer(size, offs[0]) for _ in range(n_data_lost)] if use_out else None
    _check_recover(kernel, data, p, q, lost, out)
    # The reference agrees (it is the oracle for the generation tests above).
    damaged = [None if i in lost else d for i, d in enumerate(data)]
    got = ref.recover(damaged, None if "p" in lost else p, None if "q" in lost else q)
    assert [bytes(g) for g in got] == [bytes(data[i]) for i in lost if isinstance(i, int)]


# ==================================================================================================
# Exhaustive: every block count 2..32, every loss pattern
# ==================================================================================================


@pytest.mark.parametrize("kernel", KERNELS)
def test_every_block_count_and_boundary_size(kernel: str) -> None:
    """pq_gen / xor_gen for k = 2..32 at every boundary size, against scalar (and the
    reference for a subset), unaligned."""
    rng = random.Random(kernel)
    for k in range(2, 33):
        for size in BOUNDARY_SIZES:
            data = _blocks(rng.getrandbits(32), k, size, [k % 64, 1 + size % 63], "random")
            p, q = fastraid.pq_gen(data, kernel=kernel)
            sp, sq = fastraid.pq_gen(data, kernel="scalar")
            assert (p, q) == (sp, sq), (k, size)
            assert fastraid.xor_gen(data, kernel=kernel) == sp, (k, size)
            if size in (0, 1, 17, 63, 65, 255, 257, 4097) or k in (2, 3, 31, 32):
                rp, rq = ref.pq_gen(data)
                assert (bytes(p), bytes(q)) == (bytes(rp), bytes(rq)), (k, size)


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("size", [0, 1, 67, 257])
def test_recover_every_loss_pattern_every_block_count(kernel: str, size: int) -> None:
    rng = random.Random(f"{kernel}-{size}")
    for k in range(2, 33):
        data = _blocks(rng.getrandbits(32), k, size, [1 + k % 63, 0, 33], "random")
        p, q = fastraid.pq_gen(data, kernel="scalar")
        for lost in _loss_patterns(k):
            _check_recover(kernel, data, p, q, lost)


def test_recover_with_nothing_lost_returns_empty_list() -> None:
    data = [b"abc", b"def", b"ghi"]
    p, q = ref.pq_gen(data)
    for kernel in KERNELS:
        assert fastraid.recover(data, p, q, kernel=kernel) == []
        assert fastraid.recover(data, None, None, kernel=kernel) == []
        assert fastraid.recover(data, p, q, [], kernel=kernel) == []


# ==================================================================================================
# Threads
# ==================================================================================================


@pytest.mark.parametrize("kernel", KERNELS)
def test_threads_give_the_same_result(kernel: str) -> None:
    size = 4 * 1024 * 1024 + 4099  # > 4 MiB, not a multiple of anything
    rng = random.Random(5)
    data = [rng.randbytes(size) for _ in range(5)]
    base_p, base_q = fastraid.pq_gen(data, kernel="scalar", threads=1)
    base_x = fastraid.xor_gen(data, kernel="scalar", threads=1)
    assert base_x == base_p
    for threads in (1, 2, 3, None):
        assert fastraid.xor_gen(data, kernel=kernel, threads=threads) == base_x, threads
        assert fastraid.pq_gen(data, kernel=kernel, threads=threads) == (base_p, base_q), threads
    for lost in [(1, 3), (0, "p"), (4, "q"), (2,)]:
        for threads in (1, 2):
            _check_recover(kernel, data, base_p, base_q, lost, threads=threads)
    # The scalar baseline agrees with the reference.
    rp, rq = ref.pq_gen(data)
    assert (bytes(base_p), bytes(base_q)) == (bytes(rp), bytes(rq))


# ==================================================================================================
# Buffer types: numpy, mmap, bytes vs bytearray
# ==================================================================================================


def _random_arrays(k: int, size: int, seed: int) -> list[np.ndarray]:
    gen = np.random.default_rng(seed)
    return [gen.integers(0, 256, size, dtype=np.uint8) for _ in range(k)]


@pytest.mark.parametrize("kernel", KERNELS)
def test_numpy_inputs_and_outputs(kernel: str) -> None:
    arrays = _random_arrays(6, 10_001, 1)
    as_bytes = [a.tobytes() for a in arrays]
    rp, rq = (bytes(x) for x in ref.pq_gen(as_bytes))
    p = np.zeros(10_001, dtype=np.uint8)
    q = np.zeros(10_001, dtype=np.uint8)
    got_p, got_q = fastraid.pq_gen(arrays, p, q, kernel=kernel)
    assert got_p is p and got_q is q
    assert (p.tobytes(), q.tobytes()) == (rp, rq)
    out = np.full(10_001, 7, dtype=np.uint8)
    assert fastraid.xor_gen(arrays, out, kernel=kernel) is out
    assert out.tobytes() == rp
    assert fastraid.pq_check(arrays, p, q, kernel=kernel) == (True, True)
    assert fastraid.xor_check(arrays, p, kernel=kernel)
    # Slices of one big 2-D array: rows are contiguous, offsets unaligned.
    big = np.frombuffer(bytes(1) + b"".join(as_bytes), dtype=np.uint8)[1:].reshape(6, 10_001)
    assert bytes(fastraid.xor_gen(list(big), kernel=kernel)) == rp
    # Recovery into numpy outputs.
    rebuilt = [np.zeros(10_001, dtype=np.uint8) for _ in range(2)]
    damaged = [None, arrays[1], arrays[2], None, arrays[4], arrays[5]]
    got = fastraid.recover(damaged, p, q, rebuilt, kernel=kernel)
    assert got[0] is rebuilt[0] and got[1] is rebuilt[1]
    assert rebuilt[0].tobytes() == as_bytes[0] and rebuilt[1].tobytes() == as_bytes[3]


@pytest.mark.parametrize("kernel", KERNELS)
def test_mmap_inputs_and_outputs(kernel: str, tmp_path: Any) -> None:
    size = 3 * 4096 + 5
    rng = random.Random(2)
    blocks = [rng.randbytes(size) for _ in range(4)]
    path = tmp_path / "blocks.bin"
    path.write_bytes(b"".join(blocks))
    rp, rq = (bytes(x) for x in ref.pq_gen(blocks))
    with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
        view = memoryview(m)
        try:
            data = [view[i * size : (i + 1) * size] for i in range(4)]
            anon_p, anon_q = mmap.mmap(-1, size), mmap.mmap(-1, size)
            got = fastraid.pq_gen(data, anon_p, anon_q, kernel=kernel)
            assert got[0] is anon_p and got[1] is anon_q
            assert (anon_p[:], anon_q[:]) == (rp, rq)
            assert fastraid.pq_check(data, anon_p, anon_q, kernel=kernel) == (True, True)
            out = mmap.mmap(-1, size)
            assert fastraid.xor_gen(data, out, kernel=kernel) is out
            assert out[:] == rp
            rebuilt = fastraid.recover([data[0], None, data[2], data[3]], None, anon_q, [out])
            assert rebuilt[0] is out and out[:] == blocks[1]
            for d in data:
                d.release()
        finally:
            view.release()


@pytest.mark.parametrize("kernel", KERNELS)
def test_bytes_and_bytearray_mixed(kernel: str) -> None:
    rng = random.Random(3)
    blocks = [rng.randbytes(333) for _ in range(5)]
    mixed: list[Any] = [b if i % 2 else bytearray(b) for i, b in enumerate(blocks)]
    rp, rq = (bytes(x) for x in ref.pq_gen(blocks))
    for data in (blocks, [bytearray(b) for b in blocks], mixed):
        assert bytes(fastraid.xor_gen(data, kernel=kernel)) == rp
        p, q = fastraid.pq_gen(data, kernel=kernel)
        assert (bytes(p), bytes(q)) == (rp, rq)
        assert fastraid.xor_check(data, rp, kernel=kernel)
        assert fastraid.pq_check(data, bytearray(rp), rq, kernel=kernel) == (True, True)
    # A tuple works as the sequence of blocks, too.
    assert bytes(fastraid.xor_gen(tuple(blocks), kernel=kernel)) == rp


def test_inputs_are_not_modified() -> None:
    rng = random.Random(4)
    blocks = [bytearray(rng.randbytes(1000)) for _ in range(4)]
    snapshot = [bytes(b) for b in blocks]
    for kernel in KERNELS:
        p, q = fastraid.pq_gen(blocks, kernel=kernel)
        fastraid.xor_gen(blocks, kernel=kernel)
        fastraid.recover([blocks[0], None, None, blocks[3]], p, q, kernel=kernel)
        fastraid.recover([blocks[0], None, blocks[2], blocks[3]], None, q, kernel=kernel)
    assert [bytes(b) for b in blocks] == snapshot


# ==================================================================================================
# Kernel selection
# ==================================================================================================


def test_kernels_report() -> None:
    info = fastraid.kernels()
    assert "scalar" in info["available"]
    assert info["active"] in info["available"]


@pytest.mark.parametrize("kernel", KERNELS)
def test_env_forces_the_default_kernel(kernel: str) -> None:
    env = dict(os.environ, FASTRAID_KERNEL=kernel)
    code = "import fastraid; print(fastraid.kernels()['active'])"
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == kernel
