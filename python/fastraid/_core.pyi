"""Type stubs for the Rust extension module ``fastraid._core`` (checked by mypy.stubtest)."""

from collections.abc import Callable, Iterable, Sequence
from os import PathLike
from typing import Any, TypeVar, final

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

@final
class RaidArray:
    def __new__(
        cls,
        members: Sequence[str | PathLike[str]],
        *,
        force: bool = False,
        backup_file: str | PathLike[str] | None = None,
        writable: bool = False,
    ) -> RaidArray: ...
    def read(self, offset: int, length: int, *, strict: bool = True) -> bytes: ...
    def write(self, offset: int, data: Buffer) -> int: ...
    def flush(self) -> None: ...
    def fail(self, slot: int) -> str: ...
    def remove_device(self, path: str | PathLike[str]) -> int: ...
    def add_spare(self, path: str | PathLike[str], *, force: bool = False) -> dict[str, Any]: ...
    @property
    def writable(self) -> bool: ...
    def readinto(self, offset: int, buffer: Buffer, *, strict: bool = True) -> int: ...
    @property
    def level(self) -> str: ...
    @property
    def layout(self) -> str | None: ...
    @property
    def chunk(self) -> int: ...
    @property
    def raid_devices(self) -> int: ...
    @property
    def size(self) -> int: ...
    @property
    def members(self) -> list[str | None]: ...
    @property
    def state(self) -> str: ...
    @property
    def degraded(self) -> bool: ...
    @property
    def closed(self) -> bool: ...
    def detail(self) -> dict[str, Any]: ...
    def trust_map(self) -> list[dict[str, Any]]: ...
    def trust_totals(self) -> dict[str, int]: ...
    def clear_trust_map(self) -> None: ...
    def close(self) -> None: ...

def examine(path: str | PathLike[str]) -> list[dict[str, Any]]: ...

@final
class CreatePlan:
    def describe(self) -> dict[str, Any]: ...
    def execute(self, progress: Callable[[int, int], object] | None = None) -> dict[str, Any]: ...

def plan_create(
    members: Sequence[str | None],
    *,
    level: int | str,
    chunk: int = 524288,
    layout: str | int | None = None,
    size: int | None = None,
    name: str | None = None,
    force: bool = False,
    metadata: str = "1.2",
) -> CreatePlan: ...
def scrub(
    members: Sequence[str | PathLike[str]],
    *,
    repair: bool = False,
    prefer: int | None = None,
    unresolved: str | None = None,
    checkpoint: str | PathLike[str] | bool | None = None,
    resume: bool = False,
    checkpoint_interval: float = 5.0,
    speed_limit: int | None = None,
    batch_bytes: int = 1048576,
    max_findings: int = 100000,
    max_ranges: int = 1024,
    force: bool = False,
    kernel: str | None = None,
    progress: Callable[[int, int, float], object] | None = None,
) -> dict[str, Any]: ...

@final
class RebuildPlan:
    def describe(self) -> dict[str, Any]: ...
    def execute(
        self, progress: Callable[[int, int, float], object] | None = None
    ) -> dict[str, Any]: ...

def plan_rebuild(
    members: Sequence[str | PathLike[str]],
    *,
    slot: int | None = None,
    new: str | PathLike[str] | None = None,
    replace: bool = False,
    force: bool = False,
    speed_limit: int | None = None,
    batch_bytes: int | None = None,
    checkpoint_bytes: int | None = None,
) -> RebuildPlan: ...

@final
class ReshapePlan:
    def describe(self) -> dict[str, Any]: ...
    def execute(
        self, progress: Callable[[int, int, float], object] | None = None
    ) -> dict[str, Any]: ...

def plan_reshape(
    members: Sequence[str | PathLike[str]],
    *,
    raid_devices: int | None = None,
    level: int | None = None,
    chunk: int | None = None,
    layout: str | None = None,
    continue_only: bool = False,
    force: bool = False,
    backup_file: str | PathLike[str] | None = None,
    speed_limit: int | None = None,
    batch_bytes: int | None = None,
    checkpoint_bytes: int | None = None,
    array_size: int | None = None,
    revert: bool = False,
) -> ReshapePlan: ...
