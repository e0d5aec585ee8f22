"""Build small Linux md arrays in pure Python for the assembly tests.

Everything here is written from docs/md-format.md (sections 1, 2, 5) and deliberately
independent of fastraid's own layout and superblock code, so that tests built with it check
fastraid against a second reading of the format. Parity comes from ``fastraid.reference``
(the pure-Python oracle).

``build(tmp, level=..., layout=..., n=..., ...)`` writes the member images and returns the
array's logical content and the member paths.
"""

from __future__ import annotations

import random
import struct
import uuid as uuidlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from fastraid import reference

MAGIC = 0xA92B4EFC
MAX_SECTOR = (1 << 64) - 1
SECTOR = 512

# ======================================================================================
# v1 superblock (md-format.md section 2)
# ======================================================================================


def v1_checksum(sb: bytes) -> int:
    """Section 2.1: sum of little-endian u32 words (csum field as 0), folded to 32 bits."""
    max_dev = struct.unpack_from("<I", sb, 220)[0]
    n = min(256 + 2 * max_dev, len(sb))  # (a fuzzed max_dev may point past the block)
    raw = bytearray(sb[:n])
    raw[216:220] = b"\0\0\0\0"
    total = 0
    for i in range(0, n - n % 4, 4):
        total += struct.unpack_from("<I", raw, i)[0]
    if n % 4 == 2:
        total += struct.unpack_from("<H", raw, n - 2)[0]
    return ((total & 0xFFFFFFFF) + (total >> 32)) & 0xFFFFFFFF


@dataclass
class Sb:
    """The v1 fields the tests set; the rest are zero."""

    set_uuid: bytes
    level: int
    layout: int
    size: int
    chunksize: int
    raid_disks: int
    data_offset: int
    data_size: int
    super_offset: int
    dev_number: int
    roles: list[int]
    events: int = 10
    feature_map: int = 0
    recovery_offset: int = 0
    resync_offset: int = MAX_SECTOR
    device_uuid: bytes = field(default_factory=lambda: uuidlib.uuid4().bytes)
    name: bytes = b"builder:0"
    ctime: int = 1_700_000_000
    # Reshape fields (valid with feature bit 4).
    new_level: int = 0
    reshape_position: int = 0
    delta_disks: int = 0
    new_layout: int = 0
    new_chunk: int = 0
    new_offset: int = 0
    # Bad-block log (valid with feature bit 8): shift, size in sectors, signed offset.
    bblog_shift: int = 0
    bblog_size: int = 0
    bblog_offset: int = 0

    def pack(self, *, corrupt_checksum: bool = False) -> bytes:
        max_dev = max(128, len(self.roles))
        b = bytearray(4096)
        struct.pack_into("<III", b, 0, MAGIC, 1, self.feature_map)
        b[16:32] = self.set_uuid
        b[32 : 32 + len(self.name)] = self.name
        struct.pack_into("<Q", b, 64, self.ctime)
        struct.pack_into(
            "<iIQII", b, 72, self.level, self.layout, self.size, self.chunksize, self.raid_disks
        )
        struct.pack_into(
            "<iQiIIi",
            b,
            100,
            self.new_level,
            self.reshape_position,
            self.delta_disks,
            self.new_layout,
            self.new_chunk,
            self.new_offset,
        )
        struct.pack_into(
            "<QQQQ",
            b,
            128,
            self.data_offset,
            self.data_size,
            self.super_offset,
            self.recovery_offset,
        )
        struct.pack_into("<I", b, 160, self.dev_number)
        b[168:184] = self.device_uuid
        struct.pack_into("<BHi", b, 185, self.bblog_shift, self.bblog_size, self.bblog_offset)
        struct.pack_into("<QQQ", b, 192, self.ctime, self.events, self.resync_offset)
        struct.pack_into("<I", b, 220, max_dev)
        roles = self.roles + [0xFFFF] * (max_dev - len(self.roles))
        struct.pack_into(f"<{max_dev}H", b, 256, *roles)
        csum = v1_checksum(bytes(b))
        if corrupt_checksum:
            csum ^= 1
        struct.pack_into("<I", b, 216, csum)
        return bytes(b)


# ======================================================================================
# Address mapping (md-format.md section 5), returning for each array chunk its places
# ======================================================================================

