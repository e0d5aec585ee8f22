"""``fastraid rebuild`` and ``fastraid replace``, in mdadm's vocabulary.

    fastraid rebuild a.img b.img d.img --new c2.img          # the missing slot onto c2.img
    fastraid replace a.img b.img c.img d.img --slot 2 --with e.img

Each prints what it is about to write and asks unless ``--yes``; progress is a bar on a
terminal (rich), JSON lines with ``--progress=json``, nothing with ``--quiet``. Ctrl-C
stops at a checkpoint (recorded in the new member's superblock) and prints the command
that resumes. ``register(subparsers)`` adds both verbs to a parser.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from collections.abc import Callable
from typing import Any

from ._errors import FastRaidError
from .cli_create import parse_size
from .rebuild import plan_rebuild


def register(subparsers: Any) -> None:
    """Add the ``rebuild`` and ``replace`` verbs to an argparse sub-parser set."""
    for verb in ("rebuild", "replace"):
        p = subparsers.add_parser(
            verb,
            help=(
                "rebuild a missing or failed member onto a new device or file"
                if verb == "rebuild"
                else "copy a member onto a new device while the array stays redundant"
            ),
        )
        p.add_argument("members", nargs="+", help="the array's members (any order)")
        if verb == "rebuild":
            p.add_argument("--slot", type=int, help="slot to rebuild (default: the missing one)")
            p.add_argument("--new", help="device or image file to write (created if missing)")
        else:
            p.add_argument("--slot", type=int, required=True, help="slot of the member to replace")
            p.add_argument("--with", dest="new", required=True, help="the new device or file")
        p.add_argument("--speed-limit", type=parse_size, help="bytes/s at most (e.g. 100M)")
        p.add_argument("--force", action="store_true", help="overwrite a target in use")
        p.add_argument("-y", "--yes", action="store_true", help="do not ask before writing")
        p.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
        p.add_argument(
            "--progress", choices=("auto", "bar", "json", "none"), default="auto", help="display"
        )
        p.add_argument("--json", action="store_true", help="print the result as JSON")
        p.set_defaults(func=run, verb=verb)


def _resume_command(args: argparse.Namespace) -> str:
    parts = ["fastraid", args.verb, *args.members]
    if args.slot is not None:
        parts += ["--slot", str(args.slot)]
    if args.new is not None:
        parts += ["--new" if args.verb == "rebuild" else "--with", args.new]
    return shlex.join([*parts, "--yes"])


def _progress(mode: str, out: Any) -> tuple[Any, Any]:
    """(callback, close) for the chosen display."""
    if mode == "auto":
        mode = "bar" if out.isatty() else "none"
    if mode == "json":
        last = [0.0]

        def emit(done: int, total: int, rate: float) -> None:
            now = time.monotonic()
            if now - last[0] >= 0.5 or done == total:
                last[0] = now
                out.write(json.dumps({"done": done, "total": total, "rate": rate}) + "\n")
                out.flush()

        return emit, lambda: None
    if mode == "bar":
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        bar = Progress(
            "recovery",
            BarColumn(),
            DownloadColumn(binary_units=True),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            transient=True,
        )
        bar.start()
        task = bar.add_task("recovery", total=None)

        def show(done: int, total: int, rate: float) -> None:
            bar.update(task, completed=done, total=total)

        return show, bar.stop
    return None, lambda: None


def confirm(verb: str, yes: bool) -> bool:
    """Ask before writing, unless ``yes``; False (with a message) when not confirmed. Not
    on a terminal, only ``--yes`` confirms."""
    if yes:
        return True
    if not sys.stdin.isatty():
        sys.stderr.write(f"fastraid {verb}: not confirmed; pass --yes to go ahead\n")
        return False
    if input("Continue? [y/N] ").strip().lower() in ("y", "yes"):
        return True
    sys.stderr.write(f"fastraid {verb}: nothing written\n")
    return False


def execute(
    plan: Any, args: argparse.Namespace, resume: str, *, hint: Callable[[Exception], bool]
) -> dict[str, Any] | int:
    """Run a long operation's plan with the chosen progress display; its report, or the
    exit status after Ctrl-C (130, with the command that resumes) or an error (1; the resume
    command too where ``hint(error)`` says a rerun continues)."""
    err = sys.stderr
    callback, close = _progress("none" if args.quiet else args.progress, sys.stdout)
    try:
        report: dict[str, Any] = plan.execute(callback)
    except KeyboardInterrupt as e:
        close()
        for note in getattr(e, "__notes__", []):
            err.write(f"{note}\n")
        err.write(f"interrupted; to resume: {resume}\n")
        return 130
    except FastRaidError as e:
        close()
        err.write(f"fastraid {args.verb}: {e}\n")
        if hint(e):
            err.write(f"to resume: {resume}\n")
        return 1
    close()
    return report


def run(args: argparse.Namespace) -> int:
    """Carry out ``rebuild`` / ``replace``; returns the exit status."""
    out, err = sys.stdout, sys.stderr
    try:
        plan = plan_rebuild(
            args.members,
            slot=args.slot,
            new=args.new,
            replace=args.verb == "replace",
            force=args.force,
            speed_limit=args.speed_limit,
        )
    except FastRaidError as e:
        err.write(f"fastraid {args.verb}: {e}\n")
        return 1
    if not args.quiet:
        out.write(str(plan))
        out.flush()
    if not confirm(args.verb, args.yes):
        return 1
    report = execute(
        plan,
        args,
        _resume_command(args),
        hint=lambda e: bool(plan.describe()["start"]) or "resume" in str(e),
    )
    if isinstance(report, int):
        return report
    if args.json:
        out.write(json.dumps(report) + "\n")
    elif not args.quiet:
        out.write(
            f"slot {report['slot']} rebuilt onto {report['target']}: "
            f"{report['bytes_written'] >> 20} MiB in {report['seconds']:.1f} s"
            + (f"; {report['replaced']} marked faulty" if report["replaced"] else "")
            + "\n"
        )
    return 0


def _main(argv: list[str] | None = None) -> int:  # pragma: no cover - for manual use
    parser = argparse.ArgumentParser(prog="fastraid")
    register(parser.add_subparsers(required=True))
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code


__all__ = ["confirm", "execute", "register", "run"]
