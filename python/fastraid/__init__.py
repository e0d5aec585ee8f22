"""fastraid: software RAID for Python with a Rust SIMD core.

Parity (RAID-4/5 XOR, RAID-6 P+Q exactly as Linux md computes them) and recovery of up to
two lost blocks, on any buffer-protocol objects, without copying::

    import fastraid
    p, q = fastraid.pq_gen([d0, d1, d2, d3])
    d1_again, d3_again = fastraid.recover([d0, None, d2, None], p=p, q=q)

``fastraid.open(members, readonly=True)`` assembles a Linux md array from its member images
or devices (degraded, in any order) and reads it; see :mod:`fastraid.array`.

``fastraid.reference`` holds the same functions in plain Python (the test oracle).
Every error is a :class:`FastRaidError`.
"""

from __future__ import annotations

from ._core import __version__, kernels, pq_check, pq_gen, recover, xor_check, xor_gen
from ._errors import (
    AssemblyError,
    BufferTypeError,
    CancelledError,
    FastRaidError,
    InternalError,
    InvalidArgumentError,
    MemberError,
    MemberInUseError,
    NotAnArrayError,
    NotSupportedError,
    ReadOnlyError,
    TooManyFailuresError,
)
from .array import Array, Volume, examine, open
from .create import create, plan_create
from .rebuild import plan_rebuild, rebuild, replace
from .reshape import grow_continue, plan_reshape, reshape
from .scrub import ScrubResult, check, repair

__all__ = [
    "Array",
    "AssemblyError",
    "BufferTypeError",
    "CancelledError",
    "FastRaidError",
    "InternalError",
    "InvalidArgumentError",
    "MemberError",
    "MemberInUseError",
    "NotAnArrayError",
    "NotSupportedError",
    "ReadOnlyError",
    "ScrubResult",
    "TooManyFailuresError",
    "Volume",
    "__version__",
    "check",
    "create",
    "examine",
    "kernels",
    "open",
    "plan_create",
    "plan_rebuild",
    "plan_reshape",
    "grow_continue",
    "reshape",
    "pq_check",
    "pq_gen",
    "rebuild",
    "recover",
    "replace",
    "repair",
    "xor_check",
    "xor_gen",
]
