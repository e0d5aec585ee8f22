"""The ``fastraid`` command line (argparse, one function per verb).

Verbs: ``examine`` and ``detail`` (mdadm's --examine / --detail for member images or
devices, read-only), ``export`` (write an array's logical content to an image, resumable),
``demo`` and ``kernels``.

Exit codes: 0 success; 1 ``examine`` found no superblock on some path; 2 an error
(:class:`FastRaidError`, bad arguments); 3 ``export`` finished but some ranges could not
be recovered (unreadable) or may be wrong (uncertain): they are listed.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

from . import _core
from ._errors import FastRaidError, InvalidArgumentError

#: Array bytes read and written per step of ``export``: read into one reused buffer, then
#: written with pwrite, as cat does. Small enough to stay in the CPU's cache between the
#: two copies (4 and 16 MiB windows measured slower), large enough that the per-window
#: Python work (trust map, checks) is noise.
EXPORT_WINDOW = 1024 * 1024
#: ``export`` syncs the image and writes its checkpoint after this many bytes or seconds
#: (whichever comes first); at the end it syncs the image and removes the checkpoint.
#: After a crash, ``--resume`` redoes at most this much.
CHECKPOINT_BYTES = 256 * 1024 * 1024
CHECKPOINT_SECONDS = 5.0
#: Exit code of ``export`` when some bytes are unreadable or uncertain.
EXIT_INCOMPLETE = 3
#: Version of the export checkpoint file.
CHECKPOINT_VERSION = 1


# ======================================================================================
# Formatting helpers
# ======================================================================================


def _size(n: int) -> str:
    """``47185920 (45.00 MiB 47.19 MB)`` as mdadm prints sizes."""
    return f"{n} ({n / 2**20:.2f} MiB {n / 1e6:.2f} MB)"


def _time(seconds: int) -> str:
    if not seconds:
        return "-"
    return datetime.datetime.fromtimestamp(seconds, tz=datetime.UTC).strftime(
        "%a %b %d %H:%M:%S %Y UTC"
    )


def _block(rows: list[tuple[str, object]], out: IO[str]) -> None:
    width = max((len(k) for k, _ in rows), default=0)
    for k, v in rows:
        out.write(f"{k:>{width + 4}} : {v}\n")


def _chunk(n: int) -> str:
    return f"{n // 1024}K" if n else "-"


# ======================================================================================
# kernels, demo
# ======================================================================================


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


# ======================================================================================
# examine
# ======================================================================================


def _examine_rows(sb: dict[str, Any]) -> list[tuple[str, object]]:
    rows: list[tuple[str, object]] = [
        ("Magic", "a92b4efc"),
        ("Version", sb.get("metadata", sb["location"])),
        ("Feature Map", sb.get("feature_map") or "-"),
        ("Array UUID", sb.get("uuid", "?")),
        ("Name", sb.get("name", "")),
        ("Creation Time", _time(sb.get("ctime", 0))),
        ("Raid Level", sb.get("level", "?")),
        ("Raid Devices", sb.get("raid_devices", "?")),
        ("Avail Dev Size", f"{sb.get('data_size', 0)} sectors"),
        ("Used Dev Size", f"{sb.get('dev_sectors', 0)} sectors"),
        ("Data Offset", f"{sb.get('data_offset', 0)} sectors"),
        ("Super Offset", f"{sb.get('super_offset', sb['sector'])} sectors"),
    ]
    if sb.get("recovery_offset") is not None:
        rows.append(("Recovery Offset", f"{sb['recovery_offset']} sectors"))
    rows += [
        ("State", "clean" if sb.get("clean") else f"active (resync at {sb.get('resync_offset')})"),
        ("Device UUID", sb.get("device_uuid") or "-"),
        ("Update Time", _time(sb.get("utime", 0))),
        ("Checksum", "correct" if sb["checksum_ok"] else "WRONG"),
        ("Events", sb.get("events", "?")),
    ]
    if sb.get("layout") is not None:
        rows.append(("Layout", sb["layout"]))
    if sb.get("chunk"):
        rows.append(("Chunk Size", _chunk(sb["chunk"])))
    reshape = sb.get("reshape")
    if reshape:
        rows += [
            ("Reshape pos'n", f"{reshape['position']} sectors"),
            ("Delta Devices", reshape["delta_disks"]),
            ("New Layout", reshape["new_layout"]),
            ("New Chunksize", _chunk(reshape["new_chunk"])),
            ("New Offset", f"{reshape['new_offset']} sectors"),
        ]
    rows += [
        ("Device Role", sb.get("role", "?")),
        ("Array State", sb.get("array_state", "")),
    ]
    if not sb["valid"]:
        rows.append(("Problems", "; ".join(sb["problems"]) or "-"))
    return rows


def _cmd_examine(args: argparse.Namespace) -> int:
    code = 0
    results: list[dict[str, Any]] = []
    for path in args.members:
        try:
            found = _core.examine(path)
            error = None
        except FastRaidError as e:
            found, error = [], str(e)
        if not found:
            code = 1
        results.append({"path": path, "superblocks": found, "error": error})
    if args.json:
        print(json.dumps({"output_version": 1, "members": results}, indent=2))
        return code
    for r in results:
        print(f"{r['path']}:")
        if r["error"]:
            print(f"  cannot examine: {r['error']}")
        elif not r["superblocks"]:
            print("  No md superblock detected.")
        for sb in r["superblocks"]:
            if len(r["superblocks"]) > 1:
                mark = " (used)" if sb.get("preferred") else ""
                print(f"  -- {sb['location']} superblock at sector {sb['sector']}{mark}")
            _block(_examine_rows(sb), sys.stdout)
        print()
    return code


# ======================================================================================
# detail
# ======================================================================================


def _cmd_detail(args: argparse.Namespace) -> int:
    from .array import open as open_array

    with open_array(
        args.members, readonly=True, force=args.force, backup_file=args.backup_file
    ) as array:
        d = array.detail()
    if args.json:
        print(json.dumps({"output_version": 1, **d}, indent=2))
        return 0
    active = sum(1 for m in d["members"] if m["used"])
    rows: list[tuple[str, object]] = [
        ("Version", d["metadata"]),
        ("Creation Time", _time(d["ctime"])),
        ("Raid Level", d["level"]),
        ("Array Size", _size(d["size"])),
    ]
    if d["level"] not in ("raid0", "linear"):
        rows.append(("Used Dev Size", _size(d["dev_size"])))
    rows += [
        ("Raid Devices", d["raid_devices"]),
        ("Total Devices", len(d["members"])),
        ("Update Time", _time(d["utime"])),
        ("State", d["state"]),
        ("Active Devices", active),
        ("Missing Slots", ", ".join(map(str, d["missing_slots"])) or "none"),
    ]
    if d["layout"]:
        rows.append(("Layout", d["layout"]))
    if d["chunk"]:
        rows.append(("Chunk Size", _chunk(d["chunk"])))
    rows += [
        ("Name", d["name"]),
        ("UUID", d["uuid"]),
        ("Events", d["events"]),
    ]
    reshape = d.get("reshape")
    if reshape:
        old = d["raid_devices"] - reshape["delta_disks"]
        pct = 100.0 * reshape["position"] * 512 / d["size"] if d["size"] else 0.0
        rows += [
            ("Reshape Status", f"{pct:.0f}% complete (interrupted)"),
            ("Reshape pos'n", f"{reshape['position']} sectors"),
            ("Delta Devices", f"{reshape['delta_disks']}, ({old}->{d['raid_devices']})"),
            ("Direction", "backwards" if reshape["backwards"] else "forwards"),
        ]
    _block(rows, sys.stdout)
    if reshape:
        print()
        for p in d["parts"]:
            layout = f" {p['layout']}" if p["layout"] else ""
            print(
                f"   bytes {p['start']}..{p['end']}: {p['geometry']} geometry, "
                f"{p['raid_devices']} members{layout}, chunk {_chunk(p['chunk'])}, "
                f"data offset {p['data_offset_shift'] // 512:+d} sectors"
            )
    print()
    print(f"   {'Slot':>4}  {'State':<11} {'Events':>8}  Path")
    for m in sorted(d["members"], key=lambda m: (m["slot"] is None, m["slot"] or 0)):
        slot = "-" if m["slot"] is None else str(m["slot"])
        events = "-" if m["events"] is None else str(m["events"])
        state = m["state"]
        print(f"   {slot:>4}  {state:<11} {events:>8}  {m['path']}")
        if m["reason"] and m["state"] != "active":
            print(f"   {'':>4}  {'':<11} {'':>8}    {m['reason']}")
    for s in d["missing_slots"]:
        print(f"   {s:>4}  {'missing':<11} {'-':>8}  -")
    print()
    print("Decisions:")
    for note in d["notes"]:
        print(f"  - {note}")
    return 0


# ======================================================================================
# export
# ======================================================================================


def _checkpoint_path(image: Path) -> Path:
    return image.with_name(image.name + ".fastraid-export.json")


def _write_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Replace the checkpoint atomically and durably: write a temporary file, fsync it,
    rename it over the old one, fsync the directory. The caller has already synced the
    image (fdatasync) up to ``state["done"]``, so the checkpoint never claims bytes that a
    crash could lose."""
    tmp = path.with_name(path.name + ".tmp")
    data = json.dumps(state).encode()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


