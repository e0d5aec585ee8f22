"""Bad arguments raise the documented exception classes, naming the argument, and write
nothing. Run against the Rust core (``fastraid``) and the reference alike, so both agree."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import fastraid
import numpy as np
import pytest
from fastraid import (
    BufferTypeError,
    FastRaidError,
    InvalidArgumentError,
    TooManyFailuresError,
)
from fastraid import reference as ref

IMPLS = [pytest.param(fastraid, id="fastraid"), pytest.param(ref, id="reference")]

N = 16
GOOD = [bytes(range(N)), bytes(range(1, N + 1)), bytes(range(2, N + 2))]


def _prefilled(n: int = N) -> bytearray:
    return bytearray(b"\x5a" * n)


def test_hierarchy() -> None:
    assert issubclass(InvalidArgumentError, ValueError)
    assert issubclass(InvalidArgumentError, FastRaidError)
    assert issubclass(BufferTypeError, TypeError)
    assert issubclass(BufferTypeError, FastRaidError)
    assert issubclass(TooManyFailuresError, InvalidArgumentError)
    assert fastraid.FastRaidError is FastRaidError


# ==================================================================================================
# Data blocks (shared by every function)
# ==================================================================================================


def _call_each(impl: ModuleType, data: Any, **kwargs: Any) -> list[tuple[str, Any]]:
    """Every function applied to ``data`` (with good parity/outputs), as thunks."""
    return [
        ("xor_gen", lambda: impl.xor_gen(data, **kwargs)),
        ("pq_gen", lambda: impl.pq_gen(data, **kwargs)),
        ("xor_check", lambda: impl.xor_check(data, bytes(N), **kwargs)),
        ("pq_check", lambda: impl.pq_check(data, bytes(N), bytes(N), **kwargs)),
        ("recover", lambda: impl.recover(data, bytes(N), bytes(N), **kwargs)),
    ]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(
    ("data", "cls", "pattern"),
    [
        ([GOOD[0], GOOD[1][:-1]], InvalidArgumentError, r"data\[1\]"),
        ([GOOD[0], GOOD[1], b"x" * (N + 1)], InvalidArgumentError, r"data\[2\]"),
        ([GOOD[0]], InvalidArgumentError, r"data"),
        ([], InvalidArgumentError, r"data"),
        ([GOOD[0], "not a buffer" + "x" * 4], BufferTypeError, r"data\[1\]"),
        ([GOOD[0], 12345], BufferTypeError, r"data\[1\]"),
        ([GOOD[0], GOOD[1], memoryview(bytearray(2 * N))[::2]], BufferTypeError, r"data\[2\]"),
        ([GOOD[0], np.zeros(2 * N, dtype=np.uint8)[::2]], BufferTypeError, r"data\[1\]"),
        ([GOOD[0], np.zeros((N, 2), dtype=np.uint8)[:, 0]], BufferTypeError, r"data\[1\]"),
    ],
    ids=[
        "short-block",
        "long-block",
        "one-block",
        "no-blocks",
        "str",
        "int",
        "strided-memoryview",
        "strided-numpy",
        "numpy-column",
    ],
)
def test_bad_data(impl: ModuleType, data: list[Any], cls: type[Exception], pattern: str) -> None:
    base = ValueError if issubclass(cls, InvalidArgumentError) else TypeError
    for name, call in _call_each(impl, data):
        with pytest.raises(cls, match=pattern) as info:
            call()
        assert isinstance(info.value, base), name
        assert isinstance(info.value, FastRaidError), name


@pytest.mark.parametrize("impl", IMPLS)
def test_none_data_block_outside_recover(impl: ModuleType) -> None:
    data = [GOOD[0], None, GOOD[2]]
    for name, call in _call_each(impl, data)[:4]:
        with pytest.raises(BufferTypeError, match=r"data\[1\]"):
            call()
        assert name


@pytest.mark.parametrize("impl", IMPLS)
def test_data_not_a_sequence(impl: ModuleType) -> None:
    for bad in (42, None):
        with pytest.raises(TypeError):
            impl.xor_gen(bad)
        with pytest.raises(TypeError):
            impl.pq_gen(bad)


@pytest.mark.parametrize("impl", IMPLS)
def test_unknown_kernel(impl: ModuleType) -> None:
    for name, call in _call_each(impl, GOOD, kernel="no-such-kernel"):
        with pytest.raises(InvalidArgumentError, match="kernel") as info:
            call()
        assert isinstance(info.value, ValueError), name
    out = _prefilled()
    with pytest.raises(InvalidArgumentError, match="kernel"):
        impl.xor_gen(GOOD, out, kernel="no-such-kernel")
    assert out == _prefilled()


# ==================================================================================================
# Outputs
# ==================================================================================================


def _bad_outputs() -> list[Any]:
    """(buffer, class) pairs of unusable output buffers."""
    return [
        pytest.param(bytes(N), BufferTypeError, id="bytes-readonly"),
        pytest.param(memoryview(bytearray(N)).toreadonly(), BufferTypeError, id="readonly-view"),
        pytest.param(memoryview(bytearray(2 * N))[::2], BufferTypeError, id="strided-view"),
        pytest.param(np.zeros(2 * N, dtype=np.uint8)[::2], BufferTypeError, id="strided-numpy"),
        pytest.param("x" * N, BufferTypeError, id="str"),
        pytest.param(7, BufferTypeError, id="int"),
        pytest.param(bytearray(N - 1), InvalidArgumentError, id="short"),
        pytest.param(bytearray(N + 1), InvalidArgumentError, id="long"),
    ]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(("bad", "cls"), _bad_outputs())
def test_bad_xor_gen_out(impl: ModuleType, bad: Any, cls: type[Exception]) -> None:
    with pytest.raises(cls, match="out"):
        impl.xor_gen(GOOD, bad)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(("bad", "cls"), _bad_outputs())
@pytest.mark.parametrize("which", ["p", "q"])
def test_bad_pq_gen_outputs(impl: ModuleType, bad: Any, cls: type[Exception], which: str) -> None:
    good = _prefilled()
    args = {"p": bad, "q": good} if which == "p" else {"p": good, "q": bad}
    with pytest.raises(cls, match=rf"\b{which}\b"):
        impl.pq_gen(GOOD, **args)
    assert good == _prefilled()  # the good output was not written either
    with pytest.raises(cls, match=rf"\b{which}\b"):
        impl.pq_gen(GOOD, **{which: bad})


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(("bad", "cls"), _bad_outputs())
def test_bad_recover_out(impl: ModuleType, bad: Any, cls: type[Exception]) -> None:
    p, q = ref.pq_gen(GOOD)
    good = _prefilled()
    with pytest.raises(cls, match="out"):
        impl.recover([GOOD[0], None, GOOD[2]], p, q, [bad])
    with pytest.raises(cls, match="out"):
        impl.recover([None, GOOD[1], None], p, q, [good, bad])
    assert good == _prefilled()


# ==================================================================================================
# Parity inputs of the checks and of recover
# ==================================================================================================


@pytest.mark.parametrize("impl", IMPLS)
def test_bad_parity_inputs(impl: ModuleType) -> None:
    p, q = ref.pq_gen(GOOD)
    short, strided = bytes(N - 1), memoryview(bytearray(2 * N))[::2]
    for arg in ("p", "q"):
        other = q if arg == "p" else p
        pair = {arg: short, ("q" if arg == "p" else "p"): other}
        with pytest.raises(InvalidArgumentError, match=rf"\b{arg}\b"):
            impl.pq_check(GOOD, **pair)
        with pytest.raises(InvalidArgumentError, match=rf"\b{arg}\b"):
            impl.recover([GOOD[0], None, GOOD[2]], **pair)
        pair[arg] = strided
        with pytest.raises(BufferTypeError, match=rf"\b{arg}\b"):
            impl.pq_check(GOOD, **pair)
        with pytest.raises(BufferTypeError, match=rf"\b{arg}\b"):
            impl.recover([GOOD[0], None, GOOD[2]], **pair)
        pair[arg] = 3.5
        with pytest.raises(BufferTypeError, match=rf"\b{arg}\b"):
            impl.pq_check(GOOD, **pair)
        with pytest.raises(BufferTypeError, match=rf"\b{arg}\b"):
            impl.recover([GOOD[0], None, GOOD[2]], **pair)
    with pytest.raises(InvalidArgumentError, match=r"\bp\b"):
        impl.xor_check(GOOD, short)
    with pytest.raises(BufferTypeError, match=r"\bp\b"):
        impl.xor_check(GOOD, strided)
    with pytest.raises(BufferTypeError, match=r"\bp\b"):
        impl.xor_check(GOOD, None)


# ==================================================================================================
# Overlapping outputs
# ==================================================================================================


@pytest.mark.parametrize("impl", IMPLS)
def test_output_overlapping_an_input(impl: ModuleType) -> None:
    block = bytearray(GOOD[0])
    data = [block, GOOD[1], GOOD[2]]
    with pytest.raises(InvalidArgumentError, match="out") as info:
        impl.xor_gen(data, block)
    assert isinstance(info.value, ValueError)
    assert block == GOOD[0]
    with pytest.raises(InvalidArgumentError, match=r"\bp\b"):
        impl.pq_gen(data, p=block)
    with pytest.raises(InvalidArgumentError, match=r"\bq\b"):
        impl.pq_gen(data, q=block)
    assert block == GOOD[0]


@pytest.mark.parametrize("impl", IMPLS)
def test_partial_overlap_and_adjacent_slices(impl: ModuleType) -> None:
    backing = bytearray(b"".join(GOOD) + bytes(N))
    view = memoryview(backing)
    data = [view[i * N : (i + 1) * N] for i in range(3)]
    # An output starting half-way into the last input overlaps it ...
    with pytest.raises(InvalidArgumentError, match="out"):
        impl.xor_gen(data, view[2 * N + N // 2 : 3 * N + N // 2])
    assert bytes(backing[: 3 * N]) == b"".join(GOOD)
    # ... a read-only view of the output's memory is still the same memory ...
    out = bytearray(N)
    with pytest.raises(InvalidArgumentError, match="out"):
        impl.xor_gen([GOOD[0], memoryview(out).toreadonly()], out)
    # ... but the slice right after the inputs does not overlap.
    result = impl.xor_gen(data, view[3 * N : 4 * N])
    assert bytes(backing[3 * N :]) == bytes(ref.xor_gen(GOOD))
    assert result is not None


@pytest.mark.parametrize("impl", IMPLS)
def test_recover_out_overlapping_an_input(impl: ModuleType) -> None:
    p, q = (bytearray(x) for x in ref.pq_gen(GOOD))
    survivor = bytearray(GOOD[0])
    with pytest.raises(InvalidArgumentError, match="out"):
        impl.recover([survivor, None, GOOD[2]], p, q, [survivor])
    with pytest.raises(InvalidArgumentError, match="out"):
        impl.recover([GOOD[0], None, GOOD[2]], p, q, [p])
    with pytest.raises(InvalidArgumentError, match="out"):
        impl.recover([GOOD[0], None, GOOD[2]], None, q, [q])
    assert survivor == GOOD[0]
    assert (bytes(p), bytes(q)) == tuple(bytes(x) for x in ref.pq_gen(GOOD))


@pytest.mark.parametrize("impl", IMPLS)
def test_p_and_q_the_same_buffer(impl: ModuleType) -> None:
    shared = _prefilled()
    with pytest.raises(InvalidArgumentError, match=r"\b[pq]\b"):
        impl.pq_gen(GOOD, shared, shared)
    assert shared == _prefilled()


@pytest.mark.parametrize("impl", IMPLS)
def test_recover_two_outputs_the_same_buffer(impl: ModuleType) -> None:
    p, q = ref.pq_gen(GOOD)
    shared = _prefilled()
    with pytest.raises(InvalidArgumentError, match="out"):
        impl.recover([None, GOOD[1], None], p, q, [shared, shared])
    assert shared == _prefilled()


# ==================================================================================================
# recover: counts and too many failures
# ==================================================================================================


@pytest.mark.parametrize("impl", IMPLS)
def test_recover_wrong_out_count(impl: ModuleType) -> None:
    p, q = ref.pq_gen(GOOD)
    outs = [_prefilled(), _prefilled(), _prefilled()]
    for lost_data, count in [([GOOD[0], None, GOOD[2]], 0), ([GOOD[0], None, GOOD[2]], 2)]:
        with pytest.raises(InvalidArgumentError, match="out") as info:
            impl.recover(lost_data, p, q, outs[:count])
        assert isinstance(info.value, ValueError)
    with pytest.raises(InvalidArgumentError, match="out"):
        impl.recover([None, GOOD[1], None], p, q, outs[:1])
    with pytest.raises(InvalidArgumentError, match="out"):
        impl.recover(list(GOOD), p, q, outs[:1])
    assert outs == [_prefilled()] * 3


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(
    ("lost_data", "p_lost", "q_lost"),
    [
        ((0, 1), False, True),  # two data, no Q
        ((0, 2), True, False),  # two data, no P
        ((1,), True, True),  # one data, no parity at all
        ((0, 1, 2), False, False),  # three data
        ((0, 1), True, True),  # four in all
    ],
)
def test_too_many_failures(
    impl: ModuleType, lost_data: tuple[int, ...], p_lost: bool, q_lost: bool
) -> None:
    p, q = ref.pq_gen(GOOD)
    data = [None if i in lost_data else d for i, d in enumerate(GOOD)]
    outs = [_prefilled() for _ in lost_data]
    with pytest.raises(TooManyFailuresError) as info:
        impl.recover(data, None if p_lost else p, None if q_lost else q, outs)
    assert isinstance(info.value, InvalidArgumentError)
    assert isinstance(info.value, ValueError)
    assert outs == [_prefilled() for _ in lost_data]
    with pytest.raises(TooManyFailuresError):
        impl.recover(data, None if p_lost else p, None if q_lost else q)


@pytest.mark.parametrize("impl", IMPLS)
def test_recover_lengths_differ(impl: ModuleType) -> None:
    p, q = ref.pq_gen(GOOD)
    with pytest.raises(InvalidArgumentError, match=r"data\[2\]"):
        impl.recover([GOOD[0], None, GOOD[2][:-1]], p, q)
    with pytest.raises(InvalidArgumentError, match=r"\bq\b"):
        impl.recover([GOOD[0], None, GOOD[2]], p, bytes(q) + b"x")
    with pytest.raises(InvalidArgumentError, match=r"data"):
        impl.recover([None], p, q)
    with pytest.raises(BufferTypeError, match=r"data\[0\]"):
        impl.recover(["abc", None, GOOD[2]], p, q)


@pytest.mark.parametrize("impl", IMPLS)
def test_recover_with_nothing_lost_still_checks_lengths(impl: ModuleType) -> None:
    """ "Block length is taken from the surviving buffers": survivors that disagree are an
    error even when there is nothing to rebuild."""
    with pytest.raises(InvalidArgumentError, match=r"data\[1\]"):
        impl.recover([GOOD[0], GOOD[1][:-1], GOOD[2]], None, None)
    with pytest.raises(InvalidArgumentError, match=r"\bp\b"):
        impl.recover(list(GOOD), bytes(N + 3), None)


# ==================================================================================================
# Options and limits
# ==================================================================================================


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("threads", [0, -1, 1025])
def test_bad_thread_count(impl: ModuleType, threads: int) -> None:
    p, q = ref.pq_gen(GOOD)
    calls = [
        lambda: impl.xor_gen(GOOD, threads=threads),
        lambda: impl.pq_gen(GOOD, threads=threads),
        lambda: impl.recover([GOOD[0], None, GOOD[2]], p, q, threads=threads),
    ]
    for call in calls:
        with pytest.raises(InvalidArgumentError, match="threads"):
            call()


@pytest.mark.parametrize("impl", IMPLS)
def test_wrong_option_types(impl: ModuleType) -> None:
    with pytest.raises(TypeError):
        impl.xor_gen(GOOD, threads="2")
    with pytest.raises(TypeError):
        impl.xor_gen(GOOD, kernel=3)


@pytest.mark.parametrize("impl", IMPLS)
def test_q_covers_at_most_255_blocks(impl: ModuleType) -> None:
    many = [bytes([i % 256]) * 8 for i in range(256)]
    p = bytes(impl.xor_gen(many))  # P has no such limit
    assert impl.xor_check(many, p)
    with pytest.raises(InvalidArgumentError, match="data"):
        impl.pq_gen(many)
    with pytest.raises(InvalidArgumentError, match="data"):
        impl.pq_check(many, p, bytes(8))
    with pytest.raises(InvalidArgumentError, match="data"):
        impl.recover([None, *many[1:]], None, bytes(8))
    # One data block via P needs no Q.
    assert bytes(impl.recover([None, *many[1:]], p, bytes(8))[0]) == many[0]
    assert len(impl.pq_gen(many[:255])) == 2
