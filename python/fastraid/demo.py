"""``fastraid demo``: parity, a double failure and its repair on a generated stripe, timed.

Builds a stripe of ``--k`` random data blocks of ``--size`` bytes (64-byte aligned), computes
P and Q with :func:`fastraid.pq_gen`, drops two data blocks, rebuilds them with
:func:`fastraid.recover` and checks the rebuilt bytes. Then it times ``xor_gen``, ``pq_gen``
and ``recover`` (best of several runs, :func:`time.perf_counter`) and, when the ISA-L library
shipped in the pyeclib wheel is installed (``pip install 'fastraid[demo]'``), ISA-L's
``xor_gen`` and ``pq_gen`` on the same buffers, as a yardstick. ISA-L has no RAID-6 recovery
function; ``recover`` is compared with ISA-L ``pq_gen``, whose speed a rebuild should approach.

Throughput is data read per second: ``k * size`` bytes per call, in GB/s (10^9 bytes).
Exit status: 0 when the rebuilt blocks match, 1 when they do not, 2 on bad options.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import fastraid
from fastraid import _isal

__all__ = ["main", "parse_size"]

_UNITS = {"": 1, "b": 1, "k": 1024, "kib": 1024, "m": 1024**2, "mib": 1024**2, "g": 1024**3}
_UNITS.update({"gib": 1024**3, "kb": 1000, "mb": 1000**2, "gb": 1000**3})


def parse_size(text: str) -> int:
    """``"1MiB"``, ``"64k"``, ``"4096"`` -> bytes (K/M/G and KiB/MiB/GiB are powers of 1024,
    KB/MB/GB powers of 1000)."""
    match = re.fullmatch(r"\s*(\d+)\s*([a-zA-Z]*)\s*", text)
    if not match or match.group(2).lower() not in _UNITS:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (examples: 4096, 64KiB, 1MiB)")
    return int(match.group(1)) * _UNITS[match.group(2).lower()]


def _human(n: int) -> str:
    for unit, factor in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= factor and n % factor == 0:
            return f"{n // factor} {unit}"
    return f"{n} B"


def best_time(func: Callable[[], object], min_time: float, max_reps: int) -> float:
    """The fastest of repeated calls, stopping after ``max_reps`` or once ``min_time`` seconds
    have been spent (at least 3 calls, after one warm-up call)."""
    func()
    best = float("inf")
    spent = 0.0
    reps = 0
    while reps < 3 or (reps < max_reps and spent < min_time):
        start = time.perf_counter()
        func()
        elapsed = time.perf_counter() - start
        best = min(best, elapsed)
        spent += elapsed
        reps += 1
    return best


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fastraid demo",
        description="Compute P+Q on a random stripe, lose two data blocks, rebuild them, and "
        "time xor_gen / pq_gen / recover beside ISA-L.",
    )
    parser.add_argument("--k", type=int, default=8, help="data blocks in the stripe (default 8)")
    parser.add_argument(
        "--size", type=parse_size, default=1024**2, help="bytes per block (default 1MiB)"
    )
    parser.add_argument(
        "--lose",
        default=None,
        help="the two data blocks to drop, as 'i,j' (default: the first and the last)",
    )
    parser.add_argument("--threads", type=int, default=None, help="fastraid threads (default auto)")
    parser.add_argument("--kernel", default=None, help="fastraid kernel (default: the best)")
    parser.add_argument(
        "--time",
        type=float,
        default=0.3,
        help="seconds to spend timing each operation (default 0.3; best of the runs)",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed of the data")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    return parser


def _lost_pair(text: str | None, k: int) -> tuple[int, int]:
    if text is None:
        return 0, k - 1
    parts = text.split(",")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise ValueError(f"--lose wants 'i,j', got {text!r}")
    x, y = sorted(int(p) for p in parts)
    if x == y or y >= k:
        raise ValueError(f"--lose: two different data blocks in 0..{k - 1}, got {text!r}")
    return x, y


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Do the demo; return the report as a dict (what ``--json`` prints)."""
    k: int = args.k
    size: int = args.size
    if not 2 <= k <= 255:
        raise ValueError(f"--k must be in 2..255 (Q has 255 coefficients), got {k}")
    if size <= 0:
        raise ValueError(f"--size must be positive, got {size}")
    x, y = _lost_pair(args.lose, k)
    opts: dict[str, Any] = {}
    if args.threads is not None:
        opts["threads"] = args.threads
    if args.kernel is not None:
        opts["kernel"] = args.kernel

    rng = random.Random(args.seed)
    blocks = [_isal.aligned(size) for _ in range(k)]
    for block in blocks:
        block[:] = rng.randbytes(size)
    p, q, xor_out = _isal.aligned(size), _isal.aligned(size), _isal.aligned(size)
    rebuilt = [_isal.aligned(size), _isal.aligned(size)]

    # The story: parity, a double failure, the repair.
    fastraid.pq_gen(blocks, p, q, **opts)
    degraded: list[memoryview | None] = list(blocks)
    degraded[x] = degraded[y] = None
    fastraid.recover(degraded, p, q, rebuilt, **opts)
    verified = bytes(rebuilt[0]) == bytes(blocks[x]) and bytes(rebuilt[1]) == bytes(blocks[y])

    kernels = fastraid.kernels()
    report: dict[str, Any] = {
        "k": k,
        "size": size,
        "lost": [x, y],
        "kernel": args.kernel or kernels["active"],
        "kernels": kernels,
        "threads": args.threads,
        "verified": verified,
        "isal": None,
        "results": {},
    }

    # Timing. Every function reads k * size bytes per call.
    nbytes = k * size
    max_reps = 1000

    def gbps(seconds: float) -> float:
        return nbytes / seconds / 1e9

    ours: dict[str, Callable[[], object]] = {
        "xor_gen": lambda: fastraid.xor_gen(blocks, xor_out, **opts),
        "pq_gen": lambda: fastraid.pq_gen(blocks, p, q, **opts),
        "recover": lambda: fastraid.recover(degraded, p, q, rebuilt, **opts),
    }
    theirs: dict[str, Callable[[], object]] = {}
    isal_note = None
    if _isal.available():
        report["isal"] = {
            "version": _isal.version(),
            "library": str(_isal.library_path()),
            "xor_gen": _isal.dispatched("xor_gen"),
            "pq_gen": _isal.dispatched("pq_gen"),
        }
        isal_p, isal_q, isal_x = _isal.aligned(size), _isal.aligned(size), _isal.aligned(size)
        theirs["xor_gen"] = _isal.prepare_xor_gen(blocks, isal_x)
        if size % 32 == 0:
            theirs["pq_gen"] = _isal.prepare_pq_gen(blocks, isal_p, isal_q)
            theirs["recover"] = theirs["pq_gen"]
        else:
            isal_note = "ISA-L pq_gen needs a size that is a multiple of 32"
        ours["xor_gen"]()
        theirs["xor_gen"]()
        matches = bytes(isal_x) == bytes(xor_out)
        if "pq_gen" in theirs:
            theirs["pq_gen"]()
            matches = matches and bytes(isal_p) == bytes(p) and bytes(isal_q) == bytes(q)
        report["isal"]["matches"] = matches
    else:
        isal_note = "ISA-L not installed (pip install 'fastraid[demo]' to compare)"
    report["isal_note"] = isal_note

    for name, func in ours.items():
        t = best_time(func, args.time, max_reps)
        entry: dict[str, Any] = {"seconds": t, "gbps": gbps(t)}
        if name in theirs:
            t_isal = best_time(theirs[name], args.time, max_reps)
            entry["isal_op"] = "pq_gen" if name == "recover" else name
            entry["isal_seconds"] = t_isal
            entry["isal_gbps"] = gbps(t_isal)
            entry["ratio"] = t_isal / t
        report["results"][name] = entry
    return report


