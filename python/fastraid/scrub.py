"""Scrub an md array: ``check`` reports what does not agree, ``repair`` fixes it.

::

    r = fastraid.check(["d0.img", "d1.img", "d2.img", "d3.img", "d4.img"])
    r.mismatch_cnt            # md's counter, in 512-byte sectors
    for f in r.findings:      # one per stripe (RAID-10: chunk, RAID-1: 64 KiB block)
        print(f.unit, f.verdict, f.suspects, f.ranges)
    fastraid.repair([...])    # RAID-6: rewrites only the member the syndrome names

What each level can tell, what repair writes, how ``mismatch_cnt`` relates to md's and the
checkpoint's write order are described in ``src/scrub.rs`` (module doc); the work is done
there, with the GIL released.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from . import _core

Member = str | os.PathLike[str]
Progress = Callable[[int, int, float], object]


@dataclass(frozen=True)
class Range:
    """Mismatching bytes ``offset .. offset + length`` of a finding's unit.

    ``member`` is the member they are on (``None``: which member is wrong is unknown; the
    bytes at that offset of every member of the stripe, or of every copy, are involved).
    ``dev_offset`` is the byte offset in that member's data area (``None`` with no member).
    """

    member: int | None
    offset: int
    length: int
    dev_offset: int | None


@dataclass(frozen=True)
class Finding:
    """One unit that does not check out.

    :ivar unit: stripe number (RAID-4/5/6), array chunk (RAID-10), 64 KiB block (RAID-1).
    :ivar verdict: ``"located"`` (``suspects`` are wrong), ``"unlocated"`` (inconsistent,
        the wrong member cannot be known) or ``"ambiguous"`` (RAID-6: no single member
        explains it).
    :ivar reason: ``syndrome``, ``parity``, ``degraded``, ``majority``, ``prefer``, ``copies``.
    :ivar locations: ``(member, byte offset of the unit in its data area)`` per present member.
    :ivar mismatch_sectors: this unit's part of ``mismatch_cnt``.
    :ivar rewritten: members repair wrote to.
    :ivar action: what repair did (or would do, after a check), in words.
    """

    unit: int
    verdict: str
    reason: str
    suspects: tuple[int, ...]
    locations: tuple[tuple[int, int], ...]
    ranges: tuple[Range, ...]
    ranges_truncated: bool
    mismatch_sectors: int
    rewritten: tuple[int, ...]
    action: str


@dataclass(frozen=True)
class ScrubResult:
    """What a check or repair found (and did).

    ``mismatch_cnt`` counts 512-byte sectors as md does for RAID-4/5/6 (8 per 4 KiB stripe
    row that does not check out); for RAID-1/10, 8 per 4 KiB page per differing copy, where
    md counts a whole 64 KiB resync block, so md's value can be up to 16x larger.
    """

    mode: str
    uuid: str
    level: str
    raid_disks: int
    unit_bytes: int
    units: int
    mismatch_cnt: int
    findings: tuple[Finding, ...]
    findings_dropped: int
    units_unchecked: int
    bytes_unchecked: int
    bytes_written: int
    bytes_read: int
    seconds: float
    resumed_at: int
    checkpoint: str | None
    notes: tuple[str, ...]

    @property
    def clean(self) -> bool:
        """Nothing mismatched (units that could not be checked aside)."""
        return self.mismatch_cnt == 0 and not self.findings and not self.findings_dropped

    @property
    def suspects(self) -> list[int]:
        """Members named wrong by at least one finding."""
        return sorted({m for f in self.findings for m in f.suspects})

    @property
    def unresolved(self) -> list[Finding]:
        """Findings whose wrong member is unknown."""
        return [f for f in self.findings if f.verdict != "located"]

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON (``output_version`` 1)."""
        d = asdict(self)
        d["output_version"] = 1
        d["clean"] = self.clean
        d["suspects"] = self.suspects
        return d

    @classmethod
    def _from_core(cls, raw: dict[str, Any]) -> ScrubResult:
        findings = []
        for f in raw["findings"]:
            where = dict(f["locations"])
            ranges = tuple(
                Range(m, o, n, None if m is None or m not in where else where[m] + o)
                for m, o, n in f["ranges"]
            )
            findings.append(
                Finding(
                    unit=f["unit"],
                    verdict=f["verdict"],
                    reason=f["reason"],
                    suspects=tuple(f["suspects"]),
                    locations=tuple((m, o) for m, o in f["locations"]),
                    ranges=ranges,
                    ranges_truncated=f["ranges_truncated"],
                    mismatch_sectors=f["mismatch_sectors"],
                    rewritten=tuple(f["rewritten"]),
                    action=f["action"],
                )
            )
        return cls(
            mode=raw["mode"],
            uuid=raw["uuid"],
            level=raw["level"],
            raid_disks=raw["raid_disks"],
            unit_bytes=raw["unit_bytes"],
            units=raw["units"],
            mismatch_cnt=raw["mismatch_cnt"],
            findings=tuple(findings),
            findings_dropped=raw["findings_dropped"],
            units_unchecked=raw["units_unchecked"],
            bytes_unchecked=raw["bytes_unchecked"],
            bytes_written=raw["bytes_written"],
            bytes_read=raw["bytes_read"],
            seconds=raw["seconds"],
            resumed_at=raw["resumed_at"],
            checkpoint=raw["checkpoint"],
            notes=tuple(raw["notes"]),
        )