class _Progress:
    """Renders export progress: a rich bar on a terminal, JSON lines, or nothing."""

    def __init__(self, mode: str, total: int, start: int) -> None:
        self.mode = mode
        self.total = total
        self.start_time = time.monotonic()
        self.start_done = start
        self._last_json = 0.0
        self._bar: Any = None
        self._task: Any = None
        if mode == "bar":
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
                TransferSpeedColumn,
            )

            self._bar = Progress(
                TextColumn("export"),
                BarColumn(),
                DownloadColumn(binary_units=True),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
                transient=False,
            )
            self._bar.start()
            self._task = self._bar.add_task("export", total=total, completed=start)

    def update(self, done: int, totals: dict[str, int]) -> None:
        if self.mode == "bar":
            self._bar.update(self._task, completed=done)
        elif self.mode == "json":
            now = time.monotonic()
            if now - self._last_json < 0.5 and done < self.total:
                return
            self._last_json = now
            elapsed = now - self.start_time
            rate = (done - self.start_done) / elapsed if elapsed > 0 else 0.0
            print(
                json.dumps(
                    {
                        "event": "progress",
                        "done": done,
                        "total": self.total,
                        "rate": round(rate),
                        **{k: v for k, v in totals.items() if k != "clean"},
                    }
                ),
                flush=True,
            )

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()