Place = tuple[int, int]  # (member, device chunk index) -- RAID0 uses sectors, see below


def raid6_roles(layout: int, n: int, stripe: int) -> tuple[int, int, list[int], list[int]]:
    """(P, Q, data members by logical index, data members by syndrome slot), section 5.3."""
    i = stripe % n
    d_count = n - 2
    after = lambda p: 0 if p == n - 1 else p + 1  # noqa: E731
    i6 = stripe % (n - 1)
    if layout in (0, 1):
        p = n - 1 - i if layout == 0 else i
        q = after(p)
        data = [(d + 1) if p == n - 1 else (d if d < p else d + 2) for d in range(d_count)]
    elif layout in (2, 3):
        p = n - 1 - i if layout == 2 else i
        q = (p + 1) % n
        data = [(p + 2 + d) % n for d in range(d_count)]
    elif layout == 4:
        p, q = 0, 1
        data = [d + 2 for d in range(d_count)]
    elif layout == 5:
        p, q = d_count, d_count + 1
        data = list(range(d_count))
    elif layout in (16, 17, 18, 19):
        p = (n - 2 - i6) if layout in (16, 18) else i6
        q = n - 1
        if layout in (16, 17):
            data = [d if d < p else d + 1 for d in range(d_count)]
        else:
            data = [(p + 1 + d) % (n - 1) for d in range(d_count)]
    elif layout == 20:
        p, q = 0, n - 1
        data = [d + 1 for d in range(d_count)]
    else:
        raise NotImplementedError(layout)
    walk = [(q + 1 + s) % n for s in range(n)]
    slots = [m for m in walk if m not in (p, q)]
    return p, q, data, slots


def raid5_roles(level: int, layout: int, n: int, stripe: int) -> tuple[int, list[int]]:
    i = stripe % n
    d_count = n - 1
    if level == 4:
        return d_count, list(range(d_count))
    p = {0: d_count - i, 1: i, 2: d_count - i, 3: i, 4: 0, 5: d_count}[layout]
    if layout in (0, 1, 5):
        data = [d if d < p else d + 1 for d in range(d_count)]
    elif layout in (2, 3):
        data = [(p + 1 + d) % n for d in range(d_count)]
    else:
        data = [d + 1 for d in range(d_count)]
    return p, data


