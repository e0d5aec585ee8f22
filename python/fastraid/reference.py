"""A pure-Python reference of fastraid's parity API: the test oracle and the benchmark baseline.

Same functions and signatures as the Rust core (``xor_gen``, ``pq_gen``, ``xor_check``,
``pq_check``, ``recover``), written to be read rather than to be fast. ``threads`` and
``kernel`` are accepted and ignored (an unknown kernel name is still refused, so the error
behaviour matches). The same bad inputs raise the same exception classes
(:mod:`fastraid._errors`), with messages that start with the name of the offending argument.

The maths (``docs/md-format.md`` section 5.4, the Linux md / ISA-L convention):

* GF(2^8) with reduction polynomial x^8 + x^4 + x^3 + x^2 + 1 (``0x11d``), generator g = 2.
* P = D_0 xor D_1 xor ... xor D_{k-1}.
* Q = sum over j of g^j * D_j, j the index in ``data``; by Horner from the highest index down:
  ``q = D_{k-1}; for j = k-2 .. 0: q = 2*q xor D_j``.
* Recovery, with Pxy / Qxy the P / Q computed with the lost data blocks set to zero and
  ``dp = P xor Pxy``, ``dq = Q xor Qxy``:

  - one data block x lost, P present: ``D_x = dp``;
  - one data block x lost (and P), Q present: ``dq = g^x * D_x``, so ``D_x = dq * g^-x``;
  - two data blocks x < y lost: ``dp = D_x + D_y`` and ``dq = g^x D_x + g^y D_y``.
    Substituting ``D_x = dp + D_y`` into the second gives
    ``dq = g^x dp + (g^x + g^y) D_y``, hence
    ``D_y = (dq + g^x dp) / (g^x + g^y) = dp * (g^(y-x) + 1)^-1 + dq * (g^x + g^y)^-1``
    and ``D_x = dp + D_y``. (``+`` is xor; ``g^x != g^y`` because x != y < 255.)

Byte-wise work is done on whole blocks with two tricks that keep the code short: xor of two
blocks through ``int.from_bytes`` (Python's big integers xor a whole block at once), and
multiplication of a block by a constant ``c`` through ``bytes.translate`` with the 256-entry
table ``[c * b for b in 0..255]``.
"""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING, Any

from fastraid._errors import BufferTypeError, InvalidArgumentError, TooManyFailuresError

if TYPE_CHECKING:
    from typing_extensions import Buffer

__all__ = [
    "GF_EXP",
    "GF_LOG",
    "GF_POLY",
    "KERNEL_NAMES",
    "MAX_Q_BLOCKS",
    "MAX_THREADS",
    "gf_div",
    "gf_inv",
    "gf_mul",
    "gf_mul_block",
    "gf_pow",
    "pq_check",
    "pq_gen",
    "q_syndrome",
    "recover",
    "xor_blocks",
    "xor_check",
    "xor_gen",
]

# ==================================================================================================
# GF(2^8)
# ==================================================================================================

#: The reduction polynomial x^8 + x^4 + x^3 + x^2 + 1.
GF_POLY = 0x11D


def _build_tables() -> tuple[tuple[int, ...], tuple[int, ...]]:
    """``exp[i] = g^i`` for i in 0..254 (g = 2 generates the 255 non-zero elements) and
    ``log[exp[i]] = i``; ``log[0]`` is unused and left 0."""
    exp = [0] * 255
    log = [0] * 256
    x = 1
    for i in range(255):
        exp[i] = x
        log[x] = i
        x <<= 1  # multiply by g = 2 ...
        if x & 0x100:
            x ^= GF_POLY  # ... and reduce modulo the polynomial
    assert x == 1, "2 must generate the multiplicative group"
    return tuple(exp), tuple(log)


#: ``GF_EXP[i] = 2^i`` for 0 <= i < 255.
#: ``GF_LOG[a] = i`` with ``2^i = a`` for a != 0.
GF_EXP, GF_LOG = _build_tables()


def gf_mul(a: int, b: int) -> int:
    """Product of two field elements."""
    if a == 0 or b == 0:
        return 0
    return GF_EXP[(GF_LOG[a] + GF_LOG[b]) % 255]


def gf_pow(a: int, n: int) -> int:
    """``a`` to the power ``n`` (``n`` may be negative when ``a != 0``)."""
    if a == 0:
        if n < 0:
            raise ZeroDivisionError("0 has no inverse in GF(2^8)")
        return 1 if n == 0 else 0
    return GF_EXP[(GF_LOG[a] * n) % 255]


def gf_inv(a: int) -> int:
    """Multiplicative inverse; ``ZeroDivisionError`` for 0."""
    if a == 0:
        raise ZeroDivisionError("0 has no inverse in GF(2^8)")
    return GF_EXP[(255 - GF_LOG[a]) % 255]