def _run(
    members: Sequence[Member],
    *,
    repair: bool,
    prefer: int | None,
    unresolved: str | None,
    checkpoint: Member | bool | None,
    resume: bool,
    checkpoint_interval: float,
    speed_limit: int | None,
    batch_bytes: int,
    max_findings: int,
    force: bool,
    kernel: str | None,
    progress: Progress | None,
) -> ScrubResult:
    if isinstance(members, str | bytes | os.PathLike):
        raise TypeError("members: expected a sequence of paths, got a single path")
    ck: str | bool | None = (
        checkpoint if checkpoint is None or isinstance(checkpoint, bool) else os.fspath(checkpoint)
    )
    raw = _core.scrub(
        [os.fspath(m) for m in members],
        repair=repair,
        prefer=prefer,
        unresolved=unresolved,
        checkpoint=ck,
        resume=resume,
        checkpoint_interval=checkpoint_interval,
        speed_limit=speed_limit,
        batch_bytes=batch_bytes,
        max_findings=max_findings,
        force=force,
        kernel=kernel,
        progress=progress,
    )
    return ScrubResult._from_core(raw)


def check(
    members: Sequence[Member],
    *,
    progress: Progress | None = None,
    checkpoint: Member | bool | None = None,
    resume: bool = False,
    checkpoint_interval: float = 5.0,
    speed_limit: int | None = None,
    batch_bytes: int = 1 << 20,
    max_findings: int = 100_000,
    force: bool = False,
    kernel: str | None = None,
) -> ScrubResult:
    """Read every stripe of the md array made of ``members`` and report what disagrees.
    Writes nothing to the members.

    :param members: member images or devices, any order (assembled as ``fastraid.open`` does;
        missing members: what can still be checked is, the rest is counted unchecked).
    :param progress: ``progress(done, total, rate)`` after every batch: member bytes covered,
        of the total, and bytes read per second. An exception it raises stops the scrub (the
        checkpoint keeps the place) and is re-raised.
    :param checkpoint: where the resume checkpoint goes: ``None``/``True`` next to the first
        member (``<member>.fastraid-scrub``), a path, or ``False`` for none. Removed when the
        scrub finishes.
    :param resume: continue from the checkpoint (from the start when there is none).
    :param checkpoint_interval: seconds between checkpoint saves (0: after every batch).
    :param speed_limit: at most this many member bytes read per second.
    :param batch_bytes: bytes read per member per batch.
    :param max_findings: findings listed; more are only counted.
    :param force: assemble with stale members (``mdadm --force``).
    :param kernel: parity kernel name (default: the fastest).
    :raises CancelledError: the progress callback stopped the scrub.
    :raises AssemblyError, MemberError, InvalidArgumentError: as the names say (a checkpoint
        made for other members or options is an ``InvalidArgumentError``).
    """
    return _run(
        members,
        repair=False,
        prefer=None,
        unresolved=None,
        checkpoint=checkpoint,
        resume=resume,
        checkpoint_interval=checkpoint_interval,
        speed_limit=speed_limit,
        batch_bytes=batch_bytes,
        max_findings=max_findings,
        force=force,
        kernel=kernel,
        progress=progress,
    )


def repair(
    members: Sequence[Member],
    *,
    prefer: int | None = None,
    unresolved: str | None = None,
    progress: Progress | None = None,
    checkpoint: Member | bool | None = None,
    resume: bool = False,
    checkpoint_interval: float = 5.0,
    speed_limit: int | None = None,
    batch_bytes: int = 1 << 20,
    max_findings: int = 100_000,
    force: bool = False,
    kernel: str | None = None,
) -> ScrubResult:
    """Check the array and fix what can be fixed; returns what was found and written.

    Only bytes found wrong are rewritten: on RAID-6 the one member the syndrome names; on
    RAID-1/10 the copies that differ from the majority or from ``prefer``.

    :param prefer: a member index (slot). RAID-1/10: the copy to trust. RAID-4/5: the member
        to rebuild from the others where a stripe does not check out (instead of recomputing
        the parity). Refused for RAID-6, which names the member itself.
    :param unresolved: where the wrong member cannot be told (RAID-4/5 stripes, ambiguous
        RAID-6 stripes, two disagreeing copies): ``"md"`` does what md's repair does
        (recompute parity; copy the first copy over the others), ``"leave"`` writes nothing.
        ``None``: ``"md"`` for RAID-4/5, ``"leave"`` for RAID-6 and mirrors.

    Other arguments as :func:`check`. A repair killed at any point and resumed gives the
    same result as one run straight through.
    """
    return _run(
        members,
        repair=True,
        prefer=prefer,
        unresolved=unresolved,
        checkpoint=checkpoint,
        resume=resume,
        checkpoint_interval=checkpoint_interval,
        speed_limit=speed_limit,
        batch_bytes=batch_bytes,
        max_findings=max_findings,
        force=force,
        kernel=kernel,
        progress=progress,
    )


__all__ = ["Finding", "Range", "ScrubResult", "check", "repair"]
