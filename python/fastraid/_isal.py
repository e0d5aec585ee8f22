"""A ctypes wrapper of Intel ISA-L's RAID functions, used as a yardstick by benchmarks and the demo.

fastraid does not depend on ISA-L. The ``pyeclib`` wheel happens to ship a copy of it
(``pyeclib.libs/libisal-pyeclib.so.2``, BSD-3-Clause), so when pyeclib is installed
(``pip install fastraid[demo]``) we can load that shared object with :mod:`ctypes` and call
the two functions of ISA-L's ``include/raid.h`` that fastraid competes with::

    int xor_gen(int vects, int len, void **array);   /* sources..., P          */
    int pq_gen(int vects, int len, void **array);    /* sources..., P, Q       */

``array`` holds the source pointers first and the parity pointer(s) last; both return 0 on
success. ISA-L's documented requirements, which this module checks before every call so a
misuse raises :class:`ValueError` instead of corrupting memory:

* every pointer (sources and parity) aligned to 32 bytes; :func:`aligned` gives 64, which
  also suits the AVX-512 kernels;
* at least two sources (ISA-L's ``xor_gen`` also refuses one);
* ``pq_gen``: ``len`` a multiple of 32 (``xor_gen`` takes any length);
* ``len`` fits in a C ``int`` (ISA-L takes ``int``, so at most 2 GiB - 1 per call).

Q follows the Linux/ISA-L convention that fastraid uses too: GF(2^8) with polynomial 0x11d,
``Q = sum(g**j * D_j)`` with ``g = 2`` and ``D_0`` the first source.

Only the pyeclib module's *location* is looked up (``importlib.util.find_spec`` and, failing
that, ``importlib.metadata``); pyeclib's C extension is never imported. ``FASTRAID_ISAL_LIB``
names another ``libisal`` to load instead (for example a system ``/usr/lib/libisal.so.2``).
"""

from __future__ import annotations

import ctypes
import functools
import importlib.metadata
import importlib.util
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

__all__ = [
    "ALIGNMENT",
    "IsalError",
    "PreparedCall",
    "address",
    "aligned",
    "available",
    "dispatched",
    "library_path",
    "pq_gen",
    "prepare_pq_gen",
    "prepare_xor_gen",
    "version",
    "xor_gen",
]

#: Alignment, in bytes, of the buffers :func:`aligned` returns.
ALIGNMENT = 64

# ISA-L's documented minimum: "Src and dest pointers must be aligned to 32B".
_ISAL_POINTER_ALIGN = 32
# pq_gen: "len ... Must be 32B aligned".
_ISAL_PQ_LEN_MULTIPLE = 32
_INT_MAX = 2**31 - 1

_LIB_NAME = "libisal-pyeclib.so.2"


class IsalError(RuntimeError):
    """ISA-L returned a non-zero status, or could not be loaded when a function was called."""


# ==================================================================================================
# Locating and loading the library
# ==================================================================================================


def _candidates() -> Iterator[Path]:
    env = os.environ.get("FASTRAID_ISAL_LIB")
    if env:
        yield Path(env)
    # 1. pyeclib's package directory -> its sibling "pyeclib.libs" (auditwheel's layout).
    try:
        spec = importlib.util.find_spec("pyeclib")
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            yield Path(location).parent / "pyeclib.libs" / _LIB_NAME
    # 2. The wheel's RECORD, wherever it installed the file.
    try:
        files = importlib.metadata.files("pyeclib") or []
    except importlib.metadata.PackageNotFoundError:
        files = []
    for file in files:
        if file.name.startswith("libisal") and ".so" in file.name:
            yield Path(str(file.locate()))


@functools.cache
def _load() -> tuple[ctypes.CDLL, Path] | None:
    for path in _candidates():
        if not path.is_file():
            continue
        try:
            lib = ctypes.CDLL(str(path))
        except OSError:
            continue
        for name in ("xor_gen", "pq_gen"):
            func = getattr(lib, name, None)
            if func is None:
                break
            func.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.POINTER(ctypes.c_void_p)]
            func.restype = ctypes.c_int
        else:
            return lib, path
    return None


