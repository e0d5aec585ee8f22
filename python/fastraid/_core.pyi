"""Type stubs for the Rust extension module ``fastraid._core`` (checked by mypy.stubtest)."""

from collections.abc import Iterable, Sequence
from typing import TypeVar

from typing_extensions import Buffer

_B = TypeVar("_B", bound=Buffer)

__version__: str

def xor_gen(
    data: Iterable[Buffer],
    out: _B | None = None,
    *,
    threads: int | None = None,
    kernel: str | None = None,
) -> _B | bytearray: ...
def pq_gen(
    data: Iterable[Buffer],
    p: Buffer | None = None,
    q: Buffer | None = None,
    *,
    threads: int | None = None,
    kernel: str | None = None,
) -> tuple[Buffer, Buffer]: ...
def xor_check(data: Iterable[Buffer], p: Buffer, *, kernel: str | None = None) -> bool: ...
def pq_check(
    data: Iterable[Buffer], p: Buffer, q: Buffer, *, kernel: str | None = None
) -> tuple[bool, bool]: ...
def recover(
    data: Sequence[Buffer | None],
    p: Buffer | None = None,
    q: Buffer | None = None,
    out: Iterable[Buffer] | None = None,
    *,
    threads: int | None = None,
    kernel: str | None = None,
) -> list[Buffer]: ...
def kernels() -> dict[str, str | list[str]]: ...
