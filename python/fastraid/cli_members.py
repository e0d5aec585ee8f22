"""``fastraid fail``, ``fastraid remove`` and ``fastraid add``, in mdadm's vocabulary.

    fastraid fail a.img b.img c.img --slot 1            # mdadm --fail
    fastraid remove a.img b.img c.img --member b.img    # mdadm --remove (a failed/spare one)
    fastraid add a.img c.img --spare d.img              # mdadm --add

The members are the array's paths (any order), as for every other verb. Each command says
what it is about to change and asks unless ``--yes``; ``--json`` prints the result as JSON.
After ``add`` to a degraded array, ``fastraid rebuild MEMBERS... SPARE`` rebuilds onto the
spare (md starts that recovery by itself; fastraid waits to be told).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from typing import Any

from .array import Array
from .array import open as open_array
from .cli_rebuild import confirm


def register(subparsers: Any) -> None:
    """Add the ``fail``, ``remove`` and ``add`` verbs to an argparse sub-parser set."""
    p = subparsers.add_parser("fail", help="mark a member faulty (mdadm --fail)")
    p.add_argument("members", nargs="+", help="the array's members (any order)")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--slot", type=int, help="slot (raid device number) to fail")
    which.add_argument("--member", help="path of the member to fail")
    _common(p)
    p.set_defaults(func=_cmd_fail)

    p = subparsers.add_parser(
        "remove", help="remove a failed or spare device from the array (mdadm --remove)"
    )
    p.add_argument("members", nargs="+", help="the array's members (any order)")
    p.add_argument("--member", required=True, help="path of the failed or spare device")
    _common(p)
    p.set_defaults(func=_cmd_remove)

    p = subparsers.add_parser("add", help="add a spare device (mdadm --add)")
    p.add_argument("members", nargs="+", help="the array's members (any order)")
    p.add_argument("--spare", required=True, help="device or image file (created if missing)")
    p.add_argument("--force", action="store_true", help="overwrite what the device holds")
    _common(p)
    p.set_defaults(func=_cmd_add)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("-y", "--yes", action="store_true", help="do not ask before writing")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def _confirm(args: argparse.Namespace, what: str) -> bool:
    print(what, flush=True)
    return confirm(args.verb, args.yes)


def _describe(a: Array) -> str:
    d = a.detail()
    return f"{d['level']} array {d['uuid']} ({d['raid_devices']} devices, {d['state']})"


def _result(args: argparse.Namespace, a: Array, result: dict[str, Any]) -> int:
    d = a.detail()
    result = {**result, "state": d["state"], "events": d["events"], "members": a.members}
    if args.json:
        print(json.dumps(result))
    else:
        print(f"done: the array is {d['state']} (events {d['events']})")
    return 0


def _cmd_fail(args: argparse.Namespace) -> int:
    args.verb = "fail"
    with open_array(args.members) as a:
        slot = args.slot
        if slot is None:
            member = args.member
            slot = next(
                (i for i, m in enumerate(a.members) if m is not None and _same(m, member)), None
            )
            if slot is None:
                print(f"fastraid fail: {member} is not an active member", file=sys.stderr)
                return 1
        path = a.members[slot] if 0 <= slot < len(a.members) else None
        what = (
            f"{_describe(a)}: mark slot {slot} ({path}) faulty; the array runs degraded "
            "until a spare is added and rebuilt"
        )
        if not _confirm(args, what):
            return 1
        failed = a.fail(slot)
        return _result(args, a, {"failed": failed, "slot": slot})


def _cmd_remove(args: argparse.Namespace) -> int:
    args.verb = "remove"
    with open_array(args.members) as a:
        what = (
            f"{_describe(a)}: remove {args.member} (its device number becomes unused; its "
            "own superblock is left as it is)"
        )
        if not _confirm(args, what):
            return 1
        gone = a.remove(args.member)
        return _result(args, a, {"removed": gone})


def _cmd_add(args: argparse.Namespace) -> int:
    args.verb = "add"
    with open_array(args.members) as a:
        what = f"{_describe(a)}: write a spare superblock on {args.spare}"
        if not _confirm(args, what):
            return 1
        info = a.add(args.spare, force=args.force)
        code = _result(args, a, {"added": args.spare, **info})
        if a.degraded and not args.json:
            cmd = shlex.join(["fastraid", "rebuild", *a.paths, "--yes"])
            print(f"the array is degraded: rebuild onto the spare with: {cmd}")
        return code


def _same(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return a == b


__all__ = ["register"]