def available() -> bool:
    """Whether an ISA-L shared library with ``xor_gen`` and ``pq_gen`` could be loaded."""
    return _load() is not None


def library_path() -> Path | None:
    """The path of the loaded ISA-L library, or ``None`` if there is none."""
    loaded = _load()
    return None if loaded is None else loaded[1]


def _lib() -> ctypes.CDLL:
    loaded = _load()
    if loaded is None:
        raise IsalError(
            "ISA-L not found: install pyeclib (pip install 'fastraid[demo]') "
            "or set FASTRAID_ISAL_LIB to a libisal.so"
        )
    return loaded[0]


def version() -> str | None:
    """ISA-L's version string (``isal_get_version_str``, ISA-L >= 2.31), if available."""
    loaded = _load()
    if loaded is None:
        return None
    func = getattr(loaded[0], "isal_get_version_str", None)
    if func is None:
        return None
    func.argtypes = []
    func.restype = ctypes.c_char_p
    raw = func()
    return raw.decode() if isinstance(raw, bytes) else None


_VARIANT_SUFFIXES = ("base", "sse", "avx", "avx2", "avx2_gfni", "avx512", "avx512_gfni", "neon")


def _follow_jump(addr: int) -> int | None:
    """If the code at ``addr`` is ``[endbr64] [bnd] jmp *disp32(%rip)`` (an ISA-L multibinary
    entry point or a PLT stub), the address stored in the slot it jumps through."""
    code = ctypes.string_at(addr, 12)
    pos = 4 if code.startswith(b"\xf3\x0f\x1e\xfa") else 0  # endbr64
    if code[pos : pos + 1] == b"\xf2":  # bnd prefix
        pos += 1
    if code[pos : pos + 2] != b"\xff\x25":
        return None
    disp = int.from_bytes(code[pos + 2 : pos + 6], "little", signed=True)
    target = ctypes.c_void_p.from_address(addr + pos + 6 + disp).value
    return target


def dispatched(name: str) -> str | None:
    """Which implementation ISA-L's run-time dispatcher picked for ``name`` (``"xor_gen"`` or
    ``"pq_gen"``) on this CPU, e.g. ``"pq_gen_avx512_gfni"``; ``None`` if it cannot tell.

    Best effort, x86-64 only: ISA-L's entry point jumps through a pointer that its first call
    sets to the chosen variant (possibly through a PLT stub); this follows those jumps until
    it reaches one of the exported variants.
    """
    loaded = _load()
    if loaded is None or name not in ("xor_gen", "pq_gen"):
        return None
    lib = loaded[0]
    known: dict[int, str] = {}
    for suffix in _VARIANT_SUFFIXES:
        func = getattr(lib, f"{name}_{suffix}", None)
        if func is not None:
            addr = ctypes.cast(func, ctypes.c_void_p).value
            if addr:
                known[addr] = f"{name}_{suffix}"
    try:
        # One call (on zero-length buffers) makes the dispatcher choose.
        bufs = [aligned(0) for _ in range(4)]
        (pq_gen if name == "pq_gen" else xor_gen)(bufs[:2], *bufs[2 : 4 if name == "pq_gen" else 3])
        addr = ctypes.cast(getattr(lib, name), ctypes.c_void_p).value
        for _ in range(4):
            if addr is None:
                return None
            if addr in known:
                return known[addr]
            addr = _follow_jump(addr)
    except (OSError, ValueError, IsalError):
        return None
    return None


# ==================================================================================================
# Buffers
# ==================================================================================================


