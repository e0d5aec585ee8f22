#!/usr/bin/env python3
"""Make the kernel-written md test cases of ``tests/fixtures/kernel/`` with the real
Linux md driver and mdadm (``../shared/tools/kernel-md/kernel-md run``).

Each case boots a VM, creates an array on sparse member images, fills it with the
public fixtures' pattern (``kernel-md pattern``, named after the case) or an ext4 file
system, then either stops it cleanly or starts a reshape (``mdadm --grow``), throttles
it and cuts the power (sysrq b) at a chosen percentage. The member images are then
compressed with xz into ``tests/fixtures/kernel/<case>/`` next to a ``manifest.json``
(geometry before and after, the kernel's on-disk reshape position, expected sha256,
backup file) and the guest's reports (examine at the cut, md sysfs, detail).

    tools/kernel_cases/make.py --list
    tools/kernel_cases/make.py raid6-grow-5to6-cut50 raid10-f2-4
    tools/kernel_cases/make.py --all

Power cuts land where the timing puts them: a re-run gives an equivalent case, not
byte-identical images. Standard library only (Python 3.10+).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import lzma
import os
import re
import shutil
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
KERNEL_MD = REPO.parent / "shared/tools/kernel-md/kernel-md"
OUT = REPO / "tests/fixtures/kernel"
MiB = 1 << 20

# name -> case. kind: clean | reshape | ext4. vars: the guest script's variables.
# members: total member images (created sparse, member_mib each); the first N form the
# array at creation, the others are added before the reshape.
CASES: dict[str, dict[str, Any]] = {}


def _case(name: str, kind: str, members: int, member_mib: int, desc: str, **vars: Any) -> None:
    CASES[name] = {
        "kind": kind,
        "members": members,
        "member_mib": member_mib,
        "description": desc,
        "vars": {k: str(v) for k, v in vars.items()},
    }


for _lay, _n in (("f2", 4), ("o2", 4), ("f2", 5), ("o2", 3)):
    _case(
        f"raid10-{_lay}-{_n}",
        "clean",
        _n,
        8,
        f"RAID-10 {_lay} on {_n} disks, chunk 64 KiB, metadata 1.2, pattern, stopped cleanly",
        LEVEL=10,
        N=_n,
        LAYOUT=_lay,
        CHUNK=64,
        META="1.2",
    )
for _meta in ("1.0", "1.1"):
    _case(
        f"raid5-meta{_meta.replace('.', '')}-4",
        "clean",
        4,
        8,
        f"RAID-5 left-symmetric on 4 disks, chunk 64 KiB, metadata {_meta}, pattern, "
        "stopped cleanly",
        LEVEL=5,
        N=4,
        CHUNK=64,
        META=_meta,
    )
for _cut in (15, 50, 85):
    _case(
        f"raid6-grow-5to6-cut{_cut}",
        "reshape",
        6,
        16,
        "RAID-6 on 5 disks, chunk 64 KiB, pattern; 6th disk added, mdadm --grow "
        f"--raid-devices=6 (data_offset moves, no backup), power cut at {_cut} %",
        LEVEL=6,
        N=5,
        CHUNK=64,
        META="1.2",
        ADD="5",
        GROW="--raid-devices=6",
        SPEED=300,
        CUT=_cut,
    )
for _cut in (10, 45, 80):
    _case(
        f"raid5to6-backup-cut{_cut}",
        "reshape",
        5,
        16,
        "RAID-5 on 4 disks, chunk 64 KiB, pattern; 5th disk added, mdadm --grow --level=6 "
        f"--raid-devices=5 --backup-file (on an ext4 disk), power cut at {_cut} %",
        LEVEL=5,
        N=4,
        CHUNK=64,
        META="1.2",
        ADD="4",
        GROW="--level=6 --raid-devices=5",
        BACKUP=1,
        SPEED=300,
        CUT=_cut,
    )
for _cut in (20, 60):
    _case(
        f"raid5-chunk-64to128-cut{_cut}",
        "reshape",
        4,
        16,
        "RAID-5 on 4 disks, chunk 64 KiB, pattern; mdadm --grow --chunk=128 (data_offset "
        f"moves, no backup), power cut at {_cut} %",
        LEVEL=5,
        N=4,
        CHUNK=64,
        META="1.2",
        GROW="--chunk=128",
        SPEED=300,
        CUT=_cut,
    )
for _cut in (10, 40):
    _case(
        f"raid5-chunk-64to32-backup-cut{_cut}",
        "reshape",
        4,
        16,
        "RAID-5 on 4 disks, chunk 64 KiB, pattern; mdadm --grow --chunk=32 --backup-file (on "
        f"an ext4 disk), power cut at {_cut} %",
        LEVEL=5,
        N=4,
        CHUNK=64,
        META="1.2",
        GROW="--chunk=32",
        BACKUP=1,
        SPEED=300,
        CUT=_cut,
    )
for _cut in (30, 70):
    _case(
        f"raid5-layout-backwards-cut{_cut}",
        "reshape",
        4,
        16,
        "RAID-5 on 4 disks using 12 MiB of each 16 MiB (room after the data), chunk 64 KiB, "
        "pattern; mdadm --grow --layout=right-asymmetric (data_offset moves up: a backwards "
        f"reshape), power cut at {_cut} %",
        LEVEL=5,
        N=4,
        CHUNK=64,
        META="1.2",
        SIZE_KIB=12288,
        GROW="--layout=right-asymmetric",
        SPEED=300,
        CUT=_cut,
    )
for _cut in (30, 70):
    _case(
        f"raid5-shrink-5to4-cut{_cut}",
        "reshape",
        5,
        16,
        "RAID-5 on 5 disks using 12 MiB of each 16 MiB, chunk 64 KiB, pattern; --array-size "
        "cut to 4 disks' worth, mdadm --grow --raid-devices=4 (backwards; a backup file on an "
        f"ext4 disk only if mdadm cannot move data_offset), power cut at {_cut} %",
        LEVEL=5,
        N=5,
        CHUNK=64,
        META="1.2",
        SIZE_KIB=12288,
        SHRINK_TO=4,
        GROW="--raid-devices=4",
        BACKUP="auto",
        SPEED=300,
        CUT=_cut,
    )
for _cut in (5, 50):
    _case(
        f"raid5-meta10-grow-3to4-backup-cut{_cut}",
        "reshape",
        4,
        16,
        "RAID-5 on 3 disks, metadata 1.0 (superblock at the end, data_offset 0: no room to "
        "move the data), chunk 64 KiB, pattern; 4th disk added, mdadm --grow --raid-devices=4 "
        f"--backup-file (on an ext4 disk), power cut at {_cut} %",
        LEVEL=5,
        N=3,
        CHUNK=64,
        META="1.0",
        ADD="3",
        GROW="--raid-devices=4",
        BACKUP=1,
        SPEED=300,
        CUT=_cut,
    )
# RAID-10 reshapes: md always moves data_offset (Grow.c raid10_reshape), by at least
# max(C_old * fc_old, C_new * fc_new) (raid10.c run), toward the free space.
for _lay, _n, _cut in (("n2", 4, 40), ("o2", 3, 50)):
    _case(
        f"raid10-{_lay}-grow-{_n}to{_n + 1}-cut{_cut}",
        "reshape",
        _n + 1,
        16,
        f"RAID-10 {_lay} on {_n} disks, chunk 64 KiB, pattern; disk {_n + 1} added, mdadm "
        f"--grow --raid-devices={_n + 1} (data_offset moves down), power cut at {_cut} %",
        LEVEL=10,
        N=_n,
        LAYOUT=_lay,
        CHUNK=64,
        META="1.2",
        ADD=str(_n),
        GROW=f"--raid-devices={_n + 1}",
        SPEED=300,
        CUT=_cut,
    )
# Not a case: near -> offset (raid10-n2-to-o2, 4 x 16 MiB, mdadm --grow --layout=o2,
# new_offset -1024) fails in Linux 6.1: at once the reshape writes far copies past the end
# of the members ("attempt to access beyond end of device", sector 32768 of 32768) and
# fails three of them. The new geometry seems to keep the near layout's stride (the used
# sectors per member) instead of one chunk. fastraid does this change itself; an
# interrupted one must be finished by fastraid (grow --continue), not by the kernel.
_case(
    "raid10-o2-to-n2-backwards-cut50",
    "reshape",
    4,
    16,
    "RAID-10 o2 on 4 disks using 12 MiB of each 16 MiB (more room after the data than "
    "before), chunk 64 KiB, pattern; mdadm --grow --layout=n2 (data_offset moves up: a "
    "backwards reshape), power cut at 50 %",
    LEVEL=10,
    N=4,
    LAYOUT="o2",
    CHUNK=64,
    META="1.2",
    SIZE_KIB=12288,
    GROW="--layout=n2",
    SPEED=300,
    CUT=50,
)
_case(
    "raid10-n2-chunk-64to128-cut50",
    "reshape",
    4,
    16,
    "RAID-10 n2 on 4 disks, chunk 64 KiB, pattern; mdadm --grow --chunk=128 (same disks: "
    "data_offset moves), power cut at 50 %",
    LEVEL=10,
    N=4,
    LAYOUT="n2",
    CHUNK=64,
    META="1.2",
    GROW="--chunk=128",
    SPEED=300,
    CUT=50,
)
for _to, _cut in ((4, 40), (4, 5), (5, 40)):
    _case(
        f"raid0-grow-3to{_to}-cut{_cut}",
        "reshape",
        _to,
        16,
        f"RAID-0 on 3 disks, chunk 64 KiB, metadata 1.2, pattern; mdadm --grow "
        f"--raid-devices={_to} --add (mdadm: takeover to RAID-4 with the parity slot missing, "
        f"the new disks added, reshape with data_offset moving, takeover back to RAID-0), power "
        f"cut at {_cut} %",
        LEVEL=0,
        N=3,
        CHUNK=64,
        META="1.2",
        ADD=" ".join(str(k) for k in range(3, _to)),
        GROW=f"--raid-devices={_to}",
        SPEED=300,
        CUT=_cut,
    )
_case(
    "raid0-meta10-grow-3to4-backup-cut40",
    "reshape",
    4,
    16,
    "RAID-0 on 3 disks, metadata 1.0 (data_offset 0: no room to move the data), chunk 64 KiB, "
    "pattern; mdadm --grow --raid-devices=4 --add, first without a backup file, then (only "
    "if mdadm asks) with --backup-file on an ext4 disk: mdadm 4.2 needed none (it keeps the "
    "768 KiB critical section on the new member) and reshapes in place; power cut at 40 %",
    LEVEL=0,
    N=3,
    CHUNK=64,
    META="1.0",
    ADD="3",
    GROW="--raid-devices=4",
    BACKUP="auto",
    SPEED=300,
    CUT=40,
)
_case(
    "raid5-ext4-4",
    "ext4",
    4,
    16,
    "RAID-5 on 4 disks, chunk 64 KiB, metadata 1.2, ext4 with four files (pattern slices, "
    "text), unmounted and stopped cleanly",
    LEVEL=5,
    N=4,
    CHUNK=64,
    META="1.2",
)
_case(
    "raid5-ext4-grow-4to5-cut40",
    "ext4",
    5,
    16,
    "RAID-5 on 4 disks, chunk 64 KiB, ext4 with four files, unmounted; 5th disk added, "
    "mdadm --grow --raid-devices=5, power cut at 40 %",
    LEVEL=5,
    N=4,
    CHUNK=64,
    META="1.2",
    ADD="4",
    GROW="--raid-devices=5",
    SPEED=300,
    CUT=40,
)


# ---------------------------------------------------------------- host-side helpers

V1 = struct.Struct("<4I16s32sQiiQIIiiQiiIiQQQQII16sBBHiQQQII")


V1_FIELDS = [
    "magic",
    "major",
    "feature_map",
    "pad0",
    "set_uuid",
    "set_name",
    "ctime",
    "level",
    "layout",
    "size",
    "chunksize",
    "raid_disks",
    "bitmap_offset",
    "new_level",
    "reshape_position",
    "delta_disks",
    "new_layout",
    "new_chunk",
    "new_offset",
    "data_offset",
    "data_size",
    "super_offset",
    "recovery_offset",
    "dev_number",
    "cnt_corrected_read",
    "device_uuid",
    "devflags",
    "bblog_shift",
    "bblog_size",
    "bblog_offset",
    "utime",
    "events",
    "resync_offset",
    "sb_csum",
    "max_dev",
]


def read_v1_superblock(path: Path) -> dict[str, Any] | None:
    """The v1 superblock of a member image (1.2 at 4 KiB, 1.1 at 0, 1.0 near the end),
    decoded from md-format.md section 2 (independent of fastraid)."""
    size = path.stat().st_size
    sectors = size // 512
    with path.open("rb") as f:
        for minor, sector in (("1.2", 8), ("1.1", 0), ("1.0", (sectors - 16) & ~7)):
            f.seek(sector * 512)
            raw = f.read(4096)
            if len(raw) < 256 or struct.unpack_from("<I", raw)[0] != 0xA92B4EFC:
                continue
            v = V1.unpack_from(raw)
            sb = dict(zip(V1_FIELDS, v, strict=True))
            if sb["super_offset"] != sector:
                continue
            roles = struct.unpack_from(f"<{sb['max_dev']}H", raw, 256)
            role = roles[sb["dev_number"]] if sb["dev_number"] < len(roles) else 0xFFFF
            fm = sb["feature_map"]
            out = {
                "metadata_version": minor,
                "super_offset_sectors": sb["super_offset"],
                "feature_map": hex(fm),
                "array_uuid": sb["set_uuid"].hex(),
                "device_uuid": sb["device_uuid"].hex(),
                "level": sb["level"],
                "layout": sb["layout"],
                "chunk_sectors": sb["chunksize"],
                "raid_disks": sb["raid_disks"],
                "component_size_sectors": sb["size"],
                "data_offset_sectors": sb["data_offset"],
                "data_size_sectors": sb["data_size"],
                "events": sb["events"],
                "resync_offset": sb["resync_offset"],
                "role": role,
            }
            if fm & 4:
                out["reshape"] = {
                    "reshape_position_sectors": sb["reshape_position"],
                    "new_level": sb["new_level"],
                    "delta_disks": sb["delta_disks"],
                    "new_layout": sb["new_layout"],
                    "new_chunk_sectors": sb["new_chunk"],
                    "backwards_flag": bool(fm & 32),
                    "new_offset_flag": bool(fm & 64),
                    "new_offset_sectors": sb["new_offset"] if fm & 64 else None,
                }
            if fm & 2:
                out["recovery_offset_sectors"] = sb["recovery_offset"]
            return out
    return None


def sha256_file(path: Path, length: int | None = None) -> str:
    h = hashlib.sha256()
    left = length if length is not None else 1 << 62
    with path.open("rb") as f:
        while left > 0:
            b = f.read(min(left, 1 << 20))
            if not b:
                break
            h.update(b)
            left -= len(b)
    return h.hexdigest()


def parse_console(text: str) -> tuple[dict[str, str], dict[str, str]]:
    kv: dict[str, str] = {}
    sections: dict[str, str] = {}
    cur: str | None = None
    buf: list[str] = []
    for line in text.replace("\r", "").split("\n"):
        m = re.search(r"@@FX-KV ([^=@]+)=(.*)@@", line)
        if m:
            kv[m.group(1)] = m.group(2)
        m = re.search(r"@@FX-BEGIN (\S+)@@", line)
        if m:
            cur, buf = m.group(1), []
            continue
        m = re.search(r"@@FX-END (\S+)@@", line)
        if m and cur is not None:
            sections[cur] = "\n".join(buf) + "\n"
            cur = None
            continue
        if cur is not None:
            buf.append(line)
    return kv, sections


def pattern_sha(name: str, length: int) -> str:
    r = subprocess.run(
        [str(KERNEL_MD), "pattern", "--name", name, "--bytes", str(length)],
        check=True,
        capture_output=True,
        text=True,
    )
    return r.stdout.split()[0]


def extract_backup(disk: Path, work: Path) -> Path | None:
    """mdadm's backup file from the ext4 disk it was written to (journal replayed on a
    copy with e2fsck, then dumped with debugfs)."""
    copy = work / "bk-copy.img"
    shutil.copyfile(disk, copy)
    subprocess.run(["e2fsck", "-fy", str(copy)], capture_output=True)
    out = work / "md-reshape.backup"
    out.unlink(missing_ok=True)
    subprocess.run(
        ["debugfs", "-R", f"dump /md-reshape.backup {out}", str(copy)],
        capture_output=True,
        check=True,
    )
    copy.unlink()
    if not out.is_file() or out.stat().st_size == 0:
        return None
    return out


def xz(src: Path, dest: Path) -> None:
    with src.open("rb") as fin, lzma.open(dest, "wb", preset=9) as fout:
        shutil.copyfileobj(fin, fout, 1 << 20)


def sysfs_dict(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        if ": " in line:
            k, v = line.split(": ", 1)
            out[k.strip()] = v.strip()
    return out


TOLERATES = {"5": 1, "4": 1, "6": 2, "10": 1, "1": None, "0": 0}


# ---------------------------------------------------------------- layout census


def stripe_map(level: int, layout: int, n: int, chunk: int, sector: int) -> tuple[int, int]:
    """(member role, sector in its data area) of array sector ``sector`` for RAID-4/5/6 with
    md's layouts 0-5 (4/5: parity-first/-last, RAID-4 is 5) and the RAID-6 ``*-6`` layouts
    16-19 (raid5.c raid5_compute_sector, restated in md-format.md section 5.3)."""
    cn, off = divmod(sector, chunk)
    if level == 6 and layout >= 16:
        stripe, dd = divmod(cn, n - 2)
        return _r5(layout - 16, n - 1, stripe, dd), stripe * chunk + off
    data = n - 1 if level in (4, 5) else n - 2
    stripe, dd = divmod(cn, data)
    if level in (4, 5):
        return _r5(layout, n, stripe, dd), stripe * chunk + off
    if layout in (0, 1):
        pd = n - 1 - stripe % n if layout == 0 else stripe % n
        if pd == n - 1:
            dd += 1
        elif dd >= pd:
            dd += 2
        return dd, stripe * chunk + off
    pd = n - 1 - stripe % n if layout == 2 else stripe % n
    return (pd + 2 + dd) % n, stripe * chunk + off


def _r5(layout: int, n: int, stripe: int, dd: int) -> int:
    if layout == 4:  # parity-first
        return dd + 1
    if layout == 5:  # parity-last (and RAID-4)
        return dd
    if layout in (0, 1):
        pd = n - 1 - stripe % n if layout == 0 else stripe % n
        return dd + 1 if dd >= pd else dd
    pd = n - 1 - stripe % n if layout == 2 else stripe % n
    return (pd + 1 + dd) % n


def pattern_block(name: str, i: int) -> bytes:
    out = bytearray()
    for s in range(8):
        h = f"fastraid-fixture {name} block {i:012d} sector {s}\n".encode()
        out += h + bytes([(i * 7 + s) % 251]) * (512 - len(h))
    return bytes(out)


def _gf_tables() -> tuple[list[int], list[int]]:
    """exp/log tables of GF(2^8) with md's polynomial 0x11d and generator {02}
    (md-format.md section 5.4; lib/raid6/mktables.c)."""
    exp, log = [0] * 510, [0] * 256
    x = 1
    for i in range(255):
        exp[i] = exp[i + 255] = x
        log[x] = i
        x = ((x << 1) ^ 0x11D) if x & 0x80 else x << 1
    return exp, log


_GF_EXP, _GF_LOG = _gf_tables()
_GF_SCALE: dict[int, bytes] = {}


def _gf_mul(a: int, b: int) -> int:
    return 0 if a == 0 or b == 0 else _GF_EXP[_GF_LOG[a] + _GF_LOG[b]]


def _gf_inv(a: int) -> int:
    return _GF_EXP[(255 - _GF_LOG[a]) % 255]


def _gf_scale(c: int, block: bytes) -> bytes:
    """c * block, byte-wise in GF(2^8)."""
    if c == 1:
        return block
    if c not in _GF_SCALE:
        _GF_SCALE[c] = bytes(_gf_mul(c, b) for b in range(256))
    return block.translate(_GF_SCALE[c])


def parity_equations(geo: tuple[int, int, int, int], stripe: int) -> list[dict[int, int]] | None:
    """The parity equations of one row of stripe ``stripe``: each maps member role ->
    GF(2^8) coefficient, and the sum over its roles of coefficient * block is zero.
    RAID-4/5: one, the XOR over all members. RAID-6: P (XOR of P and the data) and Q
    (Q plus the sum of g^slot * data, slots in md's syndrome order: members walked from
    Q+1 on, skipping P and Q; md-format.md sections 5.3/5.4, raid5.c raid6_idx_to_slot).
    None for layouts not handled (DDF, parity-first/-last)."""
    level, layout, n, chunk = geo
    if level in (4, 5):
        return [dict.fromkeys(range(n), 1)]
    if level != 6 or layout not in (0, 1, 2, 3, 16, 17, 18, 19):
        return None
    if layout >= 16:
        m = n - 1
        p = m - 1 - stripe % m if layout in (16, 18) else stripe % m
        q = n - 1
    else:
        p = n - 1 - stripe % n if layout in (0, 2) else stripe % n
        q = (p + 1 if p < n - 1 else 0) if layout in (0, 1) else (p + 1) % n
    data = [r % n for r in range(q + 1, q + n) if r % n != p]
    # the same data members as the stripe map's (a cross-check of two restatements)
    mapped = {
        stripe_map(level, layout, n, chunk, (stripe * (n - 2) + d) * chunk)[0] for d in range(n - 2)
    }
    assert mapped == set(data), (geo, stripe, p, q, data, mapped)
    return [
        {p: 1, **dict.fromkeys(data, 1)},
        {q: 1, **{r: _GF_EXP[j] for j, r in enumerate(data)}},
    ]


def solve_row(
    equations: list[dict[int, int]], blocks: dict[int, bytes | None]
) -> tuple[bool, int | None, bytes | None] | None:
    """Can the row's known blocks (``blocks``: role -> bytes, None where unknown) be
    completed so that every equation holds? (consistent, the unknown role, its only
    consistent value); None where more than one block is unknown (not computed).
    One unknown u: the first equation with u determines it (every equation here has
    coefficient != 0 on each of its roles), the others must hold with that value; an
    equation without u must hold as it is."""
    unknown = [r for r, b in blocks.items() if b is None]
    if len(unknown) > 1:
        return None
    u = unknown[0] if unknown else None
    value: bytes | None = None
    ok = True
    for eq in equations:
        acc = 0
        for r, c in eq.items():
            block = blocks[r]
            if block is not None:
                acc ^= int.from_bytes(_gf_scale(c, block), "little")
        rest = acc.to_bytes(4096, "little")
        if u not in eq:
            ok = ok and acc == 0
        elif value is None:
            value = _gf_scale(_gf_inv(eq[u]), rest)
        else:
            ok = ok and _gf_scale(eq[u], value) == rest
    return ok, u, value


def _add_block(ranges: list[list[int]], i: int) -> None:
    if ranges and ranges[-1][1] == i * 8:
        ranges[-1][1] = (i + 1) * 8
    else:
        ranges.append([i * 8, (i + 1) * 8])


def layout_census(manifest: dict[str, Any], images: list[Path]) -> dict[str, Any] | None:
    """Where each 4 KiB pattern block really is after the cut: at its old-geometry place,
    its new-geometry place, both or neither; and where parity cannot tell the two
    geometries apart, with every member and with each member's bytes unknown (members
    only; no md, no fastraid)."""
    sbs = [m["superblock"] for m in manifest["members"]]
    sb0 = next((s for s in sbs if s and "reshape" in s), None)
    if sb0 is None or "pattern" not in manifest or sb0["level"] not in (4, 5, 6):
        return None
    r = sb0["reshape"]
    by_role = {s["role"]: (k, s) for k, s in enumerate(sbs) if s and s["role"] < 0xFFFE}
    role_of = {k: role for role, (k, _) in by_role.items()}
    old = (sb0["level"], sb0["layout"], sb0["raid_disks"] - r["delta_disks"], sb0["chunk_sectors"])
    new = (r["new_level"], r["new_layout"], sb0["raid_disks"], r["new_chunk_sectors"])
    fds = [p.open("rb") for p in images]
    name = manifest["pattern"]["name"]
    runs: list[list[Any]] = []
    ambiguous: list[list[int]] = []
    # without member k: k -> ranges (str keys in the manifest)
    without: dict[int, list[list[int]]] = {k: [] for k in range(len(sbs))}

    def at(role: int, dev: int, newgeo: bool) -> bytes | None:
        if role not in by_role:
            return None
        k, s = by_role[role]
        base = s["data_offset_sectors"]
        if newgeo and s.get("reshape", {}).get("new_offset_flag"):
            base += s["reshape"]["new_offset_sectors"]
        fds[k].seek((base + dev) * 512)
        return fds[k].read(4096)

    def readings(
        geo: tuple[int, int, int, int], sector: int, newgeo: bool
    ) -> tuple[bytes | None, dict[int | None, tuple[bool, bytes | None] | None]]:
        """The block at ``sector`` read in geometry ``geo`` straight off its member, and
        per erasure (None: every member; k: member k's bytes unknown) whether the row
        admits a consistent reading and the block's value in it (None: not computed)."""
        role, dev = stripe_map(geo[0], geo[1], geo[2], geo[3], sector)
        row = {x: at(x, dev, newgeo) for x in range(geo[2])}
        eqs = parity_equations(geo, dev // geo[3])
        out: dict[int | None, tuple[bool, bytes | None] | None] = {}
        for k in (None, *range(len(sbs))):
            erased = row if k is None or role_of.get(k) not in row else {**row, role_of[k]: None}
            solved = None if eqs is None else solve_row(eqs, erased)
            if solved is None:
                out[k] = None
                continue
            ok, u, value = solved
            out[k] = (ok, value if u == role else erased[role])
        return row[role], out

    try:
        for i in range(manifest["pattern"]["length_bytes"] // 4096):
            want = pattern_block(name, i)
            got_old, par_old = readings(old, i * 8, False)
            got_new, par_new = readings(new, i * 8, True)
            for k, ranges in ((None, ambiguous), *without.items()):
                a, b = par_old[k], par_new[k]
                if a and b and a[0] and b[0] and a[1] != b[1]:
                    _add_block(ranges, i)
            found = [None if g is None else g == want for g in (got_old, got_new)]
            where = {
                (True, True): "both",
                (True, False): "old",
                (False, True): "new",
                (False, False): "neither",
            }.get((bool(found[0]), bool(found[1])), "neither")
            if runs and runs[-1][2] == where and runs[-1][1] == i * 8:
                runs[-1][1] = (i + 1) * 8
            else:
                runs.append([i * 8, (i + 1) * 8, where])
    finally:
        for f in fds:
            f.close()
    only_new = [x for x in runs if x[2] == "new"]
    only_old = [x for x in runs if x[2] == "old"]
    return {
        "method": "tools/kernel_cases/make.py layout_census: each 4 KiB pattern block looked "
        "up at its old-geometry and new-geometry place in the member images",
        "old_geometry": dict(
            zip(("level", "layout", "raid_disks", "chunk_sectors"), old, strict=True)
        ),
        "new_geometry": dict(
            zip(("level", "layout", "raid_disks", "chunk_sectors"), new, strict=True)
        ),
        "runs_array_sectors": [{"start": a, "end": b, "found": w} for a, b, w in runs][:64],
        "parity_ambiguous_sectors": ambiguous,
        "parity_ambiguous_note": "blocks whose 4 KiB row is parity-consistent in both "
        "geometries (RAID-4/5: XOR; RAID-6: P and Q, GF(2^8) 0x11d, md's syndrome slot "
        "order; DDF and parity-first/-last RAID-6 layouts are not computed, never listed) "
        "while the two readings differ: parity cannot tell which one holds the data (a "
        "reader may call them uncertain). Every member's bytes count as they are, a member "
        "still recovering too (RAID-5 -> 6: the new member's old-geometry Q is never "
        "written, so those rows fail Q in the old geometry); a member image missing counts "
        "as unknown (solved as below); two unknown: not computed",
        "parity_ambiguous_sectors_without": {str(k): v for k, v in without.items()},
        "parity_ambiguous_without_note": "per member index K (the manifest's members list): "
        "the same with member K's bytes unknown. In each geometry whose row holds K's role, "
        "K's block is solved from the first equation that has it and the row is consistent "
        "when the other equations still hold (RAID-4/5: always, no equation is left; "
        "RAID-6: one is left); a row without K's role must hold as it is. Listed where both "
        "geometries are consistent and the two readings of the block (read, or solved where "
        "it is K's) differ. Includes parity_ambiguous_sectors",
        "runs_left_off": max(0, len(runs) - 64),
        "new_only_sectors": [
            min((x[0] for x in only_new), default=None),
            max((x[1] for x in only_new), default=None),
        ],
        "old_only_sectors": [
            min((x[0] for x in only_old), default=None),
            max((x[1] for x in only_old), default=None),
        ],
        "found_nowhere_blocks": sum((b - a) // 8 for a, b, w in runs if w == "neither"),
        "note": "'both' blocks sit at the same place in both geometries (or were copied and "
        "not yet overwritten); a reshape forwards is cleanly split when new-only blocks all lie "
        "below old-only ones (backwards: above)",
    }


def make_case(name: str, work_root: Path, keep: bool) -> dict[str, Any]:
    case = CASES[name]
    v = case["vars"]
    work = work_root / name
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    n_total = case["members"]
    size = case["member_mib"] * MiB
    script = work / "guest.sh"
    header = "".join(f"{k}='{val}'\n" for k, val in v.items())
    script.write_text(
        f"# case {name}\n"
        + header
        + (HERE / "common.sh").read_text()
        + (HERE / f"{case['kind']}.sh").read_text()
    )
    payload = work / "payload.img"
    subprocess.run(
        [
            str(KERNEL_MD),
            "pattern",
            "--name",
            name,
            "--bytes",
            str(n_total * size),
            "--out",
            str(payload),
        ],
        check=True,
        capture_output=True,
    )
    cmd = [
        str(KERNEL_MD),
        "run",
        "--script",
        str(script),
        "--snap",
        f"PAYLOAD={payload}",
        "--timeout",
        "900",
        "--log",
        str(work / "console.log"),
    ]
    for k in range(n_total):
        cmd += ["--disk", f"M{k}={work / f'member-{k}.img'}:{size}"]
    if v.get("BACKUP", "0") != "0":
        cmd += ["--disk", f"BK={work / 'backup-disk.img'}:64M"]
    t0 = time.time()
    r = subprocess.run(cmd, capture_output=True, text=True)
    vm_s = round(time.time() - t0, 1)
    console = (work / "console.log").read_text(errors="replace")
    if r.returncode != 0:
        sys.stderr.write(console[-6000:])
        raise SystemExit(f"{name}: kernel-md run failed rc={r.returncode}")
    kv, sections = parse_console(console)
    cut = "@@FX-CUT@@" in console

    dest = OUT / name
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for sec in (
        "examine.txt",
        "examine-at-cut.txt",
        "md-sysfs-initial.txt",
        "md-sysfs.txt",
        "detail-initial.txt",
        "detail.txt",
        "mdstat.txt",
        "grow.txt",
        "grow-try.txt",
        "mdstat-after-try.txt",
        "examine-after-try.txt",
    ):
        if sec in sections:
            (dest / sec).write_text(sections[sec])

    members = []
    for k in range(n_total):
        img = work / f"member-{k}.img"
        sb = read_v1_superblock(img)
        xz(img, dest / f"member-{k}.img.xz")
        members.append(
            {
                "file": f"member-{k}.img.xz",
                "size_bytes": img.stat().st_size,
                "sha256_uncompressed": sha256_file(img),
                "superblock": sb,
            }
        )
    sbs = [m["superblock"] for m in members if m["superblock"]]
    initial = sysfs_dict(sections.get("md-sysfs-initial.txt", ""))
    manifest: dict[str, Any] = {
        "scenario": name,
        "set": "fastraid kernel cases",
        "description": case["description"],
        "created_by": {
            "tool": "tools/kernel_cases/make.py (kernel-md run) with tools/kernel_cases/"
            f"{case['kind']}.sh",
            "guest_variables": v,
            "kernel": kv.get("kernel") or _uname_from(console),
            "vm_seconds": vm_s,
        },
        "members": members,
        "at_creation": {
            "level": initial.get("level"),
            "layout_number": initial.get("layout"),
            "chunk_bytes": int(initial["chunk_size"]) if "chunk_size" in initial else None,
            "raid_disks": initial.get("raid_disks"),
            "component_size_kib": initial.get("component_size"),
            "metadata_version": v.get("META"),
            "source": "md sysfs after the initial resync",
        },
        "level": "raid" + v["LEVEL"],
        "tolerates_missing": TOLERATES.get(v["LEVEL"]),
    }
    if v["LEVEL"] == "5" and "--level=6" in v.get("GROW", ""):
        # the added disk only gets its Q (it is recovered) as the reshape passes: above
        # the reshape position the array is a degraded RAID-6, so one member at most
        manifest["level"] = "raid6"
        manifest["tolerates_missing"] = 1
    if v["LEVEL"] == "0" and "GROW" in v:
        # mdadm grows a RAID-0 as a RAID-4 whose parity member is missing: nothing more
        # may be missing
        manifest["level"] = "raid4"
        manifest["tolerates_missing"] = 0
    if case["kind"] == "ext4":
        files = []
        for key, val in sorted(kv.items()):
            if key.startswith("file."):
                sha, nbytes = val.split()
                files.append({"path": "/" + key[5:], "size_bytes": int(nbytes), "sha256": sha})
        manifest["ext4"] = {
            "files": files,
            "note": "made with mkfs.ext4 -b 4096 in the guest, files written through the "
            "mounted file system, unmounted cleanly before any reshape; the file contents "
            "are slices of the pattern named after the case (big.bin: bytes [0, 5000000); "
            "dir/mid.bin: 4 KiB blocks [1000, 1333)), 'fastraid ext4 text line' lines "
            "and one short line",
        }
        manifest["expected"] = {
            "sha256": kv["md0_sha256"],
            "length_bytes": int(kv["md0_bytes"]),
            "source": "the guest read /dev/md0 with O_DIRECT after unmounting",
        }
    else:
        length = int(kv["guest_sha256_len"])
        if "shrunk_array_bytes" in kv:
            length = min(length, int(kv["shrunk_array_bytes"]))
        sha = pattern_sha(name, length)
        if length == int(kv["guest_sha256_len"]) and sha != kv["guest_sha256"]:
            raise SystemExit(f"{name}: guest read back {kv['guest_sha256']}, pattern is {sha}")
        manifest["pattern"] = {
            "name": name,
            "generator": "kernel-md pattern (the public fixtures' pattern): array byte "
            "offset o lies in 4096-byte block i = o // 4096; sector s (0..7) of block i = "
            "f'fastraid-fixture {name} block {i:012d} sector {s}\\n' then the byte "
            "(i*7+s) % 251 repeated to 512 bytes",
            "length_bytes": length,
            "sha256": sha,
            "written_bytes": int(kv["guest_sha256_len"]),
            "guest_sha256_of_written": kv["guest_sha256"],
        }
        manifest["expected"] = {
            "sha256": sha,
            "length_bytes": length,
            "source": "pattern",
        }
    if cut:
        at_cut = sysfs_dict(sections.get("md-sysfs.txt", ""))
        positions = sorted(
            {s["reshape"]["reshape_position_sectors"] for s in sbs if "reshape" in s}
        )
        manifest["state"] = "reshape-interrupted" if positions else "reshape-finished-before-cut"
        if not positions:
            manifest["note"] = (
                "the reshape had already finished when the power was cut (the superblocks "
                "carry no reshape); a backup file, if any, is left over and no longer needed"
            )
        manifest["reshape"] = {
            "cut": "sysrq b (emergency_restart: no sync, no md reboot notifier)",
            "cut_at_percent_requested": int(v["CUT"]),
            "cut_progress_percent": kv.get("cut_progress"),
            "in_memory_reshape_position_sectors_at_cut": kv.get("cut_reshape_position"),
            "on_disk_reshape_position_sectors": positions,
            "direction_at_cut": at_cut.get("reshape_direction"),
            "mdadm_grow": v.get("GROW"),
            "used_backup_file": kv.get("used_backup_file") == "1",
            "old_geometry": {
                "level": initial.get("level"),
                "layout_number": initial.get("layout"),
                "chunk_bytes": int(initial["chunk_size"]) if "chunk_size" in initial else None,
                "raid_disks": initial.get("raid_disks"),
            },
            "superblock_geometry": {
                "level": sbs[0]["level"] if sbs else None,
                "layout": sbs[0]["layout"] if sbs else None,
                "chunk_bytes": sbs[0]["chunk_sectors"] * 512 if sbs else None,
                "raid_disks": sbs[0]["raid_disks"] if sbs else None,
                **(sbs[0].get("reshape", {}) if sbs else {}),
            },
            "sysfs_at_cut": at_cut,
        }
        if manifest["reshape"]["used_backup_file"]:
            bk = extract_backup(work / "backup-disk.img", work)
            if bk is None:
                manifest["backup_file"] = None
                manifest["reshape"]["backup_note"] = "the backup file was not found on its disk"
            else:
                xz(bk, dest / "md-reshape.backup.xz")
                manifest["backup_file"] = {
                    "file": "md-reshape.backup.xz",
                    "size_bytes": bk.stat().st_size,
                    "sha256_uncompressed": sha256_file(bk),
                    "magic": bk.read_bytes()[:16].decode("latin-1"),
                    "how": "mdadm --grow --backup-file=/backup/md-reshape.backup on an ext4 "
                    "disk; after the cut the host replayed the journal on a copy (e2fsck -fy) "
                    "and dumped the file with debugfs",
                }
        census = layout_census(manifest, [work / f"member-{k}.img" for k in range(n_total)])
        if census:
            manifest["layout_census"] = census
    else:
        manifest["state"] = "clean"
    (dest / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    if not keep:
        shutil.rmtree(work)
    return manifest


def recensus(name: str, work_root: Path) -> None:
    dest = OUT / name
    manifest = json.loads((dest / "manifest.json").read_text())
    if manifest.get("state") != "reshape-interrupted":
        return
    work = work_root / f"census-{name}"
    work.mkdir(parents=True, exist_ok=True)
    images = []
    for m in manifest["members"]:
        p = work / m["file"].removesuffix(".xz")
        with lzma.open(dest / m["file"]) as fin, p.open("wb") as fout:
            shutil.copyfileobj(fin, fout, 1 << 20)
        images.append(p)
    census = layout_census(manifest, images)
    if census:
        manifest["layout_census"] = census
        (dest / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    shutil.rmtree(work)
    print(
        name,
        json.dumps(
            {k: census[k] for k in ("new_only_sectors", "old_only_sectors", "found_nowhere_blocks")}
            if census
            else None
        ),
    )


def kernel_verify(name: str) -> dict[str, Any]:
    """What the real kernel makes of the case: ``kernel-md check`` (snapshot disks: the
    images are not modified) assembles it, lets md finish any reshape, hashes the expected
    length and compares. Stored as ``kernel_verify`` in the manifest."""
    dest = OUT / name
    manifest = json.loads((dest / "manifest.json").read_text())
    exp = manifest["expected"]
    cmd = [str(KERNEL_MD), "check", "--json", "-q", "--timeout", "600"]
    cmd += [str(dest / m["file"]) for m in manifest["members"]]
    cmd += ["--sha-bytes", str(exp["length_bytes"]), "--expect-sha256", exp["sha256"]]
    if manifest.get("backup_file"):
        work = Path(os.environ.get("TMPDIR", "/var/tmp")) / f"verify-{name}.backup"
        with lzma.open(dest / manifest["backup_file"]["file"]) as fin, work.open("wb") as fout:
            shutil.copyfileobj(fin, fout)
        cmd += ["--backup-file", str(work)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    try:
        res = json.loads(r.stdout)
    except ValueError:
        res = {"errors": [r.stderr[-2000:]]}
    out = {
        "method": "kernel-md check (qemu snapshot disks): mdadm --assemble --run "
        "(+ --backup-file, + --grow --continue when mdadm needs it), md finishes any "
        "reshape, sha256 of expected.length_bytes of /dev/md0",
        "exit_code": r.returncode,
        "assembled": res.get("assembled"),
        "assemble_rc": (res.get("assemble") or {}).get("rc"),
        "grow_continue_rc": res.get("grow_continue_rc"),
        "sync_events": res.get("sync_events"),
        "sha256": res.get("sha256"),
        "sha256_matches": res.get("sha256_matches"),
        "errors": res.get("errors"),
    }
    manifest["kernel_verify"] = out
    (dest / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return out


def write_readme() -> None:
    """tests/fixtures/kernel/README.md: one row per case, from the manifests."""
    rows = [
        "# Kernel-written md cases",
        "",
        "Made by `tools/kernel_cases/make.py` with the real md driver and mdadm under qemu "
        "(`../shared/tools/kernel-md/kernel-md run`); read by `tests/test_kernel_cases.py`. "
        "Each directory: `member-K.img.xz`, `manifest.json` (geometry before/after, the "
        "superblocks, the cut, the expected sha256, the layout census, what the kernel "
        "itself made of it), maybe `md-reshape.backup.xz` (mdadm's backup file) and the "
        "guest's reports (`examine-at-cut.txt`, `md-sysfs.txt`, ...). Sector numbers are "
        "array sectors of 512 bytes. *census*: where each pattern block really is after "
        "the cut (members only): new-only and old-only ranges.",
        "",
        "| case | state | cut at % (asked/seen) | on-disk reshape_position | "
        "census new-only / old-only | backup | kernel (mdadm + md finish it) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for d in sorted(OUT.iterdir()):
        if not (d / "manifest.json").is_file():
            continue
        m = json.loads((d / "manifest.json").read_text())
        r = m.get("reshape") or {}
        c = m.get("layout_census") or {}
        kv = m.get("kernel_verify") or {}
        cut = f"{r['cut_at_percent_requested']}/{r['cut_progress_percent']}" if r else ""
        pos = ",".join(map(str, r.get("on_disk_reshape_position_sectors") or [])) if r else ""
        cen = f"{c.get('new_only_sectors')} / {c.get('old_only_sectors')}" if c else ""
        if r:
            bk = "none used"
            if r.get("used_backup_file"):
                b = m.get("backup_file")
                bk = b["magic"].strip("\x00") or "all zero" if b else "gone (deleted)"
        else:
            bk = ""
        if kv:
            if kv.get("sha256_matches"):
                ker = "sha ok"
            elif not kv.get("assembled"):
                ker = "not assembled"
            elif kv.get("exit_code") == 3:
                ker = "WRONG data"
            else:
                ker = f"no result (assemble rc {kv.get('assemble_rc')}, did not finish)"
        else:
            ker = "not run"
        rows.append(f"| {d.name} | {m['state']} | {cut} | {pos} | {cen} | {bk} | {ker} |")
    rows.append("")
    (OUT / "README.md").write_text("\n".join(rows))


def _uname_from(console: str) -> str | None:
    m = re.search(r"Linux version (\S+)", console)
    return m.group(1) if m else None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("cases", nargs="*")
    ap.add_argument("--all", action="store_true")
    ap.add_argument("--list", action="store_true")
    ap.add_argument(
        "--work", default=os.environ.get("TMPDIR", "/var/tmp") + "/fastraid-kernel-cases"
    )
    ap.add_argument("--keep", action="store_true", help="keep the raw images and console log")
    ap.add_argument("--readme", action="store_true", help="rewrite tests/fixtures/kernel/README.md")
    ap.add_argument(
        "--verify",
        action="store_true",
        help="only run kernel-md check on the given (made) cases; result in the manifest",
    )
    ap.add_argument(
        "--census",
        action="store_true",
        help="only recompute layout_census in the manifests of the given (made) cases",
    )
    a = ap.parse_args()
    if a.list:
        for n, c in CASES.items():
            print(f"{n:36s} {c['description']}")
        return 0
    names = list(CASES) if a.all else a.cases
    bad = [n for n in names if n not in CASES]
    if bad:
        raise SystemExit(f"unknown case(s): {bad}")
    if a.readme:
        write_readme()
        return 0
    if a.verify:
        for n in names:
            v = kernel_verify(n)
            print(
                n,
                "kernel:",
                v["exit_code"],
                "assembled",
                v["assembled"],
                "sha ok",
                v["sha256_matches"],
                flush=True,
            )
        return 0
    if a.census:
        for n in names:
            recensus(n, Path(a.work))
        return 0
    failed = []
    for n in names:
        t0 = time.time()
        try:
            m = make_case(n, Path(a.work), a.keep)
        except (Exception, SystemExit) as e:  # noqa: BLE001 - report and go on
            print(f"FAILED {n}: {e}", flush=True)
            failed.append(n)
            continue
        extra = ""
        if "reshape" in m:
            r = m["reshape"]
            extra = (
                f" cut {r['cut_progress_percent']}%"
                f" on-disk R={r['on_disk_reshape_position_sectors']}"
                f" backup={r['used_backup_file']}"
            )
        print(f"made {n} in {time.time() - t0:.0f}s{extra}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
