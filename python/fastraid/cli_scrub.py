"""``fastraid check`` and ``fastraid repair``: scrub an md array.

    fastraid check d0.img d1.img d2.img d3.img d4.img
    fastraid repair d*.img --prefer 1 --yes

``check`` reads only; ``repair`` prints what it will do and asks unless ``--yes``. Both
keep a checkpoint (``--checkpoint``, default next to the first member) so that ``--resume``
continues after Ctrl-C or a kill. Exit code: 0 consistent (or, for repair, everything
found was fixed), 1 mismatches found (check) or left unfixed (repair), 2 error.
``register(subparsers)`` adds both verbs to a parser.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import IO, Any

from .cli_create import parse_size
from .scrub import Finding, ScrubResult, check, repair


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} TiB"


class _Progress:
    """Renders scrub progress: a rich bar on a terminal, JSON lines, or nothing."""

    def __init__(self, mode: str, label: str, out: IO[str]) -> None:
        self.mode = mode
        self.label = label
        self.out = out
        self._bar: Any = None
        self._task: Any = None
        self._last = 0.0

    def __call__(self, done: int, total: int, rate: float) -> None:
        if self.mode == "bar":
            if self._bar is None:
                from rich.console import Console
                from rich.progress import (
                    BarColumn,
                    DownloadColumn,
                    Progress,
                    TextColumn,
                    TimeRemainingColumn,
                    TransferSpeedColumn,
                )

                self._bar = Progress(
                    TextColumn(self.label),
                    BarColumn(),
                    DownloadColumn(binary_units=True),
                    TransferSpeedColumn(),
                    TimeRemainingColumn(),
                    console=Console(file=self.out),
                )
                self._bar.start()
                self._task = self._bar.add_task(self.label, total=total)
            self._bar.update(self._task, completed=done)
        elif self.mode == "json":
            now = time.monotonic()
            if now - self._last < 0.5 and done < total:
                return
            self._last = now
            event = {"event": "progress", "done": done, "total": total, "rate": round(rate)}
            print(json.dumps(event), file=self.out, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()


def _describe(f: Finding) -> str:
    who = ", ".join(str(m) for m in f.suspects) or "?"
    ranges = []
    for r in f.ranges[:4]:
        where = f"member {r.member} " if r.member is not None else ""
        ranges.append(f"{where}+{r.offset}..{r.offset + r.length}")
    more = len(f.ranges) - 4
    if more > 0 or f.ranges_truncated:
        ranges.append("...")
    return (
        f"  unit {f.unit}: {f.verdict} ({f.reason}), wrong member: {who}; "
        f"bytes {', '.join(ranges)}; {f.action}"
    )


def _summary(r: ScrubResult, out: IO[str]) -> None:
    rate = r.bytes_read / r.seconds if r.seconds > 0 else 0.0
    print(
        f"{r.mode}: {r.level}, {r.raid_disks} devices, {r.units} units of "
        f"{_human(r.unit_bytes)}; read {_human(r.bytes_read)} in {r.seconds:.1f} s "
        f"({_human(rate)}/s)",
        file=out,
    )
    print(f"mismatch_cnt: {r.mismatch_cnt}", file=out)
    if r.findings:
        print(f"findings: {len(r.findings) + r.findings_dropped}", file=out)
        for f in r.findings[:50]:
            print(_describe(f), file=out)
        if len(r.findings) > 50:
            print(f"  ... {len(r.findings) - 50} more (--json lists them all)", file=out)
    if r.suspects:
        print(f"members found wrong: {', '.join(str(m) for m in r.suspects)}", file=out)
    if r.mode == "repair":
        print(f"bytes written: {r.bytes_written}", file=out)
    for n in r.notes:
        print(f"note: {n}", file=out)


def _unfixed(r: ScrubResult) -> bool:
    if r.mode == "check":
        return not r.clean
    return any(not f.rewritten for f in r.findings) or r.findings_dropped > 0


def _plan(args: argparse.Namespace) -> str:
    lines = [
        f"fastraid repair will read every stripe of the array on {len(args.members)} members",
        "and rewrite only bytes found wrong:",
        "  RAID-6: the single member the syndrome names (P, Q or a data chunk);",
    ]
    if args.prefer is not None:
        lines.append(
            f"  RAID-1/10: copies that differ from member {args.prefer}'s; "
            f"RAID-4/5: member {args.prefer} rebuilt from the others where a stripe fails;"
        )
    else:
        lines.append("  RAID-1/10 (3+ copies): copies that differ from the majority;")
    unresolved = args.unresolved or "md for RAID-4/5, leave otherwise"
    lines.append(f"  where the wrong member cannot be told: {unresolved}.")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    out = sys.stdout
    mode = args.progress
    if args.quiet or args.json and mode == "auto":
        mode = "none"
    if mode == "auto":
        mode = "bar" if sys.stderr.isatty() else "none"
    if args.command_name == "repair" and not args.yes:
        if not args.quiet:
            print(_plan(args), file=sys.stderr)
        if not sys.stdin.isatty():
            print("fastraid: not repairing: no terminal to confirm on; pass --yes", file=sys.stderr)
            return 1
        if input("Continue repairing? [y/N] ").strip().lower() not in ("y", "yes"):
            print("fastraid: repair aborted, nothing written", file=sys.stderr)
            return 1
    progress = _Progress(mode, args.command_name, sys.stderr) if mode != "none" else None
    common: dict[str, Any] = {
        "progress": progress,
        "checkpoint": False if args.no_checkpoint else args.checkpoint,
        "resume": args.resume,
        "speed_limit": args.speed_limit,
        "force": args.force,
    }
    try:
        if args.command_name == "repair":
            r = repair(args.members, prefer=args.prefer, unresolved=args.unresolved, **common)
        else:
            r = check(args.members, **common)
    finally:
        if progress is not None:
            progress.close()
    if args.json:
        print(json.dumps(r.to_dict()), file=out)
    elif not args.quiet:
        _summary(r, out)
    return 1 if _unfixed(r) else 0


def _add(subparsers: Any, name: str, help_text: str) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = subparsers.add_parser(name, help=help_text, description=help_text)
    p.add_argument("members", nargs="+", metavar="MEMBER", help="member images or devices")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint")
    p.add_argument(
        "--checkpoint", metavar="FILE", help="checkpoint file (default: beside member 1)"
    )
    p.add_argument("--no-checkpoint", action="store_true", help="keep no checkpoint")
    p.add_argument(
        "--speed-limit",
        type=parse_size,
        metavar="RATE",
        help="at most RATE member bytes read per second (K/M/G suffix; bare number = KiB)",
    )
    p.add_argument("--force", action="store_true", help="use stale members where needed")
    p.add_argument("--progress", choices=("auto", "json", "none"), default="auto")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing (see the exit code)")
    p.set_defaults(func=run, command_name=name)
    return p


def register(subparsers: Any) -> None:
    """Add the ``check`` and ``repair`` verbs to ``subparsers``."""
    _add(
        subparsers,
        "check",
        "read every stripe and report mismatches (md's mismatch_cnt, exact byte ranges, "
        "the wrong member where it can be told); writes nothing",
    )
    p = _add(
        subparsers,
        "repair",
        "check, then rewrite the bytes found wrong (RAID-6: only the member the syndrome "
        "names); asks first unless --yes",
    )
    p.add_argument(
        "--prefer",
        type=int,
        metavar="N",
        help="RAID-1/10: trust member N's copy; RAID-4/5: rebuild member N from the others",
    )
    p.add_argument(
        "--unresolved",
        choices=("leave", "md"),
        help="where the wrong member is unknown: leave it, or do what md does (recompute "
        "parity / copy the first copy); default md for RAID-4/5, leave otherwise",
    )
    p.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