def gf_div(a: int, b: int) -> int:
    """``a / b``; ``ZeroDivisionError`` when ``b`` is 0."""
    return gf_mul(a, gf_inv(b))


@functools.cache
def _mul_table(c: int) -> bytes:
    """The 256-byte translation table of "multiply by c"."""
    return bytes(gf_mul(c, b) for b in range(256))


# ==================================================================================================
# Whole-block operations (blocks are bytes-like; results are bytes)
# ==================================================================================================


def xor_blocks(blocks: Sequence[Buffer], length: int) -> bytes:
    """Byte-wise xor of equal-length blocks (``length`` zero bytes when there are none)."""
    acc = 0
    for block in blocks:
        acc ^= int.from_bytes(block, "little")
    return acc.to_bytes(length, "little")


def gf_mul_block(c: int, block: Buffer) -> bytes:
    """Every byte of ``block`` multiplied by the field element ``c``."""
    return bytes(block).translate(_mul_table(c))


def q_syndrome(blocks: Sequence[Buffer], length: int) -> bytes:
    """Q = sum of 2^j * blocks[j], by Horner's rule from the last block down."""
    q = bytes(length)
    for block in reversed(blocks):
        q = xor_blocks([gf_mul_block(2, q), block], length)
    return q


# ==================================================================================================
# Argument checking (mirrors the Rust core's rules and exception classes)
# ==================================================================================================

#: Kernel names the Rust core may know; the reference ignores the choice but, like the core,
#: refuses a name that is not one of these.
KERNEL_NAMES = ("scalar", "swar", "sse2", "ssse3", "avx2", "avx512", "neon")


#: Most worker threads a call may ask for (the Rust core's limit).
MAX_THREADS = 1024

#: Q gives block j the coefficient g^j, and g^255 = g^0, so Q tells apart at most 255 blocks.
MAX_Q_BLOCKS = 255


def _check_options(kernel: str | None, threads: int | None = None) -> None:
    if kernel is not None:
        if not isinstance(kernel, str):
            raise TypeError(f"kernel: expected a str or None, got {type(kernel).__name__}")
        if kernel not in KERNEL_NAMES:
            raise InvalidArgumentError(f"kernel: unknown kernel name {kernel!r}")
    if threads is not None:
        if not isinstance(threads, int):
            raise TypeError(f"threads: expected an int or None, got {type(threads).__name__}")
        if not 1 <= threads <= MAX_THREADS:
            raise InvalidArgumentError(
                f"threads: must be between 1 and {MAX_THREADS} (or None), got {threads}"
            )


def _check_q_blocks(count: int) -> None:
    if count > MAX_Q_BLOCKS:
        raise InvalidArgumentError(f"data: Q covers at most {MAX_Q_BLOCKS} blocks, got {count}")


def _view(obj: object, name: str, *, writable: bool) -> memoryview:
    """A flat byte view of a buffer-protocol object, refusing non-buffers, non-contiguous
    buffers and (when ``writable``) read-only ones."""
    try:
        view = memoryview(obj)  # type: ignore[arg-type]
    except TypeError:
        raise BufferTypeError(
            f"{name}: expected a buffer-protocol object, got {type(obj).__name__}"
        ) from None
    if not view.c_contiguous:
        raise BufferTypeError(f"{name}: buffer is not C-contiguous")
    if writable and view.readonly:
        raise BufferTypeError(f"{name}: buffer is read-only, an output must be writable")
    if view.ndim != 1 or view.format != "B":
        view = view.cast("B")
    return view


def _as_list(items: Iterable[object], name: str) -> list[object]:
    """The items of an iterable of buffers (a single buffer or a str is refused)."""
    if isinstance(items, bytes | bytearray | memoryview):
        raise BufferTypeError(f"{name}: expected a sequence of buffers, got one buffer")
    try:
        return list(items)
    except TypeError:
        raise BufferTypeError(
            f"{name}: expected a sequence of buffers, got {type(items).__name__}"
        ) from None


def _data_views(data: Iterable[Buffer | None], *, allow_none: bool) -> list[memoryview | None]:
    blocks = _as_list(data, "data")
    if len(blocks) < 2:
        raise InvalidArgumentError(f"data: at least 2 data blocks are needed, got {len(blocks)}")
    views: list[memoryview | None] = []
    for i, block in enumerate(blocks):
        if block is None and allow_none:
            views.append(None)
        else:
            views.append(_view(block, f"data[{i}]", writable=False))
    return views


def _check_lengths(named: list[tuple[str, memoryview]], length: int) -> None:
    for name, view in named:
        if view.nbytes != length:
            raise InvalidArgumentError(
                f"{name}: block lengths differ ({view.nbytes} bytes, expected {length})"
            )


