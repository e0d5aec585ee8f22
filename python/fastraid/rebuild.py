"""Rebuild a lost member of an md array, or replace a member, the way md's recovery does.

``rebuild(members, new="sdx.img")`` reconstructs the missing slot from the survivors
(mirror copies, XOR or RAID-6 P+Q) onto ``new``, checkpointing its progress in the new
member's superblock (md's ``recovery_offset``): a rebuild that is interrupted, even by
kill -9 or a power cut, continues where it stopped when run again, and ends byte-identical
to an uninterrupted one. When it is done, the Linux kernel assembles the array clean.

``replace(members, slot, "new.img")`` copies a present member onto a new device (the old
one is marked faulty at the end), as ``mdadm --replace`` does.

The work is in the Rust core (``src/rebuild.rs``); this module shapes arguments and the
result. ``plan_rebuild`` reads only and says what would be done (``str(plan)``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

from . import _core

StrPath = str | os.PathLike[str]
#: ``progress(done, total, rate)``: bytes of the member rebuilt, bytes in all, bytes/s.
Progress = Callable[[int, int, float], object]


def plan_rebuild(
    members: Sequence[StrPath],
    *,
    slot: int | None = None,
    new: StrPath | None = None,
    replace: bool = False,
    force: bool = False,
    speed_limit: int | None = None,
    batch_bytes: int | None = None,
    checkpoint_bytes: int | None = None,
) -> _core.RebuildPlan:
    """Decide what a rebuild (or replace) would do, without writing anything.

    :param members: the array's members (any order); may include a partially rebuilt member
        (it is resumed) or a spare (used as the target when ``new`` is not given).
    :param slot: the slot to rebuild; default: a partially rebuilt one, else the lowest
        missing slot. Required for ``replace``.
    :param new: the device or image file to write; created sparse (as large as the largest
        member) when it does not exist.
    :param replace: copy the present member of ``slot`` onto ``new`` (``mdadm --replace``).
    :param force: overwrite a target holding another array's superblock or a file system;
        rebuild from the parity of an array that was not stopped cleanly.
    :param speed_limit: bytes per second written at most.
    :param batch_bytes: bytes per batch (default 1 MiB).
    :param checkpoint_bytes: bytes between checkpoints (default 256 MiB, also every 5 s;
        0 = after every batch).
    :raises AssemblyError: the members do not make an array, or too many are missing.
    :raises MemberInUseError: ``new`` holds something else and ``force`` is false.
    :raises InvalidArgumentError: nothing to rebuild, a bad slot, a target that is a member.
    """
    return _core.plan_rebuild(
        [os.fspath(m) for m in members],
        slot=slot,
        new=None if new is None else os.fspath(new),
        replace=replace,
        force=force,
        speed_limit=speed_limit,
        batch_bytes=batch_bytes,
        checkpoint_bytes=checkpoint_bytes,
    )


def rebuild(
    members: Sequence[StrPath],
    *,
    slot: int | None = None,
    new: StrPath | None = None,
    progress: Progress | None = None,
    speed_limit: int | None = None,
    force: bool = False,
    batch_bytes: int | None = None,
    checkpoint_bytes: int | None = None,
) -> dict[str, Any]:
    """Rebuild one slot of the array onto ``new`` (see :func:`plan_rebuild`).

    ``progress(done, total, rate)`` is called after every batch; an exception it raises
    (or Ctrl-C) stops the rebuild at a checkpoint and is re-raised with a note; run the
    same call again to resume.

    :returns: a dict: ``slot``, ``target``, ``dev_number``, ``resumed_from``,
        ``bytes_written``, ``total``, ``events``, ``created``, ``seconds``.
    """
    plan = plan_rebuild(
        members,
        slot=slot,
        new=new,
        force=force,
        speed_limit=speed_limit,
        batch_bytes=batch_bytes,
        checkpoint_bytes=checkpoint_bytes,
    )
    return plan.execute(progress)


def replace(
    members: Sequence[StrPath],
    slot: int,
    new_path: StrPath,
    progress: Progress | None = None,
    *,
    speed_limit: int | None = None,
    force: bool = False,
    batch_bytes: int | None = None,
    checkpoint_bytes: int | None = None,
) -> dict[str, Any]:
    """Replace the member in ``slot`` by ``new_path`` while the array stays redundant: its
    data is copied (rebuilt from the others where it cannot be read); at the end the old
    member is marked faulty. Interrupted, it resumes like :func:`rebuild`.

    :returns: as :func:`rebuild`, plus ``replaced`` (the old member's path).
    """
    plan = plan_rebuild(
        members,
        slot=slot,
        new=new_path,
        replace=True,
        force=force,
        speed_limit=speed_limit,
        batch_bytes=batch_bytes,
        checkpoint_bytes=checkpoint_bytes,
    )
    return plan.execute(progress)
