"""Reshape an md array (``mdadm --grow``): more members, another chunk or layout, and finish
a reshape that Linux md left interrupted (``grow --continue``), offline and in place.
RAID-4/5/6, and RAID-10 near and offset layouts as md allows them (more members, another
chunk, near <-> offset with the same number of copies; far layouts are refused).

The data moves to md's ``new_offset`` (toward the start of every member when growing,
toward the end when shrinking or walking backwards) as md does, so old and new copies never
overlap and no backup file is needed; without room to move, the reshape runs in place and
journals the rows it overwrites. While it
runs, the superblocks describe the reshape exactly as md does (``reshape_position`` advanced
after the data below it is durable), so a reshape stopped anywhere, even by kill -9 or a
power cut, is finished by running it again or by the Linux kernel itself.

``revert=True`` goes back instead: the reshape in progress is turned around in the
superblocks (md's ``--update=revert-reshape``) and run back, so the array ends in the
geometry it started from (``src/reshape/revert.rs``).

The work is in the Rust core (``src/reshape.rs``); ``plan_reshape`` reads only and says what
would be done (``str(plan)``: the steps, the space needed and what a power cut at each step
would lose).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

from . import _core

StrPath = str | os.PathLike[str]
#: ``progress(done, total, rate)``: bytes of the new geometry written, bytes in all, bytes/s.
Progress = Callable[[int, int, float], object]

_LEVELS = {"raid0": 0, "0": 0, "raid4": 4, "4": 4, "raid5": 5, "5": 5, "raid6": 6, "6": 6}


def _level(level: int | str | None) -> int | None:
    if level is None or isinstance(level, int):
        return level
    try:
        return _LEVELS[level.lower()]
    except KeyError:
        from ._errors import InvalidArgumentError

        raise InvalidArgumentError(f"level: {level!r} cannot be reshaped (raid0/4/5/6)") from None


def plan_reshape(
    members: Sequence[StrPath],
    *,
    raid_devices: int | None = None,
    level: int | str | None = None,
    chunk: int | None = None,
    layout: str | int | None = None,
    continue_only: bool = False,
    force: bool = False,
    backup_file: StrPath | None = None,
    speed_limit: int | None = None,
    batch_bytes: int | None = None,
    checkpoint_bytes: int | None = None,
    array_size: int | None = None,
    revert: bool = False,
) -> _core.ReshapePlan:
    """Decide what a reshape would do, without writing anything.

    :param members: the array's members and the spares that become new members (added with
        :meth:`fastraid.Array.add`), any order.
    :param raid_devices: the new number of members (more than now: a grow; fewer: a shrink,
        which needs ``array_size``). A RAID-0 grows as mdadm grows it (md cannot reshape
        RAID-0 itself; ``src/reshape/raid0.rs``): takeover to a RAID-4 whose parity member
        is missing, the new members (their paths among ``members``, without a superblock)
        added as spares, a RAID-4 reshape that leaves the parity slot missing, takeover back
        to RAID-0. Every state in between is one the kernel runs, and running the same
        request again (or :func:`grow_continue`) finishes it. A RAID-4 (or RAID-5
        parity-last) whose only missing member is its parity is taken for such a grow: it
        becomes a RAID-0 of ``raid_devices`` members. Refused: a RAID-0 of several zones
        (members of different sizes; md's takeover needs one zone), fewer members, metadata
        0.90 (as by md and mdadm).
    :param array_size: shrinking only: the array bytes you keep (mdadm's ``--array-size``),
        at most what the smaller array holds; the bytes past that are discarded. A shrink
        without it is refused.
    :param chunk: the new chunk size in bytes.
    :param layout: the new layout (mdadm's name or md's number). RAID-10: ``nX`` <-> ``oX``
        with the same X (md keeps the number of copies; far layouts cannot be reshaped).
    :param level: a level change, done as md does (takeover, plus md's recovery or a
        reshape around it; ``src/reshape/level.rs``): raid5 -> raid6 (one spare added for
        Q), raid6 -> raid5 (the Q member becomes a spare), raid4 <-> raid5 parity-last,
        raid0 (one zone) -> raid4/raid5 (the new member's path among ``members``: it gets
        the parity), raid4/raid5 parity-last without its parity member -> raid0. Run again
        after an interruption to finish it.
    :param continue_only: only finish a reshape in progress (``grow --continue``).
    :param revert: go back instead (``grow --continue --revert``): turn the reshape in
        progress around and run it back to the geometry it started from (see
        :func:`grow_continue`). No geometry argument may be given with it.
    :param force: go on where bytes next to an interrupted reshape's boundary cannot be
        decided (reported uncertain by the reader).
    :param backup_file: mdadm's backup file of an interrupted in-place reshape (read where
        the members cannot decide). fastraid's own in-place reshapes journal the rows they
        move to ``fastraid-reshape-<uuid>.journal`` next to the first member (mdadm's
        backup format), removed when the reshape ends.
    :raises NotSupportedError: what fastraid cannot reshape (other level changes, a shrink
        without ``array_size``, metadata 0.90, degraded arrays; RAID-10: far layouts, another
        number of copies, shrinking, no free space to move the data to).
    """
    return _core.plan_reshape(
        [os.fspath(m) for m in members],
        raid_devices=raid_devices,
        level=_level(level),
        chunk=chunk,
        layout=None if layout is None else str(layout),
        continue_only=continue_only,
        force=force,
        backup_file=None if backup_file is None else os.fspath(backup_file),
        speed_limit=speed_limit,
        batch_bytes=batch_bytes,
        checkpoint_bytes=checkpoint_bytes,
        array_size=array_size,
        revert=revert,
    )


def reshape(
    members: Sequence[StrPath],
    *,
    raid_devices: int | None = None,
    level: int | str | None = None,
    chunk: int | None = None,
    layout: str | int | None = None,
    progress: Progress | None = None,
    force: bool = False,
    speed_limit: int | None = None,
    batch_bytes: int | None = None,
    checkpoint_bytes: int | None = None,
    array_size: int | None = None,
    backup_file: StrPath | None = None,
) -> dict[str, Any]:
    """Reshape (see :func:`plan_reshape`); a reshape in progress with the same target is
    continued. Returns a dict: ``resumed_from``, ``bytes_written``, ``total``,
    ``checkpoints``, ``events``, ``size``, ``seconds``."""
    plan = plan_reshape(
        members,
        raid_devices=raid_devices,
        level=level,
        chunk=chunk,
        layout=layout,
        force=force,
        speed_limit=speed_limit,
        batch_bytes=batch_bytes,
        checkpoint_bytes=checkpoint_bytes,
        array_size=array_size,
        backup_file=backup_file,
    )
    return plan.execute(progress)


def grow_continue(
    members: Sequence[StrPath],
    *,
    progress: Progress | None = None,
    force: bool = False,
    backup_file: StrPath | None = None,
    speed_limit: int | None = None,
    batch_bytes: int | None = None,
    checkpoint_bytes: int | None = None,
    revert: bool = False,
) -> dict[str, Any]:
    """Finish the reshape that md (or fastraid) left interrupted on ``members``
    (``mdadm --grow --continue``); afterwards the array is in the new geometry, clean.

    With ``revert=True`` the array goes back to the geometry the reshape started from
    instead: the reshape is advanced to a stripe boundary of both geometries where needed,
    turned around in every superblock (md's revert-reshape) and run back; members a grow
    added become spares, members a shrink was removing are members again (the bytes past
    what the shrink kept read as zeros). Crash-safe at every step: run the same call again
    (or, once the reshape is turned around, a plain ``grow_continue`` or the kernel) to
    finish it. A reshape that has moved nothing yet is simply cancelled.

    A RAID-0 grow (a RAID-4 reshape whose only missing member is the parity, as mdadm
    leaves it; or one of fastraid's steps before or after that reshape) is finished as
    mdadm would have: the reshape, then the takeover back to RAID-0. Give the new members
    among ``members`` when the grow was stopped before they were added.

    :raises InvalidArgumentError: no reshape is in progress.
    :raises NotSupportedError: a kind of reshape fastraid does not finish (see
        :func:`plan_reshape`), or bytes near the boundary are uncertain and not ``force``;
        with ``revert``, also a reshape that cannot be turned around safely (too little
        free space to move the data back, too close to its end): the message says why.
    """
    plan = plan_reshape(
        members,
        continue_only=True,
        force=force,
        backup_file=backup_file,
        speed_limit=speed_limit,
        batch_bytes=batch_bytes,
        checkpoint_bytes=checkpoint_bytes,
        revert=revert,
    )
    return plan.execute(progress)


__all__ = ["Progress", "grow_continue", "plan_reshape", "reshape"]
