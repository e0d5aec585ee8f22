"""``fastraid create``: make a new md array, in mdadm's vocabulary.

    fastraid create a.img b.img c.img --level 5 --raid-devices 3 --chunk 512K --size 1G

prints what it is about to write (the plan), asks ``Continue creating array?`` unless
``--yes`` (mdadm's ``--run``), then writes. ``missing`` in place of a member leaves that
slot empty (a degraded start). ``register(subparsers)`` adds the verb to a parser.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from typing import Any

from ._errors import InvalidArgumentError
from .create import plan_create

_UNITS = {"": 1024, "B": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


def parse_size(text: str) -> int:
    """mdadm's sizes: a number with an optional K/M/G/T suffix (powers of 1024); a bare
    number means KiB, as for ``mdadm --chunk`` and ``--size``; ``B`` means bytes."""
    m = re.fullmatch(r"\s*(\d+)\s*([BKMGT]?)(?:i?B)?\s*", text, re.IGNORECASE)
    if not m:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 512K, 64M, 2G)")
    return int(m.group(1)) * _UNITS[m.group(2).upper()]


def _progress_printer(stream: Any) -> Any:
    """A progress callback that redraws one line on a terminal (nothing otherwise)."""
    if not stream.isatty():
        return None

    def show(done: int, total: int) -> None:
        pct = 100.0 * done / total if total else 100.0
        stream.write(f"\rinitial sync: {pct:5.1f}% ({done >> 20}/{total >> 20} MiB)")
        if done >= total:
            stream.write("\n")
        stream.flush()

    return show


def run(args: argparse.Namespace) -> int:
    members = [None if m == "missing" else m for m in args.members]
    if args.raid_devices is not None and args.raid_devices != len(members):
        raise InvalidArgumentError(
            f"--raid-devices is {args.raid_devices} but {len(members)} members were given "
            "(write 'missing' for an empty slot)"
        )
    plan = plan_create(
        members,
        level=args.level,
        chunk=args.chunk,
        layout=args.layout,
        size=args.size,
        name=args.name,
        force=args.force,
        metadata=args.metadata,
    )
    out = sys.stdout
    if not args.json and not args.quiet:
        print(plan, file=out)
    if not args.yes:
        if not sys.stdin.isatty():
            print(
                "fastraid: not creating: no terminal to confirm on; pass --yes",
                file=sys.stderr,
            )
            return 1
        answer = input("Continue creating array? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("fastraid: create aborted, nothing written", file=sys.stderr)
            return 1
    progress = None if (args.json or args.quiet) else _progress_printer(sys.stderr)
    report = plan.execute(progress)
    if args.json:
        print(json.dumps({"output_version": 1, "plan": plan.describe(), "result": report}))
    elif not args.quiet:
        print(f"fastraid: array {report['uuid']} created ({report['array_size']} bytes)")
    return 0


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``create`` verb to ``subparsers`` (from ``ArgumentParser.add_subparsers``)."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "create",
        help="create a new md array (metadata 1.2) that Linux assembles",
        description=(
            "Create a Linux md array over image files or block devices. Prints what will be "
            "written and asks first unless --yes. Members holding md metadata or a file "
            "system are refused unless --force."
        ),
    )
    p.add_argument(
        "members",
        nargs="+",
        metavar="MEMBER",
        help="image file or block device per slot; 'missing' leaves the slot empty",
    )
    p.add_argument("-l", "--level", required=True, help="0, 1, 4, 5, 6, 10 or linear")
    p.add_argument(
        "-n", "--raid-devices", type=int, help="number of slots (must match the members)"
    )
    p.add_argument(
        "-c",
        "--chunk",
        type=parse_size,
        default=512 * 1024,
        help="chunk size (K/M suffix; a bare number is KiB; default 512K)",
    )
    p.add_argument(
        "-p", "--layout", help="left-symmetric, right-asymmetric, parity-first, n2, f2, o2, ..."
    )
    p.add_argument(
        "-z",
        "--size",
        type=parse_size,
        help="size of member files that do not exist yet (created sparse; K/M/G/T suffix)",
    )
    p.add_argument("-N", "--name", help="array name (stored as host:name when it fits)")
    p.add_argument("-e", "--metadata", default="1.2", choices=["1.0", "1.1", "1.2"])
    p.add_argument(
        "-f", "--force", action="store_true", help="overwrite md metadata or file systems"
    )
    p.add_argument(
        "-y", "--yes", "--run", dest="yes", action="store_true", help="do not ask for confirmation"
    )
    p.add_argument("--json", action="store_true", help="machine-readable plan and result")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    p.set_defaults(func=run)
    return p
