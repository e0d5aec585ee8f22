"""Assembled md arrays: :func:`open` and :class:`Array`.

``fastraid.open(members, readonly=True)`` assembles a Linux md array from its member
images or block devices without the kernel and without writing to them (md-format.md
section 4): members may be given in any order, stale, spare or foreign paths are left out
with a reason (:meth:`Array.detail`), missing members are rebuilt from parity or mirrors.

    with fastraid.open(["a.img", "b.img", "c.img"], readonly=True) as array:
        head = array.read(0, 4096)
        with array.volume() as f:      # a read-only file object over the array
            f.seek(1 << 20)
            data = f.read(65536)
        print(array.trust_map())       # what was read clean, rebuilt or unreadable
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Any

from . import _core
from ._errors import InvalidArgumentError, NotSupportedError

if TYPE_CHECKING:  # typing_extensions is a type checker's dependency, not a runtime one
    from typing_extensions import Buffer

    from .scrub import ScrubResult

StrPath = str | os.PathLike[str]


class Array:
    """An md array assembled from its members (read-only for now).

    Properties mirror ``mdadm --detail``: :attr:`level`, :attr:`layout`, :attr:`chunk`,
    :attr:`raid_devices`, :attr:`size`, :attr:`members`, :attr:`state`, :attr:`degraded`.
    """

    def __init__(self, core: _core.RaidArray) -> None:
        self._core = core

    # ------------------------------------------------------------------ properties

    @property
    def level(self) -> str:
        """``raid0``, ``raid1``, ``raid4``, ``raid5``, ``raid6``, ``raid10`` or ``linear``."""
        return self._core.level

    @property
    def layout(self) -> str | None:
        """mdadm's layout name (``left-symmetric``, ``n2`` ...), None for levels without one."""
        return self._core.layout

    @property
    def chunk(self) -> int:
        """Chunk size in bytes (0 for RAID1)."""
        return self._core.chunk

    @property
    def raid_devices(self) -> int:
        return self._core.raid_devices

    @property
    def size(self) -> int:
        """Array size in bytes."""
        return self._core.size

    @property
    def members(self) -> list[str | None]:
        """The path serving each slot, None where the slot is missing."""
        return self._core.members

    @property
    def state(self) -> str:
        """``clean`` or ``active`` (not stopped cleanly), then ``, degraded`` etc."""
        return self._core.state

    @property
    def degraded(self) -> bool:
        return self._core.degraded

    @property
    def closed(self) -> bool:
        return self._core.closed

    # ------------------------------------------------------------------ I/O

    def read(self, offset: int, length: int, *, strict: bool = True) -> bytes:
        """``length`` bytes from ``offset`` (fewer at the end of the array).

        With ``strict`` (the default) bytes that can be neither read nor rebuilt raise
        :class:`~fastraid.MemberError`; with ``strict=False`` they come back as zeros and
        are listed as ``unreadable`` in :meth:`trust_map`.
        """
        return self._core.read(offset, length, strict=strict)

    def readinto(self, offset: int, buffer: Buffer, *, strict: bool = True) -> int:
        """Fill ``buffer`` from ``offset``; returns the number of bytes read."""
        return self._core.readinto(offset, buffer, strict=strict)

    def write(self, offset: int, data: Buffer) -> int:
        """Not implemented yet: arrays are opened read-only."""
        raise NotSupportedError("writing is not implemented yet: the array is read-only")

    def volume(self) -> Volume:
        """A read-only :class:`io.RawIOBase` over the array (seek, tell, readinto)."""
        return Volume(self)

    # ------------------------------------------------------------------ reports

    def detail(self) -> dict[str, Any]:
        """What was assembled and why: geometry, state, every path given with its slot,
        state (active, stale, spare, duplicate, excluded ...), events and the reason."""
        return self._core.detail()

    def trust_map(self) -> list[dict[str, Any]]:
        """Ranges read so far with where their bytes came from: ``{"offset", "length",
        "kind"}``, kind ``clean``, ``rebuilt``, ``uncertain`` or ``unreadable``."""
        return self._core.trust_map()

    def trust_totals(self) -> dict[str, int]:
        """Bytes read so far per trust kind."""
        return self._core.trust_totals()

    def clear_trust_map(self) -> None:
        self._core.clear_trust_map()

    # ------------------------------------------------------------------ scrub

    def check(self, **options: Any) -> ScrubResult:
        """Scrub: read every stripe and report mismatches (:func:`fastraid.check`, same
        options) over the members this array was assembled from."""
        from . import scrub

        return scrub.check([m for m in self.members if m is not None], **options)

    def repair(self, **options: Any) -> ScrubResult:
        """Scrub and repair (:func:`fastraid.repair`, same options). It writes through its
        own file handles: bytes this Array read before may be stale afterwards."""
        from . import scrub

        return scrub.repair([m for m in self.members if m is not None], **options)

    # ------------------------------------------------------------------ lifetime

    def close(self) -> None:
        """Close the members. Closing twice is fine."""
        self._core.close()

    def __enter__(self) -> Array:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        if self.closed:
            return "<fastraid.Array closed>"
        layout = f" {self.layout}" if self.layout else ""
        return (
            f"<fastraid.Array {self.level}{layout} {self.raid_devices} members, "
            f"{self.size} bytes, {self.state}>"
        )