def aligned(n: int, alignment: int = ALIGNMENT) -> memoryview:
    """A zero-filled, writable, C-contiguous ``memoryview`` of ``n`` bytes (format ``"B"``) whose
    first byte sits on an ``alignment``-byte boundary.

    It is a slice of a slightly larger ``bytearray``; the view keeps the ``bytearray`` alive
    and, while the view exists, the ``bytearray`` cannot be resized, so the address is stable.
    ``numpy.frombuffer(view, dtype=numpy.uint8)`` shares its memory.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if alignment <= 0 or alignment & (alignment - 1):
        raise ValueError(f"alignment must be a power of two, got {alignment}")
    backing = bytearray(n + alignment)
    base = ctypes.addressof(ctypes.c_char.from_buffer(backing))
    offset = -base % alignment
    # The c_char above is a temporary export; it is gone once from_buffer's result is freed.
    return memoryview(backing)[offset : offset + n]


class _PyBuffer(ctypes.Structure):
    # CPython's Py_buffer (Include/pybuffer.h), stable since 3.0 and part of the limited API
    # since 3.11.
    _fields_ = [
        ("buf", ctypes.c_void_p),
        ("obj", ctypes.py_object),
        ("len", ctypes.c_ssize_t),
        ("itemsize", ctypes.c_ssize_t),
        ("readonly", ctypes.c_int),
        ("ndim", ctypes.c_int),
        ("format", ctypes.c_char_p),
        ("shape", ctypes.POINTER(ctypes.c_ssize_t)),
        ("strides", ctypes.POINTER(ctypes.c_ssize_t)),
        ("suboffsets", ctypes.POINTER(ctypes.c_ssize_t)),
        ("internal", ctypes.c_void_p),
    ]


_PyBUF_SIMPLE = 0
_PyBUF_WRITABLE = 0x0001

# ``pythonapi["name"]`` makes a private function object. ``pythonapi.name`` would return one
# cached on the shared ``pythonapi`` and setting its argtypes would break (or be broken by) any
# other module that declares its own Py_buffer structure the same way.
_get_buffer = ctypes.pythonapi["PyObject_GetBuffer"]
_get_buffer.argtypes = [ctypes.py_object, ctypes.POINTER(_PyBuffer), ctypes.c_int]
_get_buffer.restype = ctypes.c_int
_release_buffer = ctypes.pythonapi["PyBuffer_Release"]
_release_buffer.argtypes = [ctypes.POINTER(_PyBuffer)]
_release_buffer.restype = None


@contextmanager
def _exported(obj: Any, *, writable: bool) -> Iterator[tuple[int, int]]:
    """Hold a buffer export of ``obj`` (so it cannot move or be resized) and yield its
    ``(address, length)``. PyBUF_SIMPLE requests a C-contiguous byte buffer and fails on
    strided views, like the C API user it imitates."""
    view = _PyBuffer()
    flags = _PyBUF_SIMPLE | (_PyBUF_WRITABLE if writable else 0)
    try:
        # ctypes turns the C error return into the pending Python exception.
        _get_buffer(obj, ctypes.byref(view), flags)
    except (BufferError, ValueError) as exc:  # numpy raises ValueError for strided arrays
        what = "a writable, C-contiguous buffer" if writable else "a C-contiguous buffer"
        raise TypeError(f"expected {what}, got {type(obj).__name__}: {exc}") from exc
    try:
        yield (view.buf or 0), view.len
    finally:
        _release_buffer(ctypes.byref(view))


def address(obj: Any) -> int:
    """The address of the first byte of a buffer-protocol object (for alignment checks).

    The address is only meaningful while ``obj`` is alive and not resized."""
    with _exported(obj, writable=False) as (addr, _):
        return addr


# ==================================================================================================
# The RAID functions
# ==================================================================================================


def _closed() -> int:
    raise ValueError("PreparedCall used after close()")


class PreparedCall:
    """One ISA-L call with its arguments checked, its buffers held and its pointer array built
    once, so that calling it costs one ctypes call: what a C program that keeps its stripe
    pointers would pay, which makes it the fair yardstick for small blocks.

    The buffers stay exported (pinned, not resizable) until :meth:`close`, the end of a
    ``with`` block, or garbage collection.
    """

    def __init__(
        self, name: str, sources: Sequence[Any], outputs: Sequence[Any], min_sources: int
    ) -> None:
        self.name = name
        if len(sources) < min_sources:
            raise ValueError(
                f"{name} needs at least {min_sources} source buffers, got {len(sources)}"
            )
        self._stack = ExitStack()
        try:
            views = [self._stack.enter_context(_exported(s, writable=False)) for s in sources]
            views += [self._stack.enter_context(_exported(o, writable=True)) for o in outputs]
            length = views[0][1]
            for i, (addr, n) in enumerate(views):
                role = f"source {i}" if i < len(sources) else f"output {i - len(sources)}"
                if n != length:
                    raise ValueError(f"{name}: {role} has {n} bytes, expected {length}")
                if addr % _ISAL_POINTER_ALIGN:
                    raise ValueError(
                        f"{name}: {role} is not {_ISAL_POINTER_ALIGN}-byte aligned "
                        f"(address {addr:#x}); allocate it with fastraid._isal.aligned()"
                    )
            if length > _INT_MAX:
                raise ValueError(f"{name}: {length} bytes per buffer exceeds ISA-L's int length")
            if name == "pq_gen" and length % _ISAL_PQ_LEN_MULTIPLE:
                raise ValueError(
                    f"pq_gen: length {length} is not a multiple of {_ISAL_PQ_LEN_MULTIPLE}"
                )
        except BaseException:
            self._stack.close()
            raise
        self.length = length
        pointers = (ctypes.c_void_p * len(views))(*(addr for addr, _ in views))
        # A private function object without argtypes, called with ready-made ctypes
        # arguments through functools.partial: about 0.3 us per call instead of ~1 us.
        raw = _lib()[name]
        raw.restype = ctypes.c_int
        #: The bare call, returning ISA-L's status (0 = success) without checking it; for
        #: timing loops. Only valid until :meth:`close`.
        self.raw: Callable[[], int] = functools.partial(
            raw, ctypes.c_int(len(views)), ctypes.c_int(length), pointers
        )

    def __call__(self) -> None:
        status = self.raw()
        if status != 0:
            raise IsalError(f"ISA-L {self.name} returned {status}")

    def close(self) -> None:
        """Release the buffers; the object must not be called afterwards."""
        self.raw = _closed
        self._stack.close()

    def __enter__(self) -> PreparedCall:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        stack = getattr(self, "_stack", None)
        if stack is not None:
            stack.close()


def prepare_xor_gen(arrays: Sequence[Any], out: Any) -> PreparedCall:
    """A :class:`PreparedCall` of :func:`xor_gen` on these buffers."""
    return PreparedCall("xor_gen", arrays, [out], min_sources=2)


def prepare_pq_gen(arrays: Sequence[Any], p: Any, q: Any) -> PreparedCall:
    """A :class:`PreparedCall` of :func:`pq_gen` on these buffers."""
    return PreparedCall("pq_gen", arrays, [p, q], min_sources=2)


def xor_gen(arrays: Sequence[Any], out: Any) -> Any:
    """``out[:] = arrays[0] ^ arrays[1] ^ ...`` with ISA-L's ``xor_gen``; returns ``out``.

    ``arrays``: at least two buffers (ISA-L refuses one), all the same length as the writable
    ``out``; every buffer 32-byte aligned (see :func:`aligned`).
    """
    with prepare_xor_gen(arrays, out) as call:
        call()
    return out


def pq_gen(arrays: Sequence[Any], p: Any, q: Any) -> tuple[Any, Any]:
    """RAID-6 P (XOR) and Q (``sum 2**j * D_j`` over GF(2^8)/0x11d) with ISA-L's ``pq_gen``;
    returns ``(p, q)``.

    ``arrays``: at least two buffers; ``p``/``q``: writable; all the same length, a multiple of
    32 bytes, and 32-byte aligned (see :func:`aligned`).
    """
    with prepare_pq_gen(arrays, p, q) as call:
        call()
    return p, q
