#!/usr/bin/env python3
"""Where does fastraid go wrong on a kernel case? Reads the case through
``fastraid.open``, compares every 4 KiB block with the case's pattern, prints the wrong
ranges (array offsets, with fastraid's trust kind) and, for the first wrong blocks, where
the true block lies in the member images (the pattern's sector headers are unique, so a
scan of the members finds every copy).

    .venv/bin/python tools/kernel_cases/diagnose.py tests/fixtures/kernel/CASE [--without K,...]
"""

from __future__ import annotations

import argparse
import json
import lzma
import re
import tempfile
from pathlib import Path

import fastraid

BLOCK = 4096


def pattern_block(name: str, i: int) -> bytes:
    out = b""
    for s in range(8):
        h = f"fastraid-fixture {name} block {i:012d} sector {s}\n".encode()
        out += h + bytes([(i * 7 + s) % 251]) * (512 - len(h))
    return out


def ranges(blocks: list[int]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for b in blocks:
        if out and out[-1][1] == b:
            out[-1] = (out[-1][0], b + 1)
        else:
            out.append((b, b + 1))
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("case")
    ap.add_argument("--without", default="", help="member indices to leave out, e.g. 0,3")
    ap.add_argument("--no-backup", action="store_true")
    ap.add_argument("--show", type=int, default=6, help="wrong blocks to locate")
    a = ap.parse_args()
    case = Path(a.case)
    m = json.loads((case / "manifest.json").read_text())
    name = m["pattern"]["name"]
    length = m["pattern"]["length_bytes"]
    tmp = Path(tempfile.mkdtemp(prefix="kc-diag-"))
    paths = []
    for mem in m["members"]:
        p = tmp / mem["file"].removesuffix(".xz")
        with lzma.open(case / mem["file"]) as f:
            p.write_bytes(f.read())
        paths.append(p)
    backup = None
    if m.get("backup_file") and not a.no_backup:
        backup = tmp / "backup"
        with lzma.open(case / m["backup_file"]["file"]) as f:
            backup.write_bytes(f.read())
    skip = {int(x) for x in a.without.split(",") if x}
    use = [p for k, p in enumerate(paths) if k not in skip]
    with fastraid.open(use, readonly=True, backup_file=backup) as arr:
        data = arr.read(0, length)
        trust = arr.trust_map()
        detail = arr.detail()
    print("size", len(data), "state", detail.get("state"))
    bad = [
        i
        for i in range(length // BLOCK)
        if data[i * BLOCK : (i + 1) * BLOCK] != pattern_block(name, i)
    ]
    print(f"wrong blocks: {len(bad)} of {length // BLOCK}")
    for lo, hi in ranges(bad)[:40]:
        kinds = sorted(
            {
                r["kind"]
                for r in trust
                if r["offset"] < hi * BLOCK and r["offset"] + r["length"] > lo * BLOCK
            }
        )
        print(
            f"  blocks [{lo}, {hi}) = array sectors [{lo * 8}, {hi * 8}) "
            f"bytes [{lo * BLOCK}, {hi * BLOCK}) trust {kinds}"
        )
    if bad:
        images = [p.read_bytes() for p in paths]
        rx = re.compile(
            rb"fastraid-fixture " + re.escape(name.encode()) + rb" block (\d{12}) sector 0\n"
        )
        where: dict[int, list[tuple[int, int]]] = {}
        for k, img in enumerate(images):
            for mt in rx.finditer(img):
                where.setdefault(int(mt.group(1)), []).append((k, mt.start() // 512))
        for i in bad[: a.show]:
            got = data[i * BLOCK : i * BLOCK + 60]
            print(
                f"  block {i}: fastraid gave {got[:56]!r}; "
                f"true block at (member, sector) {where.get(i)}"
            )
    print("uncertain/unreadable:", [r for r in trust if r["kind"] not in ("clean", "rebuilt")][:10])
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