class Volume(io.RawIOBase):
    """A read-only file object over an :class:`Array` (for tools that want a file).

    Closing the volume does not close the array.
    """

    def __init__(self, array: Array) -> None:
        super().__init__()
        self._array = array
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def writable(self) -> bool:
        return False

    def readinto(self, buffer: Buffer) -> int:
        if self.closed:
            raise ValueError("I/O operation on closed volume")
        view = memoryview(buffer).cast("B")
        n = self._array.readinto(self._pos, view)
        self._pos += n
        return n

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if self.closed:
            raise ValueError("I/O operation on closed volume")
        if whence == os.SEEK_SET:
            pos = offset
        elif whence == os.SEEK_CUR:
            pos = self._pos + offset
        elif whence == os.SEEK_END:
            pos = self._array.size + offset
        else:
            raise ValueError(f"invalid whence ({whence})")
        if pos < 0:
            raise ValueError(f"negative seek position {pos}")
        self._pos = pos
        return pos

    def tell(self) -> int:
        return self._pos


def open(
    members: Iterable[StrPath],
    *,
    readonly: bool = False,
    force: bool = False,
    backup_file: StrPath | None = None,
) -> Array:
    """Assemble the md array whose members are ``members`` (paths of images or block
    devices, any order).

    :param readonly: must be True for now (writing is not implemented yet).
    :param force: use stale members (event count more than one behind) where the array
        cannot run without them, like ``mdadm --assemble --force``; their data may be old.
    :param backup_file: mdadm's reshape backup file (``md_backup_data-1/-2``): during a
        reshape, the array ranges it holds are read from it (the critical section mdadm
        saved); ignored, with a note in :meth:`Array.detail`, when no reshape is in progress
        or the reshape has moved past it. A file that is not a backup of this array raises
        :class:`AssemblyError`.
    :raises AssemblyError: the members do not make a usable array (the message says why).
    :raises NotAnArrayError: no member holds a usable md superblock.
    :raises MemberError: a member cannot be read.
    :raises NotSupportedError: ``readonly=False``.
    """
    if not readonly:
        raise NotSupportedError("writing is not implemented yet: open the array with readonly=True")
    if isinstance(members, str | bytes | os.PathLike):
        raise InvalidArgumentError("members: expected a list of paths, got a single path")
    paths = [os.fspath(m) for m in members]
    backup = None if backup_file is None else os.fspath(backup_file)
    return Array(_core.RaidArray(paths, force=force, backup_file=backup))


def examine(path: StrPath) -> list[dict[str, Any]]:
    """Every md superblock found on one member (``mdadm --examine``), valid or not."""
    return _core.examine(os.fspath(path))


__all__ = ["Array", "Volume", "examine", "open"]
