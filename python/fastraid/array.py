"""Assembled md arrays: :func:`open` and :class:`Array`.

``fastraid.open(members)`` assembles a Linux md array from its member images or block
devices without the kernel (md-format.md section 4): members may be given in any order,
stale, spare or foreign paths are left out with a reason (:meth:`Array.detail`), missing
members are rebuilt from parity or mirrors. With ``readonly=True`` nothing is ever written
(recovery); otherwise the array can be written, members failed, added, replaced and
rebuilt, and the Linux kernel assembles the result (md's superblocks, bitmap and layout).

    with fastraid.open(["a.img", "b.img", "c.img"]) as array:
        array.write(1 << 20, b"hello")
        head = array.read(0, 4096)
        with array.volume() as f:      # a file object over the array
            f.seek(1 << 20)
            data = f.read(65536)
        print(array.trust_map())       # what was read clean, rebuilt or unreadable
"""

from __future__ import annotations

import builtins
import errno
import io
import os
from collections.abc import Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Any

from . import _core
from ._errors import InvalidArgumentError, ReadOnlyError

if TYPE_CHECKING:  # typing_extensions is a type checker's dependency, not a runtime one
    from typing_extensions import Buffer

    from .rebuild import Progress
    from .scrub import ScrubResult

StrPath = str | os.PathLike[str]


