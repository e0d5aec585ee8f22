"""Parity and recovery throughput: fastraid against its peers, in one run.

Every (operation, k, size) is one pytest-benchmark group, ``"{op} k={k} {size}"``, holding one
benchmark per library (``extra_info["lib"]``):

=================  ======================================================================
``fastraid``       ``fastraid.xor_gen`` / ``pq_gen`` / ``recover``, active kernel, default
                   ``threads``
``fastraid[1t]``   the same with ``threads=1`` (the fair match for the single-threaded peers)
``fastraid[K]``    with ``kernel="K"``, for each K in ``FASTRAID_BENCH_KERNELS`` (comma-separated)
``reference``      ``fastraid.reference`` (pure Python), only at 4 KiB and 64 KiB
``numpy``          ``np.bitwise_xor.reduce``; P+Q in Horner form with a 256-entry ``mul2`` table
``isal``           ISA-L ``xor_gen`` / ``pq_gen`` through :mod:`fastraid._isal` (one ctypes
                   call of a prepared pointer array, ~0.3 us of overhead per call); in
                   the ``recover2`` groups it is ISA-L ``pq_gen`` at the same k and size, the
                   yardstick the recovery target is stated against
``pyeclib``        ``ECDriver(k, m=2, ec_type="isa_l_rs_vand").encode(k * size bytes)``, P+Q
                   only; its two parity fragments equal P and Q, behind an 80-byte header
=================  ======================================================================

All inputs and outputs are 64-byte aligned (one contiguous stripe of ``k`` blocks from
``fastraid._isal.aligned``); outputs are preallocated, so the timings leave out allocation.
Each library's output is checked once against a NumPy oracle, and ``extra_info["correct"]``
records the answer before the test asserts it, so a fast wrong answer shows in the table.

``pyproject.toml`` adds ``--benchmark-disable``: each case then runs once, as a plain test.
``FASTRAID_BENCH_QUICK=1`` keeps only the 4 KiB and 64 KiB sizes. ``tools/bench_table.py``
runs everything with timing on and renders ``docs/benchmarks.md``.
"""

from __future__ import annotations

import functools
import importlib
import itertools
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from fastraid import _isal

KiB = 1024
MiB = 1024 * KiB

QUICK = os.environ.get("FASTRAID_BENCH_QUICK", "") not in ("", "0")
SIZES = [4 * KiB, 64 * KiB] if QUICK else [4 * KiB, 64 * KiB, 1 * MiB, 16 * MiB]
KS = [2, 4, 8]
OPS = ["xor_gen", "pq_gen", "recover2"]
REFERENCE_MAX_SIZE = 64 * KiB
# Pure Python is slow: a fixed, small number of timed rounds keeps the run short.
REFERENCE_ROUNDS = 3

# FASTRAID_BENCH_KERNELS=avx2,ssse3 adds a "fastraid[avx2]"-style variant per named kernel.
EXTRA_KERNELS = [
    name.strip() for name in os.environ.get("FASTRAID_BENCH_KERNELS", "").split(",") if name.strip()
]
_VARIANTS = ["fastraid", "fastraid[1t]"] + [f"fastraid[{name}]" for name in EXTRA_KERNELS]

LIBS_BY_OP = {
    "xor_gen": [*_VARIANTS, "reference", "numpy", "isal"],
    "pq_gen": [*_VARIANTS, "reference", "numpy", "isal", "pyeclib"],
    "recover2": [*_VARIANTS, "reference", "isal"],
}


def size_label(size: int) -> str:
    return f"{size // MiB} MiB" if size >= MiB else f"{size // KiB} KiB"


# ==================================================================================================
# Optional imports: a missing peer skips its cases with a reason instead of failing collection
# ==================================================================================================


def _import(name: str) -> tuple[ModuleType | None, str]:
    try:
        return importlib.import_module(name), ""
    except Exception as exc:  # noqa: BLE001 - any import failure means "not available"
        return None, f"{name} not importable: {exc!r}"


fastraid, _FASTRAID_WHY = _import("fastraid")
if fastraid is not None and not hasattr(fastraid, "pq_gen"):
    fastraid, _FASTRAID_WHY = None, "fastraid has no pq_gen (Rust core not built?)"
reference, _REFERENCE_WHY = _import("fastraid.reference")


def _pyeclib_driver(k: int) -> Any:
    from pyeclib.ec_iface import ECDriver

    return ECDriver(k=k, m=2, ec_type="isa_l_rs_vand")


# ==================================================================================================
# Test data and the NumPy oracle
# ==================================================================================================


def _gf_mul2_table() -> np.ndarray:
    x = np.arange(256, dtype=np.uint16) << 1
    return (x ^ np.where(x & 0x100, 0x11D, 0)).astype(np.uint8)