def format_report(r: dict[str, Any]) -> str:
    threads = "auto" if r["threads"] is None else str(r["threads"])
    lines = [
        f"fastraid {getattr(fastraid, '__version__', '?')} demo: k={r['k']} data blocks x "
        f"{_human(r['size'])} ({_human(r['k'] * r['size'])} of data), "
        f"kernel {r['kernel']}, threads {threads}",
        f"  available kernels: {', '.join(r['kernels']['available'])}",
        "  pq_gen: P and Q computed",
        f"  lost data blocks {r['lost'][0]} and {r['lost'][1]}; rebuilt with recover(): "
        + ("bytes equal, OK" if r["verified"] else "MISMATCH"),
    ]
    if r["isal"]:
        lines.append(
            f"  ISA-L {r['isal']['version']} ({r['isal']['xor_gen']}, {r['isal']['pq_gen']}): "
            "P, Q and XOR "
            + ("match fastraid's" if r["isal"]["matches"] else "DIFFER from fastraid's")
        )
    if r["isal_note"]:
        lines.append(f"  {r['isal_note']}")
    lines.append("")
    header = f"  {'operation':<9} {'fastraid':>12} {'ISA-L':>12}  {'fastraid/ISA-L':>14}"
    lines += [header, "  " + "-" * (len(header) - 2)]
    for name, e in r["results"].items():
        ours = f"{e['gbps']:.2f} GB/s"
        if "isal_gbps" in e:
            theirs = f"{e['isal_gbps']:.2f} GB/s"
            ratio = f"{e['ratio']:.2f}x"
            if e["isal_op"] != name:
                ratio += f"  (vs ISA-L {e['isal_op']})"
        else:
            theirs, ratio = "-", "-"
        lines.append(f"  {name:<9} {ours:>12} {theirs:>12}  {ratio:>14}")
    lines.append("")
    lines.append(
        "  GB/s = data read per second (k x size / best time); ratio > 1: fastraid is faster."
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args_list = sys.argv[1:] if argv is None else list(argv)
    if args_list[:1] == ["--"]:  # "fastraid demo -- --k 4": the separator reaches us
        args_list = args_list[1:]
    try:
        args = parser.parse_args(args_list)
    except SystemExit as exc:  # --help, or a usage error already printed by argparse
        return exc.code if isinstance(exc.code, int) else 2
    try:
        report = run(args)
    except (ValueError, TypeError) as exc:  # includes fastraid's InvalidArgumentError
        print(f"fastraid demo: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(format_report(report))
    return 0 if report["verified"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