# CPython's Py_buffer (Include/pybuffer.h). Used only to learn where a buffer's bytes live, so
# that an output overlapping an input can be refused as the Rust core does.
class _PyBuffer(ctypes.Structure):
    _fields_ = [
        ("buf", ctypes.c_void_p),
        ("obj", ctypes.c_void_p),
        ("len", ctypes.c_ssize_t),
        ("itemsize", ctypes.c_ssize_t),
        ("readonly", ctypes.c_int),
        ("ndim", ctypes.c_int),
        ("format", ctypes.c_char_p),
        ("shape", ctypes.c_void_p),
        ("strides", ctypes.c_void_p),
        ("suboffsets", ctypes.c_void_p),
        ("internal", ctypes.c_void_p),
    ]


# Private prototypes: ``ctypes.pythonapi.X`` is one shared object whose ``argtypes`` other
# modules (fastraid._isal) set too, so it is not ours to configure.
_get_buffer = ctypes.PYFUNCTYPE(
    ctypes.c_int, ctypes.py_object, ctypes.POINTER(_PyBuffer), ctypes.c_int
)(("PyObject_GetBuffer", ctypes.pythonapi))
_release_buffer = ctypes.PYFUNCTYPE(None, ctypes.POINTER(_PyBuffer))(
    ("PyBuffer_Release", ctypes.pythonapi)
)


@contextmanager
def _span(view: memoryview) -> Iterator[tuple[int, int]]:
    """``(first address, end address)`` of a C-contiguous view's bytes, valid while held."""
    raw = _PyBuffer()
    _get_buffer(view, ctypes.byref(raw), 0)  # PyBUF_SIMPLE
    try:
        start = raw.buf or 0
        yield start, start + raw.len
    finally:
        _release_buffer(ctypes.byref(raw))


def _check_no_overlap(outputs: list[tuple[str, memoryview]], inputs: list[memoryview]) -> None:
    """Refuse an output sharing a byte with an input or with another output (empty buffers
    overlap nothing)."""
    with ExitStack() as stack:
        in_spans = [stack.enter_context(_span(v)) for v in inputs if v.nbytes]
        out_spans = [(name, stack.enter_context(_span(v))) for name, v in outputs if v.nbytes]
        for i, (name, (start, end)) in enumerate(out_spans):
            others = in_spans + [span for _, span in out_spans[:i]]
            for other_start, other_end in others:
                if start < other_end and other_start < end:
                    raise InvalidArgumentError(f"{name}: output overlaps an input or output")


def _output(obj: object, name: str, length: int) -> tuple[Any, memoryview]:
    """The object to return and a writable view of it; a new bytearray when ``obj`` is None."""
    if obj is None:
        fresh = bytearray(length)
        return fresh, memoryview(fresh)
    view = _view(obj, name, writable=True)
    _check_lengths([(name, view)], length)
    return obj, view


# ==================================================================================================
# The public API
# ==================================================================================================


def xor_gen(
    data: Iterable[Buffer],
    out: Buffer | None = None,
    *,
    threads: int | None = None,
    kernel: str | None = None,
) -> Any:
    """Xor of the equal-length buffers in ``data`` (at least two) into ``out``; returns ``out``
    or, when it is None, a new ``bytearray``."""
    _check_options(kernel, threads)
    views = [v for v in _data_views(data, allow_none=False) if v is not None]
    length = views[0].nbytes
    _check_lengths([(f"data[{i}]", v) for i, v in enumerate(views)], length)
    result, out_view = _output(out, "out", length)
    if out is not None:
        _check_no_overlap([("out", out_view)], views)
    out_view[:] = xor_blocks(views, length)
    return result


def pq_gen(
    data: Iterable[Buffer],
    p: Buffer | None = None,
    q: Buffer | None = None,
    *,
    threads: int | None = None,
    kernel: str | None = None,
) -> tuple[Any, Any]:
    """RAID-6 P and Q of ``data`` (at least two blocks); returns ``(p, q)``, each a new
    ``bytearray`` when not given."""
    _check_options(kernel, threads)
    views = [v for v in _data_views(data, allow_none=False) if v is not None]
    _check_q_blocks(len(views))
    length = views[0].nbytes
    _check_lengths([(f"data[{i}]", v) for i, v in enumerate(views)], length)
    p_result, p_view = _output(p, "p", length)
    q_result, q_view = _output(q, "q", length)
    given = [(name, v) for name, obj, v in (("p", p, p_view), ("q", q, q_view)) if obj is not None]
    _check_no_overlap(given, views)
    p_view[:] = xor_blocks(views, length)
    q_view[:] = q_syndrome(views, length)
    return p_result, q_result


