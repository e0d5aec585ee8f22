"""Create md arrays that the Linux kernel assembles clean.

``plan_create`` reads the members and says what would be written (``str(plan)``);
``create`` plans and writes at once. The work is in the Rust core (``src/create.rs``,
``src/resync.rs``); this module only shapes the arguments and the result.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

from . import _core

Member = str | os.PathLike[str] | None
Progress = Callable[[int, int], object]


def plan_create(
    members: Sequence[Member],
    *,
    level: int | str,
    chunk: int = 512 * 1024,
    layout: str | int | None = None,
    size: int | None = None,
    name: str | None = None,
    force: bool = False,
    metadata: str = "1.2",
) -> _core.CreatePlan:
    """Plan a new md array over ``members`` without writing anything.

    :param members: one path per slot (image files or block devices); ``None`` leaves the
        slot missing (a degraded start, where the level allows it).
    :param level: ``0``, ``1``, ``4``, ``5``, ``6``, ``10``, ``"linear"`` or mdadm's names
        (``"raid5"``...).
    :param chunk: chunk size in bytes (a power of two of at least 4096 for RAID0/4/5/6/10).
    :param layout: mdadm's layout name (``"left-symmetric"``, ``"n2"``, ``"f2"``...) or md's
        number; ``None`` picks mdadm's default.
    :param size: size in bytes of member files that do not exist yet (created sparse).
    :param name: the array name (stored as ``host:name`` when it fits, like mdadm).
    :param force: overwrite members that hold md metadata or a file system.
    :param metadata: ``"1.2"`` (default), ``"1.1"`` or ``"1.0"``.
    :returns: a plan; ``str(plan)`` describes it, ``plan.describe()`` gives a dict,
        ``plan.execute(progress)`` writes it.
    :raises MemberInUseError: a member holds md metadata or a file system and ``force`` is
        false (the message says what was found).
    :raises InvalidArgumentError: bad level/layout/chunk, the same member twice, members too
        small, too many missing.
    """
    return _core.plan_create(
        [None if m is None else os.fspath(m) for m in members],
        level=level,
        chunk=chunk,
        layout=layout,
        size=size,
        name=name,
        force=force,
        metadata=metadata,
    )


def create(
    members: Sequence[Member],
    *,
    level: int | str,
    chunk: int = 512 * 1024,
    layout: str | int | None = None,
    size: int | None = None,
    name: str | None = None,
    force: bool = False,
    metadata: str = "1.2",
    progress: Progress | None = None,
) -> Any:
    """Create a new md array (metadata 1.2 by default) over ``members`` and open it.

    Arguments as :func:`plan_create`; ``progress(done, total)`` follows the initial sync in
    bytes (only members with old content need one: new sparse files are zeros, which is
    consistent). The data offset, superblocks and roles are what ``mdadm --create`` writes,
    so Linux assembles the result without a resync.

    :returns: the opened array (``fastraid.open``), or, while this build has no
        ``fastraid.open``, a dict describing the array that was written.
    """
    plan = plan_create(
        members,
        level=level,
        chunk=chunk,
        layout=layout,
        size=size,
        name=name,
        force=force,
        metadata=metadata,
    )
    report = plan.execute(progress)
    info: dict[str, Any] = dict(plan.describe())
    info["report"] = report
    return _open_created([m for m in members if m is not None], info)


def _open_created(paths: list[Member], info: dict[str, Any]) -> Any:
    """Glue while ``fastraid.open`` is being written elsewhere: open the new array for
    writing if ``open`` can, else read-only, else hand back the description."""
    import fastraid

    opener = getattr(fastraid, "open", None)
    if opener is None:
        return info
    try:
        return opener(paths)
    except NotImplementedError:  # NotSupportedError: a read-only open() refuses writing
        return opener(paths, readonly=True)