MUL2 = _gf_mul2_table()


@dataclass
class Stripe:
    k: int
    size: int
    stripe: memoryview  # k * size bytes, 64-byte aligned
    blocks: list[memoryview]  # k aligned slices of it
    matrix: np.ndarray  # (k, size) uint8 view of the same memory
    p: bytes  # expected P
    q: bytes  # expected Q
    p_buf: memoryview  # P and Q in aligned buffers, inputs of recover
    q_buf: memoryview


def numpy_xor(matrix: np.ndarray, out: np.ndarray) -> np.ndarray:
    return np.bitwise_xor.reduce(matrix, axis=0, out=out)


def numpy_pq(matrix: np.ndarray, p: np.ndarray, q: np.ndarray, tmp: np.ndarray) -> None:
    """P = XOR of the rows; Q = sum 2**j * D_j in Horner form, from the last row down:
    ``q = D_{k-1}; for j = k-2 .. 0: q = mul2[q] ^ D_j``."""
    np.bitwise_xor.reduce(matrix, axis=0, out=p)
    q[:] = matrix[-1]
    for j in range(matrix.shape[0] - 2, -1, -1):
        np.take(MUL2, q, out=tmp)
        np.bitwise_xor(tmp, matrix[j], out=q)


@functools.lru_cache(maxsize=1)  # the 16 MiB x 8 stripe is 128 MiB: keep only the current one
def make_stripe(k: int, size: int) -> Stripe:
    buf = _isal.aligned(k * size)
    matrix = np.frombuffer(buf, dtype=np.uint8).reshape(k, size)
    matrix[:] = np.random.default_rng(k * 1_000_003 + size).integers(
        0, 256, size=(k, size), dtype=np.uint8
    )
    p = np.empty(size, np.uint8)
    q = np.empty(size, np.uint8)
    numpy_pq(matrix, p, q, np.empty(size, np.uint8))
    p_buf, q_buf = _isal.aligned(size), _isal.aligned(size)
    p_buf[:] = p.tobytes()
    q_buf[:] = q.tobytes()
    blocks = [buf[j * size : (j + 1) * size] for j in range(k)]
    return Stripe(k, size, buf, blocks, matrix, p.tobytes(), q.tobytes(), p_buf, q_buf)


def lost_pair(k: int) -> tuple[int, int]:
    """The two data blocks the recover2 cases drop: the first and the last."""
    return 0, k - 1


# ==================================================================================================
# One runner per (op, lib): returns (function to time, check of its result)
# ==================================================================================================

Runner = tuple[Callable[[], Any], Callable[[Any], bool]]


def _same(buf: Any, expected: bytes) -> bool:
    return bytes(memoryview(buf).cast("B")) == expected


def _bind(func: Callable[..., Any], lib: str, *args: Any) -> Callable[[], Any]:
    """``func(*args)`` as a zero-argument callable that adds as little as possible to the
    timing (``functools.partial`` with positional arguments is a C-level vectorcall, like
    ``PreparedCall.raw`` for ISA-L); ``threads=1`` for the ``fastraid[1t]`` variant."""
    if lib.startswith("fastraid[") and lib != "fastraid[1t]":
        kernel = lib[len("fastraid[") : -1]
        return lambda: func(*args, kernel=kernel)  # ~0.1 us more than partial, see below
    if lib != "fastraid[1t]":
        return functools.partial(func, *args)
    # partial() with a keyword builds a dict per call (~0.15 us); a call site does not.
    if len(args) == 2:
        a, b = args
        return lambda: func(a, b, threads=1)
    if len(args) == 3:
        a, b, c = args
        return lambda: func(a, b, c, threads=1)
    a, b, c, d = args
    return lambda: func(a, b, c, d, threads=1)