def _merge_range(ranges: list[dict[str, Any]], r: dict[str, Any]) -> None:
    if ranges:
        last = ranges[-1]
        if last["kind"] == r["kind"] and last["offset"] + last["length"] == r["offset"]:
            last["length"] += r["length"]
            return
    ranges.append(dict(r))


#: ``SYNC_FILE_RANGE_WRITE`` of Linux's ``sync_file_range(2)``.
_SYNC_FILE_RANGE_WRITE = 2
_sync_file_range_fn: list[Any] = []  # [libc's sync_file_range or None], looked up once


def _start_writeback(fd: int, offset: int, length: int) -> None:
    """Ask the kernel to start writing ``[offset, offset + length)`` of ``fd`` to its disk
    now, without waiting (Linux ``sync_file_range(SYNC_FILE_RANGE_WRITE)``; it promises no
    durability). The disk then works while the next windows are read, and the fsync of
    each checkpoint waits for the last few windows only, instead of all of them: without
    this, that fsync cost about as much as the whole copy. Best effort: elsewhere, or if
    the call fails, only the timing changes."""
    if not _sync_file_range_fn:
        fn: Any = None
        if sys.platform.startswith("linux"):
            try:
                import ctypes

                fn = ctypes.CDLL(None, use_errno=True).sync_file_range
                fn.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
                fn.restype = ctypes.c_int
            except (OSError, AttributeError):
                fn = None
        _sync_file_range_fn.append(fn)
    fn = _sync_file_range_fn[0]
    if fn is not None:
        fn(fd, offset, length, _SYNC_FILE_RANGE_WRITE)  # ctypes releases the GIL