class Array:
    """An md array assembled from its members.

    Properties mirror ``mdadm --detail``: :attr:`level`, :attr:`layout`, :attr:`chunk`,
    :attr:`raid_devices`, :attr:`size`, :attr:`members`, :attr:`state`, :attr:`degraded`.

    Membership changes (:meth:`fail`, :meth:`remove`, :meth:`add`, :meth:`replace`,
    :meth:`rebuild`) are made on the members' superblocks the way md makes them; the array
    is flushed first and assembled again from its paths afterwards.
    """

    def __init__(
        self,
        core: _core.RaidArray,
        paths: list[str] | None = None,
        *,
        force: bool = False,
        readonly: bool = True,
    ) -> None:
        self._core = core
        self._paths = list(paths or [])
        self._force = force
        self._readonly = readonly
        #: Paths of members failed or replaced through this object, by their old slot.
        self._failed: dict[int, list[str]] = {}

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

    @property
    def writable(self) -> bool:
        """False when opened with ``readonly=True``."""
        return self._core.writable

    @property
    def paths(self) -> list[str]:
        """Every path the array is assembled from (spares and failed members included)."""
        return list(self._paths)

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
        """Write ``data`` at ``offset``; returns ``len(data)``.

        Parity and mirrors are updated with the data (full stripes directly, partial ones
        by read-modify-write or reconstruct-write, whichever reads less; a degraded stripe
        keeps the missing member's data recoverable). Before the first write after a
        flush the array is marked dirty in md's superblocks and write-intent bitmap, so an
        unclean stop (kill -9, power cut) is resynced exactly where writes were under way
        at the next :func:`open` (or by the kernel). Data reaches the members' page cache;
        :meth:`flush` (or :meth:`close`) makes it durable and marks the array clean.

        :raises ReadOnlyError: opened with ``readonly=True``.
        :raises InvalidArgumentError: the range is outside the array.
        """
        return self._core.write(offset, data)

    def flush(self) -> None:
        """Make every write durable (fdatasync on every member) and mark the array clean."""
        self._core.flush()

    def volume(self) -> Volume:
        """An :class:`io.RawIOBase` over the array (seek, tell, readinto, and write when the
        array is writable)."""
        return Volume(self)

    # ------------------------------------------------------------------ membership

    def _reopen(self) -> None:
        self._core = _core.RaidArray(self._paths, force=self._force, writable=True)

    def _writable(self) -> None:
        if self._readonly:
            raise ReadOnlyError("the array was opened read-only")
        if self.closed:
            raise InvalidArgumentError("the array is closed")

    def fail(self, i: int) -> str:
        """Mark the member of slot ``i`` faulty (``mdadm --fail``): the other members record
        it as faulty, and it is left out from now on. Returns its path.

        :raises TooManyFailuresError: the array cannot run without it.
        """
        self._writable()
        try:
            path = self._core.fail(i)
        finally:
            self._reopen()
        self._failed.setdefault(i, []).append(path)
        return path

    def remove(self, i: int | StrPath) -> list[str]:
        """Remove the failed member(s) of slot ``i``, or the failed, stale or spare device at
        path ``i``, from the array (``mdadm --remove``): its device number becomes unused in
        the members' role tables and its path is no longer used. Its own superblock is left
        as it is (stale: never assembled again). Returns the paths removed.

        :raises InvalidArgumentError: the device is active (fail it first), or there is
            nothing to remove.
        """
        self._writable()
        if isinstance(i, int):
            gone = list(self._failed.pop(i, []))
            for m in self.detail()["members"]:
                if m.get("state") in ("faulty", "stale") and m.get("slot") == i:
                    gone.append(m["path"])
            gone = list(dict.fromkeys(gone))
            if not gone:
                members = self.members
                if 0 <= i < len(members) and members[i] is not None:
                    raise InvalidArgumentError(f"slot {i} is active: fail({i}) it first")
                raise InvalidArgumentError(f"slot {i}: no failed member to remove")
        else:
            gone = [os.fspath(i)]
        for p in gone:
            try:
                self._core.remove_device(p)
            finally:
                self._reopen()
        self.close()
        self._paths = [p for p in self._paths if p not in gone]
        self._reopen()
        return gone

    def add(self, path: StrPath, *, force: bool = False) -> dict[str, Any]:
        """Add ``path`` as a spare (``mdadm --add``); a missing file is created sparse. A
        degraded array is then rebuilt onto it by :meth:`rebuild`.

        A RAID-0 has no spares (md refuses them): ``path`` is only remembered (nothing is
        written to it) for :meth:`reshape` with more ``raid_devices``, which makes it a
        member as mdadm does (``dev_number`` is then None); its content is checked there.

        :raises MemberInUseError: ``path`` holds another array, a file system or a
            partition table (``force=True`` overwrites it).
        """
        self._writable()
        p = os.fspath(path)
        if self.level == "raid0":
            return self._add_new_raid0_member(p)
        try:
            info = self._core.add_spare(p, force=force)
        except BaseException:
            self._reopen()
            raise
        self._paths.append(p)
        self._reopen()
        return info

    def _add_new_raid0_member(self, p: str) -> dict[str, Any]:
        """:meth:`add` for a RAID-0: remember ``p`` (created sparse, as large as the largest
        member, when missing) for the grow."""
        known = [q for q in self._paths if os.path.exists(q)]
        if os.path.exists(p) and any(os.path.samefile(p, q) for q in known):
            raise InvalidArgumentError(f"{p}: already given for this array")
        created = not os.path.exists(p)
        if created:
            size = 0
            for q in known:
                with builtins.open(q, "rb") as f:
                    size = max(size, f.seek(0, os.SEEK_END))
            with builtins.open(p, "xb") as f:
                f.truncate(size)
        self.close()
        self._paths.append(p)
        self._reopen()
        return {
            "dev_number": None,
            "created": created,
            "events": self.detail().get("events"),
            "notes": [
                f"{p}: a RAID-0 has no spares; it becomes a member with "
                "reshape(raid_devices=...) (md's RAID-0 grow)"
            ],
        }

    def rebuild(
        self,
        progress: Progress | None = None,
        *,
        new: StrPath | None = None,
        slot: int | None = None,
        speed_limit: int | None = None,
        force: bool = False,
    ) -> dict[str, Any]:
        """Rebuild a missing slot onto a spare (added with :meth:`add`) or onto ``new``,
        checkpointed in md's ``recovery_offset`` (:func:`fastraid.rebuild`): interrupted,
        even by kill -9, it resumes where it stopped when called again."""
        from .rebuild import rebuild

        self._writable()
        self.close()
        target = None if new is None else os.fspath(new)
        try:
            result = rebuild(
                self._paths,
                slot=slot,
                new=target,
                progress=progress,
                speed_limit=speed_limit,
                force=force,
            )
            if target is not None and target not in self._paths:
                self._paths.append(target)
        finally:
            self._reopen()
        return result

    def replace(
        self,
        i: int,
        path: StrPath,
        progress: Progress | None = None,
        *,
        speed_limit: int | None = None,
        force: bool = False,
    ) -> dict[str, Any]:
        """Copy the member of slot ``i`` onto ``path`` while the array stays redundant
        (``mdadm --replace``); the old member is then faulty (see :meth:`remove`)."""
        from .rebuild import replace

        self._writable()
        self.close()
        target = os.fspath(path)
        try:
            result = replace(self._paths, i, target, progress, speed_limit=speed_limit, force=force)
            self._paths.append(target)
            self._failed.setdefault(i, []).append(str(result["replaced"]))
        finally:
            self._reopen()
        return result

    def reshape(
        self,
        *,
        raid_devices: int | None = None,
        level: int | str | None = None,
        chunk: int | None = None,
        layout: str | int | None = None,
        progress: Progress | None = None,
        array_size: int | None = None,
    ) -> dict[str, Any]:
        """Change the geometry (``mdadm --grow``): more members (spares added with
        :meth:`add` become members), another chunk or layout. The data moves to md's
        ``new_offset`` and the superblocks record the reshape as md does, so one stopped
        anywhere (even by kill -9) is finished by calling this again, by
        :func:`fastraid.grow_continue`, or by the Linux kernel (:func:`fastraid.reshape`).

        Fewer members (a shrink, backwards as md does) need ``array_size``: the bytes
        kept (mdadm's ``--array-size``); the removed members become spares.

        ``level``: raid5 -> raid6 (after :meth:`add` of a spare for Q), raid6 -> raid5,
        raid4 <-> raid5 parity-last (see :func:`fastraid.plan_reshape`).

        RAID-10 near and offset layouts: more members, another chunk, near <-> offset with
        the same number of copies (what md allows; far layouts are refused).

        A RAID-0 grows (more ``raid_devices``, after :meth:`add` of each new member) as
        mdadm grows it: takeover to a RAID-4 without its parity member, the new members
        added, reshape, takeover back to RAID-0; stopped anywhere, it is finished by calling
        this again or :func:`fastraid.grow_continue`.

        :raises NotSupportedError: other level changes, a shrink without ``array_size``, a
            RAID-0 of several zones (members of different sizes) or fewer RAID-0 members.
        """
        from .reshape import reshape

        self._writable()
        self.close()
        try:
            result = reshape(
                self._paths,
                raid_devices=raid_devices,
                level=level,
                chunk=chunk,
                layout=layout,
                progress=progress,
                array_size=array_size,
            )
        except BaseException:
            try:
                self._reopen()
            except Exception:  # a reshape left in progress: readable, not writable
                self._core = _core.RaidArray(self._paths, force=self._force, writable=False)
            raise
        self._reopen()
        return result

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
        """Flush (when writable) and close the members. Closing twice is fine."""
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
    """A file object over an :class:`Array` (for tools that want a file): readable and
    seekable, writable when the array is. The array does not grow: a write at its end
    raises ``OSError(ENOSPC)`` like a full block device, a write across it is short.

    Closing the volume flushes it but does not close the array.
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
        return self._array.writable

    def write(self, b: Buffer) -> int:
        if self.closed:
            raise ValueError("I/O operation on closed volume")
        if not self.writable():
            raise ReadOnlyError("the array was opened read-only")
        view = memoryview(b).cast("B")
        n = min(len(view), max(0, self._array.size - self._pos))
        if n == 0 and len(view):
            raise OSError(errno.ENOSPC, "no space left on the array", None)
        self._array.write(self._pos, view[:n])
        self._pos += n
        return n

    def flush(self) -> None:
        if not self.closed and self.writable():
            self._array.flush()

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

    :param readonly: never write to the members (recovery of an array that must stay as
        it is, an interrupted reshape, metadata 0.90). Otherwise the members are opened
        read-write and an array that was not stopped cleanly is resynced first, only where
        its write-intent bitmap says (else from its ``resync_offset``); ``detail()["resync"]``
        and the notes say what was done.
    :param force: use stale members (event count more than one behind) where the array
        cannot run without them, like ``mdadm --assemble --force``; their data may be old.
        For writing, also open an array that is both degraded and not stopped cleanly
        (which cannot be resynced; md refuses it too).
    :param backup_file: mdadm's reshape backup file (``md_backup_data-1/-2``): during a
        reshape, the array ranges it holds are read from it (the critical section mdadm
        saved); ignored, with a note in :meth:`Array.detail`, when no reshape is in progress
        or the reshape has moved past it. A file that is not a backup of this array raises
        :class:`AssemblyError`.
    :raises AssemblyError: the members do not make a usable array (the message says why).
    :raises NotAnArrayError: no member holds a usable md superblock.
    :raises MemberError: a member cannot be read.
    :raises NotSupportedError: writing to what fastraid can only read (a reshape in
        progress, metadata 0.90, journal or PPL arrays).
    """
    if isinstance(members, str | bytes | os.PathLike):
        raise InvalidArgumentError("members: expected a list of paths, got a single path")
    paths = [os.fspath(m) for m in members]
    backup = None if backup_file is None else os.fspath(backup_file)
    core = _core.RaidArray(paths, force=force, backup_file=backup, writable=not readonly)
    return Array(core, paths, force=force, readonly=readonly)


def examine(path: StrPath) -> list[dict[str, Any]]:
    """Every md superblock found on one member (``mdadm --examine``), valid or not."""
    return _core.examine(os.fspath(path))


__all__ = ["Array", "Volume", "examine", "open"]