def raid10_places(
    layout: int, n: int, chunk: int, dev_sectors: int
) -> tuple[int, Callable[[int], list[Place]]]:
    """(array chunks, chunk -> [(member, device sector)]) for near/far/offset, set 0."""
    nc, fc, offset = layout & 0xFF, (layout >> 8) & 0xFF, bool(layout >> 16 & 1)
    chunks = dev_sectors // chunk
    array_chunks = (chunks // fc) * n // nc
    used = -(-(array_chunks * nc * fc) // n)
    stride = chunk if offset else (used // fc) * chunk
    size_chunks = (used // fc) * n // nc

    def places(k: int) -> list[Place]:
        c = k * nc
        stripe, dev = divmod(c, n)
        if offset:
            stripe *= fc
        base = stripe * chunk
        out: list[Place] = []
        for _ in range(nc):
            out.append((dev, base))
            d, s = dev, base
            for _ in range(fc - 1):
                d = (d + nc) % n
                s += stride
                out.append((d, s))
            dev += 1
            if dev == n:
                dev, base = 0, base + chunk
        return out

    return size_chunks, places


def raid0_places(
    sizes: list[int], chunk: int, alternate: bool
) -> tuple[int, Callable[[int], Place]]:
    """(array chunks, chunk -> (member, device sector)), zones per section 5.2."""
    rounded = [s // chunk * chunk for s in sizes]
    zones = []  # (start_sector, end_sector, dev_start, members)
    dev_start, zone_end = 0, 0
    while True:
        members = [i for i, s in enumerate(rounded) if s > dev_start]
        if not members:
            break
        smallest = min(rounded[i] for i in members)
        end = zone_end + (smallest - dev_start) * len(members)
        zones.append((zone_end, end, dev_start, members))
        dev_start, zone_end = smallest, end

    def place(k: int) -> Place:
        a = k * chunk
        for start, end, ds, members in zones:
            if a < end:
                r = a - start
                t = r if alternate else a
                member = members[(t // chunk) % len(members)]
                in_zone = (r // (chunk * len(members))) * chunk + (t % chunk)
                return member, ds + in_zone
        raise AssertionError(k)

    return zone_end // chunk, place


# ======================================================================================
# Arrays
# ======================================================================================


@dataclass
class Built:
    content: bytes
    members: list[Path]
    sbs: list[Sb]
    chunk_bytes: int


def build(
    tmp: Path,
    *,
    level: int,
    layout: int = 0,
    n: int,
    chunk_sectors: int = 8,
    chunks_per_member: int = 24,
    member_chunks: list[int] | None = None,
    metadata: str = "1.2",
    raid0_layout_feature: bool = False,
    seed: int = 0,
    prefix: str = "m",
) -> Built:
    """Write an ``n``-member array; returns its content and member paths (slot order)."""
    rng = random.Random(seed)
    c = chunk_sectors
    cb = c * SECTOR
    set_uuid = rng.randbytes(16)
    # Per-member data sectors.
    if member_chunks is None:
        member_chunks = [chunks_per_member] * n
    data_sectors = [k * c for k in member_chunks]
    dev_sectors = min(data_sectors)
    dev: list[bytearray] = [bytearray(s * SECTOR) for s in data_sectors]

    def put(member: int, sector: int, data: bytes) -> None:
        dev[member][sector * SECTOR : sector * SECTOR + len(data)] = data

    if level in (0, -1):
        if level == 0:
            total, place0 = raid0_places(data_sectors, c, alternate=(layout == 2))
            content = rng.randbytes(total * cb)
            for k in range(total):
                m, s = place0(k)
                put(m, s, content[k * cb : (k + 1) * cb])
        else:
            content = b""
            for m in range(n):
                part = rng.randbytes(data_sectors[m] * SECTOR)
                put(m, 0, part)
                content += part
    elif level == 1:
        content = rng.randbytes(dev_sectors * SECTOR)
        for m in range(n):
            put(m, 0, content)
    elif level == 10:
        total, places = raid10_places(layout, n, c, dev_sectors)
        content = rng.randbytes(total * cb)
        for k in range(total):
            for m, s in places(k):
                put(m, s, content[k * cb : (k + 1) * cb])
    elif level in (4, 5, 6):
        stripes = dev_sectors // c
        d_count = n - (2 if level == 6 else 1)
        content = rng.randbytes(stripes * d_count * cb)
        for st in range(stripes):
            blocks = [
                content[(st * d_count + d) * cb : (st * d_count + d + 1) * cb]
                for d in range(d_count)
            ]
            if level == 6:
                p, q, data, slots = raid6_roles(layout, n, st)
                by_member = {data[d]: blocks[d] for d in range(d_count)}
                put(p, st * c, reference.xor_blocks(blocks, cb))
                put(q, st * c, reference.q_syndrome([by_member[m] for m in slots], cb))
            else:
                p, data = raid5_roles(level, layout, n, st)
                put(p, st * c, reference.xor_blocks(blocks, cb))
            for d in range(d_count):
                put(data[d], st * c, blocks[d])
    else:
        raise NotImplementedError(level)

    paths: list[Path] = []
    sbs: list[Sb] = []
    for m in range(n):
        ds = data_sectors[m]
        if metadata == "1.2":
            data_offset, super_offset, total_sectors = 16, 8, 16 + ds
        elif metadata == "1.1":
            data_offset, super_offset, total_sectors = 8, 0, 8 + ds
        elif metadata == "1.0":
            # Superblock at (N - 16) & ~7 must lie past the data.
            total_sectors = ds + 24
            data_offset, super_offset = 0, (total_sectors - 16) & ~7
        else:
            raise NotImplementedError(metadata)
        sb = Sb(
            set_uuid=set_uuid,
            level=level,
            layout=layout,
            size=0 if level in (0, -1) else dev_sectors,
            chunksize=0 if level == 1 else c,
            raid_disks=n,
            data_offset=data_offset,
            data_size=ds,
            super_offset=super_offset,
            dev_number=m,
            roles=list(range(n)),
            feature_map=0x1000 if raid0_layout_feature else 0,
        )
        img = bytearray(total_sectors * SECTOR)
        img[data_offset * SECTOR : (data_offset + ds) * SECTOR] = dev[m]
        img[super_offset * SECTOR : super_offset * SECTOR + 4096] = sb.pack()
        path = tmp / f"{prefix}{m}.img"
        path.write_bytes(bytes(img))
        paths.append(path)
        sbs.append(sb)
    return Built(content, paths, sbs, cb)


def rewrite_superblock(path: Path, sb: Sb, **kw: bool) -> None:
    """Write ``sb`` back at its ``super_offset`` (after a test changed fields)."""
    with path.open("r+b") as f:
        f.seek(sb.super_offset * SECTOR)
        f.write(sb.pack(**kw))


def build_reshape(
    tmp: Path,
    *,
    n_old: int,
    n_new: int,
    layout: int = 2,
    chunk_sectors: int = 8,
    rows: int = 48,
    moved_bytes: int,
    checkpoint_bytes: int,
    seed: int = 3,
) -> tuple[bytes, list[Path]]:
    """A RAID5 caught in an in-place grow (no data-offset change, as with a backup file):
    the whole array in the old geometry, then array bytes ``[0, moved_bytes)`` rewritten
    in the new geometry at the same place (overwriting old rows), and superblocks whose
    checkpoint says ``checkpoint_bytes`` (the kernel may have moved more than it
    recorded)."""
    rng = random.Random(seed)
    c = chunk_sectors
    cb = c * SECTOR
    d_min = min(n_old, n_new) - 1
    content = rng.randbytes(rows * cb * d_min)
    n = max(n_old, n_new)
    dev = [bytearray(rows * cb) for _ in range(n)]

    def lay(nd: int, limit: int) -> None:
        dd = nd - 1
        for st in range(rows):
            if st * dd * cb >= limit:
                break
            blocks = []
            for d in range(dd):
                a = (st * dd + d) * cb
                blk = content[a : a + cb] if a < limit else b""
                blocks.append(blk.ljust(cb, b"\0"))
            p, data = raid5_roles(5, layout, nd, st)
            dev[p][st * cb : (st + 1) * cb] = reference.xor_blocks(blocks, cb)
            for d in range(dd):
                dev[data[d]][st * cb : (st + 1) * cb] = blocks[d]

    lay(n_old, len(content))
    lay(n_new, moved_bytes)
    set_uuid = rng.randbytes(16)
    paths = []
    for m in range(n):
        sb = Sb(
            set_uuid=set_uuid,
            level=5,
            layout=layout,
            size=rows * c,
            chunksize=c,
            raid_disks=n_new,
            data_offset=16,
            data_size=rows * c,
            super_offset=8,
            dev_number=m,
            roles=list(range(n)),
            feature_map=4,
            new_level=5,
            reshape_position=checkpoint_bytes // SECTOR,
            delta_disks=n_new - n_old,
            new_layout=layout,
            new_chunk=c,
        )
        img = bytearray((16 + rows * c) * SECTOR)
        img[16 * SECTOR :] = dev[m]
        img[8 * SECTOR : 8 * SECTOR + 4096] = sb.pack()
        path = tmp / f"r{m}.img"
        path.write_bytes(bytes(img))
        paths.append(path)
    return content, paths


def backup_csum(buf: bytes, length: int) -> int:
    """mdadm's backup checksum as md-format.md section 6.4 describes it: shift left by 3
    and add the buffer's first byte, ``length`` times (kept to 32 bits)."""
    c = 0
    for _ in range(length):
        c = ((c << 3) + buf[0]) & 0xFFFFFFFFFFFFFFFF
    return c & 0xFFFFFFFF


def write_backup(
    path: Path,
    set_uuid: bytes,
    data: bytes,
    arraystart_bytes: int,
    *,
    magic: bytes = b"md_backup_data-1",
) -> None:
    """An mdadm reshape backup file: 512-byte header at 0, the section's array data from
    byte 4096 (``devstart`` 8 sectors)."""
    h = bytearray(512)
    h[0:16] = magic
    h[16:32] = set_uuid
    struct.pack_into(
        "<QQQQ", h, 32, 1_700_000_000, 8, arraystart_bytes // SECTOR, len(data) // SECTOR
    )
    struct.pack_into("<I", h, 64, backup_csum(bytes(h), 64))
    path.write_bytes(bytes(h).ljust(4096, b"\0") + data)
