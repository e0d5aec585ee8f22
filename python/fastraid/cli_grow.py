"""``fastraid grow``, in mdadm's vocabulary.

    fastraid grow a.img b.img c.img --add d.img --raid-devices 4   # 3 -> 4 members
    fastraid grow a.img b.img c.img d.img --continue                # finish an interrupted one
    fastraid grow a.img b.img c.img d.img --continue --revert       # ... or go back instead

A RAID-0 grows the same way (``--add`` the new members, ``--raid-devices``), as mdadm does
it: takeover to a RAID-4 without its parity member, reshape, takeover back to RAID-0;
``--continue`` also finishes a RAID-0 grow that the kernel left interrupted.

It prints the plan (steps, space needed, what a power cut at each step would lose) and asks
unless ``--yes``; ``--dry-run`` only prints it. Progress is a bar on a terminal (rich), JSON
lines with ``--progress=json``, nothing with ``--quiet``. Ctrl-C stops at a checkpoint and
prints the command that resumes (the kernel can also finish it).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from typing import Any

from ._errors import FastRaidError
from .cli_create import parse_size
from .cli_rebuild import confirm, execute
from .reshape import plan_reshape


def register(subparsers: Any) -> None:
    """Add the ``grow`` verb to an argparse sub-parser set."""
    p = subparsers.add_parser(
        "grow", help="reshape an array: more members, another chunk or layout (--continue)"
    )
    p.add_argument("members", nargs="+", help="the array's members (any order)")
    p.add_argument("--add", nargs="+", default=[], metavar="NEW", help="new members to add")
    p.add_argument("-n", "--raid-devices", type=int, help="new number of members")
    p.add_argument("--level", help="new level: raid5 <-> raid6, raid4 <-> raid5, raid0 <-> raid4/5")
    p.add_argument("-c", "--chunk", type=parse_size, help="new chunk size (e.g. 128K)")
    p.add_argument("--layout", help="new layout (mdadm's name; RAID-10: n2 <-> o2, same copies)")
    p.add_argument(
        "-Z",
        "--array-size",
        type=parse_size,
        help="shrinking: the array bytes kept (at most what the fewer members hold)",
    )
    p.add_argument("--continue", dest="cont", action="store_true", help="finish a reshape")
    p.add_argument(
        "--revert",
        action="store_true",
        help="turn an interrupted reshape around: back to the geometry it started from",
    )
    p.add_argument("--backup-file", help="mdadm's backup file of an interrupted in-place reshape")
    p.add_argument("--force", action="store_true", help="go on over uncertain bytes")
    p.add_argument("--dry-run", action="store_true", help="print the plan, write nothing")
    p.add_argument("--speed-limit", type=parse_size, help="bytes/s at most (e.g. 100M)")
    p.add_argument("-y", "--yes", action="store_true", help="do not ask before writing")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    p.add_argument(
        "--progress", choices=("auto", "bar", "json", "none"), default="auto", help="display"
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run)


def _resume_command(args: argparse.Namespace) -> str:
    # A revert resumes with --revert too: after the turn-around it goes on with it.
    flags = ["--continue", "--revert"] if args.revert else ["--continue"]
    return shlex.join(["fastraid", "grow", *args.members, *args.add, *flags, "--yes"])


def run(args: argparse.Namespace) -> int:
    """Carry out ``grow``; returns the exit status."""
    out, err = sys.stdout, sys.stderr
    members = list(args.members)
    if args.revert and (args.add or args.raid_devices or args.level or args.chunk or args.layout):
        err.write("fastraid grow: --revert goes back to the old geometry: give no new one\n")
        return 1
    if args.add and not args.dry_run:
        from .array import open as open_array

        if not args.yes and not sys.stdin.isatty():
            err.write("fastraid grow: not confirmed; pass --yes to go ahead\n")
            return 1
        try:
            with open_array(members, force=args.force) as a:
                # RAID-0 has no spares: the new member is handed to the level change as is.
                for new in args.add if a.level != "raid0" else []:
                    a.add(new)
        except FastRaidError as e:
            err.write(f"fastraid grow: --add: {e}\n")
            return 1
    members += [m for m in args.add if m not in members]
    try:
        plan = plan_reshape(
            members,
            raid_devices=args.raid_devices,
            level=args.level,
            chunk=args.chunk,
            layout=args.layout,
            continue_only=args.cont or args.revert,
            revert=args.revert,
            force=args.force,
            backup_file=args.backup_file,
            speed_limit=args.speed_limit,
            array_size=args.array_size,
        )
    except FastRaidError as e:
        err.write(f"fastraid grow: {e}\n")
        return 1
    if not args.quiet or args.dry_run:
        out.write(str(plan))
        out.flush()
    if args.dry_run:
        if args.json:
            out.write(json.dumps(plan.describe()) + "\n")
        return 0
    if not confirm("grow", args.yes):
        return 1
    args.verb = "grow"
    report = execute(plan, args, _resume_command(args), hint=lambda e: True)
    if isinstance(report, int):
        return report
    if args.json:
        out.write(json.dumps(report) + "\n")
    elif not args.quiet:
        out.write(
            f"{'reverted' if args.revert else 'reshaped'}: "
            f"{report['bytes_written'] >> 20} MiB written in "
            f"{report['seconds']:.1f} s; array size {report['size']} bytes\n"
        )
    return 0


__all__ = ["register", "run"]