def _sync_data(fd: int) -> None:
    """The image's bytes and what is needed to read them back (size, allocation) on disk."""
    getattr(os, "fdatasync", os.fsync)(fd)


def _pwrite_all(fd: int, data: memoryview, offset: int) -> None:
    n, w = len(data), 0
    while w < n:
        k = os.pwrite(fd, data[w:], offset + w)
        if k <= 0:
            raise OSError(f"short write at byte {offset + w} of the image")
        w += k


def _remove_checkpoint(path: Path) -> None:
    """Remove a checkpoint durably (unlink, directory fsync), before a fresh export
    truncates the image it describes: left behind, it would let ``--resume`` trust bytes
    that are gone."""
    if not path.exists():
        return
    path.unlink()
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def _cmd_export(args: argparse.Namespace) -> int:
    from .array import open as open_array

    image = Path(args.output)
    ckpt = _checkpoint_path(image)
    inputs = [Path(m) for m in args.members]
    for m in inputs:
        if _same_file(m, image) or m.resolve() == image.resolve():
            raise InvalidArgumentError(
                f"-o {image}: that is one of the members; refusing to write over an input"
            )
    is_block = image.exists() and image.is_block_device()

    with open_array(
        args.members, readonly=True, force=args.force, backup_file=args.backup_file
    ) as array:
        d = array.detail()
        size = array.size
        identity = {"uuid": d["uuid"], "size": size, "events": d["events"]}
        start = 0
        ranges: list[dict[str, Any]] = []
        totals = {"clean": 0, "rebuilt": 0, "uncertain": 0, "unreadable": 0}
        if args.resume and ckpt.exists():
            state = json.loads(ckpt.read_text())
            if state.get("version") != CHECKPOINT_VERSION or any(
                state.get(k) != v for k, v in identity.items()
            ):
                raise InvalidArgumentError(
                    f"{ckpt}: checkpoint belongs to another array or export "
                    f"({state.get('uuid')}, {state.get('size')} bytes); remove it or use "
                    "--overwrite without --resume"
                )
            if not image.exists():
                raise InvalidArgumentError(f"{image}: checkpoint found but the image is gone")
            start = int(state["done"])
            # (an older checkpoint may list rebuilt ranges too: they are exact)
            ranges = [r for r in state["ranges"] if r["kind"] in ("uncertain", "unreadable")]
            totals = dict(state["totals"])
        elif image.exists() and not args.overwrite:
            hint = " (use --resume to continue it)" if ckpt.exists() else ""
            raise InvalidArgumentError(
                f"{image} exists; refusing to overwrite it without --overwrite{hint}"
            )
        if start == 0:
            _remove_checkpoint(ckpt)

        fd = os.open(image, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            if not is_block:
                # A fresh export drops the old content (as cat's O_TRUNC does); a resumed
                # one keeps it, cut to the array's size.
                os.ftruncate(fd, 0 if start == 0 else size)
                if size:
                    # Allocate now: a full disk fails here, not hours into the copy.
                    os.posix_fallocate(fd, 0, size)
            mode = args.progress
            if args.quiet:
                mode = "none"
            elif mode == "auto":
                mode = "bar" if sys.stderr.isatty() else "none"
            progress = _Progress(mode, size, start)
            buf = memoryview(bytearray(max(1, min(EXPORT_WINDOW, size - start))))
            try:
                done = start
                header = {
                    "version": CHECKPOINT_VERSION,
                    **identity,
                    "members": [str(m) for m in inputs],
                }
                last_ckpt = (time.monotonic(), done)
                while done < size:
                    n = min(EXPORT_WINDOW, size - done)
                    view = buf[:n]
                    array.clear_trust_map()
                    array.readinto(done, view, strict=False)
                    for r in array.trust_map():
                        totals[r["kind"]] += r["length"]
                        # Only the bytes that are not exact are listed; rebuilt ones are
                        # exact and only counted (a degraded array rebuilds a chunk in
                        # every stripe: listing them made each checkpoint grow with the
                        # array's size).
                        if r["kind"] in ("uncertain", "unreadable"):
                            _merge_range(ranges, r)
                    _pwrite_all(fd, view, done)
                    _start_writeback(fd, done, n)
                    done += n
                    now = time.monotonic()
                    if (
                        done == size
                        or done - last_ckpt[1] >= CHECKPOINT_BYTES
                        or now - last_ckpt[0] >= CHECKPOINT_SECONDS
                    ):
                        # Durability order: the image's data on disk (fdatasync) first,
                        # then the checkpoint that claims it (temporary file, fsync,
                        # rename, directory fsync). A crash in between leaves an older
                        # checkpoint, and --resume rewrites the bytes after it. At the end
                        # the image alone is synced: the checkpoint is removed next, so
                        # writing it would be wasted.
                        _sync_data(fd)
                        if done < size:
                            _write_checkpoint(
                                ckpt, {**header, "done": done, "ranges": ranges, "totals": totals}
                            )
                        last_ckpt = (now, done)
                    progress.update(done, totals)
            finally:
                progress.close()
        finally:
            os.close(fd)
    ckpt.unlink(missing_ok=True)
    bad = bool(ranges)
    code = EXIT_INCOMPLETE if bad else 0
    summary = {
        "event": "done",
        "output": str(image),
        "size": size,
        "totals": totals,
        "ranges": ranges,
        "complete": not bad,
        "exit_code": code,
    }
    if args.progress == "json" and not args.quiet:
        print(json.dumps(summary), flush=True)
    elif not args.quiet:
        print(f"exported {_size(size)} to {image}")
        for kind in ("clean", "rebuilt", "uncertain", "unreadable"):
            print(f"  {kind:>10}: {totals[kind]} bytes")
        for r in ranges[:50]:
            print(f"  {r['kind']:>10}: bytes {r['offset']}..{r['offset'] + r['length']}")
        if len(ranges) > 50:
            print(f"  ... {len(ranges) - 50} more ranges")
        if bad:
            print("some ranges could not be recovered exactly (listed above)")
    return code


# ======================================================================================
# Parser
# ======================================================================================


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

    p = sub.add_parser("examine", help="show the md superblocks of member devices or images")
    p.add_argument("members", nargs="+", metavar="MEMBER")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_cmd_examine)

    p = sub.add_parser(
        "detail", help="assemble (read-only) and describe an array: what was chosen and why"
    )
    p.add_argument("members", nargs="+", metavar="MEMBER")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--force", action="store_true", help="use stale members where needed")
    p.add_argument("--backup-file", metavar="F", help="mdadm's reshape backup file")
    p.set_defaults(func=_cmd_detail)

    p = sub.add_parser("export", help="write an array's logical content to an image file")
    p.add_argument("members", nargs="+", metavar="MEMBER")
    p.add_argument("-o", "--output", required=True, metavar="IMAGE", help="file or device")
    p.add_argument("--force", action="store_true", help="use stale members where needed")
    p.add_argument("--backup-file", metavar="F", help="mdadm's reshape backup file")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint")
    p.add_argument("--overwrite", action="store_true", help="replace an existing IMAGE")
    p.add_argument("--progress", choices=("auto", "json", "none"), default="auto")
    p.add_argument("--quiet", action="store_true", help="print nothing (see the exit code)")
    p.set_defaults(func=_cmd_export)

    # Verbs that live in their own modules (one module per area, as pyeclib does).
    from . import cli_create, cli_grow, cli_members, cli_rebuild, cli_scrub

    cli_create.register(sub)
    cli_members.register(sub)
    cli_rebuild.register(sub)
    cli_grow.register(sub)
    cli_scrub.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # The demo has its own options: hand them over untouched (argparse's REMAINDER would
    # otherwise let the top-level parser claim "--k 4" and fail).
    if argv[:1] == ["demo"]:
        from . import demo

        return demo.main(argv[1:])
    args = build_parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        code: int = func(args)
    except FastRaidError as e:
        print(f"fastraid: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"fastraid: {e}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())