def xor_check(data: Iterable[Buffer], p: Buffer, *, kernel: str | None = None) -> bool:
    """Whether ``p`` is the xor of ``data``."""
    _check_options(kernel)
    views = [v for v in _data_views(data, allow_none=False) if v is not None]
    length = views[0].nbytes
    p_view = _view(p, "p", writable=False)
    _check_lengths([(f"data[{i}]", v) for i, v in enumerate(views)] + [("p", p_view)], length)
    return xor_blocks(views, length) == p_view.tobytes()


def pq_check(
    data: Iterable[Buffer], p: Buffer, q: Buffer, *, kernel: str | None = None
) -> tuple[bool, bool]:
    """``(p_ok, q_ok)``: whether ``p`` and ``q`` are the P and Q of ``data``."""
    _check_options(kernel)
    views = [v for v in _data_views(data, allow_none=False) if v is not None]
    _check_q_blocks(len(views))
    length = views[0].nbytes
    p_view = _view(p, "p", writable=False)
    q_view = _view(q, "q", writable=False)
    named = [(f"data[{i}]", v) for i, v in enumerate(views)] + [("p", p_view), ("q", q_view)]
    _check_lengths(named, length)
    return (
        xor_blocks(views, length) == p_view.tobytes(),
        q_syndrome(views, length) == q_view.tobytes(),
    )


def recover(
    data: Sequence[Buffer | None],
    p: Buffer | None = None,
    q: Buffer | None = None,
    out: Iterable[Buffer] | None = None,
    *,
    threads: int | None = None,
    kernel: str | None = None,
) -> list[Any]:
    """Rebuild the lost data blocks (``None`` entries of ``data``) from the survivors and P
    and/or Q (``None`` when lost too). Up to two blocks among data + P + Q may be lost.

    Returns the rebuilt blocks in index order, written into ``out`` (one writable buffer per
    lost data block) when given, otherwise new bytearrays.
    """
    _check_options(kernel, threads)
    views = _data_views(data, allow_none=True)
    p_view = None if p is None else _view(p, "p", writable=False)
    q_view = None if q is None else _view(q, "q", writable=False)
    lost = [i for i, v in enumerate(views) if v is None]
    n_lost = len(lost) + (p_view is None) + (q_view is None)
    if n_lost > 2 and lost:
        missing = [f"data[{i}]" for i in lost]
        missing += [name for name, v in (("p", p_view), ("q", q_view)) if v is None]
        raise TooManyFailuresError(
            f"data: {n_lost} blocks lost ({', '.join(missing)}); P and Q rebuild at most 2"
        )

    survivors = [(f"data[{i}]", v) for i, v in enumerate(views) if v is not None]
    survivors += [(name, v) for name, v in (("p", p_view), ("q", q_view)) if v is not None]
    length = survivors[0][1].nbytes
    _check_lengths(survivors, length)

    if out is None:
        results: list[Any] = [bytearray(length) for _ in lost]
        out_views = [memoryview(r) for r in results]
    else:
        results = _as_list(out, "out")
        if len(results) != len(lost):
            raise InvalidArgumentError(
                f"out: {len(results)} buffers given for {len(lost)} lost data blocks"
            )
        out_views = [_view(o, f"out[{i}]", writable=True) for i, o in enumerate(results)]
        named_out = [(f"out[{i}]", v) for i, v in enumerate(out_views)]
        _check_lengths(named_out, length)
        _check_no_overlap(named_out, [v for _, v in survivors])

    if not lost:
        return results
    if len(lost) == 2 or p_view is None:
        _check_q_blocks(len(views))  # the rebuild needs Q

    # The survivors' P and Q with every lost data block taken as zero.
    zero = bytes(length)
    blocks = [zero if v is None else v for v in views]
    if len(lost) == 1:
        (x,) = lost
        if p_view is not None:
            rebuilt = [xor_blocks([p_view, xor_blocks(blocks, length)], length)]
        else:
            assert q_view is not None
            dq = xor_blocks([q_view, q_syndrome(blocks, length)], length)
            rebuilt = [gf_mul_block(gf_pow(2, -x), dq)]
    else:
        assert p_view is not None and q_view is not None
        x, y = lost
        dp = xor_blocks([p_view, xor_blocks(blocks, length)], length)
        dq = xor_blocks([q_view, q_syndrome(blocks, length)], length)
        gx, gy = gf_pow(2, x), gf_pow(2, y)
        d_y = xor_blocks(
            [
                gf_mul_block(gf_inv(gf_pow(2, y - x) ^ 1), dp),
                gf_mul_block(gf_inv(gx ^ gy), dq),
            ],
            length,
        )
        d_x = xor_blocks([dp, d_y], length)
        rebuilt = [d_x, d_y]

    for view, block in zip(out_views, rebuilt, strict=True):
        view[:] = block
    return results