def runner(op: str, lib: str, s: Stripe) -> Runner:
    size = s.size
    if op == "xor_gen":
        out = _isal.aligned(size)
        check = functools.partial(lambda _r, o: _same(o, s.p), o=out)
        if lib.startswith("fastraid") or lib == "reference":
            mod = reference if lib == "reference" else fastraid
            assert mod is not None
            return _bind(mod.xor_gen, lib, s.blocks, out), check
        if lib == "numpy":
            o = np.frombuffer(out, np.uint8)
            return (lambda: numpy_xor(s.matrix, o)), check
        if lib == "isal":
            call = _isal.prepare_xor_gen(s.blocks, out)
            # The check keeps `call` (and its buffer exports) alive while `call.raw` is timed.
            return call.raw, lambda status, _call=call: status == 0 and _same(out, s.p)
    if op == "pq_gen" or (op == "recover2" and lib == "isal"):
        p, q = _isal.aligned(size), _isal.aligned(size)

        def check_pq(_r: Any) -> bool:
            return _same(p, s.p) and _same(q, s.q)

        if lib.startswith("fastraid") or lib == "reference":
            mod = reference if lib == "reference" else fastraid
            assert mod is not None
            return _bind(mod.pq_gen, lib, s.blocks, p, q), check_pq
        if lib == "numpy":
            pa, qa = np.frombuffer(p, np.uint8), np.frombuffer(q, np.uint8)
            tmp = np.empty(size, np.uint8)
            return (lambda: numpy_pq(s.matrix, pa, qa, tmp)), check_pq
        if lib == "isal":
            call = _isal.prepare_pq_gen(s.blocks, p, q)
            return call.raw, lambda status, _call=call: status == 0 and check_pq(None)
        if lib == "pyeclib":
            driver = _pyeclib_driver(s.k)
            joined = bytes(s.stripe)  # pyeclib wants bytes; it copies into its own buffers

            def check_frags(frags: Sequence[bytes]) -> bool:
                return frags[s.k][-size:] == s.p and frags[s.k + 1][-size:] == s.q

            return (lambda: driver.encode(joined)), check_frags
    if op == "recover2":
        x, y = lost_pair(s.k)
        degraded: list[memoryview | None] = list(s.blocks)
        degraded[x] = degraded[y] = None
        mod = reference if lib == "reference" else fastraid
        assert mod is not None
        want = [bytes(s.blocks[x]), bytes(s.blocks[y])]

        def check_rec(result: Any) -> bool:
            got = [bytes(memoryview(b).cast("B")) for b in result if b is not None]
            if len(got) == s.k:  # a full data list came back
                got = [got[x], got[y]]
            return got == want

        outs = [_isal.aligned(size), _isal.aligned(size)]
        return _bind(mod.recover, lib, degraded, s.p_buf, s.q_buf, outs), check_rec
    raise AssertionError(f"no runner for {op} / {lib}")


# ==================================================================================================
# The benchmark
# ==================================================================================================


def _cases() -> list[Any]:
    cases = []
    for op, k, size in itertools.product(OPS, KS, SIZES):
        for lib in LIBS_BY_OP[op]:
            marks = []
            if lib.startswith("fastraid") and fastraid is None:
                marks.append(pytest.mark.skip(reason=_FASTRAID_WHY))
            elif lib == "reference" and reference is None:
                marks.append(pytest.mark.skip(reason=_REFERENCE_WHY))
            elif lib == "reference" and size > REFERENCE_MAX_SIZE:
                marks.append(
                    pytest.mark.skip(reason="pure-Python reference: 4 KiB and 64 KiB only (slow)")
                )
            elif lib in ("isal", "pyeclib") and not _isal.available():
                marks.append(pytest.mark.skip(reason="ISA-L (pyeclib wheel) not installed"))
            case_id = f"{op}-k{k}-{size_label(size).replace(' ', '')}-{lib}"
            cases.append(pytest.param(op, k, size, lib, id=case_id, marks=marks))
    return cases


@pytest.mark.parametrize(("op", "k", "size", "lib"), _cases())
def test_parity(benchmark: Any, op: str, k: int, size: int, lib: str) -> None:
    s = make_stripe(k, size)
    func, check = runner(op, lib, s)
    benchmark.group = f"{op} k={k} {size_label(size)}"
    benchmark.extra_info.update(
        {"lib": lib, "op": op, "k": k, "size": size, "bytes_read": k * size}
    )
    if lib.startswith("fastraid") and fastraid is not None:
        variant = lib[len("fastraid[") : -1] if lib.startswith("fastraid[") else ""
        named = variant if variant and variant != "1t" else None
        benchmark.extra_info["kernel"] = named or fastraid.kernels()["active"]
        benchmark.extra_info["threads"] = 1 if lib == "fastraid[1t]" else None
    if op == "recover2":
        benchmark.extra_info["lost"] = list(lost_pair(k))
        if lib == "isal":
            benchmark.extra_info["note"] = "ISA-L pq_gen (the recovery yardstick)"
    if lib == "pyeclib":
        benchmark.extra_info["fragment_size"] = size + 80
    if lib == "reference":
        result = benchmark.pedantic(func, rounds=REFERENCE_ROUNDS, iterations=1)
    else:
        result = benchmark(func)
    correct = bool(check(result))
    if lib == "pyeclib":
        benchmark.extra_info["fragment_size"] = len(result[0])
    benchmark.extra_info["correct"] = correct
    assert correct, f"{lib} computed a wrong {op} for k={k}, size={size}"
