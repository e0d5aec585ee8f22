"""The ``fastraid`` command line (argparse, one function per verb)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from . import _core
from ._errors import FastRaidError


def _cmd_kernels(args: argparse.Namespace) -> int:
    info = _core.kernels()
    if args.json:
        print(json.dumps(info))
    else:
        avail = info["available"]
        names = avail if isinstance(avail, list) else [avail]
        for name in names:
            mark = "*" if name == info["active"] else " "
            print(f"{mark} {name}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from . import demo

    return demo.main(args.demo_args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fastraid", description="Software RAID with a Rust SIMD core."
    )
    parser.add_argument("--version", action="version", version=f"fastraid {_core.__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="parity and two-block recovery on a generated stripe")
    p.add_argument("demo_args", nargs=argparse.REMAINDER, help="options of the demo (--help)")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("kernels", help="list the parity kernels this CPU can run")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_cmd_kernels)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except FastRaidError as e:
        print(f"fastraid: {e}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())
